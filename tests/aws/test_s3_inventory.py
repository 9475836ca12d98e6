"""Point-in-time restores from an S3 Inventory report, copied by an S3 Batch Operations job.

The bucket, its history and the copies run on moto (``aws`` fixture). moto produces no
inventory reports: `tests.aws.inventory_files.write_inventory` writes them from the real
listing, like AWS does. moto has no S3 Control job APIs (moto/s3control implements access
points, public access blocks and Storage Lens, not CreateJob/DescribeJob), so the s3control
client is a ``botocore.stub.Stubber``; `BatchJobDouble` (a TEST DOUBLE, not AWS) performs the
job when the stubbed job "runs": it reads the manifest the library wrote, copies every line
with CopyObject against moto, and writes the completion report in AWS's format.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
import time_machine
from botocore.stub import Stubber

from backuppolicy.aws._s3_batch import BatchJobError
from backuppolicy.aws._s3_inventory import InventoryManifest, InventoryState, read_csv_rows
from backuppolicy.aws._s3_listing import entries_of_page, group_by_key
from backuppolicy.aws._s3_restore import decide
from backuppolicy.aws.s3 import S3Bucket
from backuppolicy.core.exceptions import PolicyError, VerificationError
from backuppolicy.core.policy import Policy
from tests.aws.aws_defaults import create_bucket
from tests.aws.inventory_files import write_inventory

BUCKET = "media"
INV = "media-inventory"
INV_PREFIX = "inv/media/all-versions/"
DEST_LIST = "media-restored-listing"
DEST_BATCH = "media-restored-batch"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bp-batch-restore"
JOB = "f8fb9d89-a3aa-461d-bddc-ea6a1b131955"
T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
KEYS = ["a.txt", "b c.txt", "plus+sign.txt", "ünï/code.txt", "deep/x/y.bin", "z.txt"]


def _at(moment: datetime) -> time_machine.travel:
    return time_machine.travel(moment, tick=False)


@pytest.fixture(name="s3")
def _s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    for name in (BUCKET, INV, DEST_LIST, DEST_BATCH):
        create_bucket(client, Bucket=name)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


@pytest.fixture(name="history")
def _history(s3: Any) -> list[datetime]:
    """Puts, overwrites and deletes over 8 seconds (keys with spaces, '+', Unicode); the seconds.

    Second 3 holds a delete and a re-write of the same key (a marker and a version at one
    second), and an internal key that is never data.
    """
    steps: list[tuple[str, str, bytes | None]] = [
        (KEYS[0], "put", b"a1"), (KEYS[1], "put", b"b1"), (KEYS[2], "put", b"p1"),
        (KEYS[3], "put", b"u1"), (KEYS[4], "put", b"d1"),
        (KEYS[0], "put", b"a2"), (KEYS[2], "delete", None),
        (KEYS[1], "delete", None), (KEYS[1], "put", b"b2"), (KEYS[5], "put", b"z1"),
        ("_backuppolicy/manifests/m.jsonl", "put", b"{}"),
        (KEYS[3], "put", b"u2"), (KEYS[4], "delete", None),
        (KEYS[2], "put", b"p2"), (KEYS[0], "delete", None),
        (KEYS[5], "put", b"z2"), (KEYS[0], "put", b"a3"),
    ]  # fmt: skip
    seconds = [0, 0, 0, 0, 0, 2, 2, 3, 3, 3, 3, 5, 5, 6, 6, 8, 8]
    for (key, op, body), second in zip(steps, seconds, strict=True):
        with _at(T0 + timedelta(seconds=second, milliseconds=100)):
            if op == "put":
                s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            else:
                s3.delete_object(Bucket=BUCKET, Key=key)
    return [T0 + timedelta(seconds=s) for s in (-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)]


def _listing_decisions(s3: Any, when: datetime, *, in_place: bool) -> dict[str, tuple[Any, ...]]:
    """The listing path's decision of every data key (the reference)."""
    cutoff = int(when.timestamp())
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET)
    entries = (e for page in pages for e in entries_of_page(page))
    out = {}
    for group in group_by_key(e for e in entries if not e.key.startswith("_backuppolicy/")):
        action, entry, ambiguous = decide(group, cutoff, in_place=in_place)
        out[group[0].key] = (action, entry.version_id if entry else None, ambiguous)
    return out


