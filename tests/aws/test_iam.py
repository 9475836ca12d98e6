"""The generated IAM policy is complete and has nothing unused: proven by recording every call.

The workflows (backup twice, plan_retention + apply, verification reads, restore tests) run
against moto in-process for one target of every AWS kind, with an off-site tier in another
region. A botocore hook on the session records every API call with its parameters; each call's
IAM actions (`iam_actions`) must be in the document for that workflow, and every action of the
document must have been used, or be listed in `INTENTIONAL_EXTRAS` with its reason.

The hook is registered for ``before-parameter-build`` rather than ``before-call``: both fire once
per API call, but only the former sees the call's own parameters (``VersionId``, ``Tags``), which
decide the IAM action (``s3:DeleteObjectVersion`` versus ``s3:DeleteObject``).

The verification workflow has no runner yet (`backuppolicy.checks.verify` holds the types): its calls are
what checks read, ``list_points``, ``refresh`` and ``settings``.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from backuppolicy.aws.iam import (
    INTENTIONAL_EXTRAS,
    WORKFLOWS,
    hold_deny_policy,
    iam_actions,
    iam_policy,
    iam_table,
)
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.policy import Policy
from backuppolicy.core.targets import BackupTarget, IsolationProfile
from backuppolicy.workflows import backups as workflows
from backuppolicy.workflows import pruning

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


def _databases(session: boto3.Session, instance: str, cluster: str) -> None:
    """A PostgreSQL DB instance and an Aurora PostgreSQL cluster, by their identifiers."""
    rds = session.client("rds")
    rds.create_db_instance(
        DBInstanceIdentifier=instance,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin",
        MasterUserPassword=_PASSWORD,
        AllocatedStorage=20,
    )
    rds.create_db_cluster(
        DBClusterIdentifier=cluster,
        Engine="aurora-postgresql",
        MasterUsername="admin",
        MasterUserPassword=_PASSWORD,
    )


def _world(session: boto3.Session) -> dict[str, Any]:
    _databases(session, "shop", "orders")
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


def _allowed(policy: Policy, workflow: str) -> set[str]:
    """The actions of *policy*'s generated IAM document for *workflow*."""
    document = iam_policy(policy, {workflow})
    return {action for s in document["Statement"] for action in s["Action"]}


@contextlib.contextmanager
def _recording(
    world: Callable[[boto3.Session], dict[str, Any]], recorder: _Recorder
) -> Iterator[tuple[Policy, dict[str, BackupTarget]]]:
    """In moto, the policy of *world* and its targets, each call recorded by *recorder*."""
    from moto import mock_aws

    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        policy = Policy.from_dict(world(session))
        session.events.register("before-parameter-build", recorder)
        yield policy, workflows.build_targets(policy, session=session, region="us-east-1")


@pytest.fixture(name="recorded", scope="module")
def _recorded() -> Iterator[tuple[Policy, _Recorder]]:
    """Run every workflow once against moto, recording each call (module scope: ~seconds)."""
    recorder = _Recorder()
    with _recording(_world, recorder) as (policy, targets):
        now = datetime.now(UTC)
        recorder.workflow = "backup"
        for day in (0, 2):
            report = workflows.backup(
                policy, now=now + timedelta(days=day), targets=targets, notifiers=[]
            )
            assert report.ok, report.summary()
        recorder.workflow = "prune"
        plan = pruning.plan_retention(policy, now=now + timedelta(days=40), targets=targets)
        applied = pruning.apply(plan)
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


_RECORDED = ("backup", "prune", "verify", "restore-test")
"""The workflows the ``recorded`` fixture runs; ``holds`` and ``enforce`` have their own run."""


