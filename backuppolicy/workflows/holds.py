"""Legal holds: place, release and list them on the points of a policy's targets."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from backuppolicy.core.exceptions import PolicyError, ResourceNotFoundError
from backuppolicy.core.locks import HoldEnforcing, PointLock
from backuppolicy.core.model import LegalHold, RecoveryPoint, ensure_aware
from backuppolicy.core.policy import Policy
from backuppolicy.core.targets import BackupTarget
from backuppolicy.workflows._assemble import build_targets
from backuppolicy.workflows.pruning import tier_retention

__all__ = ["holds", "place_hold", "release_hold"]


# --------------------------------------------------------------------------------------------
# Legal holds


def _target_of(
    policy: Policy, point: RecoveryPoint, targets: Mapping[str, BackupTarget] | None
) -> Any:
    built = targets if targets is not None else build_targets(policy, only=[point.target])
    return built[point.target]


def _find_point(
    policy: Policy, point: RecoveryPoint | str, targets: Mapping[str, BackupTarget] | None
) -> tuple[RecoveryPoint, Mapping[str, BackupTarget] | None]:
    """*point* itself, or the point of *policy*'s targets whose id is *point*."""
    if isinstance(point, RecoveryPoint):
        return point, targets
    if not isinstance(point, str) or not point:
        raise PolicyError.for_field("point", "a RecoveryPoint or a point id", point)
    built = targets if targets is not None else build_targets(policy)
    seen: list[str] = []
    for target in built.values():
        for candidate in target.list_points():
            if candidate.id == point:
                return candidate, built
            seen.append(candidate.id)
    close = difflib.get_close_matches(point, seen, n=3, cutoff=0.8)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    message = (
        f"point: no recovery point with id {point!r} in the targets of policy "
        f"{policy.name!r} ({len(seen)} points listed){hint}"
    )
    raise ResourceNotFoundError(
        message, backend=policy.name, operation="list_points", resource=point
    )


def place_hold(
    policy: Policy,
    point: RecoveryPoint | str,
    *,
    reason: str,
    reference: str = "",
    now: datetime | None = None,
    targets: Mapping[str, BackupTarget] | None = None,
) -> RecoveryPoint:
    """Put *point* under legal hold (seed §2.2, §2.3): it is never deleted until released.

    The hold is recorded on the point itself (a tag, or an S3 Object Lock legal hold), so every
    tool that reads the point sees it. On archive stores a hold and a delete of the same point
    never interleave (a file lock on a directory, conditional writes on S3).

    *point* is a `RecoveryPoint` or its id (as ``backuppolicy list`` prints it); an id is looked
    up in the points of every target of *policy*.

    .. versionchanged:: 0.2
       *point* may be a point id.

    Raises:
        ResourceNotFoundError: The point does not exist (any more), or no target of the policy
            has a point with that id (the message names it, with close ids): nothing is held.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise PolicyError.for_field("reason", "a non-empty reason for the hold", reason)
    point, targets = _find_point(policy, point, targets)
    since = ensure_aware(now, field="now") if now is not None else datetime.now(UTC)
    hold = LegalHold(reason=reason, reference=reference, since=since)
    target = _target_of(policy, point, targets)
    result: RecoveryPoint = target.place_hold(point, hold)
    if isinstance(target, HoldEnforcing):
        # Below the library too: an Object Lock legal hold, a governance snapshot lock, an AWS
        # Backup legal hold. The tag is placed first, so a failure here still leaves it held.
        result = target.enforce_hold(result)
    return result


def release_hold(
    policy: Policy,
    point: RecoveryPoint | str,
    *,
    targets: Mapping[str, BackupTarget] | None = None,
) -> RecoveryPoint:
    """Release the legal hold on *point* (a point or its id); retention may delete it again.

    What enforced the hold below the library is lifted first (the tier's own lock, if the
    point's tier has one and it has not expired, is put back), then the hold's tag.

    Raises:
        ResourceNotFoundError: No target of the policy has a point with that id.
    """
    point, targets = _find_point(policy, point, targets)
    target = _target_of(policy, point, targets)
    if isinstance(target, HoldEnforcing):
        fresh: RecoveryPoint = target.refresh(point) or point  # type: ignore[attr-defined]
        target.release_enforcement(fresh, _tier_lock(policy, fresh))
    result: RecoveryPoint = target.release_hold(point)
    return result


def _tier_lock(policy: Policy, point: RecoveryPoint) -> PointLock | None:
    """The lock the point's tier puts on it (from its creation), if the tier has one."""
    for tier in policy.tiers:
        if tier.name == point.tier and tier.lock is not None:
            spec = next((t for t in policy.targets if t.name == point.target), None)
            rule = (
                tier_retention(policy, spec, tier.name)
                if spec is not None
                else tier.retention or policy.retention
            )
            return tier.lock.point_lock(rule, point.created_at)
    return None


def holds(
    policy: Policy, *, targets: Mapping[str, BackupTarget] | None = None
) -> list[RecoveryPoint]:
    """Every point of *policy*'s targets that is under legal hold."""
    built = targets if targets is not None else build_targets(policy)
    return [p for target in built.values() for p in target.list_points() if p.held]
