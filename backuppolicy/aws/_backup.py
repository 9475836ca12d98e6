"""Shared by `backuppolicy.aws.awsbackup` and `backuppolicy.aws.backup_plan`: the client, regions."""

from __future__ import annotations

from typing import Any

from backuppolicy.aws._client import AwsBackend
from backuppolicy.core.policy import TargetSpec

__all__ = ["BackupClient", "region_of"]


def region_of(spec: TargetSpec, default: str | None) -> str | None:
    """The region in *spec*'s settings, else *default*."""
    region = spec.settings.get("region")
    return str(region) if region else default


class BackupClient(AwsBackend):
    """An `AwsBackend` for AWS Backup: the caller's account, and a lookup by name in a listing."""

    def account(self) -> str:
        """The account id of the caller (STS)."""
        return str(self.call("sts", "get_caller_identity")["Account"])

    def find(self, operation: str, key: str, field: str, name: str, **params: Any) -> Any:
        """The first item of the *operation*'s pages under *key* whose *field* is *name*."""
        for page in self.paginate("backup", operation, **params):
            for item in page.get(key, []):
                if item.get(field) == name:
                    return item
        return None
