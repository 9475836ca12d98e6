"""RDS's own automated-backup settings: `BackupSettings`, `BackupWindow`, `Drift`.

The values (with their validation) and `RdsSettings`, the mixin of the RDS targets that
reads, checks and enforces them (`RdsInstance.settings`, ``drift``, ``enforce``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any

import attrs

from backuppolicy.aws._rds_base import RdsBase
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import (
    PolicyError,
)

__all__ = ["BackupSettings", "BackupWindow", "Drift", "RdsSettings", "maintenance_overlap"]

_MAX_RETENTION = 35
_MIN_WINDOW = timedelta(minutes=30)
_DAY = timedelta(days=1)
_WINDOW_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_MAINTENANCE_RE = re.compile(
    r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)-"
    r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)$"
)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# --------------------------------------------------------------------------- settings values


def _to_timedelta(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    duration = Duration.coerce(value, field="backup_window.duration")
    if not duration.is_exact:
        raise PolicyError.for_field(
            "backup_window.duration", "a duration in days, hours or minutes", value
        )
    return duration.approx_timedelta()


def _check_start(_inst: object, _attr: attrs.Attribute[dt_time], value: dt_time) -> None:
    if not isinstance(value, dt_time) or value.second or value.microsecond:
        raise PolicyError.for_field(
            "backup_window.start", "a datetime.time in UTC on a whole minute", value
        )
    if value.tzinfo is not None and value.utcoffset() != timedelta(0):
        raise PolicyError.for_field("backup_window.start", "a time in UTC", value)


def _check_length(_inst: object, _attr: attrs.Attribute[timedelta], value: timedelta) -> None:
    if value < _MIN_WINDOW or value >= _DAY or value % timedelta(minutes=1):
        raise PolicyError.for_field(
            "backup_window.duration",
            "a whole number of minutes, at least 30 minutes and less than 24 hours (RDS's limits)",
            value,
        )


@attrs.frozen
class BackupWindow:
    """The daily window, in UTC, in which RDS takes its automated backups.

    RDS wants ``hh24:mi-hh24:mi`` in UTC, at least 30 minutes long; a window may
    run past midnight (``"23:30-00:30"``).

    Example:
        >>> window = BackupWindow(dt_time(4, 0), "1h")
        >>> str(window)
        '04:00-05:00'
        >>> BackupWindow.parse("04:00-05:00") == window
        True
        >>> BackupWindow.parse("04:00-04:10")
        Traceback (most recent call last):
        ...
        backuppolicy.core.exceptions.PolicyError: backup_window: expected 'hh24:mi-hh24:mi' in UTC, at least 30 minutes long (got '04:00-04:10').

    Attributes:
        start: Start of the window (UTC, whole minutes).
        duration: Length of the window: a `datetime.timedelta`, or ``"30min"``/``"1h"``.
    """

    start: dt_time = attrs.field(validator=_check_start)
    duration: timedelta = attrs.field(
        default=timedelta(minutes=30), converter=_to_timedelta, validator=_check_length
    )

    @classmethod
    def parse(cls, text: object, *, field: str = "backup_window") -> BackupWindow:
        """Read RDS's ``"04:00-05:00"`` form.

        Raises:
            PolicyError: *text* is not ``hh24:mi-hh24:mi`` or the window is shorter than 30 minutes.
        """
        expected = "'hh24:mi-hh24:mi' in UTC, at least 30 minutes long"
        match = _WINDOW_RE.match(text) if isinstance(text, str) else None
        if match is None:
            raise PolicyError.for_field(field, expected, text)
        h1, m1, h2, m2 = (int(group) for group in match.groups())
        length = timedelta(hours=h2 - h1, minutes=m2 - m1) % _DAY
        if length < _MIN_WINDOW:
            raise PolicyError.for_field(field, expected, text)
        return cls(dt_time(h1, m1), length)

    @classmethod
    def coerce(cls, value: object, *, field: str = "backup_window") -> BackupWindow:
        """Accept a `BackupWindow` or its ``"04:00-05:00"`` text."""
        if isinstance(value, BackupWindow):
            return value
        return cls.parse(value, field=field)

    @property
    def end(self) -> dt_time:
        """End of the window (UTC)."""
        moment = datetime.combine(datetime(2000, 1, 1, tzinfo=UTC).date(), self.start)
        return (moment + self.duration).time()

    def minutes(self) -> tuple[int, int]:
        """Start and end as minutes after midnight (the end may exceed 1440 past midnight)."""
        begin = self.start.hour * 60 + self.start.minute
        return begin, begin + self.duration // timedelta(minutes=1)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def _window_or_none(value: object) -> BackupWindow | None:
    return None if value is None else BackupWindow.coerce(value)


def _check_retention(_inst: object, _attr: attrs.Attribute[int | None], value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_RETENTION:
        raise PolicyError.for_field(
            "retention_days", "an integer from 0 to 35 (RDS's limit)", value
        )


def _check_bool(_inst: object, attribute: attrs.Attribute[bool | None], value: object) -> None:
    if value is not None and not isinstance(value, bool):
        raise PolicyError.for_field(attribute.name, "True, False or None", value)


@attrs.frozen
class BackupSettings:
    """RDS's own automated-backup settings of an instance or cluster.

    As the result of `RdsInstance.settings` every field is filled in; as the
    *expected* settings of `RdsInstance.drift` and `RdsInstance.enforce`, a field left
    ``None`` is not checked.

    Example:
        >>> policy = BackupSettings(retention_days=35, backup_window="04:00-05:00",
        ...                         copy_tags_to_snapshot=True)
        >>> str(policy.backup_window)
        '04:00-05:00'
        >>> BackupSettings(retention_days=36)
        Traceback (most recent call last):
        ...
        backuppolicy.core.exceptions.PolicyError: retention_days: expected an integer from 0 to 35 (RDS's limit) (got 36).

    Attributes:
        retention_days: ``BackupRetentionPeriod``: days RDS keeps automated backups (0-35;
            0 turns automated backups off; Aurora needs at least 1).
        backup_window: ``PreferredBackupWindow`` as a `BackupWindow` (text is accepted).
        copy_tags_to_snapshot: ``CopyTagsToSnapshot``: whether snapshots get the instance's tags.
    """

    retention_days: int | None = attrs.field(default=None, validator=_check_retention)
    backup_window: BackupWindow | None = attrs.field(default=None, converter=_window_or_none)
    copy_tags_to_snapshot: bool | None = attrs.field(default=None, validator=_check_bool)

    @classmethod
    def coerce(cls, value: object, *, field: str = "expected") -> BackupSettings:
        """Accept `BackupSettings` or a mapping of its field names.

        Raises:
            PolicyError: *value* is neither, or names an unknown field.
        """
        if isinstance(value, BackupSettings):
            return value
        if not isinstance(value, Mapping):
            raise PolicyError.for_field(field, "BackupSettings or a mapping", value)
        names = [a.name for a in attrs.fields(cls)]
        for key in value:
            if key not in names:
                raise PolicyError.for_field(f"{field}.{key}", "one of " + ", ".join(names), key)
        return cls(**value)


@attrs.frozen
class Drift:
    """One setting whose actual value differs from the expected one.

    Example:
        >>> Drift("retention_days", 35, 7).describe()
        'retention_days: expected 35, actual 7'

    Attributes:
        field: Name of the `BackupSettings` field.
        expected: The value the policy wants.
        actual: The value the instance has.
    """

    field: str
    expected: object
    actual: object

    def describe(self) -> str:
        """One line for reports: ``"retention_days: expected 35, actual 7"``."""
        expected = str(self.expected) if isinstance(self.expected, BackupWindow) else self.expected
        actual = str(self.actual) if isinstance(self.actual, BackupWindow) else self.actual
        return f"{self.field}: expected {expected}, actual {actual}"


# --------------------------------------------------------------------------- helpers


def maintenance_overlap(window: BackupWindow, maintenance: str) -> bool:
    """Whether the daily *window* overlaps the weekly ``ddd:hh:mm-ddd:hh:mm`` *maintenance*."""
    match = _MAINTENANCE_RE.match(maintenance.lower()) if maintenance else None
    if match is None:
        return False
    day1, h1, m1, day2, h2, m2 = match.groups()
    week = 7 * 24 * 60
    begin = _WEEKDAYS.index(day1) * 1440 + int(h1) * 60 + int(m1)
    end = _WEEKDAYS.index(day2) * 1440 + int(h2) * 60 + int(m2)
    if end <= begin:
        end += week
    start, stop = window.minutes()
    for day in range(-1, 8):
        a, b = day * 1440 + start, day * 1440 + stop
        for shift in (-week, 0, week):
            if a < end + shift and begin + shift < b:
                return True
    return False


class RdsSettings(RdsBase):
    """Reads, checks and enforces the automated-backup settings of the instance or cluster."""

    def settings(self) -> BackupSettings:
        """Read the automated-backup settings (retention, window, copy tags to snapshots)."""
        raw = self._describe_resource()
        window_text = raw.get("PreferredBackupWindow")
        try:
            window = BackupWindow.parse(window_text) if window_text else None
        except PolicyError:
            window = None  # RDS never returns a window it would refuse; be lenient anyway
        return BackupSettings(
            retention_days=min(int(raw.get("BackupRetentionPeriod", 0)), _MAX_RETENTION),
            backup_window=window,
            copy_tags_to_snapshot=bool(raw.get("CopyTagsToSnapshot", False)),
        )

    def drift(self, expected: BackupSettings | Mapping[str, object]) -> list[Drift]:
        """Compare the actual settings with *expected*; one `Drift` per differing field.

        Fields of *expected* that are ``None`` are not compared.
        """
        wanted = BackupSettings.coerce(expected)
        raw = self._describe_resource()
        return self._drift(wanted, raw)

    def _drift(self, wanted: BackupSettings, raw: Mapping[str, Any]) -> list[Drift]:
        window_text = raw.get("PreferredBackupWindow")
        try:
            actual_window: BackupWindow | str | None = (
                BackupWindow.parse(window_text) if window_text else None
            )
        except PolicyError:
            actual_window = str(window_text)
        actual = {
            "retention_days": int(raw.get("BackupRetentionPeriod", 0)),
            "backup_window": actual_window,
            "copy_tags_to_snapshot": bool(raw.get("CopyTagsToSnapshot", False)),
        }
        drifts = []
        for field in attrs.fields(BackupSettings):
            value = getattr(wanted, field.name)
            if value is not None and value != actual[field.name]:
                drifts.append(Drift(field.name, value, actual[field.name]))
        return drifts

    def enforce(
        self, expected: BackupSettings | Mapping[str, object], *, apply: bool = False
    ) -> list[Drift]:
        """Return the changes needed to reach *expected*; make them only when *apply* is true.

        Changes are applied at once (``ApplyImmediately=True``) in one modify call. Turning
        automated backups on or off (retention 0 <-> 1+) reboots an RDS instance.

        Raises:
            PolicyError: *expected* breaks an RDS limit that moto does not check: retention
                above 35 days (or 0 for Aurora), a window shorter than 30 minutes, a window
                that overlaps the maintenance window.
        """
        wanted = BackupSettings.coerce(expected)
        if wanted.retention_days is not None and wanted.retention_days < self._api.min_retention:
            raise PolicyError.for_field(
                "retention_days",
                f"an integer from {self._api.min_retention} to 35 for {self.kind}",
                wanted.retention_days,
            )
        raw = self._describe_resource()
        maintenance = str(raw.get("PreferredMaintenanceWindow") or "")
        if wanted.backup_window is not None and maintenance_overlap(
            wanted.backup_window, maintenance
        ):
            raise PolicyError.for_field(
                "backup_window",
                f"a window that does not overlap the maintenance window {maintenance!r}",
                str(wanted.backup_window),
            )
        drifts = self._drift(wanted, raw)
        if apply and drifts:
            names = {
                "retention_days": "BackupRetentionPeriod",
                "backup_window": "PreferredBackupWindow",
                "copy_tags_to_snapshot": "CopyTagsToSnapshot",
            }
            params: dict[str, Any] = {  # boto3 request parameters
                names[d.field]: str(d.expected) if d.field == "backup_window" else d.expected
                for d in drifts
            }
            api = self._api
            self.call(
                "rds",
                api.modify_resource,
                resource=self.resource_id,
                ApplyImmediately=True,
                **{api.resource_param: self.resource_id},
                **params,
            )
        return drifts
