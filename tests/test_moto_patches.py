"""The moto patches of backuppolicy/_moto.py change how moto computes an answer, never the answer.

`serialize_s3_url_reloads` reloads ``moto.s3.urls`` only when its one input, the
``MOTO_S3_CUSTOM_ENDPOINTS`` setting, changes (moto reloaded it twice per S3 request), and
`index_ec2_tag_reads` reads a resource's tags from its own entry of moto's tag table (moto
scanned the whole table), and `lighten_s3_version_listings` copies listed versions shallowly
(moto deep-copied every version's data). All are installed for every test by the root
``conftest.py`` (`patch_moto`).
"""

from __future__ import annotations

import copy
import gc
import importlib
import random
from typing import Any

import boto3
import moto.s3.models
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from moto.ec2.models.tags import TagBackend

from backuppolicy._moto import (
    index_ec2_tag_reads,
    lighten_s3_version_listings,
    serialize_s3_url_reloads,
)

REGION = "eu-west-2"


@pytest.fixture(name="reloads")
def _reloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the modules moto's S3 backend reloads from now on."""
    serialize_s3_url_reloads()
    seen: list[str] = []

    def counting_reload(module: Any) -> Any:
        seen.append(module.__name__)
        return importlib.reload(module)

    monkeypatch.setattr(moto.s3.models, "reload", counting_reload)
    return seen


@pytest.mark.usefixtures("aws")
def test_s3_requests_reload_moto_urls_only_when_the_custom_endpoints_change(
    reloads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto reloaded ``moto.s3.urls`` twice per request; now only for a new setting."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="bucket-reloads")
    reloads.clear()
    for n in range(5):
        s3.put_object(Bucket="bucket-reloads", Key=f"k{n}", Body=b"x")
    assert reloads == []  # moto itself reloaded twice per request: ten here

    monkeypatch.setenv("MOTO_S3_CUSTOM_ENDPOINTS", "http://s3.custom.test:9000")
    custom = boto3.client("s3", region_name="us-east-1", endpoint_url="http://s3.custom.test:9000")
    assert custom.get_object(Bucket="bucket-reloads", Key="k0")["Body"].read() == b"x"
    assert reloads == ["moto.s3.urls"]  # the new setting is seen, once
    assert "http://s3.custom.test:9000" in moto.s3.urls.url_bases

    monkeypatch.delenv("MOTO_S3_CUSTOM_ENDPOINTS")
    assert s3.head_object(Bucket="bucket-reloads", Key="k1")["ContentLength"] == 1
    assert reloads == ["moto.s3.urls", "moto.s3.urls"]
    assert "http://s3.custom.test:9000" not in moto.s3.urls.url_bases


def _scan(resource: Any) -> list[dict[str, str]]:
    """moto's own ``TaggedEC2Resource.get_tags``: the whole table, filtered by resource id."""
    if not resource.id:
        return []
    return TagBackend.describe_tags(resource.ec2_backend, filters={"resource-id": [resource.id]})


_KEY_CHARS = "abcxyz:-*?"


def test_indexed_ec2_tag_reads_equal_moto_scans() -> None:
    """Every resource's tags, after creates, tag changes and deletes, as moto's scan gives them.

    Keys and values include the pattern characters of moto's ``resource-id`` filter; the
    changes are random, from a fixed seed (one moto world: building one costs a second).
    """
    index_ec2_tag_reads()
    rnd = random.Random(20261206)  # noqa: S311 - test data, not secrets

    def tags() -> list[dict[str, str]]:
        return [
            {"Key": _word(rnd, _KEY_CHARS, 1), "Value": _word(rnd, "ab*", 0)}
            for _ in range(rnd.randrange(4))
        ]

    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        volumes = []
        for _ in range(5):
            spec = [{"ResourceType": "volume", "Tags": t}] if (t := tags()) else []
            made = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1, TagSpecifications=spec)
            volumes.append(made["VolumeId"])
        ids = list(volumes)
        ids.extend(
            ec2.create_snapshot(VolumeId=rnd.choice(volumes))["SnapshotId"] for _ in range(12)
        )
        for _ in range(30):
            chosen = rnd.sample(ids, rnd.randint(1, 3))
            if rnd.random() < 0.7:
                if t := tags():
                    ec2.create_tags(Resources=chosen, Tags=t)
            else:
                ec2.delete_tags(Resources=chosen, Tags=[{"Key": _word(rnd, _KEY_CHARS, 1)}])
        backend = ec2_backends[DEFAULT_ACCOUNT_ID][REGION]
        resources = [*backend.volumes.values(), *backend.snapshots.values()]
        assert {r.id for r in resources} >= set(ids)
        assert sum(bool(r.get_tags()) for r in resources) >= 5  # the comparison compares tags
        for resource in resources:
            assert resource.get_tags() == _scan(resource)


