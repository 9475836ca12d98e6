"""One client layer for every AWS target: sessions, clients, retries, errors, pagination.

* Clients come from a `boto3.Session` (given, or the default one), for a region and an
  optional ``endpoint_url`` (moto server, LocalStack); ready clients can be injected.
* botocore's own retries are switched off: one tenacity policy (`RetryPolicy`) retries
  throttling and transient errors with exponential backoff and full jitter, bounded in
  attempts and total time, with an injectable ``sleep`` so tests never wait.
* Every call runs inside `map_client_errors`, which turns a `ClientError` into the most
  specific `backuppolicy.BackendError` subclass, with operation, resource and AWS error
  code attached, raised ``from`` the original.
* `AwsBackend.paginate` walks pages one call at a time, each call retried on its own, so a
  throttled page is retried and a page that finally fails raises: never a short listing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, overload

import attrs
import boto3
import jmespath  # type: ignore[import-untyped]  # botocore's own dependency, untyped
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ProfileNotFound,
    ReadTimeoutError,
)
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from backuppolicy.aws._timestamps import new_boto3_session
from backuppolicy.core.concurrency import DEFAULT_CAP, AdaptiveLimit, note_throttled, shared_limit
from backuppolicy.core.exceptions import (
    BackendError,
    PermissionDeniedError,
    PolicyError,
    ResourceNotFoundError,
    ThrottledError,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from types_boto3_backup.client import BackupClient
    from types_boto3_ec2.client import EC2Client
    from types_boto3_kms.client import KMSClient
    from types_boto3_rds.client import RDSClient
    from types_boto3_resourcegroupstaggingapi.client import ResourceGroupsTaggingAPIClient
    from types_boto3_s3.client import S3Client
    from types_boto3_sns.client import SNSClient
    from types_boto3_sts.client import STSClient

    from backuppolicy.core.model import RecoveryPoint

__all__ = [
    "PERMISSION_CODES",
    "THROTTLING_CODES",
    "TRANSIENT_CODES",
    "AwsBackend",
    "RetryPolicy",
    "error_code",
    "is_transient",
    "map_client_errors",
    "new_session",
]

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "SlowDown",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = THROTTLING_CODES | {
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "PriorRequestNotComplete",
}
PERMISSION_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthFailure",
        "AuthorizationError",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "KMS.AccessDeniedException",
        "Forbidden",
    }
)
_NOT_FOUND_SUFFIXES = ("NotFound", "NotFoundFault", "NotFoundException")
_NOT_FOUND_CODES = frozenset(
    {"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NoSuchEntity", "ResourceNotFoundException"}
)
_CONNECTION_ERRORS = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
)
_HTTP_SERVER_ERROR = 500
_HTTP_NOT_FOUND = 404
_HTTP_FORBIDDEN = 403


def error_code(exc: BaseException) -> str:
    """The AWS error code of a `ClientError` (``""`` for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_transient(exc: BaseException) -> bool:
    """Whether *exc* is worth retrying: throttling, timeouts, 5xx, dropped connections."""
    if isinstance(exc, _CONNECTION_ERRORS):
        return True
    if isinstance(exc, ClientError):
        return error_code(exc) in TRANSIENT_CODES or _status(exc) >= _HTTP_SERVER_ERROR
    return False


def _mapped_class(exc: ClientError) -> type[BackendError]:
    code = error_code(exc)
    status = _status(exc)
    if code in THROTTLING_CODES:
        return ThrottledError
    if code in PERMISSION_CODES or (status == _HTTP_FORBIDDEN and code in {"", "403"}):
        return PermissionDeniedError
    if (
        code in _NOT_FOUND_CODES
        or code.endswith(_NOT_FOUND_SUFFIXES)
        or (status == _HTTP_NOT_FOUND and code in {"", "404"})
    ):
        return ResourceNotFoundError
    return BackendError


@contextmanager
def map_client_errors(*, backend: str, operation: str, resource: str = "") -> Iterator[None]:
    """Turn botocore errors raised inside the block into `BackendError` subclasses.

    Example:
        >>> from botocore.exceptions import ClientError
        >>> try:
        ...     with map_client_errors(backend="orders-db", operation="DeleteDBSnapshot", resource="s1"):
        ...         raise ClientError({"Error": {"Code": "DBSnapshotNotFound", "Message": "gone"}},
        ...                           "DeleteDBSnapshot")
        ... except ResourceNotFoundError as exc:
        ...     print(exc.code, exc.resource)
        DBSnapshotNotFound s1
    """
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        where = f" on {resource!r}" if resource else ""
        cls = _mapped_class(exc)
        text = f"{backend}: {operation}{where} failed with {code or _status(exc)}: {message}"
        raise cls(text, backend=backend, operation=operation, resource=resource, code=code) from exc
    except _CONNECTION_ERRORS as exc:
        text = f"{backend}: {operation} could not reach AWS: {exc}"
        raise BackendError(
            text, backend=backend, operation=operation, resource=resource, code=type(exc).__name__
        ) from exc


@attrs.frozen
class RetryPolicy:
    """The one retry policy for AWS calls: exponential backoff with full jitter.

    Example:
        >>> slept = []
        >>> policy = RetryPolicy(sleep=slept.append)   # tests record the waits instead of sleeping

    Attributes:
        max_attempts: Attempts per call, the first one included.
        max_total: Give up once this many seconds have passed since the first attempt.
        base: Backoff multiplier in seconds (the wait before retry *n*, n = 1, 2, ..., is
            uniform in ``[0, min(max_backoff, base * 2**(n - 1))]``).
        max_backoff: Longest single wait in seconds.
        sleep: Function that waits; inject ``list.append`` in tests.
    """

    max_attempts: int = 8
    max_total: float = 120.0
    base: float = 0.25
    max_backoff: float = 20.0
    sleep: Callable[[float], None] = attrs.field(default=time.sleep, eq=False)

    def retrying(self) -> Retrying:
        """A fresh tenacity `Retrying` for one call."""
        return Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.max_attempts) | stop_after_delay(self.max_total),
            wait=wait_random_exponential(multiplier=self.base, max=self.max_backoff),
            sleep=self.sleep,
            reraise=True,
        )


