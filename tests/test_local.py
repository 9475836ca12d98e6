# Idempotency tokens such as token="run-1" are not passwords.
"""The local backend: Directory archives in a DirectoryStore, restores, copies, holds, crashes."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backuppolicy.core.exceptions import (
    BackendError,
    PolicyError,
    ProtectedPointError,
    ResourceNotFoundError,
    VerificationError,
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
from backuppolicy.core.targets import BackupTarget, Destination, IsolationProfile
from backuppolicy.local import (
    ArchiveWriter,
    Directory,
    DirectoryStore,
    S3Store,
    _archive_store,
    _format,
    _leftovers,
    open_store,
)
from backuppolicy.testing import BackupTargetContract

T0 = datetime(2026, 11, 26, 4, 0, 0, tzinfo=UTC)
HOLD = LegalHold(reason="litigation", reference="case-17", since=datetime(2026, 1, 5, tzinfo=UTC))


class Clock:
    """A clock that moves one minute per reading, so every backup gets its own stamp."""

    def __init__(self, start: datetime = T0, step: timedelta = timedelta(minutes=1)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        """The current reading; the next one is a step later."""
        current = self.now
        self.now += self.step
        return current


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes | str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)
    return path


def _tree(root: Path) -> dict[str, Any]:
    """Every entry under *root*: files as (bytes, mode), links as ('->', target), dirs as mode."""
    found: dict[str, Any] = {}
    for parent, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(parent) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("->", str(path.readlink()))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = stat.S_IMODE(st.st_mode)
            else:
                found[rel] = (path.read_bytes(), stat.S_IMODE(st.st_mode))
    return found


def _manifest(store: DirectoryStore, point: RecoveryPoint) -> dict[str, Any]:
    with tarfile.open(store.path / f"{point.id}.tar.gz", "r:gz") as tar:
        raw = tar.extractfile("manifest.json")
        assert raw is not None
        data: dict[str, Any] = json.loads(raw.read())
    return data


@pytest.fixture(name="source")
def _source(tmp_path: Path) -> Path:
    """A small configuration directory with modes, an empty directory and links."""
    root = tmp_path / "src"
    _write(root / "app.conf", "port = 8080\n", 0o640)
    _write(root / "bin" / "run.sh", "#!/bin/sh\nexec app\n", 0o755)
    _write(root / "secrets" / "key.pem", "-----BEGIN KEY-----\n", 0o600)
    _write(root / "logs" / "app.log", "noise\n")
    (root / "empty").mkdir(mode=0o750)
    (root / "empty").chmod(0o750)
    (root / "current").symlink_to("bin/run.sh")
    (root / "hosts").symlink_to("/etc/hosts")
    return root


@pytest.fixture(name="store")
def _store(tmp_path: Path) -> DirectoryStore:
    """An empty DirectoryStore."""
    return DirectoryStore(tmp_path / "store")


@pytest.fixture(name="offsite")
def _offsite(tmp_path: Path) -> DirectoryStore:
    """A second DirectoryStore standing in for the off-site tier."""
    return DirectoryStore(tmp_path / "offsite", tier="offsite")


@pytest.fixture(name="target")
def _target(source: Path, store: DirectoryStore) -> Directory:
    """The source directory as a target writing to the store."""
    return Directory(source, name="app-config", store=store, clock=Clock())


class TestDirectoryContract(BackupTargetContract):
    """Directory with a DirectoryStore passes the BackupTarget contract."""

    @pytest.fixture(name="target")
    def _contract_target(self, source: Path, store: DirectoryStore) -> Directory:
        return Directory(source, name="app-config", store=store, clock=Clock())

    @pytest.fixture(name="destination")
    def _contract_destination(self, offsite: DirectoryStore) -> Destination:
        return Destination(store=offsite, tier="offsite")

    @pytest.fixture(name="foreign_point")
    def _contract_foreign(self, source: Path, store: DirectoryStore) -> RecoveryPoint:
        other = Directory(source, name="app-config", store=store, policy="other", clock=Clock())
        return other.create_backup(reason="someone else's")

    def restored_exists(self, target: BackupTarget, restored: Any) -> bool | None:
        """The restored directory exists only inside the restore block."""
        return Path(restored.endpoint).exists()


class TestBackup:
    def test_point_describes_the_archive(self, target: Directory, store: DirectoryStore):
        """The point is a completed archive in the store's location and tier, with its checksum and size."""
        point = target.create_backup()
        archive = (store.path / f"{point.id}.tar.gz").read_bytes()
        assert "bp-app-config-20261126t040000z" == point.id
        assert ("archive", store.url, "local", Status.COMPLETED) == (
            point.kind,
            point.location,
            point.tier,
            point.status,
        )
        assert f"sha256:{_sha(archive)}" == point.checksum
        assert len(archive) == point.size_bytes
        assert T0 == point.created_at
        assert point.encrypted is False

    def test_point_carries_ownership_tags(self, target: Directory):
        """Created points carry policy, target, reason, tier and token tags and are managed."""
        point = target.create_backup(reason="before upgrade", token="chg-1", tags={"team": "ops"})
        expected = {
            TAG_POLICY: "default",
            TAG_TARGET: "app-config",
            TAG_REASON: "before upgrade",
            TAG_TIER: "local",
            TAG_TOKEN: "chg-1",
            "team": "ops",
        }
        assert expected == dict(point.tags)
        assert point.managed

    def test_user_tags_cannot_override_ownership(self, target: Directory):
        """Ownership tags always win over caller tags of the same key."""
        point = target.create_backup(tags={TAG_POLICY: "evil", TAG_TARGET: "x"})
        assert ("default", "app-config") == (point.tags[TAG_POLICY], point.tags[TAG_TARGET])

    def test_manifest_lists_every_entry(self, target: Directory, store: DirectoryStore):
        """The manifest has path, type, size, mode and SHA-256 of each entry, links as links."""
        point = target.create_backup()
        manifest = _manifest(store, point)
        entries = {e["path"]: e for e in manifest["entries"]}
        assert {
            "app.conf",
            "bin",
            "bin/run.sh",
            "current",
            "empty",
            "logs",
            "logs/app.log",
            "secrets",
            "secrets/key.pem",
        } == set(entries)
        assert {
            "path": "app.conf",
            "type": "file",
            "size": 12,
            "mode": "0640",
            "sha256": _sha(b"port = 8080\n"),
        } == entries["app.conf"]
        assert {"path": "current", "type": "symlink", "target": "bin/run.sh"} == entries["current"]
        assert {"path": "empty", "type": "dir", "mode": "0750"} == entries["empty"]
        assert [{"path": "hosts", "target": "/etc/hosts"}] == manifest["external_links"]
        assert 1 == manifest["format"]

    def test_sidecar_summarises_manifest(self, target: Directory, store: DirectoryStore):
        """The point's details carry the manifest's SHA-256 and entry count."""
        point = target.create_backup()
        with tarfile.open(store.path / f"{point.id}.tar.gz", "r:gz") as tar:
            raw = tar.extractfile("manifest.json")
            assert raw is not None
            body = raw.read()
        assert _sha(body) == point.details["manifest"]["sha256"]
        assert 9 == point.details["manifest"]["entries"]

    def test_archive_layout_is_plain_tar_gz(self, target: Directory, store: DirectoryStore):
        """The archive is an ordinary tar.gz: data/ first, manifest.json last, links not followed."""
        point = target.create_backup()
        with tarfile.open(store.path / f"{point.id}.tar.gz", "r:gz") as tar:
            members = tar.getmembers()
        assert "data" == members[0].name
        assert "manifest.json" == members[-1].name
        link = next(m for m in members if m.name == "data/current")
        assert (True, "bin/run.sh") == (link.issym(), link.linkname)
        assert all(m.uid == 0 and m.uname == "" for m in members)

    def test_same_token_same_point(self, target: Directory, store: DirectoryStore):
        """A second create with the same token returns the first point and writes nothing."""
        first = target.create_backup(token="run-1")
        second = target.create_backup(token="run-1")
        assert first == second
        assert 2 == len(list(store.keys()))

    def test_token_of_another_policy_not_reused(self, source: Path, store: DirectoryStore):
        """A token only matches points this policy owns."""
        theirs = Directory(source, name="app-config", store=store, policy="other", clock=Clock())
        ours = Directory(
            source, name="app-config", store=store, clock=Clock(T0 + timedelta(hours=1))
        )
        their_point = theirs.create_backup(token="t")
        assert their_point.id != ours.create_backup(token="t").id

    def test_same_second_gets_suffix(self, source: Path, store: DirectoryStore):
        """Two backups in one second get distinct, ordered names."""
        target = Directory(source, name="app-config", store=store, clock=lambda: T0)
        ids = [target.create_backup().id for _ in range(3)]
        base = "bp-app-config-20261126t040000z"
        assert [base, f"{base}-2", f"{base}-3"] == ids

    def test_stamp_is_utc(self, source: Path, store: DirectoryStore):
        """The archive name uses the UTC time of a non-UTC clock."""
        from zoneinfo import ZoneInfo

        clock = lambda: datetime(2026, 11, 26, 5, 0, tzinfo=ZoneInfo("Europe/Paris"))  # noqa: E731
        point = Directory(source, name="x", store=store, clock=clock).create_backup()
        assert "bp-x-20261126t040000z" == point.id

    def test_name_defaults_to_basename(self, source: Path, store: DirectoryStore):
        """Without name=, the target is named after the directory."""
        assert "src" == Directory(source, store=store).name

    @pytest.mark.parametrize("name", ["", "a/b", "-x", "white space", "x" * 129])
    def test_bad_name_rejected(self, source: Path, store: DirectoryStore, name: str):
        """Names that cannot be file names are refused with the field named."""
        with pytest.raises(PolicyError, match="^name: expected 1-128 letters"):
            Directory(source, name=name, store=store)

    def test_bad_patterns_rejected(self, source: Path, store: DirectoryStore):
        """A single string or an empty pattern is refused, naming the field."""
        with pytest.raises(PolicyError, match=r"^include: expected a list of glob patterns"):
            Directory(source, store=store, include="*.conf")
        with pytest.raises(PolicyError, match=r"^exclude\[1\]: expected a non-empty glob pattern"):
            Directory(source, store=store, exclude=["*.log", ""])

    def test_missing_directory(self, tmp_path: Path, store: DirectoryStore):
        """Backing up a missing directory raises ResourceNotFoundError and writes nothing."""
        target = Directory(tmp_path / "nope", store=store)
        with pytest.raises(ResourceNotFoundError, match="does not exist"):
            target.create_backup()
        assert [] == list(store.keys())

    def test_naive_clock_rejected(self, source: Path, store: DirectoryStore):
        """A clock returning naive datetimes is refused."""
        target = Directory(source, store=store, clock=lambda: datetime(2026, 1, 1))
        with pytest.raises(PolicyError, match=r"^clock\(\): expected a timezone-aware datetime"):
            target.create_backup()

    def test_fifo_skipped_and_listed(self, source: Path, target: Directory, store: DirectoryStore):
        """Pipes are not archived; the manifest lists them as skipped."""
        os.mkfifo(source / "queue")
        point = target.create_backup()
        assert [{"path": "queue", "reason": "not a file, directory or link"}] == _manifest(
            store, point
        )["skipped"]

    def test_store_inside_source_excluded(self, source: Path):
        """A DirectoryStore inside the source directory is never archived into itself."""
        store = DirectoryStore(source / ".backups")
        target = Directory(source, name="app", store=store, clock=Clock())
        target.create_backup()
        point = target.create_backup()
        paths = {e["path"] for e in _manifest(store, point)["entries"]}
        assert not any(p.startswith(".backups") for p in paths)

    def test_file_shrinking_during_backup_fails_cleanly(
        self, target: Directory, store: DirectoryStore, monkeypatch: pytest.MonkeyPatch
    ):
        """A file that changes size mid-backup fails the backup and leaves nothing behind."""
        original = _format.HashingReader.read

        def short(self: Any, size: int = -1) -> bytes:
            return original(self, size)[:1]

        monkeypatch.setattr(_format.HashingReader, "read", short)
        with pytest.raises(BackendError, match="cannot archive"):
            target.create_backup()
        assert [] == list(store.keys())
        assert [] == list(store.path.iterdir())


