"""One way to run a probe against a restored resource's endpoint: `run_check`.

`backuppolicy.restore` runs the probes of a plan with it, and the recovery health checks of
`backuppolicy.workflows.recovery` (`~backuppolicy.workflows.recovery.CallableCheck`) run
their functions with it. A probe is any of:

* a data probe of `backuppolicy.checks.probes` (`~backuppolicy.checks.probes.SqlProbe`,
  `~backuppolicy.checks.probes.FileProbe`, `~backuppolicy.checks.probes.S3ObjectProbe`), run
  with `~backuppolicy.checks.probes.run_probe` and a `~backuppolicy.checks.probes.ProbeContext`;
* an object with ``run(endpoint)`` returning a `CheckResult` (the recovery health checks);
* a callable ``probe(endpoint)`` returning a `CheckResult`, a bool or ``None``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from backuppolicy.checks.probes import (
    FileProbe,
    ProbeContext,
    ProbeResult,
    S3ObjectProbe,
    SqlProbe,
    run_probe,
)
from backuppolicy.checks.verify import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.model import RecoveryPoint

__all__ = ["DATA_PROBES", "run_check"]

DATA_PROBES = (SqlProbe, FileProbe, S3ObjectProbe)
"""The probe classes that take a `ProbeContext` (``run(ctx)``) rather than an endpoint."""


def _issues(*items: str) -> Any:
    """*items* for `CheckResult.issues` (its ``tuple`` converter has no usable type for mypy)."""
    return items


def run_check(
    probe: Any,
    endpoint: str | None,
    *,
    target: str = "",
    backend: Any = None,
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
    value: Any
    try:
        if isinstance(probe, DATA_PROBES):
            context = ProbeContext(resource=None, endpoint=endpoint, target=backend, point=point)
            value = run_probe(probe, context)
        else:
            value = probe.run(endpoint) if hasattr(probe, "run") else probe(endpoint)
    except Exception as exc:  # noqa: BLE001 - a probe that raises is a failed check
        value = False
        detail = f"{name} against {endpoint}: {type(exc).__name__}: {exc}"
    else:
        detail = ""
    if isinstance(value, CheckResult):
        return value
    if isinstance(value, ProbeResult) or (hasattr(value, "ok") and not isinstance(value, bool)):
        ok = bool(value.ok)
        detail = f"{name}: {getattr(value, 'details', '')}"
    else:
        ok = value is None or value is True
        detail = detail or f"{name} against {endpoint}: {'ok' if ok else f'returned {value!r}'}"
    return CheckResult(
        check=name,
        status=CheckStatus.PASS if ok else CheckStatus.FAIL,
        target=target or "restore",
        checked_at=datetime.now(UTC),
        point_id=point.id if point else None,
        kind=CheckKind.RESTORE_TEST,
        details=detail,
        issues=_issues() if ok else _issues(detail),
        duration=time.monotonic() - started,
    )
