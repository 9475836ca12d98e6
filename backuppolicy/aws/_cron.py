"""AWS's cron: a `~backuppolicy.core.schedule.Schedule` in the 6-field ``cron(...)`` AWS takes.

Shared by `backuppolicy.aws.backup_plan` (AWS Backup rules, restore testing) and
`backuppolicy.aws.lifecycle_scheduler` (EventBridge Scheduler). `aws_cron` and
`validate_aws_cron` are re-exported by `backuppolicy.aws.backup_plan`.
"""

from __future__ import annotations

import re
from typing import Final

from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.schedule import Cadence, Schedule

__all__ = ["aws_cron", "schedule_of", "validate_aws_cron", "window_minutes"]

_DOW_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_DOW_TOKEN: Final = re.compile(r"(\d+|[A-Za-z]{3})((?:#\d)|L)?")
_AWS_CRON: Final = re.compile(r"cron\((.*)\)")


def _dow_name(token: str, *, path: str, cron: str) -> str:
    match = _DOW_TOKEN.fullmatch(token)
    if match is None:
        raise PolicyError.for_field(path, "a day of the week 0-7 or SUN-SAT", cron)
    day, suffix = match.group(1), match.group(2) or ""
    if day.isdigit():
        if int(day) > len(_DOW_NAMES) - 1:
            raise PolicyError.for_field(path, "a day of the week 0-7 or SUN-SAT", cron)
        day = _DOW_NAMES[int(day)]
    return day.upper() + suffix


def _aws_dow(field: str, *, path: str, cron: str) -> str:
    items = []
    for item in field.split(","):
        base, slash, step = item.partition("/")
        names = (
            base
            if base == "*"
            else "-".join(_dow_name(t, path=path, cron=cron) for t in base.split("-"))
        )
        items.append(f"{names}{slash}{step}")
    return ",".join(items)


def aws_cron(schedule: Schedule, *, path: str = "schedule") -> str:
    """Translate a `~backuppolicy.core.schedule.Schedule`'s 5-field cron to AWS's 6-field ``cron(...)``.

    AWS needs ``?`` in day-of-month or day-of-week, a year field, and (for AWS Backup) at most one
    run per hour. Days of the week become names (cron's ``0`` and AWS's ``1`` are both Sunday).

    Raises:
        PolicyError: The schedule restricts both day-of-month and day-of-week (AWS cannot say
            "either"), or runs more often than hourly; the message names ``<path>.cron``.

    Example:
        >>> aws_cron(Schedule("0 4 * * 1-5"))
        'cron(0 4 ? * MON-FRI *)'
        >>> aws_cron(Schedule.daily(at="04:00"))
        'cron(0 4 * * ? *)'
    """
    field = f"{path}.cron"
    minute, hour, dom, month, dow = schedule.cron.split()
    if not minute.isdigit():
        raise PolicyError.for_field(
            field,
            "a cron expression with one fixed minute (AWS Backup runs at most once an hour)",
            schedule.cron,
        )
    if dow == "*":
        dow = "?"
    elif dom == "*":
        dom = "?"
        dow = _aws_dow(dow, path=field, cron=schedule.cron)
    else:
        raise PolicyError.for_field(
            field,
            "a cron expression that restricts day-of-month or day-of-week, not both "
            "(AWS needs '?' in one of them)",
            schedule.cron,
        )
    return validate_aws_cron(f"cron({minute} {hour} {dom} {month} {dow} *)", path=field)


def validate_aws_cron(expression: str, *, path: str = "ScheduleExpression") -> str:
    """Check an AWS ``cron(...)`` expression the way AWS Backup does, and return it.

    Six fields (minute hour day-of-month month day-of-week year), exactly one of day-of-month and
    day-of-week ``?``, and one fixed minute (AWS Backup's minimum frequency is one hour).

    Raises:
        PolicyError: Any of those does not hold; the message names *path*.

    Example:
        >>> validate_aws_cron("cron(0 5 ? * SUN *)")
        'cron(0 5 ? * SUN *)'
    """
    expected = (
        "an AWS cron expression 'cron(minute hour day-of-month month day-of-week year)' "
        "with '?' in exactly one of day-of-month and day-of-week"
    )
    match = _AWS_CRON.fullmatch(expression.strip()) if isinstance(expression, str) else None
    if match is None:
        raise PolicyError.for_field(path, expected, expression)
    fields = match.group(1).split()
    if len(fields) != 6 or (fields[2] == "?") == (fields[4] == "?"):  # noqa: PLR2004
        raise PolicyError.for_field(path, expected, expression)
    if not fields[0].isdigit() or int(fields[0]) > 59:  # noqa: PLR2004
        raise PolicyError.for_field(
            path, "a cron expression with one fixed minute 0-59 (at most hourly)", expression
        )
    return expression.strip()


def _at_of(schedule: Schedule) -> str:
    minute, hour = schedule.cron.split()[:2]
    if minute.isdigit() and hour.isdigit():
        return f"{int(hour):02d}:{int(minute):02d}"
    return "04:00"


def schedule_of(every: Cadence | Schedule, base: Schedule) -> Schedule:
    """A tier's or a cadence's own `Schedule`, at the time of day of *base*."""
    if isinstance(every, Schedule):
        return every
    at = f":{base.cron.split()[0].zfill(2)}" if every is Cadence.HOUR else _at_of(base)
    window = base.window if every is not Cadence.HOUR else "1h"
    return Schedule.every(every, at=at, tz=base.tz, window=window)


def window_minutes(schedule: Schedule) -> int:
    """The start window of *schedule* in whole minutes."""
    return int(schedule.window.approx_timedelta().total_seconds() // 60)