class TestIncludeExclude:
    def _paths(self, source: Path, store: DirectoryStore, **patterns: Any) -> set[str]:
        target = Directory(source, name="app", store=store, clock=Clock(), **patterns)
        return {e["path"] for e in _manifest(store, target.create_backup())["entries"]}

    def test_exclude_by_basename_anywhere(self, source: Path, store: DirectoryStore):
        """A pattern without '/' excludes matching names at any depth."""
        paths = self._paths(source, store, exclude=["*.log"])
        assert "logs/app.log" not in paths
        assert "logs" in paths

    def test_exclude_directory_prunes_subtree(self, source: Path, store: DirectoryStore):
        """Excluding a directory leaves out everything under it."""
        paths = self._paths(source, store, exclude=["secrets"])
        assert not {"secrets", "secrets/key.pem"} & paths

    def test_include_keeps_matches_and_parents(self, source: Path, store: DirectoryStore):
        """Include keeps matching entries and the directories leading to them only."""
        paths = self._paths(source, store, include=["*.sh", "app.conf"])
        assert {"app.conf", "bin", "bin/run.sh"} == paths

    def test_include_directory_keeps_subtree(self, source: Path, store: DirectoryStore):
        """Including a directory includes everything under it."""
        assert {"secrets", "secrets/key.pem"} == self._paths(source, store, include=["secrets/"])

    def test_exclude_wins_over_include(self, source: Path, store: DirectoryStore):
        """An entry matching both include and exclude is left out."""
        paths = self._paths(source, store, include=["bin", "app.conf"], exclude=["*.sh"])
        assert {"app.conf", "bin"} == paths

    def test_path_pattern(self, source: Path, store: DirectoryStore):
        """A pattern with '/' matches the relative path."""
        assert {"bin", "bin/run.sh"} == self._paths(source, store, include=["bin/*.sh"])


