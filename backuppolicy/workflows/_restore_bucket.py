"""S3 bucket restores: plan, observe the destination, execute.

Reaches the target through `backuppolicy.core.targets.RestorableBucket`; a prefix restored to a
time (or a manifest's time, or one object's earlier version) into another bucket/prefix or in
place (versioning checked first). Private: `backuppolicy.workflows._restore` dispatches to it.
"""

from __future__ import annotations

import hashlib
import heapq
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from backuppolicy.core.capabilities import RestorableBucket
from backuppolicy.core.exceptions import (
    PolicyError,
    ResourceNotFoundError,
)
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.restoring import (
    ABSENT,
    RestorePlan,
    RestoreStep,
    StepAction,
    choose_point,
)
from backuppolicy.workflows._restore_common import (
    Context,
    Outcome,
    Waiter,
    make_check,
)

if TYPE_CHECKING:
    import os

_NEWEST = 3
_MAX_COPY_OBJECT = 5 * 1024**3


def _parse_s3(value: str) -> tuple[str, str]:
    if not value.startswith("s3://") or not value[5:].split("/", 1)[0]:
        raise PolicyError.for_field("into", "an s3://bucket/prefix URL (or None: in place)", value)
    bucket, _, prefix = value[5:].partition("/")
    return bucket, prefix


def plan_bucket(  # noqa: C901, PLR0912 - one branch per kind of S3 restore
    ctx: Context,
    point: RecoveryPoint | str | None,
    at: datetime | None,
    into: str | os.PathLike[str] | None,
) -> RestorePlan:
    backend: RestorableBucket = ctx.backend
    if into is not None and not isinstance(into, str):
        raise PolicyError.for_field("into", "an s3://bucket/prefix URL (or None: in place)", into)
    dest_bucket, dest_prefix = _parse_s3(into) if into else (backend.bucket, backend.prefix)
    in_place = dest_bucket == backend.bucket and dest_prefix == backend.prefix
    chosen: RecoveryPoint | None = None
    version: tuple[str, str] | None = None
    if at is None:
        if (
            isinstance(point, str)
            and "@" in point
            and not point.startswith(backend.internal_prefix)
        ):
            key, _, vid = point.rpartition("@")
            chosen = RecoveryPoint(
                id=point,
                target=backend.name,
                created_at=ctx.now,
                kind="s3-version",
                details={"key": key, "version_id": vid},
            )
        else:
            chosen = choose_point(backend, point, before=None, kinds=("s3-manifest",))
        if chosen.kind == "s3-version":
            key, _, vid = chosen.id.rpartition("@")
            version = (key, vid)
        else:
            at = chosen.created_at
    dest_url = f"s3://{dest_bucket}/{dest_prefix}"
    if version is not None:
        return _plan_s3_version(ctx, chosen, version, dest_bucket, dest_prefix, in_place=in_place)  # type: ignore[arg-type]
    when = at.astimezone(UTC)  # type: ignore[union-attr]
    steps: list[RestoreStep] = []
    if in_place:
        status = backend.versioning()
        if status != "Enabled":
            raise PolicyError.for_field(
                "into",
                f"another bucket or prefix: an in-place restore needs versioning on s3://{backend.bucket} "
                "so the current versions are kept",
                f"in place, versioning {status}",
            )
        preview = backend.restore_to_time(when, dry_run=True)
        steps.append(
            RestoreStep(
                StepAction.OVERWRITE,
                dest_url,
                f"restore {preview.restored} key(s) to their version at {when.isoformat()} and put "
                f"a delete marker on {preview.deleted} key(s) created since; {preview.skipped_total} unchanged",
                destructive=preview.restored + preview.deleted > 0,
                keeps=f"every earlier version stays in s3://{backend.bucket} (versioning is on)",
            )
        )
    else:
        preview = backend.restore_to_time(when, dest_bucket, dest_prefix, dry_run=True)
        occupied = backend.has_objects(dest_bucket, dest_prefix)
        if occupied:
            versioned = backend.versioning_of(dest_bucket)
            if versioned != "Enabled":
                raise PolicyError.for_field(
                    "into",
                    "an empty destination, or one with versioning on (so what is there is kept)",
                    f"{dest_url} (has objects, versioning {versioned})",
                )
        steps.append(
            RestoreStep(
                StepAction.OVERWRITE if occupied else StepAction.CREATE,
                dest_url,
                f"copy {preview.restored} key(s) as they were at {when.isoformat()} into {dest_url}",
                destructive=occupied,
                keeps=f"earlier versions stay in s3://{dest_bucket} (versioning is on)"
                if occupied
                else None,
            )
        )
    steps.append(
        RestoreStep(
            StepAction.VERIFY,
            dest_url,
            "dry-run the restore again: nothing may be left to do"
            if in_place
            else "list the destination: every restored key must be there",
        )
    )
    if ctx.probes:
        steps.append(RestoreStep(StepAction.VERIFY, dest_url, f"run {len(ctx.probes)} probe(s)"))
    return ctx.plan(
        source=f"manifest {chosen.id}"
        if chosen
        else f"the state of {backend.url} at {when.isoformat()}",
        destination=dest_url,
        in_place=in_place,
        steps=tuple(steps),
        data_time=when,
        point=chosen,
        at=when,
        options={
            "dest_bucket": dest_bucket,
            "dest_prefix": dest_prefix,
            "expected": preview.restored,
        },
    )


