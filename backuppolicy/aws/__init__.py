"""AWS targets (imports boto3): ``from backuppolicy import aws``.

Every target takes ``session=``, ``region=``, ``endpoint_url=`` (moto server, LocalStack),
``clients=`` (ready clients) and ``retry=`` (a `RetryPolicy`).

Example:
    >>> from backuppolicy import aws
    >>> {"RdsInstance", "Ec2Instance", "EbsVolume", "S3Bucket"} <= set(aws.__all__)
    True
"""

from __future__ import annotations

import typing

from backuppolicy.core import lazy as _lazy

if typing.TYPE_CHECKING:  # what mypy and IDEs see; at run time `__getattr__` imports on first use
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

_EXPORTS: dict[str, tuple[str, ...]] = {
    "backuppolicy.aws._client": (
        "AwsBackend",
        "RetryPolicy",
    ),
    "backuppolicy.aws.accounts": (
        "AccountRun",
        "AccountSessions",
        "FanOutReport",
        "assume_role_session",
        "for_each_account",
    ),
    "backuppolicy.aws.awsbackup": (
        "AwsBackupTarget",
        "list_aws_backup_points",
    ),
    "backuppolicy.aws.backup_plan": (
        "ComplianceModeWarning",
        "VaultLock",
        "apply_aws_backup",
        "export_aws_backup",
    ),
    "backuppolicy.aws.ec2": (
        "EbsVolume",
        "Ec2Instance",
    ),
    "backuppolicy.aws.iam": ("iam_policy",),
    "backuppolicy.aws.kms": ("KmsDataKeys",),
    "backuppolicy.aws.lease": ("S3Lease",),
    "backuppolicy.aws.lifecycle_scheduler": (
        "export_lifecycle",
        "export_scheduler",
    ),
    "backuppolicy.aws.objects": ("S3Objects",),
    "backuppolicy.aws.rds": (
        "AuroraCluster",
        "BackupSettings",
        "BackupWindow",
        "Drift",
        "RdsInstance",
    ),
    "backuppolicy.aws.s3": (
        "KeyRetentionPlan",
        "RestoreReport",
        "RetentionRunReport",
        "S3Bucket",
        "S3Settings",
    ),
    "backuppolicy.core.targets": ("AwsBackupMapping",),
}
"""The public names of this façade by the module that defines them, imported on first use."""

__getattr__, __dir__ = _lazy.lazy_exports(__name__, _EXPORTS, globals())

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
