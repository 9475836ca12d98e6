"""The backup policy as a value: `Policy`, loaded from YAML, TOML or a dict.

A `Policy` says *what* is backed up (`TargetSpec`), *when* (the policy's `Schedule`, and
the copy tiers, `TierSpec`), *how long* copies are kept (a `RetentionRule`, with
overrides per tier and per target), *how we know it works* (`VerificationSpec`),
*what we promise* (`Objective`: RPO and RTO per application) and *who hears about
failures* (`NotificationSpec`).

Loading validates everything up front. Every error is a `PolicyError` whose message
names the path of the field, what was expected and what was given, e.g.::

    targets[2].retention.max_age: expected a duration like '35d' (got 'soon').
    tiers[1].evry: expected a known key: name, every, location, retention, lock (got 'evry'). Did you mean 'every'?

`Policy.to_markdown` renders the human policy document (the sections of the written
policy) from the same object, so the document can never drift from the code.

The parts live in their own modules and their public names are re-exported here: the specs
in `backuppolicy.core.specs`, the field checks in `backuppolicy.core._fields`, the bounded
YAML/TOML reading in `backuppolicy.core.loading` and the document in
`backuppolicy.core.document`.
"""

from __future__ import annotations

import enum
import functools
import html
import itertools
import tomllib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import attrs
import yaml

from backuppolicy.core._fields import (
    BUILTIN_TARGET_KINDS,
    EVENTS,
    NOTIFICATION_KINDS,
    SELECTOR_KIND,
    TARGET_SETTINGS,
    PolicyLookupError,
    did_you_mean,
    one_of,
    read_cadence,
    read_list,
    read_mapping,
    read_name,
    read_retention,
    read_schedule,
    read_text,
    read_timezone,
    validate_name,
    validate_text,
)
from backuppolicy.core.document import render_markdown
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError, short_repr
from backuppolicy.core.loading import (
    MAX_POLICY_BYTES,
    PolicyDumper,
    check_shape,
    check_text,
    check_toml_keys,
    line_of,
    load_yaml,
    read_policy_text,
    with_location,
)
from backuppolicy.core.locks import check_lock_against_retention
from backuppolicy.core.retention import RetentionRule
from backuppolicy.core.schedule import Cadence, Schedule
from backuppolicy.core.specs import (
    AccountSpec,
    NotificationSpec,
    Objective,
    RunSpec,
    TargetSpec,
    TierSpec,
    VerificationSpec,
)

__all__ = [
    "BUILTIN_TARGET_KINDS",
    "EVENTS",
    "MAX_POLICY_BYTES",
    "NOTIFICATION_KINDS",
    "SELECTOR_KIND",
    "TARGET_SETTINGS",
    "AccountSpec",
    "NotificationSpec",
    "Objective",
    "Policy",
    "PolicyLookupError",
    "RunSpec",
    "TargetSpec",
    "TierSpec",
    "VerificationSpec",
]


_T = TypeVar("_T")
_INTERVAL_SAMPLE: Final = 32


@functools.lru_cache(maxsize=256)
def _schedule_interval(schedule: Schedule) -> timedelta:
    """The longest gap between two runs of *schedule*, over a sample of its runs."""
    run = datetime(2026, 1, 1, tzinfo=UTC)
    times = []
    for _ in range(_INTERVAL_SAMPLE):
        run = schedule.next_run(run)
        times.append(run)
    return max(later - earlier for earlier, later in itertools.pairwise(times))


def _timedelta_to_duration(delta: timedelta) -> Duration:
    hours, rest = divmod(delta, timedelta(hours=1))
    if not rest and hours <= 48:  # noqa: PLR2004 - up to two days reads best in hours
        return Duration(hours=int(hours))
    return Duration.coerce(delta, field="rpo")


# --------------------------------------------------------------------------------------------
# The policy.


