"""Restores of the EC2 and EBS targets: volumes from snapshots, and the instance operations.

`Ec2Restores` is the mixin of `EbsVolume` and `Ec2Instance`: the restore-test workflow
(volumes made from each snapshot of a point, waited for, deleted on exit), the
``RestorableVolumes`` operations of the restore workflow and the ``RecoverableInstance``
operations of the recovery drills.
"""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from backuppolicy.aws._ec2_base import TAG_SOURCE_SNAPSHOT, Ec2Base, tag_list
from backuppolicy.core.exceptions import (
    BackendError,
    PolicyError,
    ResourceNotFoundError,
)
from backuppolicy.core.model import (
    TAG_POLICY,
    TAG_TARGET,
    RecoveryPoint,
    Status,
)
from backuppolicy.core.targets import (
    IsolationProfile,
    RestoredResource,
)

__all__ = ["Ec2Restores"]


class Ec2Restores(Ec2Base):
    """Restores volumes from the points, and runs the instance operations of restores and drills."""

    # -- restoring ------------------------------------------------------------------------

    def restore(
        self, point: RecoveryPoint, into: IsolationProfile | None = None
    ) -> contextlib.AbstractContextManager[RestoredResource]:
        """Create a volume from each snapshot of *point*; delete them when the context exits.

        The volumes are made in ``into.availability_zone`` (default: the region's first
        zone), tagged with ``into.sweep_tag`` and ``into.tags``, and waited for until
        ``available`` (polling every ``poll_interval`` seconds, at most ``wait_timeout``).
        They are deleted on exit, also when the block or the wait raised.

        Raises:
            PolicyError: The zone is not in the point's region.
            BackendError: The point is not completed, or a volume went to ``error`` or was
                not available in time.
        """
        if point.status is not Status.COMPLETED:
            self._incomplete(point, "CreateVolume", "restore")
        return self._restore(point, into or IsolationProfile())

    @contextlib.contextmanager
    def _restore(
        self, point: RecoveryPoint, profile: IsolationProfile
    ) -> Iterator[RestoredResource]:
        region = self._region_of(point) or self.region
        zone = profile.availability_zone
        if zone is not None and not zone.startswith(region):
            raise PolicyError.for_field(
                "into.availability_zone", f"a zone of {region} (where the point is)", zone
            )
        members = [s for s in point.details.get("snapshots", ()) if isinstance(s, Mapping)]
        if not members:
            members = [{"snapshot_id": point.id}]
        created: list[dict[str, Any]] = []
        try:
            zone = zone or self.first_zone(region)
            for member in members:
                snapshot_id = str(member["snapshot_id"])
                tags = {
                    **profile.tags,
                    "Name": f"{profile.name_prefix}{point.id}",
                    profile.sweep_tag: point.id,
                    TAG_POLICY: self.policy,
                    TAG_TARGET: self.name,
                    TAG_SOURCE_SNAPSHOT: snapshot_id,
                }
                volume = self.call(
                    "ec2",
                    "create_volume",
                    resource=snapshot_id,
                    region=region,
                    SnapshotId=snapshot_id,
                    AvailabilityZone=zone,
                    ClientToken=uuid.uuid4().hex,  # the same token on retries: no duplicates
                    TagSpecifications=[{"ResourceType": "volume", "Tags": tag_list(tags)}],
                )
                created.append(
                    {
                        "volume_id": volume["VolumeId"],
                        "snapshot_id": snapshot_id,
                        "source_volume_id": member.get("volume_id"),
                        "device": member.get("device"),
                    }
                )
            self._wait_available([str(v["volume_id"]) for v in created], region, point)
            ids = [str(v["volume_id"]) for v in created]
            yield RestoredResource(
                id=ids[0] if len(ids) == 1 else ",".join(ids),
                kind="ebs-volume" if len(ids) == 1 else "ebs-volumes",
                point=point,
                details={"region": region, "availability_zone": zone, "volumes": created},
            )
        except BaseException as exc:
            for error in self._teardown(created, region):
                exc.add_note(f"teardown: {error}")
            raise
        else:
            errors = self._teardown(created, region)
            if errors:
                raise errors[0]

    # ----------------------------------------------------------------- restores: RestorableVolumes

    def describe_instance(
        self, instance_id: str, region: str | None = None
    ) -> dict[str, Any] | None:
        """The instance *instance_id* as EC2 describes it; ``None`` if it does not exist."""
        try:
            found = self.call(
                "ec2",
                "describe_instances",
                resource=instance_id,
                region=region,
                InstanceIds=[instance_id],
            )
        except ResourceNotFoundError:
            return None
        for reservation in found.get("Reservations", ()):
            for item in reservation.get("Instances", ()):
                return dict(item)
        return None

    def volumes_tagged(self, key: str, value: str, *, region: str) -> list[dict[str, Any]]:
        """The volumes that carry the tag *key* = *value*, as EC2 describes them."""
        found = self.call(
            "ec2",
            "describe_volumes",
            region=region,
            Filters=[{"Name": f"tag:{key}", "Values": [value]}],
        )
        return list(found.get("Volumes", ()))

    def volume_states(self, volume_ids: list[str], *, region: str | None) -> dict[str, str]:
        """Volume id -> its state (``"available"``, ``"in-use"``) of the volumes *volume_ids*."""
        found = self.call("ec2", "describe_volumes", region=region, VolumeIds=volume_ids)
        return {str(v["VolumeId"]): str(v.get("State")) for v in found.get("Volumes", ())}

    def create_volume_from(
        self,
        snapshot_id: str,
        *,
        zone: str,
        region: str,
        client_token: str,
        tags: Mapping[str, str],
    ) -> str:
        """Start creating a volume from *snapshot_id* in *zone*; return its id."""
        created = self.call(
            "ec2",
            "create_volume",
            resource=snapshot_id,
            region=region,
            SnapshotId=snapshot_id,
            AvailabilityZone=zone,
            ClientToken=client_token,
            TagSpecifications=[
                {
                    "ResourceType": "volume",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        )
        return str(created["VolumeId"])

    def stop_instance(self, instance_id: str, *, region: str | None = None) -> None:
        """Ask the instance *instance_id* to stop."""
        self.call(
            "ec2", "stop_instances", resource=instance_id, region=region, InstanceIds=[instance_id]
        )

    def start_instance(self, instance_id: str, *, region: str | None = None) -> None:
        """Ask the instance *instance_id* to start."""
        self.call(
            "ec2", "start_instances", resource=instance_id, region=region, InstanceIds=[instance_id]
        )

    def attach_volume(
        self, volume_id: str, instance_id: str, device: str, *, region: str | None
    ) -> None:
        """Attach *volume_id* to *instance_id* at *device*."""
        self.call(
            "ec2",
            "attach_volume",
            resource=volume_id,
            region=region,
            VolumeId=volume_id,
            InstanceId=instance_id,
            Device=device,
        )

    def detach_volume(
        self,
        volume_id: str,
        instance_id: str,
        device: str,
        *,
        region: str | None,
        force: bool = False,
    ) -> None:
        """Detach *volume_id* from *instance_id* at *device* (the volume is kept).

        With *force*, the instance is not asked to unmount it first (drill teardown).
        """
        params: dict[str, Any] = {"Force": True} if force else {}
        self.call(
            "ec2",
            "detach_volume",
            resource=volume_id,
            region=region,
            VolumeId=volume_id,
            InstanceId=instance_id,
            Device=device,
            **params,
        )

    # ----------------------------------------------------------------- recovery: RecoverableInstance

    def reboot_instance(self, instance_id: str, *, region: str | None = None) -> None:
        """Ask the instance *instance_id* to reboot."""
        self.call(
            "ec2",
            "reboot_instances",
            resource=instance_id,
            region=region,
            InstanceIds=[instance_id],
        )

    def terminate_instance(self, instance_id: str, *, region: str | None = None) -> None:
        """Terminate the instance *instance_id*."""
        self.call(
            "ec2",
            "terminate_instances",
            resource=instance_id,
            region=region,
            InstanceIds=[instance_id],
        )

    def instances_matching(
        self, filters: Sequence[Mapping[str, Any]], *, region: str | None = None
    ) -> list[dict[str, Any]]:
        """The instances that match the DescribeInstances *filters*, as EC2 describes them."""
        found = self.call("ec2", "describe_instances", region=region, Filters=list(filters))
        return [dict(i) for r in found.get("Reservations", ()) for i in r.get("Instances", ())]

    def launch_instance(
        self,
        *,
        image_id: str,
        instance_type: str,
        client_token: str,
        tags: Mapping[str, str],
        subnet_id: str | None = None,
        security_group_ids: Sequence[str] = (),
        key_name: str | None = None,
        region: str | None = None,
    ) -> str:
        """Launch one instance of *image_id* (the same *client_token*: the same instance); its id."""
        params: dict[str, Any] = {
            "ImageId": image_id,
            "InstanceType": instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "ClientToken": client_token,
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        }
        if subnet_id:
            params["SubnetId"] = subnet_id
        if security_group_ids:
            params["SecurityGroupIds"] = list(security_group_ids)
        if key_name:
            params["KeyName"] = key_name
        launched = self.call("ec2", "run_instances", resource=image_id, region=region, **params)
        return str(launched["Instances"][0]["InstanceId"])

    def describe_volumes(
        self, volume_ids: list[str], *, region: str | None, resource: str = ""
    ) -> list[dict[str, Any]]:
        """The volumes *volume_ids* as EC2 describes them.

        Raises:
            ResourceNotFoundError: None of them exists (any more).
        """
        result = self.call(
            "ec2", "describe_volumes", resource=resource, region=region, VolumeIds=volume_ids
        )
        return list(result.get("Volumes", ()))

    def first_zone(self, region: str) -> str:
        """The first available zone of *region* (sorted by name)."""
        result = self.call(
            "ec2",
            "describe_availability_zones",
            region=region,
            Filters=[{"Name": "state", "Values": ["available"]}],
        )
        zones = sorted(str(z["ZoneName"]) for z in result.get("AvailabilityZones", ()))
        if not zones:
            raise BackendError(
                f"{self.name}: no available zone in {region} to restore into",
                backend=self.name,
                operation="DescribeAvailabilityZones",
            )
        return zones[0]

    def _wait_available(self, volume_ids: list[str], region: str, point: RecoveryPoint) -> None:
        polls = max(1, math.ceil(self.wait_timeout / self.poll_interval))
        states: dict[str, str] = {}
        for attempt in range(polls + 1):
            result = self.call(
                "ec2", "describe_volumes", resource=point.id, region=region, VolumeIds=volume_ids
            )
            states = {
                str(v["VolumeId"]): str(v.get("State", "")) for v in result.get("Volumes", ())
            }
            failed = sorted(v for v, s in states.items() if s == "error")
            if failed:
                raise BackendError(
                    f"{self.name}: restored volume(s) {', '.join(failed)} of point {point.id!r} "
                    "went to state 'error'",
                    backend=self.name,
                    operation="CreateVolume",
                    resource=failed[0],
                )
            if all(states.get(v) == "available" for v in volume_ids):
                return
            if attempt < polls:
                self.retry.sleep(self.poll_interval)
        raise BackendError(
            f"{self.name}: restored volume(s) of point {point.id!r} not available after "
            f"{self.wait_timeout:g} s (states: {states})",
            backend=self.name,
            operation="DescribeVolumes",
            resource=point.id,
            code="Timeout",
        )

    def _teardown(self, created: Sequence[Mapping[str, Any]], region: str) -> list[BaseException]:
        errors: list[BaseException] = []
        for volume in created:
            volume_id = str(volume["volume_id"])
            try:
                self.call(
                    "ec2", "delete_volume", resource=volume_id, region=region, VolumeId=volume_id
                )
            except ResourceNotFoundError:
                continue
            except BackendError as exc:
                errors.append(exc)
        return errors
