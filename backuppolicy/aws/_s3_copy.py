"""Copies of the S3 target's manifests (and the versions they list) into copy stores.

`CopyStores.copy` copies a manifest and its versions to another bucket or region, as a new
manifest of the destination tier; `CopyStores._copy_points` lists those copies as points, and
`CopyStores._unreferenced_copies` finds the copied versions a deleted copy alone listed.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from backuppolicy.aws._s3_base import (
    KIND_MANIFEST,
    KIND_VERSION,
    MANIFEST_FORMAT,
    CopyStore,
    Loc,
    encode_tags,
    hold_from_tag,
    parse_store,
    s3_url,
    utcnow,
)
from backuppolicy.aws._s3_lock import point_lock_of
from backuppolicy.aws._s3_pool import Pool, Requests
from backuppolicy.aws._s3_transfer import S3Transfer, written
from backuppolicy.core.exceptions import PolicyError, ResourceNotFoundError, UnsafeArchiveError
from backuppolicy.core.model import TAG_HOLD, TAG_TIER, RecoveryPoint, is_owned
from backuppolicy.core.targets import Destination

__all__ = ["STREAM_PART_SIZE", "CopyStores"]

STREAM_PART_SIZE = 16 * 1024**2
"""Largest object streamed in one ``PutObject`` into another account; the part size above it."""
_OBJECT_FIELDS = (
    "ContentType",
    "ContentEncoding",
    "ContentDisposition",
    "CacheControl",
    "ContentLanguage",
    "Metadata",
)


def _object_fields(response: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a ``GetObject`` or ``HeadObject`` answer that a copy keeps."""
    return {name: response[name] for name in _OBJECT_FIELDS if response.get(name)}


