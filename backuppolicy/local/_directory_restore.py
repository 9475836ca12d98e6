"""The restores of a `Directory`: into a temporary or given directory, and through the `Restorable` protocol.

`DirectoryRestores` is a mixin of `Directory` (`backuppolicy.local._directory`); it needs the
target's ``name``, ``kind``, ``path``, ``verify`` and the store of a point.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from backuppolicy.core.exceptions import PolicyError, VerificationError
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.restoring import (
    ABSENT,
    MADE_BY_THIS_RESTORE,
    RestoreCheck,
    RestoreOutcome,
    RestorePlan,
    RestoreStep,
    StepAction,
    choose_point,
    stamp_of,
)
from backuppolicy.core.targets import IsolationProfile, ManifestEntry, RestoredResource
from backuppolicy.local._archive_store import ArchiveStore
from backuppolicy.local._crypt import DecryptingReader, KeySource, decrypt_to, is_encrypted
from backuppolicy.local._extract import apply_dir_modes, extract_archive, read_manifest, verify_tree
from backuppolicy.local._format import DATA, archive_key, plain_mode, sha256_of
from backuppolicy.local._leftovers import (
    STAGING_PREFIX,
    owned_tempdir,
    remove_tree,
    sweep_restore_staging,
)


class DirectoryRestores:
    """Restores of a `Directory` (a mixin): `restore`, `restore_to` and the `Restorable` protocol."""

    if TYPE_CHECKING:  # provided by Directory
        kind: ClassVar[str]
        path: Path

        @property
        def name(self) -> str: ...

        def _store_for(self, point: RecoveryPoint) -> ArchiveStore: ...

        def verify(self, point: RecoveryPoint) -> str: ...

        @property
        def key_sources(self) -> tuple[KeySource, ...]: ...

    # -- ManifestedPoints: the archive's manifest, for restore-test fingerprints ---------------

    def manifest_entries(self, point: RecoveryPoint) -> list[ManifestEntry]:
        """Every file of *point*'s ``manifest.json``, with its SHA-256 (read from the archive)."""
        store = self._store_for(point)
        with store.open_reader(archive_key(point.id)) as stream:
            if point.details.get("client_encryption"):
                # Segments are authenticated before any of their bytes reach the tar reader.
                where = f"{store.url}: archive {point.id!r}"
                plain = DecryptingReader(stream, self.key_sources, where)
                manifest = read_manifest(plain, point.id)
            else:
                manifest = read_manifest(stream, point.id)
        return [
            ManifestEntry(
                path=str(entry["path"]),
                sha256=f"sha256:{entry['sha256']}",
                size=int(entry["size"]) if isinstance(entry.get("size"), int) else None,
            )
            for entry in manifest.get("entries", [])
            if isinstance(entry, dict) and entry.get("type") == "file"
        ]

    def open_backed_up(self, entry: ManifestEntry) -> _FileBody:
        """Not needed: every entry of a directory manifest has its SHA-256."""
        msg = f"{entry.path}: a directory manifest records the SHA-256 of every file"
        raise LookupError(msg)

    def open_restored(self, endpoint: object, path: str) -> _FileBody:
        """*path* in the restored directory *endpoint* (never through a link out of it)."""
        root = Path(os.fspath(endpoint)).resolve()  # type: ignore[call-overload]
        target = (root / path).resolve()
        if root not in target.parents or not target.is_file():
            raise FileNotFoundError(path)
        return _FileBody(target.open("rb"))

    @contextlib.contextmanager
    def restore(
        self, point: RecoveryPoint, into: IsolationProfile | None = None
    ) -> Iterator[RestoredResource]:
        """Restore *point* into a fresh temporary directory, removed on exit (even on error).

        ``into.name_prefix`` names the temporary directory.
        """
        prefix = into.name_prefix if into is not None else "bp-restore-"
        # Locked while live, marked as ours: verify.sweep_restore_tests leaves it alone till then.
        base, lock = owned_tempdir(prefix)
        try:
            swept: list[str] = []
            restored = self.restore_to(point, base / point.id, swept=swept)
            details = _restore_details(restored)
            if swept:
                details["swept"] = swept
            yield RestoredResource(
                id=str(restored),
                kind="directory",
                point=point,
                endpoint=str(restored),
                details=details,
            )
        finally:
            remove_tree(base)
            os.close(lock)

    def restore_to(
        self,
        point: RecoveryPoint,
        directory: str | os.PathLike[str],
        *,
        external_links: bool = False,
        swept: list[str] | None = None,
    ) -> Path:
        """Restore *point* into *directory*, which must not exist or be empty.

        The archive's SHA-256 is checked first; every member is checked (no absolute
        paths, ``..``, devices, pipes, hard links, links escaping the destination, paths
        through links), then it is extracted next to *directory*, every file is checked
        against the manifest, and only then renamed into place: a failed restore leaves
        nothing behind. Modes are restored (not owners, not setuid/setgid/sticky bits).
        With *external_links*, links that pointed outside the directory are recreated too.
        Staging directories of crashed restores next to *directory* (``.bp-restore-*``, not
        locked by a running restore, over an hour old) are removed first and added to *swept*.

        Returns:
            The restored directory.

        Raises:
            PolicyError: *directory* exists and is not empty.
            UnsafeArchiveError: A member is unsafe; nothing was restored.
            VerificationError: The archive or a file does not match its checksum.
        """
        dest = Path(directory).expanduser().absolute()
        if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
            raise PolicyError.for_field(
                "directory", "a path that does not exist or an empty directory", str(dest)
            )
        store = self._store_for(point)
        data = store.read_sidecar(point, "restore")
        expected = str(data["archive"]["sha256"])
        dest.parent.mkdir(parents=True, exist_ok=True)
        found = sweep_restore_staging(dest.parent)
        if swept is not None:
            swept.extend(found)
        # Locked while live, marked as ours: sweep_restore_staging leaves it alone till then.
        staging, lock = owned_tempdir(STAGING_PREFIX, dest.parent)
        try:
            with store.local_file(archive_key(point.id)) as archive:
                with archive.open("rb") as handle:
                    actual, _ = sha256_of(handle)
                if actual != expected:
                    msg = f"{store.url}: archive {point.id!r}: expected sha256:{expected} (got sha256:{actual}); nothing was restored"
                    raise VerificationError(
                        msg, result={"point": point.id, "expected": expected, "actual": actual}
                    )
                manifest = extract_archive(
                    self._plain_archive(archive, staging, f"{store.url}: archive {point.id!r}"),
                    staging,
                    point.id,
                )
            root = staging / DATA
            verify_tree(root, manifest, point.id)
            if external_links:
                for link in manifest.get("external_links", []):
                    (root / link["path"]).symlink_to(link["target"])
            apply_dir_modes(root, manifest)
            root.replace(dest)
        finally:
            remove_tree(staging)
            os.close(lock)
        dest.chmod(plain_mode(manifest.get("root", {}).get("mode", "0700")))
        return dest

    def _plain_archive(self, archive: Path, staging: Path, where: str) -> Path:
        """*archive* itself if it is plaintext, else its plaintext decrypted into *staging*.

        Every segment is authenticated before extraction starts, so a wrong key or a
        tampered byte stops the restore with nothing extracted (*staging* is removed).
        """
        with archive.open("rb") as handle:
            if not is_encrypted(handle.read(8)):
                return archive
            handle.seek(0)
            plain = staging / ".bp-decrypted.tar.gz"
            fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                decrypt_to(handle, out, self.key_sources, where)
        return plain

    # -- restores through backuppolicy.restore (the Restorable protocol) ---------------

    _RESTORE_NEWEST: ClassVar[int] = 3
    """How many of the newest entries an observed directory's state names."""

    def plan_restore(
        self,
        *,
        point: RecoveryPoint | str | None,
        at: datetime | None,
        into: Any,
        now: datetime,
        token: str,
        **options: object,
    ) -> RestorePlan:
        """Plan restoring an archive into *into* (default: this directory, in place).

        The archive is restored next to the destination (``.<name>.restoring-<stamp>``), then
        renamed into place; whatever is at the destination is first moved aside to
        ``<name>.before-restore-<stamp>`` and kept. *point* defaults to the newest completed
        archive (taken at or before *at*, if given). A plan whose move-aside and rename an
        earlier run of the same *token* did adopts the restored directory.

        Raises:
            PolicyError: The point or destination cannot be used, or an option was given
                (directories take none).
        """
        if options:
            raise PolicyError.for_field(
                "plan_restore", "no database or volume option for a directory", sorted(options)
            )
        chosen = choose_point(self, point, before=at, kinds=("archive",))
        if into is not None and not isinstance(into, str | os.PathLike):
            raise PolicyError.for_field("into", "a directory path", into)
        dest = Path(into if into is not None else self.path).expanduser().absolute()
        stamp = stamp_of(token)
        staging = dest.with_name(f".{dest.name}.restoring-{stamp}")
        aside = dest.with_name(f"{dest.name}.before-restore-{stamp}")
        occupied = self._restore_occupied(dest)
        # The aside name carries this restore's stamp: if it exists, this restore moved the
        # directory aside in an earlier, interrupted run (a resume, or a retry of the same token).
        moved = aside.exists() or aside.is_symlink()
        if moved and occupied:
            adopt = RestoreStep(
                StepAction.VERIFY,
                str(dest),
                f"adopt {dest}, restored earlier by this restore ({dest} was moved to {aside}); "
                "re-check the archive checksum; count files",
                keeps=str(aside),
            )
            return self._restore_plan(
                chosen, dest=dest, steps=[adopt], in_place=True, now=now, token=token, adopt=True
            )
        steps = [
            RestoreStep(
                StepAction.CREATE,
                str(staging),
                f"restore archive {chosen.id} into {staging} (archive and file checksums checked)",
            )
        ]
        if occupied:
            steps.append(
                RestoreStep(
                    StepAction.MOVE_ASIDE,
                    str(dest),
                    f"move {dest} to {aside} (kept)",
                    destructive=True,
                    keeps=str(aside),
                )
            )
        steps.append(
            RestoreStep(
                StepAction.REPLACE if occupied else StepAction.CREATE,
                str(dest),
                f"rename {staging.name} to {dest}"
                + (f" ({dest} was moved to {aside} earlier by this restore)" if moved else ""),
                destructive=occupied,
                keeps=str(aside) if occupied or moved else None,
            )
        )
        steps.append(
            RestoreStep(StepAction.VERIFY, str(dest), "re-check the archive checksum; count files")
        )
        return self._restore_plan(
            chosen, dest=dest, steps=steps, in_place=occupied or moved, now=now, token=token
        )

    def _restore_plan(
        self,
        chosen: RecoveryPoint,
        *,
        dest: Path,
        steps: Sequence[RestoreStep],
        in_place: bool,
        now: datetime,
        token: str,
        adopt: bool = False,
    ) -> RestorePlan:
        stamp = stamp_of(token)
        staging = dest.with_name(f".{dest.name}.restoring-{stamp}")
        aside = dest.with_name(f"{dest.name}.before-restore-{stamp}")
        return RestorePlan(
            target=self.name,
            kind=self.kind,
            source=f"archive {chosen.id}",
            destination=str(dest),
            in_place=in_place,
            steps=steps,
            token=token,
            planned_at=now,
            data_time=chosen.created_at,
            point=chosen,
            options={"staging": str(staging), "aside": str(aside), "adopt": adopt},
        )

    def observe_restore(self, plan: RestorePlan) -> Mapping[str, str]:
        """The destination of *plan* in words (and its aside name, if this restore used it)."""
        dest = Path(plan.destination)
        aside = self._restore_aside(plan)
        seen = {str(dest): self._restore_path_state(dest)}
        if aside.exists() or aside.is_symlink():  # named with this restore's stamp: its own
            seen[str(aside)] = self._restore_path_state(aside) + MADE_BY_THIS_RESTORE
        return seen

    def execute_restore(self, plan: RestorePlan, *, confirm: bool) -> RestoreOutcome:  # noqa: ARG002 - the previous state is kept either way
        """Restore *plan*'s archive next to the destination, move what is there aside, rename.

        What is at the destination is decided now, not at planning: it is moved aside and kept.
        The archive's checksum is checked again afterwards and the files counted.

        Raises:
            PolicyError: The staging or aside name is taken by something this restore did not
                make, or a plan that adopts an earlier run finds its aside gone.
        """
        point = plan.point
        if point is None:
            raise PolicyError.for_field("plan.point", "the archive to restore", None)
        dest = Path(plan.destination)
        staging = self._restore_staging(plan)
        aside = self._restore_aside(plan)
        swept: list[str] = []  # staging directories of crashed restores next to the destination
        kept: list[str] = []
        if plan.options.get("adopt"):
            if not aside.exists() and not aside.is_symlink():
                raise PolicyError.for_field(
                    "plan",
                    f"a plan of the destination as it is (it adopts {dest}, restored earlier, "
                    f"but {aside} is gone)",
                    str(dest),
                    hint="Plan the restore again. Nothing was changed.",
                )
            kept.append(str(aside))
        else:
            if staging.exists() or staging.is_symlink():  # left by an interrupted attempt
                self._restore_remove_staging(staging)
            self.restore_to(point, staging, swept=swept)
            # Decided now, not at planning: whatever is at the destination is moved aside and kept.
            if self._restore_occupied(dest):
                if aside.exists() or aside.is_symlink():
                    shutil.rmtree(staging)
                    raise PolicyError.for_field(
                        "into",
                        f"a directory whose aside name {aside} is free (it holds what an earlier "
                        "run of this restore moved aside)",
                        str(dest),
                        hint="Plan the restore again with the same token to adopt it, or with a "
                        "new one. Nothing was changed.",
                    )
                dest.rename(aside)
                kept.append(str(aside))
            elif aside.exists() or aside.is_symlink():  # moved aside by an interrupted run
                kept.append(str(aside))
            staging.rename(dest)
        checksum = self.verify(point)
        files = sum(len(names) for _, _, names in os.walk(dest))
        check = RestoreCheck(
            "archive-checksum",
            ok=checksum == point.checksum or point.checksum is None,
            details=f"archive {point.id}: {checksum}; every file matched the manifest; {files} file(s)",
            evidence={"checksum": checksum, "files": files},
        )
        return RestoreOutcome(
            str(dest), str(dest), kept, [check], details={"files": files, "swept": swept}
        )

    @staticmethod
    def _restore_aside(plan: RestorePlan) -> Path:
        """Where *plan* moves its destination aside: next to it, named with the restore's stamp.

        Derived from the destination and the token, never read from ``plan.options`` (a plan
        made by hand must not choose what is moved or removed).
        """
        dest = Path(plan.destination)
        return dest.with_name(f"{dest.name}.before-restore-{plan.stamp}")

    @staticmethod
    def _restore_staging(plan: RestorePlan) -> Path:
        """Where *plan* restores before the rename: next to the destination, with the stamp."""
        dest = Path(plan.destination)
        return dest.with_name(f".{dest.name}.restoring-{plan.stamp}")

    @staticmethod
    def _restore_remove_staging(staging: Path) -> None:
        """Remove this restore's own staging directory; a symlink in its place is refused."""
        if staging.is_symlink() or not staging.is_dir():
            raise PolicyError.for_field(
                "into",
                f"a destination whose staging name {staging} is free or this restore's directory",
                str(staging),
                hint="Remove or rename it, then run the restore again. Nothing was changed.",
            )
        shutil.rmtree(staging)

    @staticmethod
    def _restore_occupied(path: Path) -> bool:
        """Whether *path* holds anything a restore would have to move aside."""
        return path.is_symlink() or (path.exists() and (not path.is_dir() or any(path.iterdir())))

    @staticmethod
    def _restore_path_state(path: Path) -> str:
        """*path* in words: absent, a link, a file (size, time) or a directory (its listing's digest)."""
        if path.is_symlink():
            return f"a link to {path.readlink()}"
        if not path.exists():
            return ABSENT
        if not path.is_dir():
            st = path.stat()
            return f"a file of {st.st_size} bytes modified at {st.st_mtime_ns} ns"
        digest = hashlib.sha256()
        newest: list[tuple[int, str]] = []
        count = 0
        for parent, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted([*dirs, *names]):
                child = Path(parent, name)
                try:
                    st = child.lstat()
                except FileNotFoundError:  # removed while we look: that is a change too
                    continue
                rel = child.relative_to(path).as_posix()
                digest.update(
                    f"{rel}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\n".encode(
                        errors="replace"
                    )
                )
                count += 1
                newest = sorted([*newest, (st.st_mtime_ns, rel)])[
                    -DirectoryRestores._RESTORE_NEWEST :
                ]
        if not count:
            return "an empty directory"
        shown = ", ".join(rel for _, rel in sorted(newest, reverse=True))
        return f"a directory of {count} entries (digest {digest.hexdigest()[:12]}; newest: {shown})"


class _FileBody:
    """A file as a streaming body (``iter_chunks``, ``close``), like an S3 object's."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        while chunk := self._handle.read(size):
            yield chunk

    def close(self) -> None:
        self._handle.close()


def _restore_details(root: Path) -> dict[str, object]:
    files = 0
    size = 0
    for parent, _, names in os.walk(root):
        for name in names:
            st = (Path(parent) / name).lstat()
            if stat.S_ISREG(st.st_mode):
                files += 1
                size += st.st_size
    return {"path": str(root), "files": files, "bytes": size}
