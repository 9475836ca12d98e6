"""Retention across a policy: plan it (pure, explained), then apply it (re-checking every point).

`plan_retention` lists every target and plans each tier with its own rule; nothing is deleted.
`apply` deletes what a plan says, re-reading each point right before its deletion and enforcing
the floors there: the newest completed point of each (target, tier), held, pending and
unmanaged points are never deleted, whatever plan it is handed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import attrs

from backuppolicy.core.capabilities import AdaptiveDeletes
from backuppolicy.core.concurrency import DEFAULT_CAP, AdaptiveLimit
from backuppolicy.core.exceptions import (
    BackupPolicyError,
    PolicyError,
    ProtectedPointError,
    ResourceNotFoundError,
    short_repr,
)
from backuppolicy.core.model import RecoveryPoint, Status, ensure_aware
from backuppolicy.core.policy import Policy, TargetSpec
from backuppolicy.core.retention import RetentionPlan, RetentionRule
from backuppolicy.core.targets import BackupTarget
from backuppolicy.workflows._assemble import build_targets, run_specs, select_specs, source_tier_of
from backuppolicy.workflows._common import (
    Progress,
    describe_error,
    html_table,
    newest_point,
    text_table,
)

__all__ = [
    "ApplyReport",
    "DeleteOutcome",
    "apply",
    "defer_locked",
    "plan_retention",
    "tier_retention",
]

_log = logging.getLogger("backuppolicy")


# --------------------------------------------------------------------------------------------
# Retention: plan, then apply


def _rule_for(policy: Policy, spec: TargetSpec, tier: str) -> RetentionRule:
    if spec.retention is not None:
        return spec.retention
    for tier_spec in policy.tiers:
        if tier_spec.name == tier and tier_spec.retention is not None:
            return tier_spec.retention
    return policy.retention


def tier_retention(policy: Policy, spec: TargetSpec, tier: str) -> RetentionRule:
    """The rule that prunes *tier* of *spec*: the target's own, else the tier's, else the policy's."""
    return _rule_for(policy, spec, tier)


def plan_retention(
    policy: Policy,
    *,
    now: datetime,
    targets: Mapping[str, BackupTarget] | None = None,
    only: Iterable[str] | None = None,
    progress: Progress | None = None,
    listed: Mapping[str, Iterable[RecoveryPoint]] | None = None,
) -> RetentionPlan:
    """Plan retention across every target and tier; nothing is deleted here.

    Each tier of each target is planned with its own rule (the target's override, else the
    tier's, else the policy's). A target whose listing fails (even on a late page) contributes
    nothing to the plan, so nothing of it can be deleted; the error is in ``plan.errors``.
    Versions of S3 buckets are planned per key (the current version is always kept).

    *listed* saves listing again what was just listed: the points of some targets by name (for
    example, listed once after the day's backups and shared with `integrity_due`); the other
    targets are listed here. A stale listing is safe: `apply` re-reads every point and the
    newest of each tier before deleting anything.

    Returns:
        One `RetentionPlan` for all targets; pass it to `apply`.

    .. versionchanged:: 0.2
       *listed*.
    """
    ensure_aware(now, field="now")
    specs = select_specs(policy, only)
    built = targets if targets is not None else build_targets(policy, only=[s.name for s in specs])
    specs = run_specs(specs, built)
    plans: list[RetentionPlan] = []
    errors: dict[str, str] = {}
    for done, spec in enumerate(specs, start=1):
        target = built[spec.name]
        try:
            # Combined per target first: a target whose listing repeats an id fails alone.
            points = listed.get(spec.name) if listed is not None else None
            plans.append(
                RetentionPlan.combine(
                    _plan_target(policy, spec, target, now, points) or [_empty(now)]
                )
            )
        except Exception as exc:  # noqa: BLE001 - a failed listing deletes nothing of that target
            errors[spec.name] = f"{type(exc).__name__}: {exc}"
            _log.error(
                "retention plan of %s failed, nothing of it will be deleted: %s", spec.name, exc
            )
        if progress is not None:
            progress("plan", done, len(specs))
    combined = RetentionPlan.combine([_empty(now), *plans])
    return attrs.evolve(combined, targets=dict(built), errors=errors)


def _empty(now: datetime) -> RetentionPlan:
    return RetentionPlan(keep=[], delete=[], reasons={}, now=now)