class TestRestore:
    def test_round_trip(self, target: Directory, source: Path, tmp_path: Path):
        """restore_to recreates files, modes, empty directories and internal links exactly."""
        point = target.create_backup()
        restored = target.restore_to(point, tmp_path / "out")
        expected = _tree(source)
        del expected["hosts"]  # an external link: listed, not restored by default
        assert expected == _tree(restored)
        assert stat.S_IMODE(source.stat().st_mode) == stat.S_IMODE(restored.stat().st_mode)

    def test_external_links_on_request(self, target: Directory, source: Path, tmp_path: Path):
        """With external_links=True, links that pointed outside are recreated."""
        point = target.create_backup()
        restored = target.restore_to(point, tmp_path / "out", external_links=True)
        assert "/etc/hosts" == str((restored / "hosts").readlink())

    def test_setuid_bit_not_restored(self, target: Directory, source: Path, tmp_path: Path):
        """Permission bits are restored without setuid/setgid/sticky."""
        (source / "bin" / "run.sh").chmod(0o4755)
        point = target.create_backup()
        restored = target.restore_to(point, tmp_path / "out")
        assert 0o755 == stat.S_IMODE((restored / "bin" / "run.sh").stat().st_mode)

    def test_readonly_directories_restored(self, target: Directory, source: Path, tmp_path: Path):
        """Directories without write permission are restored with their mode, files inside."""
        (source / "bin").chmod(0o555)
        try:
            point = target.create_backup()
        finally:
            (source / "bin").chmod(0o755)
        restored = target.restore_to(point, tmp_path / "out")
        assert 0o555 == stat.S_IMODE((restored / "bin").stat().st_mode)
        assert (restored / "bin" / "run.sh").is_file()
        _leftovers.remove_tree(restored)
        assert not restored.exists()

    def test_into_empty_directory(self, target: Directory, tmp_path: Path):
        """An existing empty directory is an accepted destination."""
        (tmp_path / "out").mkdir()
        restored = target.restore_to(target.create_backup(), tmp_path / "out")
        assert (restored / "app.conf").is_file()

    def test_never_over_existing_files(self, target: Directory, tmp_path: Path):
        """A non-empty destination is refused and left untouched."""
        _write(tmp_path / "out" / "keep.txt", "mine")
        point = target.create_backup()
        with pytest.raises(PolicyError, match="^directory: expected a path that does not exist"):
            target.restore_to(point, tmp_path / "out")
        assert {"keep.txt": (b"mine", 0o644)} == _tree(tmp_path / "out")

    def test_corrupt_archive_refused(
        self, target: Directory, store: DirectoryStore, tmp_path: Path
    ):
        """An archive whose bytes no longer match the checksum is refused; nothing is restored."""
        point = target.create_backup()
        path = store.path / f"{point.id}.tar.gz"
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(VerificationError, match="expected sha256:"):
            target.restore_to(point, tmp_path / "out")
        assert not (tmp_path / "out").exists()
        assert [] == [p for p in tmp_path.iterdir() if p.name.startswith(".bp-restore-")]

    def test_verify_detects_corruption(self, target: Directory, store: DirectoryStore):
        """verify() re-reads the archive and raises on a changed byte."""
        point = target.create_backup()
        assert point.checksum == target.verify(point)
        path = store.path / f"{point.id}.tar.gz"
        data = path.read_bytes()
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
        with pytest.raises(VerificationError):
            target.verify(point)

    def test_context_manager_removes_directory(self, target: Directory):
        """restore() yields a directory resource that is removed when the block exits."""
        point = target.create_backup()
        with target.restore(point) as restored:
            path = Path(restored.endpoint)
            assert ("directory", point) == (restored.kind, restored.point)
            assert b"port = 8080\n" == (path / "app.conf").read_bytes()
            assert 4 == restored.details["files"]
        assert not path.exists()
        assert not path.parent.exists()

    def test_context_manager_removes_directory_on_error(self, target: Directory):
        """The restored directory is removed even when the block raises."""
        point = target.create_backup()
        seen: list[Path] = []
        with pytest.raises(KeyError), target.restore(point) as restored:  # noqa: PT012
            seen.append(Path(restored.endpoint))
            raise KeyError(restored.id)
        assert not seen[0].exists()

    def test_isolation_prefix_names_directory(self, target: Directory):
        """The isolation profile's name prefix names the temporary directory."""
        point = target.create_backup()
        with target.restore(point, IsolationProfile(name_prefix="drill-")) as restored:
            assert Path(restored.endpoint).parent.name.startswith("drill-")

    def test_unknown_location_refused(self, target: Directory, tmp_path: Path):
        """A point from a store the target does not know is refused with the field named."""
        point = target.create_backup().evolve(location="file:///elsewhere")
        with pytest.raises(
            PolicyError, match="^point.location: expected the URL of one of the stores"
        ):
            target.restore_to(point, tmp_path / "out")