def _plan_s3_version(
    ctx: Context,
    point: RecoveryPoint,
    version: tuple[str, str],
    dest_bucket: str,
    dest_prefix: str,
    *,
    in_place: bool,
) -> RestorePlan:
    backend: RestorableBucket = ctx.backend
    key, vid = version
    head = backend.object_head(backend.bucket, key, version_id=vid)
    size = int(head.get("ContentLength") or 0)
    if size > _MAX_COPY_OBJECT:
        raise PolicyError.for_field(
            "point",
            "an object version of at most 5 GiB (use at= for larger objects)",
            f"{point.id} ({size} bytes)",
        )
    dest_key = dest_prefix + key.removeprefix(backend.prefix) if not in_place else key
    occupied = backend.has_objects(dest_bucket, dest_key, exact=True)
    if occupied and backend.versioning_of(dest_bucket) != "Enabled":
        raise PolicyError.for_field(
            "into",
            "a destination with versioning on, or a key that does not exist yet",
            f"s3://{dest_bucket}/{dest_key} exists and versioning is off",
        )
    steps = [
        RestoreStep(
            StepAction.OVERWRITE if occupied else StepAction.CREATE,
            f"s3://{dest_bucket}/{dest_key}",
            f"copy version {vid} of {key} to s3://{dest_bucket}/{dest_key}",
            destructive=occupied,
            keeps="the current version stays as a noncurrent version" if occupied else None,
        ),
        RestoreStep(StepAction.VERIFY, f"s3://{dest_bucket}/{dest_key}", "compare ETag and size"),
    ]
    created = head.get("LastModified")
    return ctx.plan(
        source=f"version {vid} of {key}",
        destination=f"s3://{dest_bucket}/{dest_key}",
        in_place=in_place,
        steps=tuple(steps),
        data_time=created.astimezone(UTC) if isinstance(created, datetime) else point.created_at,
        point=point,
        options={
            "dest_bucket": dest_bucket,
            "dest_key": dest_key,
            "key": key,
            "version_id": vid,
            "etag": head.get("ETag"),
            "size": size,
        },
    )


def observe_bucket(plan: RestorePlan, backend: RestorableBucket) -> dict[str, str]:
    opts = plan.options
    bucket = str(opts["dest_bucket"])
    seen = {f"s3://{bucket} versioning": backend.versioning_of(bucket)}
    if "version_id" in opts:
        key = str(opts["dest_key"])
        try:
            head = backend.object_head(bucket, key)
        except ResourceNotFoundError:
            seen[f"s3://{bucket}/{key}"] = ABSENT
        else:
            seen[f"s3://{bucket}/{key}"] = (
                f"version {head.get('VersionId')}, ETag {head.get('ETag')}, "
                f"{head.get('ContentLength')} bytes"
            )
        return seen
    prefix = str(opts["dest_prefix"])
    internal = backend.internal_prefix if bucket == backend.bucket else None
    digest = hashlib.sha256()
    newest: list[tuple[str, str]] = []
    count = 0
    for item in backend.list_objects(bucket, prefix):
        key = str(item["Key"])
        if internal and key.startswith(internal):
            continue
        modified = item.get("LastModified")
        stamp = modified.isoformat() if isinstance(modified, datetime) else str(modified)
        digest.update(f"{key}\0{item.get('ETag')}\0{item.get('Size')}\0{stamp}\n".encode())
        count += 1
        heapq.heappush(newest, (stamp, key))
        if len(newest) > _NEWEST:
            heapq.heappop(newest)
    names = ", ".join(key for _, key in sorted(newest, reverse=True))
    seen[f"s3://{bucket}/{prefix}"] = (
        f"{count} object(s) (digest {digest.hexdigest()[:12]}; newest: {names})"
        if count
        else "no objects"
    )
    return seen


