"""Target discovery: a `Selector` picks resources by tags, type, name and region at run time.

Real estates have hundreds of databases and instances; nobody lists them one by one. A selector
says *which* resources a policy protects (``backup=daily``, like AWS Backup's tag-based
selections); `resolve` asks the Resource Groups Tagging API (``GetResources``, every page) which
resources match right now and returns target specs, so new resources are protected from the next
run on and removed ones stop being expected. `unprotected_resources` lists the resources of the
account that no target and no selector covers (like AWS Backup Audit Manager's "resources are
protected by a backup plan" control).

Importing this module does not import boto3; `resolve` does, when called.

Example:
    >>> Selector(tags={"backup": "daily"}, resource_types=["rds-instance"]).describe()
    'rds-instance resources tagged backup=daily'
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, NoReturn

import attrs

from backuppolicy.core.exceptions import BackendError, PolicyError

if TYPE_CHECKING:
    from backuppolicy.core.model import RecoveryPoint
    from backuppolicy.core.policy import AccountSpec, TargetSpec

__all__ = [
    "RESOURCE_TYPES",
    "Resolution",
    "Selector",
    "resolve",
    "resolve_targets",
    "unprotected_resources",
]

RESOURCE_TYPES: Final[Mapping[str, str]] = {
    "rds-instance": "rds:db",
    "aurora-cluster": "rds:cluster",
    "ec2-instance": "ec2:instance",
    "ebs-volume": "ec2:volume",
    "s3-bucket": "s3",
}
"""Target kinds a selector can find, and their Resource Groups Tagging API resource types."""

_SETTING: Final = {
    "rds-instance": "db_instance_id",
    "aurora-cluster": "db_cluster_id",
    "ec2-instance": "instance_id",
    "ebs-volume": "volume_id",
    "s3-bucket": "bucket",
}
_REGION_RE: Final = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")
_KEYS: Final = ("tags", "kinds", "name", "regions")


def _to_tags(value: Any) -> Mapping[str, str | None]:
    if value is None:
        return {}
    if isinstance(value, (list, tuple)):
        value = dict.fromkeys(value)
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and k and (v is None or isinstance(v, str)) for k, v in value.items()
    ):
        raise PolicyError.for_field(
            "tags",
            "a mapping of tag key to value (or null for any value), or a list of keys",
            value,
        )
    return dict(value)


def _hint(word: object, choices: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"Did you mean {match[0]!r}?" if match else ""


def _to_types(value: Any) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value or ())
    for item in items:
        if item not in RESOURCE_TYPES:
            raise PolicyError.for_field(
                "resource_types",
                "kinds among " + ", ".join(RESOURCE_TYPES),
                item,
                hint=_hint(item, RESOURCE_TYPES),
            )
    return items


def _to_regions(value: Any) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value or ())
    for item in items:
        if not isinstance(item, str) or not _REGION_RE.fullmatch(item):
            raise PolicyError.for_field("regions", "AWS region names like 'eu-west-2'", item)
    return items


def _check_pattern(_inst: object, _attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise PolicyError.for_field("name_pattern", "None or a glob like 'shop-*'", value)


@attrs.frozen
class Selector:
    """Which resources a policy protects, decided at run time.

    A resource matches when it carries every tag of *tags* (a ``None`` value matches any
    value), is of one of *resource_types* (all supported kinds when empty), its id or ``Name``
    tag matches *name_pattern* (a glob), and it lives in one of *regions* (the caller's region
    when empty).

    Example:
        >>> Selector.from_dict({"tags": {"backup": "daily"}, "kinds": "rds-instance",
        ...                     "name": "shop-*"}).name_pattern
        'shop-*'

    Attributes:
        tags: Required tags: key to value, ``None`` for any value.
        resource_types: Target kinds (keys of `RESOURCE_TYPES`).
        name_pattern: Glob on the resource id or its ``Name`` tag, or ``None``.
        regions: Regions to search.
    """

    tags: Mapping[str, str | None] = attrs.field(factory=dict, converter=_to_tags, hash=False)
    resource_types: tuple[str, ...] = attrs.field(default=(), converter=_to_types)
    name_pattern: str | None = attrs.field(default=None, validator=_check_pattern)
    regions: tuple[str, ...] = attrs.field(default=(), converter=_to_regions)

    def __attrs_post_init__(self) -> None:
        if not self.tags and not self.resource_types and self.name_pattern is None:
            raise PolicyError.for_field(
                "selector",
                "at least one of tags, resource_types or name_pattern (an empty selector would "
                "protect everything by accident)",
                {},
            )

    @classmethod
    def from_dict(cls, data: Any, *, path: str = "selector") -> Selector:
        """Build from the policy-file form ``{tags:, kinds:, name:, regions:}``; errors name *path*."""
        if not isinstance(data, Mapping):
            raise PolicyError.for_field(path, "a mapping with " + ", ".join(_KEYS), data)
        unknown = [key for key in data if key not in _KEYS]
        if unknown:
            raise PolicyError.for_field(
                f"{path}.{unknown[0]}",
                "a known key: " + ", ".join(_KEYS),
                unknown[0],
                hint=_hint(unknown[0], _KEYS),
            )
        try:
            return cls(
                tags=data.get("tags"),
                resource_types=data.get("kinds", ()),
                name_pattern=data.get("name"),
                regions=data.get("regions", ()),
            )
        except PolicyError as exc:
            field = {"resource_types": "kinds", "name_pattern": "name"}.get(exc.path, exc.path)
            where = path if field == "selector" else f"{path}.{field}"
            hint = _hint(exc.got, RESOURCE_TYPES) if field == "kinds" else ""
            raise PolicyError.for_field(where, exc.expected or "", exc.got, hint=hint) from None

    def to_dict(self) -> dict[str, Any]:
        """The policy-file form that `from_dict` reads back (empty conditions left out)."""
        data: dict[str, Any] = {}
        if self.tags:
            data["tags"] = dict(self.tags)
        if self.resource_types:
            data["kinds"] = list(self.resource_types)
        if self.name_pattern is not None:
            data["name"] = self.name_pattern
        if self.regions:
            data["regions"] = list(self.regions)
        return data

    def describe(self) -> str:
        """One line: ``"rds-instance resources tagged backup=daily"``."""
        kinds = ", ".join(self.resource_types) or "all"
        words = [f"{kinds} resources"]
        if self.tags:
            tags = ", ".join(f"{k}={v}" if v is not None else k for k, v in self.tags.items())
            words.append(f"tagged {tags}")
        if self.name_pattern:
            words.append(f"named {self.name_pattern}")
        if self.regions:
            words.append(f"in {', '.join(self.regions)}")
        return " ".join(words)

    def tag_filters(self) -> list[dict[str, Any]]:
        """``TagFilters`` of ``GetResources``."""
        return [
            {"Key": key, "Values": [value]} if value is not None else {"Key": key}
            for key, value in self.tags.items()
        ]

    def matches(self, resource: Mapping[str, Any]) -> bool:
        """Whether a resource found by `resolve` (or `unprotected_resources`) matches."""
        if self.resource_types and resource["kind"] not in self.resource_types:
            return False
        if self.regions and resource["region"] not in self.regions:
            return False
        tags = resource.get("tags", {})
        for key, value in self.tags.items():
            if key not in tags or (value is not None and tags[key] != value):
                return False
        if self.name_pattern is None:
            return True
        names = {resource["id"], tags.get("Name", "")}
        return any(fnmatch.fnmatchcase(name, self.name_pattern) for name in names if name)


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
    from backuppolicy.aws._client import AwsBackend  # noqa: PLC0415 - boto3 only when resolving

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
                    _SETTING[resource["kind"]]: resource["id"],
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
    left to `backuppolicy.checks.verify.sweep_restore_tests`.

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
    from backuppolicy.core.model import TAG_POLICY  # noqa: PLC0415 - pure core, no cycle

    selectors = (*selectors, *_policy_selectors(policy))
    verification = getattr(policy, "verification", None)
    isolation = getattr(verification, "isolation", None) or {}
    sweep_tag = str(isolation.get("sweep_tag", "backuppolicy:restore-test"))
    named: set[tuple[str, str, str | None]] = set()
    for spec in policy.targets:
        key = _SETTING.get(spec.kind)
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


@attrs.frozen
class Resolution:
    """What one target of a policy stands for in one run.

    A single-resource target stands for itself; a selector target for one concrete target per
    resource its selector finds now, in every region it fans out to. Each concrete target
    comes with the `boto3.Session` to reach it (the role of the target's ``account`` assumed,
    once per account and region).

    Example:
        >>> from backuppolicy.core.policy import TargetSpec
        >>> spec = TargetSpec("cfg", "directory", settings={"path": "/etc/app"})
        >>> resolution = resolve_targets([spec])[0]
        >>> [t.name for t in resolution.targets], resolution.ok
        (['cfg'], True)

    Attributes:
        spec: The policy's target.
        targets: The concrete targets, sorted by name for a selector (empty when nothing
            matches, or when every account and region failed).
        sessions: The session of each concrete target, by name (``None``: the caller's).
        searched: The ``(account id, region)`` pairs a selector searched or a target uses
            (``None``: the caller's account, the default region).
        errors: One line per account and region that failed (``"account 222222222222 in
            eu-west-2: PermissionDeniedError: ..."``), or a name collision.
        exception: The first exception, for callers that re-raise.
    """

    spec: TargetSpec
    targets: tuple[TargetSpec, ...] = ()
    sessions: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    searched: tuple[tuple[str | None, str | None], ...] = ()
    errors: tuple[str, ...] = ()
    exception: BaseException | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def ok(self) -> bool:
        """Whether every account and region resolved."""
        return not self.errors

    def error(self) -> BaseException:
        """The error of a failed resolution: the first exception's class, every failure named."""
        message = f"target {self.spec.name!r} could not be resolved: " + "; ".join(self.errors)
        first = self.exception
        if isinstance(first, BackendError):
            return type(first)(
                message,
                backend=self.spec.name,
                operation=first.operation,
                resource=first.resource,
                code=first.code,
            )
        if isinstance(first, PolicyError):
            return PolicyError(message, path=first.path, expected=first.expected, got=first.got)
        return BackendError(message, backend=self.spec.name, operation="resolve")

    def unavailable(self) -> _Unresolved:
        """A stand-in target whose every call raises `error`: workflows report it per target."""
        return _Unresolved(self.spec.name, self.error())


class _Unresolved:
    """A target that could not be resolved: every call raises the resolution error."""

    kind = "selector"

    def __init__(self, name: str, error: BaseException) -> None:
        self._name = name
        self._error = error

    @property
    def name(self) -> str:
        return self._name

    def _fail(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        raise self._error

    def list_points(self) -> Iterator[RecoveryPoint]:
        self._fail()

    create_backup = refresh = delete = copy = restore = _fail


class _Sessions:
    """Sessions per (account, region), made once per run; accounts.py (boto3) loads lazily."""

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
                from backuppolicy.aws.accounts import AccountSessions  # noqa: PLC0415 - boto3

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
        key = _SETTING.get(spec.kind)
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
                kind, ident = item["kind"], str(item["settings"][_SETTING[item["kind"]]])
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
    return f"{settings[_SETTING[kind]]}@{settings.get('region')}"


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
    return Resolution(spec, (spec,), sessions={spec.name: session}, searched=((account, where),))
