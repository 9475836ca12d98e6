"""Point-in-time restores at scale: S3 Inventory in, S3 Batch Operations out.

For a bucket too large to list from one machine, `InventoryRestores` compiles a restore to
AWS's own engines:

1. read the newest S3 Inventory report of the bucket (all versions, CSV) and reduce it to the
   state at T (`backuppolicy.aws._s3_inventory.InventoryState`, the listing path's decisions);
2. write the versions to copy as an S3 Batch Operations CSV manifest (``bucket,key,versionId``,
   keys URL-encoded) under the report location;
3. run the copies as one S3 Batch Operations job (``s3control:CreateJob``, operation
   ``S3PutObjectCopy``, completion report of all tasks), polled with ``DescribeJob``;
4. read the job's completion report: every version must have a ``succeeded`` row; a failed,
   cancelled or partial job raises `BatchJobError` naming the failed keys.

Versions above 5 GiB (beyond ``S3PutObjectCopy``) are copied from this machine with multipart
copies. Restores in place are not compiled (the inventory cannot see writes after its scan, so
a key changed since would be wrongly left alone): they take the listing path.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import IO, Any, ClassVar
from urllib.parse import quote, unquote_plus

from backuppolicy.aws._s3_base import s3_url
from backuppolicy.aws._s3_inventory import (
    InventoryConfig,
    InventoryManifest,
    InventoryState,
    read_csv_rows,
)
from backuppolicy.aws._s3_pool import Pool, Requests
from backuppolicy.aws._s3_transfer import MAX_COPY_OBJECT_SIZE, S3Transfer
from backuppolicy.core.exceptions import BackendError, PolicyError, ResourceNotFoundError

__all__ = ["BatchJobError", "BatchOutcome", "InventoryRestores"]

_RUN_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z/$")
_PART = 16 * 1024 * 1024  # multipart upload of the manifest: 16 MiB parts (10,000 parts: 160 GB)
_TERMINAL = frozenset({"Complete", "Failed", "Cancelled"})
_NAMED_FAILURES = 20


class BatchJobError(BackendError):
    """An S3 Batch Operations job did not copy every version it was given.

    Attributes:
        job_id: The job.
        status: Its final status (``"Complete"``, ``"Failed"``, ``"Cancelled"``, or the last
            one seen when polling gave up).
        expected: Versions in its manifest.
        succeeded: Tasks the completion report lists as succeeded.
        failed: The first failed tasks: ``(key, version id, error code, message)``.
        failed_total: All failed tasks.
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: str,
        status: str,
        expected: int,
        succeeded: int,
        failed: tuple[tuple[str, str, str, str], ...] = (),
        failed_total: int = 0,
        backend: str = "",
    ) -> None:
        super().__init__(
            message, backend=backend, operation="S3BatchOperations", resource=job_id, code=status
        )
        self.job_id = job_id
        self.status = status
        self.expected = expected
        self.succeeded = succeeded
        self.failed = failed
        self.failed_total = failed_total


class BatchOutcome(dict[str, Any]):
    """What a batch restore did, as plain data.

    Keys: ``job_id``, ``status``, ``manifest``, ``report``, ``tasks``, ``succeeded``,
    ``inventory`` (the report's manifest URL) and ``inventory_created`` (ISO time).
    """


def _arn(bucket: str, key: str = "") -> str:
    return f"arn:aws:s3:::{bucket}" + (f"/{key}" if key else "")