class TestListRefreshDelete:
    def test_list_only_this_target(self, source: Path, store: DirectoryStore):
        """A shared store lists each target's points under its own name only."""
        web = Directory(source, name="web", store=store, clock=Clock())
        web_app = Directory(source, name="web-app", store=store, clock=Clock())
        ours = web.create_backup()
        web_app.create_backup()
        assert [ours.id] == [p.id for p in web.list_points()]

    def test_other_policy_listed_unmanaged(self, source: Path, store: DirectoryStore):
        """Points of the same target name made by another policy are listed as unmanaged."""
        theirs = Directory(source, name="app", store=store, policy="other", clock=Clock())
        ours = Directory(source, name="app", store=store, clock=Clock(T0 + timedelta(hours=1)))
        theirs.create_backup()
        ours.create_backup()
        assert [False, True] == [p.managed for p in ours.list_points()]

    def test_delete_removes_both_files(self, target: Directory, store: DirectoryStore):
        """delete removes the archive and the sidecar."""
        point = target.create_backup()
        target.delete(point)
        assert [] == list(store.keys())

    def test_delete_held_refused(self, target: Directory, store: DirectoryStore):
        """A held point is refused with ProtectedPointError naming the hold; nothing deleted."""
        point = target.place_hold(target.create_backup(), HOLD)
        with pytest.raises(ProtectedPointError, match="legal hold: case-17"):
            target.delete(point)
        assert 2 == len(list(store.keys()))

    def test_delete_pending_refused(self, target: Directory, store: DirectoryStore):
        """A point whose sidecar says pending is refused."""
        point = target.create_backup()
        sidecar = store.read_sidecar(point)
        store.write_json(f"{point.id}.json", {**sidecar, "status": "pending"})
        with pytest.raises(ProtectedPointError, match="still pending"):
            target.delete(point)

    def test_store_delete_refuses_untagged(self, target: Directory, store: DirectoryStore):
        """The store itself refuses points without ownership tags (defence in depth)."""
        point = target.create_backup()
        sidecar = store.read_sidecar(point)
        store.write_json(f"{point.id}.json", {**sidecar, "tags": {}})
        with pytest.raises(ProtectedPointError, match="not managed"):
            store.delete_point(point)

    def test_hold_round_trip(self, target: Directory, store: DirectoryStore):
        """place_hold records the hold in the sidecar; release_hold removes it."""
        point = target.create_backup()
        held = target.place_hold(point, HOLD)
        assert HOLD == held.legal_hold
        assert HOLD.to_tag() == store.read_sidecar(point)["tags"][TAG_HOLD]
        assert HOLD == target.refresh(point).legal_hold  # type: ignore[union-attr]
        released = target.release_hold(held)
        assert released.legal_hold is None
        assert TAG_HOLD not in store.read_sidecar(point)["tags"]

    def test_refresh_missing_is_none(self, target: Directory):
        """refresh returns None for a point that is gone."""
        point = target.create_backup()
        target.delete(point)
        assert target.refresh(point) is None

    def test_malformed_sidecar_listed_failed(self, target: Directory, store: DirectoryStore):
        """A sidecar that is not valid JSON lists as an unmanaged FAILED point, not an error."""
        point = target.create_backup()
        (store.path / f"{point.id}.json").write_text("{not json")
        [listed] = target.list_points()
        assert (point.id, Status.FAILED, False) == (listed.id, listed.status, listed.managed)
        assert "unreadable sidecar" in listed.details["incomplete"]

    def test_foreign_files_ignored(self, target: Directory, store: DirectoryStore):
        """Files in the store that are not ours are ignored by listing."""
        target.create_backup()
        _write(store.path / "README.txt", "hello")
        _write(store.path / "bp-app-config-notastamp.json", "{}")
        assert 1 == len(list(target.list_points()))


def _racer(
    call: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[threading.Thread, list[Any], threading.Event]:
    """Start *call* in a thread; the event is set once it waits for a point lock, or ends.

    No timed waits: under libfaketime they would wait for the faked clock.
    """
    outcome: list[Any] = []
    waiting = threading.Event()
    real = fcntl.flock

    def flock(fd: int, operation: int) -> None:
        if threading.current_thread() is thread and operation == fcntl.LOCK_EX:
            waiting.set()
        real(fd, operation)

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)
        finally:
            waiting.set()

    monkeypatch.setattr(fcntl, "flock", flock)
    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome, waiting