def _word(rnd: random.Random, alphabet: str, least: int) -> str:
    return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(least, 5)))


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


@pytest.mark.usefixtures("aws")
def test_describe_snapshots_by_tag_reads_each_snapshots_own_tags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tag filter reads no other resource's tags; the answer is the same."""
    index_ec2_tag_reads()
    ec2 = boto3.client("ec2", region_name=REGION)
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    ours = []
    for n in range(6):
        tags = [{"Key": "backuppolicy:target", "Value": "web" if n % 2 else "db"}]
        snapshot = ec2.create_snapshot(
            VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}]
        )
        if n % 2:
            ours.append(snapshot["SnapshotId"])
    scans: list[object] = []
    real = TagBackend.describe_tags

    def counting(self: TagBackend, filters: Any = None) -> Any:
        scans.append(filters)
        return real(self, filters)

    monkeypatch.setattr(TagBackend, "describe_tags", counting)
    found = ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:backuppolicy:target", "Values": ["web"]}]
    )["Snapshots"]
    assert sorted(s["SnapshotId"] for s in found) == sorted(ours)
    assert scans == []  # moto scanned the table once per snapshot looked at, and per tag shown


def _every_listing(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """ListObjectVersions answers: whole, by prefix, by delimiter, and page by page."""
    answers = [
        s3.list_object_versions(Bucket=bucket, **params)
        for params in ({}, {"Prefix": "a/"}, {"Delimiter": "/"}, {"Prefix": "a/", "Delimiter": "/"})
    ]
    marker: dict[str, str] = {}
    while True:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=3, **marker)
        answers.append(page)
        if not page.get("IsTruncated"):
            break
        marker = {
            "KeyMarker": page["NextKeyMarker"],
            "VersionIdMarker": page["NextVersionIdMarker"],
        }
    for answer in answers:
        answer.pop("ResponseMetadata", None)
    return answers


@pytest.mark.usefixtures("aws")
def test_shallow_version_listings_equal_moto_deep_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same versions, latest marks, ETags and markers; the listed data stays readable."""
    lighten_s3_version_listings()
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = "bucket-listing-copies"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for n in range(4):
        for key in ("a/one", "a/two", "b/three", "top"):
            s3.put_object(Bucket=bucket, Key=key, Body=f"{key} {n}".encode() * (n + 1))
    s3.delete_object(Bucket=bucket, Key="a/two")  # a delete marker
    upload = s3.create_multipart_upload(Bucket=bucket, Key="b/big")
    part = s3.upload_part(
        Bucket=bucket, Key="b/big", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 10
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="b/big",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )

    shallow = _every_listing(s3, bucket)
    with monkeypatch.context() as deep:
        deep.setattr(moto.s3.models, "copy", copy)  # moto's own deep copies
        assert _every_listing(s3, bucket) == shallow
    assert sum(len(a.get("Versions", [])) for a in shallow) > 20
    assert any(a.get("DeleteMarkers") for a in shallow)
    gc.collect()  # the copies are gone: the versions' data is still there
    for version in shallow[0]["Versions"]:
        body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
        assert body["ETag"] == version["ETag"]
        assert len(body["Body"].read()) == version["Size"]
