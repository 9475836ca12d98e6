"""Safe extraction of an archive into a staging directory, and the check of the restored tree.

Every member is checked before anything is written (no absolute paths, ``..``, devices, pipes,
hard links, links escaping the destination, paths through links), the members must be exactly
the manifest's entries, and the limits below bound what one archive may cost.
"""

from __future__ import annotations

import copy
import errno
import json
import os
import re
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from backuppolicy.core.exceptions import UnsafeArchiveError, VerificationError
from backuppolicy.local._format import (
    ARCHIVE_FORMAT,
    DATA,
    MANIFEST,
    link_escapes,
    manifest_mode,
    plain_mode,
    read_upto,
    sha256_of,
    too_big,
)

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
"""Largest ``manifest.json`` read from an archive, in bytes (about 300,000 entries)."""

MAX_ARCHIVE_MEMBERS = 500_000
"""Most members a restore extracts from one archive."""

MAX_EXPANDED_BYTES = 1024**4
"""Most bytes a restore writes from one archive (1 TiB), whatever the compression ratio."""

MAX_EXPANSION_RATIO = 200
"""Most expanded bytes per archive byte a restore accepts, once past 64 MiB.

Text and code compress about 3 to 10 times; a gzip of zeros about 1,000 times. Small archives
are never refused for their ratio: below 64 MiB of expanded data a bomb cannot hurt.
"""

MIN_FREE_BYTES = 64 * 1024 * 1024
"""Bytes a restore leaves free on the destination's file system."""

_RATIO_FLOOR = 64 * 1024 * 1024

_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")
_FILTER_ERRORS: tuple[type[Exception], ...] = (tarfile.FilterError,) if _HAS_DATA_FILTER else ()


def _unsafe(point_id: str, member: str, reason: str) -> UnsafeArchiveError:
    msg = f"archive {point_id!r}: member {member!r} {reason}; nothing was restored"
    return UnsafeArchiveError(msg, result={"member": member, "reason": reason})


def _member_path(member: tarfile.TarInfo, point_id: str) -> list[str]:
    """The checked path components of *member*: refuse absolute paths, ``..``, odd types."""
    name = member.name
    if (
        name.startswith(("/", "\\"))
        or PurePosixPath(name).is_absolute()
        or re.match(r"^[A-Za-z]:", name)
    ):
        raise _unsafe(point_id, name, "has an absolute path")
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        raise _unsafe(point_id, name, "contains '..'")
    if any(part in {"", "."} for part in parts) or "\0" in name:
        raise _unsafe(point_id, name, "has an empty or '.' path component")
    if member.ischr() or member.isblk() or member.isfifo():
        raise _unsafe(point_id, name, "is a device file or pipe")
    if member.islnk():
        reason = f"is a hard link (to {member.linkname!r}); this format never stores hard links"
        raise _unsafe(point_id, name, reason)
    if not (member.isreg() or member.isdir() or member.issym()):
        raise _unsafe(point_id, name, f"has an unsupported type {member.type!r}")
    clean = "/".join(parts)
    if clean == MANIFEST and not member.isreg():
        raise _unsafe(point_id, name, "is not a regular file")
    if clean != MANIFEST and parts[0] != DATA:
        raise _unsafe(point_id, name, f"is outside {DATA}/")
    if clean == DATA and not member.isdir():
        raise _unsafe(point_id, name, "is not a directory")
    return parts


def _check_members(members: Sequence[tarfile.TarInfo], point_id: str) -> tarfile.TarInfo:
    """Refuse unsafe or unexpected members; return the manifest member."""
    seen: set[str] = set()
    links: dict[str, str] = {}
    manifest: tarfile.TarInfo | None = None
    for member in members:
        parts = _member_path(member, point_id)
        clean = "/".join(parts)
        if clean in seen:
            raise _unsafe(point_id, member.name, "appears twice")
        seen.add(clean)
        if clean == MANIFEST:
            manifest = member
        elif member.issym():
            links["/".join(parts[1:])] = member.linkname
    if DATA not in seen:
        raise _unsafe(point_id, DATA, "is missing")
    if manifest is None:
        raise _unsafe(point_id, MANIFEST, "is missing")
    _check_links(seen, links, point_id)
    return manifest


