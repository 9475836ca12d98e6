"""RdsInstance and AuroraCluster: snapshots, copies, deletes, holds, restores and backup settings.

Most tests run against moto in-process (the ``aws`` fixture). moto returns
describe_db_snapshots / describe_db_cluster_snapshots in one page, never throttles and
accepts what AWS refuses (retention 36, a 10-minute backup window, copying an encrypted
snapshot without a key, tag values with ``|``), so those cases use `botocore.stub.Stubber`
on a client injected through ``clients=``.
"""

# "token" is an idempotency token, not a password.

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import boto3
import moto
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws._rds_base import decode_tag, encode_tag, identifier, sha8
from backuppolicy.aws._rds_settings import maintenance_overlap
from backuppolicy.aws.rds import (
    AuroraCluster,
    BackupSettings,
    BackupWindow,
    Drift,
    RdsInstance,
)
from backuppolicy.core.exceptions import (
    BackendError,
    PermissionDeniedError,
    PolicyError,
    ProtectedPointError,
    ResourceNotFoundError,
)
from backuppolicy.core.model import (
    TAG_HOLD,
    TAG_POLICY,
    TAG_REASON,
    TAG_TARGET,
    TAG_TIER,
    TAG_TOKEN,
    LegalHold,
    RecoveryPoint,
    Status,
)
from backuppolicy.core.targets import BackupTarget, Destination, IsolationProfile, RestoredResource
from backuppolicy.testing import BackupTargetContract

REGION = "us-east-1"
OTHER = "eu-west-1"
ACCOUNT = "123456789012"
NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
RDS_ID = re.compile(r"^[a-z](?!.*--)[a-z0-9-]*(?<!-)$")
RDS_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]*$")
HOLD = LegalHold(reason="litigation | tax", reference="case-17", since=NOW)


def _no_sleep(_seconds: float) -> None:
    """Retries and polls never wait in tests."""


FAST = RetryPolicy(sleep=_no_sleep)
# One session for every moto test: each new session would parse the RDS model again (~0.3 s).
# moto is imported above on purpose: it adds its handler to sessions made after its import.
SESSION = boto3.Session(region_name=REGION)


# --------------------------------------------------------------------------- moto fixtures


@pytest.fixture(name="aws")
def _aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process, without EC2's 1,300 default AMIs (RDS touches EC2; loading them takes ~1 s)."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with moto.mock_aws():
        yield


@pytest.fixture(name="rds")
def _rds(aws: None) -> Any:
    return SESSION.client("rds")


@pytest.fixture(name="keys")
def _keys(aws: None) -> dict[str, str]:
    """A KMS key in each region."""
    return {
        region: SESSION.client("kms", region_name=region).create_key()["KeyMetadata"]["Arn"]
        for region in (REGION, OTHER)
    }


@pytest.fixture(name="instance_id")
def _instance_id(rds: Any, keys: dict[str, str]) -> str:
    rds.create_db_instance(
        DBInstanceIdentifier="orders-db",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin",
        MasterUserPassword="password1",
        AllocatedStorage=20,
        StorageEncrypted=True,
        KmsKeyId=keys[REGION],
        BackupRetentionPeriod=7,
    )
    return "orders-db"


@pytest.fixture(name="cluster_id")
def _cluster_id(rds: Any, keys: dict[str, str]) -> str:
    rds.create_db_cluster(
        DBClusterIdentifier="orders",
        Engine="aurora-postgresql",
        MasterUsername="admin",
        MasterUserPassword="password1",
        StorageEncrypted=True,
        KmsKeyId=keys[REGION],
        BackupRetentionPeriod=7,
    )
    return "orders"


def _make_instance(**kwargs: Any) -> RdsInstance:
    options: dict[str, Any] = {
        "region": REGION,
        "retry": FAST,
        "sleep": _no_sleep,
        "copy_regions": [OTHER],
        "policy": "prod",
        "session": SESSION,
    }
    return RdsInstance("orders-db", **{**options, **kwargs})


def _make_cluster(**kwargs: Any) -> AuroraCluster:
    options: dict[str, Any] = {
        "region": REGION,
        "retry": FAST,
        "sleep": _no_sleep,
        "copy_regions": [OTHER],
        "policy": "prod",
        "session": SESSION,
    }
    return AuroraCluster("orders", **{**options, **kwargs})


@pytest.fixture(name="db")
def _db(instance_id: str) -> RdsInstance:
    return _make_instance()


@pytest.fixture(name="cluster")
def _cluster(cluster_id: str) -> AuroraCluster:
    return _make_cluster()


@pytest.fixture(name="target", params=["instance", "cluster"])
def _target(request: pytest.FixtureRequest, rds: Any, keys: dict[str, str]) -> Any:
    """Each test using it runs once for RdsInstance and once for AuroraCluster."""
    if request.param == "instance":
        request.getfixturevalue("instance_id")
        return _make_instance()
    request.getfixturevalue("cluster_id")
    return _make_cluster()


def _is_cluster(target: Any) -> bool:
    return isinstance(target, AuroraCluster)


def _raw_create(target: Any, snapshot_id: str, tags: dict[str, str] | None = None) -> None:
    """Make a snapshot outside the library (no ownership tags unless given)."""
    client = SESSION.client("rds")
    tag_list = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
    if _is_cluster(target):
        client.create_db_cluster_snapshot(
            DBClusterSnapshotIdentifier=snapshot_id, DBClusterIdentifier="orders", Tags=tag_list
        )
    else:
        client.create_db_snapshot(
            DBSnapshotIdentifier=snapshot_id, DBInstanceIdentifier="orders-db", Tags=tag_list
        )


def _moto_snapshots(target: Any, region: str = REGION) -> dict[str, Any]:
    from moto.rds.models import rds_backends

    backend = rds_backends[ACCOUNT][region]
    return backend.cluster_snapshots if _is_cluster(target) else backend.database_snapshots


def _backdate(target: Any, snapshot_id: str, when: datetime) -> None:
    """moto stamps snapshots with the wall clock: edit its backend object to backdate one.

    Both times move: for a snapshot that is no copy, AWS reports OriginalSnapshotCreateTime
    equal to SnapshotCreateTime.
    """
    snapshot = _moto_snapshots(target)[snapshot_id]
    snapshot.created = when.astimezone(UTC).replace(tzinfo=None)
    snapshot.original_snapshot_create_time = snapshot.created


def _ids(target: Any) -> set[str]:
    return {p.id for p in target.list_points()}


# --------------------------------------------------------------------------- stub helpers


def _stubbed(cls: type = RdsInstance, **kwargs: Any) -> tuple[Any, Stubber]:
    client = SESSION.client("rds")
    stub = Stubber(client)
    stub.activate()
    target = cls(
        "orders-db" if cls is RdsInstance else "orders",
        region=REGION,
        clients={"rds": client},
        retry=RetryPolicy(sleep=kwargs.pop("retry_sleep", _no_sleep)),
        sleep=kwargs.pop("sleep", _no_sleep),
        policy="prod",
        **kwargs,
    )
    return target, stub


def _raw_snapshot(
    snapshot_id: str,
    *,
    status: str = "available",
    snapshot_type: str = "manual",
    created: datetime | None = NOW,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "DBSnapshotIdentifier": snapshot_id,
        "DBInstanceIdentifier": "orders-db",
        "Status": status,
        "SnapshotType": snapshot_type,
        "AllocatedStorage": 20,
        "Engine": "postgres",
        "Encrypted": True,
        "KmsKeyId": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k1",
        "InstanceCreateTime": NOW - timedelta(days=400),
        "DBSnapshotArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:{snapshot_id}",
        "TagList": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    }
    if created is not None:
        raw["SnapshotCreateTime"] = created
    return raw


OURS = {TAG_POLICY: "prod", TAG_TARGET: "orders-db"}


# --------------------------------------------------------------------------- values


