"""Hostile archives: every unsafe member is refused before anything is written outside.

Each case is a hand-crafted tar.gz planted in a DirectoryStore with a valid sidecar (so
the checksum passes) and restored with `Directory.restore_to`. The refusals run in two
layers, and the main cases are checked against each layer alone:

* ``explicit``: our own member checks, with tarfile's data filter switched off (what
  runs on a Python whose tarfile has no extraction filters);
* ``data-filter``: tarfile's ``data`` filter alone, with our checks switched off.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import shutil
import stat
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from backuppolicy import local
from backuppolicy.aws import S3Bucket, _s3_base
from backuppolicy.checks.integrity import IntegrityCheck
from backuppolicy.checks.verify import VerifyContext
from backuppolicy.core.exceptions import VerificationError
from backuppolicy.core.model import TAG_POLICY, TAG_TARGET, RecoveryPoint, Status
from backuppolicy.core.results import CheckStatus
from backuppolicy.local import (
    Directory,
    DirectoryStore,
    S3Store,
    UnsafeArchiveError,
    _archive_store,
    _extract,
    _format,
)

T0 = datetime(2026, 11, 26, 4, 0, 0, tzinfo=UTC)
NAME = "bp-app-20261126t040000z"
OK = b"fine\n"

Member = tuple[tarfile.TarInfo, bytes | None]


def _info(name: str, kind: bytes = tarfile.REGTYPE, *, data: bytes = b"", link: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.linkname = link
    if kind in {tarfile.CHRTYPE, tarfile.BLKTYPE}:
        info.devmajor, info.devminor = 1, 3
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, data
    return info, None


def _entry(member: Member) -> dict[str, Any] | None:
    info, data = member
    rel = info.name.removeprefix("data/")
    if info.isdir():
        return {"path": rel, "type": "dir", "mode": "0755"}
    if info.issym():
        return {"path": rel, "type": "symlink", "target": info.linkname}
    if info.isreg() and data is not None:
        sha = hashlib.sha256(data).hexdigest()
        return {"path": rel, "type": "file", "size": len(data), "mode": "0644", "sha256": sha}
    return None


def _archive(members: list[Member], manifest: Any = None, *, with_manifest: bool = True) -> bytes:
    """A tar.gz with data/, data/ok.txt, *members* and a manifest listing the data members."""
    base = [_info("data", tarfile.DIRTYPE), _info("data/ok.txt", data=OK)]
    everything = base + members
    if manifest is None:
        entries = [
            e for m in everything if m[0].name.startswith("data/") and (e := _entry(m)) is not None
        ]
        manifest = {"format": 1, "root": {"mode": "0755"}, "entries": entries}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in everything:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
        if with_manifest:
            body = json.dumps(manifest).encode()
            info, _ = _info("manifest.json", data=body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


@pytest.fixture(name="target")
def _target(tmp_path: Path) -> Directory:
    """A target whose store receives the planted archives."""
    (tmp_path / "src").mkdir()
    return Directory(tmp_path / "src", name="app", store=DirectoryStore(tmp_path / "store"))


@pytest.fixture(name="plant")
def _plant(target: Directory) -> Callable[[bytes], RecoveryPoint]:
    """Write an archive and a valid, owned sidecar for it; return its point."""

    def plant(data: bytes) -> RecoveryPoint:
        store = target.store
        with store.open_writer(f"{NAME}.tar.gz") as writer:
            writer.write(data)
        sidecar = {
            "format": 1,
            "id": NAME,
            "target": "app",
            "created_at": T0.isoformat(),
            "status": "completed",
            "tags": {TAG_POLICY: "default", TAG_TARGET: "app"},
            "archive": {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
        }
        store.write_json(f"{NAME}.json", sidecar)
        return store.point_from_sidecar(sidecar)

    return plant


@pytest.fixture(name="layer", params=["explicit", "data-filter"])
def _layer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the case with only one of the two safety layers active."""
    if request.param == "explicit":
        monkeypatch.setattr(_extract, "_HAS_DATA_FILTER", False)
    else:

        def manifest_only(members: Any, point_id: str) -> tarfile.TarInfo:
            return next(m for m in members if m.name == "manifest.json")

        monkeypatch.setattr(_extract, "_check_members", manifest_only)
        monkeypatch.setattr(_extract, "_compare_members", lambda members, manifest, pid: manifest)
    return str(request.param)


