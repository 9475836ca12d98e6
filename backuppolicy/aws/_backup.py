"""Shared by the AWS Backup modules and `backuppolicy.aws.lifecycle_scheduler`: client, regions, names, kinds.

The AWS Backup modules are `backuppolicy.aws.awsbackup` and `backuppolicy.aws.backup_plan`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from backuppolicy.aws._client import AwsBackend
from backuppolicy.core.exceptions import BackendNotFoundError, PolicyError
from backuppolicy.core.policy import TargetSpec
from backuppolicy.core.registry import get_target_class
from backuppolicy.core.targets import AwsBackupMapping

__all__ = ["BackupClient", "aws_backup_of", "region_of", "safe_name"]


def aws_backup_of(spec: TargetSpec) -> AwsBackupMapping | None:
    """How *spec* maps to AWS Backup: its kind's ``aws_backup(spec)``, else ``None``.

    ``None`` for a kind without the class method, or one that is not registered (the export
    then warns that AWS Backup does not back the target up, as for any other such kind).
    """
    try:
        kind = get_target_class(spec.kind)
    except BackendNotFoundError:
        return None
    hook = getattr(kind, "aws_backup", None)
    if not callable(hook):
        return None
    mapping = hook(spec)
    if mapping is not None and not isinstance(mapping, AwsBackupMapping):
        raise PolicyError.for_field(
            f"{spec.kind}.aws_backup()", "an AwsBackupMapping or None", mapping
        )
    return mapping


def region_of(spec: TargetSpec, default: str | None) -> str | None:
    """The region in *spec*'s settings, else *default*."""
    region = spec.settings.get("region")
    return str(region) if region else default


def safe_name(text: str, pattern: str, limit: int) -> str:
    """*text* with each match of *pattern* replaced by ``_``, cut to *limit* characters."""
    return re.sub(pattern, "_", text)[:limit]


class BackupClient(AwsBackend):
    """An `AwsBackend` for AWS Backup: the caller's account, and a lookup by name in a listing."""

    def account(self) -> str:
        """The account id of the caller (STS)."""
        return str(self.call("sts", "get_caller_identity")["Account"])

    def find(
        self, operation: str, key: str, field: str, name: str, **params: Any
    ) -> Mapping[str, object] | None:
        """The first item of the *operation*'s pages under *key* whose *field* is *name*."""
        for page in self.paginate("backup", operation, **params):
            items: list[Mapping[str, object]] = page.get(key, [])
            for item in items:
                if item.get(field) == name:
                    return item
        return None