class TestBackupWindow:
    def test_parse_and_format_round_trip(self):
        """RDS's 'hh24:mi-hh24:mi' text parses to start + duration and formats back."""
        window = BackupWindow.parse("04:00-05:00")
        assert (time(4, 0), timedelta(hours=1)) == (window.start, window.duration)
        assert "04:00-05:00" == str(window)

    def test_from_start_and_duration_text(self):
        """A window can be built from a start time and a duration like '90min'."""
        assert "04:00-05:30" == str(BackupWindow(time(4, 0), "90min"))

    def test_window_over_midnight(self):
        """A window may run past midnight."""
        window = BackupWindow.parse("23:30-00:30")
        assert timedelta(hours=1) == window.duration
        assert time(0, 30) == window.end

    @pytest.mark.parametrize("text", ["04:00-04:29", "04:00-04:00", "23:50-00:10"])
    def test_shorter_than_30_minutes_refused(self, text):
        """RDS needs at least 30 minutes; moto does not check, we do."""
        with pytest.raises(PolicyError, match="at least 30 minutes"):
            BackupWindow.parse(text)

    @pytest.mark.parametrize("text", ["4:00-05:00", "04:00-24:00", "04:60-05:00", "04:00", ""])
    def test_bad_format_refused(self, text):
        """Only hh24:mi-hh24:mi is accepted."""
        with pytest.raises(PolicyError, match="hh24:mi-hh24:mi"):
            BackupWindow.parse(text)

    def test_start_with_seconds_refused(self):
        """RDS windows are whole minutes."""
        with pytest.raises(PolicyError, match=r"backup_window\.start"):
            BackupWindow(time(4, 0, 30), timedelta(hours=1))

    def test_calendar_duration_refused(self):
        """A duration in months has no fixed length."""
        with pytest.raises(PolicyError, match=r"backup_window\.duration"):
            BackupWindow(time(4, 0), "1m")

    def test_day_long_window_refused(self):
        """A window must be shorter than a day."""
        with pytest.raises(PolicyError, match="less than 24 hours"):
            BackupWindow(time(4, 0), timedelta(hours=24))


class TestBackupSettings:
    @pytest.mark.parametrize("days", [36, -1, True, "7"])
    def test_retention_out_of_range_refused(self, days):
        """Retention must be an integer 0-35 (AWS refuses 36; moto does not)."""
        with pytest.raises(PolicyError, match="retention_days: expected an integer from 0 to 35"):
            BackupSettings(retention_days=days)

    def test_window_text_converted(self):
        """The window may be given as text."""
        assert (
            BackupWindow.parse("04:00-04:30")
            == BackupSettings(backup_window="04:00-04:30").backup_window
        )

    def test_coerce_mapping(self):
        """A mapping of field names becomes BackupSettings."""
        expected = BackupSettings(retention_days=35, copy_tags_to_snapshot=True)
        assert expected == BackupSettings.coerce(
            {"retention_days": 35, "copy_tags_to_snapshot": True}
        )

    def test_coerce_unknown_field_refused(self):
        """An unknown key is named in the error."""
        with pytest.raises(PolicyError, match=r"expected\.retention: expected one of"):
            BackupSettings.coerce({"retention": 35})

    def test_copy_tags_must_be_bool(self):
        """copy_tags_to_snapshot takes True, False or None only."""
        with pytest.raises(PolicyError, match="copy_tags_to_snapshot"):
            BackupSettings(copy_tags_to_snapshot="yes")  # type: ignore[arg-type]

    def test_drift_describe(self):
        """A drift reads 'field: expected X, actual Y', windows as text."""
        drift = Drift("backup_window", BackupWindow.parse("04:00-04:30"), None)
        assert "backup_window: expected 04:00-04:30, actual None" == drift.describe()


class TestHelpers:
    @given(st.text(min_size=1, max_size=300))
    def test_identifier_always_valid(self, text):
        """Any text becomes a valid RDS identifier of at most 255 characters."""
        name = identifier(f"bp-{text}", max_length=255)
        assert RDS_ID.match(name)
        assert len(name) <= 255

    def test_identifier_keeps_clean_names(self):
        """A name that is already valid is kept."""
        assert "bp-orders-db-2026-11-26" == identifier("bp-orders-db-2026-11-26", max_length=255)

    @given(st.text(max_size=60))
    def test_tag_encoding_round_trips_and_is_valid(self, text):
        """Any text is encoded into RDS's tag alphabet and decodes back unchanged."""
        encoded = encode_tag(text, field="reason")
        assert RDS_TAG_VALUE.match(encoded)
        assert text == decode_tag(encoded)

    def test_tag_too_long_refused(self):
        """A value that would exceed 256 characters once encoded is refused, naming the field."""
        with pytest.raises(PolicyError, match="reason: expected at most 256"):
            encode_tag("|" * 100, field="reason")

    @pytest.mark.parametrize(
        ("window", "maintenance", "overlap"),
        [
            ("04:00-05:00", "mon:04:30-mon:05:00", True),
            ("04:00-05:00", "mon:05:00-mon:05:30", False),
            ("23:30-00:30", "tue:00:00-tue:00:30", True),
            ("00:00-00:30", "sun:23:45-mon:00:15", True),
            ("04:00-05:00", "", False),
        ],
    )
    def test_maintenance_overlap(self, window, maintenance, overlap):
        """The daily backup window is checked against every day of the weekly maintenance window."""
        assert overlap == maintenance_overlap(BackupWindow.parse(window), maintenance)


# --------------------------------------------------------------------------- contract


class _RdsContract(BackupTargetContract):
    """The shared contract, with RDS fixtures."""

    @pytest.fixture(name="destination")
    def _destination(self, keys):
        return Destination(tier="offsite", region=OTHER, kms_key_id=keys[OTHER])

    @pytest.fixture(name="isolation")
    def _isolation(self):
        return IsolationProfile(name_prefix="rt-")

    def restored_exists(self, target: BackupTarget, restored: RestoredResource) -> bool | None:
        """Whether the restored instance or cluster is still there."""
        client = SESSION.client("rds")
        try:
            if restored.kind == "aurora-cluster":
                client.describe_db_clusters(DBClusterIdentifier=restored.id)
            else:
                client.describe_db_instances(DBInstanceIdentifier=restored.id)
        except ClientError:
            return False
        return True


class TestRdsInstanceContract(_RdsContract):
    """RdsInstance passes the BackupTarget contract under moto."""

    @pytest.fixture(name="target")
    def _target(self, instance_id):
        return _make_instance()

    @pytest.fixture(name="foreign_point")
    def _foreign_point(self, target):
        _raw_create(target, "someone-elses")
        point = target.refresh(RecoveryPoint("someone-elses", "orders-db", NOW))
        assert point is not None
        return point


class TestAuroraClusterContract(_RdsContract):
    """AuroraCluster passes the BackupTarget contract under moto."""

    @pytest.fixture(name="target")
    def _target(self, cluster_id):
        return _make_cluster()

    @pytest.fixture(name="foreign_point")
    def _foreign_point(self, target):
        _raw_create(target, "someone-elses")
        point = target.refresh(RecoveryPoint("someone-elses", "orders", NOW))
        assert point is not None
        return point


# --------------------------------------------------------------------------- construction


class TestConstruction:
    def test_repr(self):
        """The repr names the class, the resource, the target name and the region."""
        db = RdsInstance("orders-db", name="orders", region=REGION)
        assert (
            "<backuppolicy.aws.rds.RdsInstance('orders-db', name='orders', region='us-east-1')>"
            == repr(db)
        )

    @pytest.mark.parametrize(
        ("kwargs", "field"), [({"max_workers": 0}, "max_workers"), ({"policy": ""}, "policy")]
    )
    def test_bad_options_refused(self, kwargs, field):
        """Options are validated at construction, naming the field."""
        with pytest.raises(PolicyError, match=f"^{field}: expected"):
            AuroraCluster("orders", region=REGION, **kwargs)

    def test_empty_identifier_refused(self):
        """The resource identifier must be a non-empty string."""
        with pytest.raises(PolicyError, match="DBClusterIdentifier: expected a non-empty string"):
            AuroraCluster("")

    def test_kinds_are_registered(self):
        """The registry resolves the built-in kinds to these classes."""
        from backuppolicy.core.targets import get_target_class

        assert (RdsInstance, AuroraCluster) == (
            get_target_class("rds-instance"),
            get_target_class("aurora-cluster"),
        )


# --------------------------------------------------------------------------- create