def _inventory_decisions(
    s3: Any, folder: str, when: datetime, *, in_place: bool
) -> dict[str, tuple[Any, ...]]:
    raw = s3.get_object(Bucket=INV, Key=folder + "manifest.json")["Body"].read()
    manifest = InventoryManifest.parse(raw, folder)
    state = InventoryState(int(when.timestamp()), internal_prefix="_backuppolicy/")
    for item in manifest.files:
        body = s3.get_object(Bucket=INV, Key=item.key)["Body"]
        state.add(read_csv_rows(body, manifest.columns, md5=item.md5, where=item.key))
    return {
        d.key: (d.action, d.version_id, d.ambiguous) for d in state.decisions(in_place=in_place)
    }


class TestStateFromInventory:
    @pytest.mark.parametrize("in_place", [False, True])
    @pytest.mark.parametrize(("files", "shuffle"), [(1, False), (3, True)])
    def test_same_decisions_as_the_listing(self, s3, history, in_place, files, shuffle):
        """At every second of the history, every key is decided as the listing path decides it.

        Rows split over 3 files in shuffled order give the same result (AWS promises no order).
        """
        folder = write_inventory(
            s3, BUCKET, INV, INV_PREFIX, T0 + timedelta(minutes=5), files=files, shuffle=shuffle
        )
        actions = set()
        for when in history:
            expected = _listing_decisions(s3, when, in_place=in_place)
            got = _inventory_decisions(s3, folder, when, in_place=in_place)
            assert expected == got, when
            actions |= {a for a, _, _ in got.values()}
        want = {"copy", "deleted at T", "created after T"}
        want |= {"delete", "unchanged"} if in_place else set()
        assert want <= actions  # the history exercises every kind of decision

    def test_md5_mismatch_is_refused(self, s3, history):
        """A data file whose MD5 differs from the manifest's is an error, not a smaller state."""
        folder = write_inventory(s3, BUCKET, INV, INV_PREFIX, T0 + timedelta(minutes=5))
        manifest = json.loads(
            s3.get_object(Bucket=INV, Key=folder + "manifest.json")["Body"].read()
        )
        manifest["files"][0]["MD5checksum"] = "0" * 32
        s3.put_object(Bucket=INV, Key=folder + "manifest.json", Body=json.dumps(manifest).encode())
        with pytest.raises(VerificationError, match="MD5"):
            _inventory_decisions(s3, folder, history[-1], in_place=False)

    def test_current_versions_only_inventory_refused(self):
        """An inventory without VersionId/IsLatest/IsDeleteMarker cannot give a state at T."""
        raw = json.dumps(
            {
                "sourceBucket": BUCKET,
                "fileFormat": "CSV",
                "fileSchema": "Bucket, Key, Size, LastModifiedDate",
                "creationTimestamp": "0",
                "files": [],
            }
        ).encode()
        with pytest.raises(PolicyError, match="^inventory manifest fileSchema: .*IsDeleteMarker"):
            InventoryManifest.parse(raw, "s3://x/manifest.json")

    def test_parquet_refused(self):
        """ORC and Parquet need pyarrow, which is not a dependency: refused, naming the field."""
        raw = json.dumps({"fileFormat": "Parquet", "fileSchema": "", "files": []}).encode()
        with pytest.raises(PolicyError, match="^inventory manifest fileFormat: expected 'CSV'"):
            InventoryManifest.parse(raw, "s3://x/manifest.json")


