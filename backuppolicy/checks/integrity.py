"""Integrity checks: the data of a copy is free from corruption (seed §4).

`IntegrityCheck` covers every kind of copy: archives against their sidecar, S3 object versions
and manifests against their stored checksums (downloading only when needed), EBS snapshots block
by block against their copy in another region (EBS direct APIs), RDS snapshots restored into the
isolation profile and probed (their status alone proves only that they exist).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import attrs

from backuppolicy.checks._common import error_result, make_result, region_of
from backuppolicy.checks.probes import ProbeLike
from backuppolicy.checks.restore_test import RestoreTest
from backuppolicy.core.exceptions import BackupPolicyError, ResourceNotFoundError, VerificationError
from backuppolicy.core.model import RecoveryPoint, Status
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.targets import (
    BackupTarget,
    BlockDigest,
    DatabaseSnapshotPoints,
    ObjectVersionPoints,
    SnapshotBlocks,
    SnapshotPoints,
)

if TYPE_CHECKING:  # verify.py re-exports this check
    from backuppolicy.checks.verify import VerifyContext

__all__ = ["IntegrityCheck"]


_CHUNK = 1024 * 1024
_MAX_ISSUES = 20
_MAX_SAMPLE_SHOWN = 256
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


def _to_probes(value: Iterable[ProbeLike]) -> tuple[ProbeLike, ...]:
    return tuple(value)


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
    * **EBS snapshots** (and every snapshot of an EC2 backup), with *ebs_direct* and a target
      that reads blocks (`~backuppolicy.core.targets.SnapshotBlocks`): the snapshot and its copy
      in the other tier (the source of a copy, or the copy of a source) are compared through
      the EBS direct APIs: the same block indexes (``ListSnapshotBlocks``), and the SHA-256 of
      the data of *sample_blocks* blocks (``GetSnapshotBlock``; every block when there are
      fewer), chosen by a seeded shuffle whose seed is in the evidence. Each block read is also
      compared with the checksum EBS returns with it. Without a copy to compare with, the
      sample is checked against those checksums alone. A block missing on one side, or whose
      data differs, is a `CheckStatus.FAIL` naming its index; no block read is not a pass.
    * EBS snapshots without *ebs_direct*: restored to volumes through the target's `restore`
      (isolation profile, sweep tag); each volume must appear with the snapshot's size and be
      torn down afterwards (evidence of size, not of data).
    * **RDS snapshots**: RDS exposes no checksum. With *restore_databases*, the snapshot (an
      off-site copy too) is restored into the isolation profile and *probes* run against it
      (`~backuppolicy.checks.restore_test.RestoreTest`): that is the proof of its data. Without
      it, or without probes, status ``available`` is only evidence that the snapshot exists:
      the result is `CheckStatus.UNPROVEN`, never a pass.
    * Other targets with a ``verify(point)`` method: that method (it raises on a mismatch).

    Attributes:
        content: For S3 objects: ``"auto"`` (download only without a stored checksum),
            ``"always"`` (re-read and hash every object) or ``"never"``.
        deep: For archives: also restore and check every file against the manifest.
        restore_volumes: For EBS snapshots: restore them to volumes (else metadata only).
        max_workers: Objects checked at once for S3 manifests.
        ebs_direct: For EBS snapshots: compare blocks through the EBS direct APIs.
        sample_blocks: For EBS snapshots: how many common blocks to read and hash per snapshot.
        restore_databases: For RDS snapshots: restore them into isolation and run *probes*.
        probes: The probes a restored database must pass (`backuppolicy.checks.probes`).
        name: Name of the check.
    """

    content: str = attrs.field(
        default="auto", validator=attrs.validators.in_(("auto", "always", "never"))
    )
    deep: bool = False
    restore_volumes: bool = True
    max_workers: int = 8
    ebs_direct: bool = True
    sample_blocks: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    restore_databases: bool = False
    probes: Sequence[ProbeLike] = attrs.field(default=(), converter=_to_probes)
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

    def _dispatch(  # noqa: PLR0911 - one branch per kind of copy
        self, target: BackupTarget, point: RecoveryPoint, context: VerifyContext
    ) -> tuple[CheckStatus, str, list[str], dict[str, object]]:
        if isinstance(target, ObjectVersionPoints) and (found := target.point_object(point)):
            if target.is_manifest(point):
                return self._s3_manifest(target, point, found[0])
            return self._s3_version(target, point, found)
        if isinstance(target, SnapshotPoints) and target.point_snapshot_ids(point) is not None:
            if self.ebs_direct and isinstance(target, SnapshotBlocks):
                return self._ebs_blocks(target, point, context)
            return self._ebs(target, point, context)
        if isinstance(target, DatabaseSnapshotPoints) and target.is_database_snapshot(point):
            return self._rds(target, point, context)
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
            (
                f"{len(volumes)} volume(s) restored with the snapshot's size and torn down "
                "(size only: evidence of the volumes, not of their data)"
            ),
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

    def _rds(
        self, target: BackupTarget, point: RecoveryPoint, context: VerifyContext
    ) -> tuple[CheckStatus, str, list[str], dict[str, object]]:
        rds_status = point.details.get("rds_status")
        evidence: dict[str, object] = {"method": "rds-snapshot-status", "rds_status": rds_status}
        if rds_status not in (None, "available"):
            issue = f"snapshot status {rds_status}"
            return CheckStatus.FAIL, issue, [issue], evidence
        if not self.restore_databases:
            evidence["note"] = "status proves the snapshot exists, not its data"
            note = (
                "snapshot available: evidence it exists, not of its data "
                "(an integrity restore with probes proves the data)"
            )
            return CheckStatus.UNPROVEN, note, [], evidence
        tested = RestoreTest(probes=self.probes).verify(target, point, context)
        evidence = {
            "method": "restore-into-isolation+probes",
            "rds_status": rds_status,
            "probes_run": len(self.probes),
            "restore": dict(tested.evidence),
        }
        if tested.status is CheckStatus.FAIL:
            return CheckStatus.FAIL, tested.details, list(tested.issues), evidence
        if not self.probes:
            note = "restored into isolation and torn down, but no probe ran: the data is unproven"
            return CheckStatus.UNPROVEN, note, [], evidence
        if tested.status is not CheckStatus.PASS:
            return tested.status, tested.details, list(tested.issues), evidence
        return CheckStatus.PASS, f"restored into isolation: {tested.details}", [], evidence

    # -- EBS direct APIs ----------------------------------------------------------------------

    def _ebs_blocks(
        self, target: SnapshotBlocks, point: RecoveryPoint, context: VerifyContext
    ) -> tuple[CheckStatus, str, list[str], dict[str, object]]:
        region = region_of(point, target)
        members = [m for m in point.details.get("snapshots", ()) or () if isinstance(m, Mapping)]
        if not members:
            ids = cast("SnapshotPoints", target).point_snapshot_ids(point) or [point.id]
            members = [{"snapshot_id": i} for i in ids]
        seed = f"{point.target}/{point.id}/{context.now.date().isoformat()}"
        issues: list[str] = []
        warnings: list[str] = []
        compared: list[dict[str, object]] = []
        for member in members:
            snapshot_id = str(member["snapshot_id"])
            other = _counterpart(point, member, context.points, target)
            try:
                found = _compare_snapshot(
                    target,
                    snapshot_id,
                    region,
                    other,
                    rng=random.Random(f"{seed}/{snapshot_id}"),  # noqa: S311 - a sample
                    sample=self.sample_blocks,
                )
            except Exception as exc:  # noqa: BLE001 - an unreadable snapshot is a finding
                error = f"{snapshot_id}: the EBS direct APIs could not read it: {type(exc).__name__}: {exc}"
                found = _SnapshotFound({"snapshot_id": snapshot_id, "error": error}, (error,))
            compared.append(found.evidence)
            issues.extend(found.issues)
            warnings.extend(found.warnings)
        evidence: dict[str, object] = {
            "method": "ebs-direct-blocks",
            "seed": seed,
            "sample_blocks": self.sample_blocks,
            "snapshots": compared,
        }
        if issues:
            details = f"{len(issues)} problem(s): " + "; ".join(issues[:3])
            return CheckStatus.FAIL, details, issues[:_MAX_ISSUES], evidence
        if warnings:
            return CheckStatus.WARN, "; ".join(warnings[:3]), warnings[:_MAX_ISSUES], evidence
        read = sum(int(str(c.get("blocks_read", 0))) for c in compared)
        paired = sum(1 for c in compared if c.get("compared_with"))
        details = (
            f"{read} block(s) of {len(compared)} snapshot(s) read and matched "
            f"({paired} against their copy)"
        )
        return CheckStatus.PASS, details, [], evidence


