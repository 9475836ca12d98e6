"""Off-site tiers in another account: the policy field, copies across accounts, and the blast radius.

moto (in-process) keeps one set of resources per account, and credentials from STS
``AssumeRole`` act as the account of the role's ARN, so the production account (moto's default,
123456789012) and the backup account (222222222222) are really apart: a snapshot of one is not
seen, refreshed or deleted with the credentials of the other. moto does not enforce IAM denies,
so "production cannot delete the off-site copy" is proven by that isolation.

moto lacks cross-account copies: ``CopyDBSnapshot`` and EBS ``CopySnapshot`` look the source up
in the *caller's* account (moto/rds/models.py ``get_snapshot``, ec2 ``copy_snapshot``), so the
copy call made with the backup account's credentials is answered by `botocore.stub.Stubber`;
sharing and unsharing (``ModifyDBSnapshotAttribute``) run against moto. The restore test seeds
its copy with the backup account's own credentials, for the same reason.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws._ec2_base import (
    KIND_INSTANCE_BACKUP,
    TAG_GROUP,
    TAG_GROUP_SIZE,
    TAG_SOURCE_SNAPSHOT,
)
from backuppolicy.aws._offsite import OffsiteAccount
from backuppolicy.aws.ec2 import EbsVolume, Ec2Instance
from backuppolicy.aws.iam import iam_policy
from backuppolicy.aws.rds import RdsInstance
from backuppolicy.cli.main import main
from backuppolicy.core.exceptions import BackendError, PolicyError
from backuppolicy.core.model import TAG_POLICY, TAG_TARGET, TAG_TIER, RecoveryPoint
from backuppolicy.core.policy import Policy
from backuppolicy.core.specs import AccountSpec, TierSpec
from backuppolicy.core.targets import Destination
from backuppolicy.workflows import apply, build_targets, plan_retention
from tests.aws.accounts import BACKUP, PROD, REGION, ROLE, backup_session


def _no_sleep(_seconds: float) -> None:
    """Retries and polls never wait in tests."""


FAST = RetryPolicy(sleep=_no_sleep)


def _key(account: str = BACKUP, region: str = REGION) -> str:
    return f"arn:aws:kms:{region}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _policy_yaml(tmp_path: Any, tier: str) -> Any:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "name: shop\n"
        "schedule: {every: day, at: '04:00'}\n"
        "retention: {max_age: 35d}\n"
        "tiers:\n"
        "  - {name: local, every: day}\n" + tier + "targets:\n"
        "  - name: orders-db\n"
        "    kind: rds-instance\n"
        "    settings: {db_instance_id: orders-db, region: us-east-1}\n"
    )
    return path


# --------------------------------------------------------------------------- the policy field


class TestTierAccount:
    def test_seed_weekly_offsite_in_another_account_from_yaml(self, tmp_path: Any) -> None:
        """The seed's weekly off-site tier lives in the backup account, from the policy file alone."""
        path = _policy_yaml(
            tmp_path,
            "  - name: offsite\n"
            "    every: week\n"
            f"    account: {{role_arn: '{ROLE}', external_id: backups-7}}\n"
            f"    location: {{region: eu-west-1, kms_key_id: '{_key(region='eu-west-1')}'}}\n",
        )
        policy = Policy.from_file(path)
        offsite = policy.tier("offsite")
        assert BACKUP == offsite.account_id
        assert AccountSpec(ROLE, external_id="backups-7") == offsite.account
        assert offsite == TierSpec.from_dict(offsite.to_dict())
        assert offsite.describe().endswith(
            f"in account {BACKUP} (role backuppolicy-offsite, with an external ID)"
        )

    @pytest.mark.parametrize(
        ("location", "field"),
        [
            ({"kms_key_id": _key()}, "tiers[1].location.region"),
            ({"region": REGION}, "tiers[1].location.kms_key_id"),
            ({"region": REGION, "kms_key_id": "alias/backups"}, "tiers[1].location.kms_key_id"),
            ({"region": REGION, "kms_key_id": _key(PROD)}, "tiers[1].location.kms_key_id"),
            (
                {"region": REGION, "kms_key_id": _key(region="eu-west-1")},
                "tiers[1].location.kms_key_id",
            ),
            (
                {"region": REGION, "kms_key_id": _key(), "account": PROD},
                "tiers[1].location.account",
            ),
        ],
    )
    def test_location_checked_against_the_account(
        self, location: dict[str, str], field: str
    ) -> None:
        """A tier in another account needs its region and a key ARN of that account and region."""
        data = {
            "name": "shop",
            "schedule": {"every": "day"},
            "retention": {"max_age": "35d"},
            "tiers": [
                {"name": "local", "every": "day"},
                {"name": "offsite", "every": "week", "account": ROLE, "location": location},
            ],
        }
        with pytest.raises(PolicyError) as info:
            Policy.from_dict(data)
        assert field == info.value.path

    def test_role_arn_checked(self) -> None:
        """A malformed role ARN names the tier's account field."""
        with pytest.raises(PolicyError) as info:
            TierSpec.from_dict(
                {"name": "offsite", "every": "week", "account": {"role_arn": "arn:aws:iam::1:x"}},
                path="tiers[1]",
            )
        assert "tiers[1].account.role_arn" == info.value.path


