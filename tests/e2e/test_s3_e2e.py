"""S3Bucket end to end over real HTTP against moto's ThreadedMotoServer.

versioned bucket -> list -> plan noncurrent retention -> delete -> restore_to_time into another
bucket and in place. The server runs in this process, so ``time_machine.travel`` (ticking)
dates the writes of each phase, as in the unit tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import time_machine

from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws.s3 import S3Bucket
from backuppolicy.retention import MaxAge

pytestmark = pytest.mark.e2e

T0 = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=100)
TOKEN = "e2e-1"


def _live(s3: Any, bucket: str) -> dict[str, bytes]:
    page = s3.list_objects_v2(Bucket=bucket)
    return {
        o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for o in page.get("Contents", [])
    }


@pytest.fixture(name="s3")
def _s3(endpoint_url: str) -> Any:
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint_url)
    client.create_bucket(Bucket="site")
    client.put_bucket_versioning(Bucket="site", VersioningConfiguration={"Status": "Enabled"})
    client.create_bucket(Bucket="site-restored")
    return client


@pytest.fixture(name="target")
def _target(endpoint_url: str, s3: Any) -> S3Bucket:
    return S3Bucket(
        "site",
        prefix="www/",
        endpoint_url=endpoint_url,
        region="us-east-1",
        retry=RetryPolicy(sleep=lambda _s: None),
    )


class TestS3EndToEnd:
    def test_versions_retention_and_restore(self, target, s3):
        """Listing, per-key retention and point-in-time restores all agree over HTTP."""
        # 60 days ago: index v1 and about v1; 50 days ago: index v2, about deleted;
        # 10 days ago: index v3, news v1 (T = 20 days ago lies between).
        for days_ago, writes in (
            (60, {"www/index.html": b"i1", "www/about.html": b"a1"}),
            (50, {"www/index.html": b"i2", "www/about.html": None}),
            (10, {"www/index.html": b"i3", "www/news.html": b"n1"}),
        ):
            with time_machine.travel(NOW - timedelta(days=days_ago), tick=True):
                for key, body in writes.items():
                    if body is None:
                        s3.delete_object(Bucket="site", Key=key)
                    else:
                        s3.put_object(Bucket="site", Key=key, Body=body)
        s3.put_object(Bucket="site", Key="other/x", Body=b"outside the prefix")

        points = list(target.list_points())
        assert 5 == len(points)
        assert ["www/index.html", "www/news.html"] == sorted(
            p.details["key"] for p in points if not p.managed
        )

        plans = {p.key: p for p in target.noncurrent_retention_plan(MaxAge(days=35), now=NOW)}
        # index i1 was replaced 50 days ago (delete); i2 10 days ago (keep);
        # about a1 was replaced by its delete marker 50 days ago (delete).
        assert {"www/index.html": 1, "www/about.html": 1, "www/news.html": 0} == {
            key: len(plan.delete) for key, plan in plans.items()
        }
        report = target.apply_noncurrent_retention(MaxAge(days=35), now=NOW)
        assert (2, 1) == (report.deleted, report.batches)
        assert 3 == len(list(target.list_points()))

        when = NOW - timedelta(days=20)
        copied = target.restore_to_time(when, dest_bucket="site-restored")
        assert {"www/index.html": b"i2"} == _live(s3, "site-restored")
        assert {"ListObjectVersions": 1, "CopyObject": 1} == dict(copied.requests)

        in_place = target.restore_to_time(when)
        assert (1, 1) == (in_place.restored, in_place.deleted)
        assert {"www/index.html": b"i2", "other/x": b"outside the prefix"} == _live(s3, "site")

    def test_manifest_backup_round_trip(self, target, s3):
        """create_backup writes a manifest whose restore copies exactly the listed versions."""
        s3.put_object(Bucket="site", Key="www/a", Body=b"1")
        point = target.create_backup(reason="manual", token=TOKEN)
        s3.put_object(Bucket="site", Key="www/a", Body=b"2")
        assert point.id == target.create_backup(reason="manual", token=TOKEN).id
        with target.restore(point) as restored:
            prefix = restored.details["prefix"]
            body = s3.get_object(Bucket="site", Key=f"{prefix}a")["Body"].read()
        assert b"1" == body
        assert "Contents" not in s3.list_objects_v2(Bucket="site", Prefix=prefix)