class TestCreate:
    def test_point_fields(self, target):
        """A new snapshot is a managed, tagged, encrypted point with ARN, size and location."""
        point = target.create_backup(reason="manual", token="t1")
        kind = "rds-cluster-snapshot" if _is_cluster(target) else "rds-snapshot"
        assert kind == point.kind
        assert target.name == point.target
        assert point.managed
        assert "local" == point.tier
        assert f"aws:{ACCOUNT}:{REGION}" == point.location
        assert point.encrypted
        assert point.details["arn"].startswith(f"arn:aws:rds:{REGION}:{ACCOUNT}:")
        assert point.details["kms_key_id"]
        expected_tags = {
            TAG_POLICY: "prod",
            TAG_TARGET: target.name,
            TAG_REASON: "manual",
            TAG_TOKEN: "t1",
        }
        assert expected_tags == {k: point.tags[k] for k in expected_tags}

    def test_instance_size_from_allocated_storage(self, db):
        """AllocatedStorage (GiB) becomes size_bytes."""
        assert 20 * 1024**3 == db.create_backup(token="size").size_bytes

    def test_name_from_clock_without_token(self, instance_id):
        """Without a token the snapshot is named bp-<target>-<UTC stamp>."""
        db = _make_instance(clock=lambda: NOW)
        assert "bp-orders-db-20261126t040000z" == db.create_backup().id

    def test_name_from_token(self, instance_id):
        """With a token: bp-<target>-<the token's stamp, else now>-<token digest>."""
        db = _make_instance(clock=lambda: NOW)
        slot = db.create_backup(token="prod-orders-db-20261125T040000Z").id
        own = db.create_backup(token="2026-11-26").id
        assert (slot[:-8], own[:-8]) == (
            "bp-orders-db-20261125t040000z-",
            "bp-orders-db-20261126t040000z-",
        )
        assert all(re.fullmatch(r"[0-9a-f]{8}", i[-8:]) for i in (slot, own))

    def test_name_sanitised_for_odd_target_and_token(self, instance_id):
        """Target names and tokens are made into a valid identifier; different tokens differ."""
        db = _make_instance(name="Orders_DB")
        first = db.create_backup(token="run 1")
        second = db.create_backup(token="run-1")
        assert RDS_ID.match(first.id)
        assert first.id.startswith("bp-orders-db-")
        assert first.id != second.id

    def test_long_names_fit_rds_limits(self, target, keys):
        """Long target names and tokens are shortened with a hash: 255 (DB) or 63 (cluster) chars."""
        long = (
            _make_cluster(name="c" * 80) if _is_cluster(target) else _make_instance(name="d" * 250)
        )
        limit = 63 if _is_cluster(target) else 255
        point = long.create_backup(token="t" * 100)
        copy = long.copy(point, Destination(region=OTHER, kms_key_id=keys[OTHER]))
        assert all(RDS_ID.match(i) and len(i) <= limit for i in (point.id, copy.id))
        assert point.id == long.create_backup(token="t" * 100).id

    def test_same_token_same_point(self, target):
        """A second create with the same token returns the first snapshot."""
        first = target.create_backup(token="nightly-1")
        second = target.create_backup(token="nightly-1")
        assert first.id == second.id
        assert 1 == sum(p.tags.get(TAG_TOKEN) == "nightly-1" for p in target.list_points())

    def test_lost_response_returns_created_snapshot(self, db):
        """A create whose response is lost (500 after success) is retried and returns the snapshot."""
        failures = iter([True])

        def lose_response(**_kwargs: Any) -> None:
            if next(failures, False):
                raise ClientError(
                    {
                        "Error": {"Code": "InternalFailure"},
                        "ResponseMetadata": {"HTTPStatusCode": 500},
                    },
                    "CreateDBSnapshot",
                )

        db.client("rds").meta.events.register("after-call.rds.CreateDBSnapshot", lose_response)
        point = db.create_backup(token="lost")
        assert point.id.startswith("bp-orders-db-")
        assert [point.id] == [p.id for p in db.list_points() if p.managed]

    def test_name_taken_by_someone_else_raises(self, db):
        """A snapshot of the same name that is not ours is never passed off as our backup."""
        _raw_create(db, "bp-orders-db-20261126t040000z")
        clocked = _make_instance(clock=lambda: NOW)
        with pytest.raises(BackendError, match="taken by a snapshot this call did not create"):
            clocked.create_backup()

    def test_hostile_tag_values_encoded(self, db, rds):
        """Reasons and tokens with characters RDS refuses are stored encoded and read back as given."""
        point = db.create_backup(reason="manual | before upgrade!", token="ticket #7")
        raw = rds.describe_db_snapshots(DBSnapshotIdentifier=point.id)["DBSnapshots"][0]
        assert all(RDS_TAG_VALUE.match(t["Value"]) for t in raw["TagList"])
        assert "manual | before upgrade!" == point.tags[TAG_REASON]
        assert "ticket #7" == db.create_backup(token="ticket #7").tags[TAG_TOKEN]

    def test_user_tags_kept_and_validated(self, db):
        """Extra tags are put on the snapshot; values RDS refuses are rejected, naming the tag."""
        assert "orders" == db.create_backup(token="u", tags={"team": "orders"}).tags["team"]
        with pytest.raises(PolicyError, match=r"tags\['team'\]"):
            db.create_backup(token="v", tags={"team": "a|b"})

    def test_reserved_tag_keys_refused(self, db):
        """Callers cannot set our own tags (or aws:/rds: ones) through tags=."""
        with pytest.raises(PolicyError, match="backuppolicy:"):
            db.create_backup(token="w", tags={TAG_POLICY: "other"})

    def test_missing_instance_raises_not_found(self, rds):
        """Backing up an instance that does not exist raises ResourceNotFoundError."""
        db = _make_instance()
        with pytest.raises(ResourceNotFoundError) as info:
            db.create_backup()
        assert "DBInstanceNotFound" == info.value.code


# --------------------------------------------------------------------------- list / refresh


class TestList:
    def test_manual_and_automated_listed(self, target):
        """Automated snapshots are listed as unmanaged; our manual ones as managed."""
        ours = target.create_backup(token="mine")
        points = {p.id: p for p in target.list_points()}
        automated = [p for p in points.values() if p.details["snapshot_type"] == "automated"]
        assert 1 == len(automated)
        assert not automated[0].managed
        assert points[ours.id].managed

    def test_other_policy_unmanaged(self, target):
        """A snapshot tagged for another policy is not ours."""
        _raw_create(target, "other-policy", {TAG_POLICY: "staging", TAG_TARGET: target.name})
        listed = {p.id: p for p in target.list_points()}
        assert not listed["other-policy"].managed

    def test_created_at_from_snapshot_create_time(self, target):
        """created_at is the snapshot's creation time (backdated in moto's backend)."""
        point = target.create_backup(token="old")
        _backdate(target, point.id, NOW - timedelta(days=40))
        listed = {p.id: p for p in target.list_points()}
        assert NOW - timedelta(days=40) == listed[point.id].created_at

    def test_refresh_sees_new_state(self, target):
        """refresh re-reads the snapshot: a status change shows up."""
        point = target.create_backup(token="r")
        _moto_snapshots(target)[point.id].status = "copying"
        refreshed = target.refresh(point)
        assert refreshed is not None
        assert Status.PENDING == refreshed.status

    def test_refresh_gone_is_none(self, target):
        """refresh of a snapshot that does not exist returns None."""
        assert target.refresh(RecoveryPoint("nope", target.name, NOW, kind="x")) is None

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("available", Status.COMPLETED),
            ("creating", Status.PENDING),
            ("copying", Status.PENDING),
            ("pending", Status.PENDING),
            ("failed", Status.FAILED),
            ("incompatible-restore", Status.FAILED),
            ("something-new", Status.PENDING),
        ],
    )
    def test_status_mapping(self, raw, expected):
        """RDS snapshot statuses map to Status; unknown ones count as pending (never deleted)."""
        db, stub = _stubbed()
        stub.add_response(
            "describe_db_snapshots", {"DBSnapshots": [_raw_snapshot("s", status=raw)]}
        )
        assert [expected] == [p.status for p in db.list_points()]

    def test_creating_snapshot_falls_back_to_instance_create_time(self):
        """A snapshot without SnapshotCreateTime (still creating) uses InstanceCreateTime."""
        db, stub = _stubbed()
        raw = _raw_snapshot("s", status="creating", created=None)
        stub.add_response("describe_db_snapshots", {"DBSnapshots": [raw]})
        assert [NOW - timedelta(days=400)] == [p.created_at for p in db.list_points()]

    def test_hold_read_from_tag(self):
        """A legal-hold tag becomes the point's legal_hold."""
        db, stub = _stubbed()
        tags = {**OURS, TAG_HOLD: encode_tag(HOLD.to_tag(), field="hold")}
        stub.add_response("describe_db_snapshots", {"DBSnapshots": [_raw_snapshot("s", tags=tags)]})
        assert [HOLD] == [p.legal_hold for p in db.list_points()]


