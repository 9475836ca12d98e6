r"""Restores for every target: a dry-run plan first, then the restore, verified and logged.

`plan_restore` looks at the target, the recovery point (or point in time) and the destination
and returns a `RestorePlan`: every step it will take, typed (`StepAction`), and which of them
replace or overwrite something. `restore` carries the plan out. Steps that touch existing data
(an in-place S3 restore, renaming a database into place, moving a directory aside, detaching a
volume) are *destructive* and run only with ``confirm=True`` (CLI: ``--yes``). Nothing is ever
overwritten silently: the previous state is always kept.

============================  ===================================================================
target kind                   what a restore does, and where the previous state goes
============================  ===================================================================
``rds-instance``              a new DB instance from a snapshot or a point in time (the
                              original's class, subnet group, security groups and parameter
                              group unless given); with ``swap=True`` the original is renamed
                              ``<id>-before-restore-<stamp>`` (kept, never deleted) and the new
                              one renamed into its place
``aurora-cluster``            the same for a cluster and one instance in it
``ec2-instance``,             a new volume from each snapshot of the backup; with
``ebs-volume``                ``attach_to=`` attached to an instance at the original devices (a
                              volume already there is detached and kept)
``s3-bucket``                 the prefix restored to a time (or a manifest's time, or one
                              object's earlier version) into another bucket/prefix or in place;
                              in place needs versioning on (checked first): the old versions stay
``directory``                 the archive restored (checksums checked) next to the destination
                              and renamed into place; an existing directory is moved aside to
                              ``<path>.before-restore-<stamp>`` (`backuppolicy.local.Directory`
                              plans and carries this out itself)
any `Restorable` target       what the target plans (``plan_restore``) and carries out
                              (``execute_restore``) itself, e.g. a plug-in kind
============================  ===================================================================

Immediately before it acts, `restore` looks at the destination again and compares it with what
`plan_restore` saw (`RestorePlan.observed`): if anything changed since the plan (an object written
into the destination bucket, a file changed in the directory, a volume attached at the device, a
database renamed), it refuses and names what changed, unless ``confirm=True``; with ``confirm``
the previous state is kept as above. A resource under a name the plan gives, that this restore did
not make, is never adopted, confirmed or not.

After the restore the result is verified (the database is available, archive and file
checksums, a second dry run of an in-place S3 restore finds nothing left to do, probes) and
recorded in the testing log with ``log.record(check_result)``.

Example:
    >>> import pathlib, tempfile
    >>> from backuppolicy.local import Directory, DirectoryStore
    >>> src = pathlib.Path(tempfile.mkdtemp()) / "etc"
    >>> src.mkdir()
    >>> _ = (src / "app.conf").write_text("port = 8080\n")
    >>> etc = Directory(src, name="etc", store=DirectoryStore(tempfile.mkdtemp()))
    >>> point = etc.create_backup(reason="before upgrade")
    >>> _ = (src / "app.conf").write_text("port = broken\n")
    >>> plan = plan_restore(etc, point=point)
    >>> [step.action.value for step in plan.steps]
    ['create', 'move-aside', 'replace', 'verify']
    >>> plan.destructive
    True
    >>> result = restore(plan, confirm=True)
    >>> result.ok, (src / "app.conf").read_text()
    (True, 'port = 8080\n')
    >>> pathlib.Path(result.kept[0]).joinpath("app.conf").read_text()
    'port = broken\n'
"""

from __future__ import annotations

import hashlib
import heapq
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs

from backuppolicy.checks.running import run_check
from backuppolicy.checks.verify import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.exceptions import (
    BackendError,
    PolicyError,
    ResourceNotFoundError,
)
from backuppolicy.core.model import RecoveryPoint, ensure_aware
from backuppolicy.core.restoring import (
    ABSENT,
    MADE_BY_THIS_RESTORE,
    RestoreOutcome,
    RestorePlan,
    RestoreStep,
    StepAction,
    choose_point,
    restore_stamp,
    stamp_of,
)
from backuppolicy.core.targets import (
    TAG_RESTORE_ID,
    BackupTarget,
    Restorable,
    RestorableBucket,
    RestorableDatabase,
    RestorableVolumes,
)

__all__ = [
    "Probe",
    "RestoreLog",
    "RestorePlan",
    "RestoreResult",
    "RestoreStep",
    "StepAction",
    "plan_restore",
    "restore",
]

TAG_RESTORED_FROM = "backuppolicy:restored-from"
"""Tag on every resource a restore creates: the point id or time it was restored from."""
TAG_MOVED_ASIDE = "backuppolicy:moved-aside-by"
"""Tag a restore puts on a database before renaming it aside: the plan's token (resumes know it)."""

_NEWEST = 3
_QUOTE = 160
_LISTED = 5

_SUPPORTED = (
    "rds-instance",
    "aurora-cluster",
    "ec2-instance",
    "ebs-volume",
    "s3-bucket",
    "directory",
)
_MAX_COPY_OBJECT = 5 * 1024**3
_DEVICE_LETTERS = "fghijklmnop"


class Probe(Protocol):
    """**Protocol:** a check of a restored resource (`backuppolicy.workflows.recovery.HttpCheck` ...).

    Plain callables ``probe(endpoint)`` returning a `CheckResult`, a bool or ``None`` are
    accepted too.
    """

    def run(self, endpoint: str | None) -> CheckResult:
        """Check the resource reachable at *endpoint*."""
        ...