class TestHoldsRacingDeletes:
    """A hold and a delete of the same point are serialised by the point's file lock."""

    def test_a_delete_during_a_hold_waits_and_is_refused(
        self, target: Directory, store: DirectoryStore, monkeypatch: pytest.MonkeyPatch
    ):
        """A delete that starts between the hold's read and write cannot remove the held point."""
        target.create_backup()  # the newer point: this one is not the floor
        point = target.create_backup(reason="old")
        original = DirectoryStore.read_sidecar
        racers: list[tuple[threading.Thread, list[Any], threading.Event]] = []

        def read_then_race(self: DirectoryStore, p: RecoveryPoint, operation: str = "read"):
            data = original(self, p, operation)
            if operation == "place_hold" and not racers:
                racers.append(_racer(lambda: target.delete(point), monkeypatch))
                racers[0][2].wait()  # old code: the delete has finished by now
            return data

        monkeypatch.setattr(DirectoryStore, "read_sidecar", read_then_race)

        held = target.place_hold(point, HOLD)
        thread, outcome, _ = racers[0]
        thread.join()

        assert held.held
        assert [ProtectedPointError] == [type(o) for o in outcome]
        assert store.exists(f"{point.id}.tar.gz")
        assert HOLD == target.refresh(point).legal_hold  # type: ignore[union-attr]

    def test_a_hold_during_a_delete_finds_the_point_gone(
        self, target: Directory, store: DirectoryStore, monkeypatch: pytest.MonkeyPatch
    ):
        """A hold that starts after the delete's check reports the point gone, never held=True."""
        point = target.create_backup()
        original = _archive_store.refuse_protected
        racers: list[tuple[threading.Thread, list[Any], threading.Event]] = []

        def check_then_race(p: RecoveryPoint, where: str) -> None:
            original(p, where)
            if where == store.url and not racers:  # the store's own check, right before removal
                racers.append(_racer(lambda: target.place_hold(point, HOLD), monkeypatch))
                racers[0][2].wait()  # old code: the hold has been written by now

        monkeypatch.setattr(_archive_store, "refuse_protected", check_then_race)

        target.delete(point)
        thread, outcome, _ = racers[0]
        thread.join()

        assert [ResourceNotFoundError] == [type(o) for o in outcome]
        assert [] == list(store.keys())
        assert target.refresh(point) is None

    def test_many_holds_and_one_delete_in_threads(self, target: Directory, store: DirectoryStore):
        """Holds that succeed always leave a held, complete point; the others see it gone."""
        point = target.create_backup()
        with ThreadPoolExecutor(max_workers=8) as pool:
            holds = [pool.submit(target.place_hold, point, HOLD) for _ in range(6)]
            deleting = pool.submit(target.delete, point)
            holds += [pool.submit(target.place_hold, point, HOLD) for _ in range(6)]
        placed = [f for f in holds if f.exception() is None]
        gone = [f for f in holds if isinstance(f.exception(), ResourceNotFoundError)]
        assert len(holds) == len(placed) + len(gone)
        if deleting.exception() is None:  # deleted first: every later hold found it gone
            assert [] == placed
            assert [] == list(store.keys())
        else:
            assert isinstance(deleting.exception(), ProtectedPointError)
            assert store.exists(f"{point.id}.tar.gz")
            assert target.refresh(point).held  # type: ignore[union-attr]
        assert [] == [p.name for p in store.path.iterdir() if p.name.startswith(".")]


class TestListingsRacingDeletes:
    """A point deleted while the store is being listed is simply not listed."""

    @pytest.fixture(name="points")
    def _points(self, target: Directory) -> list[RecoveryPoint]:
        return [target.create_backup() for _ in range(3)]

    def _delete_after_scan(
        self, monkeypatch: pytest.MonkeyPatch, store: DirectoryStore, *files: str
    ) -> None:
        """Remove *files* from the store right after the listing's directory scan."""
        original = DirectoryStore.keys

        def keys(self: DirectoryStore, prefix: str = "") -> Iterator[tuple[str, datetime]]:
            scanned = list(original(self, prefix))
            for name in files:
                (store.path / name).unlink(missing_ok=True)
            yield from scanned

        monkeypatch.setattr(DirectoryStore, "keys", keys)

    def test_deleted_between_scandir_and_stat(
        self, target: Directory, store: DirectoryStore, points: list[RecoveryPoint], monkeypatch
    ):
        """Files gone between os.scandir and their stat are skipped, not a FileNotFoundError."""
        real = os.scandir
        gone = points[1].id

        def scandir(path: Any) -> Iterator[os.DirEntry[str]]:
            entries = list(real(path))
            if Path(path) == store.path:
                for suffix in (".json", ".tar.gz"):
                    (store.path / f"{gone}{suffix}").unlink()
            return iter(entries)

        monkeypatch.setattr(os, "scandir", scandir)

        listed = [p.id for p in target.list_points()]

        assert [points[0].id, points[2].id] == listed

    def test_sidecar_deleted_after_the_scan(
        self, target: Directory, store: DirectoryStore, points: list[RecoveryPoint], monkeypatch
    ):
        """A point whose delete has removed its sidecar since the scan is not listed as FAILED."""
        self._delete_after_scan(monkeypatch, store, f"{points[1].id}.json")

        listed = [(p.id, p.status) for p in target.list_points()]

        assert [(points[0].id, Status.COMPLETED), (points[2].id, Status.COMPLETED)] == listed

    def test_archive_deleted_after_the_scan(
        self, target: Directory, store: DirectoryStore, points: list[RecoveryPoint], monkeypatch
    ):
        """An archive seen without its sidecar and deleted since the scan is not listed."""
        (store.path / f"{points[1].id}.json").unlink()  # a delete in progress: sidecar first
        self._delete_after_scan(monkeypatch, store, f"{points[1].id}.tar.gz")

        listed = [p.id for p in target.list_points()]

        assert [points[0].id, points[2].id] == listed