class BatchJobDouble:
    """TEST DOUBLE of S3 Batch Operations (moto has no job engine): runs a captured CreateJob.

    ``fail`` names keys whose copy fails (an AccessDenied row in the report, no copy made).
    """

    def __init__(self, s3: Any, fail: frozenset[str] = frozenset()) -> None:
        self.s3 = s3
        self.fail = fail
        self.request: dict[str, Any] = {}

    def capture(self, params: dict[str, Any], **_: Any) -> None:
        """Keep the CreateJob request (a botocore provide-client-params hook)."""
        self.request = params

    def run(self, _seconds: float) -> None:
        """Do the job: CopyObject per manifest line into the target, then the completion report."""
        request = self.request
        bucket_key = request["Manifest"]["Location"]["ObjectArn"].removeprefix("arn:aws:s3:::")
        mbucket, _, mkey = bucket_key.partition("/")
        body = self.s3.get_object(Bucket=mbucket, Key=mkey)["Body"].read().decode()
        op = request["Operation"]["S3PutObjectCopy"]
        target = op["TargetResource"].removeprefix("arn:aws:s3:::")
        ok, failed = [], []
        for row in csv.reader(io.StringIO(body)):
            bucket, key, vid = row[0], unquote(row[1]), row[2]
            if key in self.fail:
                failed.append(
                    [bucket, row[1], vid, "failed", "403", "AccessDenied", "Access Denied"]
                )
                continue
            self.s3.copy_object(
                Bucket=target,
                Key=op.get("TargetKeyPrefix", "") + key,
                CopySource={"Bucket": bucket, "Key": key, "VersionId": vid},
            )
            ok.append([bucket, row[1], vid, "succeeded", "200", "", "Successful"])
        rbucket = request["Report"]["Bucket"].removeprefix("arn:aws:s3:::")
        folder = f"{request['Report']['Prefix']}/job-{JOB}/"
        results = []
        for status, rows in (("succeeded", ok), ("failed", failed)):
            if not rows:
                continue
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows(rows)
            key = f"{folder}results/{status}.csv"
            self.s3.put_object(Bucket=rbucket, Key=key, Body=text.getvalue().encode())
            results.append({"TaskExecutionStatus": status, "Bucket": rbucket, "Key": key})
        report = {"Format": "Report_CSV_20180820", "Results": results}
        self.s3.put_object(Bucket=rbucket, Key=folder + "manifest.json", Body=json.dumps(report))


def _batch_target(
    s3: Any, double: BatchJobDouble, statuses: tuple[str, ...] = ("Active", "Complete"), **inv: Any
) -> tuple[S3Bucket, Stubber]:
    control = boto3.client("s3control", region_name="us-east-1")
    control.meta.events.register("provide-client-params.s3-control.CreateJob", double.capture)
    stub = Stubber(control)
    stub.add_response("create_job", {"JobId": JOB}, None)  # checked on the captured request
    for status in statuses:
        stub.add_response(
            "describe_job",
            {"Job": {"JobId": JOB, "Status": status}},
            {"AccountId": ACCOUNT, "JobId": JOB},
        )
    stub.activate()
    target = S3Bucket(
        BUCKET,
        clients={"s3": s3, "s3control": control},
        account_id=ACCOUNT,
        inventory={"bucket": INV, "prefix": INV_PREFIX, "role_arn": ROLE, "min_versions": 1, **inv},
    )
    target._sleep = double.run  # type: ignore[method-assign]
    return target, stub


def _live(s3: Any, bucket: str) -> dict[str, bytes]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


