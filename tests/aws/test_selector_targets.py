"""Selector and account targets, end to end under moto: resolve, build, back up, plan.

In moto, credentials returned by ``AssumeRole`` act as the account of the role's ARN, so
resources made with an assumed session live in that account. A refused ``AssumeRole`` is
injected with a botocore ``before-call`` hook on the base session returning AccessDenied.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from backuppolicy.cli.main import main
from backuppolicy.core.policy import Policy
from backuppolicy.workflows.backups import backup, build_targets
from backuppolicy.workflows.pruning import plan_retention

B = "222222222222"
C = "333333333333"
ROLE_B = f"arn:aws:iam::{B}:role/backuppolicy"
ROLE_C = f"arn:aws:iam::{C}:role/backuppolicy"
_PASSWORD = "password-for-moto"  # moto needs one


def _db(session: boto3.Session, name: str, tags: dict[str, str], region: str = "us-east-1") -> None:
    session.client("rds", region_name=region).create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin",
        MasterUserPassword=_PASSWORD,
        AllocatedStorage=20,
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )


def _snapshots(session: boto3.Session, region: str = "us-east-1") -> list[str]:
    rds = session.client("rds", region_name=region)
    found = rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    return sorted(s["DBInstanceIdentifier"] for s in found)


def _policy(*targets: dict[str, Any]) -> Policy:
    return Policy.from_dict(
        {
            "name": "web",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": "35d"},
            "targets": list(targets),
        }
    )


def _selector(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "rds-instance",
        "selector": {"tags": {"backup": "daily"}},
        **extra,
    }


def _assume(base: boto3.Session, role: str, region: str = "us-east-1") -> boto3.Session:
    credentials = base.client("sts").assume_role(RoleArn=role, RoleSessionName="setup")[
        "Credentials"
    ]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def _deny(account: str) -> Any:
    def handler(params: dict[str, Any], **_: Any) -> Any:
        if account not in str(params.get("body", "")):
            return None
        response = AWSResponse("https://sts.invalid/", 403, {}, None)  # type: ignore[arg-type]
        return response, {
            "Error": {"Code": "AccessDenied", "Message": "not trusted"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }

    return handler


@pytest.fixture(name="base")
def _base(aws: None) -> boto3.Session:
    session = boto3.Session(region_name="us-east-1")
    _db(session, "shop-a", {"backup": "daily"})
    _db(session, "shop-b", {"backup": "daily"})
    _db(session, "scratch", {"backup": "never"})
    return session


@pytest.fixture(name="now")
def _now() -> datetime:
    # moto dates snapshots with the real clock: run "now" so that the due check sees them.
    return datetime.now(UTC)


class TestSelectorBackups:
    def test_backs_up_exactly_the_tagged(self, base: boto3.Session, now: datetime) -> None:
        """A selector target backs up the tagged instances, and only them."""
        policy = _policy(_selector("dbs"))
        report = backup(policy, now=now, targets=build_targets(policy, session=base))
        assert (["dbs-shop-a", "dbs-shop-b"], True) == ([r.target for r in report.runs], report.ok)
        assert ["shop-a", "shop-b"] == _snapshots(base)
        assert {"dbs-shop-a", "dbs-shop-b"} == {p.target for p in report.created}

    def test_audit_covers_the_targets_a_selector_found(
        self, base: boto3.Session, now: datetime
    ) -> None:
        """The audit judges each found target, not the selector placeholder."""
        from backuppolicy.workflows import audit

        policy = _policy(_selector("dbs"))
        targets = build_targets(policy, session=base)
        backup(policy, now=now, targets=targets)
        report = audit(policy, now=now, targets=targets, notifiers=[])
        daily = {f.target for f in report.findings if f.clause.key == "daily-backup"}
        assert {"dbs-shop-a", "dbs-shop-b"} == daily

    def test_new_resource_joins_next_run(self, base: boto3.Session, now: datetime) -> None:
        """A newly tagged instance is protected from the next run on; the others are not due."""
        policy = _policy(_selector("dbs"))
        backup(policy, now=now, targets=build_targets(policy, session=base))
        _db(base, "shop-c", {"backup": "daily"})
        report = backup(policy, now=now, targets=build_targets(policy, session=base))
        assert [("dbs-shop-a", False), ("dbs-shop-b", False), ("dbs-shop-c", True)] == [
            (r.target, r.point is not None) for r in report.runs
        ]

    def test_nothing_found_is_fine(self, base: boto3.Session, now: datetime) -> None:
        """A selector that matches nothing runs no target and fails nothing."""
        policy = _policy({**_selector("none"), "selector": {"tags": {"backup": "hourly"}}})
        report = backup(policy, now=now, targets=build_targets(policy, session=base))
        assert ((), True) == (report.runs, report.ok)

    def test_regions_fan_out(self, base: boto3.Session, now: datetime) -> None:
        """`regions` searches each region; every target lives in its own region."""
        _db(base, "shop-eu", {"backup": "daily"}, region="eu-west-1")
        policy = _policy(_selector("dbs", regions=["us-east-1", "eu-west-1"]))
        built = build_targets(policy, session=base)
        assert {
            "dbs-shop-a": "us-east-1",
            "dbs-shop-b": "us-east-1",
            "dbs-shop-eu": "eu-west-1",
        } == {name: target.region for name, target in built.items()}  # type: ignore[attr-defined]


class TestAccounts:
    def test_assumed_role_account(self, base: boto3.Session, now: datetime) -> None:
        """A target with an account is found and backed up in that account, not the caller's."""
        remote = _assume(base, ROLE_B)
        _db(remote, "ledger", {"backup": "daily"})
        policy = _policy(_selector("remote", account={"role_arn": ROLE_B}))
        report = backup(policy, now=now, targets=build_targets(policy, session=base))
        assert (["remote-ledger"], True) == ([r.target for r in report.runs], report.ok)
        assert (["ledger"], []) == (_snapshots(remote), _snapshots(base))

    def test_one_session_per_account_and_region(self, base: boto3.Session) -> None:
        """Each account's role is assumed once per run, however many targets and regions."""
        calls: list[str] = []
        base.events.register("before-call.sts.AssumeRole", lambda **_: calls.append("x"))
        remote = _assume(base, ROLE_B)
        _db(remote, "ledger", {"backup": "daily"})
        calls.clear()
        policy = _policy(
            _selector("remote", account=ROLE_B, regions=["us-east-1", "eu-west-1"]),
            {
                "name": "books",
                "kind": "rds-instance",
                "settings": {"db_instance_id": "books", "region": "us-east-1"},
                "account": ROLE_B,
            },
        )
        built = build_targets(policy, session=base)
        assert (["remote-ledger", "books"], 1) == (list(built), len(calls))

    def test_failing_account_does_not_stop_others(self, base: boto3.Session, now: datetime) -> None:
        """A refused role fails its own targets, reported per target; the rest are backed up.

        shop-a is named by the target 'orders', so the selector 'dbs' leaves it to it.
        """
        base.events.register("before-call.sts.AssumeRole", _deny(C))
        policy = _policy(
            _selector("denied", account=ROLE_C),
            {"name": "orders", "kind": "rds-instance", "settings": {"db_instance_id": "shop-a"}},
            _selector("dbs"),
        )
        built = build_targets(policy, session=base)
        report = backup(policy, now=now, targets=built)
        outcome = {r.target: r.ok for r in report.runs}
        assert {"denied": False, "orders": True, "dbs-shop-b": True} == outcome
        error = report.failed[0].error or ""
        assert (True, True) == (f"account {C}" in error, "AccessDenied" in error), error
        plan = plan_retention(policy, now=now, targets=built)
        assert ["denied"] == sorted(plan.errors)

    def test_refused_plain_target(self, base: boto3.Session, now: datetime) -> None:
        """A single-resource target in a refused account fails alone too."""
        base.events.register("before-call.sts.AssumeRole", _deny(C))
        policy = _policy(
            {
                "name": "far",
                "kind": "rds-instance",
                "settings": {"db_instance_id": "x"},
                "account": {"role_arn": ROLE_C, "external_id": "tenant-7"},
            },
            _selector("dbs"),
        )
        report = backup(policy, now=now, targets=build_targets(policy, session=base))
        assert [("dbs-shop-a", True), ("dbs-shop-b", True), ("far", False)] == sorted(
            (r.target, r.ok) for r in report.runs
        )


