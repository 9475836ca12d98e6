"""The generated IAM policy is complete and has nothing unused: proven by recording every call.

The workflows (backup twice, plan_retention + apply, verification reads, restore tests) run
against moto in-process for one target of every AWS kind, with an off-site tier in another
region. A botocore hook on the session records every API call with its parameters; each call's
IAM actions (`iam_actions`) must be in the document for that workflow, and every action of the
document must have been used, or be listed in `INTENTIONAL_EXTRAS` with its reason.

The hook is registered for ``before-parameter-build`` rather than ``before-call``: both fire once
per API call, but only the former sees the call's own parameters (``VersionId``, ``Tags``), which
decide the IAM action (``s3:DeleteObjectVersion`` versus ``s3:DeleteObject``).

The verification workflow has no runner yet (`backuppolicy.verify` holds the types): its calls are
what checks read, ``list_points``, ``refresh`` and ``settings``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from backuppolicy import workflows
from backuppolicy.aws.iam import INTENTIONAL_EXTRAS, WORKFLOWS, iam_actions, iam_policy, iam_table
from backuppolicy.exceptions import PolicyError
from backuppolicy.policy import Policy
from backuppolicy.targets import IsolationProfile

_PASSWORD = "password-for-moto"  # moto needs one


class _Recorder:
    def __init__(self) -> None:
        self.workflow = "setup"
        self.calls: dict[str, list[tuple[str, str, dict[str, Any]]]] = defaultdict(list)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.signing_name
        self.calls[self.workflow].append((service, model.name, dict(params)))

    def actions(self, workflow: str) -> set[str]:
        return {
            action
            for service, operation, params in self.calls[workflow]
            for action in iam_actions(service, operation, params)
        }


def _world(session: boto3.Session) -> dict[str, Any]:
    rds = session.client("rds")
    rds.create_db_instance(
        DBInstanceIdentifier="shop",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin",
        MasterUserPassword=_PASSWORD,
        AllocatedStorage=20,
    )
    rds.create_db_cluster(
        DBClusterIdentifier="orders",
        Engine="aurora-postgresql",
        MasterUsername="admin",
        MasterUserPassword=_PASSWORD,
    )
    ec2 = session.client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet)
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    s3 = session.client("s3")
    s3.create_bucket(Bucket="assets")
    s3.put_bucket_versioning(Bucket="assets", VersioningConfiguration={"Status": "Enabled"})
    for body in (b"one", b"two"):
        s3.put_object(Bucket="assets", Key="img/logo.png", Body=body)
    return {
        "name": "web",
        "schedule": {"every": "day", "at": "04:00"},
        "retention": {"max_age": "35d"},
        "tiers": [
            {"name": "local", "every": "day"},
            {"name": "offsite", "every": "day", "location": {"region": "eu-west-1"}},
        ],
        "targets": [
            {"name": "shop-db", "kind": "rds-instance", "settings": {"db_instance_id": "shop"}},
            {"name": "orders", "kind": "aurora-cluster", "settings": {"db_cluster_id": "orders"}},
            {
                "name": "web",
                "kind": "ec2-instance",
                "settings": {"instance_id": instance["Instances"][0]["InstanceId"]},
                "tiers": ["local"],
            },
            {"name": "data", "kind": "ebs-volume", "settings": {"volume_id": volume}},
            {
                "name": "assets",
                "kind": "s3-bucket",
                "settings": {"bucket": "assets", "prefix": "img/"},
                "tiers": ["local"],
            },
        ],
    }


@pytest.fixture(name="recorded", scope="module")
def _recorded() -> Iterator[tuple[Policy, _Recorder]]:
    """Run every workflow once against moto, recording each call (module scope: ~seconds)."""
    from moto import mock_aws

    recorder = _Recorder()
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        policy = Policy.from_dict(_world(session))
        session.events.register("before-parameter-build", recorder)
        targets = workflows.build_targets(policy, session=session, region="us-east-1")
        now = datetime.now(UTC)
        recorder.workflow = "backup"
        for day in (0, 2):
            report = workflows.backup(
                policy, now=now + timedelta(days=day), targets=targets, notifiers=[]
            )
            assert report.ok, report.summary()
        recorder.workflow = "prune"
        plan = workflows.plan_retention(policy, now=now + timedelta(days=40), targets=targets)
        applied = workflows.apply(plan)
        assert (applied.ok, {}) == (True, dict(plan.errors))
        assert applied.deleted, "the prune run must delete something to record deletes"
        recorder.workflow = "verify"
        newest = {}
        for name, target in targets.items():
            points = [
                p for p in target.list_points() if p.is_good and p.tier == "local" and p.managed
            ]
            newest[name] = max(points, key=lambda p: (p.created_at, p.id))
            target.refresh(newest[name])
            settings = getattr(target, "settings", None)
            if callable(settings):
                settings()
        recorder.workflow = "restore-test"
        for name, target in targets.items():
            list(target.list_points())  # the restore-test workflow picks a point first
            with target.restore(newest[name], IsolationProfile()):
                pass
        yield policy, recorder


class TestIamPolicyAgainstRecordedCalls:
    @pytest.mark.parametrize("workflow", WORKFLOWS)
    def test_every_call_is_allowed(self, recorded: tuple[Policy, _Recorder], workflow: str) -> None:
        """Every IAM action the workflow's calls need is in its document."""
        policy, recorder = recorded
        document = iam_policy(policy, {workflow})
        allowed = {action for s in document["Statement"] for action in s["Action"]}
        assert set() == recorder.actions(workflow) - allowed

    @pytest.mark.parametrize("workflow", WORKFLOWS)
    def test_nothing_unused(self, recorded: tuple[Policy, _Recorder], workflow: str) -> None:
        """Every action in the document was used by the workflow, or is an intentional extra."""
        policy, recorder = recorded
        document = iam_policy(policy, {workflow})
        allowed = {action for s in document["Statement"] for action in s["Action"]}
        assert set() == allowed - recorder.actions(workflow) - set(INTENTIONAL_EXTRAS)


