"""AWS targets (imports boto3): ``from backuppolicy import aws``.

Every target takes ``session=``, ``region=``, ``endpoint_url=`` (moto server, LocalStack),
``clients=`` (ready clients) and ``retry=`` (a `RetryPolicy`).

Example:
    >>> from backuppolicy import aws
    >>> {"RdsInstance", "Ec2Instance", "EbsVolume", "S3Bucket"} <= set(aws.__all__)
    True
"""

from __future__ import annotations

from backuppolicy.aws._client import AwsBackend, RetryPolicy
from backuppolicy.aws.accounts import (
    AccountRun,
    AccountSessions,
    FanOutReport,
    assume_role_session,
    for_each_account,
)
from backuppolicy.aws.awsbackup import AwsBackupTarget, list_aws_backup_points
from backuppolicy.aws.backup_plan import (
    ComplianceModeWarning,
    VaultLock,
    apply_aws_backup,
    export_aws_backup,
)
from backuppolicy.aws.ec2 import EbsVolume, Ec2Instance
from backuppolicy.aws.iam import iam_policy
from backuppolicy.aws.kms import KmsDataKeys
from backuppolicy.aws.lease import S3Lease
from backuppolicy.aws.lifecycle_scheduler import export_lifecycle, export_scheduler
from backuppolicy.aws.objects import S3Objects
from backuppolicy.aws.rds import AuroraCluster, BackupSettings, BackupWindow, Drift, RdsInstance
from backuppolicy.aws.s3 import (
    KeyRetentionPlan,
    RestoreReport,
    RetentionRunReport,
    S3Bucket,
    S3Settings,
)
from backuppolicy.core.targets import AwsBackupMapping

__all__ = [
    "AccountRun",
    "AccountSessions",
    "AuroraCluster",
    "AwsBackend",
    "AwsBackupMapping",
    "AwsBackupTarget",
    "BackupSettings",
    "BackupWindow",
    "ComplianceModeWarning",
    "Drift",
    "EbsVolume",
    "Ec2Instance",
    "FanOutReport",
    "KeyRetentionPlan",
    "KmsDataKeys",
    "RdsInstance",
    "RestoreReport",
    "RetentionRunReport",
    "RetryPolicy",
    "S3Bucket",
    "S3Lease",
    "S3Objects",
    "S3Settings",
    "VaultLock",
    "apply_aws_backup",
    "assume_role_session",
    "export_aws_backup",
    "export_lifecycle",
    "export_scheduler",
    "for_each_account",
    "iam_policy",
    "list_aws_backup_points",
]
