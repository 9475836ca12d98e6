"""The public contract of ../shared/DESIGN.md, exercised as written (names, signatures, shapes)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import backuppolicy as bp

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 26, 4, 30, tzinfo=UTC)


@pytest.fixture(name="points")
def _points() -> list[bp.RecoveryPoint]:
    return [
        bp.RecoveryPoint(
            id=f"snap-{i}",
            target="orders-db",
            created_at=NOW - timedelta(days=i),
            kind="rds-snapshot",
            status=bp.Status.COMPLETED,
            tags={"k": "v"},
            legal_hold=None,
            managed=True,
        )
        for i in range(60)
    ]


class TestCoreContract:
    def test_rules_keep_and_plan(self, points):
        """rule.keep, rule.plan, plan.keep/delete/reasons behave as DESIGN.md shows."""
        rule = bp.MaxAge(days=35) | bp.KeepDaily(7) | bp.KeepWeekly(4)
        kept = rule.keep(points, now=NOW)
        plan = rule.plan(points, now=NOW)
        assert isinstance(kept, dict)
        assert all(isinstance(v, list) and v for v in kept.values())
        assert {p.id for p in plan.keep} >= set(kept)
        assert len(points) == len(plan.keep) + len(plan.delete)
        assert ["daily 2026-11-25"] == [r for r in plan.reasons["snap-1"] if r.startswith("daily")]
        assert all(isinstance(plan.reasons[p.id], list) for p in points)

    def test_legal_hold_value(self):
        """bp.LegalHold(reason=, reference=, since=) is a value."""
        hold = bp.LegalHold(reason="litigation", reference="case-17", since=NOW)
        assert hold == bp.LegalHold(reason="litigation", reference="case-17", since=NOW)

    def test_policy_file_and_document(self):
        """Policy.from_file and to_markdown; a wrong field raises PolicyError naming it."""
        policy = bp.Policy.from_file(ROOT / "examples" / "policy.yaml")
        assert "35 days" in policy.to_markdown()
        with pytest.raises(bp.PolicyError, match=r"retention\.max_age"):
            bp.Policy.from_dict({**policy.to_dict(), "retention": {"max_age": "soon"}})


class TestAwsContract:
    def test_rds_instance_and_s3_bucket(self, aws):
        """aws.RdsInstance(..., session=) create/list/delete with tokens; S3Bucket.restore_to_time."""
        import boto3

        from backuppolicy import aws as bp_aws

        session = boto3.Session(region_name="us-east-1")
        session.client("rds").create_db_instance(
            DBInstanceIdentifier="orders-db",
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            AllocatedStorage=20,
            MasterUsername="u",
            MasterUserPassword="password-1",
        )
        db = bp_aws.RdsInstance("orders-db", session=session)
        point = db.create_backup(reason="manual", token="2026-11-26")
        again = db.create_backup(reason="manual", token="2026-11-26")
        assert point.id == again.id
        assert point.id in {p.id for p in db.list_points()}
        db.delete(point)
        assert point.id not in {p.id for p in db.list_points()}

        s3 = session.client("s3")
        s3.create_bucket(Bucket="assets")
        s3.put_bucket_versioning(Bucket="assets", VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket="assets", Key="img/logo.png", Body=b"v1")
        bucket = bp_aws.S3Bucket(
            "assets", prefix="img/", session=session, account_id="123456789012"
        )
        report = bucket.restore_to_time(datetime.now(UTC), dest_bucket=None, dest_prefix=None)
        assert report is not None


class TestWorkflowContract:
    def test_backup_plan_retention_apply(self):
        """bp.backup(policy, now=) -> RunReport; bp.plan_retention -> RetentionPlan; bp.apply(plan)."""
        from backuppolicy.testing import MemoryTarget

        policy = bp.Policy.from_dict(
            {
                "name": "demo",
                "schedule": {"every": "day", "at": "04:00"},
                "retention": {"max_age": "35d"},
                "targets": [{"name": "db", "kind": "testing:memory", "application": "shop"}],
            }
        )
        targets = {"db": MemoryTarget("db", policy="demo")}
        report = bp.backup(policy, now=NOW, targets=targets)
        plan = bp.plan_retention(policy, now=NOW, targets=targets)
        assert isinstance(report, bp.RunReport)
        assert isinstance(plan, bp.RetentionPlan)
        assert isinstance(bp.apply(plan), bp.ApplyReport)


class TestCliContract:
    @pytest.mark.parametrize(
        "command",
        ["demo", "backup", "prune", "verify", "restore-test", "restore", "report", "doc", "export"],
    )
    def test_subcommands_exist(self, command):
        """Every subcommand DESIGN.md names answers --help."""
        import backuppolicy.cli.main as cli

        out = io.StringIO()
        with pytest.raises(SystemExit) as info:
            cli.main([command, "--help"], out=out, err=io.StringIO())
        assert 0 == info.value.code

    def test_doc_with_policy_and_json(self):
        """`doc --policy FILE --json` prints the policy as JSON."""
        import backuppolicy.cli.main as cli

        out = io.StringIO()
        code = cli.main(
            ["doc", "--policy", str(ROOT / "examples" / "policy.yaml"), "--json"],
            out=out,
            err=io.StringIO(),
        )
        assert (0, "web-apps") == (code, json.loads(out.getvalue())["name"])
