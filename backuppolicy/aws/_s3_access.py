"""Object capabilities of the S3 target that checks, probes and restore workflows use.

`ObjectAccess` reads one object version (head with its checksum, streaming body), a bucket's
public access block, and the current objects under a prefix (`RestorableBucket`,
`ObjectVersionPoints`, `PointSharing` of `backuppolicy.core.targets`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

from backuppolicy.aws._s3_base import KIND_MANIFEST, KIND_VERSION, S3Base, null_version_refused
from backuppolicy.core.exceptions import BackendError, ResourceNotFoundError
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.targets import ManifestEntry

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from types_boto3_s3.type_defs import HeadObjectOutputTypeDef, ObjectTypeDef

__all__ = ["ObjectAccess"]


class ObjectAccess(S3Base):
    """Reads of single objects and buckets (a mixin of `backuppolicy.aws.s3.S3Bucket`)."""

    def object_head(
        self, bucket: str, key: str, *, version_id: str | None = None
    ) -> HeadObjectOutputTypeDef:
        """HeadObject of *key* in *bucket* (of its version *version_id*).

        Raises:
            ResourceNotFoundError: There is no such object (or version).
        """
        params: dict[str, str] = {"VersionId": version_id} if version_id is not None else {}
        head = self.call("s3", "head_object", resource=key, Bucket=bucket, Key=key, **params)
        return cast("HeadObjectOutputTypeDef", head)

    def point_object(self, point: RecoveryPoint) -> tuple[str, str, str | None] | None:
        """``(bucket, key, version_id)`` of the object version or manifest *point* (`ObjectVersionPoints`)."""
        if point.kind not in (KIND_VERSION, KIND_MANIFEST):
            return None
        bucket = str(point.details.get("bucket") or self.bucket)
        key = point.details.get("key")
        version = point.details.get("version_id")
        if not key:
            key, _, version = point.id.rpartition("@")
        return bucket, str(key), None if version is None else str(version)

    def is_manifest(self, point: RecoveryPoint) -> bool:
        """Whether *point* is a manifest (`read_manifest` lists its object versions)."""
        return point.kind == KIND_MANIFEST

    def object_version_head(
        self, bucket: str, key: str, version_id: str | None, *, region: str | None
    ) -> HeadObjectOutputTypeDef:
        """HeadObject of version *version_id* of *key*, with its stored checksum (``ChecksumMode``).

        Raises:
            ResourceNotFoundError: There is no such object (or version).
        """
        params: dict[str, str] = {"Bucket": bucket, "Key": key, "ChecksumMode": "ENABLED"}
        if version_id is not None:  # "null" too: the version written before versioning was enabled
            params["VersionId"] = version_id
        resource = f"s3://{bucket}/{key}"
        try:
            head = self.call("s3", "head_object", resource=resource, region=region, **params)
        except BackendError as exc:
            if not null_version_refused(exc, version_id):
                raise
        else:
            return cast("HeadObjectOutputTypeDef", head)
        # An emulator refused versionId=null in a never-versioned bucket: the only version there.
        del params["VersionId"]
        head = self.call("s3", "head_object", resource=resource, region=region, **params)
        return cast("HeadObjectOutputTypeDef", head)

    def open_object_version(
        self, bucket: str, key: str, version_id: str | None, *, region: str | None
    ) -> StreamingBody:
        """The streaming body of version *version_id* of *key* (checksum validated as it is read)."""
        label = f"s3://{bucket}/{key}" + ("" if version_id is None else f"?versionId={version_id}")
        params: dict[str, str] = {"Bucket": bucket, "Key": key, "ChecksumMode": "ENABLED"}
        if version_id is not None:  # "null" too: S3 addresses that version as versionId=null
            params["VersionId"] = version_id
        body: StreamingBody = self.call(
            "s3", "get_object", resource=label, region=region, **params
        )["Body"]
        return body

    # -- ManifestedPoints: restore-test fingerprints ----------------------------------------

    def manifest_entries(self, point: RecoveryPoint) -> list[ManifestEntry]:
        """The objects of a manifest point (or the one object of a version point).

        Paths are where the restore puts them, relative to its scratch prefix. The manifest
        records the version, ETag and size of each object; its SHA-256 (``sha256`` when a line
        has one) is otherwise read from the backed-up version itself (`open_backed_up`).
        """
        loc = self._locate(point, KIND_VERSION, KIND_MANIFEST)

        def rel(key: str) -> str:
            if loc.store is not None:
                return key.removeprefix(loc.store.prefix)
            return self._relocate(key, "")

        if point.kind == KIND_VERSION:
            return [
                ManifestEntry(
                    rel(loc.key), size=point.size_bytes, source=(loc.bucket, loc.key, loc.version)
                )
            ]
        entries: list[ManifestEntry] = []
        for line in self._manifest_lines(loc):
            key, sha = str(line["key"]), line.get("sha256")
            entries.append(
                ManifestEntry(
                    rel(key),
                    sha256=f"sha256:{sha}" if isinstance(sha, str) and sha else None,
                    size=int(line["size"]) if line.get("size") is not None else None,
                    source=(loc.bucket, key, str(line["version_id"])),
                )
            )
        return entries

    def open_backed_up(self, entry: ManifestEntry) -> StreamingBody:
        """The backed-up version of *entry* (in the bucket, or in the copy store)."""
        if entry.source is None:
            msg = f"{entry.path}: no backed-up version recorded"
            raise LookupError(msg)
        bucket, key, version = entry.source
        return self.open_object_version(bucket, key, version, region=None)

    def open_restored(self, endpoint: object, path: str) -> StreamingBody:
        """The restored object *path* under the ``s3://bucket/prefix/`` *endpoint*."""
        bucket, _, prefix = str(endpoint).removeprefix("s3://").partition("/")
        return self.open_object_version(bucket, prefix + path, None, region=None)

    def public_access_block(
        self, bucket: str, *, region: str | None
    ) -> tuple[bool, dict[str, bool]]:
        """Whether *bucket*'s public access block sets all four flags, and the flags it sets."""
        flags = (
            "BlockPublicAcls",
            "IgnorePublicAcls",
            "BlockPublicPolicy",
            "RestrictPublicBuckets",
        )
        try:
            result = self.call(
                "s3", "get_public_access_block", resource=bucket, region=region, Bucket=bucket
            )
        except BackendError as exc:
            if exc.code == "NoSuchPublicAccessBlockConfiguration":
                return False, {}
            raise
        config = {k: bool(v) for k, v in result.get("PublicAccessBlockConfiguration", {}).items()}
        return all(config.get(flag, False) for flag in flags), config

    def point_sharing(
        self, point: RecoveryPoint | None, *, region: str | None
    ) -> tuple[dict[str, object], list[str]] | None:
        """The bucket's public access block, for *point* (its bucket) or the target (`PointSharing`)."""
        if point is None:
            bucket = self.bucket
        else:
            found = self.point_object(point)
            if found is None:
                return None
            bucket = found[0]
        blocked, config = self.public_access_block(bucket, region=region)
        issues = [] if blocked else [f"bucket {bucket}: public access block not fully set"]
        return {"bucket": bucket, "public_access_block": config}, issues

    def has_objects(self, bucket: str, prefix: str, *, exact: bool = False) -> bool:
        """Whether *bucket* holds an object under *prefix* (with *exact*: the key *prefix* itself)."""
        if exact:
            try:
                self.object_head(bucket, prefix)
            except ResourceNotFoundError:
                return False
            return True
        found = self.call(
            "s3", "list_objects_v2", resource=bucket, Bucket=bucket, Prefix=prefix, MaxKeys=1
        )
        return bool(found.get("KeyCount") or found.get("Contents"))

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectTypeDef]:
        """Every current object under *prefix* in *bucket* (``Contents`` entries, all pages)."""
        pages = self.paginate(
            "s3", "list_objects_v2", resource=bucket, Bucket=bucket, Prefix=prefix
        )
        for page in pages:
            yield from page.get("Contents", ())

    def count_keys(self, bucket: str, prefix: str) -> int:
        """How many current objects *bucket* holds under *prefix* (all pages)."""
        return sum(
            page.get("KeyCount", 0)
            for page in self.paginate(
                "s3", "list_objects_v2", resource=bucket, Bucket=bucket, Prefix=prefix
            )
        )

    def copy_object_version(
        self, key: str, version_id: str, dest_bucket: str, dest_key: str
    ) -> None:
        """Copy version *version_id* of *key* of this bucket to *dest_key* in *dest_bucket*."""
        self.call(
            "s3",
            "copy_object",
            resource=dest_key,
            Bucket=dest_bucket,
            Key=dest_key,
            CopySource={"Bucket": self.bucket, "Key": key, "VersionId": version_id},
            MetadataDirective="COPY",
        )