class TestTargetsCommand:
    def test_lists_what_selectors_find(self, base: boto3.Session, tmp_path: Path) -> None:
        """`backuppolicy targets` shows each selector's finds per account and region."""
        _db(_assume(base, ROLE_B, "eu-west-1"), "ledger", {"backup": "daily"}, "eu-west-1")
        policy = _policy(
            _selector("dbs"),
            _selector("remote", account=ROLE_B, regions=["eu-west-1"]),
            {"name": "orders", "kind": "rds-instance", "settings": {"db_instance_id": "shop-a"}},
        )
        path = tmp_path / "policy.yaml"
        path.write_text(policy.to_yaml(), encoding="utf-8")
        text, data = io.StringIO(), io.StringIO()
        assert 0 == main(["targets", "--policy", str(path)], out=text, err=io.StringIO())
        assert 0 == main(["targets", "--policy", str(path), "--json"], out=data)
        assert [
            "dbs: every rds-instance tagged backup=daily  (selector)",
            "  this account, default region: 1 found",
            "    dbs-shop-b  rds-instance  shop-b",
            "remote: every rds-instance tagged backup=daily in eu-west-1  (selector)",
            f"  account {B}, eu-west-1: 1 found",
            "    remote-ledger  rds-instance  ledger",
            "orders  rds-instance  shop-a  (policy)",
        ] == text.getvalue().splitlines()
        rows = json.loads(data.getvalue())["targets"]
        assert [
            ("dbs-shop-b", None, "us-east-1"),
            ("remote-ledger", B, "eu-west-1"),
            ("orders", None, None),
        ] == [(r["name"], r["account"], r["region"]) for r in rows]


