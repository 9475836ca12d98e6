"""What every restore family shares: the plan context, the poller, the outcome, check results.

Private: `backuppolicy.workflows._restore` (``plan_restore``, ``restore``) and the family modules
(`backuppolicy.workflows._restore_db`, `backuppolicy.workflows._restore_volumes`,
`backuppolicy.workflows._restore_bucket`) use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs

from backuppolicy.checks.verify import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.exceptions import BackendError
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.restoring import RestorePlan

TAG_RESTORED_FROM = "backuppolicy:restored-from"
"""Tag on every resource a restore creates: the point id or time it was restored from."""
_QUOTE = 160


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_issues(*items: str) -> tuple[str, ...]:
    """*items* for `CheckResult.issues`."""
    return items


def short(value: object) -> str:
    text = str(value)
    return text if len(text) <= _QUOTE else text[: _QUOTE - 3] + "..."


def point_region(point: RecoveryPoint | None, default: str) -> str:
    if point is None:
        return default
    region = point.details.get("region")
    if isinstance(region, str) and region:
        return region
    parts = point.location.split(":")
    return parts[2] if len(parts) == 3 and parts[0] == "aws" and parts[2] else default  # noqa: PLR2004


@attrs.frozen
class Context:
    backend: Any
    kind: str
    now: datetime
    token: str
    application: str | None
    probes: tuple[Any, ...]

    def plan(self, **fields: Any) -> RestorePlan:
        return RestorePlan(
            target=str(self.backend.name),
            kind=self.kind,
            token=self.token,
            planned_at=self.now,
            application=self.application,
            probes=self.probes,
            backend=self.backend,
            **fields,
        )


@attrs.frozen
class Waiter:
    sleep: Callable[[float], None]
    interval: float
    timeout: float
    clock: Callable[[], float] = time.monotonic

    def until(
        self, what: str, check: Callable[[], str | None], *, backend: str, resource: str
    ) -> None:
        """Poll *check* (``None``: done, else the current state) until done or the timeout."""
        deadline = self.clock() + self.timeout
        while True:
            state = check()
            if state is None:
                return
            if state in {"failed", "error"} or state.startswith(("incompatible", "inaccessible")):
                raise BackendError(
                    f"{backend}: {what}: {resource} ended in state {state!r}",
                    backend=backend,
                    operation=what,
                    resource=resource,
                    code=state,
                )
            if self.clock() >= deadline:
                raise BackendError(
                    f"{backend}: {what}: {resource} still {state!r} after {self.timeout:g} s",
                    backend=backend,
                    operation=what,
                    resource=resource,
                    code="Timeout",
                )
            self.sleep(self.interval)


@attrs.frozen
class Outcome:
    resource: str
    endpoint: str | None
    kept: list[str]
    checks: list[CheckResult]
    details: dict[str, object] = attrs.Factory(dict)


def make_check(
    plan: RestorePlan, name: str, *, ok: bool, details: str, **evidence: object
) -> CheckResult:
    return CheckResult(
        check=name,
        status=CheckStatus.PASS if ok else CheckStatus.FAIL,
        target=plan.target,
        checked_at=utc_now(),
        point_id=plan.point.id if plan.point else None,
        kind=CheckKind.RESTORE_TEST,
        application=plan.application,
        details=details,
        issues=check_issues() if ok else check_issues(details),
        evidence=evidence,
    )