class _Section(enum.Enum):
    """Keys of the policy document, in file order."""

    NAME = "name"
    DESCRIPTION = "description"
    TIMEZONE = "timezone"
    SCHEDULE = "schedule"
    ROLLING_PERIOD = "rolling_period"
    RETENTION = "retention"
    TIERS = "tiers"
    TARGETS = "targets"
    VERIFICATION = "verification"
    OBJECTIVES = "objectives"
    NOTIFICATIONS = "notifications"
    RUN = "run"


_POLICY_KEYS: Final = tuple(section.value for section in _Section)


def _to_rolling(value: object) -> Cadence | None:
    if value is None:
        return None
    cadence = read_cadence(value, "rolling_period")
    if cadence is Cadence.HOUR:
        raise PolicyError.for_field("rolling_period", "a period of a day or longer", value)
    return cadence


def _tuple_of(kind: type[_T], field: str, value: object) -> tuple[_T, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise PolicyError.for_field(field, f"a sequence of {kind.__name__}", value)
    items: list[_T] = []
    for i, item in enumerate(tuple(value)):
        if not isinstance(item, kind):
            raise PolicyError.for_field(f"{field}[{i}]", f"a {kind.__name__}", item)
        items.append(item)
    return tuple(items)


def _to_targets(value: object) -> tuple[TargetSpec, ...]:
    return _tuple_of(TargetSpec, "targets", value)


def _to_tiers(value: object) -> tuple[TierSpec, ...]:
    return _tuple_of(TierSpec, "tiers", value)


def _to_objectives(value: object) -> tuple[Objective, ...]:
    return _tuple_of(Objective, "objectives", value)


def _to_notifications(value: object) -> tuple[NotificationSpec, ...]:
    return _tuple_of(NotificationSpec, "notifications", value)


def _v_rule(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, RetentionRule):
        raise PolicyError.for_field(attribute.name, "a RetentionRule", value)


@attrs.frozen(repr=False)
class Policy:
    """A backup policy: targets, schedule, tiers, retention, verification, objectives, notifications.

    Build one with `Policy.from_file` (YAML or TOML), `Policy.from_yaml` or `Policy.from_dict`;
    `to_dict` and `to_yaml` give it back, `to_markdown` renders the human policy document.

    Example:
        >>> policy = Policy.from_dict({
        ...     "name": "web-apps",
        ...     "schedule": {"cron": "0 4 * * *", "tz": "GMT"},
        ...     "retention": {"max_age": "35d"},
        ...     "targets": [{"name": "orders-db", "kind": "rds-instance",
        ...                  "settings": {"db_instance_id": "orders"}}],
        ... })
        >>> policy
        <backuppolicy.Policy(name='web-apps', targets=1, tiers=0)>
        >>> policy.objective_for("orders-db").rpo
        Duration(years=0, months=0, weeks=0, days=0, hours=24, minutes=0)

    Attributes:
        name: Name of the policy; recorded on every backup it creates (``backuppolicy:policy``).
        schedule: When the backups run (cron, time zone, window).
        retention: How long backups are kept, unless a tier or target says otherwise.
        description: Free text: what the policy is for.
        timezone: Time zone for retention buckets and for schedules that do not name one.
        rolling_period: Rolling full backups: every target gets its full backup once per
            this `Cadence` (a day or longer), each on its own day of the period
            (`backuppolicy.core.schedule.rolling_slots`); ``None`` means every run is a full backup.
        targets: What is backed up.
        tiers: Where copies live and how often they are made.
        verification: Restore tests, integrity checks, freshness, encryption, access.
        objectives: RPO/RTO per application; applications without one get the default
            derived from their schedule (daily backups: RPO 24 hours).
        notifications: Who is told about failures.
        run: How `backuppolicy.run` runs it unattended: the testing log, the heartbeat URL,
            the lease timeout (`RunSpec`).
    """

    name: str = attrs.field(validator=validate_name)
    schedule: Schedule = attrs.field(validator=attrs.validators.instance_of(Schedule), kw_only=True)
    retention: RetentionRule = attrs.field(validator=_v_rule, kw_only=True)
    description: str = attrs.field(default="", validator=validate_text, kw_only=True)
    timezone: str = attrs.field(default="UTC", kw_only=True)
    rolling_period: Cadence | None = attrs.field(default=None, converter=_to_rolling, kw_only=True)
    targets: tuple[TargetSpec, ...] = attrs.field(default=(), converter=_to_targets, kw_only=True)
    tiers: tuple[TierSpec, ...] = attrs.field(default=(), converter=_to_tiers, kw_only=True)
    verification: VerificationSpec = attrs.field(
        factory=VerificationSpec,
        validator=attrs.validators.instance_of(VerificationSpec),
        kw_only=True,
    )
    objectives: tuple[Objective, ...] = attrs.field(
        default=(), converter=_to_objectives, kw_only=True
    )
    notifications: tuple[NotificationSpec, ...] = attrs.field(
        default=(), converter=_to_notifications, kw_only=True
    )
    run: RunSpec = attrs.field(
        factory=RunSpec, validator=attrs.validators.instance_of(RunSpec), kw_only=True
    )

    @timezone.validator
    def _check_timezone(self, _attribute: attrs.Attribute[str], value: object) -> None:
        read_timezone(value, "timezone")

    def __attrs_post_init__(self) -> None:
        self._check_names()
        self._check_references()
        self._check_locks()

    def _check_names(self) -> None:
        named: tuple[tuple[str, tuple[str, ...]], ...] = (
            ("targets", tuple(target.name for target in self.targets)),
            ("tiers", tuple(tier.name for tier in self.tiers)),
        )
        for field, names in named:
            for i, name in enumerate(names):
                if name in names[:i]:
                    raise PolicyError.for_field(
                        f"{field}[{i}].name", f"a name not used by another of the {field}", name
                    )
        # `<selector target>-<resource>` names the targets a selector finds: keep them unique.
        for i, target in enumerate(self.targets):
            for j, other in enumerate(self.targets):
                if other.selector is not None and target.name.startswith(f"{other.name}-"):
                    raise PolicyError.for_field(
                        f"targets[{i}].name",
                        f"a name that does not start with '{other.name}-' (reserved for the "
                        f"targets the selector of targets[{j}] finds)",
                        target.name,
                    )
        applications: set[str] = set()
        for i, objective in enumerate(self.objectives):
            if objective.application in applications:
                raise PolicyError.for_field(
                    f"objectives[{i}].application",
                    "an application with no other objective",
                    objective.application,
                )
            applications.add(objective.application)

    def _check_locks(self) -> None:
        """A tier's lock must agree with the retention that prunes its copies."""
        for i, tier in enumerate(self.tiers):
            if tier.lock is not None:
                own = tier.retention is not None
                check_lock_against_retention(
                    tier.lock,
                    tier.retention if own else self.retention,
                    lock_path=f"tiers[{i}].lock",
                    retention_path=f"tiers[{i}].retention" if own else "retention",
                )

    def _check_references(self) -> None:
        tier_names = tuple(tier.name for tier in self.tiers)
        for i, target in enumerate(self.targets):
            for j, tier in enumerate(target.tiers or ()):
                if tier not in tier_names:
                    raise PolicyError.for_field(
                        f"targets[{i}].tiers[{j}]",
                        one_of("a tier of the policy", tier_names),
                        tier,
                        hint=did_you_mean(tier, tier_names),
                    )
        for j, tier in enumerate(self.verification.integrity_covers_tiers):
            if tier not in tier_names:
                raise PolicyError.for_field(
                    f"verification.integrity_covers_tiers[{j}]",
                    one_of("a tier of the policy", tier_names),
                    tier,
                    hint=did_you_mean(tier, tier_names),
                )
        applications = self.applications
        for i, objective in enumerate(self.objectives):
            if objective.application not in applications:
                raise PolicyError.for_field(
                    f"objectives[{i}].application",
                    one_of("an application of the targets", applications),
                    objective.application,
                    hint=did_you_mean(objective.application, applications),
                )

    # ---- loading ---------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: object) -> Policy:
        """Build a policy from plain data (what YAML, TOML or JSON parse into).

        Raises:
            PolicyError: The data is not a valid policy; the message names the field.
        """
        raw = read_mapping(data, "", _POLICY_KEYS, ("name", "schedule", "retention"))
        name = read_name(raw["name"], "name")
        description = read_text(raw.get("description", ""), "description", allow_empty=True)
        tz = read_timezone(raw.get("timezone", "UTC"), "timezone")
        schedule = read_schedule(raw["schedule"], "schedule", tz=tz)
        rolling = (
            _to_rolling(raw["rolling_period"]) if raw.get("rolling_period") is not None else None
        )
        retention = read_retention(raw["retention"], "retention")
        tiers = tuple(
            TierSpec.from_dict(item, path=f"tiers[{i}]", tz=tz)
            for i, item in enumerate(read_list(raw.get("tiers", []), "tiers", "tiers"))
        )
        targets = tuple(
            TargetSpec.from_dict(item, path=f"targets[{i}]", tz=tz)
            for i, item in enumerate(read_list(raw.get("targets", []), "targets", "targets"))
        )
        verification = VerificationSpec.from_dict(raw.get("verification", {}), path="verification")
        objectives = tuple(
            Objective.from_dict(item, path=f"objectives[{i}]")
            for i, item in enumerate(
                read_list(raw.get("objectives", []), "objectives", "objectives")
            )
        )
        notifications = tuple(
            NotificationSpec.from_dict(item, path=f"notifications[{i}]")
            for i, item in enumerate(
                read_list(raw.get("notifications", []), "notifications", "notifications")
            )
        )
        return cls(
            name,
            description=description,
            timezone=tz,
            schedule=schedule,
            rolling_period=rolling,
            retention=retention,
            tiers=tiers,
            targets=targets,
            verification=verification,
            objectives=objectives,
            notifications=notifications,
            run=RunSpec.from_dict(raw.get("run", {}), path="run"),
        )

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<string>") -> Policy:
        """Build a policy from YAML text; *source* names it in errors.

        Scalars are read the YAML 1.2 way: ``on``, ``yes`` and ``no`` are strings, ``04:00``
        is a string (not the number 240), dates are strings. A key given twice is an error.
        The text is bounded: at most `MAX_POLICY_BYTES`, 64 levels of nesting, 100,000 nodes
        (every use of an alias counted in full) and integers of at most 64 digits.

        Raises:
            PolicyError: The text is not valid YAML or not a valid policy; the message
                names the source, the line and the field.
        """
        data, node = load_yaml(text, source)
        try:
            return cls.from_dict(data)
        except PolicyError as exc:
            line = line_of(node, exc.path) if exc.path else None
            raise with_location(exc, f"{source}:{line}" if line else source) from None

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<string>") -> Policy:
        """Build a policy from TOML text; *source* names it in errors.

        Raises:
            PolicyError: The text is not valid TOML or not a valid policy.
        """
        check_text(text, source)
        check_toml_keys(text, source)
        try:
            data = tomllib.loads(text)
        except (ValueError, RecursionError) as exc:  # TOMLDecodeError is a ValueError
            raise PolicyError(
                f"{source}: expected valid TOML ({short_repr(str(exc))}).",
                expected="valid TOML",
                got=text,
            ) from exc
        check_shape(data, source)
        try:
            return cls.from_dict(data)
        except PolicyError as exc:
            raise with_location(exc, source) from None

    @classmethod
    def from_file(cls, path: str | Path) -> Policy:
        """Load a policy from a ``.yaml``/``.yml`` or ``.toml`` file.

        The file must be a regular file (not a FIFO, a device or a directory, checked before
        anything is read, without blocking) of at most `MAX_POLICY_BYTES`; it is parsed once.

        Raises:
            PolicyError: The file is missing, unreadable, not a regular file, too large, of an
                unknown type, not valid YAML/TOML or not a valid policy; the message names the
                file, the line where known, and the field.
        """
        file = Path(path)
        suffix = file.suffix.lower()
        if suffix not in (".yaml", ".yml", ".toml"):
            raise PolicyError.for_field(
                "path", "a policy file ending in .yaml, .yml or .toml", str(file)
            )
        text = read_policy_text(file)
        if suffix == ".toml":
            return cls.from_toml(text, source=str(file))
        return cls.from_yaml(text, source=str(file))

    # ---- dumping ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        """Plain data (YAML/JSON-ready); ``Policy.from_dict(p.to_dict()) == p``."""
        data: dict[str, object] = {
            "name": self.name,
            "description": self.description,
            "timezone": self.timezone,
            "schedule": self.schedule.to_spec(),
        }
        if self.rolling_period is not None:
            data["rolling_period"] = self.rolling_period.value
        data["retention"] = self.retention.to_spec()
        data["tiers"] = [tier.to_dict() for tier in self.tiers]
        data["targets"] = [target.to_dict() for target in self.targets]
        data["verification"] = self.verification.to_dict()
        data["objectives"] = [objective.to_dict() for objective in self.objectives]
        data["notifications"] = [notification.to_dict() for notification in self.notifications]
        if self.run != RunSpec():
            data["run"] = self.run.to_dict()
        return data

    def to_yaml(self) -> str:
        """The policy as YAML text that `from_yaml` reads back into an equal policy."""
        return yaml.dump(
            self.to_dict(), Dumper=PolicyDumper, sort_keys=False, allow_unicode=True, width=100
        )

    # ---- lookups ---------------------------------------------------------------------------

    @property
    def applications(self) -> tuple[str, ...]:
        """The applications of the targets, in order of first appearance."""
        return tuple(dict.fromkeys(target.application for target in self.targets))

    def target(self, name: str) -> TargetSpec:
        """The target called *name*.

        A name ``<selector target>-<resource>`` (what a selector target finds at run time; the
        policy reserves that prefix) gives the selector target's spec under that name, so found
        targets can be verified, restored and audited by name.

        Raises:
            PolicyLookupError: No such target (the message suggests the closest name).
        """
        for target in self.targets:
            if target.name == name:
                return target
        for target in self.targets:
            if target.selector is not None and name.startswith(f"{target.name}-"):
                return attrs.evolve(target, name=name)
        raise _lookup_error("target", name, tuple(t.name for t in self.targets))

    def tier(self, name: str) -> TierSpec:
        """The tier called *name*.

        Raises:
            PolicyLookupError: No such tier.
        """
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise _lookup_error("tier", name, tuple(t.name for t in self.tiers))

    def targets_for(self, application: str) -> tuple[TargetSpec, ...]:
        """The targets of *application*.

        Raises:
            PolicyLookupError: No target belongs to *application*.
        """
        found = tuple(target for target in self.targets if target.application == application)
        if not found:
            raise _lookup_error("application", application, self.applications)
        return found

    def tiers_for(self, target: str | TargetSpec) -> tuple[TierSpec, ...]:
        """The tiers *target* is copied to (its own list, or every tier)."""
        spec = self._target(target)
        if spec.tiers is None:
            return self.tiers
        return tuple(self.tier(name) for name in spec.tiers)

    def copy_tiers_for(self, target: str | TargetSpec) -> tuple[TierSpec, ...]:
        """The tiers that hold copies of *target*: every tier of `tiers_for` after the first."""
        return self.tiers_for(target)[1:]

    def copy_regions_for(self, target: str | TargetSpec) -> list[str]:
        """The AWS regions of *target*'s copy tiers that name one, in tier order."""
        return [t.location["region"] for t in self.copy_tiers_for(target) if "region" in t.location]

    def schedule_for(self, target: str | TargetSpec) -> Schedule:
        """The schedule of *target*: its own, or the policy's."""
        spec = self._target(target)
        return spec.schedule or self.schedule

    def retention_for(
        self, target: str | TargetSpec, tier: str | TierSpec | None = None
    ) -> RetentionRule:
        """The retention that applies to the copies of *target* in *tier*.

        The most specific rule wins: the target's own ``retention``, then the tier's, then
        the policy's.

        Raises:
            PolicyLookupError: The target or tier is not in the policy.
        """
        spec = self._target(target)
        if spec.retention is not None:
            return spec.retention
        if tier is not None:
            tier_spec = self.tier(tier) if isinstance(tier, str) else tier
            if tier_spec.retention is not None:
                return tier_spec.retention
        return self.retention

    def objective_for(self, application: str) -> Objective:
        """The objective of *application*: explicit, or derived from its targets' schedules.

        The derived RPO is the longest gap between two scheduled runs of any of the
        application's targets (24 hours for daily backups); the derived RTO is not set.

        Raises:
            PolicyLookupError: No target belongs to *application*.
        """
        for objective in self.objectives:
            if objective.application == application:
                return objective
        targets = self.targets_for(application)
        gap = max(_schedule_interval(self.schedule_for(target)) for target in targets)
        return Objective(application, _timedelta_to_duration(gap))

    def _target(self, target: str | TargetSpec) -> TargetSpec:
        return self.target(target) if isinstance(target, str) else target

    # ---- reprs -----------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"<backuppolicy.Policy(name={self.name!r}, targets={len(self.targets)}, "
            f"tiers={len(self.tiers)})>"
        )

    def summary_rows(self) -> list[tuple[str, str]]:
        """The facts shown by `summary` and `_repr_html_`, as (label, value) rows."""
        rows: list[tuple[str, str]] = [
            ("policy", self.name),
            ("schedule", self.schedule.describe()),
            ("retention", self.retention.describe()),
        ]
        if self.rolling_period is not None:
            rows.append(
                ("rolling full backups", f"one per target every {self.rolling_period.value}")
            )
        rows.extend(
            (
                f"target {t.name}",
                f"{t.kind} {t.resource} (application {t.application})"
                + ("" if t.enabled else ", disabled"),
            )
            for t in self.targets
        )
        rows.extend((f"tier {tier.name}", tier.describe()) for tier in self.tiers)
        v = self.verification
        rows.append(
            (
                "verification",
                (
                    f"restore test {v.restore_test_every.adverb}, per application "
                    f"{v.restore_test_per_application_every.adverb}, integrity check "
                    f"{v.integrity_check_every.adverb}"
                ),
            )
        )
        rows.extend(
            (f"objective {app}", self.objective_for(app).describe()) for app in self.applications
        )
        rows.extend(
            (f"notification {i + 1}", spec.describe()) for i, spec in enumerate(self.notifications)
        )
        return rows

    def summary(self) -> str:
        """A plain-text summary, one fact per line (the text twin of `_repr_html_`)."""
        rows = self.summary_rows()
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)

    def _repr_html_(self) -> str:
        """An HTML table of `summary_rows`, every value escaped, with a ``<pre>`` text fallback."""
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
            f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
            for label, value in self.summary_rows()
        )
        return (
            "<div class='backuppolicy-policy'>"
            f"<pre class='backuppolicy-text-fallback' style='display:none'>"
            f"{html.escape(repr(self))}\n{html.escape(self.summary())}</pre>"
            f"<table>{body}</table></div>"
        )

    # ---- the human document ----------------------------------------------------------------

    def to_markdown(self, *, policy_file: str = "policy.yaml") -> str:
        """Render the human policy document, in the sections of the written policy.

        Every number comes from this object, so the document cannot drift from the code.
        *policy_file* is the file name the document's commands refer to.
        """
        return render_markdown(self, policy_file)


def _lookup_error(what: str, name: str, known: tuple[str, ...]) -> PolicyLookupError:
    hint = did_you_mean(name, known)
    listing = ", ".join(known) if known else "none"
    message = f"no {what} {short_repr(name)} in the policy (known: {listing})."
    if hint:
        message = f"{message} {hint}"
    return PolicyLookupError(message, name=name, known=known)