def _assert_nothing_restored(tmp_path: Path) -> None:
    parent = tmp_path / "restore"
    if parent.exists():
        assert [] == sorted(p.name for p in parent.iterdir())
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "restore" / "evil.txt").exists()


HOSTILE: dict[str, list[Member]] = {
    "dotdot": [_info("data/../../evil.txt", data=b"pwned")],
    "char-device": [_info("data/null", tarfile.CHRTYPE)],
    "block-device": [_info("data/disk", tarfile.BLKTYPE)],
    "fifo": [_info("data/pipe", tarfile.FIFOTYPE)],
    "absolute-symlink": [_info("data/passwd", tarfile.SYMTYPE, link="/etc/passwd")],
    "escaping-symlink": [_info("data/up", tarfile.SYMTYPE, link="../../evil.txt")],
    "escaping-hardlink": [_info("data/hard", tarfile.LNKTYPE, link="../../evil.txt")],
    "symlink-chain": [
        _info("data/a", tarfile.DIRTYPE),
        _info("data/a/b", tarfile.SYMTYPE, link=".."),
        _info("data/x", tarfile.SYMTYPE, link="a/b/../.."),
    ],
}


class TestHostileArchives:
    @pytest.mark.parametrize("case", sorted(HOSTILE))
    def test_refused_by_each_layer(
        self,
        case: str,
        layer: str,
        target: Directory,
        plant: Callable[[bytes], RecoveryPoint],
        tmp_path: Path,
    ):
        """Each hostile member is refused by either safety layer alone; nothing is restored."""
        point = plant(_archive(HOSTILE[case]))
        with pytest.raises(UnsafeArchiveError):
            target.restore_to(point, tmp_path / "restore" / "out")
        _assert_nothing_restored(tmp_path)

    @pytest.mark.parametrize(
        ("case", "reason"),
        [
            ("dotdot", "contains '..'"),
            ("char-device", "is a device file or pipe"),
            ("fifo", "is a device file or pipe"),
            ("absolute-symlink", "is a link to '/etc/passwd', outside the destination"),
            ("escaping-symlink", "outside the destination"),
            ("escaping-hardlink", "is a hard link"),
            ("symlink-chain", "is a link to 'a/b/../..', outside the destination"),
        ],
    )
    def test_explicit_messages(
        self,
        *,
        case: str,
        reason: str,
        target: Directory,
        plant: Callable[[bytes], RecoveryPoint],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ):
        """Our own check names the member and why it was refused."""
        monkeypatch.setattr(_extract, "_HAS_DATA_FILTER", False)
        point = plant(_archive(HOSTILE[case]))
        with pytest.raises(UnsafeArchiveError, match="nothing was restored") as caught:
            target.restore_to(point, tmp_path / "restore" / "out")
        assert reason in caught.value.result["reason"]

    @pytest.mark.parametrize(
        ("members", "reason"),
        [
            ([_info("/srv/evil.txt", data=b"x")], "has an absolute path"),
            ([_info("data/ok.txt", data=b"again")], "appears twice"),
            ([_info("other.txt", data=b"x")], "is outside data/"),
            ([_info("data//x", data=b"x")], "has an empty or '.' path component"),
            ([_info("data/./x", data=b"x")], "has an empty or '.' path component"),
            (
                [
                    _info("data/sub", tarfile.DIRTYPE),
                    _info("data/link", tarfile.SYMTYPE, link="sub"),
                    _info("data/link/x", data=b"x"),
                ],
                "goes through a symbolic link",
            ),
            (
                [
                    _info("data/l1", tarfile.SYMTYPE, link="l2"),
                    _info("data/l2", tarfile.SYMTYPE, link="l1"),
                ],
                "outside the destination",
            ),
            ([_info("data/label", b"V")], "has an unsupported type"),
        ],
    )
    def test_refused_by_explicit_check(
        self,
        members: list[Member],
        reason: str,
        target: Directory,
        plant: Callable[[bytes], RecoveryPoint],
        tmp_path: Path,
    ):
        """Absolute names, duplicates, stray members, odd paths, writes through links and link loops are refused."""
        point = plant(_archive(members))
        with pytest.raises(UnsafeArchiveError) as caught:
            target.restore_to(point, tmp_path / "restore" / "out")
        assert reason in caught.value.result["reason"]
        _assert_nothing_restored(tmp_path)

    def test_absolute_path_neutralised_by_data_filter(
        self, target: Directory, plant: Callable[[bytes], RecoveryPoint], tmp_path: Path
    ):
        """With our checks off, the data filter still keeps an absolute member inside the staging area."""
        outside = tmp_path / "outside" / "evil.txt"
        point = plant(_archive([_info(str(outside), data=b"pwned")]))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(
                _extract,
                "_check_members",
                lambda members, pid: next(m for m in members if m.name == "manifest.json"),
            )
            patch.setattr(_extract, "_compare_members", lambda members, manifest, pid: manifest)
            restored = target.restore_to(point, tmp_path / "restore" / "out")
        assert not outside.exists()
        assert OK == (restored / "ok.txt").read_bytes()

    def test_missing_manifest(
        self, target: Directory, plant: Callable[[bytes], RecoveryPoint], tmp_path: Path
    ):
        """An archive without manifest.json is refused."""
        point = plant(_archive([], with_manifest=False))
        with pytest.raises(UnsafeArchiveError, match="'manifest.json' is missing"):
            target.restore_to(point, tmp_path / "restore" / "out")

    def test_unsafe_external_link_entry(
        self, target: Directory, plant: Callable[[bytes], RecoveryPoint], tmp_path: Path
    ):
        """A manifest external link with '..' in its path is refused even when not recreated."""
        entries = [
            {
                "path": "ok.txt",
                "type": "file",
                "size": 5,
                "mode": "0644",
                "sha256": hashlib.sha256(OK).hexdigest(),
            }
        ]
        manifest = {
            "format": 1,
            "entries": entries,
            "external_links": [{"path": "../evil", "target": "/etc/passwd"}],
        }
        point = plant(_archive([], manifest))
        with pytest.raises(UnsafeArchiveError, match="external link entry"):
            target.restore_to(point, tmp_path / "restore" / "out", external_links=True)
        assert not (tmp_path / "restore" / "evil").is_symlink()


