"""The moto patches of backuppolicy/_moto.py change how moto computes an answer, never the answer.

`serialize_s3_url_reloads` reloads ``moto.s3.urls`` only when its one input, the
``MOTO_S3_CUSTOM_ENDPOINTS`` setting, changes (moto reloaded it twice per S3 request), and
`index_ec2_tag_reads` reads a resource's tags from its own entry of moto's tag table (moto
scanned the whole table), and `lighten_s3_version_listings` copies listed versions shallowly
(moto deep-copied every version's data), and `memoize_serializer_aliases` remembers which
attributes moto's serializer tries for a field (moto asked six alias providers each time),
`read_serializer_timestamps_fast` reads ISO 8601 text with `datetime.fromisoformat`, and
`memoize_xml_name_checks` checks each XML name once. All are installed for every test by the root ``conftest.py`` (`patch_moto`).
"""

from __future__ import annotations

import calendar
import copy
import gc
import importlib
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import boto3
import moto.core.serialize
import moto.s3.models
import pytest
import time_machine
import xmltodict
from botocore.utils import parse_to_aware_datetime as botocore_parse_to_aware_datetime
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from moto.ec2.models.tags import TagBackend
from moto.utilities.utils import CaseInsensitiveDict

from backuppolicy._moto import (
    _RememberedAliases,
    index_ec2_tag_reads,
    lighten_s3_version_listings,
    memoize_serializer_aliases,
    memoize_xml_name_checks,
    read_serializer_timestamps_fast,
    serialize_s3_url_reloads,
    snapshot_case_insensitive_iteration,
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


def _answers(ec2: Any, rds: Any) -> list[dict[str, Any]]:
    """EC2 and RDS answers that moto's serializer writes, without their request ids."""
    answers = [
        ec2.describe_instances(),
        ec2.describe_volumes(),
        ec2.describe_snapshots(OwnerIds=["self"]),
        ec2.describe_tags(),
        rds.describe_db_instances(),
        rds.describe_db_snapshots(),
        rds.describe_db_subnet_groups(),
    ]
    for answer in answers:
        answer.pop("ResponseMetadata", None)
    return answers


def _world(ec2: Any, rds: Any) -> None:
    """An instance with a tagged volume and three tagged snapshots; a tagged database, two snapshots."""
    image = ec2.register_image(Name="img", RootDeviceName="/dev/sda1")["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    volume = ec2.create_volume(
        AvailabilityZone=f"{REGION}a",
        Size=2,
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "a", "Value": "b"}]}],
    )["VolumeId"]
    ec2.attach_volume(VolumeId=volume, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    for n in range(3):
        ec2.create_snapshot(
            VolumeId=volume,
            TagSpecifications=[
                {"ResourceType": "snapshot", "Tags": [{"Key": "n", "Value": str(n)}]}
            ],
        )
    rds.create_db_instance(
        DBInstanceIdentifier="db-1",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
        Tags=[{"Key": "team", "Value": "shop"}],
    )
    for n in range(2):
        rds.create_db_snapshot(DBInstanceIdentifier="db-1", DBSnapshotIdentifier=f"s-{n}")


def test_remembered_serializer_aliases_write_the_same_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Instances, volumes, snapshots, tags, databases: the same answers with moto's own picker.

    The clock stands still: moto writes "now" into some fields (``LatestRestorableTime``).
    """
    memoize_serializer_aliases()
    picker = moto.core.serialize.AttributePicker
    remembering = vars(picker)["__call__"]
    assert getattr(remembering, "_backuppolicy_patched", False)
    with time_machine.travel(datetime(2026, 12, 6, 4, 5, tzinfo=UTC), tick=False), mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        rds = boto3.client("rds", region_name=REGION)
        _world(ec2, rds)

        remembered = _answers(ec2, rds)
        again = _answers(ec2, rds)  # from what was remembered the first time
        with monkeypatch.context() as own:
            own.setattr(picker, "__call__", remembering._backuppolicy_original)
            assert _answers(ec2, rds) == remembered == again
    assert sum(bool(s.get("Tags")) for s in remembered[2]["Snapshots"]) == 3  # and the image's
    assert remembered[5]["DBSnapshots"][0]["DBInstanceIdentifier"] == "db-1"


@pytest.mark.usefixtures("aws")
def test_remembered_aliases_are_what_the_providers_say_for_every_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every field moto's pickers look at: the remembered names are the providers' answer."""
    memoize_serializer_aliases()
    picker = moto.core.serialize.AttributePicker
    remembering = vars(picker)["__call__"]
    seen: list[tuple[Any, Any]] = []

    def recording(self: Any, context: Any) -> Any:
        seen.append((self, context))
        return remembering(self, context)

    monkeypatch.setattr(picker, "__call__", recording)
    ec2 = boto3.client("ec2", region_name=REGION)
    rds = boto3.client("rds", region_name=REGION)
    _world(ec2, rds)
    _answers(ec2, rds)

    aliases = _RememberedAliases()
    remembered = [aliases.names(p, context) for p, context in seen]
    asked = [tuple(p.get_possible_keys(context)) for p, context in seen]
    assert remembered == asked
    assert len({(type(c.obj), c.key) for _, c in seen}) > 100  # many kinds of fields
    assert len(set(asked)) > 50


@given(
    moment=st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2099, 12, 31),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(minutes=330))]
        ),
    ),
    form=st.sampled_from(
        ["%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ", "iso", "iso-ms", "rfc", "date"]
    ),
)
def test_fast_serializer_timestamps_read_what_botocore_reads(moment: datetime, form: str) -> None:
    """The same wall time, microseconds and offset as botocore's parse_to_aware_datetime."""
    read_serializer_timestamps_fast()
    fast = moto.core.serialize.parse_to_aware_datetime
    assert getattr(fast, "_backuppolicy_patched", False)
    if form == "iso":
        text = moment.isoformat()
    elif form == "iso-ms":
        text = moment.isoformat(timespec="milliseconds")
    elif form == "rfc":
        text = moment.strftime("%a, %d %b %Y %H:%M:%S GMT")
    elif form == "date":
        text = moment.strftime("%Y-%m-%d")
    else:
        text = moment.astimezone(UTC).strftime(form)
    ours, botocores = fast(text), botocore_parse_to_aware_datetime(text)
    assert (ours.replace(tzinfo=None), ours.utcoffset()) == (
        botocores.replace(tzinfo=None),
        botocores.utcoffset(),
    )
    # What the serializer writes from it (its ISO 8601 formats and epoch seconds).
    for pattern in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        assert ours.strftime(pattern) == botocores.strftime(pattern)
    # Epoch seconds (calendar.timegm) read the time tuple, not its DST flag (-1 against 0).
    assert ours.timetuple()[:8] == botocores.timetuple()[:8]
    assert calendar.timegm(ours.timetuple()) == calendar.timegm(botocores.timetuple())


