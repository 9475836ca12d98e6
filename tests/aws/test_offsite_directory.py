"""Directory targets with a copy tier in another account: archives in the backup account's bucket.

moto (in-process) keeps one set of buckets per account; with ``MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS``
off, a request for another account's bucket is refused (``AccessDenied``), as AWS refuses it
without a bucket policy. The copy streams: the archive is read on this machine and written with
the tier's assumed role, so production's credentials never reach the copies.
"""

from __future__ import annotations

import pathlib
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.locks import PointLock
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.policy import Policy
from backuppolicy.core.targets import Destination
from backuppolicy.local import Directory, S3Store
from tests.aws.accounts import BACKUP, REGION, ROLE, assert_denied, backup_session

STORE_BUCKET = "config-offsite"
STORE = f"s3://{STORE_BUCKET}/config/"


@pytest.fixture(name="prod")
def _prod(accounts_apart: None) -> boto3.Session:
    return boto3.Session(region_name=REGION)


@pytest.fixture(name="backup")
def _backup(prod: boto3.Session) -> boto3.Session:
    """The backup account; its store bucket has Object Lock (and so versions)."""
    session = backup_session(prod)
    session.client("s3").create_bucket(Bucket=STORE_BUCKET, ObjectLockEnabledForBucket=True)
    return session


@pytest.fixture(name="key")
def _key(backup: boto3.Session) -> str:
    return str(backup.client("kms").create_key()["KeyMetadata"]["Arn"])


def _policy(tmp_path: pathlib.Path, key: str, **offsite: Any) -> Policy:
    source = tmp_path / "etc"
    source.mkdir(exist_ok=True)
    (source / "app.conf").write_text("port = 8080\n")
    tier: dict[str, Any] = {
        "name": "offsite",
        "every": "week",
        "account": ROLE,
        "location": {"region": REGION, "kms_key_id": key, "store": STORE},
        **offsite,
    }
    return Policy.from_dict(
        {
            "name": "shop",
            "schedule": {"every": "day"},
            "retention": {"max_age": "35d"},
            "tiers": [
                {"name": "local", "every": "day", "location": {"store": str(tmp_path / "bk")}},
                tier,
            ],
            "targets": [
                {"name": "shop-config", "kind": "directory", "settings": {"path": str(source)}}
            ],
        }
    )


@pytest.fixture(name="target")
def _target(tmp_path: pathlib.Path, prod: boto3.Session, key: str) -> Directory:
    policy = _policy(tmp_path, key)
    return Directory.from_spec(policy.target("shop-config"), policy, session=prod)


def _offsite(key: str) -> Destination:
    return Destination(tier="offsite", region=REGION, kms_key_id=key, account=BACKUP, store=STORE)


def _copy(target: Directory, key: str) -> tuple[RecoveryPoint, RecoveryPoint]:
    point = target.create_backup(token="2026-11-26")
    return point, target.copy(point, _offsite(key))


class TestCopyIntoBackupAccount:
    def test_archive_and_sidecar_are_written_by_the_backup_account_with_its_key(
        self, target: Directory, backup: boto3.Session, key: str
    ) -> None:
        """Both objects land in the backup account's bucket, SSE-KMS with the tier's key."""
        point, copy = _copy(target, key)
        assert "offsite" == copy.tier
        assert STORE == copy.location
        assert copy.checksum == point.checksum
        s3 = backup.client("s3")
        for suffix in (".tar.gz", ".json"):
            head = s3.head_object(Bucket=STORE_BUCKET, Key=f"config/{copy.id}{suffix}")
            assert "aws:kms" == head["ServerSideEncryption"]
            assert key == head["SSEKMSKeyId"]

    def test_copies_are_listed_verified_and_restored_with_the_backup_accounts_credentials(
        self, target: Directory, key: str, tmp_path: pathlib.Path
    ) -> None:
        """list, verify and restore of the copy go through the tier's role."""
        point, copy = _copy(target, key)
        listed = {p.id: p.tier for p in target.list_points()}
        assert {point.id: "local", copy.id: "offsite"} == listed
        assert copy.checksum == target.verify(copy)
        with target.restore(copy) as restored:
            assert "port = 8080\n" == pathlib.Path(restored.endpoint, "app.conf").read_text()
        again = target.copy(point, _offsite(key))
        assert copy.id == again.id

    def test_prune_of_the_copy_deletes_with_the_backup_accounts_credentials(
        self, target: Directory, backup: boto3.Session, key: str
    ) -> None:
        """delete() of an off-site copy works: the store's calls are the backup account's."""
        _, copy = _copy(target, key)
        target.delete(copy)
        assert [] == [p for p in target.list_points() if p.tier == "offsite"]
        listed = backup.client("s3").list_objects_v2(Bucket=STORE_BUCKET).get("Contents", [])
        assert [] == listed


