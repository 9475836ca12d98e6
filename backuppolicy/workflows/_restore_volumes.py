"""Volume restores (EC2 instances, EBS volumes): plan, observe the destination, execute.

Reaches the target through `backuppolicy.core.targets.RestorableVolumes`; a new volume from each
snapshot, with ``attach_to`` attached at the original devices (a volume already there is
detached and kept). Private: `backuppolicy.workflows._restore` dispatches to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from backuppolicy.core.capabilities import (
    TAG_RESTORE_ID,
    RestorableVolumes,
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
)
from backuppolicy.workflows._restore_common import (
    TAG_RESTORED_FROM,
    Context,
    Outcome,
    Waiter,
    make_check,
    point_region,
)

if TYPE_CHECKING:
    import os

_DEVICE_LETTERS = "fghijklmnop"


def plan_volumes(  # noqa: C901 - one branch per device case
    ctx: Context,
    point: RecoveryPoint | str | None,
    into: str | os.PathLike[str] | None,
    options: dict[str, Any],
) -> RestorePlan:
    backend: RestorableVolumes = ctx.backend
    if into is not None:
        raise PolicyError.for_field(
            "into", "None for volumes (use attach_to= and availability_zone=)", into
        )
    chosen = choose_point(backend, point, before=None)
    region = point_region(chosen, str(backend.region))
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


def observe_volumes(plan: RestorePlan, backend: RestorableVolumes) -> dict[str, str]:
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


def run_volumes(plan: RestorePlan, waiter: Waiter) -> Outcome:  # noqa: C901 - create, detach, attach, restart
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
        make_check(
            plan,
            "volumes",
            ok=ok,
            details=f"{len(ids)} volume(s) {wanted}" if ok else f"volume states {states}",
            states=states,
        )
    ]
    devices = {str(m.get("device")): volumes[str(m["snapshot_id"])] for m in opts["members"]}
    return Outcome(
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