class TestAuditCoverage:
    def test_unprotected_resources_are_findings(self, base: boto3.Session, now: datetime) -> None:
        """A tagged database that no target or selector covers is a non-compliant finding."""
        from backuppolicy.workflows import audit

        policy = _policy(_selector("dbs"))  # covers backup=daily: shop-a, shop-b, not scratch
        report = audit(policy, now=now, targets={}, notifiers=[], session=base)
        coverage = [f for f in report.findings if f.clause.key == "coverage"]
        assert [("scratch", False)] == [(f.target, f.compliant) for f in coverage]
        assert "rds-instance scratch in us-east-1" in coverage[0].detail

    def test_everything_covered_is_one_compliant_finding(
        self, base: boto3.Session, now: datetime
    ) -> None:
        """With every tagged resource covered, the clause holds."""
        from backuppolicy.workflows import audit

        covered = {**_selector("all"), "selector": {"tags": {"backup": None}}}
        report = audit(_policy(covered), now=now, targets={}, notifiers=[], session=base)
        coverage = [f for f in report.findings if f.clause.key == "coverage"]
        assert [True] == [f.compliant for f in coverage]

    def test_passed_targets_skip_coverage_unless_asked(
        self, base: boto3.Session, now: datetime
    ) -> None:
        """Targets passed in mean the caller's own world: no AWS search by default."""
        from backuppolicy.workflows import audit

        report = audit(_policy(_selector("dbs")), now=now, targets={}, notifiers=[])
        assert [] == [f for f in report.findings if f.clause.key == "coverage"]

    def test_restore_test_leftovers_are_not_unprotected(
        self, base: boto3.Session, now: datetime
    ) -> None:
        """A resource with the restore-test sweep tag is the sweeper's business, not a finding."""
        from backuppolicy.workflows import audit

        _db(base, "bp-restore-x", {"backuppolicy:restore-test": "2026-11-26T04:00:00Z"})
        report = audit(_policy(_selector("dbs")), now=now, targets={}, notifiers=[], session=base)
        coverage = [f.target for f in report.findings if f.clause.key == "coverage"]
        assert ["scratch"] == coverage