# --------------------------------------------------------------------------- moto


@pytest.fixture(name="prod")
def _prod(aws: None) -> boto3.Session:
    """The production account's session (moto's default account)."""
    return boto3.Session(region_name=REGION)


@pytest.fixture(name="backup")
def _backup(prod: boto3.Session) -> boto3.Session:
    """The backup account, as its own credentials see it."""
    return backup_session(prod)


@pytest.fixture(name="backup_key")
def _backup_key(backup: boto3.Session) -> str:
    return str(backup.client("kms").create_key()["KeyMetadata"]["Arn"])


@pytest.fixture(name="account")
def _account(backup_key: str) -> OffsiteAccount:
    return OffsiteAccount("offsite", AccountSpec(ROLE), REGION, backup_key)


def _database(session: boto3.Session, key: str | None = None) -> None:
    params: dict[str, Any] = {}
    if key:
        params = {"StorageEncrypted": True, "KmsKeyId": key}
    session.client("rds").create_db_instance(
        DBInstanceIdentifier="orders-db",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin",
        MasterUserPassword="password1",
        AllocatedStorage=20,
        **params,
    )


@pytest.fixture(name="db")
def _db(prod: boto3.Session, account: OffsiteAccount) -> RdsInstance:
    prod_key = prod.client("kms").create_key()["KeyMetadata"]["Arn"]
    _database(prod, prod_key)
    return RdsInstance(
        "orders-db", policy="shop", session=prod, region=REGION, retry=FAST, sleep=_no_sleep
    ).with_offsite([account])


@pytest.fixture(name="point")
def _point(db: RdsInstance) -> RecoveryPoint:
    return db.create_backup(token="2026-11-26")


def _restore_attribute(session: boto3.Session, snapshot_id: str) -> list[str]:
    result = session.client("rds").describe_db_snapshot_attributes(DBSnapshotIdentifier=snapshot_id)
    return [
        str(v)
        for a in result["DBSnapshotAttributesResult"]["DBSnapshotAttributes"]
        if a["AttributeName"] == "restore"
        for v in a["AttributeValues"]
    ]


def _copy_response(point: RecoveryPoint, key: str) -> dict[str, Any]:
    copy_id = f"{point.id}-offsite"
    return {
        "DBSnapshot": {
            "DBSnapshotIdentifier": copy_id,
            "DBInstanceIdentifier": "orders-db",
            "DBSnapshotArn": f"arn:aws:rds:{REGION}:{BACKUP}:snapshot:{copy_id}",
            "SnapshotCreateTime": datetime(2026, 11, 26, 4, 5, tzinfo=UTC),
            "OriginalSnapshotCreateTime": point.created_at,
            "Status": "copying",
            "Encrypted": True,
            "KmsKeyId": key,
            "SnapshotType": "manual",
            "TagList": [
                {"Key": TAG_POLICY, "Value": "shop"},
                {"Key": TAG_TARGET, "Value": "orders-db"},
                {"Key": TAG_TIER, "Value": "offsite"},
            ],
        }
    }


def _stub_backup_rds(db: RdsInstance, account: OffsiteAccount) -> Stubber:
    """Stub the backup account's RDS client (moto cannot copy a snapshot across accounts)."""
    client = db.offsite_backend(account).client("rds", region=REGION)
    return Stubber(client)


