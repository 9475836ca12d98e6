"""Issue 12, first section: nothing is green without evidence that the data is there.

Each class is a regression test of one bullet: a restore test without probes passed ("0/0
probe(s) passed"), a misspelt probe key ran nothing, the doc's example keyed its probes by a
target the seed policy does not have, a quarter whose only test failed was compliant, one
passing target covered a whole application, and evidence from a stand-in looked like real
proof. Size anomalies (item 6) are at the end.
"""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backuppolicy.checks.probes import StaticEndpoint
from backuppolicy.checks.restore_test import RestoreTest
from backuppolicy.checks.size import SizeAnomaly
from backuppolicy.checks.verify import VerifyContext
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.policy import Policy
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.specs import SizeAnomalySpec
from backuppolicy.demo import load_seed_policy
from backuppolicy.notify import Event
from backuppolicy.report import ComplianceReport
from backuppolicy.testing import MemoryTarget
from backuppolicy.workflows._audit import audit
from backuppolicy.workflows.testlog import TestLog
from backuppolicy.workflows.verify import restore_test, run_checks

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
ROOT = Path(__file__).parents[1]


class Notifier:
    """A notifier that keeps its events."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def notify(self, event: Event) -> None:
        """Keep *event*."""
        self.events.append(event)


def make_policy(**verification: Any) -> Policy:
    """Application shop: db and web; application blog: notes. Optional verification fields."""
    return Policy.from_dict(
        {
            "name": "shop",
            "timezone": "UTC",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": "35d"},
            "targets": [
                {"name": "db", "kind": "testing:memory", "application": "shop"},
                {"name": "web", "kind": "testing:memory", "application": "shop"},
                {"name": "notes", "kind": "testing:memory", "application": "blog"},
            ],
            "verification": {"require_encryption": False, "require_private": False} | verification,
        }
    )


@pytest.fixture(name="policy")
def _policy() -> Policy:
    return make_policy()


@pytest.fixture(name="targets")
def _targets() -> dict[str, MemoryTarget]:
    made = {
        name: MemoryTarget(name, policy="shop", clock=lambda: NOW - timedelta(hours=2))
        for name in ("db", "web", "notes")
    }
    for target in made.values():
        target.create_backup()
    return made


def passing_probe(ctx: Any) -> bool:
    """A probe that finds the data (the memory target's endpoint answers)."""
    return str(ctx.endpoint).startswith("memory://")


def restore_result(
    target: str, at: datetime, status: str = "pass", *, probes: int = 1, simulated: bool = False
) -> CheckResult:
    """A restore test as the log keeps it: with *probes* passing probes in its evidence."""
    return CheckResult(
        check="restore-test",
        status=status,
        target=target,
        kind=CheckKind.RESTORE_TEST,
        checked_at=at,
        evidence={"probes": [{"name": f"p{i}", "ok": True} for i in range(probes)]},
        simulated=simulated,
    )


def findings(report: ComplianceReport, key: str) -> list[tuple[str, bool]]:
    """(subject, compliant) of the findings of clause *key*."""
    return [(f.subject, f.compliant) for f in report.of(key)]


# --------------------------------------------------------------------------------------------
# A restore test with no probes passes: "0/0 probe(s) passed"


class TestNoProbeIsUnproven:
    def test_no_probe_is_unproven_not_pass(self, targets: dict[str, MemoryTarget]) -> None:
        """A restore test whose data no probe looked at is unproven, never "0/0 probe(s) passed"."""
        db = targets["db"]
        point = next(iter(db.list_points()))
        result = RestoreTest().verify(db, point, VerifyContext(now=NOW))
        assert (CheckStatus.UNPROVEN, False, False) == (result.status, result.ok, result.proven)
        assert "0/0" not in result.details
        assert "no probe looked at the data" in result.details
        assert 1 == len(db.teardowns)

    def test_a_probe_that_passes_is_proof(self, targets: dict[str, MemoryTarget]) -> None:
        """With a passing probe the same test passes, and is proven."""
        db = targets["db"]
        point = next(iter(db.list_points()))
        result = RestoreTest(probes=[passing_probe]).verify(db, point, VerifyContext(now=NOW))
        assert (CheckStatus.PASS, True, True) == (result.status, result.ok, result.proven)

    def test_unproven_is_notified(self, policy: Policy, targets: dict[str, MemoryTarget]) -> None:
        """An unproven restore test reaches the notifiers like a failure, saying it is unproven."""
        notifier = Notifier()
        results = restore_test(policy, now=NOW, targets=targets, only=["db"], notifiers=[notifier])
        assert ["unproven"] == [r.status.value for r in results]
        assert ["restore-test of bp-db-20261126t040000z is unproven"] == [
            e.message.split(":")[0] for e in notifier.events
        ]

    def test_old_log_pass_without_probes_is_not_proof(self, policy: Policy) -> None:
        """A pass recorded without any probe (older versions) does not meet §3.2 or §3.3."""
        log = TestLog.open("memory://")
        log.record(restore_result("db", NOW - timedelta(days=80), probes=0))
        log.record(restore_result("web", NOW - timedelta(days=80), probes=0))
        report = audit(policy, now=NOW, targets={}, log=log, notifiers=[])
        q3 = next(f for f in report.of("quarterly-restore-test") if f.period == "2026-Q3")
        assert not q3.compliant
        assert "2 unproven (passed without a probe)" in q3.detail
        assert ("application shop", False) in findings(report, "application-restore-test")

    def test_unproven_status_reads_back_from_the_log(self, tmp_path: Path) -> None:
        """The testing log stores and reads back the unproven status."""
        log = TestLog.open(tmp_path / "log.jsonl")
        log.record(restore_result("db", NOW, status="unproven", probes=0))
        (entry,) = TestLog.open(tmp_path / "log.jsonl").entries()
        assert CheckStatus.UNPROVEN is entry.status
        assert [] == TestLog.open(tmp_path / "log.jsonl").damage()


# --------------------------------------------------------------------------------------------
# probes={"dbb": ...} silently runs none


class TestMisspeltProbeKey:
    def test_unknown_probe_key_is_a_policy_error(
        self, policy: Policy, targets: dict[str, MemoryTarget]
    ) -> None:
        """A probe keyed by a target that does not exist is refused, with a suggestion."""
        with pytest.raises(PolicyError, match=r"probes\['dbb'\].*Did you mean 'db'\?"):
            restore_test(
                policy, now=NOW, targets=targets, probes={"dbb": [passing_probe]}, notifiers=[]
            )
        assert [] == targets["db"].teardowns  # nothing was restored

    def test_unknown_resolver_key_is_a_policy_error(
        self, policy: Policy, targets: dict[str, MemoryTarget]
    ) -> None:
        """The same holds for endpoint resolvers keyed by target."""
        with pytest.raises(PolicyError, match=r"endpoint_resolver\['wbe'\].*Did you mean 'web'"):
            restore_test(
                policy,
                now=NOW,
                targets=targets,
                endpoint_resolver={"wbe": StaticEndpoint("x")},
                notifiers=[],
            )


# --------------------------------------------------------------------------------------------
# docs/how-to/test-a-restore.md keys its probes by a target of the seed policy


def _probe_keys(text: str) -> list[str]:
    """The keys of every ``probes={...}`` mapping in the page's Python blocks."""
    keys: list[str] = []
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.keyword) and node.arg == "probes":
                assert isinstance(node.value, ast.Dict)
                keys += [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
    return keys


class TestDocExample:
    def test_doc_probes_name_targets_of_the_seed_policy(self) -> None:
        """Every probe key of "Test a restore" is a target of the seed policy."""
        keys = _probe_keys((ROOT / "docs/how-to/test-a-restore.md").read_text(encoding="utf-8"))
        seed = {t.name for t in load_seed_policy().targets}
        assert keys  # the page has examples
        assert [] == [k for k in keys if k not in seed]


# --------------------------------------------------------------------------------------------
# §3.2: a quarter whose only restore test failed is counted compliant


class TestQuarter:
    @pytest.mark.parametrize("status", ["fail", "unproven", "warn"])
    def test_quarter_needs_a_test_that_passed_with_proof(self, policy: Policy, status: str) -> None:
        """A quarter whose only restore test failed (or was unproven) is not compliant, and says why."""
        log = TestLog.open("memory://")
        entry = log.record(restore_result("db", datetime(2026, 8, 1, tzinfo=UTC), status))
        report = audit(policy, now=NOW, targets={}, log=log, notifiers=[])
        q3 = next(f for f in report.of("quarterly-restore-test") if f.period == "2026-Q3")
        assert not q3.compliant
        assert f"1 {status} ({entry.id}) did not count" in q3.detail

    def test_passed_test_meets_its_quarter(self, policy: Policy) -> None:
        """A test that passed with a probe meets its quarter, with its entry as evidence."""
        log = TestLog.open("memory://")
        entry = log.record(restore_result("db", datetime(2026, 8, 1, tzinfo=UTC)))
        report = audit(policy, now=NOW, targets={}, log=log, notifiers=[])
        q3 = next(f for f in report.of("quarterly-restore-test") if f.period == "2026-Q3")
        assert (True, (entry.id,)) == (q3.compliant, q3.evidence)


# --------------------------------------------------------------------------------------------
# §3.3: one passing target covers a whole application


class TestApplicationCoverage:
    def test_one_target_does_not_cover_its_application(self, policy: Policy) -> None:
        """An application is covered only when each of its targets passed; the finding names the rest."""
        log = TestLog.open("memory://")
        log.record(restore_result("db", NOW - timedelta(days=30)))
        log.record(restore_result("web", NOW - timedelta(days=20), "fail"))
        report = audit(policy, now=NOW, targets={}, log=log, notifiers=[])
        (shop,) = [f for f in report.of("application-restore-test") if f.application == "shop"]
        assert not shop.compliant
        assert shop.detail.startswith(
            "application shop not covered in 2025-11-26 to 2026-11-26: no restore test with "
            "data proof of web (db passed); 1 fail ("
        )

    def test_each_target_passed_covers_it(self, policy: Policy) -> None:
        """With a proven test of each target, the application is covered."""
        log = TestLog.open("memory://")
        ids = [log.record(restore_result(t, NOW - timedelta(days=9))).id for t in ("db", "web")]
        report = audit(policy, now=NOW, targets={}, log=log, notifiers=[])
        (shop,) = [f for f in report.of("application-restore-test") if f.application == "shop"]
        assert (True, tuple(ids)) == (shop.compliant, shop.evidence)

    def test_critical_targets_are_enough(self) -> None:
        """When the policy marks critical targets, their tests cover the application."""
        data = make_policy().to_dict()
        data["targets"][0]["critical"] = True  # db
        policy = Policy.from_dict(data)
        assert [True, False, False] == [t.critical for t in policy.targets]
        assert policy == Policy.from_dict(policy.to_dict())
        log = TestLog.open("memory://")
        log.record(restore_result("db", NOW - timedelta(days=9)))
        report = audit(policy, now=NOW, targets={}, log=log, notifiers=[])
        assert ("application shop", True) in findings(report, "application-restore-test")

    def test_critical_must_be_a_flag(self) -> None:
        """critical: a bad value is a PolicyError naming the field."""
        data = make_policy().to_dict()
        data["targets"][0]["critical"] = "yes"
        with pytest.raises(PolicyError, match=r"targets\[0\]\.critical: expected true or false"):
            Policy.from_dict(data)
        data["targets"][0].pop("critical")
        data["targets"][0]["critcal"] = True
        with pytest.raises(PolicyError, match="Did you mean 'critical'"):
            Policy.from_dict(data)


# --------------------------------------------------------------------------------------------
# Evidence from a stand-in is treated as real proof


class TestSimulated:
    def test_stand_in_proof_is_marked_everywhere(
        self, policy: Policy, targets: dict[str, MemoryTarget], tmp_path: Path
    ) -> None:
        """Proof from a stand-in endpoint is simulated: the result, the log, the audit, the report."""
        stand_in = StaticEndpoint("memory://stand-in", description="a local copy")
        log = TestLog.open(tmp_path / "log.jsonl")
        (result,) = restore_test(
            policy,
            now=NOW,
            targets=targets,
            only=["db"],
            probes={"db": [passing_probe]},
            endpoint_resolver={"db": stand_in},
            log=log,
            notifiers=[],
        )
        assert (CheckStatus.PASS, True) == (result.status, result.simulated)
        assert result.text.startswith("pass (simulated): restore-test db of ")
        assert "a local copy" in str(result.evidence["simulated"])
        (entry,) = TestLog.open(tmp_path / "log.jsonl").entries()
        assert (True, result) == (entry.result.simulated, entry.result)
        assert json.loads((tmp_path / "log.jsonl").read_text())["simulated"] is True
        restore_test(
            policy,
            now=NOW,
            targets=targets,
            only=["web"],
            probes={"web": [passing_probe]},
            endpoint_resolver={"web": stand_in},
            log=log,
            notifiers=[],
        )
        report = audit(policy, now=NOW, targets={}, log=log, notifiers=[])
        (shop,) = [f for f in report.of("application-restore-test") if f.application == "shop"]
        assert (True, True, "ok (simulated)") == (shop.compliant, shop.simulated, shop.result)
        assert "(simulated)" in shop.detail
        assert "ok (simulated)" in report.summary()
        assert "ok (simulated)" in report.to_html()
        assert "on simulated evidence" in report.title()
        assert report.to_dict()["findings"][0]["simulated"] in (True, False)

    def test_real_endpoint_is_not_simulated(
        self, policy: Policy, targets: dict[str, MemoryTarget]
    ) -> None:
        """Probes on the restored resource's own endpoint, or a resolver that says so, are real."""
        tunnel = StaticEndpoint("memory://tunnel", description="a tunnel", simulated=False)
        results = restore_test(
            policy,
            now=NOW,
            targets=targets,
            only=["db", "web"],
            probes=[passing_probe],
            endpoint_resolver={"web": tunnel},
            notifiers=[],
        )
        assert [False, False] == [r.simulated for r in results]
        assert "(simulated)" not in results[0].text

    def test_a_resolver_that_redirects_is_a_stand_in(
        self, policy: Policy, targets: dict[str, MemoryTarget]
    ) -> None:
        """A plain resolver that sends the probes elsewhere than the restored resource is a stand-in."""
        (result,) = restore_test(
            policy,
            now=NOW,
            targets=targets,
            only=["db"],
            probes=[passing_probe],
            endpoint_resolver=lambda _resource: "memory://elsewhere",
            notifiers=[],
        )
        assert result.simulated

    def test_simulated_world_marks_every_check(
        self, policy: Policy, targets: dict[str, MemoryTarget]
    ) -> None:
        """run_checks(simulated=True) (the demo) marks every result."""
        results = run_checks(policy, now=NOW, targets=targets, simulated=True, notifiers=[])
        assert results
        assert all(r.simulated for r in results)

    def test_old_entries_are_real_and_load(self) -> None:
        """A result written before the marker existed reads back as not simulated."""
        data = restore_result("db", NOW).to_dict()
        data.pop("simulated")
        assert not CheckResult.from_dict(data).simulated
        with pytest.raises(TypeError, match="simulated"):
            CheckResult.from_dict({**data, "simulated": "yes"})


# --------------------------------------------------------------------------------------------
# Item 6: size anomalies


def sized(target: MemoryTarget, sizes: list[int]) -> None:
    """Points a day apart, the last one two hours before NOW, with these sizes."""
    for i, size in enumerate(sizes):
        at = NOW - timedelta(hours=2) - timedelta(days=len(sizes) - 1 - i)
        target.add_point(created_at=at, size_bytes=size)


class TestSizeAnomaly:
    @pytest.mark.parametrize(
        ("sizes", "status"),
        [
            ([1000] * 10 + [50], "fail"),  # the classic empty dump: 5% of the median
            ([1000] * 10 + [900], "pass"),
            ([1000, 1000, 50], "skipped"),  # not enough history
        ],
    )
    def test_drop_against_rolling_median(self, sizes: list[int], status: str) -> None:
        """A backup far below the rolling median of its target fails; a normal one passes."""
        db = MemoryTarget("db")
        sized(db, sizes)
        points = list(db.list_points())
        newest = max(points, key=lambda p: p.order_key)
        result = SizeAnomaly().verify(db, newest, VerifyContext(now=NOW, points=points))
        assert status == result.status.value

    def test_window_and_rise(self) -> None:
        """Only the last *window* backups make the median; growth past rise_above is one too."""
        spec = SizeAnomalySpec(window=3, rise_above=300.0, status="warn")
        db = MemoryTarget("db")
        sized(db, [10, 10, 10, 1000, 1000, 1000, 5000])
        points = list(db.list_points())
        newest = max(points, key=lambda p: p.order_key)
        result = SizeAnomaly(spec).verify(db, newest, VerifyContext(now=NOW, points=points))
        assert ("warn", 500.0, 1000) == (
            result.status.value,
            result.evidence["percent_of_median"],
            result.evidence["median_bytes"],
        )

    def test_policy_turns_it_on_and_it_is_notified_and_audited(self) -> None:
        """verification.size_anomaly adds the check; a warning is notified; the audit reports it."""
        policy = make_policy(size_anomaly={"drop_below": "20%", "status": "warn"})
        db = MemoryTarget("db", policy="shop")
        sized(db, [1000] * 10 + [50])
        notifier = Notifier()
        log = TestLog.open("memory://")
        results = run_checks(
            policy, now=NOW, targets={"db": db}, only=["db"], log=log, notifiers=[notifier]
        )
        (size,) = [r for r in results if r.check == "size-anomaly"]
        assert "warn" == size.status.value
        assert [e.message for e in notifier.events if "size-anomaly" in e.message] == [
            f"size-anomaly of {size.point_id} warns: {size.details}"
        ]
        report = audit(policy, now=NOW, targets={"db": db}, log=log, notifiers=[])
        (finding,) = report.of("backup-size")
        assert finding.detail.startswith("1 check(s), 1 warning(s): size anomaly: 50 B, 5% of")

    def test_fail_makes_the_audit_red(self) -> None:
        """An empty dump (fail, the default) makes the backup-size clause not compliant."""
        policy = make_policy(size_anomaly=True)
        db = MemoryTarget("db", policy="shop")
        sized(db, [1000] * 10 + [50])
        log = TestLog.open("memory://")
        run_checks(policy, now=NOW, targets={"db": db}, only=["db"], log=log, notifiers=[])
        report = audit(policy, now=NOW, targets={"db": db}, log=log, notifiers=[])
        (finding,) = report.of("backup-size")
        assert not finding.compliant
        assert "5% of the median" in finding.detail

    @pytest.mark.parametrize(
        ("value", "field"),
        [
            ({"drop_below": "120%"}, "drop_below"),
            ({"drop_below": "lots"}, "drop_below"),
            ({"rise_above": "50%"}, "rise_above"),
            ({"window": 1}, "window"),
            ({"window": 3, "min_history": 4}, "min_history"),
            ({"status": "fial"}, "status"),
            ({"windw": 10}, "windw"),
            ("often", "size_anomaly"),
        ],
    )
    def test_bad_values_name_the_field(self, value: object, field: str) -> None:
        """A bad size_anomaly value is a PolicyError naming the field."""
        with pytest.raises(PolicyError, match=rf"verification\.size_anomaly\b.*{field}|{field}"):
            make_policy(size_anomaly=value)
        with pytest.raises(PolicyError) as caught:
            make_policy(size_anomaly=value)
        assert field in str(caught.value).split(":")[0]

    def test_round_trip(self) -> None:
        """The policy writes size_anomaly back as it reads it."""
        policy = make_policy(size_anomaly={"drop_below": 10, "rise_above": "400%", "window": 5})
        assert policy == Policy.from_dict(policy.to_dict())
        assert policy.verification.size_anomaly == SizeAnomalySpec(
            drop_below=10.0, rise_above=400.0, window=5
        )
