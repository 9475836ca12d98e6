"""Two AWS accounts in moto, for the tests of tiers in another account.

The production account is moto's default (`PROD`); the backup account (`BACKUP`) is reached by
STS ``AssumeRole`` of `ROLE`, whose credentials moto treats as that account's: each account
sees its own resources only. The ``accounts_apart`` fixture (tests/aws/conftest.py) also keeps
S3 buckets apart, as AWS does without a bucket policy.
"""

from __future__ import annotations

from collections.abc import Callable

import boto3
import pytest
from botocore.exceptions import ClientError

REGION = "us-east-1"
"""The region of both accounts' resources."""
PROD = "123456789012"
"""The production account: moto's default."""
BACKUP = "222222222222"
"""The backup account, where the off-site copies go."""
ROLE = f"arn:aws:iam::{BACKUP}:role/backuppolicy-offsite"
"""The backup account's role that the off-site tiers assume."""


def backup_session(prod: boto3.Session) -> boto3.Session:
    """The backup account, as its own credentials see it: `ROLE` assumed from *prod*."""
    sts = prod.client("sts")
    creds = sts.assume_role(RoleArn=ROLE, RoleSessionName="admin")["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )


def assert_denied(call: Callable[[], object]) -> None:
    """*call* is refused with ``AccessDenied`` (another account's bucket, without a grant)."""
    with pytest.raises(ClientError) as info:
        call()
    assert "AccessDenied" == info.value.response["Error"]["Code"]
