"""S3Bucket end to end over real HTTP, against moto's ThreadedMotoServer and LocalStack's S3.

versioned bucket -> list -> plan noncurrent retention -> delete -> restore_to_time into another
bucket and in place. The writes come in three phases. moto's server runs in this process, so
``time_machine.travel`` (ticking) dates each phase days apart, as in the unit tests; LocalStack
runs in its own process with its own clock, so there the phases are a second apart (S3's
``LastModified`` has whole seconds). Either way, the retention's ``now`` and the restore's
``when`` are derived from the ``LastModified`` values the server lists, never from the date.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws.s3 import S3Bucket
from backuppolicy.core.exceptions import BackendError
from backuppolicy.core.retention import MaxAge

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 4, 11, 10, 0, 0, tzinfo=UTC)
TOKEN = "e2e-1"
MAX_AGE = MaxAge(days=35)

# 60 days before NOW: index v1 and about v1; 50 days: index v2, about deleted;
# 10 days: index v3, news v1 (on moto; on LocalStack a second apart).
PHASES: tuple[tuple[int, dict[str, bytes | None]], ...] = (
    (60, {"www/index.html": b"i1", "www/about.html": b"a1"}),
    (50, {"www/index.html": b"i2", "www/about.html": None}),
    (10, {"www/index.html": b"i3", "www/news.html": b"n1"}),
)

LOCALSTACK_SELF_COPY = (
    "LocalStack refuses CopyObject from an older version of a key onto the same key "
    "('This copy request is illegal because it is trying to copy an object to itself without "
    "changing the object's metadata ...'). AWS allows it: restoring a previous version is "
    "documented as copying that version into the same bucket, "
    "https://docs.aws.amazon.com/AmazonS3/latest/userguide/RestoringPreviousVersions.html "
    "('copy a previous version of the object into the same bucket'). The library keeps AWS's "
    "behaviour; this case fails on LocalStack only."
)


def _live(s3: Any, bucket: str) -> dict[str, bytes]:
    page = s3.list_objects_v2(Bucket=bucket)
    return {
        o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for o in page.get("Contents", [])
    }


@pytest.fixture(name="s3")
def _s3(s3_server: Any) -> Any:
    return s3_server.client()


@pytest.fixture(name="site")
def _site(s3_server: Any) -> str:
    return s3_server.bucket("site", versioned=True)


@pytest.fixture(name="target")
def _target(s3_server: Any, site: str) -> S3Bucket:
    return S3Bucket(
        site,
        prefix="www/",
        endpoint_url=s3_server.url,
        region="us-east-1",
        retry=RetryPolicy(sleep=lambda _s: None),
    )


def _phase(s3_server: Any, days_ago: int, first: bool) -> AbstractContextManager[object]:
    """Date the writes of one phase: moto's clock travels; LocalStack's moves on a second."""
    if s3_server.shares_clock:
        return time_machine.travel(NOW - timedelta(days=days_ago), tick=True)
    if not first:
        time.sleep(1.1)  # the next phase's LastModified seconds are all later than this one's
    return nullcontext()


def _write_phases(s3_server: Any, s3: Any, bucket: str) -> datetime:
    """Write `PHASES`; return a moment strictly between the second and the third phase.

    It lies half-way between the last ``LastModified`` of phase 2 and the first of phase 3, as
    the server lists them.
    """
    written: list[set[str]] = []
    for n, (days_ago, writes) in enumerate(PHASES):
        versions = set()
        with _phase(s3_server, days_ago, first=n == 0):
            for key, body in writes.items():
                if body is None:
                    result = s3.delete_object(Bucket=bucket, Key=key)
                else:
                    result = s3.put_object(Bucket=bucket, Key=key, Body=body)
                versions.add(result["VersionId"])
        written.append(versions)
    s3.put_object(Bucket=bucket, Key="other/x", Body=b"outside the prefix")
    listing = s3.list_object_versions(Bucket=bucket, Prefix="www/")
    stamps = {
        v["VersionId"]: v["LastModified"]
        for v in [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]
    }
    end_2 = max(stamps[v] for v in written[1])
    start_3 = min(stamps[v] for v in written[2])
    assert max(stamps[v] for v in written[0]) < min(stamps[v] for v in written[1])
    assert end_2 < start_3
    return end_2 + (start_3 - end_2) / 2


class TestS3EndToEnd:
    def test_versions_retention_and_restore(self, s3_server, target, s3, site):
        """Listing, per-key retention and a point-in-time restore agree over HTTP."""
        between = _write_phases(s3_server, s3, site)
        # The retention runs 35 days after `between`: what became noncurrent in phase 2 (index
        # i1, about a1) is older than 35 days, what became noncurrent in phase 3 (i2) is not.
        now = between + timedelta(days=35)

        points = list(target.list_points())
        assert 5 == len(points)
        assert ["www/index.html", "www/news.html"] == sorted(
            p.details["key"] for p in points if not p.managed
        )

        plans = {p.key: p for p in target.noncurrent_retention_plan(MAX_AGE, now=now)}
        assert {"www/index.html": 1, "www/about.html": 1, "www/news.html": 0} == {
            key: len(plan.delete) for key, plan in plans.items()
        }
        report = target.apply_noncurrent_retention(MAX_AGE, now=now)
        assert (2, 1) == (report.deleted, report.batches)
        assert 3 == len(list(target.list_points()))

        restored = s3_server.bucket("site-restored")
        copied = target.restore_to_time(between, dest_bucket=restored)
        assert {"www/index.html": b"i2"} == _live(s3, restored)
        assert {"ListObjectVersions": 1, "CopyObject": 1} == dict(copied.requests)

    def test_restore_in_place(self, s3_server, target, s3, site):
        """In place: the older version is copied onto its own key; a later key is deleted."""
        between = _write_phases(s3_server, s3, site)
        if s3_server.name == "localstack":
            with pytest.raises(BackendError, match="CopyObject .* copy an object to itself"):
                target.restore_to_time(between)
            pytest.xfail(LOCALSTACK_SELF_COPY)
        in_place = target.restore_to_time(between)
        assert (1, 1) == (in_place.restored, in_place.deleted)
        assert {"www/index.html": b"i2", "other/x": b"outside the prefix"} == _live(s3, site)

    def test_manifest_backup_round_trip(self, target, s3, site):
        """create_backup writes a manifest whose restore copies exactly the listed versions."""
        s3.put_object(Bucket=site, Key="www/a", Body=b"1")
        point = target.create_backup(reason="manual", token=TOKEN)
        s3.put_object(Bucket=site, Key="www/a", Body=b"2")
        assert point.id == target.create_backup(reason="manual", token=TOKEN).id
        with target.restore(point) as restored:
            prefix = restored.details["prefix"]
            body = s3.get_object(Bucket=site, Key=f"{prefix}a")["Body"].read()
        assert b"1" == body
        assert "Contents" not in s3.list_objects_v2(Bucket=site, Prefix=prefix)