class TestCopyAcrossAccounts:
    def test_copy_shares_copies_with_backup_key_and_unshares(
        self, db: RdsInstance, point: RecoveryPoint, account: OffsiteAccount, prod: boto3.Session
    ) -> None:
        """The copy is made by the backup account with its key, tagged ours; the share is gone after."""
        seen: list[list[str]] = []
        stubber = _stub_backup_rds(db, account)
        stubber.add_client_error(
            "describe_db_snapshots", "DBSnapshotNotFound", http_status_code=404
        )

        def shared_now(**_: Any) -> None:
            seen.append(_restore_attribute(prod, point.id))

        expected = {
            "SourceDBSnapshotIdentifier": point.details["arn"],
            "TargetDBSnapshotIdentifier": f"{point.id}-offsite",
            "KmsKeyId": account.kms_key_id,
            "Tags": ANY,
        }
        stubber.add_response(
            "copy_db_snapshot", _copy_response(point, account.kms_key_id), expected
        )
        client = db.offsite_backend(account).client("rds", region=REGION)
        client.meta.events.register("before-parameter-build.rds.CopyDBSnapshot", shared_now)
        with stubber:
            copy = db.copy(point, Destination(tier="offsite", region=REGION, account=BACKUP))
            stubber.assert_no_pending_responses()
        assert [[BACKUP]] == seen  # shared while the backup account copied
        assert [] == _restore_attribute(prod, point.id)  # and not after
        assert f"aws:{BACKUP}:{REGION}" == copy.location
        assert ("offsite", True) == (copy.tier, copy.managed)

    def test_share_removed_when_the_copy_fails(
        self, db: RdsInstance, point: RecoveryPoint, account: OffsiteAccount, prod: boto3.Session
    ) -> None:
        """A failed copy in the backup account still removes the share, and the error is raised."""
        stubber = _stub_backup_rds(db, account)
        stubber.add_client_error(
            "describe_db_snapshots", "DBSnapshotNotFound", http_status_code=404
        )
        stubber.add_client_error(
            "copy_db_snapshot", "KMSKeyNotAccessibleFault", "key policy refuses", 400
        )
        with stubber, pytest.raises(BackendError) as info:
            db.copy(point, Destination(tier="offsite", region=REGION, account=BACKUP))
        assert "KMSKeyNotAccessibleFault" == info.value.code
        assert [] == _restore_attribute(prod, point.id)

    def test_unknown_account_refused_before_any_share(
        self, db: RdsInstance, point: RecoveryPoint, prod: boto3.Session
    ) -> None:
        """A destination account that no tier reaches by role is refused; nothing is shared."""
        with pytest.raises(PolicyError) as info:
            db.copy(point, Destination(tier="offsite", region=REGION, account="333333333333"))
        assert "destination.account" == info.value.path
        assert [] == _restore_attribute(prod, point.id)

    def test_default_key_refused_before_any_share(
        self, prod: boto3.Session, account: OffsiteAccount
    ) -> None:
        """A snapshot under an AWS managed key cannot be shared: refused, nothing shared."""
        _database(prod)
        db = RdsInstance("orders-db", policy="shop", session=prod, retry=FAST)
        db.with_offsite([account])
        point = db.create_backup(token="t1")
        managed = point.evolve(
            encrypted=True, details={**point.details, "kms_key_id": "alias/aws/rds"}
        )
        kms = db.client("kms")
        stubber = Stubber(kms)  # moto has no AWS managed keys to describe
        stubber.add_response(
            "describe_key",
            {"KeyMetadata": {"KeyId": "k", "KeyManager": "AWS"}},
            {"KeyId": "alias/aws/rds"},
        )
        with stubber, pytest.raises(PolicyError) as info:
            db.copy(managed, Destination(tier="offsite", region=REGION, account=BACKUP))
        assert "point.kms_key_id" == info.value.path
        assert [] == _restore_attribute(prod, point.id)


# --------------------------------------------------------------------------- the blast radius


@pytest.fixture(name="copy")
def _copy(backup: boto3.Session, backup_key: str, db: RdsInstance) -> RecoveryPoint:
    """An off-site copy in the backup account (seeded there: moto cannot copy across accounts)."""
    _database(backup, backup_key)
    backup.client("rds").create_db_snapshot(
        DBInstanceIdentifier="orders-db",
        DBSnapshotIdentifier="bp-orders-db-2026-11-26-offsite",
        Tags=[
            {"Key": TAG_POLICY, "Value": "shop"},
            {"Key": TAG_TARGET, "Value": "orders-db"},
            {"Key": TAG_TIER, "Value": "offsite"},
        ],
    )
    backup.client("rds").delete_db_instance(
        DBInstanceIdentifier="orders-db", SkipFinalSnapshot=True
    )
    points = [p for p in db.list_points() if p.tier == "offsite"]
    assert 1 == len(points)
    return points[0]


