"""Reading EBS snapshots block by block: the EBS direct APIs (``ListSnapshotBlocks``, ``GetSnapshotBlock``).

`EbsDirect` is the `~backuppolicy.core.capabilities.SnapshotBlocks` side of the EBS snapshot
targets (`backuppolicy.aws.EbsVolume`, `~backuppolicy.aws.Ec2Instance`): the integrity check
(`backuppolicy.checks.integrity.IntegrityCheck`) compares a snapshot with its off-site copy
through it. Listings stream page by page; a block is hashed as it is read, never kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Final

from backuppolicy.aws._ec2_base import Ec2Base
from backuppolicy.core.capabilities import BlockDigest

__all__ = ["EbsDirect"]

_CHUNK: Final = 64 * 1024
_PAGE: Final = 10000  # the API's largest MaxResults


class EbsDirect(Ec2Base):
    """The EBS snapshot targets' reading of snapshots block by block (EBS direct APIs)."""

    def snapshot_blocks(self, snapshot_id: str, *, region: str | None) -> Iterator[tuple[int, str]]:
        """``(index, token)`` of every block of *snapshot_id* (``ListSnapshotBlocks``), by index.

        Pages are followed with ``NextToken``; each page is retried on its own, and a page that
        still fails raises (a partial list is never taken for a complete one).
        """
        params: dict[str, object] = {"SnapshotId": snapshot_id, "MaxResults": _PAGE}
        while True:
            page = self.call(
                "ebs",
                "list_snapshot_blocks",
                resource=snapshot_id,
                region=region or self.region,
                **params,
            )
            for block in page.get("Blocks", ()):
                yield int(block["BlockIndex"]), str(block["BlockToken"])
            token = page.get("NextToken")
            if not token:
                return
            params["NextToken"] = token

    def read_snapshot_block(
        self, snapshot_id: str, index: int, token: str, *, region: str | None
    ) -> BlockDigest:
        """Read block *index* of *snapshot_id* (``GetSnapshotBlock``) and hash it, streaming."""
        response = self.call(
            "ebs",
            "get_snapshot_block",
            resource=f"{snapshot_id}#{index}",
            region=region or self.region,
            SnapshotId=snapshot_id,
            BlockIndex=index,
            BlockToken=token,
        )
        body = response["BlockData"]
        sha = hashlib.sha256()
        length = 0
        try:
            while chunk := body.read(_CHUNK):
                sha.update(chunk)
                length += len(chunk)
        finally:
            body.close()
        return BlockDigest(
            index=index,
            sha256=sha.hexdigest(),
            length=length,
            stored_checksum=response.get("Checksum") or None,
            stored_algorithm=response.get("ChecksumAlgorithm") or None,
        )