class TestCrash:
    SCRIPT = textwrap.dedent(
        """
        import os, sys
        from datetime import UTC, datetime
        from backuppolicy import local
        from backuppolicy.local import _format

        src, store_dir, mode = sys.argv[1:4]
        if mode == "mid-archive":
            original = _format.HashingReader.read
            calls = [0]
            def crash(self, size=-1):
                calls[0] += 1
                if calls[0] > 3:
                    os._exit(17)
                return original(self, size)
            _format.HashingReader.read = crash
        else:
            def crash(self, key, data):
                os._exit(17)
            local.DirectoryStore.write_json = crash
        clock = lambda: datetime(2026, 11, 26, 4, tzinfo=UTC)
        target = local.Directory(src, name="app", store=local.DirectoryStore(store_dir), clock=clock)
        target.create_backup()
        """
    )

    def _crash(self, source: Path, store: DirectoryStore, mode: str) -> None:
        _write(source / "big.bin", os.urandom(512 * 1024))
        result = subprocess.run(
            [sys.executable, "-c", self.SCRIPT, str(source), str(store.path), mode],
            capture_output=True,
            check=False,
            timeout=60,
        )
        assert 17 == result.returncode, result.stderr.decode()

    def test_crash_mid_archive_leaves_only_temp_file(self, source: Path, store: DirectoryStore):
        """A process killed while writing the archive leaves a temp file that listing ignores."""
        self._crash(source, store, "mid-archive")
        names = [p.name for p in store.path.iterdir()]
        assert 1 == len(names)
        assert names[0].startswith(".tmp-bp-app-20261126t040000z.tar.gz.")
        assert [] == list(store.list_points())

    def test_crash_before_sidecar_lists_failed(self, source: Path, store: DirectoryStore):
        """A process killed after the archive but before the sidecar leaves a FAILED, unmanaged point."""
        self._crash(source, store, "before-sidecar")
        target = Directory(source, name="app", store=store)
        [point] = target.list_points()
        assert ("bp-app-20261126t040000z", Status.FAILED, False) == (
            point.id,
            point.status,
            point.managed,
        )
        assert T0 == point.created_at
        with pytest.raises(ProtectedPointError):
            target.delete(point)

    def test_next_backup_after_crash_gets_new_name(self, source: Path, store: DirectoryStore):
        """A re-run at the same second does not reuse the crashed archive's name."""
        self._crash(source, store, "before-sidecar")
        target = Directory(source, name="app", store=store, clock=lambda: T0)
        point = target.create_backup()
        assert "bp-app-20261126t040000z-2" == point.id
        assert [Status.COMPLETED, Status.FAILED] == [p.status for p in target.list_points()]

    def test_sweep_removes_leftovers(self, source: Path, store: DirectoryStore):
        """sweep_incomplete removes temp files and sidecar-less archives older than the limit."""
        self._crash(source, store, "mid-archive")
        self._crash(source, store, "before-sidecar")
        for leftover in store.path.iterdir():  # the kernel stamps files with the real clock
            _age(leftover, 0)
        assert [] == store.sweep_incomplete(older_than=timedelta(hours=1))
        removed = store.sweep_incomplete(
            older_than=timedelta(hours=1), now=datetime.now(UTC) + timedelta(hours=2)
        )
        assert 2 == len(removed)
        assert [] == list(store.path.iterdir())


def _age(path: Path, days: float) -> Path:
    """Set *path*'s modification time *days* before the OS clock's now."""
    when = time.time() - days * 86400
    os.utime(path, (when, when), follow_symlinks=False)
    return path


class TestCrashLeftovers:
    """Sweeps remove what crashed jobs left, never what a running job is writing."""

    def test_a_live_writers_temp_file_survives_a_sweep(self, store: DirectoryStore):
        """A slow writer's temp file, even hours old, is locked and kept; it completes afterwards."""
        key = "bp-app-20261126t040000z.tar.gz"
        with store.open_writer(key) as writer:
            writer.write(b"first half")
            [tmp] = [p for p in store.path.iterdir() if p.name.startswith(".tmp-")]
            _age(tmp, 2)

            removed = store.sweep_incomplete(older_than=timedelta(hours=1))

            assert [] == removed
            assert tmp.exists()
            writer.write(b", second half")
        assert b"first half, second half" == (store.path / key).read_bytes()

    def test_crashed_temp_files_and_locks_are_swept(self, store: DirectoryStore):
        """Unlocked old temp files and point locks go; a young temp file stays."""
        store.path.mkdir()
        old_tmp = _age(_write(store.path / ".tmp-bp-app-20261126t040000z.json.x1", "{"), 2)
        old_lock = _age(_write(store.path / ".bp-lock-bp-app-20261126t040000z", ""), 2)
        young = _age(_write(store.path / ".tmp-bp-app-20261126t050000z.json.x2", "{"), 0)

        removed = store.sweep_incomplete(older_than=timedelta(hours=1))

        assert sorted([old_tmp.name, old_lock.name]) == sorted(removed)
        assert [young.name] == [p.name for p in store.path.iterdir()]

    def test_directory_sweeps_only_its_own_leftovers_in_every_store(
        self, source: Path, store: DirectoryStore, offsite: DirectoryStore
    ):
        """Directory.sweep_incomplete covers its copy stores too, and leaves other targets alone."""
        target = Directory(source, name="app", store=store, stores=[offsite], clock=Clock())
        mine = _age(_write(offsite.path / "bp-app-20261126t040000z-offsite.tar.gz", "x"), 2)
        theirs = _age(_write(store.path / "bp-app-config-20261126t040000z.tar.gz", "x"), 2)

        removed = target.sweep_incomplete()

        assert [f"{offsite.url}/{mine.name}"] == removed
        assert theirs.exists()
        assert [] == [p for p in target.list_points() if p.status is Status.FAILED]

    def test_a_restore_sweeps_crashed_staging_but_not_a_live_one(
        self, target: Directory, tmp_path: Path
    ):
        """restore_to removes old unlocked .bp-restore-* directories next to its destination."""
        point = target.create_backup()
        parent = tmp_path / "restores"
        parent.mkdir()
        crashed, crashed_lock = _leftovers.owned_tempdir(".bp-restore-", parent)
        os.close(crashed_lock)  # the restore died: its lock went with it
        _write(crashed / "data" / "app.conf", "half")
        _age(crashed, 2)
        live, lock = _leftovers.owned_tempdir(".bp-restore-", parent)
        (live / "data").mkdir()
        _age(live, 2)
        swept: list[str] = []
        try:
            target.restore_to(point, parent / "dest", swept=swept)
        finally:
            os.close(lock)

        assert [str(crashed)] == swept
        assert not crashed.exists()
        assert live.exists()
        assert (parent / "dest" / "app.conf").exists()
        assert sorted([live.name, "dest"]) == sorted(p.name for p in parent.iterdir())