class TestBlastRadius:
    def test_listing_merges_the_backup_account(self, copy: RecoveryPoint) -> None:
        """The copy is a managed point of its tier, located in the backup account."""
        assert f"aws:{BACKUP}:{REGION}" == copy.location
        assert copy.managed

    def test_production_credentials_cannot_delete_the_copy(
        self, copy: RecoveryPoint, prod: boto3.Session
    ) -> None:
        """With production's credentials the copy is not even visible, and deleting it fails."""
        rds = prod.client("rds")
        with pytest.raises(rds.exceptions.DBSnapshotNotFoundFault):
            rds.describe_db_snapshots(DBSnapshotIdentifier=copy.id)
        with pytest.raises(rds.exceptions.DBSnapshotNotFoundFault):
            rds.delete_db_snapshot(DBSnapshotIdentifier=copy.id)
        plain = RdsInstance("orders-db", policy="shop", session=prod, retry=FAST)
        with pytest.raises(BackendError):
            plain.delete(copy)  # production's own target: not found, nothing deleted
        assert [] == [p.id for p in plain.list_points() if p.id == copy.id]

    def test_prune_deletes_with_the_backup_accounts_credentials(
        self, db: RdsInstance, copy: RecoveryPoint, backup: boto3.Session
    ) -> None:
        """Deleting the off-site point goes to the backup account, which then no longer has it."""
        db.delete(copy)
        found = backup.client("rds").describe_db_snapshots(DBInstanceIdentifier="orders-db")
        assert [] == found["DBSnapshots"]

    def test_run_inside_the_backup_account_uses_its_own_credentials(
        self, copy: RecoveryPoint, backup: boto3.Session, account: OffsiteAccount
    ) -> None:
        """A prune run in the backup account deletes with its own credentials, assuming no role."""
        assumed: list[object] = []
        backup.events.register(
            "before-parameter-build.sts.AssumeRole", lambda params, **_: assumed.append(params)
        )
        db = RdsInstance("orders-db", policy="shop", session=backup, region=REGION, retry=FAST)
        db.with_offsite([account]).delete(copy)
        assert [] == assumed
        found = backup.client("rds").describe_db_snapshots(DBInstanceIdentifier="orders-db")
        assert [] == found["DBSnapshots"]

    def test_restore_from_the_cross_account_copy(
        self, db: RdsInstance, copy: RecoveryPoint, backup: boto3.Session, prod: boto3.Session
    ) -> None:
        """A restore test of the off-site copy restores it in the backup account and tears it down."""
        with db.restore(copy) as restored:
            made = backup.client("rds").describe_db_instances()["DBInstances"]
            assert [restored.id] == [d["DBInstanceIdentifier"] for d in made]
            in_prod = prod.client("rds").describe_db_instances()["DBInstances"]
            assert ["orders-db"] == [d["DBInstanceIdentifier"] for d in in_prod]
        left = backup.client("rds").describe_db_instances()["DBInstances"]
        assert [] == [d["DBInstanceIdentifier"] for d in left]


# --------------------------------------------------------------------------- IAM


def _offsite_policy() -> Policy:
    return Policy.from_dict(
        {
            "name": "shop",
            "schedule": {"every": "day"},
            "retention": {"max_age": "35d"},
            "tiers": [
                {"name": "local", "every": "day"},
                {
                    "name": "offsite",
                    "every": "week",
                    "account": ROLE,
                    "location": {"region": "eu-west-1", "kms_key_id": _key(region="eu-west-1")},
                },
            ],
            "targets": [
                {
                    "name": "orders-db",
                    "kind": "rds-instance",
                    "settings": {"db_instance_id": "orders-db", "region": REGION},
                }
            ],
        }
    )


def _resources(document: dict[str, Any]) -> list[str]:
    return [r for s in document["Statement"] for r in s["Resource"]]