def _holds_world(session: boto3.Session) -> dict[str, Any]:
    """The kinds whose holds moto can run: RDS tags, S3 tags and Object Lock legal holds.

    moto 5.2 lacks ``LockSnapshot`` (NotImplementedError) and ``CreateLegalHold`` (404 "Not
    yet implemented"): the EBS/EC2 and AWS Backup hold grants are checked in
    `TestHoldGrantsMotoCannotRun` instead (their calls run under Stubber in
    tests/aws/test_locks_ebs.py and tests/aws/test_locks_backup_iam.py).
    """
    _databases(session, "held-shop", "held-orders")
    s3 = session.client("s3")
    s3.create_bucket(Bucket="ledger", ObjectLockEnabledForBucket=True)
    s3.put_object(Bucket="ledger", Key="books/2025.csv", Body=b"a,b")
    return {
        "name": "held",
        "schedule": {"every": "day", "at": "04:00"},
        "retention": {"max_age": "35d"},
        "targets": [
            {
                "name": "shop-db",
                "kind": "rds-instance",
                "settings": {"db_instance_id": "held-shop"},
            },
            {
                "name": "orders",
                "kind": "aurora-cluster",
                "settings": {"db_cluster_id": "held-orders"},
            },
            {
                "name": "ledger",
                "kind": "s3-bucket",
                "settings": {
                    "bucket": "ledger",
                    "prefix": "books/",
                    "encryption": "aws:kms",
                    "block_public_access": True,
                },
            },
        ],
    }


@pytest.fixture(name="recorded_holds", scope="module")
def _recorded_holds() -> Iterator[tuple[Policy, _Recorder]]:
    """Place and release a hold on the newest point of each target; enforce bucket settings."""
    from backuppolicy.workflows.holds import place_hold, release_hold
    from backuppolicy.workflows.verify import enforce_settings

    recorder = _Recorder()
    with _recording(_holds_world, recorder) as (policy, targets):
        report = workflows.backup(policy, now=datetime.now(UTC), targets=targets, notifiers=[])
        assert report.ok, report.summary()
        recorder.workflow = "holds"
        for target in targets.values():
            point = max(
                (p for p in target.list_points() if p.is_good and p.managed),
                key=lambda p: (p.created_at, p.id),
            )
            held = place_hold(policy, point, reason="litigation", targets=targets)
            assert held.held
            released = release_hold(policy, held, targets=targets)
            assert not released.held
        recorder.workflow = "enforce"
        changes = enforce_settings(policy, targets=targets, apply=True)
        assert {"encryption", "block_public_access"} <= {c.setting for c in changes}
        yield policy, recorder


class TestHoldsAndEnforceAgainstRecordedCalls:
    @pytest.mark.parametrize("workflow", ["holds", "enforce"])
    def test_every_call_is_allowed(
        self, recorded_holds: tuple[Policy, _Recorder], workflow: str
    ) -> None:
        """Every IAM action the workflow's calls need is in its document."""
        policy, recorder = recorded_holds
        allowed = _allowed(policy, workflow)
        assert recorder.actions(workflow)
        assert set() == recorder.actions(workflow) - allowed

    @pytest.mark.parametrize("workflow", ["holds", "enforce"])
    def test_nothing_unused(self, recorded_holds: tuple[Policy, _Recorder], workflow: str) -> None:
        """Every action in the document was used by the workflow, or is an intentional extra."""
        policy, recorder = recorded_holds
        allowed = _allowed(policy, workflow)
        assert set() == allowed - recorder.actions(workflow) - set(INTENTIONAL_EXTRAS)


class TestIamPolicyAgainstRecordedCalls:
    @pytest.mark.parametrize("workflow", _RECORDED)
    def test_every_call_is_allowed(self, recorded: tuple[Policy, _Recorder], workflow: str) -> None:
        """Every IAM action the workflow's calls need is in its document."""
        policy, recorder = recorded
        allowed = _allowed(policy, workflow)
        assert set() == recorder.actions(workflow) - allowed

    @pytest.mark.parametrize("workflow", _RECORDED)
    def test_nothing_unused(self, recorded: tuple[Policy, _Recorder], workflow: str) -> None:
        """Every action in the document was used by the workflow, or is an intentional extra."""
        policy, recorder = recorded
        allowed = _allowed(policy, workflow)
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
        """A tier with a KMS alias adds the key's permissions on the key the alias names."""
        document = iam_policy(Policy.from_dict(_KMS_POLICY), {"backup"}, account_id="123456789012")
        kms = [s for s in document["Statement"] if s["Action"][0].startswith("kms:")]
        assert {a for a in INTENTIONAL_EXTRAS if a.startswith("kms:")} == {
            a for s in kms for a in s["Action"]
        }
        for statement in kms:
            assert ["arn:aws:kms:eu-west-1:123456789012:key/*"] == statement["Resource"]
            assert {"kms:ResourceAliases": "alias/offsite"} == statement["Condition"][
                "ForAnyValue:StringEquals"
            ]

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