class TestBatchRestore:
    @pytest.mark.parametrize("second", [2, 3, 6])
    def test_same_bucket_state_as_the_listing_path(self, s3, history, second):
        """Listing restore into one bucket, inventory + batch job into another: equal contents."""
        when = T0 + timedelta(seconds=second)
        write_inventory(s3, BUCKET, INV, INV_PREFIX, T0 + timedelta(minutes=5), files=2)
        double = BatchJobDouble(s3)
        target, stub = _batch_target(s3, double)
        listed = target.restore_to_time(when, dest_bucket=DEST_LIST, engine="listing")
        batched = target.restore_to_time(when, dest_bucket=DEST_BATCH)
        stub.assert_no_pending_responses()
        assert _live(s3, DEST_LIST) == _live(s3, DEST_BATCH)
        assert _live(s3, DEST_BATCH)  # something was restored
        assert ("listing", "inventory") == (listed.engine, batched.engine)
        assert (listed.keys, listed.restored, dict(listed.skipped)) == (
            batched.keys,
            batched.restored,
            dict(batched.skipped),
        )
        assert "ListObjectVersions" not in batched.requests
        assert (JOB, "Complete", batched.restored) == (
            batched.job["job_id"],
            batched.job["status"],
            batched.job["succeeded"],
        )

    def test_job_request_and_manifest(self, s3, history):
        """CreateJob: S3PutObjectCopy into the target, the manifest (read back) lists the versions."""
        write_inventory(s3, BUCKET, INV, INV_PREFIX, T0 + timedelta(minutes=5))
        double = BatchJobDouble(s3)
        target, _ = _batch_target(s3, double, priority=42)
        report = target.restore_to_time(T0 + timedelta(seconds=8), dest_bucket=DEST_BATCH)
        request = double.request
        assert {
            "Operation": {
                "S3PutObjectCopy": {
                    "TargetResource": f"arn:aws:s3:::{DEST_BATCH}",
                    "MetadataDirective": "COPY",
                }
            },
            "Priority": 42,
            "RoleArn": ROLE,
            "ConfirmationRequired": False,
            "AccountId": ACCOUNT,
        } == {
            k: request[k]
            for k in ("Operation", "Priority", "RoleArn", "ConfirmationRequired", "AccountId")
        }
        assert {
            "Bucket": f"arn:aws:s3:::{INV}",
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "Prefix": f"_backuppolicy/batch/reports/{BUCKET}",
            "ReportScope": "AllTasks",
        } == request["Report"]
        spec = request["Manifest"]["Spec"]
        assert ("S3BatchOperations_CSV_20180820", ["Bucket", "Key", "VersionId"]) == (
            spec["Format"],
            spec["Fields"],
        )
        arn = request["Manifest"]["Location"]["ObjectArn"]
        key = arn.removeprefix(f"arn:aws:s3:::{INV}/")
        head = s3.head_object(Bucket=INV, Key=key)
        assert head["ETag"].strip('"') == request["Manifest"]["Location"]["ETag"]
        lines = s3.get_object(Bucket=INV, Key=key)["Body"].read().decode().splitlines()
        expected = {
            (BUCKET, k, v)
            for k, (action, v, _) in _listing_decisions(
                s3, T0 + timedelta(seconds=8), in_place=False
            ).items()
            if action == "copy"
        }
        got = {(b, unquote(k), v) for b, k, v in (line.split(",") for line in lines)}
        assert expected == got
        assert {"plus%2Bsign.txt", "%C3%BCn%C3%AF/code.txt"} <= {
            line.split(",")[1] for line in lines
        }
        assert report.restored == len(lines)

    def test_failed_tasks_are_an_error_naming_the_keys(self, s3, history):
        """A job whose report has failed tasks raises, naming the keys; never a success."""
        write_inventory(s3, BUCKET, INV, INV_PREFIX, T0 + timedelta(minutes=5))
        double = BatchJobDouble(s3, fail=frozenset({"plus+sign.txt", "ünï/code.txt"}))
        target, _ = _batch_target(s3, double)
        with pytest.raises(BatchJobError) as caught:
            target.restore_to_time(T0 + timedelta(seconds=8), dest_bucket=DEST_BATCH)
        error = caught.value
        assert {"plus+sign.txt", "ünï/code.txt"} == {key for key, _, _, _ in error.failed}
        assert {"AccessDenied"} == {code for _, _, code, _ in error.failed}
        assert (2, error.expected - 2) == (error.failed_total, error.succeeded)
        assert "plus+sign.txt@" in str(error)
        assert "ünï/code.txt@" in str(error)

    def test_failed_job_is_an_error(self, s3, history):
        """A job that ends Failed is an error even when no task row says so."""
        write_inventory(s3, BUCKET, INV, INV_PREFIX, T0 + timedelta(minutes=5))
        double = BatchJobDouble(s3)
        target, _ = _batch_target(s3, double, statuses=("Failed",))
        with pytest.raises(BatchJobError, match=f"job {JOB} ended Failed: 0 of"):
            target.restore_to_time(T0 + timedelta(seconds=8), dest_bucket=DEST_BATCH)

    def test_small_bucket_takes_the_listing(self, s3, history):
        """Below min_versions, auto lists (no job is created)."""
        write_inventory(s3, BUCKET, INV, INV_PREFIX, T0 + timedelta(minutes=5))
        double = BatchJobDouble(s3)
        target, _stub = _batch_target(s3, double, statuses=(), min_versions=10_000)
        report = target.restore_to_time(T0 + timedelta(seconds=8), dest_bucket=DEST_LIST)
        assert ("listing", {}) == (report.engine, double.request)
        assert report.requests["ListObjectVersions"] == 1

    def test_time_after_the_inventory_refused(self, s3, history):
        """A time after the newest report's scan cannot be restored from it."""
        write_inventory(s3, BUCKET, INV, INV_PREFIX, T0 + timedelta(seconds=4))
        target, _ = _batch_target(s3, BatchJobDouble(s3), statuses=())
        with pytest.raises(PolicyError, match="^when: expected a time at or before the newest"):
            target.restore_to_time(T0 + timedelta(seconds=8), dest_bucket=DEST_BATCH)

    def test_in_place_refused_by_the_inventory_engine(self, s3, history):
        """engine='inventory' never restores in place (it cannot see writes after the scan)."""
        write_inventory(s3, BUCKET, INV, INV_PREFIX, T0 + timedelta(minutes=5))
        target, _ = _batch_target(s3, BatchJobDouble(s3), statuses=())
        with pytest.raises(PolicyError, match="^dest_bucket: expected another bucket"):
            target.restore_to_time(T0 + timedelta(seconds=8), engine="inventory")

    def test_dry_run_writes_nothing(self, s3, history):
        """A dry run plans from the inventory and starts no job."""
        write_inventory(s3, BUCKET, INV, INV_PREFIX, T0 + timedelta(minutes=5))
        double = BatchJobDouble(s3)
        target, _ = _batch_target(s3, double, statuses=())
        report = target.restore_to_time(
            T0 + timedelta(seconds=8), dest_bucket=DEST_BATCH, dry_run=True
        )
        assert ("inventory", {}, {}) == (report.engine, double.request, _live(s3, DEST_BATCH))
        assert report.restored > 0