class TestPagination:
    def test_every_page_listed(self):
        """Points from every page are yielded, each page asked with the previous Marker."""
        db, stub = _stubbed()
        stub.add_response(
            "describe_db_snapshots",
            {"DBSnapshots": [_raw_snapshot("a"), _raw_snapshot("b")], "Marker": "m1"},
            {"DBInstanceIdentifier": "orders-db", "MaxRecords": 100},
        )
        stub.add_response(
            "describe_db_snapshots",
            {"DBSnapshots": [_raw_snapshot("c")], "Marker": "m2"},
            {"DBInstanceIdentifier": "orders-db", "MaxRecords": 100, "Marker": "m1"},
        )
        stub.add_response(
            "describe_db_snapshots",
            {"DBSnapshots": [_raw_snapshot("d")]},
            {"DBInstanceIdentifier": "orders-db", "MaxRecords": 100, "Marker": "m2"},
        )
        assert ["a", "b", "c", "d"] == [p.id for p in db.list_points()]
        stub.assert_no_pending_responses()

    def test_cluster_pages(self):
        """Cluster snapshots are paginated the same way."""
        cluster, stub = _stubbed(AuroraCluster)

        def raw(snapshot_id: str) -> dict[str, Any]:
            return {
                "DBClusterSnapshotIdentifier": snapshot_id,
                "DBClusterIdentifier": "orders",
                "Status": "available",
                "SnapshotType": "manual",
                "SnapshotCreateTime": NOW,
            }

        stub.add_response(
            "describe_db_cluster_snapshots", {"DBClusterSnapshots": [raw("a")], "Marker": "m"}
        )
        stub.add_response("describe_db_cluster_snapshots", {"DBClusterSnapshots": [raw("b")]})
        assert ["a", "b"] == [p.id for p in cluster.list_points()]

    def test_throttled_page_retried(self):
        """A throttled page is retried after a backoff and the listing completes."""
        slept: list[float] = []
        db, stub = _stubbed(retry_sleep=slept.append)
        stub.add_response(
            "describe_db_snapshots", {"DBSnapshots": [_raw_snapshot("a")], "Marker": "m1"}
        )
        stub.add_client_error("describe_db_snapshots", "Throttling", http_status_code=400)
        stub.add_client_error("describe_db_snapshots", "", http_status_code=500)
        stub.add_response("describe_db_snapshots", {"DBSnapshots": [_raw_snapshot("b")]})
        assert ["a", "b"] == [p.id for p in db.list_points()]
        assert 2 == len(slept)

    def test_later_page_failure_raises_and_deletes_nothing(self):
        """If page 2 is denied, pruning raises instead of deleting from a short listing."""
        db, stub = _stubbed()
        old = _raw_snapshot("old", created=NOW - timedelta(days=90), tags=OURS)
        stub.add_response("describe_db_snapshots", {"DBSnapshots": [old], "Marker": "m1"})
        stub.add_client_error("describe_db_snapshots", "AccessDenied", http_status_code=403)
        with pytest.raises(PermissionDeniedError) as info:
            db.delete_many(p for p in db.list_points() if p.created_at < NOW - timedelta(days=35))
        assert ("DescribeDBSnapshots", "AccessDenied") == (info.value.operation, info.value.code)
        stub.assert_no_pending_responses()  # no delete call was even attempted

    def test_access_denied_on_create(self):
        """AccessDenied becomes PermissionDeniedError naming operation and snapshot."""
        db, stub = _stubbed(clock=lambda: NOW)
        stub.add_client_error("create_db_snapshot", "AccessDenied", http_status_code=403)
        with pytest.raises(PermissionDeniedError) as info:
            db.create_backup()
        assert ("CreateDBSnapshot", "bp-orders-db-20261126t040000z") == (
            info.value.operation,
            info.value.resource,
        )

    def test_throttled_then_success_delete(self):
        """A throttled delete is retried and succeeds."""
        db, stub = _stubbed()
        raw = _raw_snapshot("old", tags=OURS)
        point = RecoveryPoint(
            "old", "orders-db", NOW, kind="rds-snapshot", details={"region": REGION}
        )
        stub.add_response("describe_db_snapshots", {"DBSnapshots": [raw]})
        stub.add_client_error("delete_db_snapshot", "Throttling", http_status_code=400)
        stub.add_response(
            "delete_db_snapshot", {"DBSnapshot": raw}, {"DBSnapshotIdentifier": "old"}
        )
        db.delete(point)
        stub.assert_no_pending_responses()


# --------------------------------------------------------------------------- copy


class TestCopy:
    def test_cross_region_copy(self, target, keys):
        """The copy is made in the destination region with its key, tagged offsite and ours."""
        point = target.create_backup(token="c")
        copy = target.copy(point, Destination(region=OTHER, kms_key_id=keys[OTHER]))
        assert f"{point.id}-offsite" == copy.id  # one id per point across tiers and regions
        assert f"aws:{ACCOUNT}:{OTHER}" == copy.location
        assert ("offsite", "offsite") == (copy.tier, copy.tags[TAG_TIER])
        assert copy.managed
        assert keys[OTHER] == copy.details["kms_key_id"]
        assert "c" == copy.tags[TAG_TOKEN]
        tiers = {(p.id, p.tier) for p in target.list_points() if p.managed}
        assert {(point.id, "local"), (copy.id, "offsite")} == tiers

    def test_copy_is_dated_like_its_source(self, db, keys):
        """A copy made days later is as old as its data (OriginalSnapshotCreateTime), for RPO."""
        point = db.create_backup(token="dated")
        _backdate(db, point.id, NOW - timedelta(days=3))
        source = db.refresh(point)
        assert source is not None
        copy = db.copy(source, Destination(region=OTHER, kms_key_id=keys[OTHER]))
        listed = {p.id: p for p in db.list_points()}
        assert NOW - timedelta(days=3) == listed[copy.id].created_at

    def test_copy_called_on_destination_client(self, db, keys):
        """copy_db_snapshot goes to the destination region with the source ARN and SourceRegion."""
        point = db.create_backup(token="c")
        seen: list[dict[str, Any]] = []
        destination_client = db.client("rds", region=OTHER)
        destination_client.meta.events.register(
            "before-parameter-build.rds.CopyDBSnapshot",
            lambda params, **_: seen.append(dict(params)),
        )
        db.copy(point, Destination(region=OTHER, kms_key_id=keys[OTHER]))
        expected = {
            "SourceDBSnapshotIdentifier": point.details["arn"],
            "TargetDBSnapshotIdentifier": f"{point.id}-offsite",
            "SourceRegion": REGION,
            "KmsKeyId": keys[OTHER],
            "CopyTags": True,
        }
        assert [expected] == [{k: p[k] for k in expected} for p in seen]

    def test_copy_again_returns_existing(self, target, keys):
        """Copying the same point again returns the existing copy."""
        point = target.create_backup(token="c")
        destination = Destination(region=OTHER, kms_key_id=keys[OTHER])
        assert target.copy(point, destination).id == target.copy(point, destination).id
        assert 1 == sum(p.tier == "offsite" for p in target.list_points())

    def test_same_region_copy_named_after_tier(self, db, keys):
        """A copy in the source region gets the tier in its name."""
        point = db.create_backup(token="c")
        copy = db.copy(point, Destination(tier="vault", region=REGION, kms_key_id=keys[REGION]))
        assert f"{point.id}-vault" == copy.id

    def test_held_copy_source_hold_not_copied(self, db, keys):
        """A legal hold on the source stays with the source."""
        point = db.place_hold(db.create_backup(token="c"), HOLD)
        copy = db.copy(point, Destination(region=OTHER, kms_key_id=keys[OTHER]))
        assert copy.legal_hold is None

    def test_encrypted_without_key_refused_before_any_call(self):
        """Copying an encrypted snapshot needs a destination key; refused before calling AWS."""
        db, stub = _stubbed()
        point = RecoveryPoint("s", "orders-db", NOW, kind="rds-snapshot", encrypted=True)
        with pytest.raises(PolicyError, match=r"destination\.kms_key_id: expected a KMS key"):
            db.copy(point, Destination(region=OTHER))
        stub.assert_no_pending_responses()

    @pytest.mark.parametrize(
        ("destination", "field"),
        [
            (Destination(), "destination.region"),
            (Destination(region=OTHER, account="2"), "destination.account"),
        ],
    )
    def test_bad_destination_refused(self, destination, field):
        """A destination without region, or in another account, is refused."""
        db, _stub = _stubbed()
        point = RecoveryPoint("s", "orders-db", NOW, kind="rds-snapshot", encrypted=False)
        with pytest.raises(PolicyError, match=re.escape(field)):
            db.copy(point, destination)

    def test_pending_point_refused(self):
        """Only available snapshots can be copied."""
        db, _stub = _stubbed()
        point = RecoveryPoint("s", "orders-db", NOW, kind="rds-snapshot", status=Status.PENDING)
        with pytest.raises(PolicyError, match=r"point\.status"):
            db.copy(point, Destination(region=OTHER))

    def test_copy_of_automated_snapshot_is_managed(self, db, keys):
        """Copying an automated snapshot makes a manual copy owned by the target."""
        automated = next(p for p in db.list_points() if not p.managed)
        copy = db.copy(automated, Destination(region=OTHER, kms_key_id=keys[OTHER]))
        assert RDS_ID.match(copy.id)
        assert copy.managed
        assert "copy" == copy.tags[TAG_REASON]