def _kms_statements(key: str, tier_region: str = "eu-west-1") -> list[dict[str, Any]]:
    policy = {
        **_KMS_POLICY,
        "tiers": [
            {"name": "local", "every": "day"},
            {
                "name": "offsite",
                "every": "week",
                "location": {"region": tier_region, "kms_key_id": key},
            },
        ],
    }
    document = iam_policy(Policy.from_dict(policy), account_id="123456789012")
    return [s for s in document["Statement"] if s["Action"][0].startswith("kms:")]


_KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
_USE = [
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
]


class TestKmsStatements:
    """IAM matches KMS actions on key ARNs: an alias ARN as Resource grants nothing.

    https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html
    ("Using aliases to control access to KMS keys"). ``kms:GrantIsForAWSResource`` exists only
    on CreateGrant, ListGrants and RevokeGrant; on other actions it is absent and never matches:
    https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-grant-is-for-aws-resource
    """

    def test_key_id_grants_on_the_key_arn(self) -> None:
        """A key id becomes the key's ARN in the tier's region; only CreateGrant is conditioned."""
        arn = f"arn:aws:kms:eu-west-1:123456789012:key/{_KEY_ID}"
        assert [
            {
                "Action": ["kms:CreateGrant"],
                "Resource": [arn],
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
            {"Action": _USE, "Resource": [arn]},
        ] == [
            {k: v for k, v in s.items() if k not in {"Sid", "Effect"}}
            for s in _kms_statements(_KEY_ID)
        ]

    def test_key_arn_is_kept(self) -> None:
        """A key ARN is the resource as given (its region and account, not the tier's)."""
        arn = f"arn:aws:kms:ap-south-1:210987654321:key/{_KEY_ID}"
        statements = _kms_statements(arn)
        assert [[arn], [arn]] == [s["Resource"] for s in statements]

    @pytest.mark.parametrize(
        ("key", "resource"),
        [
            ("alias/offsite", "arn:aws:kms:eu-west-1:123456789012:key/*"),
            (
                "arn:aws:kms:ca-central-1:210987654321:alias/offsite",
                "arn:aws:kms:ca-central-1:210987654321:key/*",
            ),
        ],
    )
    def test_alias_scopes_keys_by_resource_aliases(self, key: str, resource: str) -> None:
        """An alias (name or ARN) grants on the keys of its region that carry that alias."""
        aliased = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/offsite"}}
        assert [
            {
                "Action": ["kms:CreateGrant"],
                "Resource": [resource],
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}, **aliased},
            },
            {"Action": _USE, "Resource": [resource], "Condition": aliased},
        ] == [
            {k: v for k, v in s.items() if k not in {"Sid", "Effect"}} for s in _kms_statements(key)
        ]

    @pytest.mark.parametrize("key", ["alias/offsite", _KEY_ID])
    def test_grant_is_for_aws_resource_only_on_create_grant(self, key: str) -> None:
        """No statement puts ``kms:GrantIsForAWSResource`` on an action that lacks the key."""
        for statement in _kms_statements(key):
            keys = {k for op in statement.get("Condition", {}).values() for k in op}
            if "kms:GrantIsForAWSResource" in keys:
                assert ["kms:CreateGrant"] == statement["Action"]
            assert not any(":alias/" in r for r in statement["Resource"])

    def test_malformed_key_arn_is_refused(self) -> None:
        """An ARN that names no KMS key or alias is a PolicyError naming the field."""
        with pytest.raises(PolicyError) as info:
            _kms_statements("arn:aws:s3:::not-a-key")
        assert "kms_key_id" == info.value.path


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
        from backuppolicy.core.policy import Policy

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