def _plan_target(
    policy: Policy,
    spec: TargetSpec,
    target: BackupTarget,
    now: datetime,
    points: Iterable[RecoveryPoint] | None = None,
) -> list[RetentionPlan]:
    by_tier: dict[str, list[RecoveryPoint]] = defaultdict(list)
    versions: list[RecoveryPoint] = []
    for point in target.list_points() if points is None else points:
        if point.kind == "s3-version":
            versions.append(point)
        else:
            by_tier[point.tier].append(point)
    plans = [
        defer_locked(_rule_for(policy, spec, tier).plan(points, now=now, tz=policy.timezone))
        for tier, points in sorted(by_tier.items())
    ]
    if versions:
        planner = getattr(target, "noncurrent_retention_plan", None)
        if planner is None:  # pragma: no cover - only S3 buckets list versions
            raise PolicyError(f"target {spec.name!r} lists object versions but cannot plan them")
        rule = _rule_for(policy, spec, source_tier_of(policy, spec))
        plans.extend(
            defer_locked(
                RetentionPlan(
                    keep=list(key_plan.keep),
                    delete=list(key_plan.delete),
                    reasons={k: list(v) for k, v in key_plan.reasons.items()},
                    now=now,
                )
            )
            for key_plan in planner(rule, now=now)
        )
    return plans


def defer_locked(plan: RetentionPlan) -> RetentionPlan:
    """Move every planned deletion whose lock is still active at ``plan.now`` to ``keep``.

    Nobody can delete a locked point early (S3 Object Lock retention, an EBS snapshot lock, an
    AWS Backup legal hold), so it is not tried: the point is kept with the reason
    ``"locked (compliance) until 2027-01-10; deletes then"``, and the first plan made after
    that day deletes it (if the rule still says so).
    """
    deferred = [p for p in plan.delete if p.lock is not None and p.lock.active(plan.now)]
    if not deferred:
        return plan
    reasons = {k: list(v) for k, v in plan.reasons.items()}
    for point in deferred:
        assert point.lock is not None  # noqa: S101 - filtered above
        when = "deletes then" if point.lock.until is not None else "deletes once released"
        reasons[point.id] = [*reasons.get(point.id, []), f"{point.lock.describe()}; {when}"]
    gone = {id(p) for p in deferred}
    return attrs.evolve(
        plan,
        keep=[*plan.keep, *deferred],
        delete=[p for p in plan.delete if id(p) not in gone],
        reasons=reasons,
    )


@attrs.frozen
class DeleteOutcome:
    """What `apply` did with one point of the plan's ``delete`` list.

    Attributes:
        point: The planned point.
        action: ``"deleted"``, ``"skipped"``, ``"failed"`` or ``"would delete"`` (dry run).
        reason: Why (for skips and failures), e.g. ``"now under legal hold: case-17"``.
    """

    point: RecoveryPoint
    action: str
    reason: str = ""


@attrs.frozen
class ApplyReport:
    """The result of `apply`.

    Attributes:
        outcomes: One `DeleteOutcome` per planned deletion.
        dry_run: Whether nothing was deleted on purpose.
    """

    outcomes: tuple[DeleteOutcome, ...]
    dry_run: bool = False

    def _of(self, action: str) -> list[RecoveryPoint]:
        return [o.point for o in self.outcomes if o.action == action]

    @property
    def deleted(self) -> list[RecoveryPoint]:
        """Points deleted."""
        return self._of("deleted")

    @property
    def skipped(self) -> list[DeleteOutcome]:
        """Planned deletions skipped by the re-check, with the reason."""
        return [o for o in self.outcomes if o.action == "skipped"]

    @property
    def failed(self) -> list[DeleteOutcome]:
        """Deletions that failed, with the error."""
        return [o for o in self.outcomes if o.action == "failed"]

    @property
    def ok(self) -> bool:
        """Whether no deletion failed."""
        return not self.failed

    def __repr__(self) -> str:
        return (
            f"<backuppolicy.ApplyReport(deleted={len(self.deleted)}, skipped={len(self.skipped)}, "
            f"failed={len(self.failed)}, dry_run={self.dry_run})>"
        )

    _HEADERS = ("target", "tier", "point", "created", "action", "reason")

    def _rows(self) -> list[list[str]]:
        return [
            [
                o.point.target,
                o.point.tier,
                o.point.id,
                o.point.created_at.isoformat(),
                o.action,
                o.reason,
            ]
            for o in self.outcomes
        ]

    def summary(self) -> str:
        """A text table of every outcome."""
        return f"{self!r}\n{text_table(self._HEADERS, self._rows())}"

    def _repr_html_(self) -> str:
        return html_table(repr(self), self._HEADERS, self._rows(), self.summary())

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "outcomes": [
                {
                    "target": o.point.target,
                    "tier": o.point.tier,
                    "id": o.point.id,
                    "created_at": o.point.created_at.isoformat(),
                    "action": o.action,
                    "reason": o.reason,
                }
                for o in self.outcomes
            ],
        }