def _split(url: str) -> tuple[str, str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix


class InventoryRestores(S3Transfer):
    """Point-in-time restores from an S3 Inventory report, copied by S3 Batch Operations.

    A mixin of `backuppolicy.aws.s3.S3Bucket`; `Restores.restore_to_time` calls it when the
    target has an ``inventory`` and the restore is not in place.
    """

    inventory: InventoryConfig | None
    batch_poll_seconds: ClassVar[float] = 30.0
    """Seconds between two ``DescribeJob`` calls."""
    batch_max_polls: ClassVar[int] = 20_160
    """Polls before giving up on a job (7 days at 30 s): an error naming the job, never success."""

    def _sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    # Inventory --------------------------------------------------------------------------

    def _inventory_config(self) -> InventoryConfig:
        if self.inventory is None:
            raise PolicyError.for_field(
                "inventory", "an inventory setting on the s3-bucket target", None
            )
        return self.inventory

    def latest_inventory(self, requests: Requests | None = None) -> InventoryManifest:
        """The ``manifest.json`` of the newest inventory report under the configured prefix.

        Raises:
            ResourceNotFoundError: No report has been delivered yet.
            PolicyError: The report is not an all-versions CSV report of this bucket.
        """
        config = self._inventory_config()
        runs: list[str] = []
        for page in self.paginate(
            "s3",
            "list_objects_v2",
            resource=s3_url(config.bucket, config.prefix),
            Bucket=config.bucket,
            Prefix=config.prefix,
            Delimiter="/",
        ):
            if requests is not None:
                requests.add("ListObjectsV2")
            runs.extend(
                p["Prefix"]
                for p in page.get("CommonPrefixes", ())
                if _RUN_FOLDER.search(p["Prefix"])
            )
        if not runs:
            msg = (
                f"no S3 Inventory report under {s3_url(config.bucket, config.prefix)} "
                "(expected folders YYYY-MM-DDTHH-MMZ/ holding manifest.json)"
            )
            raise ResourceNotFoundError(
                msg, backend=self.name, operation="ListObjectsV2", resource=config.prefix
            )
        key = max(runs) + "manifest.json"
        where = s3_url(config.bucket, key)
        if requests is not None:
            requests.add("GetObject")
        result = self.call("s3", "get_object", resource=where, Bucket=config.bucket, Key=key)
        body = result["Body"]
        try:
            manifest = InventoryManifest.parse(body.read(), where)
        finally:
            body.close()
        if manifest.source_bucket != self.bucket:
            raise PolicyError.for_field(
                "inventory.prefix",
                f"the inventory of bucket {self.bucket!r}",
                f"{where} lists bucket {manifest.source_bucket!r}",
            )
        return manifest

    def inventory_state(
        self, when: datetime, manifest: InventoryManifest, requests: Requests | None = None
    ) -> InventoryState:
        """Read every data file of *manifest* (checking its MD5) into the state at *when*."""
        state = InventoryState(
            math.floor(when.timestamp()), prefix=self.prefix, internal_prefix=self.internal_prefix
        )
        bucket = manifest.destination_bucket or self._inventory_config().bucket
        for item in manifest.files:
            where = s3_url(bucket, item.key)
            if requests is not None:
                requests.add("GetObject")
            body = self.call("s3", "get_object", resource=where, Bucket=bucket, Key=item.key)[
                "Body"
            ]
            try:
                state.add(read_csv_rows(body, manifest.columns, md5=item.md5, where=where))
            finally:
                body.close()
        return state

    # The restore ----------------------------------------------------------------------------

    def _restore_from_inventory(  # noqa: C901 - plan, spool, run, large copies
        self,
        when: datetime,
        target_bucket: str,
        target_prefix: str,
        *,
        dry_run: bool,
        requests: Requests,
        force: bool,
    ) -> tuple[Counter[str], Counter[str], BatchOutcome] | None:
        """Plan (and unless *dry_run* run) a restore into another bucket/prefix from the inventory.

        Returns ``None`` when the inventory holds fewer than ``min_versions`` versions under the
        prefix and not *force* (the caller lists instead); else the counts (``keys``,
        ``restored``, ``ambiguous``, ``bytes``), the skipped keys by reason, and the job.
        """
        config = self._inventory_config()
        if self.prefix and not target_prefix.endswith(self.prefix):
            raise PolicyError.for_field(
                "dest_prefix",
                f"a prefix ending with the source prefix {self.prefix!r} (S3 Batch Operations "
                "copies keep each key and only put a prefix in front of it)",
                target_prefix,
            )
        manifest = self.latest_inventory(requests)
        if manifest.created < when:
            raise PolicyError.for_field(
                "when",
                f"a time at or before the newest inventory's scan ({manifest.created.isoformat()})",
                when.isoformat(),
                hint="Writes after the scan are not in the report: restore with engine='listing', "
                "or after the next inventory.",
            )
        state = self.inventory_state(when, manifest, requests)
        if state.versions < config.min_versions and not force:
            return None
        counts: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        counts["keys"] = state.keys
        large: list[tuple[str, str, int]] = []
        outcome = BatchOutcome(
            inventory=manifest.where, inventory_created=manifest.created.isoformat(), tasks=0
        )
        with tempfile.TemporaryFile("w+b") as spool:
            text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
            for decision in state.decisions(in_place=False):
                counts["ambiguous"] += decision.ambiguous
                if decision.action != "copy" or decision.version_id is None:
                    skipped[decision.action] += 1
                    continue
                counts["restored"] += 1
                counts["bytes"] += decision.size
                if decision.size > MAX_COPY_OBJECT_SIZE:
                    large.append((decision.key, decision.version_id, decision.size))
                    continue
                text.write(f"{self.bucket},{quote(decision.key, safe='/')},{decision.version_id}\n")
                outcome["tasks"] += 1
            text.flush()
            text.detach()
            if dry_run:
                return counts, skipped, outcome
            if outcome["tasks"]:
                self._run_batch(
                    spool=spool,
                    config=config,
                    target_bucket=target_bucket,
                    target_prefix=target_prefix,
                    requests=requests,
                    outcome=outcome,
                )
        if large:
            with Pool(4) as pool:
                for key, version_id, size in large:
                    pool.submit(
                        self._copy_version,
                        key,
                        version_id,
                        size=size,
                        dest_bucket=target_bucket,
                        dest_key=self._relocate(key, target_prefix),
                        requests=requests,
                    )
        return counts, skipped, outcome

    # The batch job ----------------------------------------------------------------------------

    def _upload(self, spool: IO[bytes], bucket: str, key: str, requests: Requests) -> str:
        """Upload the spooled manifest (multipart above one part); returns its ETag."""
        size = spool.seek(0, io.SEEK_END)
        spool.seek(0)
        where = s3_url(bucket, key)
        if size <= _PART:
            requests.add("PutObject")
            put = self.call(
                "s3", "put_object", resource=where, Bucket=bucket, Key=key, Body=spool.read()
            )
            return str(put["ETag"]).strip('"')
        requests.add("CreateMultipartUpload")
        upload = self.call("s3", "create_multipart_upload", resource=where, Bucket=bucket, Key=key)
        upload_id = str(upload["UploadId"])
        parts: list[dict[str, Any]] = []
        try:
            while chunk := spool.read(_PART):
                requests.add("UploadPart")
                part = self.call(
                    "s3",
                    "upload_part",
                    resource=where,
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=len(parts) + 1,
                    Body=chunk,
                )
                parts.append({"PartNumber": len(parts) + 1, "ETag": part["ETag"]})
            requests.add("CompleteMultipartUpload")
            done = self.call(
                "s3",
                "complete_multipart_upload",
                resource=where,
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            self.call(
                "s3",
                "abort_multipart_upload",
                resource=where,
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
            )
            raise
        return str(done["ETag"]).strip('"')

    def _run_batch(
        self,
        *,
        spool: IO[bytes],
        config: InventoryConfig,
        target_bucket: str,
        target_prefix: str,
        requests: Requests,
        outcome: BatchOutcome,
    ) -> None:
        report_bucket, report_prefix = _split(config.report)
        token = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}"
        manifest_key = f"{report_prefix}manifests/{self.name}/{token}.csv"
        etag = self._upload(spool, report_bucket, manifest_key, requests)
        outcome["manifest"] = s3_url(report_bucket, manifest_key)
        operation: dict[str, Any] = {
            "TargetResource": _arn(target_bucket),
            "MetadataDirective": "COPY",
        }
        key_prefix = target_prefix[: len(target_prefix) - len(self.prefix)]
        if key_prefix:
            operation["TargetKeyPrefix"] = key_prefix
        reports = f"{report_prefix}reports/{self.name}"
        requests.add("CreateJob")
        job = self.call(
            "s3control",
            "create_job",
            resource=outcome["manifest"],
            AccountId=self._account(),
            ConfirmationRequired=False,
            Operation={"S3PutObjectCopy": operation},
            Report={
                "Bucket": _arn(report_bucket),
                "Format": "Report_CSV_20180820",
                "Enabled": True,
                "Prefix": reports,
                "ReportScope": "AllTasks",
            },
            ClientRequestToken=token,
            Manifest={
                "Spec": {
                    "Format": "S3BatchOperations_CSV_20180820",
                    "Fields": ["Bucket", "Key", "VersionId"],
                },
                "Location": {"ObjectArn": _arn(report_bucket, manifest_key), "ETag": etag},
            },
            Description=f"backuppolicy point-in-time restore of {self.url}"[:256],
            Priority=config.priority,
            RoleArn=config.role_arn,
        )
        job_id = str(job["JobId"])
        outcome["job_id"] = job_id
        status = self._wait(job_id, requests)
        outcome["status"] = status
        outcome["report"] = s3_url(report_bucket, f"{reports}/job-{job_id}/")
        self._check_report(
            job_id=job_id,
            status=status,
            bucket=report_bucket,
            folder=f"{reports}/job-{job_id}/",
            requests=requests,
            outcome=outcome,
        )

    def _wait(self, job_id: str, requests: Requests) -> str:
        status = ""
        for attempt in range(self.batch_max_polls):
            if attempt:
                self._sleep(self.batch_poll_seconds)
            requests.add("DescribeJob")
            job = self.call(
                "s3control",
                "describe_job",
                resource=job_id,
                AccountId=self._account(),
                JobId=job_id,
            )["Job"]
            status = str(job.get("Status", ""))
            if status in _TERMINAL:
                return status
        raise BatchJobError(
            f"S3 Batch Operations job {job_id} is still {status!r} after "
            f"{self.batch_max_polls} polls; it was not reported as done",
            job_id=job_id,
            status=status,
            expected=0,
            succeeded=0,
            backend=self.name,
        )

    def _check_report(
        self,
        *,
        job_id: str,
        status: str,
        bucket: str,
        folder: str,
        requests: Requests,
        outcome: BatchOutcome,
    ) -> None:
        """Read the completion report: every task succeeded, or `BatchJobError` naming the keys."""
        expected = int(outcome["tasks"])
        succeeded = 0
        failed: list[tuple[str, str, str, str]] = []
        failed_total = 0
        for row in self._report_rows(bucket, folder, requests):
            if row[3] == "succeeded":
                succeeded += 1
                continue
            failed_total += 1
            if len(failed) < _NAMED_FAILURES:
                failed.append((unquote_plus(row[1]), row[2], _error_code(row), row[6]))
        outcome["succeeded"] = succeeded
        if status == "Complete" and failed_total == 0 and succeeded == expected:
            return
        names = ", ".join(f"{key}@{vid} ({code})" for key, vid, code, _ in failed)
        more = f" and {failed_total - len(failed)} more" if failed_total > len(failed) else ""
        missing = expected - succeeded - failed_total
        unreported = f"; {missing} task(s) missing from the report" if missing > 0 else ""
        raise BatchJobError(
            f"S3 Batch Operations job {job_id} ended {status}: {succeeded} of {expected} "
            f"version(s) copied, {failed_total} failed{unreported}"
            + (f": {names}{more}" if names else ""),
            job_id=job_id,
            status=status,
            expected=expected,
            succeeded=succeeded,
            failed=tuple(failed),
            failed_total=failed_total,
            backend=self.name,
        )

    def _report_rows(self, bucket: str, folder: str, requests: Requests) -> Iterator[list[str]]:
        where = s3_url(bucket, folder + "manifest.json")
        requests.add("GetObject")
        try:
            body = self.call(
                "s3", "get_object", resource=where, Bucket=bucket, Key=folder + "manifest.json"
            )["Body"]
        except ResourceNotFoundError:
            return  # no report at all: counted as nothing succeeded
        try:
            results = json.loads(body.read()).get("Results", [])
        finally:
            body.close()
        for result in results:
            key, rbucket = str(result["Key"]), str(result.get("Bucket") or bucket)
            requests.add("GetObject")
            stream = self.call(
                "s3", "get_object", resource=s3_url(rbucket, key), Bucket=rbucket, Key=key
            )["Body"]
            try:
                text = io.TextIOWrapper(
                    io.BufferedReader(_Readable(stream.read)), encoding="utf-8", newline=""
                )
                for row in csv.reader(text):
                    if len(row) >= 4:  # noqa: PLR2004 - Bucket, Key, VersionId, TaskStatus, ...
                        yield [*row, "", "", ""][:7]
            finally:
                stream.close()


def _error_code(row: list[str]) -> str:
    """The error code of a report row (AWS's examples put ErrorCode and HTTPStatusCode both ways)."""
    four, five = row[4], row[5]
    return five if four.isdigit() else four or five


class _Readable(io.RawIOBase):
    """A file object over a ``read(n)`` callable (a botocore streaming body)."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
