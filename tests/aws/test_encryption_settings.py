"""Encryption and access that mean what the policy says (issue 12, §7.5 and §8.3), under moto.

The S3 responses read here have the shape AWS documents:

* GetBucketEncryption returns ``ServerSideEncryptionConfiguration.Rules[]`` with
  ``ApplyServerSideEncryptionByDefault.SSEAlgorithm`` (``AES256`` | ``aws:kms`` |
  ``aws:kms:dsse``) and, for SSE-KMS, ``KMSMasterKeyID``
  (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketEncryption.html);
* HeadObject returns ``ServerSideEncryption`` and, for SSE-KMS, ``SSEKMSKeyId``
  (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html);
* every new bucket has SSE-S3 since 5 January 2023
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/default-encryption-faq.html), which
  `tests.aws.aws_defaults.create_bucket` sets explicitly, whatever moto's version does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from backuppolicy.aws import EbsVolume, RetryPolicy, S3Bucket
from backuppolicy.checks.metadata import BucketSettingMatchesPolicy, Encrypted
from backuppolicy.checks.verify import VerifyContext
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.policy import Policy
from backuppolicy.core.results import CheckStatus
from backuppolicy.workflows.verify import default_checks, enforce_settings
from tests.aws.aws_defaults import PUBLIC_ACCESS_FLAGS, create_bucket

REGION = "us-east-1"
SESSION = boto3.Session(region_name=REGION)
FAST = RetryPolicy(sleep=lambda _seconds: None)
NOW = datetime(2026, 11, 26, 6, tzinfo=UTC)


def _policy(kind: str, **settings: Any) -> Policy:
    return Policy.from_dict(
        {
            "name": "p",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": "35d"},
            "targets": [{"name": "assets", "kind": kind, "settings": settings}],
        }
    )


@pytest.fixture(name="s3")
def _s3(aws: None) -> Any:
    client = SESSION.client("s3")
    create_bucket(client, Bucket="acme-assets")
    client.put_bucket_versioning(
        Bucket="acme-assets", VersioningConfiguration={"Status": "Enabled"}
    )
    return client


@pytest.fixture(name="kms")
def _kms(aws: None) -> Any:
    return SESSION.client("kms")


def _bucket() -> S3Bucket:
    return S3Bucket(
        "acme-assets", prefix="img/", name="assets", session=SESSION, region=REGION, retry=FAST
    )


def _version(bucket: S3Bucket, key: str) -> Any:
    return next(p for p in bucket.list_points() if p.details.get("key") == key)


def _ctx(policy: Policy) -> VerifyContext:
    return VerifyContext(now=NOW, policy=policy)


class TestEncryptedMeetsThePolicy:
    def test_aes256_object_fails_where_the_policy_says_aws_kms(self, s3):
        """Regression (issue 12): SSE-S3 passed as 'encrypted' where the policy says aws:kms."""
        s3.put_object(Bucket="acme-assets", Key="img/a.png", Body=b"a")  # bucket default: AES256
        bucket = _bucket()
        policy = _policy("s3-bucket", bucket="acme-assets", encryption="aws:kms")
        result = Encrypted().verify(bucket, _version(bucket, "img/a.png"), _ctx(policy))
        assert CheckStatus.FAIL == result.status
        assert "encryption: expected aws:kms, actual AES256" == result.details

    def test_aes256_policy_accepts_sse_kms(self, s3, kms):
        """`encryption: AES256` asks for encryption at rest: SSE-KMS meets it too."""
        key = kms.create_key()["KeyMetadata"]["Arn"]
        s3.put_object(
            Bucket="acme-assets",
            Key="img/k.png",
            Body=b"k",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=key,
        )
        bucket = _bucket()
        policy = _policy("s3-bucket", bucket="acme-assets", encryption="AES256")
        result = Encrypted().verify(bucket, _version(bucket, "img/k.png"), _ctx(policy))
        assert CheckStatus.PASS == result.status, result.details

    def test_sse_kms_with_another_key_fails_and_an_alias_of_the_same_key_passes(self, s3, kms):
        """The named key is compared through KMS: another key fails, an alias of the key passes."""
        used = kms.create_key()["KeyMetadata"]["Arn"]
        other = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/backups", TargetKeyId=used)
        s3.put_object(
            Bucket="acme-assets",
            Key="img/k.png",
            Body=b"k",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=used,
        )
        bucket = _bucket()
        point = _version(bucket, "img/k.png")
        wrong = _policy("s3-bucket", bucket="acme-assets", encryption="aws:kms", kms_key_id=other)
        alias = _policy(
            "s3-bucket", bucket="acme-assets", encryption="aws:kms", kms_key_id="alias/backups"
        )
        failed = Encrypted().verify(bucket, point, _ctx(wrong))
        passed = Encrypted().verify(bucket, point, _ctx(alias))
        assert (CheckStatus.FAIL, CheckStatus.PASS) == (failed.status, passed.status)
        assert failed.details == f"kms_key_id: expected {other}, actual {used}"

    def test_ebs_snapshot_with_another_key_fails(self, aws, kms, monkeypatch):
        """An EBS snapshot under another KMS key than the policy's fails; an unreported key warns."""
        monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        used = kms.create_key()["KeyMetadata"]["Arn"]
        other = kms.create_key()["KeyMetadata"]["Arn"]
        ec2 = SESSION.client("ec2")
        vid = ec2.create_volume(
            Size=8, AvailabilityZone="us-east-1a", Encrypted=True, KmsKeyId=used
        )["VolumeId"]
        volume = EbsVolume(
            vid, name="assets", session=SESSION, region=REGION, retry=FAST, poll_interval=0.01
        )
        point = volume.create_backup(token="t")
        policy = _policy("ebs-volume", volume_id=vid, encryption="aws:kms", kms_key_id=other)
        same = _policy("ebs-volume", volume_id=vid, encryption="aws:kms", kms_key_id=used)
        # moto leaves a snapshot's KmsKeyId empty; AWS reports it (DescribeSnapshots, "KmsKeyId":
        # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Snapshot.html). Unreported,
        # the check cannot prove the key: it warns, never passes.
        unknown = Encrypted().verify(volume, point, _ctx(policy))
        assert CheckStatus.WARN == unknown.status
        assert "KMS key is not reported" in unknown.details
        reported = point.evolve(details={**point.details, "kms_key_id": used})
        assert CheckStatus.FAIL == Encrypted().verify(volume, reported, _ctx(policy)).status
        assert CheckStatus.PASS == Encrypted().verify(volume, reported, _ctx(same)).status

    def test_unknown_encryption_value_is_a_policy_error(self):
        """Only S3's SSEAlgorithm names are accepted, with a did-you-mean."""
        with pytest.raises(PolicyError, match=r"targets\[0\]\.settings\.encryption.*aws:kms"):
            _policy("s3-bucket", bucket="b", encryption="kms")


