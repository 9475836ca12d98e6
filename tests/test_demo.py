"""The embedded demo (``backuppolicy demo``), run for a few simulated days.

These tests run 8 days of the seed policy (no point is 35 days old yet, so nothing is pruned),
7 days of the seed policy with a 2-day rule (so the pruning, and the legal hold that survives
it, happen within the run), and the full 40 days once (the compliant verdict, the broken case
and the tutorial's quotes). Each run is shared by the tests that use it, which pytest-xdist
keeps on one worker (tests/conftest.py); the runs are marked ``slow`` (``pytest -m "not slow"``
leaves them out).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from backuppolicy import demo
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.policy import Policy
from backuppolicy.core.results import CheckKind
from backuppolicy.core.retention import MaxAge
from backuppolicy.core.schedule import Cadence, rolling_slots
from backuppolicy.workflows._audit import audit

ROOT = Path(__file__).parent.parent


@pytest.fixture(name="seed_run", scope="module")
def _seed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """The demo's summary and printed output after 8 days of the seed policy."""
    out = io.StringIO()
    summary = demo.run(days=8, out=out, run_dir=tmp_path_factory.mktemp("seed-run"))
    return summary, out.getvalue()


@pytest.fixture(name="short_rule_run", scope="module")
def _short_rule_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's summary after 7 days of the seed policy with retention max_age 2d."""
    seed = demo.load_seed_policy()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            demo, "load_seed_policy", lambda: attrs.evolve(seed, retention=MaxAge(days=2))
        )
        return demo.run(days=7, report_path=tmp_path_factory.mktemp("short") / "out" / "r.html")


class TestSeedPolicy:
    def test_the_packaged_seed_is_byte_identical_to_the_example(self):
        """backuppolicy/data/seed_policy.yaml never drifts from examples/policy.yaml."""
        example = (ROOT / "examples" / "policy.yaml").read_bytes()
        packaged = (ROOT / "backuppolicy" / "data" / "seed_policy.yaml").read_bytes()
        assert example == packaged

    def test_the_packaged_recovery_plan_is_byte_identical_to_the_example(self):
        """backuppolicy/data/recovery_plan.yaml never drifts from examples/recovery_plan.yaml."""
        example = (ROOT / "examples" / "recovery_plan.yaml").read_bytes()
        packaged = (ROOT / "backuppolicy" / "data" / "recovery_plan.yaml").read_bytes()
        assert example == packaged

    def test_load_seed_policy_is_the_example_policy(self):
        """The demo runs the policy of examples/policy.yaml."""
        assert Policy.from_file(ROOT / "examples" / "policy.yaml") == demo.load_seed_policy()


@pytest.mark.slow
class TestEightDays:
    def test_ok_without_failures(self, seed_run):
        """The run succeeds: no failed backup, copy or deletion."""
        summary, _ = seed_run
        assert ([], True) == (summary["failures"], summary["ok"])

    def test_one_backup_per_target_and_day_and_nothing_pruned(self, seed_run):
        """Eight daily backups of every target; none is 35 days old, so none is pruned."""
        summary, _ = seed_run
        names = [t.name for t in demo.load_seed_policy().targets]
        assert {f"{n}/local": 8 for n in names} == {
            k: v for k, v in summary["points"].items() if k.endswith("/local")
        }
        assert {} == summary["pruned"]

    def test_weekly_offsite_copies_follow_the_rolling_spread(self, seed_run):
        """Days 1-8 are Sat 17 to Sat 24 Oct: each target's second copy waits for its slot day."""
        summary, _ = seed_run
        policy = demo.load_seed_policy()
        slots = rolling_slots([t.name for t in policy.targets], period=Cadence.WEEK)
        saturday = 5  # the last day simulated is the sixth day (index 5) of its week
        snapshots_and_dirs = [t.name for t in policy.targets if t.kind != "s3-bucket"]
        expected = {f"{n}/offsite": 1 + (slots[n] <= saturday) for n in snapshots_and_dirs}
        assert expected == {k: summary["points"].get(k) for k in expected}

    def test_the_bucket_is_copied_off_site_once_per_week(self, seed_run):
        """The assets bucket gets at most one off-site copy per week, as the other targets."""
        _, printed = seed_run
        assert printed.count("assets->offsite") <= 2

    def test_the_held_point_is_listed_and_survives(self, seed_run):
        """The hold placed on day 6 is on a shop-db snapshot and is still there at the end."""
        summary, _ = seed_run
        assert 1 == len(summary["held"])
        assert summary["held"][0].startswith("shop-db:")
        assert summary["held_point_survived"] is True

    def test_report_and_log_are_written_into_the_run_directory(self, seed_run):
        """The report and the testing log land in the run's own directory, which the summary names."""
        summary, printed = seed_run
        run_dir = Path(summary["run_dir"])
        report = Path(summary["proof"]["report"])
        assert (run_dir / "report.html", True) == (report, report.is_file())
        assert (run_dir / "testing-log.jsonl").stat().st_size > 0
        assert f"HTML report: {report}" in printed

    def test_the_default_run_directory_is_new_for_every_run(self, tmp_path, monkeypatch):
        """Without run_dir each run makes its own directory, so concurrent runs never share a report."""
        import tempfile

        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        first, second = (demo.run(days=1) for _ in range(2))
        paths = {Path(r["proof"]["report"]) for r in (first, second)}
        assert 2 == len(paths)
        assert all(p.is_file() and p.parent.parent == tmp_path for p in paths)

    def test_prints_a_line_per_day_and_the_summary(self, seed_run):
        """The output has the header, eight day lines and the closing verdict."""
        _, printed = seed_run
        lines = printed.splitlines()
        assert lines[0].startswith("backuppolicy demo: policy 'web-apps', 6 targets, 8 days")
        assert 8 == sum(1 for line in lines if line.startswith("day "))
        assert "held point survived pruning: True" in lines
        assert lines[-1].startswith("ok in ")