class TestBlastRadius:
    def test_production_credentials_cannot_read_or_delete_the_copy(
        self, target: Directory, prod: boto3.Session, key: str
    ) -> None:
        """The copies belong to the backup account: production gets AccessDenied."""
        _, copy = _copy(target, key)
        s3 = prod.client("s3")
        archive = f"config/{copy.id}.tar.gz"
        assert_denied(lambda: s3.get_object(Bucket=STORE_BUCKET, Key=archive))
        assert_denied(lambda: s3.delete_object(Bucket=STORE_BUCKET, Key=archive))
        assert_denied(lambda: s3.list_objects_v2(Bucket=STORE_BUCKET))

    def test_compliance_lock_stops_even_the_backup_account_deleting_a_version(
        self, target: Directory, backup: boto3.Session, key: str
    ) -> None:
        """lock_point puts compliance retention on archive and sidecar and records it."""
        _, copy = _copy(target, key)
        until = copy.created_at + timedelta(days=35)
        locked = target.lock_point(copy, PointLock("compliance", until))
        assert locked.lock is not None
        assert ("compliance", until) == (locked.lock.mode, locked.lock.until)
        refreshed = target.refresh(copy)
        assert refreshed is not None
        assert refreshed.lock == locked.lock
        s3 = backup.client("s3")
        for suffix in (".tar.gz", ".json"):
            versions = s3.list_object_versions(
                Bucket=STORE_BUCKET, Prefix=f"config/{copy.id}{suffix}"
            )
            for version in versions["Versions"]:
                if suffix == ".json" and not version["IsLatest"]:
                    continue  # the sidecar before the lock was recorded
                head = s3.head_object(
                    Bucket=STORE_BUCKET, Key=version["Key"], VersionId=version["VersionId"]
                )
                assert "COMPLIANCE" == head["ObjectLockMode"]
                assert_denied(
                    lambda v=version: s3.delete_object(
                        Bucket=STORE_BUCKET, Key=v["Key"], VersionId=v["VersionId"]
                    )
                )

    def test_a_directory_store_cannot_lock(self, target: Directory) -> None:
        """The local tier's directory has no lock below the library: a PolicyError says so."""
        point = target.create_backup()
        lock = PointLock("compliance", datetime(2099, 1, 1, tzinfo=UTC))
        with pytest.raises(PolicyError, match=r"tiers\[local\]\.lock"):
            target.lock_point(point, lock)

    def test_copy_to_an_account_through_a_store_without_its_role_is_refused(
        self, tmp_path: pathlib.Path, prod: boto3.Session, key: str
    ) -> None:
        """A destination account with a store opened with the caller's credentials: refused."""
        (tmp_path / "src").mkdir()
        target = Directory(tmp_path / "src", name="cfg", store=tmp_path / "bk")
        point = target.create_backup()
        dest = Destination(
            tier="offsite",
            account=BACKUP,
            store=S3Store(STORE_BUCKET, tier="offsite", session=prod),
        )
        with pytest.raises(PolicyError, match=r"destination\.account"):
            target.copy(point, dest)


class TestPolicy:
    def test_first_tier_in_another_account_is_refused(
        self, tmp_path: pathlib.Path, prod: boto3.Session, key: str
    ) -> None:
        """New archives are written where the directory is: the first tier has no account."""
        policy = Policy.from_dict(
            {
                "name": "shop",
                "schedule": {"every": "day"},
                "retention": {"max_age": "35d"},
                "tiers": [
                    {
                        "name": "local",
                        "every": "day",
                        "account": ROLE,
                        "location": {"region": REGION, "kms_key_id": key, "store": STORE},
                    }
                ],
                "targets": [
                    {"name": "c", "kind": "directory", "settings": {"path": str(tmp_path)}}
                ],
            }
        )
        with pytest.raises(PolicyError, match=r"tiers\[local\]\.account"):
            Directory.from_spec(policy.target("c"), policy, session=prod)

    def test_copy_tier_in_another_account_needs_an_s3_store(
        self, tmp_path: pathlib.Path, prod: boto3.Session, key: str
    ) -> None:
        """A directory store cannot live in another account."""
        policy = _policy(
            tmp_path,
            key,
            location={"region": REGION, "kms_key_id": key, "store": str(tmp_path / "x")},
        )
        with pytest.raises(PolicyError, match=r"tiers\[offsite\]\.location\.store"):
            Directory.from_spec(policy.target("shop-config"), policy, session=prod)


