"""How backups are named: one rule for every kind.

A backup's name carries one UTC stamp, ``yyyymmddthhmmssz`` (lowercase, as RDS identifiers
must be): ``bp-<target>-<stamp>``, followed by what the kind needs to keep names unique.

- A **scheduled** backup (made by `backuppolicy.backup`) is named after the **slot** it
  belongs to: the scheduled run it fulfils, ``Schedule.last_due(now)``, the latest scheduled
  time at or before the run. A job that runs late still fills the slot it is late for: with a
  daily ``04:00`` UTC schedule, a run at 03:17 on 2026-12-06 makes the backup of the
  2026-12-05 04:00 slot (the 2026-12-06 04:00 slot is not due yet), named
  ``…-20261205t040000z…``. The idempotency token is made from the same slot, so a second run
  in the slot finds the first backup instead of making another.
- A **manual** or on-demand backup (`backuppolicy.backup_now`, ``backup(force=True)``, or a
  target called without a token) is named after the **time it was taken** (the ``now`` of
  the request); a second one in the same second gets a suffix that keeps the name unique.

The stamp travels in the token (`scheduled_token`, `manual_token`), so every kind derives
the same name from the same token, and a retried call derives the same name again
(`token_stamp`). A token of your own that ends in no stamp names the backup after the time
it was taken.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from backuppolicy.core.model import ensure_aware

__all__ = [
    "NAME_STAMP",
    "manual_token",
    "name_stamp",
    "scheduled_token",
    "token_stamp",
]

NAME_STAMP: Final = "%Y%m%dt%H%M%Sz"
"""The ``strftime`` format of the UTC stamp in backup names (``20261205t040000z``)."""

_TOKEN_STAMP: Final = "%Y%m%dT%H%M%SZ"
_TOKEN_STAMP_RE: Final = re.compile(r"(?:^|-)(\d{8}T\d{6}Z)$")


def scheduled_token(policy: str, target: str, slot: datetime) -> str:
    """The idempotency token of the scheduled backup of *target* for *slot*.

    Example:
        >>> scheduled_token("prod", "db", datetime(2026, 12, 5, 4, tzinfo=UTC))
        'prod-db-20261205T040000Z'
    """
    slot = ensure_aware(slot, field="slot").astimezone(UTC)
    return f"{policy}-{target}-{slot:{_TOKEN_STAMP}}"


def manual_token(target: str, when: datetime) -> str:
    """The default token of a manual backup of *target* requested at *when*.

    Example:
        >>> manual_token("db", datetime(2026, 12, 6, 3, 17, tzinfo=UTC))
        'manual-db-20261206T031700Z'
    """
    when = ensure_aware(when, field="now").astimezone(UTC)
    return f"manual-{target}-{when:{_TOKEN_STAMP}}"


def token_stamp(token: str | None) -> datetime | None:
    """The UTC time a token ends with (its slot, or when a manual backup was asked for), or None.

    Example:
        >>> token_stamp("prod-db-20261205T040000Z")
        datetime.datetime(2026, 12, 5, 4, 0, tzinfo=datetime.timezone.utc)
        >>> token_stamp("change-42") is None
        True
    """
    if not token:
        return None
    match = _TOKEN_STAMP_RE.search(token)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), _TOKEN_STAMP).replace(tzinfo=UTC)
    except ValueError:  # 20261399T…: digits, but no date
        return None


def name_stamp(token: str | None, now: datetime) -> str:
    """The stamp of a backup's name: the time *token* ends with, else *now* (UTC, lowercase).

    Example:
        >>> name_stamp("prod-db-20261205T040000Z", datetime(2026, 12, 6, 3, 17, tzinfo=UTC))
        '20261205t040000z'
        >>> name_stamp(None, datetime(2026, 12, 6, 3, 17, tzinfo=UTC))
        '20261206t031700z'
    """
    moment = token_stamp(token) or ensure_aware(now, field="now")
    return moment.astimezone(UTC).strftime(NAME_STAMP)