def _check_links(paths: Iterable[str], links: Mapping[str, str], point_id: str) -> None:
    """Refuse links that resolve outside the root and members stored under a link."""
    for rel, target in links.items():
        if link_escapes(rel, target, links):
            reason = f"is a link to {target!r}, outside the destination"
            raise _unsafe(point_id, f"{DATA}/{rel}", reason)
    for clean in paths:
        parts = clean.split("/")[1:]
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in links:
                raise _unsafe(point_id, clean, "goes through a symbolic link")


def _safe_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """The tarfile ``data`` filter, keeping the file's permission bits (minus setuid/setgid/sticky)."""
    filtered = tarfile.data_filter(member, dest)
    if filtered is not None and filtered.isreg():
        filtered = filtered.replace(mode=member.mode & 0o777, deep=False)
    return filtered


def _sanitised(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """The explicit equivalent of the data filter's rewriting, for tarfile without filters."""
    clone = copy.copy(member)
    clone.uid, clone.gid = os.getuid(), os.getgid()
    clone.uname = clone.gname = ""
    clone.mode = 0o700 if member.isdir() else member.mode & 0o777
    return clone


def _limit(point_id: str, reason: str, member: str = "") -> UnsafeArchiveError:
    msg = f"archive {point_id!r} {reason}; nothing was restored"
    return UnsafeArchiveError(msg, result={"member": member, "reason": reason})


def _check_expansion(point_id: str, expanded: int, compressed: int) -> None:
    """Refuse more than `MAX_EXPANDED_BYTES`, or more than `MAX_EXPANSION_RATIO` past the floor."""
    if expanded > MAX_EXPANDED_BYTES:
        raise _limit(point_id, f"expands to more than {MAX_EXPANDED_BYTES} bytes")
    if expanded > _RATIO_FLOOR and expanded > MAX_EXPANSION_RATIO * compressed:
        reason = (
            f"expands to more than {MAX_EXPANSION_RATIO} times its {compressed} bytes "
            f"({expanded} bytes or more)"
        )
        raise _limit(point_id, reason)


def _check_free(point_id: str, where: Path, needed: int) -> None:
    """Refuse to write *needed* bytes unless `MIN_FREE_BYTES` stay free at *where*."""
    free = shutil.disk_usage(where).free
    if free < needed + MIN_FREE_BYTES:
        reason = (
            f"needs {needed} bytes but only {free} are free at {str(where.parent)!r} "
            f"(keeping {MIN_FREE_BYTES} free)"
        )
        raise _limit(point_id, reason)


def _scan(
    tar: tarfile.TarFile, point_id: str, compressed: int
) -> tuple[list[tarfile.TarInfo], int]:
    """Read the member headers, stopping at the first limit passed; return them and their size."""
    members: list[tarfile.TarInfo] = []
    expanded = 0
    for member in tar:
        members.append(member)
        if len(members) > MAX_ARCHIVE_MEMBERS:
            raise _limit(point_id, f"has more than {MAX_ARCHIVE_MEMBERS} members")
        if member.isreg():
            expanded += member.size
            _check_expansion(point_id, expanded, compressed)
    return members, expanded


def _written(staging: Path, member: tarfile.TarInfo | None) -> int:
    if member is None or not member.isreg():
        return 0
    try:
        return (staging / member.name).lstat().st_size
    except OSError:  # pragma: no cover - refused by the filter, nothing written
        return 0


def _guarded(
    members: Sequence[tarfile.TarInfo], staging: Path, point_id: str, compressed: int
) -> Iterator[tarfile.TarInfo]:
    """Yield *members* to extract, counting the bytes really written and the free space."""
    written = 0
    previous: tarfile.TarInfo | None = None
    for member in members:
        written += _written(staging, previous)
        _check_expansion(point_id, written, compressed)
        if member.isreg() and member.size:
            _check_free(point_id, staging, member.size)
        previous = member
        yield member
    written += _written(staging, previous)
    _check_expansion(point_id, written, compressed)


def extract_archive(archive: Path, staging: Path, point_id: str) -> dict[str, Any]:
    try:
        compressed = archive.stat().st_size
        tar = tarfile.open(archive, mode="r:gz")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError, EOFError) as exc:
        msg = f"archive {point_id!r}: not a readable gzip tar archive: {exc}"
        raise VerificationError(msg, result={"point": point_id}) from exc
    with tar:
        try:
            members, expanded = _scan(tar, point_id, compressed)
            manifest_member = _check_members(members, point_id)
            if manifest_member.size > MAX_MANIFEST_BYTES:
                raise too_big(f"archive {point_id!r}", MANIFEST, MAX_MANIFEST_BYTES)
            _check_free(point_id, staging, expanded)
            raw = tar.extractfile(manifest_member)
            assert raw is not None  # noqa: S101 - a regular member always has a file
            body = read_upto(raw, MAX_MANIFEST_BYTES + 1)
            manifest = _compare_members(members, json.loads(body.decode("utf-8")), point_id)
            wanted = [m for m in members if m is not manifest_member]
            # Every member was checked above; the data filter checks again where available.
            if _HAS_DATA_FILTER:
                guarded = _guarded(wanted, staging, point_id, compressed)
                tar.extractall(staging, members=guarded, filter=_safe_filter)  # noqa: S202
            else:
                options: dict[str, Any] = {}
                if hasattr(tarfile, "fully_trusted_filter"):  # checked above instead
                    options["filter"] = "fully_trusted"
                sanitised = [_sanitised(m) for m in wanted]
                guarded = _guarded(sanitised, staging, point_id, compressed)
                tar.extractall(staging, members=guarded, **options)  # noqa: S202
        except _FILTER_ERRORS as exc:
            raise _unsafe(
                point_id, getattr(exc, "tarinfo", tarfile.TarInfo()).name, str(exc)
            ) from exc
        except (tarfile.TarError, EOFError, ValueError, KeyError, TypeError, zlib.error) as exc:
            msg = f"archive {point_id!r}: damaged archive or manifest: {exc}"
            raise VerificationError(msg, result={"point": point_id}) from exc
        except OSError as exc:
            if exc.errno not in {errno.ENOSPC, errno.EDQUOT}:
                raise
            raise _limit(point_id, f"does not fit on the destination ({exc})") from exc
    return manifest