# --------------------------------------------------------------------------------------------
# An IAM linter over the generated documents

KNOWN_PARLIAMENT_GAPS: dict[tuple[str, str, str], str] = {
    ("UNKNOWN_CONDITION_FOR_ACTION", action, "kms:ResourceAliases"): (
        "parliament's catalogue predates kms:ResourceAliases (2021), which AWS documents for "
        "every KMS key operation: https://docs.aws.amazon.com/kms/latest/developerguide/"
        "conditions-kms.html#conditions-kms-resource-aliases and "
        "https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html"
    )
    for action in (
        "kms:CreateGrant",
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
    )
}
"""Findings that are gaps in parliament's catalogue, not in our documents: (issue, action,
condition key or resource) -> the AWS documentation that shows the document is right."""

_UNKNOWN_CONDITION = re.compile(r"Unknown condition (\S+) for action (\S+)")

_EVERY_KIND = {
    "name": "everything",
    "schedule": {"every": "day", "at": "04:00"},
    "retention": {"max_age": "35d"},
    "tiers": [
        {"name": "local", "every": "day", "location": {"store": "/srv/backups"}},
        {
            "name": "offsite",
            "every": "week",
            "location": {
                "region": "eu-west-1",
                "kms_key_id": "alias/backups-offsite",
                "store": "s3://acme-offsite/web",
            },
        },
        {
            "name": "keyed",
            "every": "week",
            "location": {"region": "us-west-2", "kms_key_id": _KEY_ID},
        },
        {
            "name": "key-arn",
            "every": "month",
            "location": {
                "region": "ap-south-1",
                "kms_key_id": f"arn:aws:kms:ap-south-1:123456789012:key/{_KEY_ID}",
            },
        },
        {
            "name": "alias-arn",
            "every": "month",
            "location": {
                "region": "ca-central-1",
                "account": "210987654321",
                "kms_key_id": "arn:aws:kms:ca-central-1:210987654321:alias/vault-copies",
            },
        },
        {"name": "vaulted", "every": "month", "location": {"vault": "offsite-vault"}},
    ],
    "targets": [
        {"name": "db", "kind": "rds-instance", "settings": {"db_instance_id": "shop"}},
        {"name": "cluster", "kind": "aurora-cluster", "settings": {"db_cluster_id": "orders"}},
        {
            "name": "vm",
            "kind": "ec2-instance",
            "settings": {"instance_id": "i-0a1b2c3d4e5f60718", "no_reboot": True},
        },
        {"name": "disk", "kind": "ebs-volume", "settings": {"volume_id": "vol-0a1b2c3d4e5f6071"}},
        {
            "name": "assets",
            "kind": "s3-bucket",
            "settings": {
                "bucket": "acme-assets",
                "encryption": "aws:kms",
                "kms_key_id": "alias/assets",
                "block_public_access": True,
            },
        },
        {
            "name": "images",
            "kind": "s3-bucket",
            "settings": {"bucket": "acme-images", "prefix": "img/", "region": "us-east-1"},
        },
        {"name": "config", "kind": "directory", "settings": {"path": "/etc/shop"}},
        {
            "name": "table",
            "kind": "aws-backup",
            "settings": {
                "resource_arn": "arn:aws:dynamodb:eu-west-2:123456789012:table/orders",
                "vault": "Default",
            },
        },
        {
            "name": "carts",
            "kind": "aws-backup",
            "settings": {"resource_arn": "arn:aws:dynamodb:eu-west-2:123456789012:table/carts"},
        },
        {
            "name": "tagged",
            "kind": "selector",
            "selector": {"tags": {"backup": "daily"}},
            "regions": ["eu-west-2"],
            "account": {"role_arn": "arn:aws:iam::210987654321:role/backups"},
        },
    ],
}


