"""Export to AWS Backup, S3 lifecycle and EventBridge Scheduler; apply; import recovery points.

moto stores backup vaults, backup plans and Vault Lock configuration, so `apply_aws_backup`'s
vault, lock and plan parts run against moto in-process. moto has no backup selections, no restore
testing plans, no ``UpdateBackupPlan`` and no ``ListRecoveryPointsByBackupVault`` (it answers
"Not yet implemented"): those paths are tested with `botocore.stub.Stubber` on an injected client,
each marked in a comment.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws.awsbackup import (
    ACCOUNT_PLACEHOLDER,
    AwsBackupTarget,
    list_aws_backup_points,
    resource_arn,
)
from backuppolicy.aws.backup_plan import (
    ComplianceModeWarning,
    VaultLock,
    apply_aws_backup,
    aws_cron,
    export_aws_backup,
    export_lifecycle,
    export_scheduler,
    validate_aws_cron,
)
from backuppolicy.core import registry
from backuppolicy.core.exceptions import BackupPolicyError, PermissionDeniedError, PolicyError
from backuppolicy.core.model import TAG_POLICY, Status
from backuppolicy.core.policy import Policy, TargetSpec
from backuppolicy.core.schedule import Schedule
from backuppolicy.core.targets import AwsBackupMapping, Destination, IsolationProfile
from backuppolicy.lambda_handler import handler, load_policy

ACCOUNT = "123456789012"
SEED = Path(__file__).parents[2] / "backuppolicy" / "data" / "seed_policy.yaml"


def _policy(**overrides: Any) -> Policy:
    data: dict[str, Any] = {
        "name": "shop",
        "schedule": {"every": "day", "at": "04:00", "tz": "Europe/London", "window": "1h"},
        "retention": {"max_age": "35d"},
        "tiers": [
            {"name": "local", "every": "day"},
            {
                "name": "offsite",
                "every": "week",
                "location": {"region": "eu-west-1", "kms_key_id": "alias/offsite"},
            },
        ],
        "targets": [
            {
                "name": "shop-db",
                "kind": "rds-instance",
                "settings": {"db_instance_id": "shop", "region": "us-east-1"},
            },
            {
                "name": "web",
                "kind": "ec2-instance",
                "settings": {"instance_id": "i-0123456789abcdef0", "region": "us-east-1"},
            },
        ],
    }
    data.update(overrides)
    return Policy.from_dict(data)


@pytest.fixture(name="policy")
def _policy_fixture() -> Policy:
    return _policy()


@pytest.fixture(name="retry")
def _retry() -> RetryPolicy:
    return RetryPolicy(sleep=lambda _s: None)


class TestAwsCron:
    def test_daily(self) -> None:
        """A daily schedule puts '?' in day-of-week and adds the year field."""
        assert "cron(0 4 * * ? *)" == aws_cron(Schedule.daily(at="04:00"))

    def test_weekdays_become_names(self) -> None:
        """cron's numeric days of the week (0 = Sunday) become AWS's names."""
        assert "cron(30 2 ? * MON-FRI,SUN *)" == aws_cron(Schedule("30 2 * * 1-5,0"))

    def test_day_of_month(self) -> None:
        """A day-of-month schedule puts '?' in day-of-week."""
        assert "cron(0 4 1 1,4,7,10 ? *)" == aws_cron(Schedule.quarterly(at="04:00"))

    def test_both_days_refused(self) -> None:
        """AWS cannot say 'day 1 or Monday': the error names the cron field."""
        with pytest.raises(PolicyError) as info:
            aws_cron(Schedule("0 4 1 * 1"), path="tiers[1].every")
        assert "tiers[1].every.cron" == info.value.path

    def test_more_than_hourly_refused(self) -> None:
        """AWS Backup runs at most hourly: a minute list is refused."""
        with pytest.raises(PolicyError, match="one fixed minute"):
            aws_cron(Schedule("0,30 * * * *", window="20min"))

    @pytest.mark.parametrize(
        "expression",
        [
            "0 4 * * ? *",
            "cron(0 4 * * *)",
            "cron(0 4 * * * *)",
            "cron(0 4 ? * ? *)",
            "cron(*/5 4 * * ? *)",
        ],
    )
    def test_validate_rejects(self, expression: str) -> None:
        """Forms AWS rejects (5 fields, no '?', two '?', sub-hourly) are refused."""
        with pytest.raises(PolicyError) as info:
            validate_aws_cron(expression)
        assert "ScheduleExpression" == info.value.path


class TestExport:
    def test_seed_policy(self) -> None:
        """The seed compiles to a daily rule and a weekly off-site rule copying to eu-west-1."""
        document = export_aws_backup(Policy.from_file(SEED), account_id=ACCOUNT)
        daily, weekly = document["BackupPlan"]["Rules"]
        assert ("daily", "cron(0 4 * * ? *)", "GMT", 60) == (
            daily["RuleName"],
            daily["ScheduleExpression"],
            daily["ScheduleExpressionTimezone"],
            daily["StartWindowMinutes"],
        )
        assert {"DeleteAfterDays": 35} == daily["Lifecycle"]
        assert "CopyActions" not in daily
        assert "cron(0 4 ? * SUN *)" == weekly["ScheduleExpression"]
        assert [
            {
                "DestinationBackupVaultArn": f"arn:aws:backup:eu-west-1:{ACCOUNT}:backup-vault:"
                "backuppolicy-web-apps",
                "Lifecycle": {"DeleteAfterDays": 35},
            }
        ] == weekly["CopyActions"]
        assert "eu-west-2" == document["Region"]
        assert (
            f"arn:aws:rds:eu-west-2:{ACCOUNT}:db:shop-prod"
            in document["BackupSelection"]["Resources"]
        )
        assert 2 == sum("directory" in note for note in document["Warnings"])

    def test_selection_by_tag(self, policy: Policy) -> None:
        """The selection also takes every resource tagged backuppolicy:policy=<name>."""
        selection = export_aws_backup(policy)["BackupSelection"]
        assert [
            {"ConditionType": "STRINGEQUALS", "ConditionKey": TAG_POLICY, "ConditionValue": "shop"}
        ] == selection["ListOfTags"]
        assert selection["IamRoleArn"].startswith(f"arn:aws:iam::{ACCOUNT_PLACEHOLDER}:role/")

    def test_same_cadence_tier_copies_on_main_rule(self) -> None:
        """A daily off-site tier is a copy action of the daily rule, not a rule of its own."""
        policy = _policy(
            tiers=[
                {"name": "local", "every": "day"},
                {"name": "dr", "every": "day", "location": {"region": "eu-west-1"}},
            ]
        )
        rules = export_aws_backup(policy, account_id=ACCOUNT)["BackupPlan"]["Rules"]
        assert ["daily"] == [rule["RuleName"] for rule in rules]
        assert 1 == len(rules[0]["CopyActions"])

    def test_keep_weekly_refused_with_tier_hint(self) -> None:
        """keep_weekly has no AWS Backup equivalent: the error names it and suggests a tier."""
        policy = _policy(retention={"max_age": "35d", "keep_weekly": 4})
        with pytest.raises(PolicyError) as info:
            export_aws_backup(policy)
        assert "retention.keep_weekly" == info.value.path
        assert "every: week" in str(info.value)
        assert "28d" in str(info.value)

    def test_calendar_max_age_refused(self) -> None:
        """A max_age in years must be written in days for DeleteAfterDays."""
        with pytest.raises(PolicyError, match="365d") as info:
            export_aws_backup(_policy(retention={"max_age": "1y"}))
        assert "retention.max_age" == info.value.path

    def test_short_window_refused(self) -> None:
        """A start window under 60 minutes is refused (moto would accept it)."""
        policy = _policy(
            schedule={"every": "day", "at": "04:00", "tz": "Europe/London", "window": "30min"}
        )
        with pytest.raises(PolicyError) as info:
            export_aws_backup(policy)
        assert "schedule.window" == info.value.path

    def test_completion_not_after_start_refused(self, policy: Policy) -> None:
        """The completion window must be longer than the start window."""
        with pytest.raises(PolicyError) as info:
            export_aws_backup(policy, completion_window_minutes=60)
        assert "completion_window_minutes" == info.value.path

    def test_at_most_five_copy_actions(self) -> None:
        """Six copy tiers on one schedule exceed AWS's five copy actions per rule."""
        regions = ["eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "us-west-1", "us-west-2"]
        tiers = [{"name": "local", "every": "day"}] + [
            {"name": f"copy{i}", "every": "day", "location": {"region": region}}
            for i, region in enumerate(regions)
        ]
        with pytest.raises(PolicyError, match="at most 5") as info:
            export_aws_backup(_policy(tiers=tiers))
        assert 6 == info.value.got

    def test_cold_storage_needs_ninety_days(self, policy: Policy) -> None:
        """DeleteAfterDays must be at least 90 days after MoveToColdStorageAfterDays."""
        with pytest.raises(PolicyError, match="at least 120d"):
            export_aws_backup(policy, cold_storage_after_days=30)
        long = _policy(retention={"max_age": "120d"})
        rule = export_aws_backup(long, cold_storage_after_days=30)["BackupPlan"]["Rules"][0]
        assert {"DeleteAfterDays": 120, "MoveToColdStorageAfterDays": 30} == rule["Lifecycle"]

    def test_continuous_backup(self, policy: Policy) -> None:
        """Continuous backup is enabled on the main rule and restore tests may pick it."""
        document = export_aws_backup(policy, continuous=True)
        assert document["BackupPlan"]["Rules"][0]["EnableContinuousBackup"] is True
        assert "EnableContinuousBackup" not in document["BackupPlan"]["Rules"][1]
        selection = document["RestoreTestingPlan"]["RecoveryPointSelection"]
        assert ["SNAPSHOT", "CONTINUOUS"] == selection["RecoveryPointTypes"]

    def test_continuous_backup_at_most_35_days(self) -> None:
        """AWS keeps continuous backups at most 35 days."""
        with pytest.raises(PolicyError, match="at most 35d"):
            export_aws_backup(_policy(retention={"max_age": "36d"}), continuous=True)

    def test_vault_lock_bounds(self, policy: Policy) -> None:
        """A retention outside the vault lock's bounds is refused."""
        with pytest.raises(PolicyError, match="40 to 400 days") as info:
            export_aws_backup(policy, vault_lock=VaultLock(40, 400))
        assert "retention.max_age" == info.value.path

    def test_governance_lock_exported(self, policy: Policy) -> None:
        """A governance-mode lock is exported without warning."""
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            document = export_aws_backup(policy, vault_lock=VaultLock(7, 400))
        assert {
            "BackupVaultName": "backuppolicy-shop",
            "MinRetentionDays": 7,
            "MaxRetentionDays": 400,
        } == document["VaultLock"]

    def test_compliance_lock_warns(self, policy: Policy) -> None:
        """A compliance-mode lock warns loudly and says so in the document's warnings."""
        with pytest.warns(ComplianceModeWarning, match="COMPLIANCE MODE"):
            document = export_aws_backup(
                policy, vault_lock=VaultLock(7, 400, changeable_for_days=3)
            )
        assert 3 == document["VaultLock"]["ChangeableForDays"]
        assert any("not even the account root" in note for note in document["Warnings"])

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"min_retention_days": 10, "max_retention_days": 5}, "max_retention_days"),
            ({"changeable_for_days": 2}, "changeable_for_days"),
            ({"min_retention_days": 0}, "min_retention_days"),
        ],
    )
    def test_vault_lock_validation(self, kwargs: dict[str, int], field: str) -> None:
        """Vault lock values AWS rejects are refused at construction."""
        with pytest.raises(PolicyError) as info:
            VaultLock(**kwargs)
        assert field == info.value.path

    def test_target_schedule_refused(self) -> None:
        """One plan applies the same rules to all resources: a target's own schedule is refused."""
        targets = [
            {
                "name": "db",
                "kind": "rds-instance",
                "schedule": {"every": "hour"},
                "settings": {"db_instance_id": "db", "region": "us-east-1"},
            }
        ]
        with pytest.raises(PolicyError) as info:
            export_aws_backup(_policy(targets=targets))
        assert "targets[0].schedule" == info.value.path

    def test_regions(self) -> None:
        """Targets in two regions need region=; the other region's targets are then warned about."""
        targets = [
            {
                "name": "a",
                "kind": "ebs-volume",
                "settings": {"volume_id": "vol-1", "region": "us-east-1"},
            },
            {
                "name": "b",
                "kind": "ebs-volume",
                "settings": {"volume_id": "vol-2", "region": "us-west-2"},
            },
        ]
        policy = _policy(targets=targets)
        with pytest.raises(PolicyError) as info:
            export_aws_backup(policy)
        assert "region" == info.value.path
        document = export_aws_backup(policy, region="us-west-2", account_id=ACCOUNT)
        assert [f"arn:aws:ec2:us-west-2:{ACCOUNT}:volume/vol-2"] == document["BackupSelection"][
            "Resources"
        ]
        assert any("'a' is in region us-east-1" in note for note in document["Warnings"])

    def test_offsite_must_be_elsewhere(self) -> None:
        """A copy tier in the plan's own region, account and vault is no off-site copy."""
        policy = _policy(
            tiers=[{"name": "local", "every": "day"}, {"name": "again", "every": "week"}]
        )
        with pytest.raises(PolicyError) as info:
            export_aws_backup(policy)
        assert "tiers[1].location" == info.value.path

    def test_restore_testing(self, policy: Policy) -> None:
        """The restore testing plan follows the verification cadence; one selection per type."""
        document = export_aws_backup(policy, account_id=ACCOUNT)
        plan = document["RestoreTestingPlan"]
        assert ("backuppolicy_shop", "cron(0 4 1 1,4,7,10 ? *)") == (
            plan["RestoreTestingPlanName"],
            plan["ScheduleExpression"],
        )
        assert [
            ("RDS", [f"arn:aws:rds:us-east-1:{ACCOUNT}:db:shop"]),
            ("EC2", [f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0123456789abcdef0"]),
        ] == [
            (s["ProtectedResourceType"], s["ProtectedResourceArns"])
            for s in document["RestoreTestingSelections"]
        ]

    def test_resource_arn_of_directory(self) -> None:
        """Kinds AWS Backup cannot protect have no ARN."""
        spec = TargetSpec("etc", "directory", settings={"path": "/etc"})
        assert resource_arn(spec, region="us-east-1") is None


class _DynamoTable:
    """A plug-in kind that maps to AWS Backup by its class method alone."""

    @classmethod
    def aws_backup(cls, spec: TargetSpec) -> AwsBackupMapping:
        return AwsBackupMapping(
            "arn:{partition}:dynamodb:{region}:{account}:table/{table}",
            "DynamoDB",
            lambda profile: {"tableName": f"{profile.name_prefix}restored"},
            caveats=(f"table {spec.settings['table']} is backed up whole.",),
        )


class TestPluginKindMapping:
    @pytest.fixture(autouse=True)
    def _registered(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(registry, "_REGISTERED", dict(registry._REGISTERED))
        registry.register_target("testing:dynamodb", _DynamoTable)
        registry.register_target("testing:unmapped", object)

    def test_plugin_kind_is_selected_and_restore_tested(self) -> None:
        """A registered kind's aws_backup(spec) puts it in the selection and restore testing."""
        policy = Policy.from_dict(
            {
                "name": "shop",
                "schedule": {"every": "day", "at": "04:00"},
                "retention": {"max_age": "35d"},
                "verification": {"isolation": {"name_prefix": "bp-rt-"}},
                "targets": [
                    {
                        "name": "orders",
                        "kind": "testing:dynamodb",
                        "settings": {"table": "orders", "region": "eu-west-2"},
                    },
                    {"name": "other", "kind": "testing:unmapped"},
                ],
            }
        )
        document = export_aws_backup(policy, account_id=ACCOUNT)
        arn = f"arn:aws:dynamodb:eu-west-2:{ACCOUNT}:table/orders"
        assert "eu-west-2" == document["Region"]
        assert [arn] == document["BackupSelection"]["Resources"]
        assert [
            {
                "RestoreTestingSelectionName": "dynamodb_shop",
                "ProtectedResourceType": "DynamoDB",
                "IamRoleArn": document["BackupSelection"]["IamRoleArn"],
                "ProtectedResourceArns": [arn],
                "RestoreMetadataOverrides": {"tableName": "bp-rt-restored"},
            }
        ] == document["RestoreTestingSelections"]
        assert [
            "targets[0] 'orders': table orders is backed up whole.",
            (
                "targets[1] 'other' (testing:unmapped) is not an AWS resource: AWS Backup does "
                "not back it up; keep running `backuppolicy backup` for it."
            ),
        ] == document["Warnings"]

    def test_mapping_must_be_a_mapping(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A kind whose aws_backup(spec) returns something else is refused, naming the kind."""

        class Bad:
            @classmethod
            def aws_backup(cls, spec: TargetSpec) -> object:
                return "RDS"

        monkeypatch.setitem(registry._REGISTERED, "testing:bad", Bad)
        spec = TargetSpec("x", "testing:bad", settings={})
        with pytest.raises(PolicyError, match=r"testing:bad\.aws_backup\(\)"):
            resource_arn(spec, region="us-east-1")

    def test_overrides_default_to_none(self) -> None:
        """A mapping without restore overrides adds none, whatever the isolation profile."""
        mapping = AwsBackupMapping("arn:{partition}:s3:::{bucket}", "S3")
        assert {} == mapping.restore_overrides(IsolationProfile(subnet_group="g"))


@pytest.fixture(name="session")
def _session(aws: None) -> boto3.Session:
    return boto3.Session(region_name="us-east-1")


_MOTO_PARTS = ("vault", "vault-lock", "plan")  # moto has no selections nor restore testing


class TestApplyMoto:
    def test_creates_then_unchanged(
        self, session: boto3.Session, policy: Policy, retry: RetryPolicy
    ) -> None:
        """The first apply creates vaults and plan; the second changes nothing."""
        first = apply_aws_backup(policy, session=session, parts=_MOTO_PARTS, retry=retry)
        second = apply_aws_backup(policy, session=session, parts=_MOTO_PARTS, retry=retry)
        assert ("created", {"eu-west-1:backuppolicy-shop": "created"}, "created") == (
            first["vault"],
            first["copy_vaults"],
            first["plan"],
        )
        assert ("exists", {"eu-west-1:backuppolicy-shop": "exists"}, "unchanged") == (
            second["vault"],
            second["copy_vaults"],
            second["plan"],
        )
        backup = session.client("backup")
        plans = backup.list_backup_plans()["BackupPlansList"]
        assert [first["plan_id"]] == [p["BackupPlanId"] for p in plans]
        stored = backup.get_backup_plan(BackupPlanId=first["plan_id"])["BackupPlan"]["Rules"]
        assert ["daily", "offsite-weekly"] == [rule["RuleName"] for rule in stored]
        offsite = session.client("backup", region_name="eu-west-1").describe_backup_vault(
            BackupVaultName="backuppolicy-shop"
        )
        assert f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/offsite" == offsite["EncryptionKeyArn"]

    def test_vault_lock(self, session: boto3.Session, policy: Policy, retry: RetryPolicy) -> None:
        """The vault lock is set once, then left alone."""
        lock = VaultLock(7, 400)
        first = apply_aws_backup(
            policy, session=session, parts=_MOTO_PARTS, vault_lock=lock, retry=retry
        )
        second = apply_aws_backup(
            policy, session=session, parts=_MOTO_PARTS, vault_lock=lock, retry=retry
        )
        vault = session.client("backup").describe_backup_vault(BackupVaultName="backuppolicy-shop")
        assert ("set", "unchanged") == (first["vault_lock"], second["vault_lock"])
        assert (True, 7, 400) == (
            vault["Locked"],
            vault["MinRetentionDays"],
            vault["MaxRetentionDays"],
        )

    def test_unknown_part(self, session: boto3.Session, policy: Policy) -> None:
        """An unknown part is refused before any call."""
        with pytest.raises(PolicyError) as info:
            apply_aws_backup(policy, session=session, parts=("vault", "plans"))
        assert "plans" == info.value.got


def _stubbed(region: str = "us-east-1") -> tuple[Any, Stubber]:
    client = boto3.client("backup", region_name=region)
    return client, Stubber(client)


def _plan_listing(plan_id: str = "plan-1") -> dict[str, Any]:
    return {"BackupPlansList": [{"BackupPlanName": "backuppolicy-shop", "BackupPlanId": plan_id}]}


class TestApplyStubbed:
    """Selections, restore testing and UpdateBackupPlan: not in moto, so Stubber."""

    def test_plan_updated_when_rules_differ(self, policy: Policy, retry: RetryPolicy) -> None:
        """A plan whose rules differ is updated in place (UpdateBackupPlan; not in moto)."""
        document = export_aws_backup(policy, account_id=ACCOUNT)
        old = [
            dict(rule, Lifecycle={"DeleteAfterDays": 30}, RuleId="r")
            for rule in document["BackupPlan"]["Rules"]
        ]
        client, stub = _stubbed()
        stub.add_response("list_backup_plans", _plan_listing(), {})
        stub.add_response(
            "get_backup_plan",
            {"BackupPlan": {"BackupPlanName": "backuppolicy-shop", "Rules": old}},
            {"BackupPlanId": "plan-1"},
        )
        stub.add_response(
            "update_backup_plan",
            {"BackupPlanId": "plan-1"},
            {"BackupPlanId": "plan-1", "BackupPlan": document["BackupPlan"]},
        )
        with stub:
            result = apply_aws_backup(
                policy, clients={"backup": client}, parts=("plan",), account_id=ACCOUNT, retry=retry
            )
        stub.assert_no_pending_responses()
        assert "updated" == result["plan"]

    def test_selection_created(self, policy: Policy, retry: RetryPolicy) -> None:
        """A missing selection is created on the plan found by name (selections: not in moto)."""
        selection = export_aws_backup(policy, account_id=ACCOUNT)["BackupSelection"]
        client, stub = _stubbed()
        stub.add_response("list_backup_plans", _plan_listing(), {})
        stub.add_response(
            "list_backup_selections", {"BackupSelectionsList": []}, {"BackupPlanId": "plan-1"}
        )
        stub.add_response(
            "create_backup_selection",
            {"SelectionId": "sel-1"},
            {"BackupPlanId": "plan-1", "BackupSelection": selection, "CreatorRequestId": ANY},
        )
        with stub:
            result = apply_aws_backup(
                policy,
                clients={"backup": client},
                parts=("selection",),
                account_id=ACCOUNT,
                retry=retry,
            )
        stub.assert_no_pending_responses()
        assert "created" == result["selection"]

    @pytest.mark.parametrize(
        ("stored_role", "expected"), [(None, "unchanged"), ("arn:aws:iam::1:role/old", "replaced")]
    )
    def test_selection_kept_or_replaced(
        self, policy: Policy, retry: RetryPolicy, stored_role: str | None, expected: str
    ) -> None:
        """An equal selection is left alone; a different one is deleted and created again."""
        selection = export_aws_backup(policy, account_id=ACCOUNT)["BackupSelection"]
        stored = dict(selection, IamRoleArn=stored_role or selection["IamRoleArn"])
        client, stub = _stubbed()
        stub.add_response("list_backup_plans", _plan_listing(), {})
        stub.add_response(
            "list_backup_selections",
            {
                "BackupSelectionsList": [
                    {"SelectionName": selection["SelectionName"], "SelectionId": "sel-1"}
                ]
            },
            {"BackupPlanId": "plan-1"},
        )
        stub.add_response(
            "get_backup_selection",
            {"BackupSelection": stored, "SelectionId": "sel-1"},
            {"BackupPlanId": "plan-1", "SelectionId": "sel-1"},
        )
        if expected == "replaced":
            stub.add_response(
                "delete_backup_selection", {}, {"BackupPlanId": "plan-1", "SelectionId": "sel-1"}
            )
            stub.add_response(
                "create_backup_selection",
                {"SelectionId": "sel-2"},
                {"BackupPlanId": "plan-1", "BackupSelection": selection, "CreatorRequestId": ANY},
            )
        with stub:
            result = apply_aws_backup(
                policy,
                clients={"backup": client},
                parts=("selection",),
                account_id=ACCOUNT,
                retry=retry,
            )
        stub.assert_no_pending_responses()
        assert expected == result["selection"]

    def test_restore_testing_created(self, policy: Policy, retry: RetryPolicy) -> None:
        """A missing restore testing plan and its selections are created (not in moto)."""
        document = export_aws_backup(policy, account_id=ACCOUNT)
        plan = document["RestoreTestingPlan"]
        client, stub = _stubbed()
        stub.add_response("list_restore_testing_plans", {"RestoreTestingPlans": []}, {})
        stub.add_response(
            "create_restore_testing_plan",
            {
                "CreationTime": datetime(2026, 11, 26, tzinfo=UTC),
                "RestoreTestingPlanArn": "arn:p",
                "RestoreTestingPlanName": plan["RestoreTestingPlanName"],
            },
            {"RestoreTestingPlan": plan, "CreatorRequestId": ANY},
        )
        for selection in document["RestoreTestingSelections"]:
            stub.add_response(
                "create_restore_testing_selection",
                {
                    "CreationTime": datetime(2026, 11, 26, tzinfo=UTC),
                    "RestoreTestingPlanArn": "arn:p",
                    "RestoreTestingPlanName": plan["RestoreTestingPlanName"],
                    "RestoreTestingSelectionName": selection["RestoreTestingSelectionName"],
                },
                {
                    "RestoreTestingPlanName": plan["RestoreTestingPlanName"],
                    "RestoreTestingSelection": selection,
                    "CreatorRequestId": ANY,
                },
            )
        with stub:
            result = apply_aws_backup(
                policy,
                clients={"backup": client},
                parts=("restore-testing",),
                account_id=ACCOUNT,
                retry=retry,
            )
        stub.assert_no_pending_responses()
        assert {
            "backuppolicy_shop": "created",
            "rds_shop": "created",
            "ec2_shop": "created",
        } == result["restore_testing"]

    def test_restore_testing_updated(self, policy: Policy, retry: RetryPolicy) -> None:
        """A plan with another schedule is updated; an equal selection is left alone (not in moto)."""
        document = export_aws_backup(policy, account_id=ACCOUNT)
        plan = document["RestoreTestingPlan"]
        rds, ec2 = document["RestoreTestingSelections"]
        name = plan["RestoreTestingPlanName"]
        stored_plan = dict(
            plan,
            ScheduleExpression="cron(0 4 1 1 ? *)",
            RestoreTestingPlanArn="arn:p",
            CreationTime=datetime(2026, 1, 1, tzinfo=UTC),
        )
        client, stub = _stubbed()
        stub.add_response(
            "list_restore_testing_plans",
            {
                "RestoreTestingPlans": [
                    {
                        "RestoreTestingPlanName": name,
                        "RestoreTestingPlanArn": "arn:p",
                        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
                        "ScheduleExpression": "x",
                    }
                ]
            },
            {},
        )
        stub.add_response(
            "get_restore_testing_plan",
            {"RestoreTestingPlan": stored_plan},
            {"RestoreTestingPlanName": name},
        )
        update = {
            k: plan[k]
            for k in (
                "RecoveryPointSelection",
                "ScheduleExpression",
                "ScheduleExpressionTimezone",
                "StartWindowHours",
            )
        }
        stub.add_response(
            "update_restore_testing_plan",
            {
                "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
                "RestoreTestingPlanArn": "arn:p",
                "RestoreTestingPlanName": name,
                "UpdateTime": datetime(2026, 11, 26, tzinfo=UTC),
            },
            {"RestoreTestingPlanName": name, "RestoreTestingPlan": update},
        )
        listed = [
            {
                "RestoreTestingSelectionName": s["RestoreTestingSelectionName"],
                "RestoreTestingPlanName": name,
                "ProtectedResourceType": s["ProtectedResourceType"],
                "IamRoleArn": s["IamRoleArn"],
                "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
            }
            for s in (rds, ec2)
        ]
        stub.add_response(
            "list_restore_testing_selections",
            {"RestoreTestingSelections": listed},
            {"RestoreTestingPlanName": name},
        )
        created = {"CreationTime": datetime(2026, 1, 1, tzinfo=UTC), "RestoreTestingPlanName": name}
        stub.add_response(
            "get_restore_testing_selection",
            {"RestoreTestingSelection": {**rds, **created}},
            {
                "RestoreTestingPlanName": name,
                "RestoreTestingSelectionName": rds["RestoreTestingSelectionName"],
            },
        )
        old_ec2 = {
            **ec2,
            **created,
            "ProtectedResourceArns": ["arn:aws:ec2:us-east-1:1:instance/i-old"],
        }
        stub.add_response(
            "get_restore_testing_selection",
            {"RestoreTestingSelection": old_ec2},
            {
                "RestoreTestingPlanName": name,
                "RestoreTestingSelectionName": ec2["RestoreTestingSelectionName"],
            },
        )
        stub.add_response(
            "update_restore_testing_selection",
            {
                **created,
                "RestoreTestingPlanArn": "arn:p",
                "RestoreTestingSelectionName": ec2["RestoreTestingSelectionName"],
                "UpdateTime": datetime(2026, 11, 26, tzinfo=UTC),
            },
            {
                "RestoreTestingPlanName": name,
                "RestoreTestingSelectionName": ec2["RestoreTestingSelectionName"],
                "RestoreTestingSelection": {
                    k: v
                    for k, v in ec2.items()
                    if k not in {"RestoreTestingSelectionName", "ProtectedResourceType"}
                },
            },
        )
        with stub:
            result = apply_aws_backup(
                policy,
                clients={"backup": client},
                parts=("restore-testing",),
                account_id=ACCOUNT,
                retry=retry,
            )
        stub.assert_no_pending_responses()
        assert {name: "updated", "rds_shop": "unchanged", "ec2_shop": "updated"} == result[
            "restore_testing"
        ]


def _point(arn: str, resource: str, status: str, day: int) -> dict[str, Any]:
    return {
        "RecoveryPointArn": arn,
        "BackupVaultName": "vault",
        "BackupVaultArn": f"arn:aws:backup:us-east-1:{ACCOUNT}:backup-vault:vault",
        "ResourceArn": resource,
        "ResourceType": "RDS",
        "Status": status,
        "CreationDate": datetime(2026, 11, day, 4, 0, tzinfo=UTC),
        "BackupSizeInBytes": 1024,
        "IsEncrypted": True,
        "EncryptionKeyArn": "arn:aws:kms:us-east-1:1:key/k",
        "Lifecycle": {"DeleteAfterDays": 35},
    }


class TestListPoints:
    """list_recovery_points_by_backup_vault is "Not yet implemented" in moto: Stubber."""

    def test_pages_become_points(self, policy: Policy, retry: RetryPolicy) -> None:
        """Both pages are read; ARNs map to policy target names; nothing is managed."""
        db = f"arn:aws:rds:us-east-1:{ACCOUNT}:db:shop"
        other = f"arn:aws:rds:us-east-1:{ACCOUNT}:db:other"
        client, stub = _stubbed()
        stub.add_response(
            "list_recovery_points_by_backup_vault",
            {"RecoveryPoints": [_point("arn:rp:1", db, "COMPLETED", 24)], "NextToken": "t1"},
            {"BackupVaultName": "vault"},
        )
        stub.add_response(
            "list_recovery_points_by_backup_vault",
            {
                "RecoveryPoints": [
                    _point("arn:rp:2", other, "CREATING", 25),
                    _point("arn:rp:3", db, "EXPIRED", 26),
                ]
            },
            {"BackupVaultName": "vault", "NextToken": "t1"},
        )
        with stub:
            points = list(
                list_aws_backup_points(
                    "vault", clients={"backup": client}, policy=policy, retry=retry
                )
            )
        assert [
            ("arn:rp:1", "shop-db", Status.COMPLETED),
            ("arn:rp:2", "other", Status.PENDING),
            ("arn:rp:3", "shop-db", Status.FAILED),
        ] == [(p.id, p.target, p.status) for p in points]
        assert {False} == {p.managed for p in points}
        assert ("aws-backup", True, 1024) == (
            points[0].kind,
            points[0].encrypted,
            points[0].size_bytes,
        )

    def test_failing_page_raises(self, retry: RetryPolicy) -> None:
        """A page that fails raises after the earlier pages, never ending the listing quietly."""
        client, stub = _stubbed()
        stub.add_response(
            "list_recovery_points_by_backup_vault",
            {
                "RecoveryPoints": [
                    _point("arn:rp:1", "arn:aws:rds:us-east-1:1:db:x", "COMPLETED", 24)
                ],
                "NextToken": "t1",
            },
            {"BackupVaultName": "vault"},
        )
        stub.add_client_error(
            "list_recovery_points_by_backup_vault", "AccessDeniedException", http_status_code=403
        )
        seen: list[Any] = []
        with stub, pytest.raises(PermissionDeniedError):
            seen.extend(list_aws_backup_points("vault", clients={"backup": client}, retry=retry))
        assert ["arn:rp:1"] == [p.id for p in seen]


class TestAwsBackupTarget:
    @pytest.fixture(name="target")
    def _target(self, retry: RetryPolicy) -> Iterator[tuple[AwsBackupTarget, Stubber]]:
        client, stub = _stubbed()
        target = AwsBackupTarget(
            f"arn:aws:rds:us-east-1:{ACCOUNT}:db:shop",
            name="shop-db",
            clients={"backup": client},
            retry=retry,
        )
        with stub:
            yield target, stub

    def test_refuses_writes(self, target: tuple[AwsBackupTarget, Stubber]) -> None:
        """Create, delete, copy and restore say that AWS Backup owns the points."""
        backend, _ = target
        point = _to_recovery_point(backend)
        calls: list[Callable[[], object]] = [
            backend.create_backup,
            lambda: backend.delete(point),
            lambda: backend.copy(point, Destination()),
            lambda: backend.restore(point),
        ]
        for call in calls:
            with pytest.raises(PolicyError, match="AWS Backup owns"):
                call()

    def test_lists_by_resource(self, target: tuple[AwsBackupTarget, Stubber]) -> None:
        """Without a vault, points are listed by resource across vaults (Stubber: not in moto)."""
        backend, stub = target
        item = {
            "RecoveryPointArn": "arn:rp:1",
            "CreationDate": datetime(2026, 11, 24, 4, 0, tzinfo=UTC),
            "Status": "COMPLETED",
            "EncryptionKeyArn": "arn:aws:kms:us-east-1:1:key/k",
            "BackupSizeBytes": 2048,
            "BackupVaultName": "vault",
        }
        stub.add_response(
            "list_recovery_points_by_resource",
            {"RecoveryPoints": [item]},
            {"ResourceArn": backend.resource_arn},
        )
        assert [("arn:rp:1", "shop-db", 2048, True)] == [
            (p.id, p.target, p.size_bytes, p.encrypted) for p in backend.list_points()
        ]

    def test_refresh_gone(self, target: tuple[AwsBackupTarget, Stubber]) -> None:
        """A point AWS Backup no longer knows refreshes to None."""
        backend, stub = target
        stub.add_client_error(
            "describe_recovery_point", "ResourceNotFoundException", http_status_code=400
        )
        assert backend.refresh(_to_recovery_point(backend)) is None


def _to_recovery_point(target: AwsBackupTarget) -> Any:
    from backuppolicy.core.model import RecoveryPoint

    return RecoveryPoint(
        id="arn:rp:1",
        target=target.name,
        created_at=datetime(2026, 11, 24, tzinfo=UTC),
        kind="aws-backup",
        managed=False,
        details={"vault": "vault"},
    )


class TestLifecycle:
    def test_seed_policy(self, session: boto3.Session) -> None:
        """The seed's S3 target gets a 35-day noncurrent expiration that S3 accepts."""
        configs = export_lifecycle(Policy.from_file(SEED))
        assert ["acme-web-assets"] == list(configs)
        rule = configs["acme-web-assets"]["Rules"][0]
        assert ({"NoncurrentDays": 35}, {"Prefix": ""}) == (
            rule["NoncurrentVersionExpiration"],
            rule["Filter"],
        )
        s3 = session.client("s3")
        s3.create_bucket(Bucket="acme-web-assets")
        s3.put_bucket_lifecycle_configuration(
            Bucket="acme-web-assets",
            LifecycleConfiguration=configs["acme-web-assets"],  # type: ignore[arg-type]
        )
        stored = s3.get_bucket_lifecycle_configuration(Bucket="acme-web-assets")["Rules"]
        assert [rule["ID"]] == [r["ID"] for r in stored]

    def test_inexpressible_retention(self) -> None:
        """A retention S3 lifecycle cannot express names the target's retention."""
        targets = [
            {
                "name": "assets",
                "kind": "s3-bucket",
                "settings": {"bucket": "b"},
                "retention": {"keep_weekly": 4},
            }
        ]
        with pytest.raises(PolicyError) as info:
            export_lifecycle(_policy(targets=targets, tiers=[]))
        assert "targets[0].retention" == info.value.path


class TestScheduler:
    def test_schedules_accepted_by_scheduler(self, session: boto3.Session) -> None:
        """Backup and prune schedules are in the shape EventBridge Scheduler takes."""
        out = export_scheduler(
            Policy.from_file(SEED),
            lambda_arn=f"arn:aws:lambda:eu-west-2:{ACCOUNT}:function:backuppolicy",
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/scheduler",
            policy_url="s3://cfg/policy.yaml",
        )
        scheduler = session.client("scheduler")
        scheduler.create_schedule_group(Name=out["ScheduleGroup"]["Name"])
        for schedule in out["Schedules"]:
            scheduler.create_schedule(**schedule)
        stored = scheduler.get_schedule(Name="web-apps-prune", GroupName="backuppolicy-web-apps")
        assert "cron(0 5 * * ? *)" == stored["ScheduleExpression"]
        assert {"action": "prune", "policy": "s3://cfg/policy.yaml", "apply": False} == json.loads(
            stored["Target"]["Input"]
        )
        assert "backuppolicy.lambda_handler.handler" == out["Lambda"]["Handler"]


_S3_POLICY = """
name: assets-policy
schedule: {every: day, at: "04:00"}
retention: {max_age: 35d}
targets:
  - name: assets
    kind: s3-bucket
    settings: {bucket: assets, region: us-east-1}
"""


class TestLambdaHandler:
    @pytest.fixture(name="policy_url")
    def _policy_url(self, session: boto3.Session) -> str:
        s3 = session.client("s3")
        s3.create_bucket(Bucket="cfg")
        s3.put_object(Bucket="cfg", Key="policy.yaml", Body=_S3_POLICY.encode())
        s3.create_bucket(Bucket="assets")
        s3.put_bucket_versioning(Bucket="assets", VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket="assets", Key="a.txt", Body=b"a")
        return "s3://cfg/policy.yaml"

    def test_load_policy_from_s3(self, policy_url: str) -> None:
        """A policy stored in S3 loads by URL."""
        assert "assets-policy" == load_policy(policy_url).name

    def test_backup_then_prune(self, policy_url: str) -> None:
        """The backup action takes the due backup; the prune action is a dry run by default."""
        now = "2026-11-26T04:10:00+00:00"
        backup = handler({"action": "backup", "policy": policy_url, "now": now})
        prune = handler({"action": "prune", "policy": policy_url, "now": now})
        assert (True, 1) == (
            backup["ok"],
            sum(1 for run in backup["report"]["runs"] if run["point"]),
        )
        assert (True, True) == (prune["ok"], prune["apply"]["dry_run"])

    def test_policy_from_environment(
        self, policy_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without a policy in the event, $BACKUPPOLICY_FILE names it."""
        monkeypatch.setenv("BACKUPPOLICY_FILE", policy_url)
        result = handler({"action": "backup", "now": "2026-11-26T04:10:00+00:00"})
        assert result["ok"] is True

    @pytest.mark.parametrize(
        ("event", "field"),
        [
            ({"now": "x" * 1_000_000}, "now"),
            ({"now": 20261126}, "now"),
            ({"now": "2026-11-26T04:10:00"}, "now"),
            ({"targets": "assets"}, "targets"),
            ({"targets": [{"a": 1}]}, "targets"),
            ({"apply": "yes", "action": "prune"}, "apply"),
        ],
    )
    def test_hostile_event_values_are_short_policy_errors(
        self, policy_url: str, event: dict[str, Any], field: str
    ) -> None:
        """An event's bad values are PolicyErrors naming the field, quoted cut short."""
        with pytest.raises(PolicyError) as info:
            handler({"action": "backup", "policy": policy_url, **event})
        assert (field, True) == (info.value.path, len(str(info.value)) < 500)

    def test_missing_policy(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """No policy in the event nor the environment is a clear error."""
        monkeypatch.delenv("BACKUPPOLICY_FILE", raising=False)
        with pytest.raises(PolicyError) as info:
            handler({"action": "backup"})
        assert "policy" == info.value.path

    def test_failure_raises(self, session: boto3.Session) -> None:
        """A run with a failed target raises, so the invocation counts as failed."""
        s3 = session.client("s3")
        s3.create_bucket(Bucket="cfg")
        s3.put_object(
            Bucket="cfg", Key="policy.yaml", Body=_S3_POLICY.encode()
        )  # bucket 'assets' is missing
        with pytest.raises(BackupPolicyError, match="backup had failures: assets"):
            handler(
                {
                    "action": "backup",
                    "policy": "s3://cfg/policy.yaml",
                    "now": "2026-11-26T04:10:00+00:00",
                }
            )


@pytest.fixture(name="cli")
def _cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """Run ``backuppolicy`` in-process; returns (code, stdout, stderr)."""
    import io

    import backuppolicy.cli.main as cli

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr("sys.stderr", err)
        code = cli.main(list(argv), out=out, err=err)
        return code, out.getvalue(), err.getvalue()

    return run


class TestCli:
    def test_export_aws_backup(self, cli: Callable[..., tuple[int, str, str]]) -> None:
        """The document goes to stdout, warnings about directory targets to stderr."""
        code, out, err = cli("export", "aws-backup", "--policy", str(SEED), "--account-id", ACCOUNT)
        document = json.loads(out)
        assert (0, ["daily", "offsite-weekly"]) == (
            code,
            [r["RuleName"] for r in document["BackupPlan"]["Rules"]],
        )
        assert 2 == err.count("WARNING: targets[")

    def test_compliance_lock_warns_on_stderr(
        self, cli: Callable[..., tuple[int, str, str]]
    ) -> None:
        """A compliance-mode lock is announced loudly."""
        code, _, err = cli(
            "export",
            "aws-backup",
            "--policy",
            str(SEED),
            "--lock-min-days",
            "7",
            "--lock-changeable-for-days",
            "3",
        )
        assert 0 == code
        assert "WARNING: COMPLIANCE MODE" in err

    def test_apply(
        self, cli: Callable[..., tuple[int, str, str]], session: boto3.Session, tmp_path: Path
    ) -> None:
        """--apply creates the vault and plan (moto: only the parts moto has)."""
        path = tmp_path / "policy.yaml"
        path.write_text(_policy().to_yaml(), encoding="utf-8")
        code, out, _ = cli(
            "export",
            "aws-backup",
            "--policy",
            str(path),
            "--apply",
            "--yes",
            "--parts",
            "vault,plan",
        )
        assert (0, "created", "created") == (
            code,
            json.loads(out)["applied"]["vault"],
            json.loads(out)["applied"]["plan"],
        )
        assert ["backuppolicy-shop"] == [
            p["BackupPlanName"]
            for p in session.client("backup").list_backup_plans()["BackupPlansList"]
        ]

    def test_apply_without_yes_and_no_terminal_is_refused(
        self,
        cli: Callable[..., tuple[int, str, str]],
        session: boto3.Session,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """--apply asks first; with no terminal it needs --yes: exit 2 and nothing in AWS."""
        import io

        path = tmp_path / "policy.yaml"
        path.write_text(_policy().to_yaml(), encoding="utf-8")
        monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a terminal
        code, out, err = cli("export", "aws-backup", "--policy", str(path), "--apply")
        assert (2, "") == (code, out)
        assert "--yes" in err
        assert [] == session.client("backup").list_backup_plans()["BackupPlansList"]
        assert [] == session.client("backup").list_backup_vaults()["BackupVaultList"]

    def test_refused_rule_is_a_usage_error(
        self, cli: Callable[..., tuple[int, str, str]], tmp_path: Path
    ) -> None:
        """A retention AWS Backup cannot express exits 2 with the field in the message."""
        path = tmp_path / "policy.yaml"
        path.write_text(
            _policy(retention={"max_age": "35d", "keep_weekly": 4}).to_yaml(), encoding="utf-8"
        )
        code, _, err = cli("export", "aws-backup", "--policy", str(path))
        assert 2 == code
        assert "retention.keep_weekly" in err

    def test_export_iam_lifecycle_scheduler(self, cli: Callable[..., tuple[int, str, str]]) -> None:
        """iam, lifecycle and scheduler print their JSON documents."""
        _, iam_out, _ = cli("export", "iam", "--policy", str(SEED), "--workflow", "prune")
        _, lifecycle_out, _ = cli("export", "lifecycle", "--policy", str(SEED))
        _, scheduler_out, _ = cli(
            "export",
            "scheduler",
            "--policy",
            str(SEED),
            "--lambda-arn",
            "arn:aws:lambda:eu-west-2:1:function:f",
            "--role-arn",
            "arn:aws:iam::1:role/r",
            "--policy-url",
            "s3://cfg/p.yaml",
        )
        actions = {a for s in json.loads(iam_out)["Statement"] for a in s["Action"]}
        assert "rds:DeleteDBSnapshot" in actions
        assert ["acme-web-assets"] == list(json.loads(lifecycle_out))
        assert 2 == len(json.loads(scheduler_out)["Schedules"])

    def test_export_needs_what(self, cli: Callable[..., tuple[int, str, str]]) -> None:
        """`export` alone is a usage error naming the choices."""
        code, _, err = cli("export")
        assert (2, True) == (code, "aws-backup, cloudformation, iam, lifecycle, scheduler" in err)

    def test_targets_with_selector(
        self, cli: Callable[..., tuple[int, str, str]], session: boto3.Session
    ) -> None:
        """`targets` lists the policy's targets and what the selector finds, as JSON."""
        session.client("ec2").create_volume(
            AvailabilityZone="us-east-1a",
            Size=1,
            TagSpecifications=[
                {"ResourceType": "volume", "Tags": [{"Key": "backup", "Value": "daily"}]}
            ],
        )
        code, out, _ = cli("targets", "--policy", str(SEED), "--tag", "backup=daily", "--json")
        listed = json.loads(out)["targets"]
        assert 0 == code
        assert [("ebs-volume", "selector")] == [
            (t["kind"], t["source"]) for t in listed if t["source"] == "selector"
        ]
        assert 6 == sum(1 for t in listed if t["source"] == "policy")