class TestSweepsTouchOnlyOurs:
    """Sweeps remove only what carries our marker, and never follow a symlink."""

    def test_a_users_directory_named_like_our_staging_survives(
        self, target: Directory, tmp_path: Path
    ):
        """An old, unlocked ``.bp-restore-notes`` of the user's, without our marker, stays."""
        point = target.create_backup()
        parent = tmp_path / "restores"
        users = _write(parent / ".bp-restore-notes" / "todo.txt", "mine").parent
        _age(users, 2)

        swept: list[str] = []
        target.restore_to(point, parent / "dest", swept=swept)

        assert [] == swept
        assert "mine" == (users / "todo.txt").read_text()

    def test_a_staging_symlink_to_elsewhere_is_left_and_not_followed(
        self, target: Directory, tmp_path: Path
    ):
        """A ``.bp-restore-x`` symlink to an important directory: neither removed nor followed."""
        point = target.create_backup()
        important = tmp_path / "important"
        _write(important / "data" / "keep.txt", "precious")
        (important / "data").chmod(0o755)
        parent = tmp_path / "restores"
        parent.mkdir()
        link = parent / ".bp-restore-x"
        link.symlink_to(important)
        _age(link, 2)

        target.restore_to(point, parent / "dest")

        assert link.is_symlink()
        assert "precious" == (important / "data" / "keep.txt").read_text()
        assert 0o755 == stat.S_IMODE((important / "data").stat().st_mode)

    def test_removing_a_tree_never_follows_a_symlink_at_its_top(self, tmp_path: Path):
        """The tree removal every sweep uses: a top swapped for a symlink is left, modes too."""
        important = tmp_path / "important"
        _write(important / "sub" / "keep.txt", "precious")
        important.chmod(0o750)
        (important / "sub").chmod(0o755)
        link = tmp_path / ".bp-restore-swapped"
        link.symlink_to(important)

        _leftovers.remove_tree(link)

        assert "precious" == (important / "sub" / "keep.txt").read_text()
        assert 0o750 == stat.S_IMODE(important.stat().st_mode)
        assert 0o755 == stat.S_IMODE((important / "sub").stat().st_mode)


class _CorruptingStore(DirectoryStore):
    """A DirectoryStore whose disk flips one byte of every archive written to it."""

    def open_writer(self, key: str) -> Any:
        inner = super().open_writer(key)

        class _Flip:
            def __init__(self, writer: ArchiveWriter) -> None:
                self.writer = writer
                self.encryption = None
                self.first = key.endswith(".tar.gz")

            def write(self, data: bytes, /) -> int:
                if self.first and data:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                    self.first = False
                return self.writer.write(data)

        class _Ctx:
            def __enter__(self) -> _Flip:
                return _Flip(inner.__enter__())

            def __exit__(self, *exc: object) -> bool | None:
                return inner.__exit__(*exc)  # type: ignore[arg-type]

        return _Ctx()


class TestCopy:
    def test_copy_to_offsite(self, target: Directory, offsite: DirectoryStore):
        """A copy lands in the destination named <id>-<tier>, same checksum, in its tier, listed."""
        point = target.create_backup()
        copy = target.copy(point, Destination(store=offsite, tier="offsite"))
        assert (f"{point.id}-offsite", point.checksum, "offsite", offsite.url) == (
            copy.id,
            copy.checksum,
            copy.tier,
            copy.location,
        )
        assert "offsite" == copy.tags[TAG_TIER]
        assert (offsite.path / f"{point.id}-offsite.tar.gz").read_bytes() == (
            target.store.path / f"{point.id}.tar.gz"  # type: ignore[attr-defined]
        ).read_bytes()
        assert {("local", point.id), ("offsite", f"{point.id}-offsite")} == {
            (p.tier, p.id) for p in target.list_points()
        }

    def test_copy_by_url(self, target: Directory, tmp_path: Path):
        """A destination given as a path opens a DirectoryStore in the destination's tier."""
        point = target.create_backup()
        copy = target.copy(point, Destination(store=str(tmp_path / "vault"), tier="vault"))
        assert ("vault", (tmp_path / "vault").as_uri()) == (copy.tier, copy.location)

    def test_copy_again_returns_existing(self, target: Directory, offsite: DirectoryStore):
        """Copying twice returns the existing copy."""
        point = target.create_backup()
        destination = Destination(store=offsite, tier="offsite")
        assert target.copy(point, destination) == target.copy(point, destination)

    def test_copy_does_not_carry_hold(self, target: Directory, offsite: DirectoryStore):
        """A hold on the source is not copied: holds are per point."""
        point = target.place_hold(target.create_backup(), HOLD)
        copy = target.copy(point, Destination(store=offsite, tier="offsite"))
        assert copy.legal_hold is None

    def test_checksum_mismatch_removes_copy(self, target: Directory, tmp_path: Path):
        """A destination that stores different bytes fails the copy and keeps no bad copy."""
        bad = _CorruptingStore(tmp_path / "bad", tier="offsite")
        point = target.create_backup()
        with pytest.raises(VerificationError, match="the bad copy was removed"):
            target.copy(point, Destination(store=bad, tier="offsite"))
        assert [] == list(bad.keys())
        assert [] == list(bad.list_points())

    def test_tier_mismatch_refused(self, target: Directory, offsite: DirectoryStore):
        """A Destination tier different from the store's tier is refused."""
        point = target.create_backup()
        with pytest.raises(
            PolicyError, match="^destination.tier: expected the store's tier 'offsite'"
        ):
            target.copy(point, Destination(store=offsite, tier="cold"))

    def test_copy_to_own_store_refused(self, target: Directory, store: DirectoryStore):
        """Copying a point onto its own store is refused."""
        point = target.create_backup()
        with pytest.raises(PolicyError, match="^destination.store: expected a store other than"):
            target.copy(point, Destination(store=store, tier="local"))

    def test_copy_without_store_refused(self, target: Directory):
        """A Destination without a store is refused."""
        with pytest.raises(PolicyError, match="^destination.store: expected an ArchiveStore"):
            target.copy(target.create_backup(), Destination(tier="offsite"))

    def test_restore_from_copy(self, target: Directory, offsite: DirectoryStore, tmp_path: Path):
        """A copy restores like the original."""
        copy = target.copy(target.create_backup(), Destination(store=offsite, tier="offsite"))
        restored = target.restore_to(copy, tmp_path / "out")
        assert b"port = 8080\n" == (restored / "app.conf").read_bytes()