@attrs.frozen
class _SnapshotFound:
    """What comparing one snapshot with its counterpart found."""

    evidence: dict[str, object]
    issues: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def _counterpart(
    point: RecoveryPoint,
    member: Mapping[str, Any],
    points: Sequence[RecoveryPoint],
    target: object,
) -> tuple[str, str | None] | None:
    """The snapshot to compare *member* with: the source of a copy, else a copy of it."""
    source = member.get("source_snapshot_id")
    if source:
        source_region = point.details.get("source_region")
        return str(source), str(source_region) if source_region else None
    snapshot_id = member.get("snapshot_id")
    for other in sorted(points, key=lambda p: p.order_key):
        if other.id == point.id or not other.is_good:
            continue
        for copy in other.details.get("snapshots", ()) or ():
            if isinstance(copy, Mapping) and copy.get("source_snapshot_id") == snapshot_id:
                return str(copy["snapshot_id"]), region_of(other, target)
    return None


def _walk(
    first: Iterator[tuple[int, str]], second: Iterator[tuple[int, str]] | None
) -> Iterator[tuple[int, str | None, str | None]]:
    """Merge two block listings by index: ``(index, first token, second token)``."""
    a = next(first, None)
    b = next(second, None) if second is not None else None
    last = -1
    while a is not None or b is not None:
        index = min(x[0] for x in (a, b) if x is not None)
        if index <= last:
            raise VerificationError(f"block listing not in index order at block {index}")
        last = index
        ta = a[1] if a is not None and a[0] == index else None
        tb = b[1] if b is not None and b[0] == index else None
        yield index, ta, tb
        if ta is not None:
            a = next(first, None)
        if tb is not None and second is not None:
            b = next(second, None)