class CopyStores(S3Transfer):
    """Manifest copies in copy stores (a mixin of `backuppolicy.aws.s3.S3Bucket`)."""

    def _copy_manifest_prefix(self, store: CopyStore) -> str:
        """Where manifest copies go in *store* (`_relocate` of the manifest prefix)."""
        return self._relocate(self._manifest_prefix, store.prefix)

    def _copy_point(
        self,
        store: CopyStore,
        region: str,
        *,
        key: str,
        version_id: str,
        head: Mapping[str, Any],
        tags: Mapping[str, str],
    ) -> RecoveryPoint:
        meta = head.get("Metadata", {})
        created = (
            datetime.fromisoformat(meta["created-at"])
            if "created-at" in meta
            else head["LastModified"]
        )
        source = (
            f"{meta['source-key']}@{meta['source-version']}"
            if "source-key" in meta and "source-version" in meta
            else None
        )
        return RecoveryPoint(
            id=f"{s3_url(store.bucket, key)}@{version_id}",
            target=self.name,
            created_at=created.astimezone(UTC),
            kind=KIND_MANIFEST,
            location=f"aws:{self._account()}:{region}",
            tier=store.tier,
            size_bytes=int(meta["bytes"]) if "bytes" in meta else None,
            tags=tags,
            legal_hold=hold_from_tag(tags[TAG_HOLD]) if TAG_HOLD in tags else None,
            managed=is_owned(tags, policy=self.policy, target=self.name),
            lock=point_lock_of(head),
            details={
                "bucket": store.bucket,
                "key": key,
                "version_id": version_id,
                "region": region,
                "store": store.url,
                "source": source,
                "source_bucket": meta.get("source-bucket"),
                "copied_at": meta.get("copied-at"),
                "objects": int(meta.get("objects", "0")),
                "manifest_bytes": int(head.get("ContentLength") or head.get("Size") or 0),
            },
        )

    def _copy_points(self, store: CopyStore) -> Iterator[RecoveryPoint]:
        """The manifest copies of this target in *store*.

        Objects without a manifest's metadata are skipped: a data key that happens to sit under
        the manifest folder is not a point. Heads are read as in `_manifest_points`
        (`_listed_head`), tags every time.
        """
        region = self._store_region(store.bucket)
        prefix = self._copy_manifest_prefix(store)
        lock_free = self._lock_check(store.bucket, region)
        for entry in self._entries(prefix, bucket=store.bucket, region=region):
            if entry.is_marker or not entry.is_latest:
                continue
            head = self._listed_head(
                entry.key, entry.version_id, lock_free, bucket=store.bucket, region=region
            )
            if head is None or "created-at" not in head.get("Metadata", {}):
                continue
            try:
                tags = self._tags_of(
                    entry.key, entry.version_id, bucket=store.bucket, region=region
                )
            except ResourceNotFoundError:
                continue  # deleted since the listing page: not listed
            yield self._copy_point(
                store, region, key=entry.key, version_id=entry.version_id, head=head, tags=tags
            )

    def _unreferenced_copies(self, loc: Loc) -> list[tuple[str, str | None]]:
        """The copied versions that the manifest copy at *loc* alone lists in its store.

        Every version of every manifest copy (of any target) under the store's ``manifests/``
        folder is read; none are returned if one of them cannot be read.
        """
        assert loc.store is not None  # noqa: S101 - only called for copies
        listed = {(str(line["key"]), str(line["version_id"])) for line in self._manifest_lines(loc)}
        folder = f"{loc.store.prefix}manifests/"
        for entry in self._entries(folder, bucket=loc.bucket, region=loc.region):
            if not listed:
                break
            if entry.is_marker or (entry.key, entry.version_id) == (loc.key, loc.version):
                continue
            other = Loc(
                bucket=loc.bucket, key=entry.key, version=entry.version_id, region=loc.region
            )
            try:
                for line in self._manifest_lines(other):
                    listed.discard((str(line["key"]), str(line["version_id"])))
            except (
                ValueError,
                KeyError,
                TypeError,
                UnsafeArchiveError,
            ):  # unreadable: keep the data
                return []
        return [(key, version) for key, version in sorted(listed)]

    def copy(
        self, point: RecoveryPoint, destination: Destination, *, max_workers: int = 8
    ) -> RecoveryPoint:
        """Copy a manifest and every version it lists (or one version) to ``destination.store``.

        ``destination.store`` is an ``s3://bucket/prefix`` URL or an `S3Bucket` (a non-empty
        prefix is a folder); data keys keep their path relative to this target's prefix, the
        manifest goes to ``<store prefix>manifests/<name>/``. Server-side copies, *max_workers*
        at once (multipart above 5 GiB); copied objects keep their tags (``CopyObject``'s
        default ``TaggingDirective=COPY``). The store's region is ``destination.region``, else
        asked with ``GetBucketLocation``.

        The copy of a manifest is a new manifest in the store listing the copied versions (key
        and version id in the store, ETag, size, source key and version), written last. It keeps
        the source's ``created_at`` and tags (a legal hold aside: holds are placed per point) and
        gets ``backuppolicy:tier``. Copying the same manifest into the same store again returns
        the existing copy and copies nothing. With the store in *copy_stores* the copy is listed
        by `list_points`.

        A version copied on its own comes back as an unmanaged point: only manifest copies are
        points in copy stores (listed, pruned).

        Raises:
            PolicyError: *point* is itself a copy, or the store is not an ``s3://`` URL.
        """
        loc = self._locate(point, KIND_VERSION, KIND_MANIFEST)
        if loc.store is not None:
            raise PolicyError.for_field(
                "point",
                "a point of the target's own bucket (copies are not copied again)",
                point.id,
            )
        bucket, prefix = parse_store(destination.store, field="destination.store")
        store = CopyStore(bucket=bucket, prefix=prefix, tier=destination.tier)
        region = destination.region or self._store_region(bucket)
        self._store_regions.setdefault(bucket, region)
        requests = Requests()
        dest_key = self._relocate(loc.key, prefix)
        if point.kind == KIND_MANIFEST:
            return self._copy_manifest(
                point,
                loc,
                store=store,
                region=region,
                dest_key=dest_key,
                requests=requests,
                max_workers=max_workers,
            )
        new_version, _ = self._copy_version(
            loc.key,
            loc.version,
            size=point.size_bytes or 0,
            dest_bucket=bucket,
            dest_key=dest_key,
            requests=requests,
            region=region,
        )
        details = dict(point.details)
        details.update(
            {
                "bucket": bucket,
                "key": dest_key,
                "version_id": new_version,
                "region": region,
                "store": store.url,
                "source": point.id,
            }
        )
        return point.evolve(
            id=f"{s3_url(bucket, dest_key)}@{new_version}",
            location=f"aws:{self._account()}:{region}",
            tier=destination.tier,
            managed=False,
            details=details,
        )

    def _stream_version(
        self,
        source: CopyStores,
        key: str,
        version_id: str,
        *,
        size: int,
        dest: tuple[str, str, str],
        requests: Requests,
        encryption: Mapping[str, str],
    ) -> tuple[str, str]:
        """Copy one version of *source*'s bucket to ``dest`` (bucket, key, region), through us.

        *source* reads with its credentials (``GetObject``), *self* writes with its own
        (``PutObject``; above `STREAM_PART_SIZE`, a multipart upload of ranged reads), so a copy
        into another account needs no bucket policy on either bucket. At most one part per call
        is held in memory. The object keeps its content type, metadata and tags.

        Returns the new version id and ETag.
        """
        bucket, dest_key, region = dest
        resource = s3_url(bucket, dest_key)
        read = {"Bucket": source.bucket, "Key": key, "VersionId": version_id}
        if size <= STREAM_PART_SIZE:
            requests.add("GetObject")
            got = source.call("s3", "get_object", resource=s3_url(source.bucket, key), **read)
            with contextlib.closing(got["Body"]) as body:
                data = body.read()
            extra = {**_object_fields(got), **encryption}
            if got.get("TagCount"):
                extra["Tagging"] = encode_tags(source._tags_of(key, version_id))
            requests.add("PutObject")
            result = self.call(
                "s3",
                "put_object",
                resource=resource,
                region=region,
                Bucket=bucket,
                Key=dest_key,
                Body=data,
                **extra,
            )
            return written(result)
        return self._stream_multipart(
            source, read, size=size, dest=dest, requests=requests, encryption=encryption
        )

    def _stream_multipart(
        self,
        source: CopyStores,
        read: Mapping[str, str],
        *,
        size: int,
        dest: tuple[str, str, str],
        requests: Requests,
        encryption: Mapping[str, str],
    ) -> tuple[str, str]:
        requests.add("HeadObject")
        head = source.call("s3", "head_object", resource=s3_url(source.bucket, read["Key"]), **read)
        extra: dict[str, Any] = {**_object_fields(head), **encryption}
        if head.get("TagCount"):
            extra["Tagging"] = encode_tags(source._tags_of(read["Key"], read["VersionId"]))

        def part(upload: Mapping[str, Any], first: int, last: int) -> str:
            requests.add("GetObject")
            got = source.call(
                "s3",
                "get_object",
                resource=s3_url(source.bucket, read["Key"]),
                Range=f"bytes={first}-{last}",
                **read,
            )
            with contextlib.closing(got["Body"]) as body:
                data = body.read()
            requests.add("UploadPart")
            result = self.call("s3", "upload_part", **upload, Body=data)
            return str(result["ETag"])

        return self._multipart_upload(
            dest, requests, size=size, min_part_size=STREAM_PART_SIZE, extra=extra, part=part
        )

    def _copy_manifest(
        self,
        point: RecoveryPoint,
        loc: Loc,
        *,
        store: CopyStore,
        region: str,
        dest_key: str,
        requests: Requests,
        max_workers: int,
        source: CopyStores | None = None,
        encryption: Mapping[str, str] | None = None,
    ) -> RecoveryPoint:
        """Write the copy of manifest *point* (at *loc*) and its versions into *store*.

        *self* writes the store. *source* reads the manifest, its tags and its versions (default:
        *self*, with server-side copies); a *source* in another account is read with its own
        credentials and each version is streamed into the store (`_stream_version`), so neither
        account needs a grant on the other's bucket. *encryption* adds ``ServerSideEncryption``
        and ``SSEKMSKeyId`` to every write (the backup account's key).
        """
        reader = self if source is None else source
        sse = dict(encryption or {})
        where = {"bucket": store.bucket, "region": region}
        existing = self._head_or_none(dest_key, None, **where)
        if existing is not None:
            meta = existing.get("Metadata", {})
            origin = (meta.get("source-bucket"), meta.get("source-key"), meta.get("source-version"))
            if origin == (reader.bucket, loc.key, loc.version):
                version = str(existing.get("VersionId") or "null")
                tags = self._tags_of(dest_key, version, **where)
                return self._copy_point(
                    store, region, key=dest_key, version_id=version, head=existing, tags=tags
                )
        source_tags = reader._tags_of(loc.key, loc.version)  # noqa: SLF001 - same kind
        tags = {k: v for k, v in source_tags.items() if k != TAG_HOLD}
        tags[TAG_TIER] = store.tier
        created = point.created_at.astimezone(UTC).isoformat()
        copied_at = utcnow().isoformat()
        lock = threading.Lock()
        counts: Counter[str] = Counter()
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024**2) as body:
            header = {
                "format": MANIFEST_FORMAT,
                "bucket": store.bucket,
                "prefix": store.prefix,
                "target": self.name,
                "tier": store.tier,
                "created_at": created,
                "copied_at": copied_at,
                "source": f"{s3_url(reader.bucket, loc.key)}@{loc.version}",
            }
            body.write(json.dumps(header).encode() + b"\n")

            def one(key: str, version: str, size: int) -> None:
                new_key = self._relocate(key, store.prefix)
                if source is None:
                    new_version, etag = self._copy_version(
                        key,
                        version,
                        size=size,
                        dest_bucket=store.bucket,
                        dest_key=new_key,
                        requests=requests,
                        region=region,
                    )
                else:
                    new_version, etag = self._stream_version(
                        source,
                        key,
                        version,
                        size=size,
                        dest=(store.bucket, new_key, region),
                        requests=requests,
                        encryption=sse,
                    )
                line = {
                    "key": new_key,
                    "version_id": new_version,
                    "etag": etag,
                    "size": size,
                    "source_key": key,
                    "source_version_id": version,
                }
                with lock:
                    body.write(json.dumps(line).encode() + b"\n")
                    counts["objects"] += 1
                    counts["bytes"] += size

            with Pool(max_workers) as pool:
                for key, version, size in reader._manifest_sources(point):  # noqa: SLF001 - same kind
                    pool.submit(one, key, version, size)
            length = body.tell()
            body.seek(0)
            metadata = {
                "created-at": created,
                "copied-at": copied_at,
                "objects": str(counts["objects"]),
                "bytes": str(counts["bytes"]),
                "source-bucket": reader.bucket,
                "source-key": loc.key,
                "source-version": loc.version,
            }
            result = self.call(
                "s3",
                "put_object",
                resource=s3_url(store.bucket, dest_key),
                region=region,
                Bucket=store.bucket,
                Key=dest_key,
                Body=body,
                ContentType="application/x-ndjson",
                Metadata=metadata,
                Tagging=encode_tags(tags),
                **sse,
            )
        version = str(result.get("VersionId") or "null")
        head = {"Metadata": metadata, "ContentLength": length}
        return self._copy_point(
            store, region, key=dest_key, version_id=version, head=head, tags=tags
        )