class TestIamAcrossAccounts:
    def test_production_grants_nothing_in_the_backup_account(self) -> None:
        """Production may share its snapshots and assume the tier's role, and nothing of the copies."""
        document = iam_policy(_offsite_policy(), account_id=PROD)
        in_backup = [r for r in _resources(document) if f":{BACKUP}:" in r]
        assert [ROLE] == in_backup
        actions = {a for s in document["Statement"] for a in s["Action"]}
        assert {"rds:ModifyDBSnapshotAttribute", "sts:AssumeRole"} <= actions
        assert "rds:CopyDBSnapshot" not in actions  # the copy is the backup account's act
        assert all("eu-west-1" not in r for r in _resources(document))

    def test_backup_account_document(self) -> None:
        """The backup account copies in with its key, tags, lists and prunes only its own copies."""
        document = iam_policy(_offsite_policy(), account_id=PROD, side="backup")
        by_action = {a: s for s in document["Statement"] for a in s["Action"]}
        assert [
            f"arn:aws:rds:*:{PROD}:snapshot:*",
            f"arn:aws:rds:eu-west-1:{BACKUP}:snapshot:*",
        ] == by_action["rds:CopyDBSnapshot"]["Resource"]
        assert [f"arn:aws:rds:eu-west-1:{BACKUP}:snapshot:*"] == by_action["rds:DeleteDBSnapshot"][
            "Resource"
        ]
        assert {"StringEquals": {"aws:ResourceTag/backuppolicy:policy": "shop"}} == by_action[
            "rds:DeleteDBSnapshot"
        ]["Condition"]
        assert [_key(region="eu-west-1")] == by_action["kms:ReEncryptTo"]["Resource"]
        assert "rds:CreateDBSnapshot" not in by_action  # nothing of production's own backups

    def test_export_writes_both(self, tmp_path: Any) -> None:
        """``export iam --account backup`` writes the backup account's document."""
        path = tmp_path / "policy.yaml"
        path.write_text(json.dumps(_offsite_policy().to_dict()))  # JSON is YAML
        out: list[str] = []
        for side in ("production", "backup"):
            buffer, err = io.StringIO(), io.StringIO()
            code = main(
                ["export", "iam", "--policy", str(path), "--account", side], out=buffer, err=err
            )
            assert (0, "") == (code, err.getvalue())
            out.append(buffer.getvalue())
        production, backup = (json.loads(text) for text in out)
        assert production == iam_policy(_offsite_policy())
        assert backup == iam_policy(_offsite_policy(), side="backup")


# --------------------------------------------------------------------------- the workflows


def _seed_copy(backup: boto3.Session, name: str) -> None:
    """A copy in the backup account, made with its own credentials (moto cannot copy across)."""
    rds = backup.client("rds")
    rds.create_db_snapshot(
        DBInstanceIdentifier="orders-db",
        DBSnapshotIdentifier=name,
        Tags=[
            {"Key": TAG_POLICY, "Value": "shop"},
            {"Key": TAG_TARGET, "Value": "orders-db"},
            {"Key": TAG_TIER, "Value": "offsite"},
        ],
    )


class TestWorkflows:
    def test_from_spec_routes_the_tier_to_its_account(
        self, prod: boto3.Session, backup_key: str
    ) -> None:
        """Built from the policy, the target copies to, lists and prunes the tier's account."""
        policy = _offsite_policy_with(backup_key)
        targets = build_targets(policy, session=prod)
        db = targets["orders-db"]
        assert isinstance(db, RdsInstance)
        assert (OffsiteAccount("offsite", AccountSpec(ROLE), REGION, backup_key),) == db.offsite
        assert () == db.copy_regions  # the backup account's region is not listed in production

    def test_prune_plans_and_deletes_offsite_copies(
        self, db: RdsInstance, backup: boto3.Session, backup_key: str, prod: boto3.Session
    ) -> None:
        """plan_retention sees the copies as points of their tier; apply deletes in that account."""
        _database(backup, backup_key)
        _seed_copy(backup, "bp-orders-db-a-offsite")
        _seed_copy(backup, "bp-orders-db-b-offsite")
        backup.client("rds").delete_db_instance(
            DBInstanceIdentifier="orders-db", SkipFinalSnapshot=True
        )
        policy = _offsite_policy_with(backup_key)
        targets = build_targets(policy, session=prod)
        listed = [p for p in targets["orders-db"].list_points() if p.tier == "offsite"]
        assert 2 == len(listed)
        now = max(p.created_at for p in listed) + timedelta(days=100)
        plan = plan_retention(policy, now=now, targets=targets)
        assert {} == dict(plan.errors)
        deleted = [p for p in plan.delete if p.tier == "offsite"]
        kept = [p for p in plan.keep if p.tier == "offsite"]
        assert (1, 1) == (len(deleted), len(kept))  # the newest of the tier is always kept
        report = apply(plan)
        assert [(deleted[0].id, "deleted")] == [(o.point.id, o.action) for o in report.outcomes]
        left = backup.client("rds").describe_db_snapshots(DBInstanceIdentifier="orders-db")
        assert [kept[0].id] == [s["DBSnapshotIdentifier"] for s in left["DBSnapshots"]]


