"""The read-only ``aws-backup`` target: AWS Backup's recovery points as `RecoveryPoint` objects.

* `list_aws_backup_points` reads the recovery points of a backup vault back as `RecoveryPoint`
  objects (``kind="aws-backup"``, never managed: AWS Backup deletes them), so verification and
  audit cover them.
* `AwsBackupTarget` is the read-only ``aws-backup`` target kind built on it: it lists and
  refreshes points, and refuses to create, delete, copy or restore them.
* `resource_arn` is the ARN AWS Backup knows a target's resource by.

Compiling a policy to an AWS Backup plan, and applying it, is `backuppolicy.aws.backup_plan`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final

import boto3
from botocore.config import Config

from backuppolicy.aws._backup import BackupClient, aws_backup_of, region_of
from backuppolicy.aws._client import AwsBackend, RetryPolicy
from backuppolicy.aws._iam_statements import ACCOUNT, PARTITION, REGION, Grant, by_workflow
from backuppolicy.core.exceptions import PolicyError, ResourceNotFoundError
from backuppolicy.core.locks import PointLock
from backuppolicy.core.model import TAG_HOLD, LegalHold, RecoveryPoint, Status
from backuppolicy.core.policy import Policy, TargetSpec
from backuppolicy.core.targets import (
    AwsBackupMapping,
    Destination,
    IsolationProfile,
    RestoredResource,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient

__all__ = [
    "ACCOUNT_PLACEHOLDER",
    "AwsBackupTarget",
    "list_aws_backup_points",
    "resource_arn",
]

ACCOUNT_PLACEHOLDER: Final = "${AWS::AccountId}"
"""Stands for the account id in exported ARNs when none is given (CloudFormation's pseudo parameter)."""


_POINT_STATUS: Final = {
    "COMPLETED": Status.COMPLETED,
    "AVAILABLE": Status.COMPLETED,
    "PARTIAL": Status.PARTIAL,
    "CREATING": Status.PENDING,
    "DELETING": Status.PENDING,
    "EXPIRED": Status.FAILED,
    "STOPPED": Status.FAILED,
}


# --------------------------------------------------------------------------------------------
# ARNs


def resource_arn(
    spec: TargetSpec, *, region: str, account_id: str = ACCOUNT_PLACEHOLDER, partition: str = "aws"
) -> str | None:
    """The ARN AWS Backup knows the target's resource by, or ``None`` for kinds it cannot protect.

    Example:
        >>> spec = TargetSpec("shop-db", "rds-instance", settings={"db_instance_id": "shop"})
        >>> resource_arn(spec, region="eu-west-2", account_id="123456789012")
        'arn:aws:rds:eu-west-2:123456789012:db:shop'
    """
    mapping = aws_backup_of(spec)
    if mapping is None:
        return None
    return mapping.arn(spec.settings, partition=partition, region=region, account=account_id)


# --------------------------------------------------------------------------------------------
# Import: AWS Backup recovery points as RecoveryPoint


def _to_point(
    item: Mapping[str, Any], *, target: str | None, names: Mapping[str, str], tier: str
) -> RecoveryPoint:
    resource = str(item.get("ResourceArn", ""))
    status = _POINT_STATUS.get(str(item.get("Status", "")), Status.FAILED)
    created = item["CreationDate"]
    if isinstance(created, datetime) and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    name = (
        target
        or names.get(_arn_key(resource))
        or str(item.get("ResourceName") or "")
        or re.split(r"[:/]", resource)[-1]
        or "unknown"
    )
    return RecoveryPoint(
        id=str(item["RecoveryPointArn"]),
        target=name,
        created_at=created,
        kind="aws-backup",
        location=str(item.get("BackupVaultArn") or item.get("BackupVaultName", "")),
        tier=tier,
        status=status,
        size_bytes=item.get("BackupSizeInBytes", item.get("BackupSizeBytes")),
        encrypted=item.get("IsEncrypted", True if item.get("EncryptionKeyArn") else None),
        managed=False,
        details={
            "arn": item["RecoveryPointArn"],
            "resource_arn": resource,
            "resource_type": item.get("ResourceType"),
            "vault": item.get("BackupVaultName"),
            "kms_key_id": item.get("EncryptionKeyArn"),
            "lifecycle": item.get("Lifecycle"),
            "calculated_lifecycle": item.get("CalculatedLifecycle"),
            "created_by": item.get("CreatedBy"),
            "status": item.get("Status"),
        },
    )


def list_aws_backup_points(
    vault: str,
    *,
    session: boto3.Session | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    clients: Mapping[str, BaseClient] | None = None,
    retry: RetryPolicy | None = None,
    by_resource: str | None = None,
    policy: Policy | None = None,
    target: str | None = None,
    tier: str = "local",
) -> Iterator[RecoveryPoint]:
    """Stream the recovery points of an AWS Backup *vault* as `RecoveryPoint` objects.

    Every page is retried on its own and a page that finally fails raises, so a listing is
    never silently short. Points have ``kind="aws-backup"``, the recovery point ARN as ``id``,
    the vault ARN as ``location`` and ``managed=False``: AWS Backup deletes them by its lifecycle.
    Their ``target`` is *target*, else the name of the policy target whose ARN matches, else
    the resource's name or ARN.

    Args:
        vault: Backup vault name.
        session: A `boto3.Session`.
        region: Region of the vault.
        endpoint_url: Endpoint for the client.
        clients: Ready clients (``{"backup": client}``).
        retry: The `RetryPolicy`.
        by_resource: Only the points of the resource with this ARN.
        policy: Map resource ARNs to the names of its targets.
        target: Name every point after this target.
        tier: Tier of the points (``"local"``; ``"offsite"`` for a copy vault).
    """
    backend = BackupClient(
        f"aws-backup:{vault}",
        session=session,
        region=region,
        endpoint_url=endpoint_url,
        clients=clients,
        retry=retry,
    )
    names: dict[str, str] = {}
    if policy is not None:
        for spec in policy.targets:
            arn = resource_arn(spec, region=region_of(spec, backend.region) or "", account_id="")
            if arn:
                names[_arn_key(arn)] = spec.name
    params: dict[str, str] = {"BackupVaultName": vault}
    if by_resource:
        params["ByResourceArn"] = by_resource
    for page in backend.paginate(
        "backup", "list_recovery_points_by_backup_vault", resource=vault, **params
    ):
        for item in page.get("RecoveryPoints", []):
            yield _to_point(item, target=target, names=names, tier=tier)


_HOLD_PREFIX: Final = "backuppolicy hold on "


def _arn_key(arn: str) -> str:
    """*arn* without its account field, to match ARNs exported without the account id."""
    parts = arn.split(":", 5)
    if len(parts) == 6:  # noqa: PLR2004
        parts[4] = ""
    return ":".join(parts)


# --------------------------------------------------------------------------------------------
# The read-only "aws-backup" target


class AwsBackupTarget(AwsBackend):
    """A resource protected by AWS Backup, read-only: list, refresh and audit its recovery points.

    AWS Backup owns these points: it creates them on its plan's schedule and deletes them by
    its lifecycle. `create_backup`, `delete`, `copy` and `restore` therefore raise `PolicyError`
    saying so; run `apply_aws_backup` to change the schedule or the retention.

    Example:
        >>> target = AwsBackupTarget("arn:aws:rds:eu-west-2:123456789012:db:shop",
        ...                          vault="backuppolicy-web", name="shop-db", region="eu-west-2")
        >>> target.create_backup()
        Traceback (most recent call last):
        ...
        backuppolicy.core.exceptions.PolicyError: shop-db: expected a target that backuppolicy backs up (got 'aws-backup'). AWS Backup owns these recovery points: it creates them on its backup plan's schedule. Change the plan with `backuppolicy export aws-backup --apply`.

    Args:
        resource_arn: ARN of the protected resource.
        vault: Backup vault that holds its points (default: every vault, by resource).
        iam_role_arn: Role AWS Backup uses for it (recorded; not used to list).
        name: Target name (default: the ARN).
        policy: Policy name.
        session: A `boto3.Session`.
        region: Region of the vault.
        endpoint_url: Endpoint.
        clients: Ready clients (``{"backup": client}``).
        config: Extra botocore `Config`.
        retry: The `RetryPolicy`.
        tier: Tier of the points.

    Attributes:
        resource_arn: ARN of the protected resource.
        vault: Backup vault name, or ``None``.
        iam_role_arn: Role AWS Backup uses, or ``None``.
        policy: Policy name.
        tier: Tier of the points.
    """

    def __init__(
        self,
        resource_arn: str,
        *,
        vault: str | None = None,
        iam_role_arn: str | None = None,
        name: str | None = None,
        policy: str = "default",
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, BaseClient] | None = None,
        config: Config | None = None,
        retry: RetryPolicy | None = None,
        tier: str = "local",
    ) -> None:
        if not isinstance(resource_arn, str) or not resource_arn.startswith("arn:"):
            raise PolicyError.for_field("resource_arn", "an ARN", resource_arn)
        super().__init__(
            name or resource_arn,
            session=session,
            region=region,
            endpoint_url=endpoint_url,
            clients=clients,
            config=config,
            retry=retry,
        )
        self.resource_arn = resource_arn
        self.vault = vault
        self.iam_role_arn = iam_role_arn
        self.policy = policy
        self.tier = tier

    # -- the kind (from_spec, iam_actions) ----------------------------------------------

    needs_aws_session: ClassVar[bool] = True
    """Targets of this kind call AWS: `backuppolicy.build_targets` makes them a session."""

    @classmethod
    def from_spec(
        cls,
        spec: TargetSpec,
        policy: Policy,
        *,
        session: boto3.Session | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> AwsBackupTarget:
        """The target of *spec*: its ``resource_arn`` and other settings, its region (default *region*)."""
        settings = {
            k: v
            for k, v in spec.settings.items()
            if k not in {"resource_arn", "region", "kms_key_id"}
        }
        return cls(
            spec.settings["resource_arn"],
            **settings,
            name=spec.name,
            policy=policy.name,
            session=session,
            endpoint_url=endpoint_url,
            region=spec.settings.get("region") or region,
        )

    @classmethod
    def aws_backup(cls, spec: TargetSpec) -> AwsBackupMapping:  # noqa: ARG003 - the same for every spec
        """Selected by its ``resource_arn``; its resource type is unknown, so it is not restore-tested."""
        return AwsBackupMapping("{resource_arn}")

    @classmethod
    def iam_actions(cls, spec: TargetSpec) -> dict[str, list[dict[str, object]]]:
        """The IAM statements of each workflow (`backuppolicy.aws.iam_policy` fills them in)."""
        vault = spec.settings.get("vault")
        where = f"arn:{PARTITION}:backup:{REGION}:{ACCOUNT}"
        vault_arn = f"{where}:backup-vault:{vault or '*'}"
        reads = (
            ("backup:ListRecoveryPointsByBackupVault",)
            if vault
            else ("backup:ListRecoveryPointsByResource",)
        )
        # ListRecoveryPointsByResource supports no resource-level permissions: "*" is the only
        # resource that grants it (the resource's ARN grants nothing).
        return by_workflow(
            [
                Grant((), reads, (vault_arn,) if vault else ("*",)),
                Grant(
                    ("prune", "verify"),
                    ("backup:DescribeRecoveryPoint",),
                    (vault_arn, f"{where}:recovery-point:*"),
                ),
                # AWS Backup legal holds: created with the hold tag, cancelled by id, listed to
                # find ours (ListLegalHolds supports no resource-level permissions).
                Grant(
                    ("holds",),
                    ("backup:CreateLegalHold",),
                    (f"{where}:legal-hold:*",),
                    {"Null": {f"aws:RequestTag/{TAG_HOLD}": "false"}},
                ),
                Grant(("holds",), ("backup:CancelLegalHold",), (f"{where}:legal-hold:*",)),
                Grant(("holds",), ("backup:ListLegalHolds",), ("*",)),
            ]
        )

    def __repr__(self) -> str:
        return f"<backuppolicy.aws.AwsBackupTarget(resource_arn={self.resource_arn!r}, vault={self.vault!r})>"

    @property
    def kind(self) -> str:
        """Registered target kind: ``"aws-backup"``."""
        return "aws-backup"

    def _refuse(self, what: str) -> PolicyError:
        return PolicyError.for_field(
            self.name,
            "a target that backuppolicy backs up",
            "aws-backup",
            hint=f"AWS Backup owns these recovery points: {what} "
            "Change the plan with `backuppolicy export aws-backup --apply`.",
        )

    def create_backup(
        self,
        *,
        reason: str = "scheduled",  # noqa: ARG002 - the protocol's signature
        tags: Mapping[str, str] | None = None,  # noqa: ARG002
        token: str | None = None,  # noqa: ARG002
    ) -> RecoveryPoint:
        """Refused: AWS Backup creates these points on its plan's schedule."""
        raise self._refuse("it creates them on its backup plan's schedule.")

    def list_points(self) -> Iterator[RecoveryPoint]:
        """Stream the resource's recovery points (by vault, or in every vault by resource)."""
        if self.vault:
            params: dict[str, str] = {
                "BackupVaultName": self.vault,
                "ByResourceArn": self.resource_arn,
            }
            operation = "list_recovery_points_by_backup_vault"
        else:
            params = {"ResourceArn": self.resource_arn}
            operation = "list_recovery_points_by_resource"
        for page in self.paginate("backup", operation, resource=self.resource_arn, **params):
            for item in page.get("RecoveryPoints", []):
                full = {"ResourceArn": self.resource_arn, **item}
                yield _to_point(full, target=self.name, names={}, tier=self.tier)

    def refresh(self, point: RecoveryPoint) -> RecoveryPoint | None:
        """Re-read *point* with ``DescribeRecoveryPoint``; ``None`` if it is gone."""
        vault = point.details.get("vault") or self.vault
        try:
            item = self.call(
                "backup",
                "describe_recovery_point",
                resource=point.id,
                BackupVaultName=vault,
                RecoveryPointArn=point.id,
            )
        except ResourceNotFoundError:
            return None
        return _to_point(item, target=self.name, names={}, tier=point.tier)

    def delete(self, point: RecoveryPoint) -> None:
        """Refused: AWS Backup deletes these points by its lifecycle."""
        raise self._refuse(f"it deletes {point.id!r} by its lifecycle (DeleteAfterDays).")

    # -- legal holds, enforced by AWS Backup itself ------------------------------------------

    def place_hold(self, point: RecoveryPoint, hold: LegalHold) -> RecoveryPoint:
        """Put *point* under an AWS Backup legal hold (``CreateLegalHold``); return it held.

        The legal hold selects this resource's recovery points in the point's vault created
        at the point's creation time; AWS Backup refuses to delete them (its lifecycle too)
        until the hold is cancelled. The hold's description names the point, so `release_hold`
        finds it again; the same hold on the same point is created once (idempotency token).
        """
        if not isinstance(hold, LegalHold):
            raise PolicyError.for_field("hold", "a backuppolicy.LegalHold", hold)
        vault = point.details.get("vault") or self.vault
        if not vault:
            raise PolicyError.for_field("point.details.vault", "the recovery point's vault", None)
        title = (hold.reference or hold.reason or "legal hold")[:100]
        token = hashlib.sha256(f"{point.id}|{hold.to_tag()}".encode()).hexdigest()[:32]
        result = self.call(
            "backup",
            "create_legal_hold",
            resource=point.id,
            Title=title,
            Description=f"{_HOLD_PREFIX}{point.id} {hold.to_tag()}"[:1000],
            IdempotencyToken=token,
            RecoveryPointSelection={
                "VaultNames": [str(vault)],
                "ResourceIdentifiers": [
                    str(point.details.get("resource_arn") or self.resource_arn)
                ],
                "DateRange": {"FromDate": point.created_at, "ToDate": point.created_at},
            },
            Tags={TAG_HOLD: hold.to_tag()[:256]},
        )
        details = {**point.details, "legal_hold_id": result.get("LegalHoldId")}
        lock = PointLock("legal-hold", None, source="aws-backup-legal-hold")
        return point.evolve(legal_hold=hold, lock=lock, details=details)

    def release_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Cancel every active AWS Backup legal hold this library placed on *point*."""
        for page in self.paginate("backup", "list_legal_holds", resource=point.id):
            for item in page.get("LegalHolds", []):
                description = str(item.get("Description", ""))
                if item.get("Status") not in {"ACTIVE", "CREATING"}:
                    continue
                if not description.startswith(f"{_HOLD_PREFIX}{point.id} "):
                    continue
                self.call(
                    "backup",
                    "cancel_legal_hold",
                    resource=point.id,
                    LegalHoldId=str(item["LegalHoldId"]),
                    CancelDescription="released with backuppolicy",
                )
        return point.evolve(legal_hold=None, lock=None)

    def copy(self, point: RecoveryPoint, destination: Destination) -> RecoveryPoint:
        """Refused: copies are the plan's ``CopyActions``."""
        raise self._refuse(
            f"copies of {point.id!r} to {destination.tier} are the plan's CopyActions."
        )

    def restore(
        self, point: RecoveryPoint, into: IsolationProfile | None = None
    ) -> AbstractContextManager[RestoredResource]:
        """Refused: restore tests of these points are AWS Backup's restore testing plan."""
        del into
        raise self._refuse(f"restore tests of {point.id!r} are its restore testing plan.")
