"""The state of a prefix at a time T, computed from an S3 Inventory report instead of a listing.

An S3 Inventory report (https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-inventory.html)
is delivered to ``<destination prefix>/<source bucket>/<config id>/YYYY-MM-DDTHH-MMZ/``: a
``manifest.json`` naming the source bucket, the ``fileFormat`` (``CSV``, ``ORC``, ``Parquet``),
the ``fileSchema`` (the column names, comma separated, in file order), the
``creationTimestamp`` (milliseconds since the epoch: when the scan began) and ``files`` (each
``key``, ``size`` and ``MD5checksum`` of a data file in the destination bucket). A CSV data
file is gzip-compressed, has no header, and quotes every field; the ``Key`` column is
URL-encoded (decoded here with form decoding: ``+`` is a space, ``%2B`` a plus). With
``IncludedObjectVersions: All`` the columns include ``VersionId``, ``IsLatest`` and
``IsDeleteMarker``; ``LastModifiedDate`` is ISO 8601 (``2024-03-01T12:00:00.000Z``); ``Size``
and ``ETag`` are empty on delete markers.

ORC and Parquet reports are refused: reading them needs pyarrow, a heavy dependency this
package does not take (configure the inventory as CSV).

`InventoryState` reduces the rows to the state at T in one pass, in any row order, holding one
small record per *key* (never per version): the current version and the newest version at or
before T. It decides each key exactly like the listing path (`backuppolicy.aws._s3_listing.decide`):
a version written at second *S* is part of the state at T when ``S <= floor(T)``; at equal
seconds the ``IsLatest`` row wins, then a version over a delete marker, then the row met first
(the inventory lists a key's versions in the listing's order).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import unquote_plus

import attrs

from backuppolicy.aws._s3_listing import Entry, decide
from backuppolicy.core.exceptions import PolicyError, VerificationError

__all__ = [
    "REQUIRED_COLUMNS",
    "Decision",
    "InventoryFile",
    "InventoryManifest",
    "InventoryState",
    "read_csv_rows",
]

REQUIRED_COLUMNS = ("Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker", "LastModifiedDate")
"""Columns an all-versions inventory must have (``Size`` and ``ETag`` are used when present)."""

_CHUNK = 1024 * 1024


class _Stream(Protocol):
    def read(self, amt: int = ..., /) -> bytes: ...


@attrs.frozen
class InventoryFile:
    """One data file of an inventory report: its key in the destination bucket, size, MD5."""

    key: str
    size: int
    md5: str


@attrs.frozen
class InventoryManifest:
    """The ``manifest.json`` of one inventory report.

    Attributes:
        where: ``s3://bucket/key`` of the manifest (for messages).
        source_bucket: The bucket the inventory lists.
        destination_bucket: The bucket holding the data files (a name, not an ARN).
        file_format: ``"CSV"`` (the only format read).
        columns: The ``fileSchema`` column names, in file order.
        created: When the inventory scan began (``creationTimestamp``); writes after it may be
            missing from the report.
        files: The data files.
    """

    where: str
    source_bucket: str
    destination_bucket: str
    file_format: str
    columns: tuple[str, ...]
    created: datetime
    files: tuple[InventoryFile, ...]

    @classmethod
    def parse(cls, raw: bytes, where: str) -> InventoryManifest:
        """Read and check a ``manifest.json``: CSV, all versions, the required columns.

        Raises:
            PolicyError: Not JSON, not CSV, or without the all-versions columns (naming the
                manifest field and what was found).
        """
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise PolicyError.for_field(
                "inventory manifest", f"a JSON manifest.json at {where}", str(exc)
            ) from exc
        if not isinstance(data, Mapping):
            raise PolicyError.for_field("inventory manifest", "a JSON object", type(data).__name__)
        fmt = data.get("fileFormat")
        if fmt != "CSV":
            raise PolicyError.for_field(
                "inventory manifest fileFormat",
                "'CSV' (ORC and Parquet need pyarrow, which backuppolicy does not depend on)",
                fmt,
                hint=f"Manifest: {where}.",
            )
        columns = tuple(c.strip() for c in str(data.get("fileSchema", "")).split(","))
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise PolicyError.for_field(
                "inventory manifest fileSchema",
                "the columns of an all-versions inventory (IncludedObjectVersions: All): "
                + ", ".join(REQUIRED_COLUMNS),
                ", ".join(columns),
                hint=f"Missing: {', '.join(missing)}. Manifest: {where}.",
            )
        try:
            created = datetime.fromtimestamp(int(data["creationTimestamp"]) / 1000, UTC)
            files = tuple(
                InventoryFile(str(f["key"]), int(f.get("size", 0)), str(f.get("MD5checksum", "")))
                for f in data["files"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PolicyError.for_field(
                "inventory manifest",
                "creationTimestamp (milliseconds) and files[] with key, size, MD5checksum",
                repr(exc),
                hint=f"Manifest: {where}.",
            ) from exc
        destination = str(data.get("destinationBucket", ""))
        return cls(
            where=where,
            source_bucket=str(data.get("sourceBucket", "")),
            destination_bucket=destination.rpartition(":::")[2] or destination,
            file_format="CSV",
            columns=columns,
            created=created,
            files=files,
        )


class _Checked:
    """A stream that hashes what it reads, and checks the MD5 at the end."""

    def __init__(self, raw: _Stream, md5: str, where: str) -> None:
        self._raw = raw
        self._md5 = md5
        self._hash = hashlib.md5(usedforsecurity=False)
        self._where = where

    def read(self, amt: int = -1, /) -> bytes:
        data = self._raw.read(amt)
        if data:
            self._hash.update(data)
        elif self._md5 and self._hash.hexdigest() != self._md5:
            msg = (
                f"inventory file {self._where}: MD5 {self._hash.hexdigest()} does not match "
                f"the manifest's {self._md5}; it was not used"
            )
            raise VerificationError(msg, result={"file": self._where})
        return data

    def readable(self) -> bool:
        return True


def _parse_time(value: str) -> int:
    """The whole second (epoch) of an inventory ``LastModifiedDate``."""
    return math.floor(datetime.fromisoformat(value).timestamp())


# One version as the reducer keeps it: (version id, second, is marker, is latest, size, etag).
Row = tuple[str, int, bool, bool, int, str]


def read_csv_rows(
    stream: _Stream, columns: tuple[str, ...], *, md5: str = "", where: str = ""
) -> Iterator[tuple[str, Row]]:
    """The rows of one gzip CSV inventory file: ``(encoded key, row)``, in file order.

    The key stays URL-encoded (as in the file) until a decision needs it; the MD5 of the
    compressed bytes is checked against the manifest at the end when *md5* is given.
    """
    index = {name: i for i, name in enumerate(columns)}
    k, v, latest, marker, modified = (
        index["Key"],
        index["VersionId"],
        index["IsLatest"],
        index["IsDeleteMarker"],
        index["LastModifiedDate"],
    )
    size_at, etag_at = index.get("Size"), index.get("ETag")
    source = _Checked(stream, md5, where) if md5 else stream
    with gzip.GzipFile(fileobj=source, mode="rb") as unzipped:  # type: ignore[call-overload]
        text = io.TextIOWrapper(unzipped, encoding="utf-8", newline="")
        days: dict[str, int] = {}
        for fields in csv.reader(text):
            if not fields:
                continue
            stamp = fields[modified]
            # ``YYYY-MM-DDTHH:MM:SS.mmmZ``: the day's epoch second (cached) plus the time of day.
            day = days.get(stamp[:10])
            if day is None or len(stamp) < 19 or stamp[10] != "T":  # noqa: PLR2004
                if len(stamp) < 19 or stamp[10] != "T" or not stamp.endswith("Z"):  # noqa: PLR2004
                    second = _parse_time(stamp)
                    day = None
                else:
                    day = days[stamp[:10]] = _parse_time(stamp[:10] + "T00:00:00Z")
            if day is not None:
                second = day + int(stamp[11:13]) * 3600 + int(stamp[14:16]) * 60 + int(stamp[17:19])
            is_marker = fields[marker] == "true"
            size = fields[size_at] if size_at is not None else ""
            yield (
                fields[k],
                (
                    fields[v] or "null",
                    second,
                    is_marker,
                    fields[latest] == "true",
                    int(size) if size and not is_marker else 0,
                    fields[etag_at] if etag_at is not None and not is_marker else "",
                ),
            )


@attrs.frozen
class Decision:
    """What a point-in-time restore does with one key (as `backuppolicy.aws._s3_restore.decide`).

    Attributes:
        key: The object key (decoded).
        action: ``"copy"``, ``"delete"``, ``"unchanged"``, ``"deleted at T"``, ``"created after T"``.
        version_id: The version to copy (or the unchanged version), else ``None``.
        size: Its size in bytes.
        ambiguous: A delete marker and a version share the deciding second.
    """

    key: str
    action: str
    version_id: str | None
    size: int
    ambiguous: bool


def _entry(key: str, row: Row) -> Entry:
    vid, second, is_marker, is_latest, size, etag = row
    return Entry(
        key=key,
        version_id=vid,
        last_modified=datetime.fromtimestamp(second, UTC),
        is_latest=is_latest,
        is_marker=is_marker,
        size=size,
        etag=etag,
    )


class InventoryState:
    """The state of a prefix at a cutoff second, reduced from inventory rows in any order.

    Memory: one small record per key (the current row, the newest row at or before the cutoff,
    and whether a marker and a version share its second), whatever the number of versions.

    Args:
        cutoff: ``floor(T)`` in epoch seconds.
        prefix: Only keys under it count.
        internal_prefix: Keys under it are never data (skipped).
    """

    def __init__(self, cutoff: int, prefix: str = "", internal_prefix: str = "") -> None:
        self.cutoff = cutoff
        self.prefix = prefix
        self.internal_prefix = internal_prefix
        self.versions = 0
        # encoded key -> [current row | None, row at T | None, marker at T's second, version at it]
        self._keys: dict[str, list[Any]] = {}
        self._decoded: Callable[[str], str] = unquote_plus

    def _wanted(self, key: str) -> bool:
        return key.startswith(self.prefix) and not (
            self.internal_prefix and key.startswith(self.internal_prefix)
        )

    def add(self, rows: Iterable[tuple[str, Row]]) -> None:  # noqa: C901 - one hot loop
        """Fold rows ``(URL-encoded key, row)`` into the state."""
        cutoff = self.cutoff
        keys = self._keys
        skip: dict[str, bool] = {}
        for encoded, row in rows:
            record = keys.get(encoded)
            if record is None:
                wanted = skip.get(encoded)
                if wanted is None:
                    if len(skip) > 65536:  # noqa: PLR2004 - bounded cache of decisions
                        skip.clear()
                    wanted = skip[encoded] = self._wanted(self._decoded(encoded))
                if not wanted:
                    continue
                record = keys[encoded] = [None, None, False, False]
            self.versions += 1
            _, second, is_marker, is_latest, _, _ = row
            current = record[0]
            if (
                current is None
                or (is_latest and not current[3])
                or (not current[3] and second > current[1])
            ):
                record[0] = row
            if second > cutoff:
                continue
            best = record[1]
            if best is None or second > best[1]:
                record[1] = row
                record[2], record[3] = is_marker, not is_marker
                continue
            if second == best[1]:
                record[2] = record[2] or is_marker
                record[3] = record[3] or not is_marker
                # Listing order at equal seconds: IsLatest first, then versions, then as met.
                if (is_latest, not is_marker) > (best[3], not best[2]):
                    record[1] = row

    @property
    def keys(self) -> int:
        """Keys seen under the prefix."""
        return len(self._keys)

    def decisions(self, *, in_place: bool) -> Iterator[Decision]:
        """The decision of every key, in no particular order (consumes the state)."""
        keys = self._keys
        while keys:
            encoded, (current, at_t, marker, version) = keys.popitem()
            key = self._decoded(encoded)
            # The current row, then the row at T: what `decide` reads of the key's listing.
            group = [_entry(key, current)]
            if at_t is not None and at_t is not current:
                group.append(_entry(key, at_t))
            action, entry, _ = decide(group, self.cutoff, in_place=in_place)
            yield Decision(
                key=key,
                action=action,
                version_id=entry.version_id if entry is not None else None,
                size=entry.size if entry is not None else 0,
                ambiguous=at_t is not None and marker and version,
            )


@attrs.frozen
class InventoryConfig:
    """An s3-bucket target's ``inventory`` setting (see `backuppolicy.core._fields.read_inventory`).

    Attributes:
        bucket: The bucket the inventory reports are delivered to.
        prefix: ``<destination prefix>/<source bucket>/<config id>/`` in it.
        role_arn: The role S3 Batch Operations assumes to copy.
        min_versions: From this many versions under the prefix, restores run as a batch job.
        report: ``s3://bucket/prefix/`` of the job's manifest and completion report.
        priority: The job's priority.
    """

    bucket: str
    prefix: str
    role_arn: str
    min_versions: int = 1_000_000
    report: str = ""
    priority: int = 10

    @classmethod
    def of(cls, value: object) -> InventoryConfig | None:
        """The config of a setting (a mapping, checked like the policy field), or ``None``."""
        if value is None or isinstance(value, InventoryConfig):
            return value
        from backuppolicy.core._fields import read_inventory  # noqa: PLC0415 - small, rare

        checked = read_inventory(value, "inventory")
        report = str(checked.get("report") or f"s3://{checked['bucket']}/_backuppolicy/batch/")
        return cls(
            bucket=str(checked["bucket"]),
            prefix=str(checked["prefix"]),
            role_arn=str(checked["role_arn"]),
            min_versions=int(checked["min_versions"]),  # type: ignore[call-overload]
            report=report if report.endswith("/") else report + "/",
            priority=int(checked["priority"]),  # type: ignore[call-overload]
        )