_KMS_POLICY = {
    "name": "shop",
    "schedule": {"every": "day"},
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
            "name": "db",
            "kind": "rds-instance",
            "settings": {"db_instance_id": "shop", "region": "eu-west-2"},
        }
    ],
}


class TestIamPolicy:
    def test_deletes_scoped_by_tag(self) -> None:
        """Snapshot deletes are allowed only on snapshots tagged with the policy's name."""
        document = iam_policy(Policy.from_dict(_KMS_POLICY), {"prune"}, account_id="123456789012")
        delete = next(s for s in document["Statement"] if s["Action"] == ["rds:DeleteDBSnapshot"])
        assert {"StringEquals": {"aws:ResourceTag/backuppolicy:policy": "shop"}} == delete[
            "Condition"
        ]
        assert [
            "arn:aws:rds:eu-west-1:123456789012:snapshot:*",
            "arn:aws:rds:eu-west-2:123456789012:snapshot:*",
        ] == delete["Resource"]

    def test_kms_for_encrypted_copies(self) -> None:
        """A tier with a KMS key adds the key's grant permissions, for AWS resources only."""
        document = iam_policy(Policy.from_dict(_KMS_POLICY), {"backup"}, account_id="123456789012")
        kms = next(s for s in document["Statement"] if "kms:CreateGrant" in s["Action"])
        assert ["arn:aws:kms:eu-west-1:123456789012:alias/offsite"] == kms["Resource"]
        assert {"Bool": {"kms:GrantIsForAWSResource": "true"}} == kms["Condition"]
        assert set(kms["Action"]) <= set(INTENTIONAL_EXTRAS)

    def test_unknown_workflow(self) -> None:
        """An unknown workflow name is refused with the known ones."""
        with pytest.raises(PolicyError) as info:
            iam_policy(Policy.from_dict(_KMS_POLICY), {"backup", "restore"})
        assert "restore" == info.value.got

    def test_table_rows(self) -> None:
        """The reference table has one row per workflow and action, with the kinds needing it."""
        rows = iam_table(Policy.from_dict(_KMS_POLICY))
        prune = [(r["action"], r["kinds"]) for r in rows if r["workflow"] == "prune"]
        assert [
            ("rds:DeleteDBSnapshot", ["rds-instance"]),
            ("rds:DescribeDBSnapshots", ["rds-instance"]),
        ] == prune


class TestIamActions:
    @pytest.mark.parametrize(
        ("service", "operation", "params", "expected"),
        [
            (
                "s3",
                "HeadObject",
                {"Bucket": "b", "Key": "k", "VersionId": "v"},
                {"s3:GetObjectVersion"},
            ),
            ("s3", "ListObjectVersions", {"Bucket": "b"}, {"s3:ListBucketVersions"}),
            (
                "s3",
                "CopyObject",
                {"CopySource": {"Bucket": "b", "Key": "k", "VersionId": "v"}},
                {
                    "s3:PutObject",
                    "s3:GetObjectVersion",
                    "s3:GetObjectVersionTagging",
                    "s3:PutObjectTagging",
                },
            ),
            (
                "ec2",
                "CreateSnapshots",
                {"TagSpecifications": [{}]},
                {"ec2:CreateSnapshots", "ec2:CreateTags"},
            ),
            ("rds", "DeleteDBSnapshot", {}, {"rds:DeleteDBSnapshot"}),
        ],
    )
    def test_mapping(
        self, service: str, operation: str, params: dict[str, Any], expected: set[str]
    ) -> None:
        """API calls map to the IAM actions AWS documents for them."""
        assert expected == set(iam_actions(service, operation, params))


class TestSelectorTargets:
    def test_selector_and_account_targets_get_their_grants(self):
        """A selector target grants its kinds on any resource, tag:GetResources and sts:AssumeRole."""
        from backuppolicy.aws.iam import iam_policy
        from backuppolicy.policy import Policy

        role = "arn:aws:iam::210987654321:role/backups"
        policy = Policy.from_dict(
            {
                "name": "web",
                "schedule": {"every": "day", "at": "04:00"},
                "retention": {"max_age": "35d"},
                "targets": [
                    {
                        "name": "dbs",
                        "kind": "rds-instance",
                        "selector": {"tags": {"backup": "daily"}},
                        "regions": ["eu-west-2"],
                        "account": {"role_arn": role},
                        "application": "shop",
                    }
                ],
            }
        )
        doc = iam_policy(policy, actions={"backup", "prune"}, account_id="123456789012")
        grants = {
            action: statement["Resource"]
            for statement in doc["Statement"]
            for action in statement["Action"]
        }
        assert ["*"] == grants["tag:GetResources"]
        assert [role] == grants["sts:AssumeRole"]
        assert "arn:aws:rds:eu-west-2:123456789012:db:*" in grants["rds:CreateDBSnapshot"]
        assert "rds:DeleteDBSnapshot" in grants
