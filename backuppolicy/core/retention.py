"""Retention rules and the retention planner: which recovery points to keep, and why.

A rule answers one question, "which of these points do I keep?", with a reason for
each point it keeps. The count rules follow restic's ``forget`` exactly (see
``tests/data/restic`` for the 40 reference cases they reproduce); `MaxAge` is the
seed policy's "we retain backups for 35 days", measured from ``now``. Rules
combine by union with ``|``::

    rule = MaxAge(days=35) | KeepDaily(7) | KeepWeekly(4)
    rule.keep(points, now=now)   # {point.id: [reasons]}: the pure rule, no floors
    rule.plan(points, now=now)   # RetentionPlan: the rule plus the planner's safety floors

Semantics, in short (the explanation page has the long form):

* Points are grouped by the point's ``target``; every target is evaluated on its own.
* Order is newest first by ``created_at``; equal times are ordered by the backend's own
  order where it has one (the larger `RecoveryPoint.ordinal` is newer: S3 lists a key's
  versions newest first), else by ``id`` descending (restic's rule: the larger id counts as
  the newer point). See `RecoveryPoint.order_key`; the input order never matters.
* Count and per-period rules (`KeepLast`, `KeepHourly` ... `KeepYearly`,
  ``KeepWithin(per=...)``) and the reference point of `KeepWithin` consider only
  completed points. `MaxAge`, plain `KeepWithin` and `KeepTags` apply to any status.
* Periods are wall-clock hours, days, ISO weeks (ISO year + ISO week), months and
  years in the policy's time zone *tz* (default UTC).
* Windows are strict: `MaxAge` keeps points created strictly after ``now - duration``;
  a point exactly 35 days old is not kept by ``MaxAge(days=35)``.

The planner adds, with their own reasons: points under legal hold are kept; the
newest completed point of each target is kept; pending points, points created in the
future and points not managed by backuppolicy are never deleted. Rules see only
managed points in a plan: a point we do not own never fills a bucket, because its
owner may delete it behind our back.

This module is the public path of the engine: it re-exports every public name and reads
a policy file's ``retention`` mapping (`rule_from_spec`). The code lives in one module
per idea: ``_rules`` (`RetentionRule`, `as_rule`, `AnyOf`), ``_keep_rules`` (the
built-in rules), ``_planner`` (`RetentionPlan` and the floors), ``_prepared`` (points
grouped by target as sorted columns) and ``_periods`` (period keys and restic's buckets).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from backuppolicy.core._keep_rules import (
    KeepDaily,
    KeepHourly,
    KeepLast,
    KeepMonthly,
    KeepTags,
    KeepWeekly,
    KeepWithin,
    KeepYearly,
    MaxAge,
    check_count,
    tag_set,
)
from backuppolicy.core._periods import ADJECTIVE, PERIODS
from backuppolicy.core._planner import RetentionPlan
from backuppolicy.core._rules import AnyOf, RetentionRule, RetentionRuleT, as_rule
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError, cut_path, short_repr

__all__ = [
    "AnyOf",
    "KeepDaily",
    "KeepHourly",
    "KeepLast",
    "KeepMonthly",
    "KeepTags",
    "KeepWeekly",
    "KeepWithin",
    "KeepYearly",
    "MaxAge",
    "RetentionPlan",
    "RetentionRule",
    "RetentionRuleT",
    "as_rule",
    "rule_from_spec",
]


# --------------------------------------------------------------------------------------
# rule_from_spec
# --------------------------------------------------------------------------------------

_COUNT_KEYS: dict[str, type[RetentionRule]] = {
    "keep_last": KeepLast,
    "keep_hourly": KeepHourly,
    "keep_daily": KeepDaily,
    "keep_weekly": KeepWeekly,
    "keep_monthly": KeepMonthly,
    "keep_yearly": KeepYearly,
}
_WITHIN_KEYS = {f"keep_within_{ADJECTIVE[per]}": per for per in PERIODS}
_SPEC_KEYS = ("max_age", *_COUNT_KEYS, "keep_within", *_WITHIN_KEYS, "keep_tags")


def _spec_count(value: object, where: str) -> int:
    if value == "unlimited":
        return -1
    return check_count(where, value)


def _spec_duration(value: object, where: str) -> Duration:
    duration = Duration.coerce(value, field=where)
    if duration.is_zero:
        raise PolicyError.for_field(where, "a duration longer than zero", value)
    return duration


def _spec_tags(value: object, where: str) -> KeepTags:
    expected = "a list of tag sets, each a list of tag keys or a mapping of key to value"
    if not isinstance(value, (list, tuple)) or not value:
        raise PolicyError.for_field(where, expected, value)
    for index, item in enumerate(value):
        tag_set(item, f"{where}[{index}]")
    return KeepTags(*value)


def rule_from_spec(spec: Mapping[str, object], *, path: str = "retention") -> RetentionRule:
    """Build a rule from a policy file's ``retention`` mapping.

    Keys: ``max_age`` (``"35d"``), ``keep_last``, ``keep_hourly``, ``keep_daily``,
    ``keep_weekly``, ``keep_monthly``, ``keep_yearly`` (integers >= 1, or -1 or
    ``"unlimited"``), ``keep_within`` and ``keep_within_hourly`` ... ``keep_within_yearly``
    (durations), ``keep_tags`` (a list of tag sets). One key gives that rule; several give
    an `AnyOf` in the order of the mapping.

    Args:
        spec: The mapping.
        path: Where the mapping sits in the policy, for error messages.

    Raises:
        PolicyError: The mapping is empty (a policy that keeps nothing is refused: it would
            delete every backup), has an unknown key (with a "did you mean" suggestion), or
            a value is invalid; the error names the field, e.g. ``retention.keep_daily``.

    Example:
        >>> rule_from_spec({"max_age": "35d", "keep_monthly": 12})
        AnyOf(MaxAge('35d'), KeepMonthly(12))
        >>> rule_from_spec({"keep_dayly": 7})
        Traceback (most recent call last):
        ...
        backuppolicy.core.exceptions.PolicyError: retention.keep_dayly: expected one of max_age, keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within, keep_within_hourly, keep_within_daily, keep_within_weekly, keep_within_monthly, keep_within_yearly, keep_tags (got 'keep_dayly'); did you mean 'keep_daily'?
    """
    if not isinstance(spec, Mapping):
        raise PolicyError.for_field(path, "a mapping of retention options", spec)
    if not spec:
        raise PolicyError(
            f"{path}: expected at least one retention option (got {{}}). A policy that keeps "
            "nothing is refused: it would delete every backup. Set max_age, keep_daily, ...",
            path=path,
            expected="at least one retention option",
            got={},
        )
    rules: list[RetentionRule] = []
    for key, value in spec.items():
        where = cut_path(f"{path}.{key}")
        if key == "max_age":
            rules.append(MaxAge(_spec_duration(value, where)))
        elif key in _COUNT_KEYS:
            rules.append(_COUNT_KEYS[key](_spec_count(value, where)))  # type: ignore[call-arg]
        elif key == "keep_within":
            rules.append(KeepWithin(_spec_duration(value, where)))
        elif key in _WITHIN_KEYS:
            rules.append(KeepWithin(_spec_duration(value, where), per=_WITHIN_KEYS[key]))
        elif key == "keep_tags":
            rules.append(_spec_tags(value, where))
        else:
            expected = "one of " + ", ".join(_SPEC_KEYS)
            close = difflib.get_close_matches(str(key), _SPEC_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "."
            raise PolicyError(
                f"{where}: expected {expected} (got {short_repr(key)}){hint}",
                path=where,
                expected=expected,
                got=key,
            )
    return rules[0] if len(rules) == 1 else AnyOf(*rules)