# --------------------------------------------------------------------------- delete


class TestDelete:
    def test_delete_removes_snapshot(self, target):
        """A managed snapshot is deleted."""
        point = target.create_backup(token="d")
        target.delete(point)
        assert point.id not in _ids(target)

    def test_automated_refused(self, target):
        """Automated snapshots are RDS's to expire: refused."""
        automated = next(p for p in target.list_points() if not p.managed)
        with pytest.raises(ProtectedPointError, match="not managed"):
            target.delete(automated)
        assert automated.id in _ids(target)

    def test_pending_on_backend_refused(self, target):
        """A snapshot RDS reports as creating is refused even if the caller thinks it is done."""
        point = target.create_backup(token="p")
        _moto_snapshots(target)[point.id].status = "creating"
        with pytest.raises(ProtectedPointError, match="pending"):
            target.delete(point)

    def test_other_target_refused(self, db):
        """A point of another target is refused."""
        point = db.create_backup(token="x").evolve(target="billing-db")
        with pytest.raises(ProtectedPointError, match="billing-db"):
            db.delete(point)

    def test_copy_deleted_in_its_region(self, db, keys):
        """A copy is deleted in its own region, the source stays."""
        point = db.create_backup(token="c")
        copy = db.copy(point, Destination(region=OTHER, kms_key_id=keys[OTHER]))
        db.delete(copy)
        assert [(point.id, "local")] == [(p.id, p.tier) for p in db.list_points() if p.managed]

    def test_apply_of_a_plan_deleting_everything_keeps_each_tiers_newest(self, db, keys):
        """A hand-made plan listing every snapshot keeps the newest completed one of each tier."""
        from backuppolicy.core.retention import RetentionPlan
        from backuppolicy.workflows.pruning import apply

        points = [db.create_backup(token=f"f{i}") for i in range(3)]
        for age, point in zip([3, 2, 1], points, strict=True):
            _backdate(db, point.id, NOW - timedelta(days=age))
        copy = db.copy(points[0], Destination(region=OTHER, kms_key_id=keys[OTHER]))
        everything = list(db.list_points())
        plan = RetentionPlan(keep=[], delete=everything, reasons={}, now=NOW)

        report = apply(plan, targets={db.name: db})

        left = {(p.tier, p.id) for p in db.list_points() if p.managed}
        assert {("local", points[2].id), ("offsite", copy.id)} == left
        assert {points[0].id, points[1].id} == {p.id for p in report.deleted}
        assert [] == report.failed

    def test_delete_many(self, target):
        """delete_many deletes every given point and returns their ids in order."""
        points = [target.create_backup(token=f"m{i}") for i in range(6)]
        newest = target.create_backup(token="m9")
        assert [p.id for p in points] == target.delete_many(points, max_workers=3)
        assert not {p.id for p in points} & _ids(target)
        assert newest.id in _ids(target)

    def test_delete_many_refuses_the_newest_completed_snapshot(self, db):
        """A list that holds the tier's newest completed snapshot deletes nothing at all."""
        points = [db.create_backup(token=f"n{i}") for i in range(3)]
        for age, point in zip([3, 2, 1], points, strict=True):
            _backdate(db, point.id, NOW - timedelta(days=age))
        with pytest.raises(ProtectedPointError, match="newest completed snapshot"):
            db.delete_many(points)
        assert {p.id for p in points} <= _ids(db)

    def test_delete_many_refuses_all_if_one_held(self, db):
        """If one point is held on the backend, nothing is deleted."""
        points = [db.create_backup(token=f"m{i}") for i in range(3)]
        db.place_hold(points[1], HOLD)
        with pytest.raises(ProtectedPointError, match="legal hold"):
            db.delete_many(points)
        assert {p.id for p in points} <= _ids(db)

    def test_delete_many_skips_gone(self, db):
        """Points that are already gone are skipped."""
        points = [db.create_backup(token=f"m{i}") for i in range(2)]
        db.create_backup(token="m9")  # the newest, which delete_many never deletes
        db.delete(points[0])
        assert [points[1].id] == db.delete_many(points)

    def test_delete_many_raises_worker_error(self, db):
        """A failing delete is raised, with how many were deleted before it."""
        points = [db.create_backup(token=f"m{i}") for i in range(2)]
        db.create_backup(token="m9")  # the newest, which delete_many never deletes

        def deny(params: dict[str, Any], **_: Any) -> None:
            if params["DBSnapshotIdentifier"] == points[1].id:
                raise ClientError(
                    {
                        "Error": {"Code": "AccessDenied"},
                        "ResponseMetadata": {"HTTPStatusCode": 403},
                    },
                    "DeleteDBSnapshot",
                )

        db.client("rds").meta.events.register("before-parameter-build.rds.DeleteDBSnapshot", deny)
        with pytest.raises(PermissionDeniedError) as info:
            db.delete_many(points, max_workers=1)
        assert "1 of 2 snapshots were deleted before it" in info.value.__notes__[0]
        assert points[1].id in _ids(db)

    def test_delete_many_bad_workers(self, db):
        """max_workers must be a positive integer."""
        with pytest.raises(PolicyError, match="max_workers"):
            db.delete_many([], max_workers=0)


