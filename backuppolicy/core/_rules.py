"""The retention rule base: `RetentionRule`, plain callables as rules, and the union `AnyOf`.

One idea: what a rule is (``keep``, ``plan``, ``|``, ``describe``, ``to_spec``) and how
rules combine. The built-in rules are in `backuppolicy.core._keep_rules`; everything is
re-exported by `backuppolicy.core.retention`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, tzinfo
from typing import TypeAlias, cast

import attrs

from backuppolicy.core._planner import RetentionPlan, plan_points
from backuppolicy.core._prepared import (
    Prepared,
    Reasons,
    add_reason,
    gc_paused,
    group_points,
    now_utc,
    zone,
)
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import RecoveryPoint

__all__ = ["AnyOf", "RetentionRule", "RetentionRuleT", "as_rule"]


class RetentionRule(abc.ABC):
    """Base of every retention rule: ``keep``, ``plan``, ``|``, ``describe`` and ``to_spec``.

    Subclasses implement ``_apply`` (the rule over prepared, grouped, sorted points),
    `describe` and `to_spec`. Plain callables are accepted wherever a rule is, see `as_rule`.

    Example:
        >>> from datetime import datetime, timedelta, UTC
        >>> from backuppolicy import KeepLast, MaxAge, RecoveryPoint
        >>> now = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
        >>> points = [RecoveryPoint(id=f"s{i}", target="db", created_at=now - timedelta(days=i))
        ...           for i in range(5)]
        >>> rule = KeepLast(2) | MaxAge(days=3)
        >>> rule.keep(points, now=now)["s1"]
        ['last 2', 'younger than 3d']
        >>> rule.plan(points, now=now)
        <backuppolicy.RetentionPlan(keep=3, delete=2)>
    """

    __slots__ = ()

    def keep(
        self, points: Iterable[RecoveryPoint], *, now: datetime, tz: str | tzinfo = "UTC"
    ) -> dict[str, list[str]]:
        """Return ``{point.id: [reasons]}`` for the points this rule keeps (no floors, no holds).

        Args:
            points: The recovery points, of any number of targets, in any order.
            now: The current time (timezone-aware); `MaxAge` measures from it, and points
                created after it are "in the future" (they never serve as the `KeepWithin`
                reference).
            tz: The policy's time zone: the wall clock that defines hours, days, weeks,
                months and years, and on which calendar durations step.

        Raises:
            ValueError: Two points share an id.
            PolicyError: *now* is naive or *tz* is not a time zone.
        """
        now, tz_info = now_utc(now), zone(tz)
        out: Reasons = {}
        with gc_paused():
            self._apply(Prepared(group_points(points), now, tz_info), out)
        return {pid: list(reasons) for pid, reasons in out.items()}

    def plan(
        self, points: Iterable[RecoveryPoint], *, now: datetime, tz: str | tzinfo = "UTC"
    ) -> RetentionPlan:
        """Split *points* into keep and delete, with at least one reason for every point.

        The rule runs over the managed points; then the planner's floors apply: legal holds,
        the newest completed point of each target, pending points, points created in the
        future and unmanaged points are always kept.

        Raises:
            ValueError: Two points share an id.
            PolicyError: *now* is naive or *tz* is not a time zone.
        """
        return plan_points(
            self._apply, self._delete_reasons(), points, now=now_utc(now), tz=zone(tz)
        )

    def __or__(self, other: RetentionRuleT) -> AnyOf:
        return AnyOf(self, other)

    def __ror__(self, other: RetentionRuleT) -> AnyOf:
        return AnyOf(other, self)

    @abc.abstractmethod
    def _apply(self, prepared: Prepared, out: Reasons) -> None:
        """Append this rule's reasons for the points it keeps to *out*."""

    def _delete_reasons(self) -> list[str]:
        """Reasons that explain, for any point this rule does not keep, why (if it can say)."""
        return []

    @abc.abstractmethod
    def describe(self) -> str:
        """Human words for the policy document, e.g. ``"keep every backup younger than 35 days"``."""

    @abc.abstractmethod
    def to_spec(self) -> dict[str, object]:
        """Return the spec mapping that `rule_from_spec` turns back into an equal rule.

        Raises:
            PolicyError: The rule has no spec form (a plain callable, or two rules of the same kind).
        """


RetentionRuleT: TypeAlias = RetentionRule | Callable[..., Mapping[str, list[str]]]
"""A retention rule or a plain callable ``f(points, *, now, tz) -> {id: [reasons]}``."""