@pytest.mark.slow
class TestPruning:
    def test_old_points_are_pruned_by_the_rule(self, short_rule_run):
        """With a 2-day rule every target loses its oldest local backups, for that reason."""
        names = [t.name for t in demo.load_seed_policy().targets]
        assert short_rule_run["ok"] is True
        assert {f"{n}/local" for n in names} <= set(short_rule_run["pruned"])
        assert "older than 2d" in short_rule_run["pruned_reasons"]

    def test_the_held_point_survives_while_its_neighbours_go(self, short_rule_run):
        """shop-db keeps its held (older) snapshot; the other databases' oldest are recent."""
        oldest = short_rule_run["oldest"]
        assert short_rule_run["held_point_survived"] is True
        assert oldest["shop-db/local"] < oldest["blog-db/local"]
        # On day 7 at 04:05 a backup of day 5 at 04:05 is exactly 2 days old: expired too.
        assert 2 == short_rule_run["points"]["blog-db/local"]  # days 6 and 7
        assert 3 == short_rule_run["points"]["shop-db/local"]  # and the held one

    def test_nothing_newer_than_the_rule_was_pruned(self, short_rule_run):
        """Every remaining local point is younger than 2 days on the last day (held aside)."""
        last = demo.START + timedelta(days=6)
        cutoff = (last - timedelta(days=2)).strftime("%Y-%m-%d")
        for key, day in short_rule_run["oldest"].items():
            if key.endswith("/local") and not key.startswith("shop-db/"):
                assert cutoff < day, key


@pytest.fixture(name="open_world", scope="class")
def _open_world() -> Iterator[demo.DemoWorld]:
    """The demo world of the seed policy after 3 simulated days, open while the class's tests run."""
    with demo.world(days=3) as opened:
        yield opened


class TestWorld:
    def test_now_is_the_proof_time_of_the_last_day(self, open_world):
        """The checks ran at 09:05 GMT on the third day; the world started on the demo's START."""
        assert (demo.START + timedelta(days=2, hours=5), demo.START) == (
            open_world.now,
            open_world.start,
        )

    def test_every_target_has_a_backup_per_simulated_day(self, open_world):
        """Three days of the daily job: three managed local backups per target, no failure."""
        counts = {
            name: sum(
                1
                for p in target.list_points()
                if p.managed and p.tier == "local" and p.kind != "s3-version"
            )
            for name, target in open_world.targets.items()
        }
        assert {t.name: 3 for t in open_world.policy.targets} == counts
        assert () == open_world.failures

    def test_the_log_holds_a_passing_restore_test_of_every_target(self, open_world):
        """Each target was restore-tested into the in-memory log at the world's now."""
        entries = list(open_world.log.entries(kind=CheckKind.RESTORE_TEST))
        assert {t.name: ("pass", open_world.now) for t in open_world.policy.targets} == {
            e.target: (e.status.value, e.checked_at) for e in entries
        }

    def test_the_log_holds_the_integrity_checks(self, open_world):
        """The integrity checks ran too, for every target."""
        checked = {e.target for e in open_world.log.entries(kind=CheckKind.INTEGRITY)}
        assert {t.name for t in open_world.policy.targets} == checked

    def test_the_database_probe_counted_the_stand_in_rows(self, open_world):
        """The databases' restore tests ran the SQL probe against the stand-in."""
        shop = next(open_world.log.entries(target="shop-db", kind=CheckKind.RESTORE_TEST))
        assert "1/1 probe(s) passed" in shop.result.details

    def test_the_audit_runs_on_the_world(self, open_world):
        """audit() judges every target of the world from its points and its log."""
        report = audit(
            open_world.policy,
            now=open_world.now,
            targets=open_world.targets,
            log=open_world.log,
            since=open_world.start,
            notifiers=[],
        )
        restore_tests = report.of("application-restore-test")
        assert {t.application for t in open_world.policy.targets} == {
            f.subject.removeprefix("application ") for f in restore_tests
        }
        assert all(f.compliant for f in restore_tests)

    def test_the_repr_is_short(self, open_world):
        """The repr counts the targets instead of listing them."""
        assert "targets=<6 targets>" in repr(open_world)