class TestAdaptiveDeletes:
    """delete_many and apply size their fan-out with the shared AIMD limit of RDS in the region.

    moto never throttles: a ``before-parameter-build`` handler answers the first calls of
    DeleteDBSnapshot with ``Throttling`` (a ClientError, as botocore raises it) before any
    request is sent; the retry policy records its waits instead of sleeping.
    """

    @pytest.fixture(autouse=True)
    def _fresh_limits(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from backuppolicy.core import concurrency

        monkeypatch.setattr(concurrency, "_SHARED", {})

    @staticmethod
    def _throttle_first(db: RdsInstance, n: int, code: str = "Throttling") -> Counter[str]:
        seen: Counter[str] = Counter()
        lock = threading.Lock()

        def throttle(params: dict[str, Any], **_: Any) -> None:
            with lock:
                seen["calls"] += 1
                if seen["calls"] > n:
                    return
                seen["throttled"] += 1
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": "Rate exceeded"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "DeleteDBSnapshot",
            )

        db.client("rds").meta.events.register(
            "before-parameter-build.rds.DeleteDBSnapshot", throttle
        )
        return seen

    def _points(self, db: RdsInstance, n: int) -> list[RecoveryPoint]:
        points = [db.create_backup(token=f"a{i}") for i in range(n)]
        for age, point in enumerate(reversed(points), start=1):
            _backdate(db, point.id, NOW - timedelta(days=age))
        listed = {p.id: p for p in db.list_points() if p.managed}
        return [listed[p.id] for p in points]  # oldest first, dated as RDS reports them

    @pytest.mark.parametrize("code", ["Throttling", "RequestLimitExceeded", "SlowDown"])
    def test_throttling_backs_off_then_every_delete_succeeds(self, instance_id, code):
        """Throttled deletes are retried after a wait, the limit is halved, and all are deleted."""
        waits: list[float] = []
        db = _make_instance(retry=RetryPolicy(sleep=waits.append, base=0.25))
        points = self._points(db, 6)
        seen = self._throttle_first(db, 3, code)

        deleted = db.delete_many(points[:-1])

        assert sorted(p.id for p in points[:-1]) == sorted(deleted)
        assert {points[-1].id} == {p.id for p in db.list_points() if p.managed}
        assert seen["throttled"] == 3
        assert len(waits) == 3  # one backoff per throttled attempt
        limit = db.delete_limit(points[0])
        assert limit.throttles == 3
        assert limit.cuts >= 1
        assert limit.limit < 32

    def test_without_throttling_the_limit_grows(self, instance_id):
        """Clean deletes grow the shared limit beyond its start of 8."""
        db = _make_instance()
        points = self._points(db, 6)
        assert len(db.delete_many(points[:-1])) == 5
        limit = db.delete_limit(points[0])
        assert (limit.limit, limit.cuts) == (13, 0)
        assert limit is _make_instance().delete_limit(points[0])  # shared per service + region

    def test_never_more_in_flight_than_the_limit_allows(self, instance_id, monkeypatch):
        """A limit pinned at 2 keeps at most 2 DeleteDBSnapshot calls in flight."""
        from backuppolicy.core.concurrency import AdaptiveLimit

        db = _make_instance()
        points = self._points(db, 9)
        pinned = AdaptiveLimit(2, floor=2, cap=2)
        monkeypatch.setattr(db, "delete_limit", lambda _point: pinned)
        inside, most, lock = [0], [0], threading.Lock()
        original = db._delete_snapshot

        def counting(point: RecoveryPoint) -> None:
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            try:
                original(point)
            finally:
                with lock:
                    inside[0] -= 1

        monkeypatch.setattr(db, "_delete_snapshot", counting)
        assert len(db.delete_many(points[:-1])) == 8
        assert 1 <= most[0] <= 2

    def test_throttling_that_never_ends_is_raised_and_stops(self, instance_id):
        """A delete still throttled after every retry is raised as ThrottledError; nothing more starts."""
        from backuppolicy.core.exceptions import ThrottledError

        waits: list[float] = []
        db = _make_instance(retry=RetryPolicy(sleep=waits.append, max_attempts=3))
        points = self._points(db, 4)
        self._throttle_first(db, 10**6)
        with pytest.raises(ThrottledError, match="Throttling") as info:
            db.delete_many(points[:-1], max_workers=1)
        assert "0 of 3 snapshots were deleted before it" in info.value.__notes__[0]
        assert {p.id for p in points} <= _ids(db)
        assert len(waits) == 2  # three attempts of the first delete, then stop

    def test_a_hard_error_stops_the_deletes_waiting_for_a_slot(self, instance_id):
        """AccessDenied on one delete is raised; the deletes after it never run."""
        db = _make_instance()
        points = self._points(db, 5)
        calls: list[str] = []

        def deny(params: dict[str, Any], **_: Any) -> None:
            calls.append(params["DBSnapshotIdentifier"])
            if params["DBSnapshotIdentifier"] == points[1].id:
                raise ClientError(
                    {
                        "Error": {"Code": "AccessDenied"},
                        "ResponseMetadata": {"HTTPStatusCode": 403},
                    },
                    "DeleteDBSnapshot",
                )

        db.client("rds").meta.events.register("before-parameter-build.rds.DeleteDBSnapshot", deny)
        with pytest.raises(PermissionDeniedError) as info:
            db.delete_many(points[:-1], max_workers=1)
        assert "1 of 4 snapshots were deleted before it" in info.value.__notes__[0]
        assert [points[0].id, points[1].id] == calls
        assert {p.id for p in points[1:]} <= _ids(db)

    def test_apply_backs_off_on_throttling_and_keeps_the_floor(self, instance_id):
        """apply: throttled deletes succeed after backoff; the tier's newest point is never deleted."""
        from backuppolicy.core.retention import RetentionPlan
        from backuppolicy.workflows.pruning import apply

        waits: list[float] = []
        db = _make_instance(retry=RetryPolicy(sleep=waits.append))
        points = self._points(db, 5)
        seen = self._throttle_first(db, 2)
        plan = RetentionPlan(keep=[], delete=points, reasons={}, now=NOW)

        report = apply(plan, targets={db.name: db})

        assert sorted(p.id for p in points[:-1]) == sorted(p.id for p in report.deleted)
        assert [points[-1].id] == [o.point.id for o in report.skipped]
        assert "newest completed point" in report.skipped[0].reason
        assert [] == report.failed
        assert seen["throttled"] == 2
        assert len(waits) == 2
        assert db.delete_limit(points[0]).cuts >= 1

    def test_apply_reports_a_hard_error_and_goes_on(self, instance_id):
        """apply: an AccessDenied delete is that point's failure; the other points are deleted."""
        from backuppolicy.core.retention import RetentionPlan
        from backuppolicy.workflows.pruning import apply

        db = _make_instance()
        points = self._points(db, 4)

        def deny(params: dict[str, Any], **_: Any) -> None:
            if params["DBSnapshotIdentifier"] == points[0].id:
                raise ClientError(
                    {
                        "Error": {"Code": "AccessDenied"},
                        "ResponseMetadata": {"HTTPStatusCode": 403},
                    },
                    "DeleteDBSnapshot",
                )

        db.client("rds").meta.events.register("before-parameter-build.rds.DeleteDBSnapshot", deny)
        plan = RetentionPlan(keep=[points[-1]], delete=points[:-1], reasons={}, now=NOW)

        report = apply(plan, targets={db.name: db})

        assert [points[0].id] == [o.point.id for o in report.failed]
        assert "AccessDenied" in report.failed[0].reason
        assert sorted(p.id for p in points[1:-1]) == sorted(p.id for p in report.deleted)
        assert points[0].id in _ids(db)


# --------------------------------------------------------------------------- holds


class TestHolds:
    def test_place_and_release(self, target, rds):
        """A hold is a tag on the snapshot (in RDS's alphabet), listed back, and can be released."""
        point = target.create_backup(token="h")
        held = target.place_hold(point, HOLD)
        assert HOLD == held.legal_hold
        listed = {p.id: p for p in target.list_points()}
        assert HOLD == listed[point.id].legal_hold
        raw_tags = rds.list_tags_for_resource(ResourceName=point.details["arn"])["TagList"]
        assert all(RDS_TAG_VALUE.match(t["Value"]) for t in raw_tags)
        released = target.release_hold(held)
        assert released.legal_hold is None
        target.delete(released)
        assert point.id not in _ids(target)

    def test_hold_on_automated_refused(self, db):
        """Holding an automated snapshot would not stop RDS expiring it: refused."""
        automated = next(p for p in db.list_points() if not p.managed)
        with pytest.raises(PolicyError, match="manual snapshot"):
            db.place_hold(automated, HOLD)

    def test_hold_without_arn_looks_it_up(self, db):
        """A point without details is looked up first."""
        point = db.create_backup(token="h")
        bare = RecoveryPoint(point.id, "orders-db", NOW, kind="rds-snapshot")
        db.place_hold(bare, HOLD)
        assert db.refresh(point).legal_hold == HOLD  # type: ignore[union-attr]


# --------------------------------------------------------------------------- settings


