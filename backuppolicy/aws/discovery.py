"""Resolving selectors and accounts against AWS: the ``"aws"`` resolver of the registry.

A `~backuppolicy.Selector` says *which* resources a policy protects (``backup=daily``, like
AWS Backup's tag-based selections); `resolve` asks the Resource Groups Tagging API
(``GetResources``, every page) which resources match right now and returns target specs, so
new resources are protected from the next run on and removed ones stop being expected.
`resolve_targets` resolves every target of a run (selectors expanded, each account's role
assumed once per account and region), and `unprotected_resources` lists the resources of the
account that no target and no selector covers (like AWS Backup Audit Manager's "resources are
protected by a backup plan" control).

Workflows do not import this module: they reach it through the registry
(``backuppolicy.core.resolution.get_resolver("aws")``), which loads it on first use. The module
itself is the resolver: it has the functions of `backuppolicy.core.resolution.TargetResolver`.

Example:
    >>> from backuppolicy.aws import discovery
    >>> from backuppolicy.core.policy import TargetSpec
    >>> spec = TargetSpec("cfg", "directory", settings={"path": "/etc/app"})
    >>> [t.name for t in discovery.resolve_targets([spec])[0].targets]
    ['cfg']
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import boto3

from backuppolicy.aws._client import AwsBackend, new_session
from backuppolicy.aws.accounts import AccountSessions
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import TAG_POLICY
from backuppolicy.core.resolution import Resolution, stands_for_itself
from backuppolicy.core.selector import RESOURCE_SETTINGS, RESOURCE_TYPES, Selector

if TYPE_CHECKING:
    from backuppolicy.core.policy import AccountSpec, TargetSpec

__all__ = ["default_session", "resolve", "resolve_targets", "unprotected_resources"]


def default_session(*, profile: str | None = None, region: str | None = None) -> boto3.Session:
    """A new `boto3.Session` for a run given none (one per run: each re-reads botocore's models).

    *profile* and *region* are the AWS CLI's ``--profile`` and ``--region`` (default:
    ``$AWS_PROFILE`` and the profile's region). An unknown profile is a `PolicyError` naming it.
    """
    return new_session(profile=profile, region=region)


def _parse_arn(arn: str) -> tuple[str, str, str] | None:
    """``(kind, region, id)`` of a resource ARN, or ``None`` for a kind we do not protect."""
    parts = arn.split(":", 5)
    if len(parts) != 6:  # noqa: PLR2004
        return None
    _, _, service, region, _, rest = parts
    if service == "s3":
        return ("s3-bucket", region, rest) if "/" not in rest else None
    if service == "rds":
        kind, _, ident = rest.partition(":")
        found = {"db": "rds-instance", "cluster": "aurora-cluster"}.get(kind)
        return (found, region, ident) if found else None
    if service == "ec2":
        kind, _, ident = rest.partition("/")
        found = {"instance": "ec2-instance", "volume": "ebs-volume"}.get(kind)
        return (found, region, ident) if found else None
    return None


def _target_name(ident: str, tags: Mapping[str, str]) -> str:
    raw = tags.get("Name") or ident
    name = re.sub(r"[^A-Za-z0-9._-]", "-", raw).strip("-._")[:63]
    return name or ident[:63]


def _resources(
    *,
    types: Iterable[str],
    tag_filters: list[dict[str, Any]],
    regions: Iterable[str | None],
    session: Any,
    endpoint_url: str | None,
    page_size: int | None,
) -> Iterator[dict[str, Any]]:
    backend = AwsBackend("selectors", session=session, endpoint_url=endpoint_url)
    params: dict[str, Any] = {"ResourceTypeFilters": [RESOURCE_TYPES[t] for t in types]}
    if tag_filters:
        params["TagFilters"] = tag_filters
    if page_size is not None:
        params["ResourcesPerPage"] = page_size
    for region in regions:
        for page in backend.paginate(
            "resourcegroupstaggingapi", "get_resources", region=region, **params
        ):
            for item in page.get("ResourceTagMappingList", []):
                arn = str(item["ResourceARN"])
                parsed = _parse_arn(arn)
                if parsed is None:
                    continue
                kind, arn_region, ident = parsed
                tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
                yield {
                    "arn": arn,
                    "kind": kind,
                    "region": arn_region or region or backend.region,
                    "id": ident,
                    "tags": tags,
                }


def resolve(
    selector: Selector,
    *,
    session: Any = None,
    endpoint_url: str | None = None,
    page_size: int | None = None,
) -> list[dict[str, Any]]:
    """The resources *selector* matches now, as target specs (``name``, ``kind``, ``settings``).

    Every page of ``GetResources`` is read (each page retried on its own; a page that finally
    fails raises, never a short list). Names come from the ``Name`` tag or the resource id;
    a name found twice gets its region appended.

    Args:
        selector: The selector.
        session: A `boto3.Session`.
        endpoint_url: Endpoint (moto server, LocalStack).
        page_size: ``ResourcesPerPage`` (1-100; default AWS's).

    Returns:
        ``{"name", "kind", "settings"}`` dicts that `backuppolicy.TargetSpec.from_dict` reads,
        sorted by name.
    """
    types = selector.resource_types or tuple(RESOURCE_TYPES)
    found: list[dict[str, Any]] = []
    for resource in _resources(
        types=types,
        tag_filters=selector.tag_filters(),
        regions=selector.regions or (None,),
        session=session,
        endpoint_url=endpoint_url,
        page_size=page_size,
    ):
        if not selector.matches(resource):
            continue
        found.append(
            {
                "name": _target_name(resource["id"], resource["tags"]),
                "kind": resource["kind"],
                "settings": {
                    RESOURCE_SETTINGS[resource["kind"]]: resource["id"],
                    "region": resource["region"],
                },
            }
        )
    seen: dict[str, int] = {}
    for spec in found:
        seen[spec["name"]] = seen.get(spec["name"], 0) + 1
    for spec in found:
        if seen[spec["name"]] > 1:
            spec["name"] = f"{spec['name']}-{spec['settings']['region']}"[:63]
    return sorted(found, key=lambda spec: spec["name"])


def unprotected_resources(
    policy: Any,
    *,
    selectors: Iterable[Selector] = (),
    regions: Iterable[str] = (),
    resource_types: Iterable[str] = (),
    session: Any = None,
    endpoint_url: str | None = None,
    page_size: int | None = None,
) -> list[dict[str, Any]]:
    """Resources of the account that no target of *policy* and no selector covers.

    A resource is covered when a target of the policy names it (its database, cluster,
    instance, volume or bucket id, in its region when the target names one), when it carries
    the tag ``backuppolicy:policy=<policy name>`` (what the AWS Backup export selects), or when
    the selector of one of the policy's targets, or one of *selectors*, matches it. Resources
    that carry the restore-test sweep tag are restore-test leftovers, not production: they are
    left to `backuppolicy.workflows.verify.sweep_restore_tests`.

    Limitation: ``GetResources`` only returns resources that carry (or once carried) a tag, so
    a resource that was never tagged is not seen here; tag everything (an AWS Config rule or
    Organizations tag policy can enforce it) or check with the services' describe calls.

    Args:
        policy: A `backuppolicy.Policy`.
        selectors: The policy's selectors.
        regions: Regions to search (default: the caller's).
        resource_types: Kinds to look at (default: all of `RESOURCE_TYPES`).
        session: A `boto3.Session`.
        endpoint_url: Endpoint.
        page_size: ``ResourcesPerPage``.

    Returns:
        ``{"arn", "kind", "region", "id", "tags"}`` per unprotected resource, sorted by ARN.
    """
    selectors = (*selectors, *_policy_selectors(policy))
    verification = getattr(policy, "verification", None)
    isolation = getattr(verification, "isolation", None) or {}
    sweep_tag = str(isolation.get("sweep_tag", "backuppolicy:restore-test"))
    named: set[tuple[str, str, str | None]] = set()
    for spec in policy.targets:
        key = RESOURCE_SETTINGS.get(spec.kind)
        if key and key in spec.settings:
            named.add((spec.kind, str(spec.settings[key]), spec.settings.get("region")))
    out = []
    for resource in _resources(
        types=tuple(resource_types) or tuple(RESOURCE_TYPES),
        tag_filters=[],
        regions=tuple(regions) or (None,),
        session=session,
        endpoint_url=endpoint_url,
        page_size=page_size,
    ):
        kind, ident, region = resource["kind"], resource["id"], resource["region"]
        if (kind, ident, None) in named or (kind, ident, region) in named:
            continue
        if resource["tags"].get(TAG_POLICY) == policy.name:
            continue
        if sweep_tag in resource["tags"]:  # a restore-test leftover: the sweeper's business
            continue
        if any(selector.matches(resource) for selector in selectors):
            continue
        out.append(resource)
    return sorted(out, key=lambda r: r["arn"])


def _policy_selectors(policy: Any) -> list[Selector]:
    """The selectors of *policy*'s targets, narrowed to the target's ``regions``."""
    found = []
    for spec in policy.targets:
        selector = getattr(spec, "selector", None)
        if selector is None:
            continue
        regions = tuple(getattr(spec, "regions", ()))
        found.append(attrs.evolve(selector, regions=regions) if regions else selector)
    return found


# --------------------------------------------------------------------------------------------
# Resolving the targets of a policy for one run: selectors and accounts.


def _place(account: AccountSpec | None, region: str | None) -> str:
    who = f"account {account.account_id}" if account is not None else "the caller's account"
    return f"{who} in {region or 'the default region'}"


class _Sessions:
    """Sessions per (account, region), made once per run; the account pool is made on first use."""

    def __init__(self, base: Any, endpoint_url: str | None) -> None:
        self._base = base
        self._endpoint_url = endpoint_url
        self._pool: Any = None
        self._lock = threading.Lock()

    def get(self, account: AccountSpec | None, region: str | None) -> Any:
        if account is None:
            return self._base
        with self._lock:
            if self._pool is None:
                self._pool = AccountSessions(self._base, endpoint_url=self._endpoint_url)
        return self._pool.get(
            account.role_arn,
            external_id=account.external_id,
            session_name=account.session_name,
            region=region,
        )


def resolve_targets(
    specs: Iterable[TargetSpec],
    *,
    session: Any = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    page_size: int | None = None,
    sessions: Any = None,
) -> list[Resolution]:
    """Resolve the targets of a run: expand selectors, assume each account's role once.

    A selector target is searched in each of its ``regions`` (else its selector's, else
    *region*, else the session's), in its ``account`` when it names one, and stands for one
    concrete target per resource found (`backuppolicy.TargetSpec.expand`), except resources
    that a single-resource target names or an earlier selector found: those keep their target,
    so no point is listed (or pruned) twice. A failure in one
    account or region (``AccessDenied``, a throttled page) is recorded in that target's
    `Resolution` and the other regions and targets go on; it never raises.

    Args:
        specs: Targets of a policy (``policy.targets``).
        session: The caller's `boto3.Session` (and the base for assuming roles).
        endpoint_url: Endpoint of STS and the tagging API (moto server, LocalStack).
        region: Region for targets and selectors that name none.
        page_size: ``ResourcesPerPage`` of ``GetResources``.
        sessions: Where sessions come from: an object with ``get(account, region)``
            (default: one `backuppolicy.aws.AccountSessions` per call, so each account's role
            is assumed once per run).

    Returns:
        One `Resolution` per target, in the order given.
    """
    specs = list(specs)
    pool = sessions if sessions is not None else _Sessions(session, endpoint_url)
    # A resource has one target: one named by a target, or found by an earlier selector, is
    # left to it (else both would list, and plan, the same points).
    claimed: set[tuple[str, str, str | None, str | None]] = set()
    for spec in specs:
        key = RESOURCE_SETTINGS.get(spec.kind)
        if spec.selector is None and key is not None and key in spec.settings:
            where = spec.settings.get("region") or region
            account = spec.account.account_id if spec.account is not None else None
            claimed.add((spec.kind, str(spec.settings[key]), where, account))
    out: list[Resolution] = []
    for spec in specs:
        if spec.selector is None:
            out.append(_resolve_one(spec, pool, region))
            continue
        regions: Sequence[str | None] = spec.regions or spec.selector.regions or (region,)
        found: list[dict[str, Any]] = []
        session_of: dict[tuple[str, str], Any] = {}
        errors: list[str] = []
        first: BaseException | None = None
        account = spec.account.account_id if spec.account is not None else None
        for where in regions:
            try:
                regional = pool.get(spec.account, where)
                selector = attrs.evolve(spec.selector, regions=(where,)) if where else spec.selector
                items = resolve(
                    selector, session=regional, endpoint_url=endpoint_url, page_size=page_size
                )
            except Exception as exc:  # noqa: BLE001 - one account or region must not stop the rest
                errors.append(f"{_place(spec.account, where)}: {type(exc).__name__}: {exc}")
                first = first or exc
                continue
            for item in items:
                kind, ident = item["kind"], str(item["settings"][RESOURCE_SETTINGS[item["kind"]]])
                keys = {(kind, ident, r, account) for r in (item["settings"]["region"], None)}
                if keys & claimed:
                    continue
                claimed |= keys
                found.append(item)
                session_of[(kind, _ident(kind, item["settings"]))] = regional
        try:
            concrete = spec.expand(found)
        except PolicyError as exc:
            errors.append(str(exc))
            first = first or exc
            concrete = ()
        out.append(
            Resolution(
                spec,
                concrete,
                sessions={
                    t.name: session_of[(t.kind, _ident(t.kind, t.settings))] for t in concrete
                },
                searched=tuple((account, where) for where in regions),
                errors=tuple(errors),
                exception=first,
            )
        )
    return out


def _ident(kind: str, settings: Mapping[str, Any]) -> str:
    return f"{settings[RESOURCE_SETTINGS[kind]]}@{settings.get('region')}"


def _resolve_one(spec: TargetSpec, pool: Any, region: str | None) -> Resolution:
    where = spec.settings.get("region") or region
    account = spec.account.account_id if spec.account is not None else None
    try:
        session = pool.get(spec.account, where)
    except Exception as exc:  # noqa: BLE001 - reported on the target, the others go on
        return Resolution(
            spec,
            searched=((account, where),),
            errors=(f"{_place(spec.account, where)}: {type(exc).__name__}: {exc}",),
            exception=exc,
        )
    if spec.account is None:
        return stands_for_itself(spec, session=session, region=region)
    return Resolution(spec, (spec,), sessions={spec.name: session}, searched=((account, where),))
