"""One way to run a probe against a restored resource's endpoint: `run_check`.

`backuppolicy.restore` runs the probes of a plan with it, and the recovery health checks
(`backuppolicy.checks.health`) run with it in recovery plans. It wraps the one runner,
`~backuppolicy.checks.probes.run_probe`, and turns its `ProbeResult` into a `CheckResult`. A
probe is any of:

* a data probe of `backuppolicy.checks.probes` (`~backuppolicy.checks.probes.SqlProbe`,
  `~backuppolicy.checks.probes.FileProbe`, `~backuppolicy.checks.probes.S3ObjectProbe`), run
  with a `~backuppolicy.checks.probes.ProbeContext`;
* an object with ``run(endpoint)`` returning a `CheckResult` (the health checks), a bool or
  ``None``;
* a callable ``probe(endpoint)`` returning a `CheckResult`, a bool or ``None``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import attrs

from backuppolicy.checks.probes import (
    FileProbe,
    ProbeContext,
    ProbeResult,
    S3ObjectProbe,
    SqlProbe,
    run_probe,
)
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus

__all__ = ["DATA_PROBES", "run_check"]

DATA_PROBES = (SqlProbe, FileProbe, S3ObjectProbe)
"""The probe classes that take a `ProbeContext` (``run(ctx)``) rather than an endpoint."""


def _issues(*items: str) -> tuple[str, ...]:
    """*items* for `CheckResult.issues`."""
    return items


def run_check(
    probe: object,
    endpoint: str | None,
    *,
    target: str = "",
    backend: object = None,
    point: RecoveryPoint | None = None,
) -> CheckResult:
    """Run one probe against *endpoint* and return its `CheckResult` (a failure never raises).

    A probe is an object with ``run(endpoint)`` or a callable ``probe(endpoint)`` returning a
    `CheckResult`, a bool or ``None`` (``False`` fails; ``None`` and ``True`` pass). The data
    probes of `backuppolicy.checks.probes` (``run(ctx)``) are run with their own context: the
    endpoint, the target *backend* and the *point*.

    Example:
        >>> run_check(lambda endpoint: endpoint.endswith(":5432"), "db.local:5432").status.value
        'pass'
    """
    name = str(
        getattr(probe, "name", None) or getattr(probe, "__name__", None) or type(probe).__name__
    )
    started = time.monotonic()
    context = ProbeContext(resource=None, endpoint=endpoint, target=backend, point=point)
    if isinstance(probe, DATA_PROBES):
        result = run_probe(probe, context)
        result = attrs.evolve(result, details=f"{name}: {result.details}")
    else:
        result = run_probe(_OnEndpoint(name, probe), context)
    if isinstance(result.check_result, CheckResult):
        return result.check_result
    ok = result.ok
    return CheckResult(
        check=name,
        status=CheckStatus.PASS if ok else CheckStatus.FAIL,
        target=target or "restore",
        checked_at=datetime.now(UTC),
        point_id=point.id if point else None,
        kind=CheckKind.RESTORE_TEST,
        details=result.details,
        issues=_issues() if ok else _issues(result.details),
        duration=time.monotonic() - started,
    )


@attrs.frozen
class _OnEndpoint:
    """A probe of the endpoint alone (``probe.run(endpoint)`` or ``probe(endpoint)``) as a `Probe`.

    Its `ProbeResult` has the final details of the check: a `CheckResult` the probe returned is
    kept as it is (``check_result``).
    """

    name: str
    probe: Any

    def run(self, ctx: ProbeContext) -> ProbeResult:
        name, probe, endpoint = self.name, self.probe, ctx.endpoint
        value: object
        try:
            value = probe.run(endpoint) if hasattr(probe, "run") else probe(endpoint)
        except Exception as exc:  # noqa: BLE001 - a probe that raises is a failed check
            return ProbeResult(
                name, ok=False, details=f"{name} against {endpoint}: {type(exc).__name__}: {exc}"
            )
        if isinstance(value, CheckResult):
            return value.to_probe_result()
        if isinstance(value, ProbeResult) or (hasattr(value, "ok") and not isinstance(value, bool)):
            return ProbeResult(
                name, ok=bool(value.ok), details=f"{name}: {getattr(value, 'details', '')}"
            )
        ok = value is None or value is True
        return ProbeResult(
            name,
            ok=ok,
            details=f"{name} against {endpoint}: {'ok' if ok else f'returned {value!r}'}",
        )