def run_bucket(plan: RestorePlan, waiter: Waiter) -> Outcome:  # noqa: ARG001 - same shape as the others
    backend = plan.backend
    assert isinstance(backend, RestorableBucket)  # noqa: S101 - dispatched on it
    opts = plan.options
    if "version_id" in opts:
        return _run_s3_version(plan, backend)
    bucket, prefix = str(opts["dest_bucket"]), str(opts["dest_prefix"])
    when = plan.at
    assert when is not None  # noqa: S101 - planned with a time
    if plan.in_place:
        if backend.versioning() != "Enabled":  # re-checked: someone may have suspended it since
            raise PolicyError.for_field(
                "into", "a bucket with versioning on for an in-place restore", "versioning off"
            )
        report = backend.restore_to_time(when)
        again = backend.restore_to_time(when, dry_run=True)
        ok = again.restored == 0 and again.deleted == 0
        checks = [
            make_check(
                plan,
                "s3-state",
                ok=ok,
                details=f"the prefix matches its state at {when.isoformat()}"
                if ok
                else f"{again.restored} key(s) still differ and {again.deleted} key(s) still exist after the restore",
                restored=report.restored,
                deleted=report.deleted,
            )
        ]
    else:
        _refuse_unkept(backend, bucket, prefix, exact=False)
        report = backend.restore_to_time(when, bucket, prefix)
        keys = backend.count_keys(bucket, prefix)
        ok = keys >= report.restored
        checks = [
            make_check(
                plan,
                "s3-objects",
                ok=ok,
                details=f"{keys} key(s) at the destination, {report.restored} restored",
                keys=keys,
                restored=report.restored,
            )
        ]
    details = {
        "restored": report.restored,
        "deleted": report.deleted,
        "skipped": dict(report.skipped),
        "bytes": report.bytes_copied,
        "requests": dict(report.requests),
    }
    url = f"s3://{bucket}/{prefix}"
    return Outcome(url, url, [], checks, details)


def _run_s3_version(plan: RestorePlan, backend: RestorableBucket) -> Outcome:
    opts = plan.options
    bucket, key = str(opts["dest_bucket"]), str(opts["dest_key"])
    _refuse_unkept(backend, bucket, key, exact=True)
    backend.copy_object_version(str(opts["key"]), str(opts["version_id"]), bucket, key)
    head = backend.object_head(bucket, key)
    ok = head.get("ETag") == opts["etag"] and int(head.get("ContentLength") or 0) == opts["size"]
    checks = [
        make_check(
            plan,
            "s3-object",
            ok=ok,
            details=f"ETag {head.get('ETag')} and size {head.get('ContentLength')} (expected {opts['etag']}, {opts['size']})",
            etag=head.get("ETag"),
        )
    ]
    url = f"s3://{bucket}/{key}"
    return Outcome(url, url, [], checks, {"version_id": head.get("VersionId")})


def _refuse_unkept(backend: RestorableBucket, bucket: str, prefix: str, *, exact: bool) -> None:
    """Refuse to write where objects are now and versioning would not keep them."""
    if backend.has_objects(bucket, prefix, exact=exact):
        status = backend.versioning_of(bucket)
        if status != "Enabled":
            raise PolicyError.for_field(
                "into",
                "an empty destination, or one with versioning on (so what is there is kept)",
                f"s3://{bucket}/{prefix} (has objects, versioning {status})",
                hint="Nothing was changed.",
            )