class TestBucketSettingsDriftAndEnforce:
    def test_default_checks_include_both(self):
        """`verify` runs both bucket checks by default."""
        names = {c.name for c in default_checks(None)}
        assert {"bucket-encryption", "bucket-public-access"} <= names

    def test_drift_fails_naming_the_setting_expected_and_actual(self, s3):
        """Regression (issue 12): encryption and block_public_access were rendered, never checked."""
        s3.delete_public_access_block(Bucket="acme-assets")
        policy = _policy(
            "s3-bucket", bucket="acme-assets", encryption="aws:kms", block_public_access=True
        )
        bucket = _bucket()
        enc = BucketSettingMatchesPolicy("encryption").verify(bucket, None, _ctx(policy))
        bpa = BucketSettingMatchesPolicy("block_public_access").verify(bucket, None, _ctx(policy))
        assert (CheckStatus.FAIL, CheckStatus.FAIL) == (enc.status, bpa.status)
        assert "encryption: expected aws:kms, actual AES256" == enc.details
        assert bpa.details.startswith("block_public_access: expected all four flags, actual off:")
        assert {"setting": "encryption", "expected": "aws:kms", "actual": "AES256"} in enc.evidence[
            "drift"
        ]

    def test_not_stated_is_skipped(self, s3):
        """A bucket whose policy states no encryption is skipped, not passed."""
        policy = _policy("s3-bucket", bucket="acme-assets")
        result = BucketSettingMatchesPolicy("encryption").verify(_bucket(), None, _ctx(policy))
        assert CheckStatus.SKIPPED == result.status

    def test_enforce_dry_run_changes_nothing_then_applies_once(self, s3, kms):
        """A dry run changes nothing; --enforce applies each drift once; again, nothing (idempotent)."""
        key = kms.create_key()["KeyMetadata"]["Arn"]
        s3.delete_public_access_block(Bucket="acme-assets")
        policy = _policy(
            "s3-bucket",
            bucket="acme-assets",
            encryption="aws:kms",
            kms_key_id=key,
            block_public_access=True,
        )
        targets = {"assets": _bucket()}
        planned = enforce_settings(policy, targets=targets)
        after_dry_run = s3.get_bucket_encryption(Bucket="acme-assets")
        rule = after_dry_run["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert "AES256" == rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
        assert [("encryption", False), ("block_public_access", False)] == [
            (c.setting, c.applied) for c in planned
        ]
        assert "assets: would set encryption: AES256 -> aws:kms" == planned[0].describe()

        applied = enforce_settings(policy, targets=targets, apply=True)
        assert [c.setting for c in applied] == [c.setting for c in planned]
        rule = s3.get_bucket_encryption(Bucket="acme-assets")["ServerSideEncryptionConfiguration"][
            "Rules"
        ][0]
        assert {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key} == rule[
            "ApplyServerSideEncryptionByDefault"
        ]
        block = s3.get_public_access_block(Bucket="acme-assets")["PublicAccessBlockConfiguration"]
        assert dict.fromkeys(PUBLIC_ACCESS_FLAGS, True) == block
        assert [] == enforce_settings(policy, targets=targets, apply=True)  # idempotent
        ctx = _ctx(policy)
        assert (
            CheckStatus.PASS
            == BucketSettingMatchesPolicy("encryption").verify(targets["assets"], None, ctx).status
        )

    def test_enforce_never_loosens(self, s3, kms):
        """AES256 over SSE-KMS, or block_public_access false, asks for no change."""
        key = kms.create_key()["KeyMetadata"]["Arn"]
        s3.put_bucket_encryption(
            Bucket="acme-assets",
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": key,
                        }
                    }
                ]
            },
        )
        policy = _policy(
            "s3-bucket", bucket="acme-assets", encryption="AES256", block_public_access=False
        )
        assert [] == enforce_settings(policy, targets={"assets": _bucket()}, apply=True)
        rule = s3.get_bucket_encryption(Bucket="acme-assets")["ServerSideEncryptionConfiguration"][
            "Rules"
        ][0]
        assert "aws:kms" == rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
        assert s3.get_public_access_block(Bucket="acme-assets")["PublicAccessBlockConfiguration"]