def _offsite_policy_with(key: str) -> Policy:
    data = _offsite_policy().to_dict()
    tiers = data["tiers"]
    assert isinstance(tiers, list)
    tiers[1]["location"] = {"region": REGION, "kms_key_id": key}
    return Policy.from_dict(data)


# --------------------------------------------------------------------------- EBS


@pytest.fixture(name="volume")
def _volume(prod: boto3.Session, account: OffsiteAccount) -> EbsVolume:
    ec2 = prod.client("ec2")
    key = prod.client("kms").create_key()["KeyMetadata"]["Arn"]
    volume_id = ec2.create_volume(
        AvailabilityZone=f"{REGION}a", Size=8, Encrypted=True, KmsKeyId=key
    )["VolumeId"]
    return EbsVolume(
        volume_id, name="data", policy="shop", session=prod, region=REGION, retry=FAST
    ).with_offsite([account])


def _volume_permissions(session: boto3.Session, snapshot_id: str) -> list[str]:
    result = session.client("ec2").describe_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission"
    )
    return [str(p.get("UserId")) for p in result["CreateVolumePermissions"]]


def _stub_backup_ec2(volume: EbsVolume, account: OffsiteAccount) -> Stubber:
    """Stub the backup account's EC2 client (moto cannot copy a snapshot across accounts)."""
    return Stubber(volume.offsite_backend(account).client("ec2", region=REGION))


class TestEbsAcrossAccounts:
    def test_copy_shares_copies_with_backup_key_and_unshares(
        self, volume: EbsVolume, account: OffsiteAccount, prod: boto3.Session
    ) -> None:
        """The backup account copies the shared snapshot with its key; the permission is gone after."""
        point = volume.create_backup(token="t1")
        sibling = volume.offsite_backend(account)
        assert BACKUP == sibling.account_id  # read before the stub: STS, not EC2
        seen: list[list[str]] = []
        stubber = _stub_backup_ec2(volume, account)
        stubber.add_response("describe_snapshots", {"Snapshots": []})  # no copy made yet
        expected = {
            "SourceRegion": REGION,
            "SourceSnapshotId": point.id,
            "Description": ANY,
            "Encrypted": True,
            "KmsKeyId": account.kms_key_id,
            "TagSpecifications": ANY,
        }
        stubber.add_response("copy_snapshot", {"SnapshotId": "snap-0123456789abcdef0"}, expected)
        client = sibling.client("ec2", region=REGION)
        client.meta.events.register(
            "before-parameter-build.ec2.CopySnapshot",
            lambda **_: seen.append(_volume_permissions(prod, point.id)),
        )
        with stubber:
            copy = volume.copy(point, Destination(tier="offsite", region=REGION, account=BACKUP))
            stubber.assert_no_pending_responses()
        assert [[BACKUP]] == seen
        assert [] == _volume_permissions(prod, point.id)
        assert (f"aws:{BACKUP}:{REGION}", "offsite", True) == (
            copy.location,
            copy.tier,
            copy.managed,
        )

    def test_share_removed_when_the_copy_fails(
        self, volume: EbsVolume, account: OffsiteAccount, prod: boto3.Session
    ) -> None:
        """A failed copy in the backup account still removes the permission; the error is raised."""
        point = volume.create_backup(token="t1")
        volume.offsite_backend(account).account_id  # noqa: B018 - read before the stub
        stubber = _stub_backup_ec2(volume, account)
        stubber.add_response("describe_snapshots", {"Snapshots": []})
        stubber.add_client_error("copy_snapshot", "InvalidParameterValue", "key refused", 400)
        with stubber, pytest.raises(BackendError) as info:
            volume.copy(point, Destination(tier="offsite", region=REGION, account=BACKUP))
        assert "InvalidParameterValue" == info.value.code
        assert [] == _volume_permissions(prod, point.id)

    def test_production_cannot_see_or_delete_the_backup_accounts_snapshot(
        self, volume: EbsVolume, backup: boto3.Session, prod: boto3.Session
    ) -> None:
        """A snapshot of the backup account is invisible to production and not deletable by it."""
        ec2 = backup.client("ec2")
        other = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]
        snapshot = ec2.create_snapshot(
            VolumeId=other,
            TagSpecifications=[
                {
                    "ResourceType": "snapshot",
                    "Tags": [
                        {"Key": TAG_POLICY, "Value": "shop"},
                        {"Key": TAG_TARGET, "Value": "data"},
                        {"Key": TAG_TIER, "Value": "offsite"},
                    ],
                }
            ],
        )["SnapshotId"]
        offsite = [p for p in volume.list_points() if p.tier == "offsite"]
        assert [(snapshot, f"aws:{BACKUP}:{REGION}")] == [(p.id, p.location) for p in offsite]
        mine = prod.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
        assert snapshot not in [s["SnapshotId"] for s in mine]
        with pytest.raises(prod.client("ec2").exceptions.ClientError):
            prod.client("ec2").delete_snapshot(SnapshotId=snapshot)
        volume.delete(offsite[0])  # through the backup account's backend
        assert [] == ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]


