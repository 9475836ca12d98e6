r"""Restore plans as values: `RestorePlan`, its `RestoreStep`\s, and what a target's restore returns.

Pure values and helpers, no I/O: `backuppolicy.plan_restore` and a `~backuppolicy.core.targets.Restorable`
target build them, `backuppolicy.restore` carries them out. A target kind that plans its own
restores (a plug-in) builds its `RestorePlan` from these, returns a `RestoreOutcome` of
`RestoreCheck`\s from ``execute_restore``, and chooses its point with `choose_point`.

Example:
    >>> from datetime import UTC, datetime
    >>> moment = datetime(2026, 11, 26, 4, tzinfo=UTC)
    >>> plan = RestorePlan(
    ...     target="notes", kind="sqlite-file", source="backup notes-1", destination="/tmp/n.db",
    ...     in_place=False, token=restore_stamp(moment), planned_at=moment, data_time=moment,
    ...     steps=[RestoreStep(StepAction.CREATE, "/tmp/n.db", "copy backup notes-1 to /tmp/n.db")],
    ... )
    >>> plan.destructive, plan.stamp
    (False, '20261126t040000z')
"""

from __future__ import annotations

import difflib
import enum
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import RecoveryPoint, Status

__all__ = [
    "ABSENT",
    "MADE_BY_THIS_RESTORE",
    "RestoreCheck",
    "RestoreOutcome",
    "RestorePlan",
    "RestoreStep",
    "StepAction",
    "choose_point",
    "restore_stamp",
    "stamp_of",
]

ABSENT: Final = "absent"
"""What `RestorePlan.observed` says of a resource that does not exist."""

MADE_BY_THIS_RESTORE: Final = " (made by this restore)"
"""The end of an observed state of something the restore made itself (never a change)."""


def restore_stamp(moment: datetime) -> str:
    """The default token of a restore planned at *moment* (``20261126t040000z``)."""
    return moment.astimezone(UTC).strftime("%Y%m%dt%H%M%Sz")


def stamp_of(token: str) -> str:
    """The ``<stamp>`` a restore of *token* puts in the names it gives (lowercase, hyphens).

    Example:
        >>> stamp_of("Change 42/b")
        'change-42-b'
    """
    return re.sub(r"[^a-z0-9]+", "-", token.lower()).strip("-") or "restore"


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | tuple)


class StepAction(enum.Enum):
    """What one step of a `RestorePlan` does."""

    CREATE = "create"
    """Creates something new (a DB instance, volumes, objects in an empty place, a directory)."""
    REPLACE = "replace"
    """Puts the restored resource where the current one is (the current one is kept aside)."""
    OVERWRITE = "overwrite"
    """Writes over existing data (S3 in place: new current versions, the old ones are kept)."""
    MOVE_ASIDE = "move-aside"
    """Moves the current resource out of the way, keeping it (renamed, detached, moved)."""
    ATTACH = "attach"
    """Attaches restored volumes to an instance."""
    VERIFY = "verify"
    """Checks the restored resource."""


@attrs.frozen
class RestoreStep:
    """One step of a `RestorePlan`.

    Attributes:
        action: The `StepAction`.
        resource: What the step creates or changes (``"rds:shop-prod"``, a path, ``s3://...``).
        description: One human line: what happens.
        destructive: Whether the step changes existing data (needs ``confirm=True``).
        keeps: Where the previous state is kept, for destructive steps.
    """

    action: StepAction = attrs.field(converter=StepAction)
    resource: str
    description: str
    destructive: bool = False
    keeps: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "action": self.action.value,
            "resource": self.resource,
            "description": self.description,
            "destructive": self.destructive,
            "keeps": self.keeps,
        }


def _steps(values: Iterable[RestoreStep]) -> tuple[RestoreStep, ...]:
    return tuple(values)


