"""Database restores (RDS instances, Aurora clusters): plan, observe the destination, execute.

Reaches the target through `backuppolicy.core.targets.RestorableDatabase`; a new database from a
snapshot or a point in time, with ``swap`` the original renamed aside (kept) and the new one
renamed into its place. Private: `backuppolicy.workflows._restore` dispatches to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from backuppolicy.core.capabilities import (
    TAG_RESTORE_ID,
    RestorableDatabase,
)
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.restoring import (
    ABSENT,
    MADE_BY_THIS_RESTORE,
    RestorePlan,
    RestoreStep,
    StepAction,
    choose_point,
    stamp_of,
)
from backuppolicy.workflows._restore_common import (
    TAG_RESTORED_FROM,
    Context,
    Outcome,
    Waiter,
    make_check,
    point_region,
    short,
)

if TYPE_CHECKING:
    import os

TAG_MOVED_ASIDE = "backuppolicy:moved-aside-by"
"""Tag a restore puts on a database before renaming it aside: the plan's token (resumes know it)."""


def _tags(item: Mapping[str, Any] | None) -> dict[str, str]:
    if not item:
        return {}
    return {
        str(t.get("Key")): str(t.get("Value"))
        for t in item.get("TagList") or item.get("Tags") or []
    }


def plan_database(
    ctx: Context,
    point: RecoveryPoint | str | None,
    at: datetime | None,
    into: str | os.PathLike[str] | None,
    options: dict[str, Any],
) -> RestorePlan:
    backend: RestorableDatabase = ctx.backend
    original = str(backend.resource_id)
    chosen = None if at is not None else choose_point(backend, point, before=None)
    region = point_region(chosen, str(backend.region))
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


def observe_database(plan: RestorePlan, backend: RestorableDatabase) -> dict[str, str]:
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


def _db_state(backend: RestorableDatabase, rid: str, region: str) -> Callable[[], str | None]:
    def state() -> str | None:
        item = backend.describe_database(rid, region)
        status = str((backend.database_status(item) if item else None) or "missing").lower()
        return None if status == "available" else status

    return state


def run_database(plan: RestorePlan, waiter: Waiter) -> Outcome:
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
        make_check(
            plan,
            "available",
            ok=status == "available",
            details=f"DB {final} is {status or 'missing'}",
            status=status,
        )
    ]
    return Outcome(
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
        + (f"{tag}={short(value)}" if value is not None else f"no {tag} tag"),
        hint=f"It was not {what} by this restore and is left alone: choose another name (into=) "
        "or remove it. Nothing was changed.",
    )


def _safe_tag(value: str) -> str:
    return re.sub(r"[^\w .:/=+\-@]", "-", value)[:256]