class RestoreLog(Protocol):
    """**Protocol:** where results go: the backup testing log (`backuppolicy.workflows.testlog`)."""

    def record(self, result: CheckResult) -> Any:
        """Store *result*."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


def _issues(*items: str) -> Any:
    """*items* for `CheckResult.issues` (its ``tuple`` converter has no usable type for mypy)."""
    return items


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | tuple)


@attrs.frozen
class RestoreResult:
    """What `restore` did.

    Attributes:
        plan: The plan carried out.
        resource: The restored resource (DB identifier, volume ids, ``s3://...``, a path).
        endpoint: How to reach it (``host:port``, a path, ``s3://...``), if anything.
        kept: Where the previous state was kept (renamed instance, detached volumes, a path).
        checks: Verification results (the restore's own checks, then the probes).
        started_at: When the restore started.
        duration: Seconds it took.
        details: Backend-specific facts (S3 counts, volume ids by device ...).
    """

    plan: RestorePlan
    resource: str
    endpoint: str | None
    kept: tuple[str, ...]
    checks: tuple[CheckResult, ...]
    started_at: datetime
    duration: float
    details: Mapping[str, Any] = attrs.field(factory=dict, hash=False)

    @property
    def ok(self) -> bool:
        """Whether every check passed (or warned, or was skipped)."""
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        """The checks that failed."""
        return [check for check in self.checks if not check.ok]

    def __repr__(self) -> str:
        return (
            f"<backuppolicy.RestoreResult(target={self.plan.target!r}, resource={self.resource!r}, "
            f"ok={self.ok}, kept={len(self.kept)})>"
        )

    def summary(self) -> str:
        """The result in words."""
        head = (
            f"restored {self.plan.target} from {self.plan.source} into {self.resource} "
            f"in {self.duration:.1f}s: {'ok' if self.ok else 'FAILED'}"
        )
        lines = [head]
        if self.endpoint:
            lines.append(f"  endpoint: {self.endpoint}")
        lines += [f"  previous state kept: {kept}" for kept in self.kept]
        lines += [
            f"  check {c.check}: {c.status.value}{': ' + c.details if c.details else ''}"
            for c in self.checks
        ]
        return "\n".join(lines)

    def to_check(self, *, ran_by: str = "") -> CheckResult:
        """The result as one `CheckResult` (what `restore` records in the testing log)."""
        issues = [issue for check in self.failed for issue in (check.issues or (check.details,))]
        return CheckResult(
            check="restore",
            status=CheckStatus.PASS if self.ok else CheckStatus.FAIL,
            target=self.plan.target,
            checked_at=self.started_at,
            point_id=self.plan.point.id if self.plan.point else None,
            kind=CheckKind.RESTORE_TEST,
            tier=self.plan.point.tier if self.plan.point else None,
            application=self.plan.application,
            details=f"restored from {self.plan.source} into {self.resource}",
            issues=_issues(*issues),
            evidence={
                "destination": self.plan.destination,
                "in_place": self.plan.in_place,
                "resource": self.resource,
                "kept": list(self.kept),
                "data_time": self.plan.data_time.isoformat(),
                "token": self.plan.token,
                "checks": [c.to_dict() for c in self.checks],
            },
            duration=self.duration,
            ran_by=ran_by,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "plan": self.plan.to_dict(),
            "resource": self.resource,
            "endpoint": self.endpoint,
            "kept": list(self.kept),
            "ok": self.ok,
            "checks": [c.to_dict() for c in self.checks],
            "started_at": self.started_at.isoformat(),
            "duration": round(self.duration, 3),
            "details": {k: v for k, v in self.details.items() if _plain(v) or isinstance(v, dict)},
        }


# --------------------------------------------------------------------------------------------
# Planning


def _resolve(
    policy_or_target: Any, target: str | BackupTarget | None, targets: Mapping[str, Any] | None
) -> tuple[Any, str | None]:
    """The target object (and its application) from a policy and a name, or a target."""
    from backuppolicy.core.policy import Policy  # noqa: PLC0415 - policy imports heavy parsers

    if isinstance(policy_or_target, Policy):
        if target is None:
            raise PolicyError.for_field("target", "the name of a target of the policy", None)
        if not isinstance(target, str):
            return target, None
        spec = policy_or_target.target(target)
        if targets is not None and spec.name in targets:
            return targets[spec.name], spec.application
        from backuppolicy.workflows.backups import build_targets  # noqa: PLC0415 - avoid an import cycle

        return build_targets(policy_or_target, only=[spec.name])[spec.name], spec.application
    if isinstance(policy_or_target, BackupTarget):
        return policy_or_target, None
    raise PolicyError.for_field(
        "policy_or_target",
        "a backuppolicy.Policy or a BackupTarget",
        type(policy_or_target).__name__,
    )


def plan_restore(
    policy_or_target: Any,
    target: str | BackupTarget | None = None,
    *,
    point: RecoveryPoint | str | None = None,
    at: datetime | None = None,
    into: str | os.PathLike[str] | None = None,
    swap: bool = False,
    attach_to: str | None = None,
    devices: Sequence[str] = (),
    availability_zone: str | None = None,
    subnet_group: str | None = None,
    security_group_ids: Sequence[str] = (),
    parameter_group: str | None = None,
    instance_class: str | None = None,
    probes: Iterable[Any] = (),
    targets: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    token: str | None = None,
    **target_options: Any,
) -> RestorePlan:
    """Plan a restore of one target; nothing is changed.

    A target that plans its own restores (`backuppolicy.core.targets.Restorable`, e.g.
    `backuppolicy.local.Directory` or a plug-in kind) is asked first: it gets *point*, *at*,
    *into*, *now*, *token*, the database and volume options that were set, and
    *target_options*; the probes are added to its plan here.

    Args:
        policy_or_target: A `backuppolicy.Policy` (then *target* names the target) or a target.
        target: The target's name in the policy (or a target object).
        point: The recovery point (or its id); default: the newest completed point (for S3: the
            newest manifest), or the time *at*.
        at: Restore to this point in time instead (RDS point-in-time recovery, S3 versions).
        into: Where to: a new DB identifier (default ``<id>-restored-<stamp>``), ``s3://bucket/prefix``
            (default: in place), a directory (default: the target's own path, in place).
        swap: Databases: rename the original aside and the restored database into its place.
        attach_to: Volumes: the instance to attach the restored volumes to.
        devices: Volumes: device names for volumes whose original device is unknown.
        availability_zone: Volumes: where to create them (default: the instance's or the region's first).
        subnet_group: Databases: DB subnet group (default: the original's).
        security_group_ids: Databases: VPC security groups (default: the original's).
        parameter_group: Databases: DB parameter group (default: the original's).
        instance_class: Databases: DB instance class (default: the original's).
        probes: Checks run against the restored resource (objects with ``run(endpoint)`` or callables).
        targets: Built targets by name (default: built from the policy).
        now: The time of the plan (default: now); names carry its stamp.
        token: Identity of the restore (default: from *now*); pass the token of an interrupted
            restore to adopt what it created.
        **target_options: Options of a `~backuppolicy.core.targets.Restorable` target's own
            restore (refused for the others).

    Raises:
        PolicyError: The point or destination cannot be used (the message says why and what
            to change), or the target's kind has no restore here.
    """
    backend, application = _resolve(policy_or_target, target, targets)
    moment = ensure_aware(now, field="now") if now is not None else _now()
    if at is not None:
        ensure_aware(at, field="at")
        if at > moment:
            raise PolicyError.for_field("at", f"a time at or before now ({moment.isoformat()})", at)
        if point is not None:
            raise PolicyError.for_field(
                "point", "no point when at= is given (one or the other)", point
            )
    kind = str(getattr(backend, "kind", ""))
    context = _Context(
        backend=backend,
        kind=kind,
        now=moment,
        token=token or restore_stamp(moment),
        application=application,
        probes=tuple(probes),
    )
    options: dict[str, Any] = {
        "swap": swap,
        "attach_to": attach_to,
        "devices": list(devices),
        "availability_zone": availability_zone,
        "subnet_group": subnet_group,
        "security_group_ids": list(security_group_ids),
        "parameter_group": parameter_group,
        "instance_class": instance_class,
    }
    if isinstance(backend, Restorable):
        return _plan_restorable(
            context,
            backend,
            point=point,
            at=at,
            into=into,
            options=options,
            target_options=target_options,
        )
    if target_options:
        raise PolicyError.for_field(
            "plan_restore",
            f"only the options plan_restore names for a {kind or 'target'} target",
            ", ".join(sorted(target_options)),
        )
    if isinstance(backend, RestorableDatabase):
        plan = _plan_database(context, point, at, into, options)
    elif isinstance(backend, RestorableVolumes):
        plan = _plan_volumes(context, point, into, options)
    elif isinstance(backend, RestorableBucket):
        plan = _plan_s3(context, point, at, into)
    else:
        raise PolicyError.for_field(
            "target.kind",
            f"a kind with a restore: {', '.join(_SUPPORTED)} or a Restorable target",
            kind,
        )
    return attrs.evolve(plan, observed=_observe(plan))


def _plan_restorable(
    ctx: _Context,
    backend: Restorable,
    *,
    point: RecoveryPoint | str | None,
    at: datetime | None,
    into: Any,
    options: Mapping[str, Any],
    target_options: Mapping[str, Any],
) -> RestorePlan:
    """The plan of a target that plans its own restores, with the probes and what it observed."""
    given = {key: value for key, value in options.items() if value not in (None, False, [])}
    plan = backend.plan_restore(
        point=point, at=at, into=into, now=ctx.now, token=ctx.token, **given, **target_options
    )
    steps = list(plan.steps)
    if ctx.probes:
        steps.append(
            RestoreStep(StepAction.VERIFY, plan.destination, f"run {len(ctx.probes)} probe(s)")
        )
    plan = attrs.evolve(
        plan,
        steps=tuple(steps),
        application=ctx.application,
        probes=ctx.probes,
        backend=backend,
    )
    return attrs.evolve(plan, observed=dict(backend.observe_restore(plan)))


@attrs.frozen
class _Context:
    backend: Any
    kind: str
    now: datetime
    token: str
    application: str | None
    probes: tuple[Any, ...]

    def plan(self, **fields: Any) -> RestorePlan:
        return RestorePlan(
            target=str(self.backend.name),
            kind=self.kind,
            token=self.token,
            planned_at=self.now,
            application=self.application,
            probes=self.probes,
            backend=self.backend,
            **fields,
        )


# -- databases ----------------------------------------------------------------------------


def _tags(item: Mapping[str, Any] | None) -> dict[str, str]:
    if not item:
        return {}
    return {
        str(t.get("Key")): str(t.get("Value"))
        for t in item.get("TagList") or item.get("Tags") or []
    }


def _point_region(point: RecoveryPoint | None, default: str) -> str:
    if point is None:
        return default
    region = point.details.get("region")
    if isinstance(region, str) and region:
        return region
    parts = point.location.split(":")
    return parts[2] if len(parts) == 3 and parts[0] == "aws" and parts[2] else default  # noqa: PLR2004


def _plan_database(
    ctx: _Context,
    point: RecoveryPoint | str | None,
    at: datetime | None,
    into: Any,
    options: dict[str, Any],
) -> RestorePlan:
    backend: RestorableDatabase = ctx.backend
    original = str(backend.resource_id)
    chosen = None if at is not None else choose_point(backend, point, before=None)
    region = _point_region(chosen, str(backend.region))
    swap = bool(options["swap"])
    if swap and region != backend.region:
        raise PolicyError.for_field(
            "swap",
            f"False for a copy in another region ({region}): restore it there, then move traffic",
            swap,
        )
    if into is not None and (
        not isinstance(into, str)
        or not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", into)
        or "--" in into
        or into.endswith("-")
    ):
        raise PolicyError.for_field(
            "into",
            "a DB identifier: lowercase letters, digits and single hyphens, 1-63, starting with a letter",
            into,
        )
    new_id = (
        str(into)
        if into is not None
        else backend.restore_identifier(f"restored-{stamp_of(ctx.token)}")
    )
    if new_id == original:
        raise PolicyError.for_field(
            "into",
            f"a new identifier (restore next to {original!r}; swap=True renames it into place)",
            new_id,
        )
    existing = backend.describe_database(new_id, region)
    if existing is not None and _tags(existing).get(TAG_RESTORE_ID) != ctx.token:
        raise PolicyError.for_field(
            "into",
            f"an identifier that is not in use (a {backend.database_id_param} not taken by another restore)",
            new_id,
        )
    source = (
        f"the state of {original} at {at.isoformat()}"
        if at is not None
        else f"snapshot {chosen.id}"  # type: ignore[union-attr]
    )
    what = backend.database_noun
    settings = _db_settings(backend, original, options)
    described = ", ".join(f"{k} {v}" for k, v in settings.items() if v) or "default settings"
    steps = [
        RestoreStep(
            StepAction.CREATE,
            f"rds:{new_id}",
            (
                f"adopt DB {what} {new_id} made earlier by this restore"
                if existing
                else f"create DB {what} {new_id} from {source} ({described})"
            ),
        ),
        RestoreStep(StepAction.VERIFY, f"rds:{new_id}", f"wait until {new_id} is available"),
    ]
    aside = backend.restore_identifier(f"before-restore-{stamp_of(ctx.token)}")
    if swap:
        steps += [
            RestoreStep(
                StepAction.MOVE_ASIDE,
                f"rds:{original}",
                f"rename DB {what} {original} to {aside} (kept, not deleted)",
                destructive=True,
                keeps=f"rds:{aside}",
            ),
            RestoreStep(
                StepAction.REPLACE,
                f"rds:{original}",
                f"rename DB {what} {new_id} to {original}, then wait until it is available",
                destructive=True,
                keeps=f"rds:{aside}",
            ),
        ]
    if ctx.probes:
        steps.append(
            RestoreStep(
                StepAction.VERIFY,
                f"rds:{original if swap else new_id}",
                f"run {len(ctx.probes)} probe(s)",
            )
        )
    return ctx.plan(
        source=source,
        destination=original if swap else new_id,
        in_place=swap,
        steps=tuple(steps),
        data_time=at.astimezone(UTC) if at is not None else chosen.created_at,  # type: ignore[union-attr]
        point=chosen,
        at=at,
        options={
            **options,
            "new_id": new_id,
            "aside": aside,
            "region": region,
            "settings": settings,
        },
    )


def _db_settings(
    backend: RestorableDatabase, original: str, options: Mapping[str, Any]
) -> dict[str, Any]:
    """The network, class and parameter settings of the restored database."""
    found = backend.describe_database(original) or {}
    groups = [g.get("VpcSecurityGroupId") for g in found.get("VpcSecurityGroups") or []]
    params = [g.get("DBParameterGroupName") for g in found.get("DBParameterGroups") or []]
    subnet = found.get("DBSubnetGroup")
    subnet_name = subnet.get("DBSubnetGroupName") if isinstance(subnet, Mapping) else subnet
    parameter = options["parameter_group"] or next(
        (p for p in params if p and not str(p).startswith("default.")), None
    )
    return {
        "instance_class": options["instance_class"] or found.get("DBInstanceClass"),
        "subnet_group": options["subnet_group"] or subnet_name,
        "security_group_ids": list(options["security_group_ids"]) or [g for g in groups if g],
        "parameter_group": parameter,
    }


# -- volumes --------------------------------------------------------------------------------


def _plan_volumes(  # noqa: C901 - one branch per device case
    ctx: _Context, point: RecoveryPoint | str | None, into: Any, options: dict[str, Any]
) -> RestorePlan:
    backend: RestorableVolumes = ctx.backend
    if into is not None:
        raise PolicyError.for_field(
            "into", "None for volumes (use attach_to= and availability_zone=)", into
        )
    chosen = choose_point(backend, point, before=None)
    region = _point_region(chosen, str(backend.region))
    members = [dict(m) for m in chosen.details.get("snapshots", ()) if isinstance(m, Mapping)]
    members = members or [{"snapshot_id": chosen.id, "device": None}]
    attach_to = options["attach_to"]
    spare = list(options["devices"])
    instance: dict[str, Any] | None = None
    if attach_to is not None:
        found = backend.describe_instance(str(attach_to), region)
        instance = dict(found) if found is not None else None
        if instance is None:
            raise PolicyError.for_field("attach_to", f"an existing instance in {region}", attach_to)
    zone = options["availability_zone"] or (
        instance.get("Placement", {}).get("AvailabilityZone") if instance else None
    )
    steps: list[RestoreStep] = []
    used: dict[str, str] = {}
    if instance is not None:
        used = {
            str(m["DeviceName"]): str(m.get("Ebs", {}).get("VolumeId"))
            for m in instance.get("BlockDeviceMappings") or []
        }
    letters = iter(_DEVICE_LETTERS)
    for member in members:
        steps.append(
            RestoreStep(
                StepAction.CREATE,
                f"ebs:{member['snapshot_id']}",
                f"create a volume from snapshot {member['snapshot_id']} in {zone or 'the region first zone'}",
            )
        )
        if instance is None:
            continue
        device = member.get("device") or (spare.pop(0) if spare else None)
        while device is None:
            candidate = f"/dev/sd{next(letters)}"
            if candidate not in used and candidate not in {m.get("device") for m in members}:
                device = candidate
        member["device"] = device
    replaced = {
        m["device"]: used[m["device"]]
        for m in members
        if instance is not None and m["device"] in used
    }
    steps.append(
        RestoreStep(StepAction.VERIFY, "ebs", "wait until every restored volume is available")
    )
    if instance is not None:
        iid = str(attach_to)
        if replaced:
            steps.append(
                RestoreStep(
                    StepAction.MOVE_ASIDE, f"ec2:{iid}", f"stop instance {iid}", destructive=True
                )
            )
            steps += [
                RestoreStep(
                    StepAction.MOVE_ASIDE,
                    f"ebs:{volume}",
                    f"detach volume {volume} from {iid} at {device} (kept, not deleted)",
                    destructive=True,
                    keeps=f"ebs:{volume}",
                )
                for device, volume in sorted(replaced.items())
            ]
        steps += [
            RestoreStep(
                StepAction.ATTACH,
                f"ec2:{iid}",
                f"attach the volume from {m['snapshot_id']} to {iid} at {m['device']}",
            )
            for m in members
        ]
        if replaced:
            steps.append(
                RestoreStep(StepAction.REPLACE, f"ec2:{iid}", f"start instance {iid} again")
            )
    if ctx.probes:
        steps.append(RestoreStep(StepAction.VERIFY, "ebs", f"run {len(ctx.probes)} probe(s)"))
    return ctx.plan(
        source=f"{chosen.kind} {chosen.id}",
        destination=f"instance {attach_to}" if attach_to else f"new volumes in {zone or region}",
        in_place=bool(replaced),
        steps=tuple(steps),
        data_time=chosen.created_at,
        point=chosen,
        options={
            **options,
            "region": region,
            "zone": zone,
            "members": members,
            "replaced": replaced,
            "was_running": bool(instance) and instance.get("State", {}).get("Name") == "running",  # type: ignore[union-attr]
        },
    )


# -- S3 -------------------------------------------------------------------------------------


def _parse_s3(value: str) -> tuple[str, str]:
    if not value.startswith("s3://") or not value[5:].split("/", 1)[0]:
        raise PolicyError.for_field("into", "an s3://bucket/prefix URL (or None: in place)", value)
    bucket, _, prefix = value[5:].partition("/")
    return bucket, prefix


def _plan_s3(  # noqa: C901, PLR0912 - one branch per kind of S3 restore
    ctx: _Context, point: RecoveryPoint | str | None, at: datetime | None, into: Any
) -> RestorePlan:
    backend: RestorableBucket = ctx.backend
    if into is not None and not isinstance(into, str):
        raise PolicyError.for_field("into", "an s3://bucket/prefix URL (or None: in place)", into)
    dest_bucket, dest_prefix = _parse_s3(into) if into else (backend.bucket, backend.prefix)
    in_place = dest_bucket == backend.bucket and dest_prefix == backend.prefix
    chosen: RecoveryPoint | None = None
    version: tuple[str, str] | None = None
    if at is None:
        if (
            isinstance(point, str)
            and "@" in point
            and not point.startswith(backend.internal_prefix)
        ):
            key, _, vid = point.rpartition("@")
            chosen = RecoveryPoint(
                id=point,
                target=backend.name,
                created_at=ctx.now,
                kind="s3-version",
                details={"key": key, "version_id": vid},
            )
        else:
            chosen = choose_point(backend, point, before=None, kinds=("s3-manifest",))
        if chosen.kind == "s3-version":
            key, _, vid = chosen.id.rpartition("@")
            version = (key, vid)
        else:
            at = chosen.created_at
    dest_url = f"s3://{dest_bucket}/{dest_prefix}"
    if version is not None:
        return _plan_s3_version(ctx, chosen, version, dest_bucket, dest_prefix, in_place=in_place)  # type: ignore[arg-type]
    when = at.astimezone(UTC)  # type: ignore[union-attr]
    steps: list[RestoreStep] = []
    if in_place:
        status = backend.versioning()
        if status != "Enabled":
            raise PolicyError.for_field(
                "into",
                f"another bucket or prefix: an in-place restore needs versioning on s3://{backend.bucket} "
                "so the current versions are kept",
                f"in place, versioning {status}",
            )
        preview = backend.restore_to_time(when, dry_run=True)
        steps.append(
            RestoreStep(
                StepAction.OVERWRITE,
                dest_url,
                f"restore {preview.restored} key(s) to their version at {when.isoformat()} and put "
                f"a delete marker on {preview.deleted} key(s) created since; {preview.skipped_total} unchanged",
                destructive=preview.restored + preview.deleted > 0,
                keeps=f"every earlier version stays in s3://{backend.bucket} (versioning is on)",
            )
        )
    else:
        preview = backend.restore_to_time(when, dest_bucket, dest_prefix, dry_run=True)
        occupied = backend.has_objects(dest_bucket, dest_prefix)
        if occupied:
            versioned = backend.versioning_of(dest_bucket)
            if versioned != "Enabled":
                raise PolicyError.for_field(
                    "into",
                    "an empty destination, or one with versioning on (so what is there is kept)",
                    f"{dest_url} (has objects, versioning {versioned})",
                )
        steps.append(
            RestoreStep(
                StepAction.OVERWRITE if occupied else StepAction.CREATE,
                dest_url,
                f"copy {preview.restored} key(s) as they were at {when.isoformat()} into {dest_url}",
                destructive=occupied,
                keeps=f"earlier versions stay in s3://{dest_bucket} (versioning is on)"
                if occupied
                else None,
            )
        )
    steps.append(
        RestoreStep(
            StepAction.VERIFY,
            dest_url,
            "dry-run the restore again: nothing may be left to do"
            if in_place
            else "list the destination: every restored key must be there",
        )
    )
    if ctx.probes:
        steps.append(RestoreStep(StepAction.VERIFY, dest_url, f"run {len(ctx.probes)} probe(s)"))
    return ctx.plan(
        source=f"manifest {chosen.id}"
        if chosen
        else f"the state of {backend.url} at {when.isoformat()}",
        destination=dest_url,
        in_place=in_place,
        steps=tuple(steps),
        data_time=when,
        point=chosen,
        at=when,
        options={
            "dest_bucket": dest_bucket,
            "dest_prefix": dest_prefix,
            "expected": preview.restored,
        },
    )


def _plan_s3_version(
    ctx: _Context,
    point: RecoveryPoint,
    version: tuple[str, str],
    dest_bucket: str,
    dest_prefix: str,
    *,
    in_place: bool,
) -> RestorePlan:
    backend: RestorableBucket = ctx.backend
    key, vid = version
    head = backend.object_head(backend.bucket, key, version_id=vid)
    size = int(head.get("ContentLength") or 0)
    if size > _MAX_COPY_OBJECT:
        raise PolicyError.for_field(
            "point",
            "an object version of at most 5 GiB (use at= for larger objects)",
            f"{point.id} ({size} bytes)",
        )
    dest_key = dest_prefix + key.removeprefix(backend.prefix) if not in_place else key
    occupied = backend.has_objects(dest_bucket, dest_key, exact=True)
    if occupied and backend.versioning_of(dest_bucket) != "Enabled":
        raise PolicyError.for_field(
            "into",
            "a destination with versioning on, or a key that does not exist yet",
            f"s3://{dest_bucket}/{dest_key} exists and versioning is off",
        )
    steps = [
        RestoreStep(
            StepAction.OVERWRITE if occupied else StepAction.CREATE,
            f"s3://{dest_bucket}/{dest_key}",
            f"copy version {vid} of {key} to s3://{dest_bucket}/{dest_key}",
            destructive=occupied,
            keeps="the current version stays as a noncurrent version" if occupied else None,
        ),
        RestoreStep(StepAction.VERIFY, f"s3://{dest_bucket}/{dest_key}", "compare ETag and size"),
    ]
    created = head.get("LastModified")
    return ctx.plan(
        source=f"version {vid} of {key}",
        destination=f"s3://{dest_bucket}/{dest_key}",
        in_place=in_place,
        steps=tuple(steps),
        data_time=created.astimezone(UTC) if isinstance(created, datetime) else point.created_at,
        point=point,
        options={
            "dest_bucket": dest_bucket,
            "dest_key": dest_key,
            "key": key,
            "version_id": vid,
            "etag": head.get("ETag"),
            "size": size,
        },
    )


# --------------------------------------------------------------------------------------------
# What is at the destination: recorded by the plan, looked at again right before acting


def _observe(plan: RestorePlan) -> dict[str, str]:
    """What is at *plan*'s destination now: resource -> its state in words.

    `plan_restore` records it in `RestorePlan.observed`; `restore` looks again right before it
    acts and compares (`_changes`). States of what this restore made itself end in ``MADE_BY_THIS_RESTORE``.
    """
    if isinstance(plan.backend, Restorable):
        return dict(plan.backend.observe_restore(plan))
    if isinstance(plan.backend, RestorableDatabase):
        return _observe_database(plan, plan.backend)
    if isinstance(plan.backend, RestorableVolumes):
        return _observe_volumes(plan, plan.backend)
    if isinstance(plan.backend, RestorableBucket):
        return _observe_s3(plan, plan.backend)
    return {}


def _changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """What changed from *before* to *after*, one line per resource (this restore's own work aside).

    Example:
        >>> _changes({"s3://b/p/": "1 object(s)"}, {"s3://b/p/": "2 object(s)", "x": "absent"})
        ["s3://b/p/: '1 object(s)' at planning, '2 object(s)' now"]
    """
    lines = []
    for name in sorted(set(before) | set(after)):
        then, now = before.get(name, ABSENT), after.get(name, ABSENT)
        if then != now and not now.endswith(MADE_BY_THIS_RESTORE):
            lines.append(f"{name}: {_short(then)!r} at planning, {_short(now)!r} now")
    return lines


def _observe_database(plan: RestorePlan, backend: RestorableDatabase) -> dict[str, str]:
    opts = plan.options
    region = str(opts["region"])
    names = [(str(opts["new_id"]), TAG_RESTORE_ID)]
    if opts["swap"]:
        names += [(str(backend.resource_id), TAG_RESTORE_ID), (str(opts["aside"]), TAG_MOVED_ASIDE)]
    seen = {}
    for rid, tag in names:
        item = backend.describe_database(rid, region)
        if item is None:
            seen[f"rds:{rid}"] = ABSENT
            continue
        identity = item.get("DbiResourceId") or item.get("DbClusterResourceId")
        created = item.get("InstanceCreateTime") or item.get("ClusterCreateTime")
        when = created.isoformat() if isinstance(created, datetime) else created
        ours = _tags(item).get(tag) == plan.token
        seen[f"rds:{rid}"] = f"database {identity} created {when}" + (
            MADE_BY_THIS_RESTORE if ours else ""
        )
    return seen


def _observe_volumes(plan: RestorePlan, backend: RestorableVolumes) -> dict[str, str]:
    iid = plan.options["attach_to"]
    if iid is None:  # new volumes only: what exists is found by the restore's tag
        return {}
    region = str(plan.options["region"])
    instance = backend.describe_instance(str(iid), region)
    if instance is None:
        return {f"ec2:{iid}": ABSENT}
    ours = set(_volumes_by_token(backend, plan.token, region).values())
    attached = _devices(instance)
    seen = {f"ec2:{iid}": "an instance"}
    for member in plan.options["members"]:
        device = str(member["device"])
        volume = attached.get(device)
        seen[f"ec2:{iid}:{device}"] = (
            "free"
            if volume is None
            else f"volume {volume}" + (MADE_BY_THIS_RESTORE if volume in ours else "")
        )
    return seen


def _observe_s3(plan: RestorePlan, backend: RestorableBucket) -> dict[str, str]:
    opts = plan.options
    bucket = str(opts["dest_bucket"])
    seen = {f"s3://{bucket} versioning": backend.versioning_of(bucket)}
    if "version_id" in opts:
        key = str(opts["dest_key"])
        try:
            head = backend.object_head(bucket, key)
        except ResourceNotFoundError:
            seen[f"s3://{bucket}/{key}"] = ABSENT
        else:
            seen[f"s3://{bucket}/{key}"] = (
                f"version {head.get('VersionId')}, ETag {head.get('ETag')}, "
                f"{head.get('ContentLength')} bytes"
            )
        return seen
    prefix = str(opts["dest_prefix"])
    internal = backend.internal_prefix if bucket == backend.bucket else None
    digest = hashlib.sha256()
    newest: list[tuple[str, str]] = []
    count = 0
    for item in backend.list_objects(bucket, prefix):
        key = str(item["Key"])
        if internal and key.startswith(internal):
            continue
        modified = item.get("LastModified")
        stamp = modified.isoformat() if isinstance(modified, datetime) else str(modified)
        digest.update(f"{key}\0{item.get('ETag')}\0{item.get('Size')}\0{stamp}\n".encode())
        count += 1
        heapq.heappush(newest, (stamp, key))
        if len(newest) > _NEWEST:
            heapq.heappop(newest)
    names = ", ".join(key for _, key in sorted(newest, reverse=True))
    seen[f"s3://{bucket}/{prefix}"] = (
        f"{count} object(s) (digest {digest.hexdigest()[:12]}; newest: {names})"
        if count
        else "no objects"
    )
    return seen


# --------------------------------------------------------------------------------------------
# Restoring


@attrs.frozen
class _Waiter:
    sleep: Callable[[float], None]
    interval: float
    timeout: float
    clock: Callable[[], float] = time.monotonic

    def until(
        self, what: str, check: Callable[[], str | None], *, backend: str, resource: str
    ) -> None:
        """Poll *check* (``None``: done, else the current state) until done or the timeout."""
        deadline = self.clock() + self.timeout
        while True:
            state = check()
            if state is None:
                return
            if state in {"failed", "error"} or state.startswith(("incompatible", "inaccessible")):
                raise BackendError(
                    f"{backend}: {what}: {resource} ended in state {state!r}",
                    backend=backend,
                    operation=what,
                    resource=resource,
                    code=state,
                )
            if self.clock() >= deadline:
                raise BackendError(
                    f"{backend}: {what}: {resource} still {state!r} after {self.timeout:g} s",
                    backend=backend,
                    operation=what,
                    resource=resource,
                    code="Timeout",
                )
            self.sleep(self.interval)


def restore(
    plan: RestorePlan,
    *,
    confirm: bool = False,
    log: RestoreLog | None = None,
    sleep: Callable[[float], None] = time.sleep,
    poll_interval: float = 15.0,
    timeout: float = 3600.0,
    ran_by: str = "",
) -> RestoreResult:
    """Carry out *plan*, verify the restored resource and record the result in *log*.

    Args:
        plan: A plan from `plan_restore`.
        confirm: Allow the plan's destructive steps; without it a destructive plan is refused
            before anything changes.
        log: Where the result goes (``log.record(check_result)``), e.g. the testing log.
        sleep: Waits between polls (inject a no-op in tests).
        poll_interval: Seconds between polls of a database or volumes.
        timeout: Seconds to wait for each of them.
        ran_by: Who runs the restore (recorded in the log).

    Returns:
        The `RestoreResult`; ``result.ok`` is false when a verification failed.

    Raises:
        PolicyError: The plan is destructive, or its destination changed since the plan, and
            *confirm* is not true; or a resource under a name of the plan was not made by this
            restore, or what is at the destination could not be kept (nothing was changed).
        BackendError: A call failed; what was created so far is tagged with the plan's token,
            so re-running the same plan (``token=plan.token``) adopts it.
    """
    # Immediately before acting: is the destination still what the plan saw?
    changed = _changes(plan.observed, _observe(plan))
    if (plan.destructive or changed) and confirm is not True:
        names = "; ".join(s.description for s in plan.steps if s.destructive)
        more = f" (and {len(changed) - _LISTED} more)" if len(changed) > _LISTED else ""
        raise PolicyError.for_field(
            "confirm",
            "True to restore into a destination that changed since the plan"
            if changed
            else "True to run the destructive steps of this restore",
            confirm,
            hint=(
                f"Changed since the plan: {'; '.join(changed[:_LISTED])}{more}. " if changed else ""
            )
            + (f"Destructive: {names}. " if names else "")
            + "The previous state is always kept: review plan.summary() (or plan again), then "
            "call restore(plan, confirm=True) (CLI: --yes). Nothing was changed.",
        )
    started_at = _now()
    started = time.monotonic()
    waiter = _Waiter(sleep=sleep, interval=poll_interval, timeout=timeout)
    if isinstance(plan.backend, Restorable):
        outcome = _outcome_of(plan, plan.backend.execute_restore(plan, confirm=confirm))
    else:
        outcome = _runner(plan)(plan, waiter)
    checks = list(outcome.checks)
    checks += [
        run_check(
            probe, outcome.endpoint, target=plan.target, backend=plan.backend, point=plan.point
        )
        for probe in plan.probes
    ]
    result = RestoreResult(
        plan=plan,
        resource=outcome.resource,
        endpoint=outcome.endpoint,
        kept=tuple(outcome.kept),
        checks=tuple(checks),
        started_at=started_at,
        duration=time.monotonic() - started,
        details=outcome.details,
    )
    if log is not None:
        log.record(result.to_check(ran_by=ran_by))
    return result


def _runner(plan: RestorePlan) -> Callable[[RestorePlan, _Waiter], _Outcome]:
    """The function that carries out *plan*, chosen by what its target can do."""
    if isinstance(plan.backend, RestorableDatabase):
        return _run_database
    if isinstance(plan.backend, RestorableVolumes):
        return _run_volumes
    if isinstance(plan.backend, RestorableBucket):
        return _run_s3
    raise PolicyError.for_field(
        "plan.backend", "a target that can restore (a Restorable target)", plan.kind
    )


def _outcome_of(plan: RestorePlan, done: RestoreOutcome) -> _Outcome:
    """What a `Restorable` target's restore did, its checks as the plan's check results."""
    checks = [
        _check(plan, check.name, ok=check.ok, details=check.details, **check.evidence)
        for check in done.checks
    ]
    return _Outcome(done.resource, done.endpoint, list(done.kept), checks, dict(done.details))


@attrs.frozen
class _Outcome:
    resource: str
    endpoint: str | None
    kept: list[str]
    checks: list[CheckResult]
    details: dict[str, Any] = attrs.Factory(dict)


def _check(plan: RestorePlan, name: str, *, ok: bool, details: str, **evidence: Any) -> CheckResult:
    return CheckResult(
        check=name,
        status=CheckStatus.PASS if ok else CheckStatus.FAIL,
        target=plan.target,
        checked_at=_now(),
        point_id=plan.point.id if plan.point else None,
        kind=CheckKind.RESTORE_TEST,
        application=plan.application,
        details=details,
        issues=_issues() if ok else _issues(details),
        evidence=evidence,
    )


# -- databases ----------------------------------------------------------------------------


def _db_state(backend: RestorableDatabase, rid: str, region: str) -> Callable[[], str | None]:
    def state() -> str | None:
        item = backend.describe_database(rid, region)
        status = str((backend.database_status(item) if item else None) or "missing").lower()
        return None if status == "available" else status

    return state


def _run_database(plan: RestorePlan, waiter: _Waiter) -> _Outcome:
    backend = plan.backend
    assert isinstance(backend, RestorableDatabase)  # noqa: S101 - dispatched on it
    opts = plan.options
    new_id, aside, region = str(opts["new_id"]), str(opts["aside"]), str(opts["region"])
    original = str(backend.resource_id)
    marker = {
        TAG_RESTORE_ID: plan.token,
        TAG_RESTORED_FROM: _safe_tag(plan.point.id if plan.point else plan.data_time.isoformat()),
    }
    # Right before acting (and before adopting anything): every name this restore uses holds
    # nothing, or what this restore made. A foreign database is never adopted, nor swapped in.
    found = backend.describe_database(new_id, region)
    _refuse_foreign(plan, found, new_id, TAG_RESTORE_ID)
    done_swap = False
    if opts["swap"]:
        current = backend.describe_database(original, region)
        done_swap = current is not None and _tags(current).get(TAG_RESTORE_ID) == plan.token
        _refuse_foreign(plan, backend.describe_database(aside, region), aside, TAG_MOVED_ASIDE)
    if not done_swap and found is None:
        backend.restore_database(
            new_id,
            region=region,
            point=plan.point,
            at=plan.at,
            settings=plan.options["settings"],
            tags=marker,
        )
    kept: list[str] = []
    if opts["swap"] and not done_swap:
        waiter.until(
            "restore", _db_state(backend, new_id, region), backend=plan.target, resource=new_id
        )
        if backend.describe_database(aside, region) is None:
            current = backend.describe_database(original, region) or {}
            arn = current.get("DBInstanceArn") or current.get("DBClusterArn")
            if arn:  # so that a resumed run knows the renamed database as the one it moved
                backend.tag_database(
                    original, str(arn), {TAG_MOVED_ASIDE: plan.token}, region=region
                )
            backend.rename_database(original, aside, region=region)
        waiter.until(
            "rename", _db_state(backend, aside, region), backend=plan.target, resource=aside
        )
        backend.rename_database(new_id, original, region=region)
    final = original if opts["swap"] else new_id
    if opts["swap"]:
        kept.append(f"rds:{aside}")
    waiter.until("restore", _db_state(backend, final, region), backend=plan.target, resource=final)
    item = backend.describe_database(final, region) or {}
    endpoint = item.get("Endpoint")
    if isinstance(endpoint, Mapping):
        address: str | None = f"{endpoint.get('Address')}:{endpoint.get('Port')}"
    elif endpoint:
        address = f"{endpoint}:{item.get('Port')}"
    else:
        address = None
    status = str(backend.database_status(item) or "").lower()
    checks = [
        _check(
            plan,
            "available",
            ok=status == "available",
            details=f"DB {final} is {status or 'missing'}",
            status=status,
        )
    ]
    return _Outcome(
        final,
        address,
        kept,
        checks,
        {"region": region, "arn": item.get("DBInstanceArn") or item.get("DBClusterArn")},
    )


def _refuse_foreign(plan: RestorePlan, item: Mapping[str, Any] | None, rid: str, tag: str) -> None:
    """Refuse when the database *rid* exists and does not carry *tag* with this plan's token."""
    if item is None:
        return
    value = _tags(item).get(tag)
    if value == plan.token:
        return
    what = "moved aside" if tag == TAG_MOVED_ASIDE else "made"
    raise PolicyError.for_field(
        "plan",
        f"rds:{rid} {what} by this restore (tag {tag}={plan.token})",
        f"rds:{rid} exists with "
        + (f"{tag}={_short(value)}" if value is not None else f"no {tag} tag"),
        hint=f"It was not {what} by this restore and is left alone: choose another name (into=) "
        "or remove it. Nothing was changed.",
    )


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= _QUOTE else text[: _QUOTE - 3] + "..."


def _safe_tag(value: str) -> str:
    return re.sub(r"[^\w .:/=+\-@]", "-", value)[:256]


# -- volumes --------------------------------------------------------------------------------


def _volumes_by_token(backend: RestorableVolumes, token: str, region: str) -> dict[str, str]:
    """Volumes this restore created earlier: source snapshot id -> volume id."""
    result: dict[str, str] = {}
    for volume in backend.volumes_tagged(TAG_RESTORE_ID, token, region=region):
        tags = {t["Key"]: t["Value"] for t in volume.get("Tags") or []}
        if TAG_RESTORED_FROM in tags:
            result[tags[TAG_RESTORED_FROM]] = str(volume["VolumeId"])
    return result


def _volume_states(
    backend: RestorableVolumes, ids: list[str], region: str, wanted: set[str]
) -> Callable[[], str | None]:
    def state() -> str | None:
        states = backend.volume_states(ids, region=region)
        bad = [s for s in states.values() if s not in wanted]
        if any(s == "error" for s in bad):
            return "error"
        return bad[0] if bad else None

    return state


def _instance_state(
    backend: RestorableVolumes, iid: str, region: str, wanted: str
) -> Callable[[], str | None]:
    def state() -> str | None:
        item = backend.describe_instance(iid, region) or {}
        name = str(item.get("State", {}).get("Name", "missing"))
        return None if name == wanted else name

    return state


def _run_volumes(plan: RestorePlan, waiter: _Waiter) -> _Outcome:  # noqa: C901 - create, detach, attach, restart
    backend = plan.backend
    assert isinstance(backend, RestorableVolumes)  # noqa: S101 - dispatched on it
    opts = plan.options
    region = str(opts["region"])
    zone = opts["zone"] or backend.first_zone(region)
    existing = _volumes_by_token(backend, plan.token, region)
    volumes: dict[str, str] = {}
    for member in opts["members"]:
        snapshot_id = str(member["snapshot_id"])
        volume_id = existing.get(snapshot_id)
        if volume_id is None:
            tags = {
                "Name": f"{plan.target}-restored-{plan.stamp}",
                TAG_RESTORE_ID: plan.token,
                TAG_RESTORED_FROM: snapshot_id,
            }
            volume_id = backend.create_volume_from(
                snapshot_id,
                zone=zone,
                region=region,
                client_token=f"{plan.token}-{snapshot_id}"[:64],
                tags=tags,
            )
        volumes[snapshot_id] = volume_id
    ids = list(volumes.values())
    iid = opts["attach_to"]
    waiter.until(
        "restore",
        _volume_states(backend, ids, region, {"available", "in-use"}),
        backend=plan.target,
        resource=",".join(ids),
    )
    kept: list[str] = []
    if iid is not None:
        # Decided now, not at planning: a volume at one of the devices is detached and kept.
        live = backend.describe_instance(iid, region) or {}
        targeted = {str(m["device"]) for m in opts["members"]}
        replaced = {  # what the plan saw (a resumed run may have detached it already) and what is there
            **{d: v for d, v in dict(opts["replaced"]).items() if v not in ids},
            **{d: v for d, v in _devices(live).items() if d in targeted and v not in ids},
        }
        if replaced:
            backend.stop_instance(iid, region=region)
            waiter.until(
                "stop",
                _instance_state(backend, iid, region, "stopped"),
                backend=plan.target,
                resource=iid,
            )
            for device, old in sorted(replaced.items()):
                if old in ids:
                    continue
                instance = backend.describe_instance(iid, region) or {}
                attached = {
                    str(m.get("Ebs", {}).get("VolumeId"))
                    for m in instance.get("BlockDeviceMappings") or []
                }
                if old in attached:
                    backend.detach_volume(old, iid, device, region=region)
                kept.append(f"ebs:{old}")
            waiter.until(
                "detach",
                _volume_states(
                    backend, [v for v in replaced.values() if v not in ids], region, {"available"}
                ),
                backend=plan.target,
                resource=iid,
            )
        instance = backend.describe_instance(iid, region) or {}
        attached = {
            str(m.get("Ebs", {}).get("VolumeId")) for m in instance.get("BlockDeviceMappings") or []
        }
        for member in opts["members"]:
            volume_id = volumes[str(member["snapshot_id"])]
            if volume_id not in attached:
                backend.attach_volume(volume_id, iid, str(member["device"]), region=region)
        waiter.until(
            "attach",
            _volume_states(backend, ids, region, {"in-use"}),
            backend=plan.target,
            resource=iid,
        )
        if replaced and (
            opts["was_running"] or live.get("State", {}).get("Name") in {"running", "pending"}
        ):
            backend.start_instance(iid, region=region)
            waiter.until(
                "start",
                _instance_state(backend, iid, region, "running"),
                backend=plan.target,
                resource=iid,
            )
    states = backend.volume_states(ids, region=region)
    wanted = "in-use" if iid is not None else "available"
    ok = all(states.get(v) == wanted for v in ids)
    checks = [
        _check(
            plan,
            "volumes",
            ok=ok,
            details=f"{len(ids)} volume(s) {wanted}" if ok else f"volume states {states}",
            states=states,
        )
    ]
    devices = {str(m.get("device")): volumes[str(m["snapshot_id"])] for m in opts["members"]}
    return _Outcome(
        ",".join(ids),
        iid,
        kept,
        checks,
        {"region": region, "zone": zone, "volumes": volumes, "devices": devices},
    )


def _devices(instance: Mapping[str, Any]) -> dict[str, str]:
    """Device name -> volume id of the volumes attached to *instance* (a described instance)."""
    return {
        str(m["DeviceName"]): str(m.get("Ebs", {}).get("VolumeId"))
        for m in instance.get("BlockDeviceMappings") or []
        if m.get("DeviceName")
    }


# -- S3 -------------------------------------------------------------------------------------


def _run_s3(plan: RestorePlan, waiter: _Waiter) -> _Outcome:  # noqa: ARG001 - same shape as the others
    backend = plan.backend
    assert isinstance(backend, RestorableBucket)  # noqa: S101 - dispatched on it
    opts = plan.options
    if "version_id" in opts:
        return _run_s3_version(plan, backend)
    bucket, prefix = str(opts["dest_bucket"]), str(opts["dest_prefix"])
    when = plan.at
    assert when is not None  # noqa: S101 - planned with a time
    if plan.in_place:
        if backend.versioning() != "Enabled":  # re-checked: someone may have suspended it since
            raise PolicyError.for_field(
                "into", "a bucket with versioning on for an in-place restore", "versioning off"
            )
        report = backend.restore_to_time(when)
        again = backend.restore_to_time(when, dry_run=True)
        ok = again.restored == 0 and again.deleted == 0
        checks = [
            _check(
                plan,
                "s3-state",
                ok=ok,
                details=f"the prefix matches its state at {when.isoformat()}"
                if ok
                else f"{again.restored} key(s) still differ and {again.deleted} key(s) still exist after the restore",
                restored=report.restored,
                deleted=report.deleted,
            )
        ]
    else:
        _refuse_unkept(backend, bucket, prefix, exact=False)
        report = backend.restore_to_time(when, bucket, prefix)
        keys = backend.count_keys(bucket, prefix)
        ok = keys >= report.restored
        checks = [
            _check(
                plan,
                "s3-objects",
                ok=ok,
                details=f"{keys} key(s) at the destination, {report.restored} restored",
                keys=keys,
                restored=report.restored,
            )
        ]
    details = {
        "restored": report.restored,
        "deleted": report.deleted,
        "skipped": dict(report.skipped),
        "bytes": report.bytes_copied,
        "requests": dict(report.requests),
    }
    url = f"s3://{bucket}/{prefix}"
    return _Outcome(url, url, [], checks, details)


def _run_s3_version(plan: RestorePlan, backend: RestorableBucket) -> _Outcome:
    opts = plan.options
    bucket, key = str(opts["dest_bucket"]), str(opts["dest_key"])
    _refuse_unkept(backend, bucket, key, exact=True)
    backend.copy_object_version(str(opts["key"]), str(opts["version_id"]), bucket, key)
    head = backend.object_head(bucket, key)
    ok = head.get("ETag") == opts["etag"] and int(head.get("ContentLength") or 0) == opts["size"]
    checks = [
        _check(
            plan,
            "s3-object",
            ok=ok,
            details=f"ETag {head.get('ETag')} and size {head.get('ContentLength')} (expected {opts['etag']}, {opts['size']})",
            etag=head.get("ETag"),
        )
    ]
    url = f"s3://{bucket}/{key}"
    return _Outcome(url, url, [], checks, {"version_id": head.get("VersionId")})


def _refuse_unkept(backend: RestorableBucket, bucket: str, prefix: str, *, exact: bool) -> None:
    """Refuse to write where objects are now and versioning would not keep them."""
    if backend.has_objects(bucket, prefix, exact=exact):
        status = backend.versioning_of(bucket)
        if status != "Enabled":
            raise PolicyError.for_field(
                "into",
                "an empty destination, or one with versioning on (so what is there is kept)",
                f"s3://{bucket}/{prefix} (has objects, versioning {status})",
                hint="Nothing was changed.",
            )
