"""Tests for Policy.to_markdown: the human policy document rendered from the policy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from backuppolicy.core.policy import Policy
from backuppolicy.core.schedule import rolling_slots

EXAMPLE = Path(__file__).parent.parent / "examples" / "policy.yaml"

SEED_SECTIONS = [
    "1. Backup Schedule",
    "2. Backup Retention",
    "3. Backup Testing Process",
    "4. Backup Integrity Verification",
    "5. Automating Backups",
    "6. Manually Performing Backups",
    "7. S3 Asset Versioning and Verification",
    "8. EC2 Snapshots",
    "9. Performing Restores",
    "10. System Restart and Recovery Procedures",
]


@pytest.fixture(name="data")
def _data() -> dict[str, Any]:
    """The example policy as plain data, for a test to change."""
    return Policy.from_file(EXAMPLE).to_dict()


def _render(data: dict[str, Any]) -> str:
    return Policy.from_dict(data).to_markdown()


def _sections(document: str) -> dict[str, str]:
    """Map each '## ' heading to the text under it."""
    parts = re.split(r"^## (.+)$", document, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


class TestStructure:
    """The document has the written policy's sections, each with content."""

    def test_seed_sections_in_order(self, data):
        """The ten sections of the written policy, in its order and with its titles."""
        assert SEED_SECTIONS == list(_sections(_render(data)))

    def test_every_section_has_content(self, data):
        """Sections the written policy left empty (5, 6, 9, 10) are filled in too."""
        sections = _sections(_render(data))
        assert [] == [title for title, body in sections.items() if len(body.strip()) < 100]

    def test_empty_sections_name_the_command_or_call(self, data):
        """5, 6, 9 and 10 say which command or library call performs the step."""
        sections = _sections(_render(data))
        assert "backuppolicy backup --policy" in sections["5. Automating Backups"]
        assert "bp.backup(policy" in sections["5. Automating Backups"]
        assert "--target shop-db" in sections["6. Manually Performing Backups"]
        assert "backuppolicy restore --policy" in sections["9. Performing Restores"]
        recovery = sections["10. System Restart and Recovery Procedures"]
        assert recovery.index("Restore shop-db") < recovery.index("Restore shop-code")
        assert "Restart blog" in recovery

    def test_policy_file_name_is_used_in_commands(self, data):
        """Commands refer to the policy file the caller names."""
        document = Policy.from_dict(data).to_markdown(policy_file="/etc/bp/prod.yaml")
        assert "backuppolicy verify --policy /etc/bp/prod.yaml" in document
        assert "policy.yaml`" not in document


