"""Many accounts and regions: assume a role per account, fan out with bounded concurrency.

`assume_role_session` turns a role ARN (with the external ID the account's owner asked for) into
a `boto3.Session` acting as that account. `for_each_account` runs one function per account and
region, a few at a time; a failing account does not stop the others, and the results come back
merged in one `FanOutReport`, failures included, in a stable order.

Example:
    >>> report = for_each_account([], lambda session, account, region: None)
    >>> report
    <backuppolicy.aws.FanOutReport(runs=0, failed=0)>
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, Generic, TypeVar

import attrs
import boto3

from backuppolicy.aws._client import AwsBackend, RetryPolicy
from backuppolicy.aws._timestamps import new_boto3_session
from backuppolicy.core.exceptions import PolicyError

__all__ = [
    "AccountRun",
    "AccountSessions",
    "FanOutReport",
    "assume_role_session",
    "for_each_account",
]

T = TypeVar("T")

_ROLE_ARN: Final = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}")
_SESSION_NAME: Final = re.compile(r"[\w+=,.@-]{2,64}")


def _account_of(role_arn: str) -> str:
    match = _ROLE_ARN.fullmatch(role_arn) if isinstance(role_arn, str) else None
    if match is None:
        raise PolicyError.for_field(
            "role_arn", "an IAM role ARN like 'arn:aws:iam::123456789012:role/backup'", role_arn
        )
    return match.group(1)


def assume_role_session(
    role_arn: str,
    *,
    external_id: str | None = None,
    session_name: str = "backuppolicy",
    base_session: boto3.Session | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    duration_seconds: int = 3600,
    retry: RetryPolicy | None = None,
) -> boto3.Session:
    """A `boto3.Session` with the credentials of *role_arn* (STS ``AssumeRole``).

    Args:
        role_arn: The role to assume, in the target account.
        external_id: The external ID the role's trust policy requires, if any.
        session_name: Role session name (2-64 of letters, digits and ``+=,.@-``); it appears in
            the target account's CloudTrail, so name the job.
        base_session: Session whose credentials assume the role (default: the default one).
        region: Region of the new session (default: the base session's).
        endpoint_url: STS endpoint (moto server, LocalStack).
        duration_seconds: Lifetime of the credentials (900-43200).
        retry: The `RetryPolicy` of the STS call.

    Raises:
        PolicyError: A malformed role ARN, session name or duration (before any call).
        PermissionDeniedError: STS refused (trust policy, external ID).

    Example:
        >>> assume_role_session("arn:aws:iam::123:role/x")
        Traceback (most recent call last):
        ...
        backuppolicy.core.exceptions.PolicyError: role_arn: expected an IAM role ARN like 'arn:aws:iam::123456789012:role/backup' (got 'arn:aws:iam::123:role/x').
    """
    _account_of(role_arn)
    if not isinstance(session_name, str) or not _SESSION_NAME.fullmatch(session_name):
        raise PolicyError.for_field("session_name", "2-64 letters, digits or +=,.@-_", session_name)
    if isinstance(duration_seconds, bool) or not 900 <= duration_seconds <= 43200:  # noqa: PLR2004
        raise PolicyError.for_field("duration_seconds", "900 to 43200 seconds", duration_seconds)
    base = base_session or new_boto3_session()
    backend = AwsBackend(
        f"assume-role:{role_arn}",
        session=base,
        region=region or base.region_name or "us-east-1",
        endpoint_url=endpoint_url,
        retry=retry,
    )
    params: dict[str, Any] = {
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "DurationSeconds": duration_seconds,
    }
    if external_id:
        params["ExternalId"] = external_id
    credentials = backend.call("sts", "assume_role", resource=role_arn, **params)["Credentials"]
    return _session(credentials, region or base.region_name)


def _session(credentials: Mapping[str, Any], region: str | None) -> boto3.Session:
    return new_boto3_session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


class AccountSessions:
    """Sessions per account and region for one run: each role is assumed once, then reused.

    The first `get` for a role calls STS ``AssumeRole``; each region then gets its own session
    with the same credentials. A refusal is remembered too, so a denied account costs one call,
    not one per region. Thread-safe.

    Example:
        >>> sessions = AccountSessions()
        >>> sessions
        <backuppolicy.aws.AccountSessions(accounts=0, sessions=0)>

    Args:
        base_session: Session whose credentials assume the roles (default: the default one).
        endpoint_url: STS endpoint (moto server, LocalStack).
        retry: The `RetryPolicy` of the STS calls.
    """

    def __init__(
        self,
        base_session: boto3.Session | None = None,
        *,
        endpoint_url: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._base = base_session
        self._endpoint_url = endpoint_url
        self._retry = retry
        self._assumed: dict[tuple[str, str | None, str], boto3.Session | Exception] = {}
        self._regional: dict[tuple[str, str | None, str, str | None], boto3.Session] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"<backuppolicy.aws.AccountSessions(accounts={len(self._assumed)}, "
            f"sessions={len(self._regional)})>"
        )

    def get(
        self,
        role_arn: str,
        *,
        external_id: str | None = None,
        session_name: str = "backuppolicy",
        region: str | None = None,
    ) -> boto3.Session:
        """The session of *role_arn* in *region* (``None``: the base session's region).

        Raises:
            PolicyError: A malformed role ARN or session name.
            PermissionDeniedError: STS refused (again, without a new call, for later regions).
        """
        key = (role_arn, external_id, session_name)
        with self._lock:
            found = self._assumed.get(key)
            if found is None:
                try:
                    found = assume_role_session(
                        role_arn,
                        external_id=external_id,
                        session_name=session_name,
                        base_session=self._base,
                        endpoint_url=self._endpoint_url,
                        retry=self._retry,
                    )
                except PolicyError:
                    raise
                except Exception as exc:  # noqa: BLE001 - remembered, raised for every region
                    found = exc
                self._assumed[key] = found
            if isinstance(found, Exception):
                raise found
            regional = self._regional.get((*key, region))
            if regional is None:
                regional = found if region is None else _regional(found, region)
                self._regional[(*key, region)] = regional
            return regional


@attrs.frozen
class AccountRun(Generic[T]):
    """The outcome of the function in one account and region.

    Attributes:
        account: Account id.
        region: Region (``None``: the session's default).
        value: What the function returned (``None`` if it failed).
        error: ``"<ExceptionType>: <message>"`` if it failed, else ``None``.
        exception: The exception itself, for callers that re-raise.
    """

    account: str
    region: str | None
    value: T | None = None
    error: str | None = None
    exception: BaseException | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def ok(self) -> bool:
        """Whether the function finished without an exception."""
        return self.error is None


@attrs.frozen
class FanOutReport(Generic[T]):
    """Every run (account and region), merged, in the order the accounts and regions were given.

    Attributes:
        runs: One `AccountRun` per account and region.
    """

    runs: tuple[AccountRun[T], ...]

    @property
    def ok(self) -> bool:
        """Whether every run succeeded."""
        return all(run.ok for run in self.runs)

    @property
    def failed(self) -> list[AccountRun[T]]:
        """The runs that raised."""
        return [run for run in self.runs if not run.ok]

    def __repr__(self) -> str:
        return f"<backuppolicy.aws.FanOutReport(runs={len(self.runs)}, failed={len(self.failed)})>"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` and reports (values are shown with ``repr`` when not JSON)."""
        return {
            "ok": self.ok,
            "runs": [
                {"account": r.account, "region": r.region, "ok": r.ok, "error": r.error}
                for r in self.runs
            ],
        }


def for_each_account(
    roles: Iterable[str],
    fn: Callable[[boto3.Session, str, str | None], T],
    *,
    regions: Sequence[str | None] = (None,),
    external_id: str | None = None,
    session_name: str = "backuppolicy",
    base_session: boto3.Session | None = None,
    endpoint_url: str | None = None,
    max_workers: int = 4,
    retry: RetryPolicy | None = None,
) -> FanOutReport[T]:
    """Run ``fn(session, account, region)`` in every account (role ARN) and region.

    Each account's role is assumed once; its session is shared by that account's regions.
    At most *max_workers* runs are in flight. A failure (assuming the role, or inside *fn*) is
    recorded in its `AccountRun` and the other runs go on. Malformed role ARNs are refused
    before anything runs.

    Raises:
        PolicyError: A role ARN is malformed, or *max_workers* is below 1.
    """
    role_list = list(roles)
    for role in role_list:
        _account_of(role)
    if isinstance(max_workers, bool) or max_workers < 1:
        raise PolicyError.for_field("max_workers", "an integer >= 1", max_workers)
    # Each role is assumed once, up front; a refusal is recorded in each of its runs.
    assumed: dict[str, boto3.Session | Exception] = {}
    for role in dict.fromkeys(role_list):
        try:
            assumed[role] = assume_role_session(
                role,
                external_id=external_id,
                session_name=session_name,
                base_session=base_session,
                endpoint_url=endpoint_url,
                retry=retry,
            )
        except Exception as exc:  # noqa: BLE001 - recorded per run below
            assumed[role] = exc

    def run(job: tuple[str, str | None]) -> AccountRun[T]:
        role, region = job
        account = _account_of(role)
        found = assumed[role]
        if isinstance(found, Exception):
            return AccountRun(
                account, region, error=f"{type(found).__name__}: {found}", exception=found
            )
        try:
            session = found if region is None else _regional(found, region)
            return AccountRun(account, region, value=fn(session, account, region))
        except Exception as exc:  # noqa: BLE001 - one account's failure must not stop the others
            return AccountRun(account, region, error=f"{type(exc).__name__}: {exc}", exception=exc)

    jobs = [(role, region) for role in role_list for region in regions]
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        return FanOutReport(tuple(pool.map(run, jobs)))


def _regional(session: boto3.Session, region: str) -> boto3.Session:
    credentials = session.get_credentials()
    if credentials is None:  # pragma: no cover - assumed sessions always have credentials
        raise PolicyError.for_field("session", "a session with credentials", session)
    frozen = credentials.get_frozen_credentials()
    return _session(
        {
            "AccessKeyId": frozen.access_key,
            "SecretAccessKey": frozen.secret_key,
            "SessionToken": frozen.token,
        },
        region,
    )
