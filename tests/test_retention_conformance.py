"""Conformance with restic's ``forget`` policy: the 40 reference cases in tests/data/restic.

Each case of ``policies.json`` becomes a `rule_from_spec` rule over the 103 snapshots of
``inputs.json``; ``rule.keep`` must keep exactly the snapshots of the golden file, in the
same order, and give the same reasons once ours ("daily 2016-01-18") are mapped to
restic's vocabulary ("daily snapshot").
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from backuppolicy import PolicyError, RecoveryPoint
from backuppolicy.core.retention import AnyOf, RetentionRule, rule_from_spec

DATA = Path(__file__).parent / "data" / "restic"
INPUTS = json.loads((DATA / "inputs.json").read_text())["snapshots"]
CASES = json.loads((DATA / "policies.json").read_text())["cases"]

# restic's options, in the order restic lists reasons (tags, within, counts, within-periods),
# mapped to our spec keys. Building the union in this order makes our reasons come out in
# restic's order too.
SPEC_KEYS = {
    "tags": "keep_tags",
    "within": "keep_within",
    "last": "keep_last",
    "hourly": "keep_hourly",
    "daily": "keep_daily",
    "weekly": "keep_weekly",
    "monthly": "keep_monthly",
    "yearly": "keep_yearly",
    "within_hourly": "keep_within_hourly",
    "within_daily": "keep_within_daily",
    "within_weekly": "keep_within_weekly",
    "within_monthly": "keep_within_monthly",
    "within_yearly": "keep_within_yearly",
}

# Any time after the newest snapshot: restic measures `within` from the newest snapshot
# that is not in the future, and so do we, so the value does not matter.
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def snapshot_id(index: int) -> str:
    """Our id for upstream snapshot *index*.

    restic sorts with a stable sort, so snapshots with equal times keep their input order
    and the earlier one counts as the newer (it is met first walking newest to oldest).
    We order equal times by id descending instead. Ids that *decrease* with the upstream
    index ("r999", "r998", ...) make our id order reproduce upstream input order for every
    tied group, such as the five snapshots at 2015-10-22T10:20:30Z (indices 69-73).
    """
    return f"r{999 - index:03d}"


def parse_time(text: str) -> datetime:
    """Parse Go's RFC 3339 output (``Z``, optional fractional seconds)."""
    return datetime.fromisoformat(text)


def go_time(value: datetime) -> str:
    """Format like Go's RFC 3339: fractional seconds only when non-zero, zeros trimmed."""
    text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def restic_reason(reason: str) -> str:
    """Map one of our reasons to restic's wording ("daily 2016-01-18" -> "daily snapshot")."""
    periods = "hourly|daily|weekly|monthly|yearly"
    reason = re.sub(rf"^(oldest )?({periods}) (within \S+) \S+$", r"\1\2 \3", reason)
    reason = re.sub(rf"^(oldest )?({periods}) \S+$", r"\1\2 snapshot", reason)
    return re.sub(r"^last \d+$", "last snapshot", reason)


def rule_for(policy: dict[str, Any]) -> RetentionRule:
    """Our rule for a restic policy (an empty union for the empty policy, case 0)."""
    spec = {
        ours: policy[theirs]["spec"] if isinstance(policy[theirs], dict) else policy[theirs]
        for theirs, ours in SPEC_KEYS.items()
        if theirs in policy
    }
    return rule_from_spec(spec) if spec else AnyOf()


@pytest.fixture(name="points", scope="module")
def _points() -> list[RecoveryPoint]:
    """The 103 upstream snapshots as recovery points of one target."""
    return [
        RecoveryPoint(
            id=snapshot_id(snap["index"]),
            target="restic",
            created_at=parse_time(snap["time"]),
            tags=dict.fromkeys(snap["tags"], ""),
        )
        for snap in INPUTS
    ]


class TestResticConformance:
    """Every golden file of restic's TestApplyPolicy is reproduced."""

    def test_data_is_complete(self):
        """The data set has the 103 snapshots and 40 cases the README describes."""
        assert (103, list(range(40))) == (len(INPUTS), [case["case"] for case in CASES])

    def test_ids_reproduce_upstream_tie_order(self, points):
        """Sorting by (time, id) descending gives restic's stable newest-first order."""
        upstream = sorted(
            range(len(INPUTS)), key=lambda i: parse_time(INPUTS[i]["time"]), reverse=True
        )
        ours = sorted(points, key=lambda p: (p.created_at, p.id), reverse=True)
        assert [snapshot_id(i) for i in upstream] == [p.id for p in ours]

    @pytest.mark.parametrize("case", CASES, ids=[f"case{c['case']}" for c in CASES])
    def test_golden(self, case, points):
        """rule.keep keeps the golden snapshots, newest first, with restic's reasons."""
        golden = json.loads((DATA / case["golden"]).read_text())
        by_id = {point.id: point for point in points}

        kept = rule_for(case["policy"]).keep(points, now=NOW)

        order = sorted(kept, key=lambda pid: (by_id[pid].created_at, pid), reverse=True)
        actual = [
            (go_time(by_id[pid].created_at), [restic_reason(r) for r in kept[pid]]) for pid in order
        ]
        expected = [
            (entry["snapshot"]["time"], entry["matches"]) for entry in golden.get("reasons") or []
        ]
        assert [snap["time"] for snap in golden["keep"] or []] == [time for time, _ in expected]
        assert expected == actual

    def test_empty_policy_is_refused_as_a_spec(self):
        """restic's library keeps nothing for case 0; as a policy file it is refused."""
        with pytest.raises(PolicyError, match="keeps nothing is refused"):
            rule_from_spec({})