def _compare_members(
    members: Sequence[tarfile.TarInfo], manifest: object, point_id: str
) -> dict[str, Any]:
    """Check that the members are exactly the manifest's entries; return the manifest."""
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        msg = f"archive {point_id!r}: manifest: expected format {ARCHIVE_FORMAT} (got {manifest.get('format') if isinstance(manifest, dict) else manifest!r})"
        raise VerificationError(msg, result={"point": point_id})
    expected = {str(e["path"]): e for e in manifest.get("entries", [])}
    actual = {
        m.name.rstrip("/")[len(DATA) + 1 :]: m
        for m in members
        if m.name.rstrip("/").startswith(f"{DATA}/")
    }
    _differences(set(expected), set(actual), point_id, "archive")
    kinds = {
        "file": tarfile.TarInfo.isreg,
        "dir": tarfile.TarInfo.isdir,
        "symlink": tarfile.TarInfo.issym,
    }
    for rel, entry in expected.items():
        member = actual[rel]
        check = kinds.get(str(entry.get("type")))
        if check is None or not check(member):
            _mismatch_entry(
                point_id, rel, f"type {entry.get('type')!r}", f"tar type {member.type!r}"
            )
        if entry["type"] == "file" and member.size != entry["size"]:
            _mismatch_entry(point_id, rel, f"size {entry['size']}", member.size)
        if entry["type"] == "symlink" and member.linkname != entry["target"]:
            _mismatch_entry(point_id, rel, f"link to {entry['target']!r}", member.linkname)
    _check_external_links(manifest, expected, point_id)
    return manifest


def _check_external_links(
    manifest: Mapping[str, Any], entries: Mapping[str, Any], point_id: str
) -> None:
    """External links are only recreated as new names inside directories of the archive."""
    for link in manifest.get("external_links", []):
        path = str(link["path"])
        parts = path.split("/")
        parent = "/".join(parts[:-1])
        if (
            path.startswith("/")
            or any(part in {"", ".", ".."} for part in parts)
            or path in entries
            or (parent and entries.get(parent, {}).get("type") != "dir")
            or not isinstance(link["target"], str)
        ):
            raise _unsafe(point_id, path, "is an external link entry with an unsafe path")


