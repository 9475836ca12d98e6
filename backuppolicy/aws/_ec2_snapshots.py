"""The snapshots of the EC2 and EBS targets: create (tags, tokens), copy, delete, hold, sharing.

`Ec2Snapshots` is the mixin of `EbsVolume` and `Ec2Instance`. Copies to another region are
encrypted with the destination's KMS key; deletes re-read the point and name the AMI
that still uses a snapshot.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, cast

from backuppolicy.aws._ec2_base import (
    KIND_EBS_SNAPSHOT,
    KIND_INSTANCE_BACKUP,
    TAG_GROUP,
    TAG_GROUP_SIZE,
    TAG_SOURCE_GROUP,
    TAG_SOURCE_REGION,
    TAG_SOURCE_SNAPSHOT,
    Ec2Base,
    tag_dict,
    tag_list,
)
from backuppolicy.core.exceptions import (
    BackendError,
    PolicyError,
    ProtectedPointError,
    ResourceNotFoundError,
)
from backuppolicy.core.model import (
    TAG_HOLD,
    TAG_POLICY,
    TAG_REASON,
    TAG_TARGET,
    TAG_TIER,
    TAG_TOKEN,
    LegalHold,
    RecoveryPoint,
    Status,
)
from backuppolicy.core.targets import (
    Destination,
)

if TYPE_CHECKING:
    from types_boto3_ec2.type_defs import SnapshotTypeDef

    from backuppolicy.aws._offsite import OffsiteAccount

__all__ = ["Ec2Snapshots"]

_log = logging.getLogger(__name__)

_RESERVED_PREFIX = "backuppolicy:"
_AMI_RE = re.compile(r"\bami-[0-9a-zA-Z]+\b")
_IN_USE = "InvalidSnapshot.InUse"


class Ec2Snapshots(Ec2Base):
    """Creates, copies, deletes and holds the snapshots of the volume or instance."""

    # -- creating -------------------------------------------------------------------------

    def _creation_tags(
        self, *, reason: str, tags: Mapping[str, str] | None, token: str
    ) -> dict[str, str]:
        if not isinstance(reason, str) or not reason:
            raise PolicyError.for_field("reason", "a non-empty string", reason)
        merged: dict[str, str] = {}
        for key, value in (tags or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise PolicyError.for_field(f"tags[{key!r}]", "a str value under a str key", value)
            if key.startswith(_RESERVED_PREFIX):
                raise PolicyError.for_field(
                    f"tags[{key!r}]", f"a key outside the reserved {_RESERVED_PREFIX!r} prefix", key
                )
            merged[key] = value
        merged.update(
            {
                TAG_POLICY: self.policy,
                TAG_TARGET: self.name,
                TAG_REASON: reason,
                TAG_TOKEN: token,
                TAG_TIER: "local",
            }
        )
        return merged

    @staticmethod
    def _token(token: str | None) -> str:
        if token is None:
            return uuid.uuid4().hex
        if not isinstance(token, str) or not token:
            raise PolicyError.for_field("token", "None or a non-empty string", token)
        return token

    # -- copying --------------------------------------------------------------------------

    def _check_destination(self, destination: Destination) -> tuple[str, str | None]:
        if not isinstance(destination, Destination):
            raise PolicyError.for_field("destination", "a backuppolicy.Destination", destination)
        region = destination.region
        if not isinstance(region, str) or not region:
            raise PolicyError.for_field("destination.region", "an AWS region name", region)
        key = destination.kms_key_id
        if key is not None and (not isinstance(key, str) or not key):
            raise PolicyError.for_field("destination.kms_key_id", "None or a KMS key id", key)
        if key is None and self.encrypt_copies:
            self._need_key(region, "the target was created with encrypt_copies=True")
        if destination.account is not None and destination.account != self.account_id:
            raise PolicyError.for_field(
                "destination.account",
                f"None or this account {self.account_id!r} (cross-account EBS copies need "
                "snapshot sharing, which this target does not do)",
                destination.account,
            )
        return region, key

    @staticmethod
    def _need_key(region: str, why: str) -> NoReturn:
        raise PolicyError.for_field(
            "destination.kms_key_id",
            f"a KMS key id or ARN in {region} ({why})",
            None,
            hint="EC2 would otherwise use the region's default key, or copy unencrypted.",
        )

    def copy(self, point: RecoveryPoint, destination: Destination) -> RecoveryPoint:
        """Copy *point* to *destination*'s region, encrypted with its KMS key, and return the copy.

        Copying again returns the existing copy (found by the `TAG_SOURCE_SNAPSHOT` tag).
        An instance backup is copied snapshot by snapshot (at most ``max_workers`` at once)
        and the copies form one point again.

        Raises:
            PolicyError: No destination region, or no ``destination.kms_key_id`` although
                the point is encrypted or the target was made with ``encrypt_copies=True``.
                Nothing was called.
            BackendError: The point is not completed.
        """
        dest_region, key = self._check_destination(destination)
        if point.encrypted is None and key is None:
            point = self._reread(point)  # is the source encrypted? We must know before copying.
        if key is None and point.encrypted:
            self._need_key(dest_region, f"point {point.id!r} is encrypted")
        if point.status is not Status.COMPLETED:
            self._incomplete(point, "CopySnapshot", "copy")
        source_region = self._region_of(point) or self.region
        snapshots = [s for s in point.details.get("snapshots", ()) if isinstance(s, Mapping)]
        if not snapshots:
            snapshots = [{"snapshot_id": point.id}]
        group = f"{point.id}-{dest_region}" if point.kind == KIND_INSTANCE_BACKUP else None
        base_tags = self._copy_tags(point, destination, source_region, group, len(snapshots))

        def one(member: Mapping[str, Any]) -> str:
            source_id = str(member["snapshot_id"])
            existing = self._copies_of(source_id, dest_region)
            if existing:
                return existing[0]
            tags = {**base_tags, TAG_SOURCE_SNAPSHOT: source_id}
            params: dict[str, Any] = {
                "SourceRegion": source_region,
                "SourceSnapshotId": source_id,
                "Description": f"backuppolicy copy of {source_id} ({source_region}) for {self.name}",
                "TagSpecifications": [{"ResourceType": "snapshot", "Tags": tag_list(tags)}],
            }
            if key is not None:
                params["Encrypted"] = True
                params["KmsKeyId"] = key
            result = self.call(
                "ec2", "copy_snapshot", resource=source_id, region=dest_region, **params
            )
            return str(result["SnapshotId"])

        copy_ids = self._fan_out(one, snapshots)
        # The copies keep their sources' volumes: name their devices as the listing does.
        devices = {
            str(m["volume_id"]): str(m["device"])
            for m in snapshots
            if m.get("volume_id") and m.get("device")
        }
        if group is not None:
            found = self._find_by_tag(TAG_GROUP, group, dest_region, devices)
        else:
            found = self._find_by_tag(TAG_SOURCE_SNAPSHOT, point.id, dest_region, devices)
            found = [p for p in found if p.id in copy_ids] or found
        if not found:
            raise BackendError(
                f"{self.name}: copies {copy_ids} of {point.id!r} are not listed in {dest_region}",
                backend=self.name,
                operation="DescribeSnapshots",
                resource=point.id,
            )
        return found[0]

    def _copy_tags(
        self,
        point: RecoveryPoint,
        destination: Destination,
        source_region: str,
        group: str | None,
        size: int,
    ) -> dict[str, str]:
        # No hold (it is the source's) and no token (a same-region copy must not answer
        # create_backup's token lookup).
        tags = {
            k: v
            for k, v in point.tags.items()
            if k not in {TAG_HOLD, TAG_TOKEN, TAG_SOURCE_SNAPSHOT}
        }
        tags.update(
            {
                TAG_POLICY: self.policy,
                TAG_TARGET: self.name,
                TAG_TIER: destination.tier,
                TAG_SOURCE_REGION: source_region,
            }
        )
        if group is not None:
            tags.update({TAG_GROUP: group, TAG_SOURCE_GROUP: point.id, TAG_GROUP_SIZE: str(size)})
        return tags

    # -- copying across accounts (`backuppolicy.aws._offsite`) ----------------------------

    def existing_copy(self, point: RecoveryPoint, account: OffsiteAccount) -> RecoveryPoint | None:
        """In the backup account (this target is its backend): the copy of *point*, if made.

        An instance backup's copy counts only once every snapshot of it was copied (a copy
        that failed half-way is completed by the next `copy_shared`).
        """
        if point.kind == KIND_INSTANCE_BACKUP:
            group = f"{point.id}-{account.region}"
            found = self._find_by_tag(TAG_GROUP, group, account.region, {})
            return next(
                (
                    p
                    for p in found
                    if len(p.details.get("snapshot_ids", ())) >= int(p.details.get("group_size", 1))
                ),
                None,
            )
        ids = self._copies_of(point.id, account.region)
        if not ids:
            return None
        found = self._find_by_tag(TAG_SOURCE_SNAPSHOT, point.id, account.region, {})
        return next((p for p in found if p.id in ids), None)

    def copy_shared(
        self, point: RecoveryPoint, source_id: str, account: OffsiteAccount
    ) -> RecoveryPoint:
        """In the backup account: copy the snapshot *source_id* shared with it, with its key.

        The copy is encrypted with ``account.kms_key_id`` (a key of the copying account) and
        tagged as ours, with the `TAG_SOURCE_SNAPSHOT` tag that makes a re-run find it. An
        instance backup is copied snapshot by snapshot (`copy_shared_group`).
        """
        if point.kind == KIND_INSTANCE_BACKUP:
            return self.copy_shared_group(point, account)
        source_region = self._region_of(point) or self.region
        destination = Destination(tier=account.tier, region=account.region)
        tags = {
            **self._copy_tags(point, destination, source_region, None, 1),
            TAG_SOURCE_SNAPSHOT: source_id,
        }
        result = self._start_copy(source_id, source_region, account, tags)
        snapshot: dict[str, Any] = {
            "SnapshotId": str(result["SnapshotId"]),
            "StartTime": point.created_at,
            "State": "pending",
            "OwnerId": self.account_id,
            "Encrypted": True,
            "KmsKeyId": account.kms_key_id,
            "VolumeSize": point.details.get("snapshots", [{}])[0].get("size_gib"),
            "Tags": tag_list(tags),
        }
        return self._point(cast("SnapshotTypeDef", snapshot), account.region, {})

    def _start_copy(
        self, source_id: str, source_region: str, account: OffsiteAccount, tags: dict[str, str]
    ) -> dict[str, Any]:
        """Start the encrypted ``CopySnapshot`` of *source_id* into *account*'s region, tagged."""
        result: dict[str, Any] = self.call(
            "ec2",
            "copy_snapshot",
            resource=source_id,
            region=account.region,
            SourceRegion=source_region,
            SourceSnapshotId=source_id,
            Description=f"backuppolicy copy of {source_id} ({source_region}) for {self.name}",
            Encrypted=True,
            KmsKeyId=account.kms_key_id,
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": tag_list(tags)}],
        )
        return result

    def copy_shared_group(self, point: RecoveryPoint, account: OffsiteAccount) -> RecoveryPoint:
        """In the backup account: copy every snapshot of the instance backup *point*, shared with it.

        Each copy is tagged with the group ``<point id>-<region>`` (and the group's size), so
        the copies form one point of the tier. A snapshot copied by an earlier, failed run is
        not copied again. ``CopySnapshot`` only starts a copy, so the snapshots are started
        one after another.

        Raises:
            BackendError: A copy failed (the copies started before it stay, tagged with the
                group: the next run completes the group).
        """
        source_region = self._region_of(point) or self.region
        destination = Destination(tier=account.tier, region=account.region)
        members = self._member_ids(point)
        group = f"{point.id}-{account.region}"
        base_tags = self._copy_tags(point, destination, source_region, group, len(members))
        for source_id in members:
            if self._copies_of(source_id, account.region):
                continue
            tags = {**base_tags, TAG_SOURCE_SNAPSHOT: source_id}
            self._start_copy(source_id, source_region, account, tags)
        found = self._find_by_tag(TAG_GROUP, group, account.region, {})
        if not found:
            raise BackendError(
                f"{self.name}: copies of {point.id!r} are not listed in {account.region} of "
                f"account {account.account_id}",
                backend=self.name,
                operation="DescribeSnapshots",
                resource=point.id,
            )
        return found[0]

    @staticmethod
    def _member_ids(point: RecoveryPoint) -> list[str]:
        """The snapshot ids of *point*: its own, or every snapshot of an instance backup."""
        ids = [
            str(m["snapshot_id"])
            for m in point.details.get("snapshots", ())
            if isinstance(m, Mapping) and m.get("snapshot_id")
        ]
        return ids or [point.id]

    def _check_shareable(self, point: RecoveryPoint) -> None:
        """Refuse a point not completed, or one under the default key."""
        if point.status is not Status.COMPLETED:
            self._incomplete(point, "ModifySnapshotAttribute", "sharing")
        keys = point.details.get("kms_key_ids") or [point.details.get("kms_key_id")]
        for key in keys if point.encrypted else ():
            self._check_key_shareable(point, key)

    def _check_key_shareable(self, point: RecoveryPoint, key: object) -> None:
        """Refuse sharing a snapshot under *key* when it is an AWS managed key (``aws/ebs``)."""
        if key:
            described = self.call(
                "kms",
                "describe_key",
                resource=str(key),
                region=self._region_of(point) or self.region,
                KeyId=str(key),
            )
            if described.get("KeyMetadata", {}).get("KeyManager") == "AWS":
                raise PolicyError.for_field(
                    "point.kms_key_id",
                    "a customer managed key (AWS refuses to share snapshots encrypted with the "
                    "default aws/ebs key; copy it with a key whose policy lets the backup "
                    "account use it)",
                    key,
                )

    def _permission(
        self, point: RecoveryPoint, account_id: str, operation: str, snapshot_id: str | None = None
    ) -> None:
        snapshot_id = snapshot_id or point.id
        self.call(
            "ec2",
            "modify_snapshot_attribute",
            resource=snapshot_id,
            region=self._region_of(point) or self.region,
            SnapshotId=snapshot_id,
            Attribute="createVolumePermission",
            OperationType=operation,
            UserIds=[account_id],
        )

    def _share(self, point: RecoveryPoint, account_id: str) -> str:
        """Let *account_id* copy the snapshot(s) (``createVolumePermission``); return the point's id.

        An instance backup shares each of its snapshots; when one share fails, those already
        shared are unshared before the error is raised.
        """
        shared: list[str] = []
        try:
            for snapshot_id in self._member_ids(point):
                self._permission(point, account_id, "add", snapshot_id)
                shared.append(snapshot_id)
        except BaseException:
            for snapshot_id in shared:
                try:
                    self._permission(point, account_id, "remove", snapshot_id)
                except BackendError as exc:
                    exc.add_note(f"snapshot {snapshot_id!r} is still shared with {account_id}")
                    _log.error("%s: %s", self.name, exc)
            raise
        return point.id

    def _unshare(self, point: RecoveryPoint, account_id: str) -> None:
        """Remove *account_id*'s ``createVolumePermission`` from every snapshot of *point*.

        Every snapshot is tried, also after one fails; then the first error is raised.
        """
        errors: list[BackendError] = []
        for snapshot_id in self._member_ids(point):
            try:
                self._permission(point, account_id, "remove", snapshot_id)
            except BackendError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def _copies_of(self, source_id: str, region: str) -> list[str]:
        filters = [
            *self._ownership_filters(),
            {"Name": f"tag:{TAG_SOURCE_SNAPSHOT}", "Values": [source_id]},
        ]
        return [
            str(s["SnapshotId"])
            for s in self._describe(region, filters)
            if tag_dict(s).get(TAG_SOURCE_SNAPSHOT) == source_id and self._is_ours(tag_dict(s))
        ]

    def _fan_out(
        self, func: Callable[[Mapping[str, Any]], str], items: Sequence[Mapping[str, Any]]
    ) -> list[str]:
        """Run *func* over *items* with at most ``max_workers`` at once; errors are raised."""
        if len(items) <= 1 or self.max_workers == 1:
            return [func(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(items))) as pool:
            futures = [pool.submit(func, item) for item in items]
            return [future.result() for future in futures]

    # -- deleting -------------------------------------------------------------------------

    def _refuse(self, point: RecoveryPoint) -> None:
        why = ""
        if not point.managed:
            why = f"it is not managed by policy {self.policy!r} of target {self.name!r}"
        elif point.held:
            assert point.legal_hold is not None  # noqa: S101 - narrowed by point.held
            why = f"it is under {point.legal_hold.describe()}"
        elif point.status is Status.PENDING:
            why = "it is still pending"
        elif point.lock is not None and point.lock.active(datetime.now(UTC)):
            why = f"it is {point.lock.describe()} (EBS snapshot lock)"
        if why:
            raise ProtectedPointError(
                f"{self.name}: refused to delete point {point.id!r}: {why}. Nothing was deleted.",
                point=point,
            )

    def delete(self, point: RecoveryPoint) -> None:
        """Delete *point* (every snapshot of an instance backup).

        The point is re-read first and checked again, so a hold placed in the meantime
        still protects it.

        Raises:
            ProtectedPointError: The point is unmanaged, held or pending; nothing deleted.
            ResourceNotFoundError: The point does not exist.
            BackendError: A snapshot is used by an AMI (code ``InvalidSnapshot.InUse``; the
                message names the AMI to deregister first).
        """
        self._refuse(point)
        fresh = self.refresh(point)
        if fresh is None:
            raise ResourceNotFoundError(
                f"{self.name}: point {point.id!r} does not exist (any more)",
                backend=self.name,
                operation="DeleteSnapshot",
                resource=point.id,
            )
        self._refuse(fresh)
        region = self._region_of(fresh) or self.region
        deleted: list[str] = []
        # Sequential on purpose: an instance backup has a handful of snapshots, and stopping
        # at the first AMI-referenced one keeps the rest of the group intact.
        for snapshot_id in fresh.details.get("snapshot_ids", [fresh.id]):
            self._delete_snapshot(fresh, str(snapshot_id), region, deleted)
            deleted.append(str(snapshot_id))

    def _delete_snapshot(
        self, point: RecoveryPoint, snapshot_id: str, region: str, deleted: Sequence[str]
    ) -> None:
        try:
            self.call(
                "ec2",
                "delete_snapshot",
                resource=snapshot_id,
                region=region,
                SnapshotId=snapshot_id,
            )
        except ResourceNotFoundError:
            # We saw it a moment ago: a retried DeleteSnapshot whose first attempt went
            # through (the response was lost), or a concurrent delete. Either way it is gone.
            return
        except BackendError as exc:
            if exc.code != _IN_USE:
                raise
            ami = self._ami_using(snapshot_id, region, str(exc))
            user = f"AMI {ami}" if ami else "an AMI"
            done = f" Already deleted from this point: {', '.join(deleted)}." if deleted else ""
            fix = f"deregister {ami} first" if ami else "deregister the AMI first"
            message = (
                f"{self.name}: cannot delete snapshot {snapshot_id} of point {point.id!r}: "
                f"it is used by {user}; {fix} or keep the point.{done}"
            )
            raise BackendError(
                message,
                backend=self.name,
                operation=exc.operation,
                resource=snapshot_id,
                code=exc.code,
            ) from exc

    def _ami_using(self, snapshot_id: str, region: str, message: str) -> str | None:
        found = _AMI_RE.search(message)
        if found:
            return found.group(0)
        try:
            result = self.call(
                "ec2",
                "describe_images",
                resource=snapshot_id,
                region=region,
                Owners=["self"],
                Filters=[{"Name": "block-device-mapping.snapshot-id", "Values": [snapshot_id]}],
            )
        except BackendError:
            return None
        images = result.get("Images") or []
        return str(images[0]["ImageId"]) if images else None

    # -- holds ----------------------------------------------------------------------------

    def place_hold(self, point: RecoveryPoint, hold: LegalHold) -> RecoveryPoint:
        """Put *hold* on every snapshot of *point* (tag `TAG_HOLD`) and return the re-read point."""
        if not isinstance(hold, LegalHold):
            raise PolicyError.for_field("hold", "a backuppolicy.LegalHold", hold)
        region = self._region_of(point) or self.region
        self.call(
            "ec2",
            "create_tags",
            resource=point.id,
            region=region,
            Resources=list(point.details.get("snapshot_ids", [point.id])),
            Tags=[{"Key": TAG_HOLD, "Value": hold.to_tag()}],
        )
        return self._reread(point)

    def release_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Remove the legal hold tag from every snapshot of *point*; return the re-read point."""
        region = self._region_of(point) or self.region
        self.call(
            "ec2",
            "delete_tags",
            resource=point.id,
            region=region,
            Resources=list(point.details.get("snapshot_ids", [point.id])),
            Tags=[{"Key": TAG_HOLD}],
        )
        return self._reread(point)

    def _reread(self, point: RecoveryPoint) -> RecoveryPoint:
        fresh = self.refresh(point)
        if fresh is None:
            raise ResourceNotFoundError(
                f"{self.name}: point {point.id!r} does not exist (any more)",
                backend=self.name,
                operation="DescribeSnapshots",
                resource=point.id,
            )
        return fresh

    # Verify capabilities (`SnapshotPoints`, `PointSharing`, `Sweepable`) ----------------------

    def point_snapshot_ids(self, point: RecoveryPoint) -> list[str] | None:
        """The snapshots of *point* (each snapshot of an instance backup); ``None``: not ours."""
        if point.kind not in (KIND_EBS_SNAPSHOT, KIND_INSTANCE_BACKUP):
            return None
        return [str(s) for s in point.details.get("snapshot_ids") or [point.id]]

    def point_sharing(
        self, point: RecoveryPoint | None, *, region: str | None
    ) -> tuple[dict[str, Any], list[str]] | None:
        """Whether a snapshot of *point* lets everyone create volumes (``group=all``)."""
        ids = None if point is None else self.point_snapshot_ids(point)
        if ids is None:
            return None
        shared: dict[str, list[str]] = {}
        issues: list[str] = []
        for snapshot_id in ids:
            result = self.call(
                "ec2",
                "describe_snapshot_attribute",
                resource=snapshot_id,
                region=region,
                SnapshotId=snapshot_id,
                Attribute="createVolumePermission",
            )
            perms = result.get("CreateVolumePermissions", [])
            shared[snapshot_id] = [
                str(p.get("Group") or p.get("UserId"))
                for p in perms
                if p.get("Group") or p.get("UserId")
            ]
            if any(p.get("Group") == "all" for p in perms):
                issues.append(
                    f"snapshot {snapshot_id}: createVolumePermission shared with group 'all'"
                )
        return {"create_volume_permissions": shared}, issues