_OFFSITE_ACCOUNT = {
    "name": "shop",
    "schedule": {"every": "day", "at": "04:00"},
    "retention": {"max_age": "35d"},
    "tiers": [
        {"name": "local", "every": "day"},
        {
            "name": "offsite",
            "every": "week",
            "account": {"role_arn": "arn:aws:iam::222222222222:role/backuppolicy-offsite"},
            "location": {
                "region": "eu-west-1",
                "kms_key_id": f"arn:aws:kms:eu-west-1:222222222222:key/{_KEY_ID}",
            },
        },
    ],
    "targets": [
        {"name": "db", "kind": "rds-instance", "settings": {"db_instance_id": "shop"}},
        {"name": "cluster", "kind": "aurora-cluster", "settings": {"db_cluster_id": "orders"}},
        {"name": "disk", "kind": "ebs-volume", "settings": {"volume_id": "vol-0a1b2c3d4e5f6071"}},
        {
            "name": "vm",
            "kind": "ec2-instance",
            "settings": {"instance_id": "i-0a1b2c3d4e5f60718"},
        },
    ],
}
"""Copy tiers in a backup account (222222222222): the two documents `export iam` writes."""

_OFFSITE_S3 = {
    **_OFFSITE_ACCOUNT,
    "tiers": [
        {"name": "local", "every": "day"},
        {
            "name": "offsite",
            "every": "week",
            "account": {"role_arn": "arn:aws:iam::222222222222:role/backuppolicy-offsite"},
            "location": {
                "region": "eu-west-1",
                "kms_key_id": f"arn:aws:kms:eu-west-1:222222222222:key/{_KEY_ID}",
                "store": "s3://shop-offsite/assets",
            },
        },
    ],
    "targets": [
        {"name": "assets", "kind": "s3-bucket", "settings": {"bucket": "shop-assets"}},
    ],
}
"""An S3 copy tier in a backup account: its store is a bucket of that account."""


_ENCRYPTED_DIRECTORY = {
    "name": "archives",
    "schedule": {"every": "day", "at": "04:00"},
    "retention": {"max_age": "35d"},
    "tiers": [
        {"name": "local", "every": "day", "location": {"store": "s3://acme-archives/config"}},
        {
            "name": "offsite",
            "every": "week",
            "lock": "governance",
            "location": {"store": "s3://acme-archives-offsite/config"},
        },
    ],
    "targets": [
        {
            "name": "config",
            "kind": "directory",
            "settings": {
                "path": "/etc/shop",
                "encryption": {
                    "key": "kms:alias/archives",
                    "previous_keys": [f"kms:arn:aws:kms:eu-west-2:123456789012:key/{_KEY_ID}"],
                },
            },
        }
    ],
}
"""A directory whose archives are KMS-encrypted, in S3 stores of its own account."""


def _parliament() -> Any:
    """parliament, imported with its import-time warnings silenced (not ours to fix).

    Its ``__init__`` imports ``pkg_resources`` (deprecated) and leaves two data files open
    (``ResourceWarning``); the suite turns warnings into errors.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import parliament
    return parliament


def _linted(document: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """parliament's findings at LOW or above: (issue, action, key, severity) per action."""
    parliament = _parliament()
    findings = []
    for finding in parliament.analyze_policy_string(json.dumps(document)).findings:
        parliament.enhance_finding(finding)
        if finding.severity in {"MUTE", "INFO"}:
            continue
        detail = finding.detail
        if isinstance(detail, str) and (match := _UNKNOWN_CONDITION.fullmatch(detail)):
            findings.append((finding.issue, match[2], match[1], finding.severity))
        elif isinstance(detail, list):  # RESOURCE_MISMATCH: one entry per action
            findings += [
                (finding.issue, d["action"], d["required_format"], finding.severity) for d in detail
            ]
        else:
            findings.append((finding.issue, "", repr(detail), finding.severity))
    return findings