class TestCliEnforce:
    def test_verify_enforce_dry_run_then_enforce(self, s3, tmp_path, monkeypatch):
        """`verify --enforce-dry-run` prints and changes nothing; `--enforce` applies, then verify passes."""
        import io

        import backuppolicy.cli.main as cli

        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            "name: p\n"
            "schedule: {every: day, at: '04:00'}\n"
            "retention: {max_age: 35d}\n"
            "targets:\n"
            "  - name: assets\n"
            "    kind: s3-bucket\n"
            "    settings: {bucket: acme-assets, region: us-east-1, encryption: aws:kms}\n"
        )
        args = ["verify", "--policy", str(policy), "--check", "bucket-encryption"]
        out = io.StringIO()
        assert 1 == cli.main([*args, "--enforce-dry-run"], out=out, err=io.StringIO())
        assert "assets: would set encryption: AES256 -> aws:kms" in out.getvalue()
        assert "fail" in out.getvalue()
        out = io.StringIO()
        assert 0 == cli.main([*args, "--enforce"], out=out, err=io.StringIO())
        assert "assets: set encryption: AES256 -> aws:kms" in out.getvalue()
        out = io.StringIO()
        assert 0 == cli.main([*args, "--enforce"], out=out, err=io.StringIO())
        assert "settings already match the policy" in out.getvalue()