@pytest.fixture(name="web")
def _web(prod: boto3.Session, account: OffsiteAccount) -> Ec2Instance:
    """An instance with its boot volume and one data volume: an instance backup has two snapshots."""
    ec2 = prod.client("ec2")
    reservation = ec2.run_instances(
        ImageId="ami-00000000000000000", MinCount=1, MaxCount=1, InstanceType="t3.micro"
    )
    instance_id = reservation["Instances"][0]["InstanceId"]
    data = ec2.create_volume(Size=10, AvailabilityZone=f"{REGION}a")
    ec2.attach_volume(VolumeId=data["VolumeId"], InstanceId=instance_id, Device="/dev/sdf")
    return Ec2Instance(
        instance_id, name="web", policy="shop", session=prod, region=REGION, retry=FAST
    ).with_offsite([account])


def _copied(source: RecoveryPoint, account: OffsiteAccount) -> dict[str, Any]:
    """What DescribeSnapshots answers in the backup account once the group's copies exist."""
    group = f"{source.id}-{REGION}"
    ids = source.details["snapshot_ids"]
    return {
        "Snapshots": [
            {
                "SnapshotId": f"snap-0{i:016x}",
                "VolumeId": "vol-ffffffff",
                "StartTime": source.created_at,
                "State": "pending",
                "OwnerId": BACKUP,
                "Encrypted": True,
                "KmsKeyId": account.kms_key_id,
                "VolumeSize": 8,
                "Tags": [
                    {"Key": TAG_POLICY, "Value": "shop"},
                    {"Key": TAG_TARGET, "Value": "web"},
                    {"Key": TAG_TIER, "Value": "offsite"},
                    {"Key": TAG_GROUP, "Value": group},
                    {"Key": TAG_GROUP_SIZE, "Value": str(len(ids))},
                    {"Key": TAG_SOURCE_SNAPSHOT, "Value": sid},
                ],
            }
            for i, sid in enumerate(ids)
        ]
    }


