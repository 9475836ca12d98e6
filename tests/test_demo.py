"""The embedded demo (``backuppolicy demo``), run for a few simulated days.

The full 40-day demo takes about 45 s; these tests run 8 days of the seed policy (no point is
35 days old yet, so nothing is pruned) and 7 days of the seed policy with a 2-day rule (so the
pruning, and the legal hold that survives it, happen within the run). Each run is shared by
the tests of its class.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from backuppolicy import demo
from backuppolicy.policy import Policy
from backuppolicy.retention import MaxAge
from backuppolicy.schedule import Cadence, rolling_slots

ROOT = Path(__file__).parent.parent


@pytest.fixture(name="seed_run", scope="module")
def _seed_run() -> tuple[dict[str, Any], str]:
    """The demo's summary and printed output after 8 days of the seed policy."""
    out = io.StringIO()
    summary = demo.run(days=8, out=out)
    return summary, out.getvalue()


@pytest.fixture(name="short_rule_run", scope="module")
def _short_rule_run() -> Iterator[dict[str, Any]]:
    """The demo's summary after 7 days of the seed policy with retention max_age 2d."""
    seed = demo.load_seed_policy()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            demo, "load_seed_policy", lambda: attrs.evolve(seed, retention=MaxAge(days=2))
        )
        yield demo.run(days=7)


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

    def test_prints_a_line_per_day_and_the_summary(self, seed_run):
        """The output has the header, eight day lines and the closing verdict."""
        _, printed = seed_run
        lines = printed.splitlines()
        assert lines[0].startswith("backuppolicy demo: policy 'web-apps', 6 targets, 8 days")
        assert 8 == sum(1 for line in lines if line.startswith("day "))
        assert "held point survived pruning: True" in lines
        assert lines[-1].startswith("ok in ")


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