@attrs.frozen(repr=False)
class _CallableRule(RetentionRule):
    """A plain callable ``f(points, *, now, tz) -> {id: [reasons]}`` used as a rule."""

    func: Callable[..., Mapping[str, list[str]]]

    def __repr__(self) -> str:
        return f"as_rule({self._name()})"

    def _name(self) -> str:
        return str(getattr(self.func, "__qualname__", None) or repr(self.func))

    def _apply(self, prepared: Prepared, out: Reasons) -> None:
        points = list(prepared.iter_points())
        known = {point.id for point in points}
        result = self.func(points, now=prepared.now, tz=prepared.tz)
        for pid, reasons in result.items():
            if pid not in known:
                raise ValueError(
                    f"retention callable {self._name()} kept an unknown point id {pid!r}."
                )
            for reason in reasons or [f"kept by {self._name()}"]:
                add_reason(out, pid, str(reason))

    def describe(self) -> str:
        """Human words: ``"keep what my_rule keeps"``."""
        return f"keep what {self._name()} keeps"

    def to_spec(self) -> dict[str, object]:
        """A callable has no spec form.

        Raises:
            PolicyError: Always.
        """
        raise PolicyError.for_field(
            "retention", "a built-in rule (a callable has no spec)", self.func
        )


def as_rule(rule: RetentionRuleT) -> RetentionRule:
    """Return *rule* if it is a `RetentionRule`, else wrap the plain callable as one.

    The callable is called once per evaluation as ``func(points, now=now, tz=tz)`` with
    every point (all targets, each target's points newest first; *now* in UTC, *tz* a
    ``tzinfo``) and returns ``{point.id: [reasons]}`` for the points it keeps.

    Raises:
        PolicyError: *rule* is neither a rule nor callable.

    Example:
        >>> from backuppolicy import KeepDaily
        >>> def keep_manual(points, *, now, tz):
        ...     return {p.id: ["manual"] for p in points if p.tags.get("backuppolicy:reason") == "manual"}
        >>> rule = KeepDaily(7) | keep_manual
        >>> rule.describe()
        'keep the newest completed backup of each of the last 7 days that have one; keep what keep_manual keeps'
    """
    if isinstance(rule, RetentionRule):
        return rule
    if callable(rule):
        return _CallableRule(rule)
    raise PolicyError.for_field("rule", "a RetentionRule or a callable", rule)


def _flatten(rules: Iterable[RetentionRuleT]) -> tuple[RetentionRule, ...]:
    flat: list[RetentionRule] = []
    for rule in rules:
        wrapped = as_rule(rule)
        if isinstance(wrapped, AnyOf):
            flat.extend(wrapped.rules)
        else:
            flat.append(wrapped)
    return tuple(flat)


@attrs.frozen(init=False, repr=False)
class AnyOf(RetentionRule):
    """The union of rules: a point is kept if any rule keeps it, with every rule's reasons.

    ``a | b`` builds an ``AnyOf``; nested unions are flattened, so ``a | b | c`` is
    ``AnyOf(a, b, c)``. ``AnyOf()`` keeps nothing.

    Example:
        >>> from backuppolicy import KeepDaily, KeepWeekly, MaxAge
        >>> KeepDaily(7) | KeepWeekly(4) | MaxAge(days=35)
        AnyOf(KeepDaily(7), KeepWeekly(4), MaxAge('35d'))

    Attributes:
        rules: The rules, in the order their reasons are listed.
    """

    rules: tuple[RetentionRule, ...]

    def __init__(self, *rules: RetentionRuleT) -> None:
        self.__attrs_init__(_flatten(rules))

    def __repr__(self) -> str:
        return f"AnyOf({', '.join(map(repr, self.rules))})"

    def _apply(self, prepared: Prepared, out: Reasons) -> None:
        for rule in self.rules:
            rule._apply(prepared, out)  # noqa: SLF001 - same class family

    def _delete_reasons(self) -> list[str]:
        return [reason for rule in self.rules for reason in rule._delete_reasons()]  # noqa: SLF001

    def describe(self) -> str:
        """The rules' descriptions joined by ``"; "``."""
        return "; ".join(rule.describe() for rule in self.rules) or "keep nothing"

    def to_spec(self) -> dict[str, object]:
        """Merge the rules' specs (``keep_tags`` lists are concatenated).

        Raises:
            PolicyError: Two rules write the same key (``KeepDaily(7) | KeepDaily(3)``).
        """
        spec: dict[str, object] = {}
        for rule in self.rules:
            for key, value in rule.to_spec().items():
                if key == "keep_tags" and key in spec:
                    spec[key] = [*cast("list[object]", spec[key]), *cast("list[object]", value)]
                elif key in spec:
                    raise PolicyError.for_field(
                        f"retention.{key}",
                        "at most one rule per option",
                        f"{spec[key]!r} and {value!r}",
                    )
                else:
                    spec[key] = value
        return spec