class TestManifestChecks:
    def _manifest(self, **changes: Any) -> dict[str, Any]:
        entry = {
            "path": "ok.txt",
            "type": "file",
            "size": 5,
            "mode": "0644",
            "sha256": hashlib.sha256(OK).hexdigest(),
        }
        entry.update(changes)
        return {"format": 1, "root": {"mode": "0755"}, "entries": [entry]}

    @pytest.mark.parametrize(
        ("manifest", "match"),
        [
            ({"format": 99, "entries": []}, "manifest: expected format 1"),
            ({"format": 1, "entries": []}, r"not in the manifest \['ok.txt'\]"),
            ("not an object", "manifest: expected format 1"),
        ],
    )
    def test_manifest_must_match_members(
        self,
        manifest: Any,
        match: str,
        target: Directory,
        plant: Callable[[bytes], RecoveryPoint],
        tmp_path: Path,
    ):
        """A manifest of another format or that misses members is refused before extraction."""
        point = plant(_archive([], manifest))
        with pytest.raises(VerificationError, match=match):
            target.restore_to(point, tmp_path / "restore" / "out")
        assert not (tmp_path / "restore" / "out").exists()

    @pytest.mark.parametrize(
        ("changes", "match"),
        [
            ({"sha256": "0" * 64}, "expected sha256:0000"),
            ({"mode": "0600"}, "expected mode 0600"),
            ({"size": 6}, "expected size 6"),
            ({"type": "dir"}, "expected type 'dir'"),
        ],
    )
    def test_files_checked_against_manifest(
        self,
        changes: dict[str, Any],
        match: str,
        target: Directory,
        plant: Callable[[bytes], RecoveryPoint],
        tmp_path: Path,
    ):
        """A restored file whose content, mode, size or type differs from the manifest fails the restore."""
        point = plant(_archive([], self._manifest(**changes)))
        with pytest.raises(VerificationError, match=match):
            target.restore_to(point, tmp_path / "restore" / "out")
        assert not (tmp_path / "restore" / "out").exists()
        assert [] == list((tmp_path / "restore").iterdir())

    def test_not_a_gzip_archive(
        self, target: Directory, plant: Callable[[bytes], RecoveryPoint], tmp_path: Path
    ):
        """Bytes that are not a tar.gz are refused with VerificationError."""
        point = plant(b"definitely not gzip")
        with pytest.raises(VerificationError, match="not a readable gzip tar archive"):
            target.restore_to(point, tmp_path / "restore" / "out")

    def test_good_archive_restores_without_data_filter(
        self,
        target: Directory,
        plant: Callable[[bytes], RecoveryPoint],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ):
        """The explicit path (no data filter) restores a safe archive with modes and owner fixed."""
        monkeypatch.setattr(_extract, "_HAS_DATA_FILTER", False)
        exe = tarfile.TarInfo("data/run.sh")
        exe.mode, exe.size, exe.uid, exe.uname = 0o4755, 3, 4242, "mallory"
        members = [(exe, b"ls\n"), _info("data/sub", tarfile.DIRTYPE)]
        manifest = {
            "format": 1,
            "root": {"mode": "0750"},
            "entries": [
                *self._manifest()["entries"],
                {
                    "path": "run.sh",
                    "type": "file",
                    "size": 3,
                    "mode": "0755",
                    "sha256": hashlib.sha256(b"ls\n").hexdigest(),
                },
                {"path": "sub", "type": "dir", "mode": "0755"},
            ],
        }
        point = plant(_archive(members, manifest))
        restored = target.restore_to(point, tmp_path / "restore" / "out")
        st = (restored / "run.sh").stat()
        assert (0o755, 0o750) == (stat.S_IMODE(st.st_mode), stat.S_IMODE(restored.stat().st_mode))
        assert 4242 != st.st_uid