def _recheck(fresh: RecoveryPoint | None, planned: RecoveryPoint) -> str | None:
    """Why *planned* must not be deleted after all (``None``: go ahead)."""
    if fresh is None:
        return "no longer exists"
    if fresh.legal_hold is not None:
        return f"now under {fresh.legal_hold.describe()}"
    if not fresh.managed:
        return "not managed by backuppolicy"
    if fresh.status is Status.PENDING:
        return "pending"
    if fresh.created_at != planned.created_at:
        return "changed since the plan was made"
    return _still_locked(fresh, planned) or _not_as_planned(fresh, planned)


def _still_locked(fresh: RecoveryPoint, planned: RecoveryPoint) -> str | None:
    """Why a lock forbids deleting the point now (the backend's, or the plan's own record)."""
    for lock in (fresh.lock, planned.lock):
        if lock is not None and lock.active(datetime.now(UTC)):
            return f"{lock.describe()}: it cannot be deleted before then"
    return None


def _not_as_planned(fresh: RecoveryPoint, planned: RecoveryPoint) -> str | None:
    """Why the backend's *fresh* point is not the one the plan names (``None``: it is).

    The floors are keyed by the plan's target, tier and kind: they hold only if the backend
    agrees (a hand-made plan may label the newest local point as another tier's).
    """
    for field in ("target", "tier", "kind"):
        if getattr(fresh, field) != getattr(planned, field):
            seen, claimed = short_repr(getattr(fresh, field)), short_repr(getattr(planned, field))
            return f"its {field} is {seen}, not the planned {claimed}"
    return None


def apply(
    plan: RetentionPlan,
    *,
    targets: Mapping[str, BackupTarget] | None = None,
    dry_run: bool = False,
    max_workers: int | None = None,
    progress: Progress | None = None,
) -> ApplyReport:
    """Delete the points of *plan*, re-checking each one right before its deletion.

    For every planned deletion the point is re-read from its target; it is skipped (with the
    reason) if it no longer exists, is now under legal hold, is not managed, is pending or has
    changed. The floors hold whatever the plan says: before the first deletion, every target
    with planned deletions is listed again, and the newest completed point of each of its tiers
    is skipped (a target that cannot be listed deletes nothing and its points fail). The newest
    point the plan keeps in a tier is re-read too: if it has vanished, nothing of that tier is
    deleted. Any error while deleting one point (an ``OSError`` too) becomes that point's
    ``"failed"`` outcome; the others go on. Deletions run concurrently: a target with an
    adaptive limit (`~backuppolicy.core.capabilities.AdaptiveDeletes`, the RDS targets) runs
    each deletion in a slot of it (8 at first, up to 32 while the service does not throttle,
    halved when it does); other targets run at most 8 at once.

    Args:
        plan: A plan from `plan_retention` (or ``rule.plan`` with *targets* given).
        targets: Targets by name (default: those that made the plan).
        dry_run: Re-check nothing and delete nothing; report what would be deleted.
        max_workers: Most deletions in flight at once (default: as the limits allow).
        progress: Called as ``progress("delete", done, total)``.

    Raises:
        PolicyError: The plan has points of a target that *targets* does not have.
    """
    known = targets if targets is not None else plan.targets
    if dry_run:
        return ApplyReport(
            outcomes=tuple(
                DeleteOutcome(p, "would delete", "; ".join(plan.reasons.get(p.id, [])))
                for p in plan.delete
            ),
            dry_run=True,
        )
    missing = sorted({p.target for p in plan.delete} - set(known))
    if missing:
        raise PolicyError.for_field(
            "targets",
            "the targets of every point in plan.delete",
            sorted(known),
            hint=f"Missing: {missing}.",
        )
    floor_ok = _check_floors(plan, known)
    newest = _fresh_newest(plan, known)

    def delete_one(point: RecoveryPoint) -> DeleteOutcome:
        try:
            return _delete_one(
                point,
                plan,
                known,
                floor_ok=floor_ok.get((point.target, point.tier), True),
                newest=newest.get(point.target, {}),
            )
        except Exception as exc:  # noqa: BLE001 - OSError, a plugin's bug: one failed outcome
            _log.exception("deleting %s of %s failed", point.id, point.target)
            return DeleteOutcome(point, "failed", describe_error(exc))

    fixed = AdaptiveLimit(_FIXED_WORKERS, floor=_FIXED_WORKERS, cap=_FIXED_WORKERS)

    def limit_of(point: RecoveryPoint) -> AdaptiveLimit:
        target = known[point.target]
        return target.delete_limit(point) if isinstance(target, AdaptiveDeletes) else fixed

    def delete_in_slot(point: RecoveryPoint) -> DeleteOutcome:
        with limit_of(point).slot():
            return delete_one(point)

    pool_size = max(1, max_workers) if max_workers is not None else DEFAULT_CAP
    outcomes: list[DeleteOutcome] = []
    with ThreadPoolExecutor(max_workers=min(pool_size, max(1, len(plan.delete)))) as pool:
        for done, outcome in enumerate(pool.map(delete_in_slot, plan.delete), start=1):
            outcomes.append(outcome)
            if progress is not None:
                progress("delete", done, len(plan.delete))
    return ApplyReport(outcomes=tuple(outcomes))


