"""Tier locks in `export aws-backup` (vault locks), AWS Backup legal holds, and `export iam`."""

from __future__ import annotations

import io
import json
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws.awsbackup import AwsBackupTarget
from backuppolicy.aws.backup_plan import (
    ComplianceModeWarning,
    apply_aws_backup,
    export_aws_backup,
)
from backuppolicy.aws.iam import hold_deny_policy, iam_policy
from backuppolicy.cli import main as cli
from backuppolicy.core.locks import TierLock
from backuppolicy.core.model import LegalHold, RecoveryPoint
from backuppolicy.core.policy import Policy

ACCOUNT = "123456789012"
ARN = "arn:aws:backup:us-east-1:123456789012:recovery-point:rp-1"
RESOURCE = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
CREATED = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


def _policy(local: object = None, offsite: object = None) -> Policy:
    tiers: list[dict[str, Any]] = [
        {"name": "local", "every": "day"},
        {"name": "offsite", "every": "week", "location": {"region": "eu-west-1"}},
    ]
    for tier, lock in zip(tiers, (local, offsite), strict=True):
        if lock is not None:
            tier["lock"] = lock
    return Policy.from_dict(
        {
            "name": "shop",
            "schedule": {"every": "day", "at": "04:00", "window": "1h"},
            "retention": {"max_age": "35d"},
            "tiers": tiers,
            "targets": [
                {
                    "name": "shop-db",
                    "kind": "rds-instance",
                    "settings": {"db_instance_id": "shop", "region": "us-east-1"},
                }
            ],
        }
    )


class TestVaultLockExport:
    def test_tier_locks_become_vault_locks(self):
        """The first tier's lock locks the plan's vault; the off-site tier's, its copy vault."""
        with pytest.warns(ComplianceModeWarning, match="COMPLIANCE MODE"):
            doc = export_aws_backup(_policy("governance", "compliance"), account_id=ACCOUNT)
        assert {"BackupVaultName": "backuppolicy-shop", "MinRetentionDays": 35,
                "MaxRetentionDays": 35} == doc["VaultLock"]  # fmt: skip
        assert [
            {
                "Region": "eu-west-1",
                "Account": ACCOUNT,
                "BackupVaultName": "backuppolicy-shop",
                "MinRetentionDays": 35,
                "MaxRetentionDays": 35,
                "ChangeableForDays": 3,
            }
        ] == doc["CopyVaultLocks"]

    def test_no_lock_no_vault_lock(self):
        """Without tier locks the export has no vault lock at all."""
        doc = export_aws_backup(_policy(), account_id=ACCOUNT)
        assert (None, []) == (doc["VaultLock"], doc["CopyVaultLocks"])

    def test_explicit_duration_sets_the_minimum(self):
        """A 5-week lock on a keep-weekly-4 tier: min 35 days, max its span (35 days)."""
        from backuppolicy.aws.backup_plan import vault_lock_for
        from backuppolicy.core.retention import KeepWeekly

        lock = vault_lock_for(
            TierLock.from_spec({"mode": "governance", "for": "5w"}), KeepWeekly(4)
        )
        assert {"MinRetentionDays": 35, "MaxRetentionDays": 35} == lock.to_params()

    def test_apply_locks_the_copy_vault(self, aws: None):
        """apply_aws_backup puts the lock on the off-site vault too (moto has vault locks)."""
        session = boto3.Session(region_name="us-east-1")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ComplianceModeWarning)
            result = apply_aws_backup(
                _policy(None, "compliance"),
                session=session,
                parts=("vault", "vault-lock"),
                retry=RetryPolicy(sleep=lambda _: None),
            )
        assert {"eu-west-1:backuppolicy-shop": "set"} == result["copy_vault_locks"]
        vault = session.client("backup", region_name="eu-west-1").describe_backup_vault(
            BackupVaultName="backuppolicy-shop"
        )
        assert (True, 35, 35) == (
            vault["Locked"],
            vault["MinRetentionDays"],
            vault["MaxRetentionDays"],
        )


def _backup_target() -> tuple[AwsBackupTarget, Stubber]:
    client = boto3.Session(region_name="us-east-1").client("backup", region_name="us-east-1")
    target = AwsBackupTarget(
        RESOURCE,
        name="orders",
        vault="Default",
        clients={"backup": client},
        retry=RetryPolicy(sleep=lambda _: None),
    )
    return target, Stubber(client)


def _rp() -> RecoveryPoint:
    return RecoveryPoint(
        id=ARN,
        target="orders",
        created_at=CREATED,
        kind="aws-backup",
        managed=False,
        details={"vault": "Default", "resource_arn": RESOURCE},
    )