def _documents() -> dict[str, dict[str, Any]]:
    example = Policy.from_file(Path(__file__).parents[2] / "examples" / "policy.yaml")
    every = Policy.from_dict(_EVERY_KIND)
    offsite = Policy.from_dict(_OFFSITE_ACCOUNT)
    s3_offsite = Policy.from_dict(_OFFSITE_S3)
    return {
        "example": iam_policy(example, account_id="123456789012"),
        "example-any-account": iam_policy(example),
        "every-kind": iam_policy(every, account_id="123456789012", region="eu-west-2"),
        **{
            f"every-kind-{workflow}": iam_policy(every, {workflow}, account_id="123456789012")
            for workflow in WORKFLOWS
        },
        "every-kind-locked": iam_policy(_locked(_EVERY_KIND), account_id="123456789012"),
        "every-kind-holds-enforce": iam_policy(
            every, {"holds", "enforce"}, account_id="123456789012", region="eu-west-2"
        ),
        "encrypted-directory": iam_policy(
            Policy.from_dict(_ENCRYPTED_DIRECTORY), account_id="123456789012", region="eu-west-2"
        ),
        "holds-deny": hold_deny_policy(account_id="123456789012"),
        "holds-deny-with-release": hold_deny_policy(
            release_role_arns=["arn:aws:iam::123456789012:role/legal"]
        ),
        "offsite-account-production": iam_policy(offsite, account_id="123456789012"),
        "offsite-account-backup": iam_policy(offsite, account_id="123456789012", side="backup"),
        "offsite-s3-production": iam_policy(s3_offsite, account_id="123456789012"),
        "offsite-s3-backup": iam_policy(s3_offsite, account_id="123456789012", side="backup"),
        "seed-offsite-account-production": iam_policy(_seed_offsite(), account_id="123456789012"),
        "seed-offsite-account-backup": iam_policy(
            _seed_offsite(), account_id="123456789012", side="backup"
        ),
    }


def _seed_offsite() -> Policy:
    """The seed policy with its weekly off-site tier in a backup account, compliance-locked."""
    data = Policy.from_file(Path(__file__).parents[2] / "examples" / "policy.yaml").to_dict()
    for tier in data["tiers"]:
        if tier["name"] == "offsite":
            tier["account"] = {"role_arn": "arn:aws:iam::222222222222:role/backuppolicy-offsite"}
            tier["location"] = {
                "region": "eu-west-1",
                "kms_key_id": f"arn:aws:kms:eu-west-1:222222222222:key/{_KEY_ID}",
                "store": "s3://acme-backups-offsite/web-apps",
            }
            tier["lock"] = "compliance"
    return Policy.from_dict(data)


def _locked(data: dict[str, Any]) -> Policy:
    """*data* with every tier locked: the first in governance mode, the others in compliance."""
    tiers = [
        {**tier, "lock": "governance" if i == 0 else "compliance"}
        for i, tier in enumerate(data["tiers"])
    ]
    return Policy.from_dict({**data, "tiers": tiers})


class TestIamLinter:
    """parliament (an IAM linter) finds nothing at LOW or above in the generated documents.

    Its default auditors run (as its CLI does without ``--include-community-auditors``). Its
    catalogue is older than AWS's: each gap is listed in `KNOWN_PARLIAMENT_GAPS` with the AWS
    documentation it relies on, matched on issue, action and condition key.
    """

    @pytest.mark.parametrize("name", sorted(_documents()))
    def test_no_findings(self, name: str) -> None:
        """No finding outside the known gaps of parliament's catalogue."""
        unexpected = [f for f in _linted(_documents()[name]) if f[:3] not in KNOWN_PARLIAMENT_GAPS]
        assert [] == unexpected

    def test_every_known_gap_is_still_needed(self) -> None:
        """Each listed gap is hit by some document: a gap parliament has closed is removed."""
        seen = {f[:3] for document in _documents().values() for f in _linted(document)}
        assert set() == set(KNOWN_PARLIAMENT_GAPS) - seen


