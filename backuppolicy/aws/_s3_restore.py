"""Restores of the S3 target: a point into a scratch prefix, or the prefix to a point in time.

`Restores.restore` copies a version, or the versions a manifest lists, under a scratch prefix
and purges it on exit (restore tests). `Restores.restore_to_time` restores the prefix to its
state at any time T from one ``ListObjectVersions`` pass (`decide` per key), with server-side
copies on a bounded pool (`RestoreReport`).

Time granularity: see `backuppolicy.aws.s3`.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime

import attrs

from backuppolicy.aws._s3_base import KIND_MANIFEST, KIND_VERSION, s3_url
from backuppolicy.aws._s3_batch import InventoryRestores
from backuppolicy.aws._s3_listing import decide
from backuppolicy.aws._s3_pool import Pool, Requests
from backuppolicy.aws._s3_transfer import DELETE_BATCH_LIMIT
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import RecoveryPoint, ensure_aware
from backuppolicy.core.targets import IsolationProfile, RestoredResource

__all__ = ["RestoreReport", "Restores", "decide"]


@attrs.frozen
class RestoreReport:
    """What `S3Bucket.restore_to_time` did (or, with ``dry_run``, would do).

    Attributes:
        when: The point in time restored to (UTC).
        source: ``s3://bucket/prefix`` restored from.
        destination: ``s3://bucket/prefix`` restored into.
        in_place: Whether the source was restored onto itself.
        dry_run: Whether nothing was written.
        keys: Keys seen in the listing.
        restored: Keys copied from their version at *when* (or that would be).
        deleted: Keys removed because they did not exist at *when* (in place only; a delete marker
            is added, so nothing is lost).
        skipped: Keys left alone, by reason (``"unchanged"``, ``"deleted at T"``,
            ``"created after T"``).
        ambiguous: Keys where a delete marker and a version share the deciding second; the version
            was taken as the newer one (restoring rather than losing data).
        bytes_copied: Bytes copied (sizes from the listing).
        requests: S3 requests made, by API operation.
        engine: ``"listing"`` (``ListObjectVersions`` and copies from this machine) or
            ``"inventory"`` (an S3 Inventory report and an S3 Batch Operations job).
        job: With the inventory engine: the batch job (``job_id``, ``status``, ``manifest``,
            ``report``, ``tasks``, ``succeeded``, ``inventory``, ``inventory_created``).
    """

    when: datetime
    source: str
    destination: str
    in_place: bool
    dry_run: bool
    keys: int
    restored: int
    deleted: int
    skipped: Mapping[str, int] = attrs.field(hash=False)
    ambiguous: int
    bytes_copied: int
    requests: Mapping[str, int] = attrs.field(hash=False)
    engine: str = "listing"
    job: Mapping[str, object] = attrs.field(factory=dict, hash=False)

    @property
    def skipped_total(self) -> int:
        """All skipped keys."""
        return sum(self.skipped.values())

    @property
    def total_requests(self) -> int:
        """All S3 requests made."""
        return sum(self.requests.values())


class Restores(InventoryRestores):
    """Scratch and point-in-time restores (a mixin of `backuppolicy.aws.s3.S3Bucket`)."""

    @contextmanager
    def _restore(
        self, point: RecoveryPoint, into: IsolationProfile | None
    ) -> Iterator[RestoredResource]:
        loc = self._locate(point, KIND_VERSION, KIND_MANIFEST)
        prefix = (into.name_prefix if into else "bp-restore-") + uuid.uuid4().hex[:12] + "/"
        bucket, root, region = self._scratch_root()
        restore_prefix = f"{root}{prefix}"
        requests = Requests()
        try:
            if point.kind == KIND_VERSION:
                sources: Iterable[tuple[str, str, int]] = [
                    (loc.key, loc.version, point.size_bytes or 0)
                ]
            else:
                sources = self._manifest_sources(point)
            objects = self._copy_many(
                sources, bucket, restore_prefix, requests, region=region, source=loc
            )
            yield RestoredResource(
                id=s3_url(bucket, restore_prefix),
                kind="s3-prefix",
                point=point,
                endpoint=s3_url(bucket, restore_prefix),
                details={"objects": objects, "bucket": bucket, "prefix": restore_prefix},
            )
        finally:
            self._purge_prefix(restore_prefix, bucket=bucket, region=region)

    def restore(
        self, point: RecoveryPoint, into: IsolationProfile | None = None
    ) -> AbstractContextManager[RestoredResource]:
        """Copy a version, or every version a manifest lists, under a scratch prefix; purge on exit.

        The scratch prefix is ``<internal_prefix>restore-tests/<name>/<name_prefix><random>/``
        in the target's bucket. On exit every version and delete marker under it is deleted,
        even when the block raised. A manifest copy is restored from its copy store into that
        same scratch prefix (across regions when the store is elsewhere): the copy itself is
        read, proving the off-site copy can be brought back.

        Returns:
            A context manager yielding a `RestoredResource` (``kind="s3-prefix"``).
        """
        return self._restore(point, into)

    def _scratch_root(self) -> tuple[str, str, str | None]:
        """Bucket, prefix and region where restore tests copy to.

        The target's bucket, or the copy store of an off-site sibling (``scratch_store``),
        under ``restore-tests/<name>/``.
        """
        store = self.scratch_store
        if store is None:
            return self.bucket, f"{self.internal_prefix}restore-tests/{self.name}/", None
        region = self._store_region(store.bucket)
        return store.bucket, f"{store.prefix}restore-tests/{self.name}/", region

    def _purge_prefix(
        self, prefix: str, *, bucket: str | None = None, region: str | None = None
    ) -> None:
        """Permanently delete every version and delete marker under *prefix*."""
        root = self._scratch_root()[1] if bucket else self.internal_prefix
        if not prefix.startswith(root):  # pragma: no cover - defence in depth
            raise PolicyError.for_field("prefix", f"a prefix under {root!r}", prefix)
        requests = Requests()
        entries = self._entries(prefix, bucket=bucket, region=region)
        if bucket is not None and bucket != self.bucket:
            batch: list[tuple[str, str | None]] = []
            for entry in entries:
                batch.append((entry.key, entry.version_id))
                if len(batch) == DELETE_BATCH_LIMIT:
                    self._delete_batch(bucket, region, batch, requests)
                    batch = []
            if batch:
                self._delete_batch(bucket, region, batch, requests)
            return
        with Pool(4) as pool:
            self._delete_stream(((e.key, e.version_id) for e in entries), pool, requests)

    # Point-in-time restore ----------------------------------------------------------------

    def _refuse_unversioned(self, requests: Requests) -> None:
        """Refuse an in-place restore unless versioning is on, checked right before writing.

        Without versioning, its copies and delete markers would replace the current (null)
        versions for good.
        """
        requests.add("GetBucketVersioning")
        status = self.versioning()
        if status != "Enabled":
            raise PolicyError.for_field(
                "dest_bucket",
                "another bucket or prefix: an in-place restore needs versioning on "
                f"s3://{self.bucket} so the current versions are kept",
                f"in place, versioning {status}",
                hint="Nothing was changed.",
            )

    def restore_to_time(  # noqa: C901 - the engine choice, then the listing path
        self,
        when: datetime,
        dest_bucket: str | None = None,
        dest_prefix: str | None = None,
        *,
        max_workers: int = 32,
        dry_run: bool = False,
        page_size: int | None = None,
        engine: str = "auto",
    ) -> RestoreReport:
        """Restore the objects under the prefix to their state at *when*.

        One ``ListObjectVersions`` pass; each key is decided as soon as the listing moves past
        it (its versions and delete markers may span pages), and its server-side copy starts at
        once on a pool of *max_workers* threads. The default of 32 concurrent copies matches the
        clients' default connection pool (``max_pool_connections=32``) and stays far below S3's
        request rates (3,500 copies per second per prefix); copies are latency-bound, so more
        in flight means a faster restore.

        * Into another bucket and/or prefix (``dest_bucket`` or ``dest_prefix`` given): every
          key alive at *when* is copied from its version at *when* to
          ``dest_prefix + key[len(prefix):]`` (``dest_prefix`` defaults to the prefix). Nothing
          is deleted at the destination.
        * In place (neither given): only keys whose current version differs from the version at
          *when* are copied (a current version with the same ETag and size, such as the copy an
          earlier restore made, counts as the same); keys that did not exist at *when* (created later, or deleted at
          *when* and written again later) get a delete marker via batched ``DeleteObjects``.
          Nothing is lost: every version stays in the history.
        * Keys whose delete marker was current at *when* are not restored.

        A version counts as written at its ``LastModified`` second *S* and is included when
        ``S <= floor(when)``. Objects above 5 GiB are copied with multipart ``UploadPartCopy``.

        *engine*: ``"listing"`` as above; ``"inventory"`` reads the newest S3 Inventory report
        of the target's ``inventory`` setting instead of listing, and copies with an S3 Batch
        Operations job (`backuppolicy.aws._s3_batch`; into another bucket or prefix only);
        ``"auto"`` (default) takes the inventory when the target has one, the restore is not in
        place and the report holds at least ``inventory.min_versions`` versions under the
        prefix, else lists.

        Raises:
            PolicyError: *when* is naive, the destination overlaps the source without being it,
                or an in-place restore finds versioning off or suspended (nothing is changed);
                *engine* is unknown, or ``"inventory"`` without an inventory, in place, or
                with *when* after the newest report's scan.
            BatchJobError: The batch job failed, was cancelled or left versions uncopied (the
                failed keys are named).
        """
        ensure_aware(when, field="when")
        when_utc = when.astimezone(UTC)
        cutoff = math.floor(when_utc.timestamp())
        target_bucket = dest_bucket or self.bucket
        target_prefix = self.prefix if dest_prefix is None else dest_prefix
        in_place = target_bucket == self.bucket and target_prefix == self.prefix
        if (
            target_bucket == self.bucket
            and not in_place
            and (target_prefix.startswith(self.prefix) or self.prefix.startswith(target_prefix))
        ):
            raise PolicyError.for_field(
                "dest_prefix",
                f"a prefix that does not overlap the source prefix {self.prefix!r}",
                target_prefix,
            )
        requests = Requests()
        if engine not in {"auto", "listing", "inventory"}:
            raise PolicyError.for_field("engine", "'auto', 'listing' or 'inventory'", engine)
        if engine == "inventory" and in_place:
            raise PolicyError.for_field(
                "dest_bucket",
                "another bucket or prefix: the inventory engine does not restore in place (the "
                "report cannot see writes after its scan)",
                "in place",
            )
        if engine == "inventory" or (engine == "auto" and self.inventory and not in_place):
            batch = self._restore_from_inventory(
                when_utc,
                target_bucket,
                target_prefix,
                dry_run=dry_run,
                requests=requests,
                force=engine == "inventory",
            )
            if batch is not None:
                done, passed, job = batch
                return RestoreReport(
                    when=when_utc,
                    source=self.url,
                    destination=s3_url(target_bucket, target_prefix),
                    in_place=False,
                    dry_run=dry_run,
                    keys=done["keys"],
                    restored=done["restored"],
                    deleted=0,
                    skipped=dict(passed),
                    ambiguous=done["ambiguous"],
                    bytes_copied=done["bytes"],
                    requests=requests.snapshot(),
                    engine="inventory",
                    job=dict(job),
                )
            requests = Requests()
        if in_place and not dry_run:
            self._refuse_unversioned(requests)
        counts: Counter[str] = Counter()
        skipped: Counter[str] = Counter()

        def removals(pool: Pool | None) -> Iterator[tuple[str, str | None]]:
            groups = self._data_groups(requests=requests, page_size=page_size, read_ahead=True)
            for group in groups:
                counts["keys"] += 1
                action, entry, ambiguous = decide(group, cutoff, in_place=in_place)
                counts["ambiguous"] += ambiguous
                if action == "delete":
                    counts["deleted"] += 1
                    yield group[0].key, None
                elif action == "copy" and entry is not None:
                    counts["restored"] += 1
                    counts["bytes"] += entry.size
                    if pool is not None:
                        pool.submit(
                            self._copy_version,
                            entry.key,
                            entry.version_id,
                            size=entry.size,
                            dest_bucket=target_bucket,
                            dest_key=self._relocate(entry.key, target_prefix),
                            requests=requests,
                        )
                else:
                    skipped[action] += 1

        if dry_run:
            for _ in removals(None):
                pass
        else:
            with Pool(max_workers) as pool:
                self._delete_stream(removals(pool), pool, requests)
        return RestoreReport(
            when=when_utc,
            source=self.url,
            destination=s3_url(target_bucket, target_prefix),
            in_place=in_place,
            dry_run=dry_run,
            keys=counts["keys"],
            restored=counts["restored"],
            deleted=counts["deleted"],
            skipped=dict(skipped),
            ambiguous=counts["ambiguous"],
            bytes_copied=counts["bytes"],
            requests=requests.snapshot(),
        )