class TestNumbersComeFromThePolicy:
    """Every number in the document is the policy's, so changing one changes the document."""

    def test_example_states_the_seed_numbers(self, data):
        """The seed's numbers: 04:00 GMT daily, 35 days, quarterly/yearly tests, weekly off-site."""
        policy = Policy.from_dict(data)
        sections = _sections(policy.to_markdown())
        assert policy.schedule.describe() in sections["1. Backup Schedule"]
        assert "04:00 GMT" in sections["1. Backup Schedule"]
        assert policy.retention.describe() in sections["2. Backup Retention"]
        assert "35 days" in sections["2. Backup Retention"]
        assert "every quarter" in sections["3. Backup Testing Process"]
        assert "once per year" in sections["3. Backup Testing Process"]
        assert "every year" in sections["4. Backup Integrity Verification"]
        assert "local, offsite" in sections["4. Backup Integrity Verification"]
        assert "offsite: weekly copy to region eu-west-1" in sections["1. Backup Schedule"]
        assert (
            "| shop | shop-db, web-server, assets, shop-config, shop-code | 24 hours"
            in (sections["1. Backup Schedule"])
        )

    def test_retention_change(self, data):
        """A new max_age shows in section 2 and the old one is gone."""
        before = _sections(_render(data))["2. Backup Retention"]
        data["retention"] = {"max_age": "90d"}
        after = _sections(_render(data))["2. Backup Retention"]
        assert ("35 days" in before, "90 days" in before) == (True, False)
        assert ("35 days" in after, "90 days" in after) == (False, True)

    def test_schedule_change(self, data):
        """A new backup time shows in sections 1 and 5, and moves the derived RPO."""
        data["schedule"] = {"every": "week", "day": "sun", "at": "02:30", "tz": "GMT"}
        policy = Policy.from_dict(data)
        sections = _sections(policy.to_markdown())
        assert "02:30 GMT" in sections["1. Backup Schedule"]
        assert "04:00" not in sections["1. Backup Schedule"]
        assert f"{policy.schedule.cron} backuppolicy backup" in sections["5. Automating Backups"]
        assert "7 days (from the schedule)" in sections["1. Backup Schedule"]

    def test_cadence_changes(self, data):
        """Restore-test and integrity cadences are the policy's."""
        data["verification"]["restore_test_every"] = "month"
        data["verification"]["integrity_check_every"] = "quarter"
        sections = _sections(_render(data))
        assert "runs every month" in sections["3. Backup Testing Process"]
        assert "run every quarter" in sections["4. Backup Integrity Verification"]

    def test_objective_and_overrides(self, data):
        """Explicit objectives and per-target retention appear where they apply."""
        data["objectives"] = [{"application": "blog", "rpo": "12h", "rto": "3h"}]
        data["targets"][1]["retention"] = {"keep_daily": 14}
        policy = Policy.from_dict(data)
        document = policy.to_markdown()
        assert "| blog | blog-db | 12 hours | 3 hours |" in document
        assert (
            f"Backups of blog-db are retained by: {policy.retention_for('blog-db').describe()}"
            in (document)
        )
        assert "10.2 blog (RPO 12 hours, RTO 3 hours)" in document

    def test_rolling_days(self, data):
        """Each target's rolling full-backup day is the one the scheduler uses."""
        policy = Policy.from_dict(data)
        slots = rolling_slots([t.name for t in policy.targets], period="week")
        days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
        section = _sections(policy.to_markdown())["1. Backup Schedule"]
        assert all(f"  - {name}: {days[slot]}" in section for name, slot in slots.items())
        del data["rolling_period"]
        assert "full backup of every enabled target" in _render(data)

    def test_tiers_and_notifications_removed(self, data):
        """Without tiers or notifications the document says so instead of listing them."""
        data["tiers"] = []
        data["notifications"] = []
        data["verification"]["integrity_covers_tiers"] = []
        for target in data["targets"]:
            target.pop("tiers", None)
        sections = _sections(_render(data))
        assert "kept in one tier" in sections["1. Backup Schedule"]
        assert "No notifications are configured" in sections["1. Backup Schedule"]


class TestEdgeCases:
    """Documents of small or odd policies."""

    def test_policy_without_s3_or_ec2(self, data):
        """Sections 7 and 8 say there is nothing of that kind."""
        data["targets"] = [t for t in data["targets"] if t["kind"] in ("rds-instance", "directory")]
        sections = _sections(_render(data))
        assert "no S3 targets" in sections["7. S3 Asset Versioning and Verification"]
        assert "no EC2 instances or EBS volumes" in sections["8. EC2 Snapshots"]

    def test_table_cells_are_escaped(self, data):
        """A '|' in a value does not break the Markdown table."""
        data["targets"][4]["settings"]["path"] = "/etc/a|b"
        document = _render(data)
        assert "| /etc/a\\|b |" in document

    def test_disabled_target_is_marked(self, data):
        """A disabled target is listed as such and left out of the counts."""
        data["targets"][0]["enabled"] = False
        document = _render(data)
        assert "| shop-db (disabled) |" in document
        assert "Backups of 5 critical infrastructure components" in document

    def test_document_ends_with_one_newline(self, data):
        """The text ends with exactly one newline (diff-friendly when committed)."""
        document = _render(data)
        assert (True, False) == (document.endswith("\n"), document.endswith("\n\n"))