class TestOpenWorld:
    def test_close_tears_everything_down(self):
        """After close the demo's region, clock and temp dir are gone; closing twice is fine."""
        before = os.environ["AWS_DEFAULT_REGION"]
        real_before = datetime.now(UTC)
        opened = demo.open_world(days=1)
        config = Path(opened.policy.target("shop-config").settings["path"])
        inside = (os.environ["AWS_DEFAULT_REGION"], config.is_dir(), datetime.now(UTC).date())
        opened.close()
        opened.close()
        after = (os.environ["AWS_DEFAULT_REGION"], config.exists())
        assert (demo.REGION, True, demo.START.date()) == inside
        assert (before, False) == after
        # The simulated clock stopped: the clock is the one from before the world, whatever
        # today's date is.
        assert real_before <= datetime.now(UTC) < real_before + timedelta(hours=1)

    @pytest.mark.parametrize("days", [0, -1, 1.5, True])
    def test_rejects_days_that_are_not_a_positive_int(self, days):
        """days must be an int >= 1; the error names the field and the value."""
        with pytest.raises(PolicyError, match=r"^days: expected an int >= 1 \(got"):
            demo.open_world(days=days)


MY_POLICY = """\
name: my-team
schedule: {every: day, at: "04:00", tz: GMT}
retention: {max_age: 2d}
tiers:
  - name: local
    every: day
    location: {store: /srv/never-here}
targets:
  - name: orders-db
    kind: rds-instance
    application: orders
    settings: {db_instance_id: shop-prod, region: eu-west-2}
  - name: notes
    kind: directory
    application: orders
    settings: {path: /nowhere/notes}
"""


@pytest.mark.slow
class TestYourOwnPolicy:
    """Users run their own policy file on the demo world (``open_world(policy=...)``, ``run``)."""

    @pytest.fixture(name="mine")
    def _mine(self, tmp_path: Path) -> Path:
        path = tmp_path / "my-policy.yaml"
        path.write_text(MY_POLICY, encoding="utf-8")
        return path

    def test_open_world_runs_a_policy_file(self, mine):
        """The world runs the file's policy: its name, targets and retention, adapted paths."""
        with demo.world(days=4, policy=mine) as opened:
            names = sorted(opened.targets)
            policy = opened.policy
            counts = {name: len(list(t.list_points())) for name, t in opened.targets.items()}
            restore_tests = sorted(
                (e.target, e.status.value) for e in opened.log.entries(check="restore-test")
            )
        assert ("my-team", ["notes", "orders-db"]) == (policy.name, names)
        assert ((), MaxAge(days=2)) == (opened.failures, policy.retention)
        (notes,) = [t for t in policy.targets if t.name == "notes"]
        assert "/nowhere/notes" != notes.settings["path"]
        assert all(0 < n <= 4 for n in counts.values()), counts  # 2-day rule pruned the rest
        assert [("notes", "pass"), ("orders-db", "pass")] == restore_tests

    def test_run_takes_a_policy_object(self, mine, tmp_path):
        """demo.run(policy=Policy) prints the policy's name and skips the seed's recovery plan."""
        out = io.StringIO()
        run_dir = tmp_path / "run"
        summary = demo.run(days=2, out=out, run_dir=run_dir, policy=Policy.from_file(mine))
        assert summary["policy"] == "my-team"
        assert "recovery rehearsal: skipped" in out.getvalue()
        assert [] == summary["failures"]

    def test_a_bad_policy_argument_is_refused_before_the_world_is_built(self):
        """Anything else than a Policy, a path or None is a PolicyError naming 'policy'."""
        with pytest.raises(PolicyError, match=r"^policy: expected a Policy"):
            demo.open_world(days=1, policy=42)  # type: ignore[arg-type]