class TestSettings:
    def test_settings_typed(self, target, rds):
        """settings() returns retention, window and copy-tags as typed values."""
        if _is_cluster(target):
            rds.modify_db_cluster(
                DBClusterIdentifier="orders",
                PreferredBackupWindow="04:00-04:30",
                ApplyImmediately=True,
            )
        else:
            rds.modify_db_instance(
                DBInstanceIdentifier="orders-db",
                PreferredBackupWindow="04:00-04:30",
                ApplyImmediately=True,
            )
        expected = BackupSettings(
            retention_days=7,
            backup_window=BackupWindow(time(4, 0), timedelta(minutes=30)),
            copy_tags_to_snapshot=False,
        )
        assert expected == target.settings()

    def test_drift_reports_differences(self, target):
        """drift lists each differing field with expected and actual values; None fields are skipped."""
        expected = BackupSettings(retention_days=35, copy_tags_to_snapshot=True)
        assert [
            Drift("retention_days", 35, 7),
            Drift("copy_tags_to_snapshot", True, False),
        ] == target.drift(expected)

    def test_enforce_dry_run_changes_nothing(self, target):
        """enforce without apply reports the changes and leaves the settings alone."""
        before = target.settings()
        drifts = target.enforce({"retention_days": 35})
        assert [Drift("retention_days", 35, 7)] == drifts
        assert before == target.settings()

    def test_enforce_apply(self, target):
        """enforce(apply=True) modifies the instance/cluster; afterwards there is no drift."""
        expected = BackupSettings(
            retention_days=35, backup_window="04:00-05:00", copy_tags_to_snapshot=True
        )
        target.enforce(expected, apply=True)
        assert expected == target.settings()
        assert [] == target.drift(expected)

    def test_enforce_apply_immediately(self, db):
        """The modify call applies immediately and sends only what drifted."""
        seen: list[dict[str, Any]] = []
        db.client("rds").meta.events.register(
            "before-parameter-build.rds.ModifyDBInstance",
            lambda params, **_: seen.append(dict(params)),
        )
        db.enforce(BackupSettings(retention_days=35, copy_tags_to_snapshot=False), apply=True)
        expected = {
            "DBInstanceIdentifier": "orders-db",
            "ApplyImmediately": True,
            "BackupRetentionPeriod": 35,
        }
        assert [expected] == seen

    def test_no_drift_no_call(self, db):
        """Nothing is modified when nothing drifted."""
        seen: list[Any] = []
        db.client("rds").meta.events.register(
            "before-call.rds.ModifyDBInstance", lambda **kwargs: seen.append(kwargs)
        )
        assert [] == db.enforce(BackupSettings(retention_days=7), apply=True)
        assert [] == seen

    def test_retention_36_refused_before_any_call(self):
        """Retention 36 is refused by us (moto would accept it), before any AWS call."""
        db, stub = _stubbed()
        with pytest.raises(PolicyError, match="retention_days"):
            db.enforce({"retention_days": 36}, apply=True)
        stub.assert_no_pending_responses()

    def test_short_window_refused_before_any_call(self):
        """A window under 30 minutes is refused by us (moto would accept it)."""
        db, stub = _stubbed()
        with pytest.raises(PolicyError, match="backup_window"):
            db.enforce({"backup_window": "04:00-04:10"}, apply=True)
        stub.assert_no_pending_responses()

    def test_window_overlapping_maintenance_refused(self, db, rds):
        """A backup window overlapping the maintenance window is refused (AWS does, moto does not)."""
        rds.modify_db_instance(
            DBInstanceIdentifier="orders-db",
            PreferredMaintenanceWindow="sun:04:15-sun:04:45",
            ApplyImmediately=True,
        )
        with pytest.raises(PolicyError, match="maintenance window"):
            db.enforce({"backup_window": "04:00-05:00"}, apply=True)

    def test_aurora_retention_zero_refused(self):
        """Aurora keeps automated backups 1-35 days: 0 is refused before any call."""
        cluster, stub = _stubbed(AuroraCluster)
        with pytest.raises(PolicyError, match="from 1 to 35 for aurora-cluster"):
            cluster.enforce({"retention_days": 0})
        stub.assert_no_pending_responses()

    def test_missing_instance(self, rds):
        """settings() of a missing instance raises ResourceNotFoundError."""
        with pytest.raises(ResourceNotFoundError):
            _make_instance().settings()


# --------------------------------------------------------------------------- restore


@pytest.fixture(name="isolation")
def _isolation(aws: None) -> IsolationProfile:
    """A dedicated VPC, two subnets, a subnet group and a security group for restores."""
    ec2 = SESSION.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{REGION}{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in enumerate("ab")
    ]
    group = ec2.create_security_group(GroupName="restore-tests", Description="x", VpcId=vpc)
    SESSION.client("rds").create_db_subnet_group(
        DBSubnetGroupName="restore-tests", DBSubnetGroupDescription="x", SubnetIds=subnets
    )
    return IsolationProfile(
        subnet_group="restore-tests",
        security_group_ids=[group["GroupId"]],
        tags={"team": "sre"},
    )


def _exists(rds: Any, kind: str, identifier: str) -> bool:
    try:
        if kind == "cluster":
            rds.describe_db_clusters(DBClusterIdentifier=identifier)
        else:
            rds.describe_db_instances(DBInstanceIdentifier=identifier)
    except ClientError:
        return False
    return True


class TestRestore:
    def test_restore_into_isolation_and_teardown(self, db, rds, isolation):
        """The restored instance is isolated, tagged for sweeping, and deleted on exit."""
        point = db.create_backup(token="r")
        seen: list[dict[str, Any]] = []
        db.client("rds").meta.events.register(
            "before-parameter-build.rds.RestoreDBInstanceFromDBSnapshot",
            lambda params, **_: seen.append(dict(params)),
        )
        with db.restore(point, isolation) as restored:
            assert _exists(rds, "instance", restored.id)
            assert RDS_ID.match(restored.id)
            assert restored.endpoint.endswith(":5432")  # type: ignore[union-attr]
        assert not _exists(rds, "instance", restored.id)
        params = seen[0]
        expected = {
            "DBSnapshotIdentifier": point.id,
            "DBSubnetGroupName": "restore-tests",
            "VpcSecurityGroupIds": list(isolation.security_group_ids),
            "PubliclyAccessible": False,
            "MultiAZ": False,
            "DeletionProtection": False,
            "DBInstanceClass": "db.t3.micro",
        }
        assert expected == {k: params[k] for k in expected}
        tags = {t["Key"]: t["Value"] for t in params["Tags"]}
        assert "sre" == tags["team"]
        assert isolation.sweep_tag in tags

    def test_teardown_on_error(self, db, rds):
        """An error inside the block still deletes the restored instance, and propagates."""
        point = db.create_backup(token="r")
        names: list[str] = []
        with pytest.raises(ZeroDivisionError), db.restore(point) as restored:  # noqa: PT012
            names.append(restored.id)
            _ = 1 / 0
        assert not _exists(rds, "instance", names[0])

    def test_teardown_skips_final_snapshot(self, db):
        """The teardown deletes without a final snapshot and with the automated backups."""
        point = db.create_backup(token="r")
        seen: list[dict[str, Any]] = []
        db.client("rds").meta.events.register(
            "before-parameter-build.rds.DeleteDBInstance",
            lambda params, **_: seen.append(dict(params)),
        )
        with db.restore(point) as restored:
            pass
        assert [
            {
                "DBInstanceIdentifier": restored.id,
                "SkipFinalSnapshot": True,
                "DeleteAutomatedBackups": True,
            }
        ] == seen

    def test_restore_to_point_in_time(self, db, rds):
        """A point-in-time restore yields an unmanaged point at that time and is torn down."""
        when = datetime.now(UTC) - timedelta(minutes=5)
        with db.restore_to_point_in_time(when) as restored:
            assert _exists(rds, "instance", restored.id)
            assert when == restored.point.created_at
            assert not restored.point.managed
        assert not _exists(rds, "instance", restored.id)

    def test_future_point_in_time_refused(self, db):
        """A time in the future is refused."""
        with pytest.raises(PolicyError, match="when: expected a time before now"):
            db.restore_to_point_in_time(datetime.now(UTC) + timedelta(days=1))

    def test_aurora_restore_creates_cluster_and_instance(self, cluster, rds, isolation):
        """An Aurora restore makes a cluster plus one db.t3.medium instance, both removed after."""
        point = cluster.create_backup(token="r")
        with cluster.restore(point, isolation) as restored:
            assert _exists(rds, "cluster", restored.id)
            instance = rds.describe_db_instances(DBInstanceIdentifier=f"{restored.id}-1")
            assert "db.t3.medium" == instance["DBInstances"][0]["DBInstanceClass"]
            assert not instance["DBInstances"][0]["PubliclyAccessible"]
        assert not _exists(rds, "cluster", restored.id)
        assert not _exists(rds, "instance", f"{restored.id}-1")

    def test_aurora_point_in_time(self, cluster, rds):
        """Aurora point-in-time restores work the same way."""
        with cluster.restore_to_point_in_time(None) as restored:
            assert _exists(rds, "cluster", restored.id)
        assert not _exists(rds, "cluster", restored.id)

    def test_waits_with_bounded_poll(self):
        """The restore polls until available, sleeping poll_interval between polls."""
        slept: list[float] = []
        db, stub = _stubbed(sleep=slept.append, poll_interval=15.0)
        point = RecoveryPoint(
            "s", "orders-db", NOW, kind="rds-snapshot", details={"region": REGION}
        )
        stub.add_response("restore_db_instance_from_db_snapshot", {"DBInstance": {}})
        for status in ("creating", "backing-up"):
            stub.add_response(
                "describe_db_instances", {"DBInstances": [{"DBInstanceStatus": status}]}
            )
        stub.add_response(
            "describe_db_instances", {"DBInstances": [{"DBInstanceStatus": "available"}]}
        )
        with db.restore(point) as restored:
            stub.add_response(
                "describe_db_instances",
                {
                    "DBInstances": [
                        {"TagList": [{"Key": "backuppolicy:restore-id", "Value": restored.id}]}
                    ]
                },
            )
            stub.add_response("delete_db_instance", {"DBInstance": {}})
        assert [15.0, 15.0] == slept
        stub.assert_no_pending_responses()

    def test_timeout_raises_and_tears_down(self):
        """A restore that never becomes available raises after restore_timeout and is deleted."""
        ticks = iter(NOW + timedelta(minutes=10 * i) for i in range(100))
        db, stub = _stubbed(clock=lambda: next(ticks), restore_timeout=1500.0)
        point = RecoveryPoint(
            "s", "orders-db", NOW, kind="rds-snapshot", details={"region": REGION}
        )
        stub.add_response("restore_db_instance_from_db_snapshot", {"DBInstance": {}})
        for _ in range(3):
            stub.add_response(
                "describe_db_instances", {"DBInstances": [{"DBInstanceStatus": "creating"}]}
            )
        restore_ids: list[str] = []

        def remember(params: dict[str, Any], **_: Any) -> None:
            restore_ids.append(params["DBInstanceIdentifier"])
            stub.add_response(
                "describe_db_instances",
                {
                    "DBInstances": [
                        {"TagList": [{"Key": "backuppolicy:restore-id", "Value": restore_ids[0]}]}
                    ]
                },
            )
            stub.add_response("delete_db_instance", {"DBInstance": {}})

        db.client("rds").meta.events.register(
            "before-parameter-build.rds.RestoreDBInstanceFromDBSnapshot", remember
        )
        with (
            pytest.raises(BackendError, match="not available after 1500 s") as info,
            db.restore(point),
        ):
            pass
        assert "Timeout" == info.value.code
        stub.assert_no_pending_responses()

    def test_teardown_never_deletes_foreign_instance(self):
        """If the restore call fails because the name is taken, the existing instance is left alone."""
        db, stub = _stubbed()
        point = RecoveryPoint(
            "s", "orders-db", NOW, kind="rds-snapshot", details={"region": REGION}
        )
        stub.add_client_error("restore_db_instance_from_db_snapshot", "DBInstanceAlreadyExists")
        stub.add_response("describe_db_instances", {"DBInstances": [{"TagList": []}]})
        with pytest.raises(BackendError, match="DBInstanceAlreadyExists"), db.restore(point):
            pass
        stub.assert_no_pending_responses()  # no delete_db_instance was queued or called