class TestDirectoryModes:
    def test_setgid_and_sticky_bits_of_the_manifest_are_not_restored(
        self, target: Directory, plant: Callable[[bytes], RecoveryPoint], tmp_path: Path
    ):
        """A manifest asking for setgid/sticky (or setuid) directories gets plain permissions."""
        manifest = {
            "format": 1,
            "root": {"mode": "3777"},
            "entries": [
                {
                    "path": "ok.txt",
                    "type": "file",
                    "size": len(OK),
                    "mode": "0644",
                    "sha256": hashlib.sha256(OK).hexdigest(),
                },
                {"path": "sub", "type": "dir", "mode": "6775"},
            ],
        }
        point = plant(_archive([_info("data/sub", tarfile.DIRTYPE)], manifest))

        restored = target.restore_to(point, tmp_path / "restore" / "out")

        assert (0o777, 0o775) == (
            stat.S_IMODE(restored.stat().st_mode),
            stat.S_IMODE((restored / "sub").stat().st_mode),
        )


class TestLinkResolution:
    @pytest.mark.parametrize(
        ("rel", "target", "links", "escapes"),
        [
            ("a", "b", {}, False),
            ("d/a", "../b", {}, False),
            ("d/a", "../../b", {}, True),
            ("a", "/etc", {}, True),
            ("a", "", {}, True),
            ("x", "l/..", {"l": "d/e"}, False),
            ("x", "l/../..", {"l": "d/e"}, False),
            ("x", "l/../../..", {"l": "d/e"}, True),
            ("x", "up/..", {"up": ".."}, True),
        ],
    )
    def test_link_escapes(self, rel: str, target: str, links: dict[str, str], escapes: bool):
        """Link targets are resolved through the archive's other links, like the kernel would."""
        assert escapes == _format.link_escapes(rel, target, {**links, rel: target})