class TestAwsBackupLegalHolds:
    """moto 5.2 answers CreateLegalHold with 404 "Not yet implemented": Stubber stands in."""

    def test_place_hold_creates_an_aws_backup_legal_hold(self):
        """The legal hold selects the resource's points in the vault at the point's creation."""
        target, stub = _backup_target()
        hold = LegalHold(reason="litigation", reference="case-17")
        stub.add_response(
            "create_legal_hold",
            {"LegalHoldId": "lh-1", "Status": "CREATING"},
            {
                "Title": "case-17",
                "Description": f"backuppolicy hold on {ARN} case-17||litigation",
                "IdempotencyToken": ANY,
                "RecoveryPointSelection": {
                    "VaultNames": ["Default"],
                    "ResourceIdentifiers": [RESOURCE],
                    "DateRange": {"FromDate": CREATED, "ToDate": CREATED},
                },
                "Tags": {"backuppolicy:legal-hold": "case-17||litigation"},
            },
        )
        with stub:
            held = target.place_hold(_rp(), hold)
        stub.assert_no_pending_responses()
        assert (hold, "legal-hold", "lh-1") == (
            held.legal_hold,
            held.lock.mode,
            held.details["legal_hold_id"],
        )

    def test_release_cancels_only_our_hold_on_the_point(self):
        """release_hold cancels the active hold naming the point, and no other hold."""
        target, stub = _backup_target()
        holds = [
            {
                "LegalHoldId": "lh-1",
                "Status": "ACTIVE",
                "Description": f"backuppolicy hold on {ARN} x",
            },
            {"LegalHoldId": "lh-2", "Status": "ACTIVE", "Description": "someone else's"},
            {
                "LegalHoldId": "lh-3",
                "Status": "CANCELED",
                "Description": f"backuppolicy hold on {ARN} y",
            },
        ]
        stub.add_response("list_legal_holds", {"LegalHolds": holds})
        stub.add_response(
            "cancel_legal_hold",
            {},
            {"LegalHoldId": "lh-1", "CancelDescription": "released with backuppolicy"},
        )
        with stub:
            released = target.release_hold(_rp())
        stub.assert_no_pending_responses()
        assert (None, None) == (released.legal_hold, released.lock)


class TestIamHolds:
    def test_deny_statement_names_the_hold_tag(self):
        """The deny statement forbids deleting RDS snapshots that carry the hold tag."""
        statement = hold_deny_policy(account_id=ACCOUNT)["Statement"][0]
        assert ("Deny", ["rds:DeleteDBClusterSnapshot", "rds:DeleteDBSnapshot"]) == (
            statement["Effect"],
            statement["Action"],
        )
        assert {"Null": {"aws:ResourceTag/backuppolicy:legal-hold": "false"}} == statement[
            "Condition"
        ]

    def test_release_roles_may_untag(self):
        """The untag deny exempts the release roles only."""
        legal = "arn:aws:iam::123456789012:role/legal"
        untag = hold_deny_policy(release_role_arns=[legal])["Statement"][1]
        assert {"aws:PrincipalArn": [legal]} == untag["Condition"]["ArnNotLike"]

    def test_cli_export_iam_holds(self, tmp_path: Path):
        """`backuppolicy export iam --holds` writes the deny document."""
        path = tmp_path / "policy.yaml"  # JSON is YAML
        path.write_text(json.dumps(_policy().to_dict()))
        out = io.StringIO()
        code = cli.main(
            ["export", "iam", "--holds", "--policy", str(path), "--account-id", ACCOUNT],
            out=out,
            err=io.StringIO(),
        )
        assert (0, hold_deny_policy(account_id=ACCOUNT)) == (code, json.loads(out.getvalue()))

    def test_locked_tiers_grant_the_lock_calls(self):
        """With a locked tier, the backup workflow may call LockSnapshot; without, it may not."""
        data = _policy().to_dict()
        data["targets"] = [
            {
                "name": "data",
                "kind": "ebs-volume",
                "settings": {"volume_id": "vol-1", "region": "us-east-1"},
            }
        ]

        def actions(policy: Policy) -> set[str]:
            doc = iam_policy(policy, {"backup"}, account_id=ACCOUNT)
            return {a for s in doc["Statement"] for a in s["Action"]}

        assert "ec2:LockSnapshot" not in actions(Policy.from_dict(data))
        data["tiers"][1]["lock"] = "compliance"
        assert "ec2:LockSnapshot" in actions(Policy.from_dict(data))
