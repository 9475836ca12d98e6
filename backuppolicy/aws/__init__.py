"""AWS targets (imports boto3): ``from backuppolicy import aws``.

Every target takes ``session=``, ``region=``, ``endpoint_url=`` (moto server, LocalStack),
``clients=`` (ready clients) and ``retry=`` (a `RetryPolicy`).

Example:
    >>> from backuppolicy import aws
    >>> sorted(name for name in aws.__all__ if name[0].isupper())[:4]
    ['AuroraCluster', 'AwsBackend', 'BackupSettings', 'BackupWindow']
"""

from __future__ import annotations

from backuppolicy.aws._client import AwsBackend, RetryPolicy
from backuppolicy.aws.ec2 import EbsVolume, Ec2Instance
from backuppolicy.aws.rds import AuroraCluster, BackupSettings, BackupWindow, Drift, RdsInstance
from backuppolicy.aws.s3 import (
    KeyRetentionPlan,
    RestoreReport,
    RetentionRunReport,
    S3Bucket,
    S3Settings,
)

__all__ = [
    "AuroraCluster",
    "AwsBackend",
    "BackupSettings",
    "BackupWindow",
    "Drift",
    "EbsVolume",
    "Ec2Instance",
    "KeyRetentionPlan",
    "RdsInstance",
    "RestoreReport",
    "RetentionRunReport",
    "RetryPolicy",
    "S3Bucket",
    "S3Settings",
]
