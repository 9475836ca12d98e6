"""Object versions as S3 lists them, in S3's order (the listing under `backuppolicy.aws.s3`).

One idea: the rows of ``ListObjectVersions``. A page's versions and delete markers are merged
into listing order (key, then newest first, `entries_of_page`), grouped by key across page
boundaries (`group_by_key`), and optionally read ahead on a background thread (`Prefetcher`).
"""

from __future__ import annotations

import heapq
import math
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Generic, TypeVar, cast

import attrs

if TYPE_CHECKING:
    from types_boto3_s3.type_defs import ListObjectVersionsOutputTypeDef

__all__ = ["Entry", "Prefetcher", "decide", "entries_of_page", "group_by_key"]

_Page = TypeVar("_Page")


@attrs.frozen
class Entry:
    """One row of ListObjectVersions: a version or a delete marker."""

    key: str
    version_id: str
    last_modified: datetime
    is_latest: bool
    is_marker: bool
    size: int = 0
    etag: str = ""
    storage_class: str = ""

    @property
    def second(self) -> int:
        return math.floor(self.last_modified.timestamp())


def entries_of_page(page: ListObjectVersionsOutputTypeDef) -> Iterator[Entry]:
    """Merge a page's Versions and DeleteMarkers into listing order: key, then newest first.

    Both lists come sorted that way. At equal key and second the ``IsLatest`` entry comes
    first, then versions before delete markers (S3 does not say which came first).
    """
    versions = [
        Entry(
            key=v["Key"],
            version_id=str(v.get("VersionId") or "null"),
            last_modified=v["LastModified"],
            is_latest=bool(v.get("IsLatest")),
            is_marker=False,
            size=int(v.get("Size") or 0),
            etag=str(v.get("ETag", "")).strip('"'),
            storage_class=str(v.get("StorageClass", "")),
        )
        for v in page.get("Versions", ())
    ]
    markers = [
        Entry(
            key=d["Key"],
            version_id=str(d.get("VersionId") or "null"),
            last_modified=d["LastModified"],
            is_latest=bool(d.get("IsLatest")),
            is_marker=True,
        )
        for d in page.get("DeleteMarkers", ())
    ]

    def order(entry: Entry) -> tuple[str, int, int]:
        return (entry.key, -entry.second, 0 if entry.is_latest else 1)

    yield from heapq.merge(versions, markers, key=order)


def group_by_key(entries: Iterable[Entry]) -> Iterator[list[Entry]]:
    """Group consecutive entries of the same key, across page boundaries."""
    group: list[Entry] = []
    for entry in entries:
        if group and entry.key != group[0].key:
            yield group
            group = []
        group.append(entry)
    if group:
        yield group


class Prefetcher(Generic[_Page]):
    """Fetch up to *depth* pages ahead on a background thread, so listing overlaps the copies.

    Memory stays bounded by *depth* pages. An error of the listing is raised to the consumer;
    a consumer that stops early stops the fetcher after its current request.
    """

    def __init__(self, pages: Iterator[_Page], depth: int) -> None:
        self._pages = pages
        self._slots: queue.Queue[tuple[str, _Page | BaseException | None]] = queue.Queue(
            maxsize=depth
        )
        self._stop = threading.Event()

    def _put(self, item: tuple[str, _Page | BaseException | None]) -> bool:
        while not self._stop.is_set():
            try:
                self._slots.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def _fetch(self) -> None:
        try:
            for page in self._pages:
                if not self._put(("page", page)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(("error", exc))
        else:
            self._put(("end", None))

    def __iter__(self) -> Iterator[_Page]:
        thread = threading.Thread(target=self._fetch, name="backuppolicy-s3-list", daemon=True)
        thread.start()
        try:
            while True:
                kind, item = self._slots.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise cast("BaseException", item)
                yield cast("_Page", item)
        finally:
            self._stop.set()


def _same_content(current: Entry, at_t: Entry) -> bool:
    """The same version, or a version with the same ETag and size (an earlier restore's copy)."""
    if current.version_id == at_t.version_id:
        return True
    return (
        not current.is_marker
        and bool(at_t.etag)
        and (current.etag, current.size) == (at_t.etag, at_t.size)
    )


def decide(
    group: Sequence[Entry], cutoff: int, *, in_place: bool
) -> tuple[str, Entry | None, bool]:
    """Decide one key of a point-in-time restore from its entries (newest first).

    Returns the action (``"copy"``, ``"delete"``, ``"unchanged"``, ``"deleted at T"``,
    ``"created after T"``), the entry to copy, and whether the decision was ambiguous (a delete
    marker and a version share the deciding second).
    """
    current = group[0]
    at_t = next((e for e in group if e.second <= cutoff), None)
    if at_t is None:
        return ("delete" if in_place and not current.is_marker else "created after T"), None, False
    ambiguous = any(e.second == at_t.second and e.is_marker != at_t.is_marker for e in group)
    if at_t.is_marker:
        return ("delete" if in_place and not current.is_marker else "deleted at T"), None, ambiguous
    if in_place and _same_content(current, at_t):
        return "unchanged", at_t, ambiguous
    return "copy", at_t, ambiguous
