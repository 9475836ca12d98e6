"""EBS integrity through the EBS direct APIs: a snapshot compared with its off-site copy, block by block.

moto's ``ebs`` backend serves ``StartSnapshot``/``PutSnapshotBlock``/``ListSnapshotBlocks``/
``GetSnapshotBlock`` (without pagination: it ignores ``MaxResults``/``NextToken``), so the
snapshots here are written through it; the pagination and a checksum EBS itself reports wrong
are tested with `botocore.stub.Stubber`.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import moto
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from backuppolicy.aws import EbsVolume, RetryPolicy
from backuppolicy.checks.integrity import IntegrityCheck
from backuppolicy.checks.verify import VerifyContext
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.results import CheckStatus
from backuppolicy.core.targets import SnapshotBlocks

LOCAL, OFFSITE = "eu-west-2", "eu-west-1"
SESSION = boto3.Session(region_name=LOCAL)
FAST = RetryPolicy(sleep=lambda _seconds: None)
NOW = datetime(2026, 11, 26, 5, tzinfo=UTC)
BLOCK = 512  # moto's block size


def _b64_sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _snapshot(
    region: str, blocks: dict[int, bytes], *, checksums: dict[int, str] | None = None
) -> str:
    ebs = SESSION.client("ebs", region_name=region)
    sid = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    for index, data in blocks.items():
        ebs.put_snapshot_block(
            SnapshotId=sid,
            BlockIndex=index,
            BlockData=data,
            DataLength=len(data),
            Checksum=(checksums or {}).get(index, _b64_sha(data)),
            ChecksumAlgorithm="SHA256",
        )
    ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=len(blocks))
    return sid


def _point(pid: str, region: str, *, tier: str, source: str | None = None) -> RecoveryPoint:
    member = {"snapshot_id": pid, "state": "completed", "source_snapshot_id": source}
    return RecoveryPoint(
        id=pid,
        target="web-data",
        created_at=NOW,
        kind="ebs-snapshot",
        location=f"aws:123456789012:{region}",
        tier=tier,
        details={
            "region": region,
            "snapshot_ids": [pid],
            "snapshots": [member],
            "source_snapshot_id": source,
            "source_region": LOCAL if source else None,
        },
    )


def _data(n: int) -> dict[int, bytes]:
    return {i: hashlib.sha256(str(i).encode()).digest() * (BLOCK // 32) for i in range(n)}


@pytest.fixture(name="volume")
def _volume(monkeypatch: pytest.MonkeyPatch) -> Iterator[EbsVolume]:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with moto.mock_aws():
        yield EbsVolume(
            "vol-0123456789abcdef0",
            name="web-data",
            session=SESSION,
            region=LOCAL,
            copy_regions=[OFFSITE],
            retry=FAST,
        )


def _pair(blocks: dict[int, bytes], copy: dict[int, bytes]) -> tuple[RecoveryPoint, RecoveryPoint]:
    source = _snapshot(LOCAL, blocks)
    offsite = _snapshot(OFFSITE, copy)
    return _point(source, LOCAL, tier="local"), _point(
        offsite, OFFSITE, tier="offsite", source=source
    )


class TestEbsDirect:
    def test_the_targets_read_blocks(self, volume):
        """EbsVolume is a SnapshotBlocks target."""
        assert isinstance(volume, SnapshotBlocks)

    def test_a_copy_that_matches_its_source_passes(self, volume):
        """Same indexes, same data: PASS, with the blocks read and the seed in the evidence."""
        local, offsite = _pair(_data(6), _data(6))
        context = VerifyContext(now=NOW, points=[local, offsite])
        result = IntegrityCheck(sample_blocks=4).verify(volume, offsite, context)
        snap = result.evidence["snapshots"][0]
        assert (CheckStatus.PASS, "ebs-direct-blocks", 4, 6, local.id) == (
            result.status,
            result.evidence["method"],
            snap["blocks_read"],
            snap["blocks_in_both"],
            snap["compared_with"]["snapshot_id"],
        )
        assert f"web-data/{offsite.id}/2026-11-26" == result.evidence["seed"]

    def test_the_source_finds_its_copy(self, volume):
        """A local snapshot is compared with the off-site copy made of it."""
        local, offsite = _pair(_data(3), _data(3))
        context = VerifyContext(now=NOW, points=[local, offsite])
        result = IntegrityCheck().verify(volume, local, context)
        assert (CheckStatus.PASS, offsite.id) == (
            result.status,
            result.evidence["snapshots"][0]["compared_with"]["snapshot_id"],
        )

    def test_a_tampered_block_fails_naming_its_index(self, volume):
        """One block of the copy differs: FAIL, and the issue names block 4."""
        copy = _data(8)
        copy[4] = b"\x00" * BLOCK
        local, offsite = _pair(_data(8), copy)
        context = VerifyContext(now=NOW, points=[local, offsite])
        result = IntegrityCheck().verify(volume, offsite, context)
        assert CheckStatus.FAIL == result.status
        assert [i for i in result.issues if i.startswith("block 4:")]
        assert not [i for i in result.issues if i.startswith("block 3:")]

    def test_a_block_missing_from_the_copy_fails(self, volume):
        """A block in the source only: FAIL naming it, even if it was not sampled."""
        copy = _data(5)
        del copy[2]
        local, offsite = _pair(_data(5), copy)
        result = IntegrityCheck(sample_blocks=1).verify(
            volume, offsite, VerifyContext(now=NOW, points=[local, offsite])
        )
        assert CheckStatus.FAIL == result.status
        assert any(i.startswith("block 2: in only one") for i in result.issues)

    def test_the_sample_is_deterministic_for_a_seed(self, volume):
        """Same point, same day: the same blocks are read; the seed is recorded."""
        local, offsite = _pair(_data(40), _data(40))
        context = VerifyContext(now=NOW, points=[local, offsite])
        first = IntegrityCheck(sample_blocks=5).verify(volume, offsite, context)
        again = IntegrityCheck(sample_blocks=5).verify(volume, offsite, context)
        shown = first.evidence["snapshots"][0]["sampled_indexes"]
        assert shown == again.evidence["snapshots"][0]["sampled_indexes"]
        assert 5 == len(shown)

    def test_without_a_copy_the_stored_checksums_are_the_proof(self, volume):
        """A lone snapshot: each block read is compared with the checksum EBS returns."""
        sid = _snapshot(LOCAL, _data(3))
        point = _point(sid, LOCAL, tier="local")
        result = IntegrityCheck().verify(volume, point, VerifyContext(now=NOW, points=[point]))
        assert (CheckStatus.PASS, None) == (
            result.status,
            result.evidence["snapshots"][0].get("compared_with"),
        )

    def test_a_block_whose_data_does_not_match_its_checksum_fails(self, volume):
        """A stored checksum that the data does not match is a FAIL naming the block."""
        sid = _snapshot(LOCAL, _data(3), checksums={1: _b64_sha(b"something else")})
        point = _point(sid, LOCAL, tier="local")
        result = IntegrityCheck().verify(volume, point, VerifyContext(now=NOW, points=[point]))
        assert CheckStatus.FAIL == result.status
        assert [f"block 1 of {sid}: data does not match its stored checksum"] == list(result.issues)

    def test_an_empty_snapshot_is_not_a_pass(self, volume):
        """No block to read is no evidence: WARN, never PASS."""
        sid = _snapshot(LOCAL, {})
        point = _point(sid, LOCAL, tier="local")
        result = IntegrityCheck().verify(volume, point, VerifyContext(now=NOW, points=[point]))
        assert CheckStatus.WARN == result.status

    def test_without_ebs_direct_the_old_path_runs(self, volume):
        """ebs_direct=False keeps the restore-to-volume check (no EBS direct call)."""
        check = IntegrityCheck(ebs_direct=False, restore_volumes=False)
        sid = _snapshot(LOCAL, _data(1))
        result = check.verify(volume, _point(sid, LOCAL, tier="local"), VerifyContext(now=NOW))
        assert "snapshot-state" == result.evidence["method"]


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


class TestStubbed:
    """Stubber: moto's ebs backend has no pagination and stores any checksum it is given."""

    @pytest.fixture(name="stubbed")
    def _stubbed(self) -> Iterator[tuple[EbsVolume, Any]]:
        client = SESSION.client(
            "ebs",
            region_name=LOCAL,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        volume = EbsVolume("vol-0123456789abcdef0", name="web-data", session=SESSION, region=LOCAL)
        volume.client = lambda service, *, region=None: client  # type: ignore[method-assign]
        with Stubber(client) as stub:
            yield volume, stub

    def test_pages_are_followed(self, stubbed):
        """ListSnapshotBlocks is followed through NextToken."""
        volume, stub = stubbed
        stub.add_response(
            "list_snapshot_blocks",
            {"Blocks": [{"BlockIndex": 0, "BlockToken": "t0"}], "NextToken": "n1"},
            {"SnapshotId": "snap-1", "MaxResults": 10000},
        )
        stub.add_response(
            "list_snapshot_blocks",
            {"Blocks": [{"BlockIndex": 7, "BlockToken": "t7"}]},
            {"SnapshotId": "snap-1", "MaxResults": 10000, "NextToken": "n1"},
        )
        assert [(0, "t0"), (7, "t7")] == list(volume.snapshot_blocks("snap-1", region=LOCAL))
        stub.assert_no_pending_responses()

    def test_a_block_read_is_hashed_with_its_checksum(self, stubbed):
        """GetSnapshotBlock's data is hashed; a wrong returned checksum shows as a mismatch."""
        volume, stub = stubbed
        stub.add_response(
            "get_snapshot_block",
            {
                "BlockData": _body(b"abc"),
                "DataLength": 3,
                "Checksum": _b64_sha(b"abd"),
                "ChecksumAlgorithm": "SHA256",
            },
            {"SnapshotId": "snap-1", "BlockIndex": 3, "BlockToken": "t3"},
        )
        digest = volume.read_snapshot_block("snap-1", 3, "t3", region=LOCAL)
        assert (hashlib.sha256(b"abc").hexdigest(), 3, False) == (
            digest.sha256,
            digest.length,
            digest.matches_stored,
        )
