"""Server-side copies and batched deletes of object versions, the S3 target's writes.

`S3Transfer` copies versions (``CopyObject``, multipart ``UploadPartCopy`` above 5 GiB) and
deletes them with ``DeleteObjects`` in batches of at most 1000, on a bounded `Pool`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from backuppolicy.aws._s3_base import Loc, S3Base, s3_url
from backuppolicy.aws._s3_pool import Pool, Requests
from backuppolicy.core.exceptions import BackendError, PolicyError

__all__ = ["DELETE_BATCH_LIMIT", "MAX_COPY_OBJECT_SIZE", "S3Transfer", "written"]

DELETE_BATCH_LIMIT = 1000
"""Most keys one ``DeleteObjects`` request may carry (an AWS limit)."""
MAX_COPY_OBJECT_SIZE = 5 * 1024**3
"""Largest object ``CopyObject`` copies in one request (5 GiB); larger ones use multipart copy."""
_MIN_PART_SIZE = 512 * 1024**2
_MAX_PARTS = 10_000


def written(response: Mapping[str, Any]) -> tuple[str, str]:
    """The version id (``"null"`` when unversioned) and ETag of a ``PutObject`` or upload's answer."""
    return str(response.get("VersionId") or "null"), str(response.get("ETag", "")).strip('"')