def _policy(inventory: Any) -> dict[str, Any]:
    return {
        "name": "p",
        "schedule": {"every": "day", "at": "04:00", "tz": "UTC"},
        "retention": {"max_age": "35d"},
        "targets": [
            {
                "name": "media",
                "kind": "s3-bucket",
                "application": "web",
                "settings": {"bucket": BUCKET, "inventory": inventory},
            }
        ],
    }


class TestInventorySetting:
    @pytest.mark.parametrize(
        ("inventory", "field"),
        [
            ({"bucket": INV, "prefix": "x/"}, "inventory.role_arn"),
            ({"bucket": INV, "prefix": "x/", "role_arn": "bp-role"}, "inventory.role_arn"),
            (
                {"bucket": INV, "prefix": "x/", "role_arn": ROLE, "min_versions": -1},
                "inventory.min_versions",
            ),
            (
                {"bucket": INV, "prefix": "x/", "role_arn": ROLE, "priority": True},
                "inventory.priority",
            ),
            (
                {"bucket": INV, "prefix": "x/", "role_arn": ROLE, "report": "bucket/x"},
                "inventory.report",
            ),
            (
                {"bucket": INV, "prefix": "x/", "role_arn": ROLE, "min_version": 5},
                "inventory.min_version",
            ),
        ],
    )
    def test_bad_settings_name_the_field(self, inventory, field):
        """Every wrong inventory field is a PolicyError naming it."""
        with pytest.raises(PolicyError) as caught:
            Policy.from_dict(_policy(inventory))
        assert caught.value.path.endswith(field)

    def test_target_built_from_the_policy(self):
        """The policy's inventory reaches the target, with its defaults."""
        policy = Policy.from_dict(_policy({"bucket": INV, "prefix": "x", "role_arn": ROLE}))
        target = S3Bucket.from_spec(policy.targets[0], policy, region="us-east-1")
        assert target.inventory is not None
        assert (INV, "x/", 1_000_000, 10, f"s3://{INV}/_backuppolicy/batch/") == (
            target.inventory.bucket,
            target.inventory.prefix,
            target.inventory.min_versions,
            target.inventory.priority,
            target.inventory.report,
        )


def _gz(rows: list[list[str]]) -> io.BytesIO:
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return io.BytesIO(gzip.compress(text.getvalue().encode()))


def test_rows_keep_encoded_keys_and_read_markers() -> Iterator[None] | None:
    """Keys stay URL-encoded until decided; markers have no size or ETag."""
    columns = (
        "Bucket",
        "Key",
        "VersionId",
        "IsLatest",
        "IsDeleteMarker",
        "Size",
        "LastModifiedDate",
        "ETag",
    )
    rows = list(
        read_csv_rows(
            _gz(
                [
                    ["b", "a+b%2Bc", "v2", "true", "true", "", "2026-03-01T09:00:05.000Z", ""],
                    ["b", "a+b%2Bc", "v1", "false", "false", "7", "2026-03-01T09:00:01.999Z", "e1"],
                ]
            ),
            columns,
        )
    )
    start = int(T0.timestamp())
    assert [
        ("a+b%2Bc", ("v2", start + 5, True, True, 0, "")),
        ("a+b%2Bc", ("v1", start + 1, False, False, 7, "e1")),
    ] == rows
    state = InventoryState(start + 3)
    state.add(rows)
    [decision] = list(state.decisions(in_place=False))
    assert ("a b+c", "copy", "v1", 7) == (
        decision.key,
        decision.action,
        decision.version_id,
        decision.size,
    )
    return None