def _zeros_archive(size: int, files: int = 1) -> bytes:
    """A small tar.gz whose *files* members of *size* zero bytes each expand far beyond it."""
    return _archive([_info(f"data/z{i}.bin", data=bytes(size)) for i in range(files)])


def _usage(free: int) -> Any:
    """A ``shutil.disk_usage`` result with *free* bytes free."""
    return shutil._ntuple_diskusage(total=free * 2, used=free, free=free)  # type: ignore[attr-defined]


class TestArchiveLimits:
    """Bombs and oversized archives are refused with `UnsafeArchiveError` naming the archive."""

    def test_compression_ratio_refused_before_writing(
        self,
        target: Directory,
        plant: Callable[[bytes], RecoveryPoint],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ):
        """An archive expanding past the ratio limit is refused from its headers, before extraction."""
        monkeypatch.setattr(_extract, "_RATIO_FLOOR", 0)
        monkeypatch.setattr(_extract, "MAX_EXPANSION_RATIO", 5)
        extracted: list[str] = []
        monkeypatch.setattr(
            tarfile.TarFile, "extractall", lambda *a, **k: extracted.append("called")
        )
        point = plant(_zeros_archive(256 * 1024))
        with pytest.raises(UnsafeArchiveError, match=f"archive '{NAME}' expands to more than 5"):
            target.restore_to(point, tmp_path / "restore" / "out")
        assert [] == extracted
        _assert_nothing_restored(tmp_path)

    def test_expanded_size_refused(
        self,
        target: Directory,
        plant: Callable[[bytes], RecoveryPoint],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ):
        """An archive expanding past MAX_EXPANDED_BYTES is refused whatever its ratio."""
        monkeypatch.setattr(_extract, "MAX_EXPANDED_BYTES", 1000)
        point = plant(_zeros_archive(600, files=2))
        with pytest.raises(UnsafeArchiveError, match=f"'{NAME}' expands to more than 1000 bytes"):
            target.restore_to(point, tmp_path / "restore" / "out")
        _assert_nothing_restored(tmp_path)

    def test_bytes_written_counted_during_extraction(
        self,
        target: Directory,
        plant: Callable[[bytes], RecoveryPoint],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ):
        """Bytes really written are counted while extracting, not only the headers' sizes."""
        point = plant(_zeros_archive(4096, files=3))
        real_scan = _extract._scan

        def lying_scan(*args: Any) -> tuple[list[tarfile.TarInfo], int]:
            members, _ = real_scan(*args)
            monkeypatch.setattr(_extract, "MAX_EXPANDED_BYTES", 5000)
            return members, 0  # as if the headers had announced nothing

        monkeypatch.setattr(_extract, "_scan", lying_scan)
        with pytest.raises(UnsafeArchiveError, match="expands to more than 5000 bytes"):
            target.restore_to(point, tmp_path / "restore" / "out")
        _assert_nothing_restored(tmp_path)

    def test_too_many_members(
        self,
        target: Directory,
        plant: Callable[[bytes], RecoveryPoint],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ):
        """Reading headers stops at MAX_ARCHIVE_MEMBERS + 1; the archive is refused."""
        monkeypatch.setattr(_extract, "MAX_ARCHIVE_MEMBERS", 4)
        point = plant(_zeros_archive(1, files=5))
        with pytest.raises(UnsafeArchiveError, match=f"'{NAME}' has more than 4 members"):
            target.restore_to(point, tmp_path / "restore" / "out")
        _assert_nothing_restored(tmp_path)

    def test_insufficient_free_space(
        self,
        target: Directory,
        plant: Callable[[bytes], RecoveryPoint],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ):
        """A destination without room for the archive and the reserve is refused up front."""
        point = plant(_zeros_archive(4096))
        monkeypatch.setattr(shutil, "disk_usage", lambda _path: _usage(local.MIN_FREE_BYTES))
        with pytest.raises(UnsafeArchiveError, match=f"'{NAME}' needs [0-9]+ bytes but only"):
            target.restore_to(point, tmp_path / "restore" / "out")
        _assert_nothing_restored(tmp_path)

    def test_free_space_rechecked_during_extraction(
        self,
        target: Directory,
        plant: Callable[[bytes], RecoveryPoint],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ):
        """Space taken by someone else during the restore stops it before the next file."""
        point = plant(_zeros_archive(4096, files=2))
        answers = iter([10**12, 10**12, 10**12])
        monkeypatch.setattr(shutil, "disk_usage", lambda _p: _usage(next(answers, 0)))
        with pytest.raises(UnsafeArchiveError, match="needs 4096 bytes but only 0 are free"):
            target.restore_to(point, tmp_path / "restore" / "out")
        _assert_nothing_restored(tmp_path)

    def test_disk_full_is_our_error(
        self,
        target: Directory,
        plant: Callable[[bytes], RecoveryPoint],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ):
        """ENOSPC while writing becomes UnsafeArchiveError naming the archive, not a raw OSError."""
        point = plant(_zeros_archive(16))

        def full(*_args: Any, **_kwargs: Any) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(tarfile.TarFile, "makefile", full)
        with pytest.raises(UnsafeArchiveError, match=f"'{NAME}' does not fit on the destination"):
            target.restore_to(point, tmp_path / "restore" / "out")
        _assert_nothing_restored(tmp_path)

    def test_oversized_manifest(
        self,
        target: Directory,
        plant: Callable[[bytes], RecoveryPoint],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ):
        """A manifest member larger than MAX_MANIFEST_BYTES is refused without being read."""
        monkeypatch.setattr(_extract, "MAX_MANIFEST_BYTES", 64)
        point = plant(_archive([]))
        with pytest.raises(UnsafeArchiveError, match=f"'{NAME}': manifest.json is larger than 64"):
            target.restore_to(point, tmp_path / "restore" / "out")
        _assert_nothing_restored(tmp_path)