# ------------------------------------------------- the seed, its weekly tier in the backup account

SEED = pathlib.Path(__file__).parents[2] / "backuppolicy" / "data" / "seed_policy.yaml"


def _seed_yaml(tmp_path: pathlib.Path, key: str) -> pathlib.Path:
    """The seed policy file with its off-site tier moved to the backup account, locked.

    Only the tiers and the directories' paths and key files change (paths under *tmp_path*).
    """
    import os

    import yaml

    data = yaml.safe_load(SEED.read_text())
    for rule in data["notifications"]:  # PyYAML reads YAML 1.1: the key "on" is True
        if True in rule:
            rule["on"] = rule.pop(True)
    key_file = tmp_path / "archive.key"
    key_file.write_text(os.urandom(32).hex())
    data["tiers"][0]["location"]["store"] = str(tmp_path / "backups")
    data["tiers"][1].update(
        account={"role_arn": ROLE, "session_name": "web-apps-offsite"},
        location={"region": REGION, "kms_key_id": key, "store": f"s3://{STORE_BUCKET}/web-apps"},
        lock="compliance",
    )
    for target in data["targets"]:
        if target["kind"] == "directory":
            source = tmp_path / target["name"]
            source.mkdir()
            (source / "settings.ini").write_text(f"[{target['name']}]\n")
            target["settings"]["path"] = str(source)
            target["settings"]["encryption"] = {"key": f"file:{key_file}"}
        else:
            target["settings"]["region"] = REGION
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class TestSeedInBackupAccount:
    def test_seed_policy_file_alone_puts_locked_directory_copies_in_the_backup_account(
        self, tmp_path: pathlib.Path, prod: boto3.Session, backup: boto3.Session, key: str
    ) -> None:
        """From YAML alone: every target builds; directory copies land locked in the backup account."""
        from backuppolicy.workflows._assemble import build_targets
        from backuppolicy.workflows.backups import backup as run_backup

        policy = Policy.from_file(_seed_yaml(tmp_path, key))
        offsite = policy.tier("offsite")
        assert (BACKUP, "compliance") == (
            offsite.account_id,
            offsite.lock.mode if offsite.lock else None,
        )
        targets = build_targets(policy, session=prod)
        assert {t.kind for t in policy.targets} == {
            "rds-instance",
            "ec2-instance",
            "s3-bucket",
            "directory",
        }
        assert {t.name for t in policy.targets} == set(targets)
        directories = ["shop-config", "shop-code"]
        copies: dict[str, list[RecoveryPoint]] = {name: [] for name in directories}
        for day in range(7):  # the seed's rolling period spreads the weekly copies over a week
            now = datetime(2026, 11, 23 + day, 4, 5, tzinfo=UTC)
            report = run_backup(policy, now=now, targets=targets, only=directories)
            assert [] == [(r.target, r.error) for r in report.runs if r.error]
            for run in report.runs:
                copies[run.target] += run.copies
        s3 = backup.client("s3")
        for name in directories:
            (made,) = copies[name]
            copy = targets[name].refresh(made)  # type: ignore[attr-defined]
            assert copy is not None
            assert "offsite" == copy.tier
            assert copy.lock is not None
            assert "compliance" == copy.lock.mode
            archive = f"web-apps{copy.id}.tar.gz"
            head = s3.head_object(Bucket=STORE_BUCKET, Key=archive)
            assert "COMPLIANCE" == head["ObjectLockMode"]
            assert key == head["SSEKMSKeyId"]
            versions = s3.list_object_versions(Bucket=STORE_BUCKET, Prefix=archive)["Versions"]
            for version in versions:  # not even the backup account deletes it early
                assert_denied(
                    lambda v=version, a=archive: s3.delete_object(
                        Bucket=STORE_BUCKET, Key=a, VersionId=v["VersionId"]
                    )
                )
            assert_denied(
                lambda a=archive: prod.client("s3").delete_object(Bucket=STORE_BUCKET, Key=a)
            )
            assert copy.checksum == targets[name].verify(copy)