def _delete_one(
    point: RecoveryPoint,
    plan: RetentionPlan,
    targets: Mapping[str, BackupTarget],
    *,
    floor_ok: bool,
    newest: Mapping[str, str | None] | str,
) -> DeleteOutcome:
    """Re-check one planned deletion and carry it out.

    *newest* is the target's fresh newest completed point id per tier, or why the target
    could not be re-read.
    """
    refused = _floor(point, floor_ok=floor_ok, newest=newest)
    if refused is not None:
        return refused
    target = targets[point.target]
    try:
        reason = _recheck(target.refresh(point), point)
        if reason is not None:
            return DeleteOutcome(point, "skipped", reason)
        target.delete(point)
    except ResourceNotFoundError:
        return DeleteOutcome(point, "skipped", "no longer exists")
    except ProtectedPointError as exc:
        return DeleteOutcome(point, "skipped", str(exc))
    except BackupPolicyError as exc:
        return DeleteOutcome(point, "failed", describe_error(exc))
    return DeleteOutcome(point, "deleted", "; ".join(plan.reasons.get(point.id, [])))


def _floor(
    point: RecoveryPoint, *, floor_ok: bool, newest: Mapping[str, str | None] | str
) -> DeleteOutcome | None:
    """The outcome of *point* if a floor forbids deleting it (``None``: no floor applies)."""
    if not floor_ok:
        return DeleteOutcome(point, "skipped", "the newest kept point of its tier vanished")
    if point.kind == _VERSION:
        return None
    if isinstance(newest, str):
        return DeleteOutcome(point, "failed", newest)
    if newest.get(point.tier) == point.id:
        why = f"newest completed point of {point.target} in tier {point.tier!r}"
        return DeleteOutcome(point, "skipped", why)
    return None


_VERSION = "s3-version"
_FIXED_WORKERS = 8  # deletions in flight for a target without an adaptive limit


def _fresh_newest(
    plan: RetentionPlan, targets: Mapping[str, BackupTarget]
) -> dict[str, dict[str, str | None] | str]:
    """Re-read every target that has planned deletions: its newest completed point per tier.

    The floor holds whatever plan `apply` is handed: a point that is the newest completed
    point of its (target, tier) right before the deletions start is never deleted. Object
    versions have their own floor (the current version, which is never managed); a target
    whose only planned deletions are versions is not re-read. A target that cannot be
    re-read maps to the reason, and none of its points is deleted.
    """
    names = sorted({p.target for p in plan.delete if p.kind != _VERSION})
    result: dict[str, dict[str, str | None] | str] = {}
    for name in names:
        try:
            points = [p for p in targets[name].list_points() if p.kind != _VERSION]
        except Exception as exc:  # noqa: BLE001 - no floor known: nothing of the target goes
            _log.error("re-reading %s before deleting failed, nothing of it is deleted", name)
            result[name] = (
                f"could not re-read the target to find its newest point: {describe_error(exc)}"
            )
            continue
        newest: dict[str, str | None] = {}
        for tier in {p.tier for p in points}:
            found = newest_point(points, tier)
            newest[tier] = None if found is None else found.id
        result[name] = newest
    return result


def _check_floors(
    plan: RetentionPlan, targets: Mapping[str, BackupTarget]
) -> dict[tuple[str, str], bool]:
    """Re-read the newest kept completed point of every (target, tier) that has deletions."""
    groups = {(p.target, p.tier) for p in plan.delete}
    newest: dict[tuple[str, str], RecoveryPoint] = {}
    for point in plan.keep:
        key = (point.target, point.tier)
        if key in groups and point.is_good and point.kind != "s3-version":
            best = newest.get(key)
            if best is None or point.order_key > best.order_key:
                newest[key] = point
    result: dict[tuple[str, str], bool] = {}
    for key, point in newest.items():
        try:
            fresh = targets[key[0]].refresh(point)
        except Exception:  # noqa: BLE001 - unknown state of the floor: delete nothing there
            fresh = None
        result[key] = fresh is not None and fresh.is_good
    return result