class TestHugeSidecars:
    """A sparse 10 GiB sidecar costs nothing to refuse, and never hides the other points."""

    @pytest.fixture(name="points")
    def _points(self, target: Directory) -> tuple[RecoveryPoint, RecoveryPoint]:
        """Two real backups; the first one's sidecar then becomes a sparse 10 GiB file."""
        clock = iter([T0, T0 + timedelta(hours=1)])
        directory = Directory(
            target.path, name="app", store=target.store, clock=lambda: next(clock)
        )
        (target.path / "a.conf").write_text("a = 1\n")
        bad, good = directory.create_backup(), directory.create_backup()
        with (target.store.path / f"{bad.id}.json").open("r+b") as handle:  # type: ignore[attr-defined]
            handle.truncate(10 * 2**30)
        return bad, good

    def test_listing_survives(self, target: Directory, points: tuple[RecoveryPoint, ...]):
        """list_points lists the good point and the bad one as FAILED, naming the size limit."""
        bad, good = points
        listed = {p.id: p for p in target.list_points()}
        assert {bad.id, good.id} == set(listed)
        assert Status.COMPLETED == listed[good.id].status
        assert Status.FAILED == listed[bad.id].status
        assert (
            f"is larger than {local.MAX_SIDECAR_BYTES} bytes"
            in listed[bad.id].details["incomplete"]
        )

    def test_restore_refused(
        self, target: Directory, points: tuple[RecoveryPoint, ...], tmp_path: Path
    ):
        """restore_to refuses the point with UnsafeArchiveError naming the sidecar."""
        bad, _ = points
        with pytest.raises(UnsafeArchiveError, match=f"{bad.id}.json is larger than"):
            target.restore_to(bad, tmp_path / "restore" / "out")

    def test_deep_integrity_check_fails(self, target: Directory, points: tuple[RecoveryPoint, ...]):
        """IntegrityCheck(deep=True) reports a failure instead of dying with MemoryError."""
        bad, _ = points
        result = IntegrityCheck(deep=True).verify(target, bad, VerifyContext(now=T0))
        assert CheckStatus.FAIL == result.status
        assert "is larger than" in result.details