class S3Transfer(S3Base):
    """Copies and deletes of object versions (a mixin of `backuppolicy.aws.s3.S3Bucket`)."""

    def _copy_many(
        self,
        sources: Iterable[tuple[str, str, int]],
        dest_bucket: str,
        dest_prefix: str,
        requests: Requests,
        *,
        region: str | None = None,
        max_workers: int = 8,
        source: Loc | None = None,
    ) -> int:
        """Copy ``(key, version id, size)`` sources under *dest_prefix*, concurrently.

        Sources are in the target's bucket, or in *source*'s copy store (keys relative to it).
        """
        store = source.store if source is not None else None

        def relocate(key: str) -> str:
            if store is not None:
                return dest_prefix + key.removeprefix(store.prefix)
            return self._relocate(key, dest_prefix)

        count = 0
        with Pool(max_workers) as pool:
            for key, version, size in sources:
                count += 1
                pool.submit(
                    self._copy_version,
                    key,
                    version,
                    size=size,
                    dest_bucket=dest_bucket,
                    dest_key=relocate(key),
                    requests=requests,
                    region=region,
                    source_bucket=source.bucket if source is not None else None,
                    source_region=source.region if source is not None else None,
                )
        return count

    def _copy_version(
        self,
        key: str,
        version_id: str,
        *,
        size: int,
        dest_bucket: str,
        dest_key: str,
        requests: Requests,
        region: str | None = None,
        source_bucket: str | None = None,
        source_region: str | None = None,
    ) -> tuple[str, str]:
        """Server-side copy of one version; multipart above 5 GiB.

        Returns the new version id and ETag.
        """
        source = {"Bucket": source_bucket or self.bucket, "Key": key, "VersionId": version_id}
        resource = s3_url(dest_bucket, dest_key)
        if size <= MAX_COPY_OBJECT_SIZE:
            requests.add("CopyObject")
            result = self.call(
                "s3",
                "copy_object",
                resource=resource,
                region=region,
                Bucket=dest_bucket,
                Key=dest_key,
                CopySource=source,
            )
            etag = str(result.get("CopyObjectResult", {}).get("ETag", "")).strip('"')
            return str(result.get("VersionId") or "null"), etag
        return self._multipart_copy(
            source, dest_bucket, dest_key, requests, region, source_region=source_region
        )

    def _multipart_copy(
        self,
        source: dict[str, str],
        dest_bucket: str,
        dest_key: str,
        requests: Requests,
        region: str | None,
        *,
        source_region: str | None = None,
    ) -> tuple[str, str]:
        requests.add("HeadObject")
        head = self.call(
            "s3",
            "head_object",
            resource=s3_url(source["Bucket"], source["Key"]),
            region=source_region,
            Bucket=source["Bucket"],
            Key=source["Key"],
            VersionId=source["VersionId"],
        )
        size = int(head["ContentLength"])
        extra: dict[str, object] = {"Metadata": head.get("Metadata", {})}
        for field in (
            "ContentType",
            "ContentEncoding",
            "ContentDisposition",
            "CacheControl",
            "ContentLanguage",
        ):
            if head.get(field):
                extra[field] = head[field]

        def part(upload: Mapping[str, Any], first: int, last: int) -> str:
            requests.add("UploadPartCopy")
            result = self.call(
                "s3",
                "upload_part_copy",
                **upload,
                CopySource=source,
                CopySourceRange=f"bytes={first}-{last}",
            )
            return str(result["CopyPartResult"]["ETag"])

        return self._multipart_upload(
            (dest_bucket, dest_key, region),
            requests,
            size=size,
            min_part_size=_MIN_PART_SIZE,
            extra=extra,
            part=part,
        )

    def _multipart_upload(
        self,
        dest: tuple[str, str, str | None],
        requests: Requests,
        *,
        size: int,
        min_part_size: int,
        extra: Mapping[str, Any],
        part: Callable[[Mapping[str, Any], int, int], str],
    ) -> tuple[str, str]:
        """A multipart upload of *size* bytes to ``dest`` (bucket, key, region); aborted on failure.

        ``CreateMultipartUpload`` (with *extra*), then ``part(upload, first byte, last byte)``
        for each part of *min_part_size* bytes or more (at most 10,000 parts), which sends the
        part with the ``self.call`` arguments *upload* (the resource and region, ``Bucket``,
        ``Key``, ``UploadId`` and ``PartNumber``) and returns its ETag, then
        ``CompleteMultipartUpload``.
        Any failure, an interrupt too, aborts the upload (``AbortMultipartUpload``), so no
        parts are left to pay for, and is raised again. Returns the new version id and ETag.
        """
        bucket, key, region = dest
        where: dict[str, Any] = {
            "resource": s3_url(bucket, key),
            "region": region,
            "Bucket": bucket,
            "Key": key,
        }
        part_size = max(min_part_size, math.ceil(size / _MAX_PARTS))
        requests.add("CreateMultipartUpload")
        upload = self.call("s3", "create_multipart_upload", **where, **extra)
        upload_id = upload["UploadId"]
        parts = []
        try:
            for number, start in enumerate(range(0, size, part_size), start=1):
                upload_part = {**where, "UploadId": upload_id, "PartNumber": number}
                etag = part(upload_part, start, min(start + part_size, size) - 1)
                parts.append({"PartNumber": number, "ETag": etag})
            requests.add("CompleteMultipartUpload")
            done = self.call(
                "s3",
                "complete_multipart_upload",
                **where,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            requests.add("AbortMultipartUpload")
            self.call("s3", "abort_multipart_upload", **where, UploadId=upload_id)
            raise
        return written(done)

    def delete_objects(
        self, objects: Sequence[tuple[str, str | None]], *, requests: Requests | None = None
    ) -> int:
        """One ``DeleteObjects`` request for at most 1000 ``(key, version_id)`` pairs.

        A ``None`` version id adds a delete marker (a reversible delete); a version id deletes
        that version permanently. Returns how many were deleted.

        Raises:
            PolicyError: More than 1000 objects (AWS's limit; we refuse before sending).
            BackendError: S3 reported per-key errors (the first few are in the message).
        """
        if len(objects) > DELETE_BATCH_LIMIT:
            raise PolicyError.for_field(
                "objects",
                f"at most {DELETE_BATCH_LIMIT} keys per DeleteObjects request",
                f"{len(objects)} keys",
            )
        return self._delete_batch(self.bucket, None, objects, requests)

    def _delete_batch(
        self,
        bucket: str,
        region: str | None,
        objects: Sequence[tuple[str, str | None]],
        requests: Requests | None,
    ) -> int:
        if not objects:
            return 0
        items = [{"Key": k} if v is None else {"Key": k, "VersionId": v} for k, v in objects]
        if requests is not None:
            requests.add("DeleteObjects")
        resource = self.url if bucket == self.bucket else s3_url(bucket, "")
        result = self.call(
            "s3",
            "delete_objects",
            resource=resource,
            region=region,
            Bucket=bucket,
            Delete={"Objects": items, "Quiet": True},
        )
        errors = result.get("Errors", [])
        if errors:
            sample = ", ".join(
                f"{e.get('Key')}@{e.get('VersionId', '')}: {e.get('Code')}" for e in errors[:3]
            )
            raise BackendError(
                f"{self.name}: DeleteObjects failed for {len(errors)} of {len(items)} keys ({sample})",
                backend=self.name,
                operation="DeleteObjects",
                resource=resource,
                code=str(errors[0].get("Code", "")),
            )
        return len(items)

    def _delete_stream(
        self,
        objects: Iterable[tuple[str, str | None]],
        pool: Pool,
        requests: Requests,
        batch_size: int = DELETE_BATCH_LIMIT,
    ) -> int:
        """Submit batched deletes of a stream of objects to *pool*; returns how many were queued."""
        batch: list[tuple[str, str | None]] = []
        queued = 0
        for item in objects:
            batch.append(item)
            if len(batch) >= batch_size:
                pool.submit(self.delete_objects, batch, requests=requests)
                queued += len(batch)
                batch = []
        if batch:
            pool.submit(self.delete_objects, batch, requests=requests)
            queued += len(batch)
        return queued