def _quoted_demo_lines(page: Path) -> list[str]:
    """The lines a docs page quotes from ``backuppolicy demo`` (its console block), as regexes.

    ``...`` lines are skipped, a line ending in ``...`` matches as a prefix, and the seconds of
    the closing ``ok in N s`` line match any number.
    """
    import re

    text = page.read_text(encoding="utf-8")
    block = text.split("$ backuppolicy demo\n", 1)[1].split("```", 1)[0]
    patterns = []
    for line in block.splitlines():
        if not line.strip() or line.strip() == "...":
            continue
        if line.endswith("..."):
            patterns.append("^" + re.escape(line[:-3]))
        elif re.fullmatch(r"ok in [0-9.]+ s", line):
            patterns.append(r"^ok in [0-9.]+ s$")
        else:
            patterns.append("^" + re.escape(line) + "$")
    return patterns


@pytest.fixture(name="full_run", scope="module")
def _full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """The demo's summary and printed output after its default 40 days (as `backuppolicy demo`)."""
    out = io.StringIO()
    summary = demo.run(out=out, run_dir=tmp_path_factory.mktemp("full-run"))
    return summary, out.getvalue()


@pytest.mark.slow
class TestFortyDays:
    """The seed policy's demo ends compliant, every verdict labelled simulated; then a broken case."""

    def test_the_audit_is_compliant_and_every_finding_is_simulated(self, full_run):
        """Every applicable clause is met, and each on simulated evidence (moto plays AWS)."""
        summary, printed = full_run
        proof = summary["proof"]
        applicable = proof["findings"] - proof["not_applicable"]
        assert (0, applicable, applicable) == (
            proof["not_compliant"],
            proof["compliant"],
            proof["simulated"],
        )
        assert ([], True) == (summary["failures"], summary["ok"])
        assert f"audit: COMPLIANT: {applicable} of {applicable} findings compliant" in printed

    def test_every_result_of_the_log_is_simulated_and_every_copy_was_checked(self, full_run):
        """The testing log: all simulated; the integrity checks of every tier passed, EBS by size only."""
        from backuppolicy.workflows.testlog import TestLog

        summary, _ = full_run
        log = TestLog.open(Path(summary["run_dir"]) / "testing-log.jsonl")
        results = [e.result for e in log.entries()]
        integrity = [r for r in results if r.kind is CheckKind.INTEGRITY]
        policy = demo.load_seed_policy()
        assert all(r.simulated for r in results)
        assert {r.status.value for r in integrity} == {"pass"}
        assert {f"{t.name}/{tier}" for t in policy.targets for tier in ("local", "offsite")} == {
            f"{r.target}/{r.tier}" for r in integrity
        }
        ebs = [r for r in integrity if r.target == "web-server"]
        assert ebs
        assert all("size only" in r.details for r in ebs)
        assert summary["proof"]["integrity"]["pass"] == len(integrity)

    def test_the_report_labels_the_verdicts_simulated(self, full_run):
        """The HTML report shows the simulated label, and no NOT OK."""
        summary, _ = full_run
        html = Path(summary["proof"]["report"]).read_text(encoding="utf-8")
        assert "simulated" in html
        assert "NOT OK" not in html

    def test_the_broken_case_finds_the_lost_rows(self, full_run):
        """After the audit: a restore that lost 5 rows fails against its fingerprint, and says why."""
        summary, printed = full_run
        broken = summary["broken_case"]
        assert ("shop-db", "fail", True) == (
            broken["target"],
            broken["status"],
            broken["simulated"],
        )
        assert (
            "orders: expected 42 (backup time), observed 37 after the restore"
            in (broken["details"])
        )
        [finding] = broken["findings"]
        assert finding.startswith("§3.3 each application restore-tested yearly is not met for")
        assert printed.index("audit: COMPLIANT") < printed.index("Now a broken case: ")
        assert "finding: NOT OK §3.3" in printed


@pytest.mark.slow
class TestTutorialQuotesTheDemo:
    def test_every_quoted_line_is_printed_by_the_demo(self, full_run):
        """docs/tutorial/first-policy.md quotes what `backuppolicy demo` (40 days) prints."""
        import re

        patterns = _quoted_demo_lines(ROOT / "docs" / "tutorial" / "first-policy.md")
        _, printed = full_run
        assert len(patterns) >= 4
        missing = [p for p in patterns if not re.search(p, printed, re.MULTILINE)]
        assert [] == missing, "the demo printed:\n" + printed[:4000]