class TestS3Bounds:
    def test_s3_sidecar_read_with_a_range(self, aws: None, monkeypatch: pytest.MonkeyPatch):
        """S3Store reads at most limit + 1 bytes of a sidecar and lists an oversized one as FAILED."""
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="vault")
        monkeypatch.setattr(_archive_store, "MAX_SIDECAR_BYTES", 100)
        client.put_object(Bucket="vault", Key=f"{NAME}.json", Body=b" " * 5000)
        ranges: list[str] = []
        client.meta.events.register(
            "before-parameter-build.s3.GetObject",
            lambda params, **_: ranges.append(params.get("Range")),
        )
        store = S3Store("vault", clients={"s3": client})
        [point] = store.list_points()
        assert (Status.FAILED, ["bytes=0-100"]) == (point.status, ranges)
        assert "is larger than 100 bytes" in point.details["incomplete"]

    def test_s3_manifest_line_bounded(self, aws: None, monkeypatch: pytest.MonkeyPatch):
        """An S3 manifest line longer than the limit is refused with UnsafeArchiveError naming it."""
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="assets")
        client.put_object(Bucket="assets", Key="a" * 200, Body=b"a")
        target = S3Bucket("assets", account_id="123456789012")
        point = target.create_backup(token="t1")
        assert ["a" * 200] == [line["key"] for line in target.read_manifest(point)]
        monkeypatch.setattr(_s3_base, "_MAX_MANIFEST_LINE", 100)
        monkeypatch.setattr(_s3_base, "_LINE_CHUNK", 7)
        with pytest.raises(UnsafeArchiveError, match="has a line longer than 100 bytes") as caught:
            list(target.read_manifest(point))
        assert "s3://assets/" in str(caught.value)


class TestBrokenSidecars:
    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            (b"{not json", "is unreadable"),
            (b"[1, 2]", "is unreadable"),
            (b'{"id": "x", "archive": {"size": 1}}', "names no archive SHA-256"),
            (b'{"id": "x", "archive": "nope"}', "names no archive SHA-256"),
        ],
    )
    def test_restore_and_integrity_check_refuse(
        self,
        body: bytes,
        problem: str,
        target: Directory,
        plant: Callable[[bytes], RecoveryPoint],
        tmp_path: Path,
    ):
        """A broken sidecar fails restore_to and the integrity check with VerificationError, not KeyError."""
        point = plant(_archive([]))
        (target.store.path / f"{NAME}.json").write_bytes(body)  # type: ignore[attr-defined]
        with pytest.raises(VerificationError, match=f"{NAME}.json of '{NAME}' {problem}"):
            target.restore_to(point, tmp_path / "restore" / "out")
        result = IntegrityCheck(deep=True).verify(target, point, VerifyContext(now=T0))
        assert (CheckStatus.FAIL, True) == (result.status, problem in result.details)
