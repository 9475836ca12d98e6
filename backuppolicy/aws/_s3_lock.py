"""S3 Object Lock retention of the S3 target's points: a tier's lock, enforced by S3 itself.

`ObjectLocking.lock_point` puts Object Lock retention (``PutObjectRetention``) on a manifest
and on every version it lists, in the tier's mode: a manifest is only as safe as the data it
names. `point_lock_of` reads the retention back from ``HeadObject``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from backuppolicy.aws._s3_base import KIND_MANIFEST, KIND_VERSION, s3_url
from backuppolicy.aws._s3_transfer import S3Transfer
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import BackendError, PolicyError
from backuppolicy.core.locks import PointLock
from backuppolicy.core.model import RecoveryPoint

__all__ = ["SOURCE", "ObjectLocking", "point_lock_of"]

SOURCE = "s3-object-lock"
"""`PointLock.source` of an S3 Object Lock retention."""

_MODES = {"governance": "GOVERNANCE", "compliance": "COMPLIANCE"}


def point_lock_of(head: Mapping[str, Any]) -> PointLock | None:
    """The Object Lock retention of a version (a ``HeadObject`` response), as a `PointLock`."""
    until = head.get("ObjectLockRetainUntilDate")
    mode = head.get("ObjectLockMode")
    if not isinstance(until, datetime) or not isinstance(mode, str):
        return None
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return PointLock(mode.lower(), until.astimezone(UTC), source=SOURCE)


class ObjectLocking(S3Transfer):
    """Object Lock retention on points (a mixin of `backuppolicy.aws.s3.S3Bucket`)."""

    def bucket_lock_enabled(self, bucket: str, region: str | None = None) -> bool:
        """Whether Object Lock is enabled on *bucket* (``GetObjectLockConfiguration``)."""
        try:
            result = self.call(
                "s3",
                "get_object_lock_configuration",
                resource=s3_url(bucket, ""),
                region=region,
                Bucket=bucket,
            )
        except BackendError as exc:
            if exc.code == "ObjectLockConfigurationNotFoundError":
                return False
            raise
        config = result.get("ObjectLockConfiguration", {})
        return bool(config.get("ObjectLockEnabled") == "Enabled")

    def lock_point(
        self,
        point: RecoveryPoint,
        lock: PointLock,
        *,
        cool_off: Duration | None = None,  # noqa: ARG002 - S3 Object Lock has no cool-off
    ) -> RecoveryPoint:
        """Put Object Lock retention *lock* on *point* (and the versions it lists); re-read it.

        A manifest (in the bucket or a copy store) is locked with the versions it lists, so
        that the point can be restored until the lock expires. A retention already longer than
        *lock* is left as it is (S3 never shortens a compliance retention; we never try).

        Raises:
            PolicyError: *lock* is not governance or compliance with an expiry, or the bucket
                holding the point has no Object Lock (it can only be enabled on the bucket).
        """
        mode = _MODES.get(lock.mode)
        if mode is None or lock.until is None:
            raise PolicyError.for_field(
                "lock", "a governance or compliance lock with an expiry date", lock
            )
        loc = self._locate(point, KIND_VERSION, KIND_MANIFEST)
        if not self.bucket_lock_enabled(loc.bucket, loc.region):
            raise PolicyError.for_field(
                f"{loc.bucket}.object_lock",
                f"Object Lock enabled on bucket {loc.bucket!r} to lock tier {point.tier!r} "
                f"({lock.mode} until {lock.until.date().isoformat()})",
                "disabled",
                hint="Object Lock is enabled on a new bucket (ObjectLockEnabledForBucket) "
                "or by AWS Support; or set the tier's lock to none.",
            )
        versions = [(loc.key, loc.version)]
        if point.kind == KIND_MANIFEST:
            versions += [(str(e["key"]), str(e["version_id"])) for e in self._manifest_lines(loc)]
        bucket = loc.bucket
        retention = {"Mode": mode, "RetainUntilDate": lock.until}
        for key, version in versions:
            self._retain(bucket, loc.region, key, version, retention)
        fresh = self.refresh(point)  # type: ignore[attr-defined]
        if fresh is None:  # pragma: no cover - deleted between the two calls
            raise PolicyError.for_field("point", "a point that exists", point.id)
        result: RecoveryPoint = fresh
        return result

    def _retain(
        self, bucket: str, region: str | None, key: str, version: str, retention: dict[str, Any]
    ) -> None:
        resource = s3_url(bucket, key)
        head: Mapping[str, Any] = (
            self._head_or_none(key, version, bucket=bucket, region=region) or {}
        )
        current = point_lock_of(head)
        until = retention["RetainUntilDate"]
        if current is not None and current.until is not None and current.until >= until:
            return
        self.call(
            "s3",
            "put_object_retention",
            resource=resource,
            region=region,
            Bucket=bucket,
            Key=key,
            VersionId=version,
            Retention=retention,
        )

    # -- holds enforced below the library ---------------------------------------------------

    def _held_objects(self, point: RecoveryPoint) -> tuple[str, str | None, list[tuple[str, str]]]:
        """``(bucket, region, [(key, version)])``: the point's object and the versions it lists."""
        loc = self._locate(point, KIND_VERSION, KIND_MANIFEST)
        pairs = [(loc.key, loc.version)]
        if point.kind == KIND_MANIFEST:
            pairs += [(str(e["key"]), str(e["version_id"])) for e in self._manifest_lines(loc)]
        return loc.bucket, loc.region, pairs

    def _legal_hold(
        self, bucket: str, region: str | None, pairs: list[tuple[str, str]], status: str
    ) -> None:
        for key, version in pairs:
            self.call(
                "s3",
                "put_object_legal_hold",
                resource=s3_url(bucket, key),
                region=region,
                Bucket=bucket,
                Key=key,
                VersionId=version,
                LegalHold={"Status": status},
            )

    def enforce_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """An Object Lock legal hold on the held point and, for a manifest, each version it lists.

        Without Object Lock on the bucket (or copy store) the hold stays a tag; `hold_gaps`
        reports it.
        """
        bucket, region, pairs = self._held_objects(point)
        if self.bucket_lock_enabled(bucket, region):
            self._legal_hold(bucket, region, pairs, "ON")
        return self.refresh(point) or point  # type: ignore[attr-defined]

    def release_enforcement(
        self,
        point: RecoveryPoint,
        tier_lock: PointLock | None,  # noqa: ARG002 - retention is separate from holds in S3
    ) -> None:
        """Lift the Object Lock legal holds of `enforce_hold`.

        A version that another held manifest of this target also lists keeps its legal hold.
        """
        bucket, region, pairs = self._held_objects(point)
        if not self.bucket_lock_enabled(bucket, region):
            return
        still: set[tuple[str, str]] = set()
        for other in self.list_points():  # type: ignore[attr-defined]
            if other.kind == KIND_MANIFEST and other.held and other.id != point.id:
                still.update(self._held_objects(other)[2])
        self._legal_hold(bucket, region, [p for p in pairs if p not in still], "OFF")

    def hold_gaps(self, point: RecoveryPoint) -> list[str]:
        """Objects of the held point without an Object Lock legal hold (the tag alone)."""
        if point.legal_hold is None:
            return []
        bucket, region, pairs = self._held_objects(point)
        if not self.bucket_lock_enabled(bucket, region):
            return [f"bucket {bucket} has no Object Lock: the hold is a tag only"]
        gaps = []
        for key, version in pairs:
            head: Mapping[str, Any] = (
                self._head_or_none(key, version, bucket=bucket, region=region) or {}
            )
            if head.get("ObjectLockLegalHoldStatus") != "ON":
                gaps.append(f"{s3_url(bucket, key)}@{version}: no Object Lock legal hold")
        return gaps
