"""Crash leftovers: temporary files, point locks and restore staging directories, and their sweeps.

A live writer, point lock or restore holds an ``flock`` on its file or directory; a directory
we make carries a marker file. A sweep removes only what is ours, unlocked and old enough.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import stat
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backuppolicy.core.model import ensure_aware
from backuppolicy.local._format import TMP_PREFIX, split_key

STAGING_PREFIX = ".bp-restore-"
"""Prefix of a restore's staging directory next to its destination."""
LEFTOVER_GRACE = timedelta(hours=24)
"""How old a leftover must be before `Directory.sweep_incomplete` removes it by default."""
LOCK_PREFIX = ".bp-lock-"
"""Prefix of a point's lock file in a `DirectoryStore`."""
_log = logging.getLogger("backuppolicy.local")


def leftover_name(entry: str) -> str | None:
    """The point name of a temporary or lock file (``.tmp-<key>.<random>``, ``.bp-lock-<name>``)."""
    if entry.startswith(LOCK_PREFIX):
        return entry[len(LOCK_PREFIX) :]
    if entry.startswith(TMP_PREFIX):
        split = split_key(entry[len(TMP_PREFIX) :].rsplit(".", 1)[0])
        return split[0] if split else None
    return None


def remove_abandoned(path: Path, *, older_than: timedelta, now: datetime) -> bool:
    """Remove the crash leftover *path* (a file or a directory) if it is abandoned.

    Abandoned means last modified more than *older_than* before *now* and not locked: a
    live writer (``.tmp-*``), point lock or restore (``.bp-restore-*``) holds an ``flock``
    on it while it runs. Our own lock is held while removing, so nobody takes it meanwhile.

    Returns:
        Whether *path* was removed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # gone meanwhile, or a symlink: not a leftover of ours
        return False
    try:
        st = os.fstat(fd)
        if now - datetime.fromtimestamp(st.st_mtime, UTC) <= older_than:
            return False
        if stat.S_ISDIR(st.st_mode) and not _marked(fd):
            return False  # named like ours, but not made by us: the user's
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # in use by a running job
        if stat.S_ISDIR(st.st_mode):
            remove_tree(path)
        else:
            path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


_OURS_MARKER = ".bp-ours"


def owned_tempdir(prefix: str, parent: Path | None = None) -> tuple[Path, int]:
    """A new temporary directory, locked and marked as ours, and the descriptor of its lock.

    Sweeps remove a directory named like ours only if it holds the marker (a user's
    directory with our prefix is left alone) and nobody holds its lock (a running job's is
    left alone). Close the descriptor when done with the directory.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        os.close(os.open(_OURS_MARKER, flags, 0o600, dir_fd=fd))
    except BaseException:
        os.close(fd)
        raise
    return path, fd


def _marked(fd: int) -> bool:
    """Whether the directory open as *fd* carries our marker (a regular file, not a link)."""
    try:
        st = os.stat(_OURS_MARKER, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode)


def is_abandoned_leftover(path: str | os.PathLike[str], *, before: datetime) -> bool:
    """Whether *path* is a directory we made (marked), last modified before *before*, unlocked.

    A symlink, a directory without our marker and one a running job holds locked are not.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if datetime.fromtimestamp(st.st_mtime, UTC) >= before or not _marked(fd):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    finally:
        os.close(fd)


def remove_abandoned_leftover(path: str | os.PathLike[str], *, before: datetime) -> bool:
    """Remove the directory *path* if `is_abandoned_leftover` (checked again under our lock).

    Returns:
        Whether it was removed.
    """
    ensure_aware(before, field="before")
    return remove_abandoned(Path(path), older_than=timedelta(0), now=before)


def sweep_restore_staging(
    parent: str | os.PathLike[str],
    *,
    older_than: timedelta = timedelta(hours=1),
    now: datetime | None = None,
) -> list[str]:
    """Remove the ``.bp-restore-*`` staging directories that crashed restores left in *parent*.

    A running restore holds a lock on its staging directory; only unlocked ones that carry
    our marker (a user's directory named like ours does not) and were last modified more
    than *older_than* ago are removed. Symlinks are never followed nor removed. `Directory.restore_to` calls this for
    the parent of its destination.

    Returns:
        The removed directories.
    """
    now = ensure_aware(now, field="now") if now is not None else datetime.now(UTC)
    root = Path(parent)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for entry in entries:
        if entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False):
            path = root / entry.name
            if remove_abandoned(path, older_than=older_than, now=now):
                removed.append(str(path))
    if removed:
        _log.warning(
            "removed %d staging directories of crashed restores: %s", len(removed), removed
        )
    return removed


def remove_tree(path: Path) -> None:
    """Remove the directory *path* and everything in it, never following a symlink.

    A *path* that is not a directory (a symlink put in its place, say) is left alone.
    Directories made read-only by a restore get owner write access first, through
    descriptors, so a link never has its target's mode changed.
    """
    try:
        top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:  # gone, a symlink, or not a directory: nothing of ours to remove
        return
    try:
        with contextlib.suppress(OSError):
            os.fchmod(top, 0o700)
        for _, dirs, _, fd in os.fwalk(dir_fd=top, follow_symlinks=False):
            for name in dirs:
                with contextlib.suppress(OSError):
                    if stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                        os.chmod(name, 0o700, dir_fd=fd)
    finally:
        os.close(top)
    shutil.rmtree(path, ignore_errors=True)