# --------------------------------------------------------------------------- fault injection


class _Faults:
    """A before-call hook failing about *share* of RDS calls with Throttling or a 500.

    At most three failures in a row, so no call exhausts the eight attempts of the retry
    policy. It records every call that did reach moto, per operation and per deleted id.
    """

    def __init__(self, share: float, seed: int) -> None:
        self.share = share
        self.rng = random.Random(seed)  # noqa: S311 - reproducible faults, not crypto
        self.lock = threading.Lock()
        self.streak = 0
        self.injected: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.deleted: Counter[str] = Counter()

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        with self.lock:
            fail = self.streak < 3 and self.rng.random() < self.share
            if not fail:
                self.streak = 0
                self.sent[model.name] += 1
                body = params.get("body") or {}
                if model.name in {"DeleteDBSnapshot", "DeleteDBClusterSnapshot"}:
                    self.deleted[
                        body.get("DBSnapshotIdentifier") or body.get("DBClusterSnapshotIdentifier")
                    ] += 1
                return None
            self.streak += 1
            self.injected[model.name] += 1
            code, status = self.rng.choice([("Throttling", 400), ("InternalFailure", 500)])
        response = AWSResponse("https://rds.invalid/", status, {}, None)
        return response, {
            "Error": {"Code": code, "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }


@pytest.mark.parametrize("make", [_make_instance, _make_cluster], ids=["instance", "cluster"])
def test_fault_injection(make: Callable[..., Any], request: pytest.FixtureRequest, keys):
    """With ~30% of calls throttled or failing with 500, every operation completes; no double delete."""
    request.getfixturevalue("cluster_id" if make is _make_cluster else "instance_id")
    faults = _Faults(share=0.3, seed=20261126)
    session = boto3.Session(region_name=REGION)
    session.events.register("before-call.rds", faults)
    target = make(session=session)
    points = [target.create_backup(token=f"f{i}") for i in range(8)]
    assert points == [target.create_backup(token=f"f{i}") for i in range(8)]
    copy = target.copy(points[0], Destination(region=OTHER, kms_key_id=keys[OTHER]))
    listed = {(p.id, p.tier) for p in target.list_points() if p.managed}
    assert {(p.id, "local") for p in points} | {(copy.id, "offsite")} == listed
    old = points[:6]  # delete_many never deletes the newest completed snapshot, points[7]
    assert [p.id for p in old] == target.delete_many(old, max_workers=4)
    target.delete(points[6])
    listed = {(p.id, p.tier) for p in target.list_points() if p.managed}
    assert {(points[7].id, "local"), (copy.id, "offsite")} == listed
    assert {p.id: 1 for p in points[:7]} == dict(faults.deleted)
    assert sum(faults.injected.values()) >= 10  # the hook really did fail calls


class TestFindTokenByName:
    """A token with a stamp finds its snapshot by name: no listing of every manual snapshot."""

    STAMPED = "prod-orders-db-20261125T040000Z"

    @staticmethod
    def _describes(session: boto3.Session) -> list[dict[str, Any]]:
        """The parameters of every DescribeDB(Cluster)Snapshots call made through *session*."""
        seen: list[dict[str, Any]] = []

        def record(params: dict[str, Any], **_kwargs: Any) -> None:
            seen.append(dict(params))

        for operation in ("DescribeDBSnapshots", "DescribeDBClusterSnapshots"):
            session.events.register(f"provide-client-params.rds.{operation}", record)
        return seen

    @staticmethod
    def _make(target: Any, **kwargs: Any) -> Any:
        return (_make_cluster if _is_cluster(target) else _make_instance)(**kwargs)

    @staticmethod
    def _manual(target: Any, token: str) -> list[str]:
        return [p.id for p in target.list_points() if p.tags.get(TAG_TOKEN) == token]

    def test_a_repeated_call_reads_one_snapshot_by_name(self, target):
        """After a crash, the same token (later, another process) finds the snapshot by its name."""
        session = boto3.Session(region_name=REGION)
        describes = self._describes(session)
        first = self._make(target, session=session, clock=lambda: NOW).create_backup(
            token=self.STAMPED
        )
        later = self._make(target, session=session, clock=lambda: NOW + timedelta(hours=3))
        again = later.create_backup(token=self.STAMPED)
        snapshot_key = (
            "DBClusterSnapshotIdentifier" if _is_cluster(target) else "DBSnapshotIdentifier"
        )
        assert (first.id, [first.id]) == (again.id, self._manual(target, self.STAMPED))
        assert first.id in {d.get(snapshot_key) for d in describes}
        assert all(snapshot_key in d for d in describes)  # never a scan of every snapshot

    def test_a_first_backup_reads_only_the_name_before_the_naming_rule(self, target):
        """Under the rule's name, RDS refuses a duplicate itself: one describe, of the old name."""
        session = boto3.Session(region_name=REGION)
        describes = self._describes(session)
        made = self._make(target, session=session, clock=lambda: NOW).create_backup(
            token=self.STAMPED
        )
        snapshot_key = (
            "DBClusterSnapshotIdentifier" if _is_cluster(target) else "DBSnapshotIdentifier"
        )
        old_name = f"bp-{target.name}-{self.STAMPED.lower()}-{sha8(self.STAMPED)}"
        assert made.id != old_name
        assert [d.get(snapshot_key) for d in describes] == [old_name]

    def test_a_snapshot_named_before_the_naming_rule_is_found(self, target):
        """A snapshot of the token under its old name (bp-<target>-<token>) is not duplicated."""
        old_name = f"bp-{target.name}-{self.STAMPED.lower()}-{sha8(self.STAMPED)}"
        _raw_create(target, old_name, tags=target._our_tags("scheduled", self.STAMPED))
        assert old_name == target.create_backup(token=self.STAMPED).id
        assert [old_name] == self._manual(target, self.STAMPED)

    def test_a_token_without_stamp_is_found_by_listing(self, target):
        """A token of one's own names the snapshot after the time of the call: found by its tag."""
        first = self._make(target, clock=lambda: NOW).create_backup(token="change-42")
        later = self._make(target, clock=lambda: NOW + timedelta(hours=3))
        assert first.id == later.create_backup(token="change-42").id
        assert [first.id] == self._manual(target, "change-42")

    def test_the_name_taken_by_another_token_is_refused(self, target):
        """The derived name held by a snapshot of another token is not passed off as ours."""
        name = target._snapshot_name(self.STAMPED)
        _raw_create(target, name, tags=target._our_tags("scheduled", "another-token"))
        with pytest.raises(BackendError, match="taken by a snapshot this call did not create"):
            target.create_backup(token=self.STAMPED)