def _compare_snapshot(  # noqa: C901, PLR0912 - one decision table, kept in one place
    target: SnapshotBlocks,
    snapshot_id: str,
    region: str | None,
    other: tuple[str, str | None] | None,
    *,
    rng: random.Random,
    sample: int,
) -> _SnapshotFound:
    """Compare the block lists of *snapshot_id* and *other*, and the data of a sample of blocks."""
    issues: list[str] = []
    warnings: list[str] = []
    evidence: dict[str, object] = {"snapshot_id": snapshot_id, "region": region}
    second: Iterator[tuple[int, str]] | None = None
    if other is not None:
        other_id, other_region = other
        listing = target.snapshot_blocks(other_id, region=other_region)
        try:
            head = next(listing, None)
        except ResourceNotFoundError:
            warnings.append(f"{snapshot_id}: its counterpart {other_id} no longer exists")
            evidence["counterpart_missing"] = other_id
            other = None
        else:
            second = itertools.chain([head] if head is not None else [], listing)
            evidence["compared_with"] = {"snapshot_id": other_id, "region": other_region}
    chosen: list[tuple[int, str | None, str | None]] = []
    total = common = 0
    only: list[int] = []
    for index, ta, tb in _walk(target.snapshot_blocks(snapshot_id, region=region), second):
        total += 1
        if other is not None and (ta is None or tb is None):
            only.append(index)
            continue
        common += 1  # reservoir sampling (algorithm R): a uniform sample in bounded memory
        if len(chosen) < sample:
            chosen.append((index, ta, tb))
        elif (j := rng.randrange(common)) < sample:
            chosen[j] = (index, ta, tb)
    chosen.sort(key=lambda item: item[0])
    if other is not None:
        issues.extend(
            f"block {index}: in only one of {snapshot_id} and its copy {other[0]}"
            for index in only[:_MAX_ISSUES]
        )
    verified = 0
    for index, ta, tb in chosen:
        mine = target.read_snapshot_block(snapshot_id, index, str(ta), region=region)
        issues.extend(_stored_mismatch(snapshot_id, mine))
        if other is None:
            verified += mine.matches_stored is True
            continue
        theirs = target.read_snapshot_block(other[0], index, str(tb), region=other[1])
        issues.extend(_stored_mismatch(other[0], theirs))
        if (mine.sha256, mine.length) != (theirs.sha256, theirs.length):
            issues.append(
                f"block {index}: data of {snapshot_id} (sha256:{mine.sha256[:16]}...) differs "
                f"from its copy {other[0]} (sha256:{theirs.sha256[:16]}...)"
            )
        else:
            verified += 1
    evidence.update(
        {
            "blocks": total,
            "blocks_in_both": common if other is not None else None,
            "blocks_in_one_only": len(only),
            "blocks_read": len(chosen),
            "sampled_indexes": [i for i, _, _ in chosen][:_MAX_SAMPLE_SHOWN],
        }
    )
    if not issues and verified == 0:
        why = "no block to read" if not chosen else "no copy and no stored checksum to compare with"
        warnings.append(f"{snapshot_id}: {why}: its data is unproven")
    return _SnapshotFound(evidence, tuple(issues), tuple(warnings))


def _stored_mismatch(snapshot_id: str, block: BlockDigest) -> list[str]:
    if block.matches_stored is False:
        return [f"block {block.index} of {snapshot_id}: data does not match its stored checksum"]
    return []