def _differences(expected: set[str], actual: set[str], point_id: str, where: str) -> None:
    missing, extra = sorted(expected - actual), sorted(actual - expected)
    if missing or extra:
        msg = (
            f"archive {point_id!r}: {where} does not match the manifest: "
            f"missing {missing[:5]}, not in the manifest {extra[:5]}"
        )
        raise VerificationError(msg, result={"point": point_id, "missing": missing, "extra": extra})


def _mismatch_entry(point_id: str, rel: str, expected: str, got: object) -> None:
    msg = f"archive {point_id!r}: {rel}: expected {expected} (got {got!r})"
    raise VerificationError(msg, result={"point": point_id, "path": rel})


def verify_tree(root: Path, manifest: Mapping[str, Any], point_id: str) -> None:
    """Check every restored entry against the manifest (type, size, mode, SHA-256, link target)."""
    expected = {str(e["path"]): e for e in manifest.get("entries", [])}
    found: set[str] = set()
    for parent, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            found.add((Path(parent) / name).relative_to(root).as_posix())
    _differences(set(expected), found, point_id, "restored directory")
    for rel, entry in expected.items():
        _verify_entry(root / rel, rel, entry, point_id)


def _verify_entry(path: Path, rel: str, entry: Mapping[str, Any], point_id: str) -> None:
    st = path.lstat()
    kind = entry["type"]
    if kind == "symlink":
        if not stat.S_ISLNK(st.st_mode) or str(path.readlink()) != entry["target"]:
            _mismatch_entry(point_id, rel, f"link to {entry['target']!r}", str(path))
        return
    if kind == "dir":
        if not stat.S_ISDIR(st.st_mode):
            _mismatch_entry(point_id, rel, "a directory", stat.filemode(st.st_mode))
        return
    if not stat.S_ISREG(st.st_mode) or st.st_size != entry["size"]:
        _mismatch_entry(point_id, rel, f"a file of {entry['size']} bytes", st.st_size)
    if manifest_mode(st.st_mode) != entry["mode"]:
        _mismatch_entry(point_id, rel, f"mode {entry['mode']}", manifest_mode(st.st_mode))
    with path.open("rb") as handle:
        digest, _ = sha256_of(handle)
    if digest != entry["sha256"]:
        _mismatch_entry(point_id, rel, f"sha256:{entry['sha256']}", f"sha256:{digest}")


def apply_dir_modes(root: Path, manifest: Mapping[str, Any]) -> None:
    dirs = [e for e in manifest.get("entries", []) if e.get("type") == "dir"]
    for entry in sorted(dirs, key=lambda e: str(e["path"]).count("/"), reverse=True):
        (root / entry["path"]).chmod(plain_mode(entry["mode"]))


def read_manifest(stream: Any, point_id: str) -> dict[str, Any]:
    """The ``manifest.json`` of an archive read as a stream (bounded; nothing is extracted)."""
    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as tar:
            for member in tar:
                if member.name != MANIFEST or not member.isreg():
                    continue
                if member.size > MAX_MANIFEST_BYTES:
                    raise too_big(f"archive {point_id!r}", MANIFEST, MAX_MANIFEST_BYTES)
                raw = tar.extractfile(member)
                assert raw is not None  # noqa: S101 - a regular member always has a file
                manifest = json.loads(read_upto(raw, MAX_MANIFEST_BYTES + 1).decode("utf-8"))
                if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
                    msg = f"archive {point_id!r}: manifest: expected format {ARCHIVE_FORMAT}"
                    raise VerificationError(msg, result={"point": point_id})
                return manifest
    except (tarfile.TarError, EOFError, ValueError, zlib.error) as exc:
        msg = f"archive {point_id!r}: damaged archive or manifest: {exc}"
        raise VerificationError(msg, result={"point": point_id}) from exc
    msg = f"archive {point_id!r}: no {MANIFEST}"
    raise VerificationError(msg, result={"point": point_id})
