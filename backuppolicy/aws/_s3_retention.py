"""Noncurrent-version retention of the S3 target, planned per key and applied in batches.

`NoncurrentRetention` plans retention of each key's versions with any retention rule
(`KeyRetentionPlan`), deletes the planned noncurrent versions with batched ``DeleteObjects``
(`RetentionRunReport`), or compiles the rule to a lifecycle rule that lets AWS do the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Protocol

import attrs

from backuppolicy.aws._s3_base import KIND_VERSION, split_id
from backuppolicy.aws._s3_lock import point_lock_of
from backuppolicy.aws._s3_pool import Pool, Requests
from backuppolicy.aws._s3_transfer import DELETE_BATCH_LIMIT, S3Transfer
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import RecoveryPoint, ensure_aware

if TYPE_CHECKING:
    from types_boto3_s3.type_defs import LifecycleRuleTypeDef, NoncurrentVersionExpirationTypeDef

__all__ = ["KeyRetentionPlan", "NoncurrentRetention", "RetentionRunReport"]

_CURRENT_REASON = "current version of the key: never deleted"


class _RetentionPlan(Protocol):
    @property
    def keep(self) -> Sequence[RecoveryPoint]: ...
    @property
    def delete(self) -> Sequence[RecoveryPoint]: ...
    @property
    def reasons(self) -> Mapping[str, Sequence[str]]: ...


class _Rule(Protocol):
    def plan(
        self, points: Iterable[RecoveryPoint], *, now: datetime, tz: str | tzinfo = ...
    ) -> _RetentionPlan: ...


@attrs.frozen
class KeyRetentionPlan:
    """The retention plan of the versions of one key (see `S3Bucket.noncurrent_retention_plan`).

    Attributes:
        key: The object key.
        keep: Versions (and delete markers) kept, newest first.
        delete: Noncurrent versions to delete, newest first.
        reasons: Reasons by point id, for every kept and deleted point.
    """

    key: str
    keep: tuple[RecoveryPoint, ...]
    delete: tuple[RecoveryPoint, ...]
    reasons: Mapping[str, tuple[str, ...]] = attrs.field(hash=False)


@attrs.frozen
class RetentionRunReport:
    """What `S3Bucket.apply_noncurrent_retention` did (or would do, with ``dry_run``).

    Attributes:
        keys: Keys planned.
        kept: Points kept (current versions and delete markers included).
        deleted: Noncurrent versions deleted (planned, with ``dry_run``).
        held: Versions the plan would delete but Object Lock protects (skipped).
        batches: ``DeleteObjects`` requests made.
        dry_run: Whether nothing was deleted.
        requests: S3 requests made, by API operation.
    """

    keys: int
    kept: int
    deleted: int
    held: int
    batches: int
    dry_run: bool
    requests: Mapping[str, int] = attrs.field(hash=False)


class NoncurrentRetention(S3Transfer):
    """Retention of noncurrent versions (a mixin of `backuppolicy.aws.s3.S3Bucket`)."""

    def noncurrent_retention_plan(
        self,
        rule: _Rule,
        *,
        now: datetime,
        tz: str | tzinfo = "UTC",
        page_size: int | None = None,
    ) -> Iterator[KeyRetentionPlan]:
        """Plan noncurrent-version retention **per key**, streaming one key at a time.

        Each key is planned on its own with ``rule.plan(points, now=now)``: its versions, plus
        its delete marker when the key is deleted. For planning, the key's current entry (current
        version or current delete marker) is the key's state now: it is passed as managed and
        dated *now*, so the planner's per-target floor ("newest completed point") lands on it and count rules count it: ``KeepLast(3)``
        keeps the current version and the two newest noncurrent ones. Whatever the rule says,
        the current entry is never in ``delete``, and noncurrent delete markers are neither
        planned nor deleted.

        Noncurrent versions are dated from the moment they were replaced, so
        ``MaxAge(days=35)`` keeps every version needed to restore any time in the last 35
        days: AWS's ``NoncurrentDays`` semantics (see `noncurrent_lifecycle_rule`).

        Memory holds one key's versions at a time.
        """
        ensure_aware(now, field="now")
        return self._plan_keys(rule, now, tz, None, page_size)

    def _plan_keys(
        self,
        rule: _Rule,
        now: datetime,
        tz: str | tzinfo,
        requests: Requests | None,
        page_size: int | None,
    ) -> Iterator[KeyRetentionPlan]:
        read_ahead = requests is not None
        groups = self._data_groups(requests=requests, page_size=page_size, read_ahead=read_ahead)
        for group in groups:
            # Versions, plus the current delete marker of a deleted key; noncurrent delete
            # markers are never planned (nor deleted).
            points = [
                p
                for p in self._group_points(group, markers=True)
                if p.kind == KIND_VERSION or p.details["is_latest"]
            ]
            # The current entry is the key's state now: for planning it is dated `now` (at the
            # latest) and managed, so the planner's floor lands on it and count rules count it
            # (KeepLast(k) keeps the current version and k - 1 noncurrent ones).
            planning = [
                p.evolve(managed=True, created_at=max(now, p.created_at))
                if p.details["is_latest"] and self.manage_noncurrent
                else p
                for p in points
            ]
            plan = rule.plan(planning, now=now, tz=tz)
            reasons = {pid: tuple(r) for pid, r in plan.reasons.items()}
            deleted: set[str] = set()
            for point in plan.delete:
                if point.details["is_latest"]:
                    reasons[point.id] = (*reasons.get(point.id, ()), _CURRENT_REASON)
                else:
                    deleted.add(point.id)
            keep = tuple(p for p in points if p.id not in deleted)
            delete = tuple(p for p in points if p.id in deleted)
            yield KeyRetentionPlan(key=group[0].key, keep=keep, delete=delete, reasons=reasons)

    def _current_again(
        self, key: str, version: str | None, seen: dict[str, str | None], requests: Requests
    ) -> bool:
        """Whether *version* of *key* is the key's current version now (made so since planning).

        *seen* caches the current version of the last key asked about (one ``HeadObject`` per key).
        """
        if key not in seen:
            seen.clear()
            requests.add("HeadObject")
            head = self._head_or_none(key, None)
            seen[key] = None if head is None else str(head.get("VersionId") or "null")
        return seen[key] == version

    def apply_noncurrent_retention(
        self,
        rule: _Rule,
        *,
        now: datetime,
        tz: str | tzinfo = "UTC",
        dry_run: bool = False,
        max_workers: int = 8,
        batch_size: int = DELETE_BATCH_LIMIT,
        page_size: int | None = None,
    ) -> RetentionRunReport:
        """Plan per key, then delete the planned noncurrent versions in batches.

        The whole listing is read and planned before the first delete: a listing that fails
        part-way (on any page) deletes nothing, and a re-run starts afresh. Memory holds one
        key's versions while planning, then the ``(key, version id)`` pairs to delete. With
        Object Lock enabled on the bucket, each version to delete is checked with
        ``HeadObject`` first and skipped when held or retained. A planned version can become
        current again before the deletes run (its newer versions or the key's delete marker
        removed, the usual undelete): each key's current version is read (one ``HeadObject``
        per key with planned deletions) right before its deletes, and is never deleted.

        Raises:
            PolicyError: *batch_size* is not between 1 and 1000.
        """
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int)
            or not 1 <= batch_size <= DELETE_BATCH_LIMIT
        ):
            raise PolicyError.for_field(
                "batch_size", f"an integer from 1 to {DELETE_BATCH_LIMIT}", batch_size
            )
        requests = Requests()
        counts: Counter[str] = Counter()
        locked = self._lock_enabled()
        # List (and plan) everything first: nothing is deleted unless the listing completed.
        planned: list[tuple[str, str]] = []
        for plan in self._plan_keys(rule, now, tz, requests, page_size):
            counts["keys"] += 1
            counts["kept"] += len(plan.keep)
            planned.extend(split_id(point.id) for point in plan.delete)
        checked_now = datetime.now(UTC)
        current: dict[str, str | None] = {}  # the key's current version now (one key at a time)

        def candidates() -> Iterator[tuple[str, str | None]]:
            for key, version in planned:  # grouped by key
                if self._current_again(key, version, current, requests):
                    counts["kept"] += 1
                    continue
                if locked:
                    requests.add("HeadObject")
                    head: Mapping[str, object] = self._head_or_none(key, version) or {}
                    lock = point_lock_of(head)
                    if self._lock_hold(head, key, version, checked_now) is not None or (
                        lock is not None and lock.active(checked_now)
                    ):
                        counts["held"] += 1
                        counts["kept"] += 1
                        continue
                counts["deleted"] += 1
                yield key, version

        if dry_run:
            for _ in candidates():
                pass
        else:
            with Pool(max_workers) as pool:
                self._delete_stream(candidates(), pool, requests, batch_size)
        done = requests.snapshot()
        return RetentionRunReport(
            keys=counts["keys"],
            kept=counts["kept"],
            deleted=counts["deleted"],
            held=counts["held"],
            batches=done.get("DeleteObjects", 0),
            dry_run=dry_run,
            requests=done,
        )

    def noncurrent_lifecycle_rule(
        self,
        *,
        noncurrent_days: int,
        newer_noncurrent_versions: int | None = None,
        rule_id: str | None = None,
    ) -> LifecycleRuleTypeDef:
        """The lifecycle rule that makes AWS expire noncurrent versions under the prefix.

        ``noncurrent_days=35`` is ``MaxAge(days=35)`` planned per key by
        `noncurrent_retention_plan`; adding ``newer_noncurrent_versions=k`` is
        ``MaxAge(days=35) | KeepLast(k + 1)`` (our count includes the current version). AWS
        rounds each expiry up to the next midnight UTC, so it deletes up to a day later than
        `apply_noncurrent_retention`; `lifecycle_rule_for` compiles a rule for you.

        Example:
            >>> from backuppolicy.aws import S3Bucket
            >>> S3Bucket("logs", prefix="app/", region="us-east-1").noncurrent_lifecycle_rule(
            ...     noncurrent_days=35)["NoncurrentVersionExpiration"]
            {'NoncurrentDays': 35}
        """
        if (
            isinstance(noncurrent_days, bool)
            or not isinstance(noncurrent_days, int)
            or noncurrent_days < 1
        ):
            raise PolicyError.for_field("noncurrent_days", "an integer >= 1", noncurrent_days)
        expiration: NoncurrentVersionExpirationTypeDef = {"NoncurrentDays": noncurrent_days}
        if newer_noncurrent_versions is not None:
            n = newer_noncurrent_versions
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 100:  # noqa: PLR2004
                raise PolicyError.for_field(
                    "newer_noncurrent_versions", "an integer from 1 to 100", n
                )
            expiration["NewerNoncurrentVersions"] = n
        return {
            "ID": rule_id or f"backuppolicy-noncurrent-{self.name}"[:255],
            "Filter": {"Prefix": self.prefix},
            "Status": "Enabled",
            "NoncurrentVersionExpiration": expiration,
        }

    def lifecycle_rule_for(
        self, rule: object, *, rule_id: str | None = None
    ) -> LifecycleRuleTypeDef:
        """Compile a retention rule to the equivalent noncurrent-version lifecycle rule.

        Only ``MaxAge`` in whole days or weeks, optionally ``| KeepLast(k)``, can be expressed:
        ``MaxAge(days=35) | KeepLast(3)`` becomes ``NoncurrentDays=35,
        NewerNoncurrentVersions=2`` (the current version is one of the three).

        Raises:
            PolicyError: The rule has no lifecycle equivalent.
        """
        days, newer = _lifecycle_terms(rule)
        return self.noncurrent_lifecycle_rule(
            noncurrent_days=days, newer_noncurrent_versions=newer, rule_id=rule_id
        )

    def put_lifecycle_rule(self, rule: Mapping[str, object]) -> list[dict[str, object]]:
        """Add *rule* to the bucket's lifecycle configuration, replacing a rule with the same ID.

        Other rules are kept. Returns the rules written.
        """
        current = self._optional("get_bucket_lifecycle_configuration").get("Rules", [])
        rules = [r for r in current if r.get("ID") != rule["ID"]] + [dict(rule)]
        self.call(
            "s3",
            "put_bucket_lifecycle_configuration",
            resource=self.bucket,
            Bucket=self.bucket,
            LifecycleConfiguration={"Rules": rules},
        )
        return rules


def _lifecycle_terms(rule: object) -> tuple[int, int | None]:
    """``(NoncurrentDays, NewerNoncurrentVersions)`` of ``MaxAge(days=N) [| KeepLast(k)]``."""
    from backuppolicy.core.retention import AnyOf, KeepLast, MaxAge  # noqa: PLC0415 - pure core, loaded on use

    expected = "MaxAge in whole days or weeks, optionally | KeepLast(k) with k >= 1"
    parts = rule.rules if isinstance(rule, AnyOf) else (rule,)
    days: int | None = None
    newer: int | None = None
    for part in parts:
        if isinstance(part, MaxAge) and days is None:
            d = part.duration
            if d.years or d.months or d.hours or d.minutes or not (d.weeks or d.days):
                raise PolicyError.for_field("rule", expected, str(d))
            days = d.weeks * 7 + d.days
        elif isinstance(part, KeepLast) and newer is None and part.n >= 1:
            newer = part.n - 1
        else:
            raise PolicyError.for_field("rule", expected, part)
    if days is None:
        raise PolicyError.for_field("rule", expected, rule)
    return days, newer or None