@attrs.frozen
class RestorePlan:
    """What `backuppolicy.restore` will do: made by `backuppolicy.plan_restore`, nothing has changed yet.

    Attributes:
        target: Name of the target.
        kind: Kind of the target (``"rds-instance"`` ...).
        source: What is restored, in words (``"snapshot bp-shop-db-..."``, ``"the state at ..."``).
        destination: Where it goes (new DB identifier, ``s3://bucket/prefix``, a directory).
        in_place: Whether the restore replaces the live resource.
        steps: Every step, in order.
        token: Stable id of this restore: names (``<stamp>``) and tags derive from it, so a
            re-made plan with the same token adopts what an interrupted run created.
        planned_at: When the plan was made.
        data_time: The moment of the data restored (the recovery point's time).
        point: The recovery point restored, if any (``None`` for a point in time).
        at: The point in time restored to, if any.
        application: Application of the target, when planned from a policy.
        options: Target-specific settings of the plan (``swap``, ``attach_to`` ...).
        probes: Checks run against the restored resource.
        backend: The target object that carries the restore out.
        observed: What planning saw at the destination, resource by resource (``{"s3://b/p/":
            "3 object(s) ..."}``); `backuppolicy.restore` looks again right before it acts and
            refuses what changed unless confirmed.
    """

    target: str
    kind: str
    source: str
    destination: str
    in_place: bool
    steps: tuple[RestoreStep, ...] = attrs.field(converter=_steps)
    token: str
    planned_at: datetime
    data_time: datetime
    point: RecoveryPoint | None = None
    at: datetime | None = None
    application: str | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    probes: tuple[Any, ...] = attrs.field(default=(), converter=tuple, eq=False)
    backend: Any = attrs.field(default=None, eq=False, repr=False)
    observed: Mapping[str, str] = attrs.field(factory=dict, hash=False)

    @property
    def destructive(self) -> bool:
        """Whether any step changes existing data (so `backuppolicy.restore` needs ``confirm=True``)."""
        return any(step.destructive for step in self.steps)

    @property
    def stamp(self) -> str:
        """The ``<stamp>`` of names this restore gives (``20261126t040000z``)."""
        return stamp_of(self.token)

    def __repr__(self) -> str:
        return (
            f"<backuppolicy.RestorePlan(target={self.target!r}, destination={self.destination!r}, "
            f"steps={len(self.steps)}, destructive={self.destructive})>"
        )

    def summary(self) -> str:
        """The plan in words, one line per step; destructive steps are marked ``!``."""
        lines = [
            f"restore {self.target} ({self.kind}) from {self.source}",
            f"  into {self.destination}{' (in place)' if self.in_place else ''}",
        ]
        for number, step in enumerate(self.steps, start=1):
            mark = "!" if step.destructive else " "
            keeps = f" [previous state kept: {step.keeps}]" if step.keeps else ""
            lines.append(f"{mark} {number}. {step.action.value:<10} {step.description}{keeps}")
        if self.destructive:
            lines.append("! marks destructive steps: they run only with confirm=True (--yes)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "target": self.target,
            "kind": self.kind,
            "source": self.source,
            "destination": self.destination,
            "in_place": self.in_place,
            "destructive": self.destructive,
            "token": self.token,
            "planned_at": self.planned_at.isoformat(),
            "data_time": self.data_time.isoformat(),
            "point": self.point.id if self.point else None,
            "at": self.at.isoformat() if self.at else None,
            "options": {k: v for k, v in self.options.items() if _plain(v)},
            "steps": [step.to_dict() for step in self.steps],
            "observed": dict(self.observed),
        }


@attrs.frozen
class RestoreCheck:
    """One verification a target's restore made of what it restored.

    `backuppolicy.restore` turns it into a `backuppolicy.CheckResult` of the restore (kind
    ``restore-test``, the plan's target and point).

    Attributes:
        name: Name of the check (``"archive-checksum"``).
        ok: Whether it passed.
        details: One human line: what was found.
        evidence: Machine-readable facts.
    """

    name: str
    ok: bool
    details: str
    evidence: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


def _checks(values: Iterable[RestoreCheck]) -> tuple[RestoreCheck, ...]:
    return tuple(values)


def _texts(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


@attrs.frozen
class RestoreOutcome:
    """What a `~backuppolicy.core.targets.Restorable` target's ``execute_restore`` did.

    Attributes:
        resource: The restored resource (a path, an identifier).
        endpoint: How to reach it (a path, ``host:port``), if anything: the probes get it.
        kept: Where the previous state was kept.
        checks: What the restore verified of the restored resource.
        details: Target-specific facts.
    """

    resource: str
    endpoint: str | None = None
    kept: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    checks: tuple[RestoreCheck, ...] = attrs.field(default=(), converter=_checks)
    details: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


def choose_point(
    target: Any,
    point: RecoveryPoint | str | None,
    *,
    before: datetime | None = None,
    kinds: Iterable[str] = (),
) -> RecoveryPoint:
    """*point* itself, the point of *target* with that id, or its newest completed point.

    *target* is any object with a ``name`` and ``list_points()`` (a `BackupTarget`).

    The newest is taken among the completed points of the kinds *kinds* (all but single S3
    object versions when empty) taken at or before *before*, from the ``local`` tier if it has
    one.

    Raises:
        PolicyError: No point has that id (the message suggests a close one), there is no
            completed point, or the point chosen is not completed.
    """
    if isinstance(point, RecoveryPoint):
        chosen = point
    else:
        wanted = set(kinds)
        points = list(target.list_points())
        if isinstance(point, str):
            found = next((p for p in points if p.id == point), None)
            if found is None:
                close = difflib.get_close_matches(point, [p.id for p in points], n=1)
                raise PolicyError.for_field(
                    "point",
                    f"the id of a recovery point of target {target.name!r}",
                    point,
                    hint=f"Did you mean {close[0]!r}?" if close else "",
                )
            chosen = found
        else:
            good = [
                p
                for p in points
                if p.is_good
                and p.kind != "s3-version"
                and (not wanted or p.kind in wanted)
                and (before is None or p.created_at <= before)
            ]
            local = [p for p in good if p.tier == "local"] or good
            if not local:
                raise PolicyError.for_field(
                    "point",
                    f"a completed recovery point of target {target.name!r}"
                    + (f" taken at or before {before.isoformat()}" if before else ""),
                    None,
                )
            chosen = max(local, key=lambda p: p.order_key)
    if chosen.status is not Status.COMPLETED:
        raise PolicyError.for_field(
            "point", "a completed recovery point", f"{chosen.id} ({chosen.status.value})"
        )
    return chosen
