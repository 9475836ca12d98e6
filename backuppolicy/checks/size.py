"""Size anomalies: a backup far off the rolling median size of its target (`SizeAnomaly`).

A sudden drop to a few percent of the usual size is the classic symptom of an empty dump: the
job ran, the backup completed, and it holds nothing. The thresholds come from the policy's
``verification.size_anomaly`` (`backuppolicy.core.specs.SizeAnomalySpec`).
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, ClassVar

import attrs

from backuppolicy.checks._common import Reporter, points_of
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.results import CheckResult, CheckStatus
from backuppolicy.core.specs import SizeAnomalySpec
from backuppolicy.core.targets import BackupTarget

if TYPE_CHECKING:  # verify.py re-exports the checks, which import this module
    from backuppolicy.checks.verify import VerifyContext

__all__ = ["SizeAnomaly"]


def _size_text(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:  # noqa: PLR2004 - binary units
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


@attrs.frozen
class SizeAnomaly:
    """Compare a backup's size with the median of the backups before it in its tier.

    The *window* completed backups before the point (same tier, object versions left out) that
    report a size give the median. A point smaller than ``drop_below`` percent of it (or larger
    than ``rise_above`` percent, when set) is an anomaly: a `CheckStatus.FAIL` or a
    `CheckStatus.WARN`, as the spec says. Points whose backend reports no size, and targets
    with fewer than ``min_history`` earlier sizes, are `CheckStatus.SKIPPED` (the details say
    why).

    Example:
        >>> from datetime import datetime, timedelta, UTC
        >>> from backuppolicy.testing import MemoryTarget
        >>> from backuppolicy.checks.verify import VerifyContext
        >>> start = datetime(2026, 11, 1, 4, tzinfo=UTC)
        >>> db = MemoryTarget("db")
        >>> sizes = [1000, 1010, 990, 1000, 50]
        >>> points = [db.add_point(id=f"p{i}", created_at=start + timedelta(days=i), size_bytes=s)
        ...           for i, s in enumerate(sizes)]
        >>> result = SizeAnomaly().verify(db, points[-1], VerifyContext(now=start + timedelta(days=5)))
        >>> result.status.value, result.evidence["percent_of_median"]
        ('fail', 5.0)

    Attributes:
        spec: The thresholds (default: `SizeAnomalySpec` defaults: below 20% fails).
        name: Name of the check.
    """

    spec: SizeAnomalySpec = attrs.field(factory=SizeAnomalySpec)
    name: str = "size-anomaly"
    scope: ClassVar[str] = "point"

    def verify(
        self, target: BackupTarget, point: RecoveryPoint | None, context: VerifyContext
    ) -> CheckResult:
        """Judge *point*'s size against the rolling median of its target's earlier backups."""
        reporter = Reporter(self.name, target, point, context)

        def result(status: CheckStatus, details: str, **evidence: object) -> CheckResult:
            issues = [details] if status in (CheckStatus.FAIL, CheckStatus.WARN) else []
            return reporter(status, details, issues=issues, evidence=evidence)

        if point is None:
            return result(CheckStatus.SKIPPED, "no point to judge")
        if point.size_bytes is None:
            return result(CheckStatus.SKIPPED, "the backend reports no size for this point")
        earlier = sorted(
            (
                p
                for p in points_of(target, context)
                if p.tier == point.tier
                and p.is_good
                and p.kind != "s3-version"
                and p.size_bytes is not None
                and p.id != point.id
                and p.order_key < point.order_key
            ),
            key=lambda p: p.order_key,
        )[-self.spec.window :]
        if len(earlier) < self.spec.min_history:
            return result(
                CheckStatus.SKIPPED,
                f"not enough history: {len(earlier)} earlier backup(s) with a size, "
                f"{self.spec.min_history} needed",
            )
        median = statistics.median(p.size_bytes or 0 for p in earlier)
        percent = round(100.0 * point.size_bytes / median, 2) if median else None
        evidence: dict[str, object] = {
            "size_bytes": point.size_bytes,
            "median_bytes": median,
            "percent_of_median": percent,
            "window": [p.id for p in earlier],
            "drop_below_percent": self.spec.drop_below,
            "rise_above_percent": self.spec.rise_above,
        }
        words = (
            f"{_size_text(point.size_bytes)}, {f'{percent:g}' if percent is not None else '-'}% of the "
            f"median {_size_text(median)} of the {len(earlier)} backup(s) before it"
        )
        status, details = self._judge(percent, words)
        return result(status, details, **evidence)

    def _judge(self, percent: float | None, words: str) -> tuple[CheckStatus, str]:
        """The status and details for a size at *percent* of the median."""
        anomaly = CheckStatus(self.spec.status)
        if percent is None:  # every earlier backup was empty: nothing to compare with
            return CheckStatus.SKIPPED, f"{words}: the median is 0"
        if percent < self.spec.drop_below:
            return anomaly, (
                f"size anomaly: {words} (below {self.spec.drop_below:g}%): an empty or "
                "partial dump?"
            )
        if self.spec.rise_above is not None and percent > self.spec.rise_above:
            return anomaly, f"size anomaly: {words} (above {self.spec.rise_above:g}%)"
        return CheckStatus.PASS, words