class TestPruneReadsTheVersionsItDeletes:
    def test_prune_may_head_the_data_objects_of_an_s3_target(self) -> None:
        """Pruning re-reads each version and its key's current version (HeadObject) before deleting.

        HeadObject needs s3:GetObject (current) and s3:GetObjectVersion (a version) on the data
        objects themselves, not only on the internal prefix; else S3 answers 403 and nothing is
        pruned.
        """
        policy = Policy.from_dict(
            {
                "name": "shop",
                "schedule": {"every": "day"},
                "retention": {"max_age": "35d"},
                "targets": [
                    {
                        "name": "images",
                        "kind": "s3-bucket",
                        "settings": {"bucket": "acme-images", "prefix": "img/"},
                    }
                ],
            }
        )
        document = iam_policy(policy, {"prune"}, account_id="123456789012")
        granted: dict[str, set[str]] = defaultdict(set)
        for statement in document["Statement"]:
            resources = statement["Resource"]
            for action in statement["Action"]:
                granted[action].update([resources] if isinstance(resources, str) else resources)

        data = "arn:aws:s3:::acme-images/img/*"
        assert {data} <= granted["s3:GetObject"]
        assert {data} <= granted["s3:GetObjectVersion"]


class TestSeedOffsiteAccount:
    def test_production_grants_nothing_on_the_backup_accounts_store(self) -> None:
        """The seed's directories copy through the role: production never names the store."""
        production = json.dumps(iam_policy(_seed_offsite(), account_id="123456789012"))
        assert "acme-backups-offsite" not in production
        assert "arn:aws:iam::222222222222:role/backuppolicy-offsite" in production

    def test_backup_account_deletes_archives_only_in_its_store(self) -> None:
        """The backup account's directory grants: deletes and locks only under the tier's store."""
        document = iam_policy(_seed_offsite(), account_id="123456789012", side="backup")
        for action in ("s3:DeleteObject", "s3:PutObjectRetention"):
            resources = {
                r for st in document["Statement"] if action in st["Action"] for r in st["Resource"]
            }
            assert {"arn:aws:s3:::acme-backups-offsite/web-apps*"} == resources


class TestS3OffsiteAccount:
    def test_production_grants_nothing_on_the_backup_accounts_store(self) -> None:
        """Production reads its own bucket and assumes the role; the store is the backup's alone."""
        policy = Policy.from_dict(_OFFSITE_S3)
        production = json.dumps(iam_policy(policy, account_id="123456789012"))
        assert "shop-offsite" not in production
        assert "arn:aws:iam::222222222222:role/backuppolicy-offsite" in production

    def test_backup_account_prunes_only_in_its_store(self) -> None:
        """The backup account deletes versions in the tier's store, writes with the tier's key."""
        policy = Policy.from_dict(_OFFSITE_S3)
        document = iam_policy(policy, account_id="123456789012", side="backup")
        deletes = [
            r
            for st in document["Statement"]
            if "s3:DeleteObjectVersion" in st["Action"]
            for r in st["Resource"]
        ]
        assert deletes
        assert all(r.startswith("arn:aws:s3:::shop-offsite/assets") for r in deletes)
        key = f"arn:aws:kms:eu-west-1:222222222222:key/{_KEY_ID}"
        writers = [st for st in document["Statement"] if "kms:GenerateDataKey" in st["Action"]]
        assert [[key]] == [st["Resource"] for st in writers]
        assert "shop-assets" not in json.dumps(document)


