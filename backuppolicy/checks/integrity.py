"""Integrity checks: the data of a copy is free from corruption (seed §4).

`IntegrityCheck` covers every kind of copy: archives against their sidecar, S3 object versions
and manifests against their stored checksums (downloading only when needed), EBS snapshots
restored to volumes, RDS snapshots by their status.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import attrs

from backuppolicy.checks._common import error_result, make_result, region_of
from backuppolicy.core.exceptions import BackupPolicyError, ResourceNotFoundError, VerificationError
from backuppolicy.core.model import RecoveryPoint, Status
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.targets import (
    BackupTarget,
    DatabaseSnapshotPoints,
    ObjectVersionPoints,
    SnapshotPoints,
)

if TYPE_CHECKING:  # verify.py re-exports this check
    from backuppolicy.checks.verify import VerifyContext

__all__ = ["IntegrityCheck"]


_CHUNK = 1024 * 1024
_MAX_ISSUES = 20
_KMS = frozenset({"aws:kms", "aws:kms:dsse"})


def _b64_of_hex(hexdigest: str) -> str:
    return base64.b64encode(bytes.fromhex(hexdigest)).decode()


@attrs.frozen
class _ObjectCheck:
    """What the integrity check of one S3 object version found."""

    key: str
    version_id: str | None
    method: str
    issues: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    downloaded: int = 0
    sha256: str | None = None


def _check_s3_object(  # noqa: C901, PLR0912, PLR0915 - one decision table, kept in one place
    store: ObjectVersionPoints,
    *,
    bucket: str,
    key: str,
    version_id: str | None,
    region: str | None,
    content: str,
    expected_size: int | None = None,
    expected_etag: str | None = None,
    expected_sha256: str | None = None,
) -> _ObjectCheck:
    """Check one object version against what was recorded, downloading only when needed."""
    label = f"s3://{bucket}/{key}" + ("" if version_id is None else f"?versionId={version_id}")
    try:
        head = store.object_version_head(bucket, key, version_id, region=region)
    except ResourceNotFoundError:
        return _ObjectCheck(key, version_id, "head", issues=(f"{label}: missing",))
    issues: list[str] = []
    warnings: list[str] = []
    size = int(head.get("ContentLength") or 0)
    etag = str(head.get("ETag", "")).strip('"')
    stored = head.get("ChecksumSHA256")
    stored_full = stored if isinstance(stored, str) and "-" not in stored else None
    multipart = "-" in etag
    kms = head.get("ServerSideEncryption") in _KMS or bool(head.get("SSECustomerAlgorithm"))
    etag_is_md5 = not multipart and not kms
    if expected_size is not None and size != expected_size:
        issues.append(f"{label}: expected {expected_size} bytes (got {size})")
    if expected_etag and etag != expected_etag.strip('"'):
        issues.append(f"{label}: expected ETag {expected_etag} (got {etag})")
    if expected_sha256 and stored_full and _b64_of_hex(expected_sha256) != stored_full:
        issues.append(f"{label}: expected sha256:{expected_sha256} (stored {stored_full})")
    download = content == "always" or (
        content == "auto" and stored_full is None and not etag_is_md5
    )
    if not download:
        if stored_full is not None:
            method = "stored-sha256"
        elif etag_is_md5:
            method = "etag-md5"
        else:
            method = "metadata-only"
            warnings.append(f"{label}: no stored checksum and content not read")
        return _ObjectCheck(key, version_id, method, tuple(issues), tuple(warnings))
    sha = hashlib.sha256()
    md5 = hashlib.md5()  # noqa: S324 - S3's ETag is an MD5; not used for security
    read = 0
    body = store.open_object_version(bucket, key, version_id, region=region)
    try:
        for chunk in body.iter_chunks(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            read += len(chunk)
    except Exception as exc:  # noqa: BLE001 - botocore's checksum validation fails the read
        issues.append(f"{label}: reading the content failed: {type(exc).__name__}: {exc}")
        return _ObjectCheck(key, version_id, "download", tuple(issues), (), read)
    finally:
        body.close()
    compared = False
    if read != size:
        issues.append(f"{label}: read {read} bytes, expected {size}")
    if stored_full is not None:
        compared = True
        if _b64_of_hex(sha.hexdigest()) != stored_full:
            issues.append(f"{label}: content sha256 does not match the stored checksum")
    if etag_is_md5:
        compared = True
        if md5.hexdigest() != etag:
            issues.append(f"{label}: content MD5 {md5.hexdigest()} does not match ETag {etag}")
    if expected_sha256:
        compared = True
        if sha.hexdigest() != expected_sha256:
            issues.append(
                f"{label}: expected sha256:{expected_sha256} (got sha256:{sha.hexdigest()})"
            )
    if not compared:
        warnings.append(
            f"{label}: no stored checksum to compare with; its sha256 is recorded in the evidence"
        )
    return _ObjectCheck(
        key, version_id, "download-sha256", tuple(issues), tuple(warnings), read, sha.hexdigest()
    )


_T = TypeVar("_T")


def _batched(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _hex_of(checksum: str | None) -> str | None:
    if checksum and checksum.startswith("sha256:"):
        return checksum[len("sha256:") :]
    return None


@attrs.frozen
class IntegrityCheck:
    """Check that a copy is free from corruption (seed §4), for every kind of copy.

    * **Archives** (`backuppolicy.local.Directory`, in a `DirectoryStore` or an `S3Store`): the
      archive is re-read, streaming, and its SHA-256 compared with the sidecar
      (`backuppolicy.local.Directory.verify`). With *deep*, it is also restored into a temporary
      directory, where every file is checked against the manifest.
    * **S3 versions**: ``HeadObject`` (``ChecksumMode=ENABLED``) must show the recorded size and
      ETag, and the stored SHA-256 checksum (``ChecksumAlgorithm=SHA256``) or, for single-part
      objects not encrypted with KMS, the ETag (an MD5 of the content) is the proof, without
      downloading. Objects with neither (multipart without additional checksum, SSE-KMS) are
      downloaded and hashed, streaming. A copy is compared with its source version too.
    * **S3 manifests**: every version the manifest lists is checked as above (in parallel).
    * **EBS snapshots** (and every snapshot of an EC2 backup): restored to volumes through the
      target's `restore` (isolation profile, sweep tag); each volume must appear with the
      snapshot's size and be torn down afterwards.
    * **RDS snapshots**: RDS exposes no checksum; the snapshot must be available and complete
      (``method: rds-snapshot-status``); restore tests prove the data.
    * Other targets with a ``verify(point)`` method: that method (it raises on a mismatch).

    Attributes:
        content: For S3 objects: ``"auto"`` (download only without a stored checksum),
            ``"always"`` (re-read and hash every object) or ``"never"``.
        deep: For archives: also restore and check every file against the manifest.
        restore_volumes: For EBS snapshots: restore them to volumes (else metadata only).
        max_workers: Objects checked at once for S3 manifests.
        name: Name of the check.
    """

    content: str = attrs.field(
        default="auto", validator=attrs.validators.in_(("auto", "always", "never"))
    )
    deep: bool = False
    restore_volumes: bool = True
    max_workers: int = 8
    name: str = "integrity"
    scope: ClassVar[str] = "point"

    def verify(
        self, target: BackupTarget, point: RecoveryPoint | None, context: VerifyContext
    ) -> CheckResult:
        """Check the point's data; a mismatch is a `CheckStatus.FAIL` result, never an exception."""
        started = time.monotonic()
        kind = CheckKind.INTEGRITY
        if point is None:
            return make_result(
                self.name,
                CheckStatus.SKIPPED,
                target,
                None,
                context,
                started=started,
                details="no point to check",
                kind=kind,
            )
        if point.status is Status.PENDING:
            return make_result(
                self.name,
                CheckStatus.SKIPPED,
                target,
                point,
                context,
                started=started,
                details="pending: checked once completed",
                kind=kind,
            )
        if not point.is_good:
            issue = f"not restorable: {point.status.value}"
            return make_result(
                self.name,
                CheckStatus.FAIL,
                target,
                point,
                context,
                started=started,
                details=issue,
                issues=[issue],
                kind=kind,
            )
        try:
            status, details, issues, evidence = self._dispatch(target, point, context)
        except BackupPolicyError as exc:
            return error_result(self.name, target, point, context, exc, started=started, kind=kind)
        return make_result(
            self.name,
            status,
            target,
            point,
            context,
            started=started,
            details=details,
            issues=issues,
            evidence=evidence,
            kind=kind,
        )

    def _dispatch(
        self, target: BackupTarget, point: RecoveryPoint, context: VerifyContext
    ) -> tuple[CheckStatus, str, list[str], dict[str, object]]:
        if isinstance(target, ObjectVersionPoints) and (found := target.point_object(point)):
            if target.is_manifest(point):
                return self._s3_manifest(target, point, found[0])
            return self._s3_version(target, point, found)
        if isinstance(target, SnapshotPoints) and target.point_snapshot_ids(point) is not None:
            return self._ebs(target, point, context)
        if isinstance(target, DatabaseSnapshotPoints) and target.is_database_snapshot(point):
            return self._rds(point)
        verify = getattr(target, "verify", None)
        if callable(verify):
            return self._archive(verify, target, point, context)
        return (
            CheckStatus.SKIPPED,
            f"no integrity check for kind {point.kind!r} on {type(target).__name__}",
            [],
            {},
        )

    def _archive(
        self,
        verify: Callable[[RecoveryPoint], object],
        target: BackupTarget,
        point: RecoveryPoint,
        context: VerifyContext,
    ) -> tuple[CheckStatus, str, list[str], dict[str, object]]:
        evidence: dict[str, object] = {
            "method": "archive-sha256-vs-sidecar",
            "location": point.location,
        }
        try:
            checksum = verify(point)
            evidence["checksum"] = str(checksum)
            if self.deep:
                with target.restore(point, into=context.isolation) as restored:
                    evidence["restored_files"] = restored.details.get("files")
                evidence["method"] = "archive-sha256-vs-sidecar+files-vs-manifest"
        except VerificationError as exc:
            evidence["mismatch"] = (
                exc.result if isinstance(exc.result, Mapping) else str(exc.result)
            )
            return CheckStatus.FAIL, str(exc), [str(exc)], evidence
        details = f"archive matches its recorded {evidence['checksum']}"
        if self.deep:
            details += f"; {evidence.get('restored_files')} file(s) match the manifest"
        return CheckStatus.PASS, details, [], evidence

    def _s3_version(
        self,
        target: ObjectVersionPoints,
        point: RecoveryPoint,
        location: tuple[str, str, str | None],
    ) -> tuple[CheckStatus, str, list[str], dict[str, object]]:
        bucket, key, version = location
        region = region_of(point, target)
        etag = point.details.get("etag")
        sha = _hex_of(point.checksum)
        source_evidence: dict[str, object] = {}
        source = point.details.get("source")
        if isinstance(source, str) and "@" in source and target.bucket:
            src_key, _, src_version = source.rpartition("@")
            src_head = target.object_version_head(target.bucket, src_key, src_version, region=None)
            src_etag = str(src_head.get("ETag", "")).strip('"')
            etag = etag or src_etag
            source_evidence = {
                "source": source,
                "source_etag": src_etag,
                "source_sha256": src_head.get("ChecksumSHA256"),
            }
        found = _check_s3_object(
            target,
            bucket=bucket,
            key=key,
            version_id=version,
            region=region,
            content=self.content,
            expected_size=point.size_bytes,
            expected_etag=str(etag) if etag else None,
            expected_sha256=sha,
        )
        evidence = {
            "method": found.method,
            "bucket": bucket,
            "key": key,
            "version_id": version,
            "downloaded_bytes": found.downloaded,
            "sha256": found.sha256,
            **source_evidence,
        }
        if found.issues:
            return CheckStatus.FAIL, "; ".join(found.issues), list(found.issues), evidence
        if found.warnings:
            return CheckStatus.WARN, "; ".join(found.warnings), list(found.warnings), evidence
        return CheckStatus.PASS, f"object version intact ({found.method})", [], evidence

    def _s3_manifest(
        self, target: ObjectVersionPoints, point: RecoveryPoint, bucket: str
    ) -> tuple[CheckStatus, str, list[str], dict[str, object]]:
        # *bucket*: where the manifest's versions live (copies live elsewhere)
        region = region_of(point, target)
        methods: Counter[str] = Counter()
        issues: list[str] = []
        warnings: list[str] = []
        checked = downloaded = 0

        def one(line: Mapping[str, Any]) -> _ObjectCheck:
            return _check_s3_object(
                target,
                bucket=bucket,
                key=str(line["key"]),
                version_id=str(line["version_id"]),
                region=region,
                content=self.content,
                expected_size=int(line["size"]) if line.get("size") is not None else None,
                expected_etag=str(line.get("etag") or "") or None,
            )

        with ThreadPoolExecutor(max_workers=max(1, self.max_workers)) as pool:
            for batch in _batched(target.read_manifest(point), 1000):  # bounded memory
                for found in pool.map(one, batch):
                    checked += 1
                    methods[found.method] += 1
                    downloaded += found.downloaded
                    issues.extend(found.issues)
                    warnings.extend(found.warnings)
        evidence = {
            "method": "manifest: every listed version",
            "objects": checked,
            "methods": dict(methods),
            "downloaded_bytes": downloaded,
            "problems": issues[:_MAX_ISSUES],
        }
        if issues:
            details = f"{len(issues)} problem(s) in {checked} object(s): " + "; ".join(issues[:3])
            return CheckStatus.FAIL, details, issues[:_MAX_ISSUES], evidence
        if warnings:
            return CheckStatus.WARN, "; ".join(warnings[:3]), warnings[:_MAX_ISSUES], evidence
        return CheckStatus.PASS, f"all {checked} object version(s) intact", [], evidence

    def _ebs(
        self,
        target: SnapshotPoints,
        point: RecoveryPoint,
        context: VerifyContext,
    ) -> tuple[CheckStatus, str, list[str], dict[str, object]]:
        members = [m for m in point.details.get("snapshots", ()) or () if isinstance(m, Mapping)]
        issues = [
            f"snapshot {m.get('snapshot_id')}: state {m.get('state')}, progress {m.get('progress')}"
            for m in members
            if m.get("state") not in (None, "completed") or m.get("progress") not in (None, "100%")
        ]
        evidence: dict[str, object] = {"method": "snapshot-state", "snapshots": len(members) or 1}
        if issues or not self.restore_volumes:
            status = CheckStatus.FAIL if issues else CheckStatus.PASS
            return status, "; ".join(issues) or "every snapshot completed", issues, evidence
        sizes = {str(m.get("snapshot_id")): m.get("size_gib") for m in members}
        region = region_of(point, target)
        volumes: list[dict[str, object]] = []
        restore = cast("BackupTarget", target).restore
        with restore(point, into=context.isolation) as restored:
            created = [v for v in restored.details.get("volumes", ()) if isinstance(v, Mapping)]
            ids = [str(v["volume_id"]) for v in created]
            described = target.describe_volumes(ids, region=region, resource=point.id)
            for volume in described:
                snapshot_id = str(volume.get("SnapshotId"))
                expected = sizes.get(snapshot_id)
                volumes.append(
                    {
                        "volume_id": volume.get("VolumeId"),
                        "snapshot_id": snapshot_id,
                        "size_gib": volume.get("Size"),
                        "state": volume.get("State"),
                    }
                )
                if expected is not None and volume.get("Size") != expected:
                    issues.append(
                        f"volume {volume.get('VolumeId')} from {snapshot_id}: expected "
                        f"{expected} GiB (got {volume.get('Size')})"
                    )
            if len(volumes) != len(ids):
                issues.append(f"expected {len(ids)} restored volume(s) (got {len(volumes)})")
        left = self._left_behind(target, ids, region)
        if left:
            issues.append(f"volume(s) not torn down: {', '.join(left)}")
        evidence.update(
            {
                "method": "restore-to-volume",
                "volumes": volumes,
                "torn_down": not left,
                "availability_zone": restored.details.get("availability_zone"),
            }
        )
        if issues:
            return CheckStatus.FAIL, "; ".join(issues), issues, evidence
        return (
            CheckStatus.PASS,
            f"{len(volumes)} volume(s) restored with the snapshot's size and torn down",
            [],
            evidence,
        )

    @staticmethod
    def _left_behind(target: SnapshotPoints, ids: list[str], region: str | None) -> list[str]:
        if not ids:
            return []
        try:
            described = target.describe_volumes(ids, region=region)
        except ResourceNotFoundError:
            return []
        return [
            str(v.get("VolumeId"))
            for v in described
            if v.get("State") not in ("deleting", "deleted")
        ]

    @staticmethod
    def _rds(point: RecoveryPoint) -> tuple[CheckStatus, str, list[str], dict[str, object]]:
        rds_status = point.details.get("rds_status")
        evidence = {
            "method": "rds-snapshot-status",
            "rds_status": rds_status,
            "note": "RDS exposes no snapshot checksum; restore tests prove the data",
        }
        if rds_status not in (None, "available"):
            issue = f"snapshot status {rds_status}"
            return CheckStatus.FAIL, issue, [issue], evidence
        return (
            CheckStatus.PASS,
            "snapshot available and complete (RDS keeps no checksum)",
            [],
            evidence,
        )
