"""S3LogStore under moto: in-process (``aws`` fixture) and one end-to-end run over moto server."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from backuppolicy.aws._client import RetryPolicy
from backuppolicy.core.exceptions import BackendError
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.workflows import logstores
from backuppolicy.workflows.testlog import (
    CorruptLogLineWarning,
    LogDamageKind,
    LogEntry,
    S3LogStore,
    TestLog,
)

BUCKET = "acme-testing-log"
NOW = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
Q4 = datetime(2026, 10, 1, tzinfo=UTC)


def result(at: datetime, check: str = "integrity", status: str = "pass") -> CheckResult:
    """An integrity-check result at *at*."""
    return CheckResult(
        check=check,
        status=CheckStatus(status),
        target="shop-db",
        checked_at=at,
        kind=CheckKind.INTEGRITY,
        tier="offsite",
        evidence={"sha256": "ab" * 32},
    )


@pytest.fixture(name="s3")
def _s3(aws: None, region: str) -> Any:
    client = boto3.client("s3", region_name=region)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(name="store")
def _store(s3: Any, region: str) -> S3LogStore:
    return S3LogStore(
        BUCKET, "web-apps/log", region=region, retry=RetryPolicy(sleep=lambda _: None)
    )


@pytest.fixture(name="log")
def _log(store: S3LogStore) -> TestLog:
    return TestLog(store, ran_by="tester@box", clock=lambda: NOW)


def keys(s3: Any) -> list[str]:
    """Every key in the bucket."""
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


class TestS3LogStore:
    def test_one_object_per_entry(self, log: TestLog, s3: Any) -> None:
        """Each entry is its own object under the prefix, keyed by check time and entry id."""
        entry = log.record(result(NOW))
        assert [f"web-apps/log/20261126T050000.000000Z_{entry.id}.json"] == keys(s3)
        assert [entry] == list(log.entries())

    def test_read_in_check_order(self, log: TestLog) -> None:
        """Entries come back oldest check first."""
        late = log.record(result(NOW))
        early = log.record(result(NOW - timedelta(days=3)))
        assert [early, late] == list(log.store.read())

    def test_since_until_at_quarter_edges(self, log: TestLog) -> None:
        """The key range honours since (inclusive) and until (exclusive) to the microsecond."""
        q3_last = log.record(result(Q4 - timedelta(microseconds=1)))
        q4_first = log.record(result(Q4))
        q4_later = log.record(result(Q4 + timedelta(days=1)))
        assert [q4_first, q4_later] == list(log.store.read(since=Q4))
        assert [q3_last] == list(log.store.read(until=Q4))
        assert [q4_first] == list(log.entries(since=Q4, until=Q4 + timedelta(days=1)))

    def test_paginated_listing(self, s3: Any, region: str) -> None:
        """Listings walk every page."""
        store = S3LogStore(BUCKET, "paged", region=region, page_size=2)
        log = TestLog(store, clock=lambda: NOW)
        written = [log.record(result(NOW - timedelta(hours=i))) for i in range(5)]
        calls: list[str] = []
        store.backend.client("s3").meta.events.register(
            "before-call.s3.ListObjectsV2", lambda **_: calls.append("list")
        )
        assert sorted(written, key=lambda e: e.checked_at) == list(store.read())
        assert 3 == len(calls)

    def test_concurrent_writers_never_overwrite(self, s3: Any, region: str) -> None:
        """Writers recording the same check at the same instant all keep their entries."""
        barrier = threading.Barrier(6)
        session = boto3.Session(region_name=region)
        stores = [S3LogStore(BUCKET, "web-apps/log", session=session) for _ in range(6)]
        for store in stores:  # clients made up front: one session is not for threads
            store.backend.client("s3")

        def writer(store: S3LogStore) -> None:
            log = TestLog(store, clock=lambda: NOW)
            barrier.wait()
            for _ in range(5):
                log.record(result(NOW))

        threads = [threading.Thread(target=writer, args=(store,)) for store in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert 30 == len(keys(s3))
        assert 30 == len({e.id for e in stores[0].read()})

    def test_retried_put_that_landed_is_fine(self, log: TestLog, store: S3LogStore) -> None:
        """Appending an entry whose object already exists with the same bytes is not an error."""
        entry = log.record(result(NOW))
        store.append(entry)
        assert [entry] == list(store.read())

    def test_key_holding_another_entry_refused(self, log: TestLog, store: S3LogStore) -> None:
        """An entry is never written over a different one."""
        entry = log.record(result(NOW))
        other = LogEntry(id=entry.id, recorded_at=NOW, result=result(NOW, check="other"))
        with pytest.raises(BackendError, match="already holds another entry"):
            store.append(other)
        assert [entry] == list(store.read())

    def test_throttled_put_retried(self, log: TestLog, store: S3LogStore) -> None:
        """A throttled PutObject is retried and the entry lands once."""
        client = store.backend.client("s3")
        throttled = iter([True, True])

        def throttle(**_: Any) -> Any:
            if next(throttled, False):
                return AWSResponse("https://s3", 503, {}, None), {
                    "Error": {"Code": "SlowDown", "Message": "slow"},
                    "ResponseMetadata": {"HTTPStatusCode": 503},
                }
            return None

        client.meta.events.register("before-call.s3.PutObject", throttle)
        entry = log.record(result(NOW))
        assert [entry] == list(store.read())

    def test_unreadable_object_skipped(self, log: TestLog, store: S3LogStore, s3: Any) -> None:
        """An object that is not an entry is skipped with a warning."""
        entry = log.record(result(NOW))
        s3.put_object(Bucket=BUCKET, Key="web-apps/log/20261126T060000.000000Z_x.json", Body=b"{")
        with pytest.warns(CorruptLogLineWarning, match="unreadable"):
            assert [entry] == list(store.read())

    def test_missing_bucket_raises(self, aws: None, region: str) -> None:
        """A bucket that does not exist is an error, not an empty log."""
        store = S3LogStore("no-such-bucket-here", region=region)
        with pytest.raises(BackendError, match="NoSuchBucket"):
            list(store.read())


@pytest.mark.e2e
class TestS3LogStoreE2E:
    @pytest.fixture(name="session")
    def _session(self, region: str) -> boto3.Session:
        return boto3.Session(region_name=region)

    @pytest.fixture(name="e2e_log")
    def _e2e_log(self, endpoint_url: str, session: boto3.Session) -> TestLog:
        session.client("s3", endpoint_url=endpoint_url).create_bucket(Bucket=BUCKET)
        return TestLog.open(
            f"s3://{BUCKET}/e2e", session=session, endpoint_url=endpoint_url, clock=lambda: NOW
        )

    def test_record_and_review_over_http(self, e2e_log: TestLog) -> None:
        """Recording, failures and last_success work over real HTTP."""
        passed = e2e_log.record(result(NOW - timedelta(days=2)))
        failed = e2e_log.record(result(NOW - timedelta(days=1), status="fail"))
        assert [failed] == e2e_log.failures(since=NOW - timedelta(days=7))
        assert passed == e2e_log.last_success("shop-db", "integrity")


class TestS3LogDigests:
    """Each S3 entry carries the SHA-256 of its content."""

    def test_every_bit_flip_is_detected(self, log: TestLog, store: S3LogStore, s3: Any) -> None:
        """A sample of 300 single-bit flips of a stored object: each is damage, none is read."""
        entry = log.record(result(NOW, status=CheckStatus.FAIL))
        key = store.key_for(entry)
        original = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        missed = []
        for n in range(300):
            offset, bit = (n * 7919) % len(original), n % 8
            data = bytearray(original)
            data[offset] ^= 1 << bit
            s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(data))
            if [LogDamageKind.DAMAGED] != [d.kind for d in store.damage()]:
                missed.append((offset, bit))
        assert [] == missed

    def test_changed_status_is_found_and_not_read(
        self, log: TestLog, store: S3LogStore, s3: Any
    ) -> None:
        """A failure rewritten as a pass is skipped with a warning and reported by damage()."""
        entry = log.record(result(NOW, status=CheckStatus.FAIL))
        key = store.key_for(entry)
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        s3.put_object(Bucket=BUCKET, Key=key, Body=body.replace(b'"fail"', b'"pass"'))
        with pytest.warns(CorruptLogLineWarning, match="does not match its SHA-256"):
            assert [] == list(store.read())
        assert [(LogDamageKind.DAMAGED, f"s3://{BUCKET}/{key}")] == [
            (d.kind, d.where) for d in log.damage()
        ]

    def test_legacy_object_is_read_with_a_note(
        self, log: TestLog, store: S3LogStore, s3: Any
    ) -> None:
        """An object written before digests is read; a note says it cannot be checked."""
        entry = log.record(result(NOW))
        legacy = json.dumps(entry.to_dict(), sort_keys=True, separators=(",", ":")).encode()
        s3.put_object(Bucket=BUCKET, Key=store.key_for(entry), Body=legacy)
        damage = store.damage()
        assert ([entry], [(LogDamageKind.UNCHAINED, False)]) == (
            list(store.read()),
            [(d.kind, d.tampering) for d in damage],
        )

    def test_object_read_is_bounded(
        self, log: TestLog, store: S3LogStore, s3: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An object over MAX_LOG_LINE_BYTES is damage, read only up to the limit."""
        monkeypatch.setattr(logstores, "MAX_LOG_LINE_BYTES", 100)
        entry = log.record(result(NOW))
        assert [LogDamageKind.DAMAGED] == [d.kind for d in store.damage()]
        assert entry.id in store.damage()[0].where