_SESSION_LOCK = threading.RLock()
"""Held while a boto3 session is made or makes a client: sessions are not thread-safe."""

_NO_BOTOCORE_RETRIES = Config(
    retries={"total_max_attempts": 1, "mode": "standard"},
    # As many connections as an adaptive fan-out may have requests in flight (botocore's
    # default of 10 would open and discard a connection per extra request).
    max_pool_connections=DEFAULT_CAP,
)


def new_session(*, profile: str | None = None, region: str | None = None) -> boto3.Session:
    """A new `boto3.Session` of the named *profile* (default: ``$AWS_PROFILE`` or the default).

    Raises:
        PolicyError: The profile is in neither ``~/.aws/config`` nor ``~/.aws/credentials``
            (botocore's ``ProfileNotFound``), naming the profile.
    """
    try:
        return new_boto3_session(profile_name=profile, region_name=region)
    except ProfileNotFound as exc:
        name = profile or exc.kwargs.get("profile", "")
        raise PolicyError.for_field(
            "AWS profile", "a profile of ~/.aws/config or ~/.aws/credentials", name
        ) from None


class AwsBackend:
    """Base of the AWS targets: owns clients, retries, error mapping and pagination.

    Args:
        name: Name used in errors and logs (the target name).
        session: A `boto3.Session`; default: a new default session.
        region: AWS region; default: the session's region.
        endpoint_url: Endpoint for every client (moto server, LocalStack).
        clients: Ready clients by service name (``{"rds": client}``); they win over the session.
        config: Extra botocore `Config` merged into every client's config.
        retry: The `RetryPolicy` (default: `RetryPolicy()`).
    """

    def __init__(
        self,
        name: str,
        *,
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, BaseClient] | None = None,
        config: Config | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._name = name
        self._session = session
        self._region = region
        self.endpoint_url = endpoint_url
        self._clients: dict[tuple[str, str], BaseClient] = {}
        for service, client in (clients or {}).items():
            self._clients[(service, region or str(client.meta.region_name))] = client
        self._config = _NO_BOTOCORE_RETRIES.merge(config) if config else _NO_BOTOCORE_RETRIES
        self.retry = retry or RetryPolicy()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """Name of the target."""
        return self._name

    @property
    def session(self) -> boto3.Session:
        """The boto3 session (created on first use)."""
        with _SESSION_LOCK:
            if self._session is None:
                self._session = new_session(region=self._region)
            return self._session

    @property
    def region(self) -> str:
        """The AWS region the target lives in."""
        if self._region is None:
            for client in self._clients.values():
                return str(client.meta.region_name)
            self._region = self.session.region_name or "us-east-1"
        return self._region

    # Typed clients (the types-boto3 stubs) for the services the library calls; `call` and
    # `paginate` add the retry policy and the error mapping on top of them.
    @overload
    def client(self, service: Literal["backup"], *, region: str | None = None) -> BackupClient: ...
    @overload
    def client(self, service: Literal["ec2"], *, region: str | None = None) -> EC2Client: ...
    @overload
    def client(self, service: Literal["kms"], *, region: str | None = None) -> KMSClient: ...
    @overload
    def client(self, service: Literal["rds"], *, region: str | None = None) -> RDSClient: ...
    @overload
    def client(
        self, service: Literal["resourcegroupstaggingapi"], *, region: str | None = None
    ) -> ResourceGroupsTaggingAPIClient: ...
    @overload
    def client(self, service: Literal["s3"], *, region: str | None = None) -> S3Client: ...
    @overload
    def client(self, service: Literal["sns"], *, region: str | None = None) -> SNSClient: ...
    @overload
    def client(self, service: Literal["sts"], *, region: str | None = None) -> STSClient: ...
    @overload
    def client(self, service: str, *, region: str | None = None) -> Any: ...
    def client(self, service: str, *, region: str | None = None) -> Any:
        """A (cached, thread-safe) client for *service* in *region* (default: the target's).

        The services the library calls return their typed client (``types-boto3`` stubs), e.g.
        ``client("s3")`` is a ``types_boto3_s3.client.S3Client`` for mypy.
        """
        resolved = region or self.region
        key = (service, resolved)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._new_client(service, resolved)
            return client

    def _new_client(self, service: str, region: str) -> BaseClient:
        # boto3 sessions are not thread-safe, and targets built from one policy share a session:
        # creating clients from it in two threads at once corrupts botocore's caches ("OrderedDict
        # mutated during iteration"). Clients, once made, are thread-safe and cached per target.
        # https://boto3.amazonaws.com/v1/documentation/api/latest/guide/session.html#multithreading-or-multiprocessing-with-sessions
        with _SESSION_LOCK:
            base: BaseClient = self.session.client(
                service,  # type: ignore[call-overload]
                region_name=region,
                endpoint_url=self.endpoint_url,
                config=self._config,
            )
        return base

    def adaptive_limit(self, service: str, region: str | None = None) -> AdaptiveLimit:
        """The process-wide `AdaptiveLimit` of *service* in *region* (default: the target's).

        AWS throttles each account per region (RDS: one token bucket for all its API calls;
        EC2: one per API action), so fan-outs against the same service and region share it.
        """
        return shared_limit(("aws", service, region or self.region))

    def same_kms_key(self, expected: str, actual: str) -> bool:
        """Whether *expected* and *actual* (key ids, key ARNs, aliases) name the same KMS key.

        Equal names need no call; otherwise ``DescribeKey`` of each (in the region of an ARN,
        else the target's) gives the key ARNs to compare.
        """
        from backuppolicy.core.capabilities import kms_key_name  # noqa: PLC0415 - one use

        if kms_key_name(expected) == kms_key_name(actual):
            return True

        def arn(key: str) -> str:
            region = key.split(":")[3] if key.startswith("arn:") and key.count(":") >= 5 else None  # noqa: PLR2004
            found = self.call("kms", "describe_key", resource=key, region=region, KeyId=key)
            return str(found["KeyMetadata"]["Arn"])

        return arn(expected) == arn(actual)

    def call(
        self,
        service: str,
        operation: str,
        *,
        resource: str = "",
        region: str | None = None,
        **params: object,
    ) -> dict[str, Any]:
        """Call ``client.<operation>(**params)`` with retries and error mapping.

        *operation* is the Python name (``"delete_db_snapshot"``).
        """
        client = self.client(service, region=region)
        method = getattr(client, operation)
        api_name = client.meta.method_to_api_mapping.get(operation, operation)
        with map_client_errors(backend=self.name, operation=api_name, resource=resource):
            for attempt in self.retry.retrying():
                with attempt:
                    try:
                        result: dict[str, Any] = method(**params)
                    except ClientError as exc:
                        if error_code(exc) in THROTTLING_CODES:
                            note_throttled()  # the fan-out this call runs in backs off
                        raise
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def get_bounded(
        self, bucket: str, key: str, limit: int, *, resource: str = "", **params: Any
    ) -> tuple[bytes, bool]:
        """GetObject of at most the first ``limit + 1`` bytes of *key* (a Range request).

        Returns the bytes read and whether the object holds more than *limit* bytes, so a
        caller refuses an oversized object without ever holding it whole. An empty object
        gives ``(b"", False)``. *params* go to GetObject (``VersionId=``).
        """
        try:
            response = self.call(
                "s3",
                "get_object",
                resource=resource or f"s3://{bucket}/{key}",
                Bucket=bucket,
                Key=key,
                Range=f"bytes=0-{limit}",
                **params,
            )
        except BackendError as exc:
            if exc.code != "InvalidRange":  # an empty object has no byte 0
                raise
            return b"", False
        body = response["Body"]
        try:
            chunks: list[bytes] = []
            size = 0
            while size <= limit:
                chunk = body.read(limit + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            body.close()
        raw = b"".join(chunks)
        total = str(response.get("ContentRange", "")).rpartition("/")[2]
        return raw, len(raw) > limit or (total.isdigit() and int(total) > limit)

    def paginate(
        self,
        service: str,
        operation: str,
        *,
        resource: str = "",
        region: str | None = None,
        **params: object,
    ) -> Iterator[dict[str, Any]]:
        """Yield every page of a paginated operation, each page call retried on its own.

        A page that still fails after the retries raises, so callers never mistake a
        partial listing for a complete one.
        """
        client = self.client(service, region=region)
        model = client.get_paginator(operation)._pagination_cfg  # noqa: SLF001
        api_name = client.meta.method_to_api_mapping.get(operation, operation)
        input_tokens = _as_list(model["input_token"])
        output_tokens = _as_list(model["output_token"])
        more_key = model.get("more_results")
        request = dict(params)
        seen: set[tuple[object, ...]] = set()
        while True:
            page = self.call(service, operation, resource=resource, region=region, **request)
            yield page
            tokens = tuple(_lookup(page, path) for path in output_tokens)
            if more_key is not None and not _lookup(page, more_key):
                return
            if all(token in (None, "") for token in tokens):
                if more_key is None:
                    return
                raise BackendError(  # truncated, but nowhere to continue from: never a short listing
                    f"{self.name}: {api_name}: expected a pagination token on a truncated page "
                    f"(got none of {', '.join(output_tokens)})",
                    backend=self.name,
                    operation=api_name,
                    resource=resource,
                )
            if tokens in seen:  # a backend that repeats a token would loop forever
                raise BackendError(
                    f"{self.name}: {api_name} returned the same pagination token twice",
                    backend=self.name,
                    operation=api_name,
                    resource=resource,
                )
            seen.add(tokens)
            for name, token in zip(input_tokens, tokens, strict=True):
                if token in (None, ""):
                    request.pop(name, None)
                else:
                    request[name] = token

    def point_sharing(
        self,
        point: RecoveryPoint | None,  # noqa: ARG002 - the kinds with a sharing check override this
        *,
        region: str | None,  # noqa: ARG002
    ) -> tuple[dict[str, Any], list[str]] | None:
        """Whether *point* is shared with everyone (`PointSharing`): ``None``, no check for it here."""
        return None


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _lookup(page: Mapping[str, object], path: str) -> object:
    """Read a paginator's token expression from *page*.

    botocore writes them in JMESPath: ``"Marker"``, ``"EngineDefaults.Marker"`` and, for S3
    ListObjects, ``"NextMarker || Contents[-1].Key"``.
    """
    return jmespath.search(path, page)