class TestHoldGrantsMotoCannotRun:
    """EBS/EC2 and AWS Backup holds: moto 5.2 lacks LockSnapshot and CreateLegalHold.

    Their calls run under Stubber in tests/aws/test_locks_ebs.py and test_locks_backup_iam.py;
    here, the grants those calls need are in the ``holds`` document, scoped.
    """

    def _grants(self) -> dict[str, list[dict[str, Any]]]:
        document = iam_policy(
            Policy.from_dict(_EVERY_KIND), {"holds"}, account_id="123456789012", region="eu-west-2"
        )
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for statement in document["Statement"]:
            for action in statement["Action"]:
                out[action].append(statement)
        return out

    def test_snapshot_locks_only_on_held_snapshots(self) -> None:
        """Lock and unlock only snapshots that carry the hold tag; tag only hold and lock tags."""
        grants = self._grants()
        for action in ("ec2:LockSnapshot", "ec2:UnlockSnapshot"):
            assert [{"Null": {"aws:ResourceTag/backuppolicy:legal-hold": "false"}}] == [
                st["Condition"] for st in grants[action]
            ]
        for action in ("ec2:CreateTags", "ec2:DeleteTags"):
            assert [
                {
                    "ForAllValues:StringEquals": {
                        "aws:TagKeys": ["backuppolicy:legal-hold", "backuppolicy:lock"]
                    }
                }
            ] == [st["Condition"] for st in grants[action]]
        assert ["*"] == grants["ec2:DescribeLockedSnapshots"][0]["Resource"]

    def test_aws_backup_legal_holds(self) -> None:
        """Create (with the hold tag) and cancel legal holds of this account; list them."""
        grants = self._grants()
        (create,) = grants["backup:CreateLegalHold"]
        assert ["arn:aws:backup:eu-west-2:123456789012:legal-hold:*"] == create["Resource"]
        assert {"Null": {"aws:RequestTag/backuppolicy:legal-hold": "false"}} == create["Condition"]
        assert "backup:CancelLegalHold" in grants
        assert ["*"] == grants["backup:ListLegalHolds"][0]["Resource"]

    def test_rds_tags_only_the_hold_tag(self) -> None:
        """RDS holds may add or remove the hold tag and no other (no taking snapshots over)."""
        grants = self._grants()
        for action in ("rds:AddTagsToResource", "rds:RemoveTagsFromResource"):
            assert [
                {"ForAllValues:StringEquals": {"aws:TagKeys": ["backuppolicy:legal-hold"]}}
            ] == [st["Condition"] for st in grants[action]]


class TestEncryptedDirectory:
    def _document(self, workflow: str) -> dict[str, Any]:
        policy = Policy.from_dict(_ENCRYPTED_DIRECTORY)
        return iam_policy(policy, {workflow}, account_id="123456789012", region="eu-west-2")

    def test_backup_generates_data_keys_with_the_current_key_only(self) -> None:
        """GenerateDataKey on the alias's keys (kms:ResourceAliases); no Decrypt for backups."""
        statements = self._document("backup")["Statement"]
        (generate,) = [s for s in statements if "kms:GenerateDataKey" in s["Action"]]
        assert ["arn:aws:kms:eu-west-2:123456789012:key/*"] == generate["Resource"]
        assert {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/archives"}} == generate[
            "Condition"
        ]
        assert not [s for s in statements if "kms:Decrypt" in s["Action"]]

    @pytest.mark.parametrize("workflow", ["verify", "restore-test"])
    def test_checks_and_restores_decrypt_with_current_and_previous_keys(
        self, workflow: str
    ) -> None:
        """Decrypt on the current key (by alias) and on the previous key's ARN."""
        decrypt = [s for s in self._document(workflow)["Statement"] if "kms:Decrypt" in s["Action"]]
        resources = sorted(r for s in decrypt for r in s["Resource"])
        assert [
            "arn:aws:kms:eu-west-2:123456789012:key/*",
            f"arn:aws:kms:eu-west-2:123456789012:key/{_KEY_ID}",
        ] == resources

    def test_own_s3_stores_are_granted_under_their_prefix(self) -> None:
        """Writes and deletes only under each store's prefix; retention only on the locked one."""
        backup = self._document("backup")["Statement"]
        puts = {r for s in backup if "s3:PutObject" in s["Action"] for r in s["Resource"]}
        assert {
            "arn:aws:s3:::acme-archives/config*",
            "arn:aws:s3:::acme-archives-offsite/config*",
        } == puts
        retention = {
            r for s in backup if "s3:PutObjectRetention" in s["Action"] for r in s["Resource"]
        }
        assert {"arn:aws:s3:::acme-archives-offsite/config*"} == retention
        prune = self._document("prune")["Statement"]
        deletes = {r for s in prune if "s3:DeleteObject" in s["Action"] for r in s["Resource"]}
        assert puts == deletes