class TestStreaming:
    SIZE = 8 * 1024 * 1024

    @pytest.fixture(name="big")
    def _big(self, tmp_path: Path) -> Directory:
        root = tmp_path / "big"
        root.mkdir()
        with (root / "blob.bin").open("wb") as handle:
            for _ in range(self.SIZE // (1024 * 1024)):
                handle.write(os.urandom(1024 * 1024))
        return Directory(root, name="big", store=DirectoryStore(tmp_path / "store"), clock=Clock())

    def _peak(self, action: Any) -> tuple[Any, int]:
        tracemalloc.start()
        try:
            result = action()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return result, peak

    def test_backup_streams(self, big: Directory):
        """Archiving an 8 MiB file keeps peak Python memory under an eighth of its size."""
        point, peak = self._peak(big.create_backup)
        assert point.size_bytes > self.SIZE  # random data does not compress
        assert peak < self.SIZE // 8

    def test_copy_streams(self, big: Directory, offsite: DirectoryStore):
        """Copying an 8 MiB archive between stores keeps peak memory under an eighth of its size."""
        point = big.create_backup()
        copy, peak = self._peak(lambda: big.copy(point, Destination(store=offsite, tier="offsite")))
        assert point.checksum == copy.checksum
        assert peak < self.SIZE // 8

    def test_restore_streams(self, big: Directory, tmp_path: Path):
        """Restoring and verifying an 8 MiB file keeps peak memory under an eighth of its size."""
        point = big.create_backup()
        restored, peak = self._peak(lambda: big.restore_to(point, tmp_path / "out"))
        assert self.SIZE == (restored / "blob.bin").stat().st_size
        assert peak < self.SIZE // 8


class TestStores:
    def test_directory_store_modes(self, target: Directory, store: DirectoryStore):
        """The store directory is private (0700) and its files 0600."""
        point = target.create_backup()
        assert 0o700 == stat.S_IMODE(store.path.stat().st_mode)
        assert 0o600 == stat.S_IMODE((store.path / f"{point.id}.tar.gz").stat().st_mode)

    def test_empty_store_lists_nothing(self, tmp_path: Path):
        """A store whose directory does not exist yet lists nothing."""
        assert [] == list(DirectoryStore(tmp_path / "missing").list_points())

    def test_writer_error_leaves_nothing(self, store: DirectoryStore):
        """An exception inside open_writer removes the temporary file."""
        with pytest.raises(KeyError), store.open_writer("x.tar.gz") as writer:  # noqa: PT012
            writer.write(b"partial")
            raise KeyError("boom")
        assert [] == list(store.path.iterdir())

    @pytest.mark.parametrize("key", ["", "a/b", "..", "."])
    def test_bad_keys_refused(self, store: DirectoryStore, key: str):
        """Keys that are not plain file names are refused."""
        with pytest.raises(PolicyError, match="^key: expected a plain file name"):
            store.exists(key)

    def test_missing_object(self, store: DirectoryStore):
        """Reading a missing object raises ResourceNotFoundError."""
        with pytest.raises(ResourceNotFoundError), store.open_reader("nope.json"):
            pass

    def test_reprs(self, store: DirectoryStore, target: Directory):
        """Stores and targets have short reprs."""
        assert (
            f"<backuppolicy.local.DirectoryStore(path={str(store.path)!r}, tier='local')>"
            == repr(store)
        )
        assert repr(target).startswith("<backuppolicy.local.Directory(name='app-config', path=")

    def test_open_store(self, tmp_path: Path):
        """open_store maps paths and file:// URLs to DirectoryStore and rejects other schemes."""
        assert tmp_path == open_store(tmp_path.as_uri(), tier="local").path  # type: ignore[attr-defined]
        assert "vault" == open_store(tmp_path, tier="vault").tier
        with pytest.raises(PolicyError, match="^store: expected a directory"):
            open_store("ftp://host/x", tier="offsite")

    def test_empty_tier_refused(self, tmp_path: Path):
        """An empty tier name is refused."""
        with pytest.raises(PolicyError, match="^tier: expected a non-empty string"):
            DirectoryStore(tmp_path, tier="")

    def test_s3store_validation(self):
        """S3Store validates its bucket and part size before any call."""
        with pytest.raises(PolicyError, match="^bucket: expected a non-empty bucket name"):
            S3Store("")
        with pytest.raises(PolicyError, match="^part_size: expected an integer >= 5242880"):
            S3Store("b", part_size=1024)

    def test_import_does_not_import_boto3(self):
        """Importing backuppolicy.local does not import boto3."""
        code = "import sys, backuppolicy.local; print('boto3' in sys.modules)"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
        assert b"False\n" == result.stdout

    def test_registered_kind(self):
        """The 'directory' kind resolves to Directory."""
        from backuppolicy.core.targets import get_target_class

        assert Directory is get_target_class("directory")