def test_xml_name_checks_still_refuse_what_they_refused() -> None:
    """A remembered name passes; a bad one is refused every time, also after good ones."""
    memoize_xml_name_checks()
    document = {"Answer": {"@id": "1", "Item": ["a", "b"], "Empty": None}}
    first = xmltodict.unparse(document)
    assert first == xmltodict.unparse(document)
    assert "<Item>a</Item><Item>b</Item>" in first
    for bad in ("a b", "<x", "?x", "!x", 'q"', "a=b", "a/b"):
        for _ in range(2):
            with pytest.raises(ValueError, match="Invalid element name"):
                xmltodict.unparse({bad: "x"})
    with pytest.raises(ValueError, match="Invalid attribute name"):
        xmltodict.unparse({"ok": {"@a b": "1"}})


def test_rds_snapshots_listed_while_another_thread_adds_one() -> None:
    """moto's RDS dicts: adding during an iteration raised RuntimeError; now the start's keys."""
    snapshot_case_insensitive_iteration()
    snapshots = CaseInsensitiveDict({"bp-a": 1, "BP-b": 2})
    seen = []
    for name in snapshots:  # what DescribeDBSnapshots does while CreateDBSnapshot inserts
        seen.append(name)
        snapshots[f"{name}-new"] = 3
    assert (["bp-a", "BP-b"], ["bp-a", "BP-b", "bp-a-new", "BP-b-new"]) == (seen, list(snapshots))
    assert dict(snapshots.items()) == {"bp-a": 1, "BP-b": 2, "bp-a-new": 3, "BP-b-new": 3}
    assert "bp-b" in snapshots  # still case-insensitive