class TestInstanceBackupsAcrossAccounts:
    def test_each_snapshot_shared_copied_with_backup_key_and_unshared(
        self, web: Ec2Instance, account: OffsiteAccount, prod: boto3.Session
    ) -> None:
        """Every snapshot is shared, copied in the backup account, then unshared; one point groups them."""
        point = web.create_backup(token="t1")
        ids = point.details["snapshot_ids"]
        assert 2 == len(ids)
        sibling = web.offsite_backend(account)
        assert BACKUP == sibling.account_id  # read before the stub: STS, not EC2
        seen: list[dict[str, list[str]]] = []
        stubber = Stubber(sibling.client("ec2", region=REGION))
        stubber.add_response("describe_snapshots", {"Snapshots": []})  # no group copied yet
        for sid in ids:
            stubber.add_response("describe_snapshots", {"Snapshots": []})  # not copied before
            expected = {
                "SourceRegion": REGION,
                "SourceSnapshotId": sid,
                "Description": ANY,
                "Encrypted": True,
                "KmsKeyId": account.kms_key_id,
                "TagSpecifications": ANY,
            }
            stubber.add_response("copy_snapshot", {"SnapshotId": f"snap-copy-{sid}"}, expected)
        stubber.add_response("describe_snapshots", _copied(point, account))
        sibling.client("ec2", region=REGION).meta.events.register(
            "before-parameter-build.ec2.CopySnapshot",
            lambda **_: seen.append({s: _volume_permissions(prod, s) for s in ids}),
        )
        with stubber:
            copy = web.copy(point, Destination(tier="offsite", region=REGION, account=BACKUP))
            stubber.assert_no_pending_responses()
        assert [{s: [BACKUP] for s in ids}] * 2 == seen
        assert {s: [] for s in ids} == {s: _volume_permissions(prod, s) for s in ids}
        assert (KIND_INSTANCE_BACKUP, "offsite", f"aws:{BACKUP}:{REGION}") == (
            copy.kind,
            copy.tier,
            copy.location,
        )
        assert f"{point.id}-{REGION}" == copy.id
        assert 2 == len(copy.details["snapshot_ids"])

    def test_every_share_removed_when_one_copy_fails(
        self, web: Ec2Instance, account: OffsiteAccount, prod: boto3.Session
    ) -> None:
        """The second copy fails: both snapshots are unshared, the copy's error is raised."""
        point = web.create_backup(token="t1")
        ids = point.details["snapshot_ids"]
        sibling = web.offsite_backend(account)
        sibling.account_id  # noqa: B018 - read before the stub
        stubber = Stubber(sibling.client("ec2", region=REGION))
        stubber.add_response("describe_snapshots", {"Snapshots": []})
        stubber.add_response("describe_snapshots", {"Snapshots": []})
        stubber.add_response("copy_snapshot", {"SnapshotId": "snap-0000000000000000a"})
        stubber.add_response("describe_snapshots", {"Snapshots": []})
        stubber.add_client_error("copy_snapshot", "InvalidParameterValue", "key refused", 400)
        with stubber, pytest.raises(BackendError) as info:
            web.copy(point, Destination(tier="offsite", region=REGION, account=BACKUP))
        assert "InvalidParameterValue" == info.value.code
        assert {s: [] for s in ids} == {s: _volume_permissions(prod, s) for s in ids}


class TestKindsWithoutCrossAccountCopies:
    @pytest.mark.parametrize(
        ("kind", "settings"),
        [("directory", {"path": "/srv/app"})],
    )
    def test_refused_rather_than_written_with_production_credentials(
        self, kind: str, settings: dict[str, str], prod: boto3.Session, tmp_path: Any
    ) -> None:
        """A store tier in another account is written with the tier's role, never production's."""
        policy = Policy.from_dict(
            {
                "name": "shop",
                "schedule": {"every": "day"},
                "retention": {"max_age": "35d"},
                "tiers": [
                    {"name": "local", "every": "day", "location": {"store": str(tmp_path)}},
                    {
                        "name": "offsite",
                        "every": "week",
                        "account": ROLE,
                        "location": {
                            "region": REGION,
                            "kms_key_id": _key(),
                            "store": "s3://backup-account-bucket/copies",
                        },
                    },
                ],
                "targets": [{"name": "t", "kind": kind, "settings": settings}],
            }
        )
        target = build_targets(policy, session=prod)["t"]
        offsite = [s for s in target.stores if s.tier == "offsite"]  # type: ignore[attr-defined]
        assert [BACKUP] == [s.account.account_id for s in offsite]


class TestChecksAndRestores:
    def test_sharing_check_asks_the_backup_account(
        self, db: RdsInstance, copy: RecoveryPoint
    ) -> None:
        """The verify check of who may restore an off-site copy reads it in the backup account."""
        found = db.point_sharing(copy, region=REGION)
        assert ({"restore_shared_with": []}, []) == found

    def test_restore_into_production_from_the_copy_refused(
        self, db: RdsInstance, copy: RecoveryPoint, prod: boto3.Session
    ) -> None:
        """A production restore of an off-site copy is refused by name, nothing is created."""
        with pytest.raises(PolicyError) as info:
            db.restore_database(
                "orders-db-restored", region=REGION, point=copy, at=None, settings={}, tags={}
            )
        assert "point" == info.value.path
        assert ["orders-db"] == [
            d["DBInstanceIdentifier"]
            for d in prod.client("rds").describe_db_instances()["DBInstances"]
        ]
