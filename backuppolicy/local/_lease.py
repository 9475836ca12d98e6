"""`FileLease`: the run lease of a policy whose testing log is a local file.

The lease is a small JSON file (`~backuppolicy.core.capabilities.LeaseRecord`: owner, since,
until) next to the log. Every look at it, creation, takeover and removal happens under an
exclusive ``fcntl.flock`` of a guard file beside it, so reading the record and replacing it is
one atomic step for every process and thread on the machine; the record itself is written to a
temporary file, fsynced and renamed into place, so a crash never leaves half a lease. The lock
is held only for those few system calls, never for the run: the record says who holds the
lease, and a stale one (past its ``expires_at``, its holder presumed dead) is taken over.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from backuppolicy.core.capabilities import LeaseRecord
from backuppolicy.core.exceptions import LeaseHeldError

if sys.platform != "win32":  # pragma: no branch - POSIX file locks
    import fcntl

__all__ = ["FileLease"]

_MAX_BYTES = 4096


class FileLease:
    """The run lease in a local file (`~backuppolicy.core.capabilities.Lease`).

    Example:
        >>> import tempfile, pathlib
        >>> from datetime import datetime, timedelta, UTC
        >>> lease = FileLease(pathlib.Path(tempfile.mkdtemp()) / "run.lease")
        >>> now = datetime(2026, 11, 26, 4, tzinfo=UTC)
        >>> lease.acquire(owner="ops@host-1", now=now, ttl=timedelta(hours=6)).owner
        'ops@host-1'
        >>> try:
        ...     FileLease(lease.path).acquire(owner="ops@host-2", now=now, ttl=timedelta(hours=6))
        ... except LeaseHeldError as exc:
        ...     print(exc.holder.owner, exc.holder.expires_at)
        ops@host-1 2026-11-26 10:00:00+00:00
        >>> lease.release()
        True

    Args:
        path: The lease file (its directory is created if missing).

    Attributes:
        path: The lease file.
        record: The record this object wrote when it took the lease, else ``None``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.record: LeaseRecord | None = None
        self._thread_lock = threading.Lock()  # flock is per open file: threads need their own

    def __repr__(self) -> str:
        return f"FileLease({str(self.path)!r})"

    @property
    def where(self) -> str:
        """The lease file's path."""
        return str(self.path)

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        guard = self.path.with_name(self.path.name + ".guard")
        fd = os.open(guard, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if sys.platform != "win32":  # pragma: no branch
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _read(self) -> tuple[bool, LeaseRecord | None]:
        """(whether the file exists, its record or ``None`` when damaged)."""
        try:
            with self.path.open("rb") as file:
                raw = file.read(_MAX_BYTES + 1)
        except FileNotFoundError:
            return False, None
        return True, LeaseRecord.from_bytes(raw)

    def _write(self, record: LeaseRecord) -> None:
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, record.to_bytes())
            os.fsync(fd)
        finally:
            os.close(fd)
        temp.replace(self.path)

    def acquire(self, *, owner: str, now: datetime, ttl: timedelta) -> LeaseRecord:
        """Take the lease until ``now + ttl`` (or take over a stale one).

        A lease file that cannot be parsed (damaged by hand) is treated as stale once its
        modification time is older than *ttl*, and as held before that.

        Raises:
            LeaseHeldError: Another owner holds a lease that is not stale at *now*.
        """
        record = LeaseRecord(owner=owner, acquired_at=now, expires_at=now + ttl)
        with self._thread_lock, self._guarded():
            exists, held = self._read()
            if exists:
                if held is None:
                    modified = datetime.fromtimestamp(self.path.stat().st_mtime, tz=now.tzinfo)
                    if modified + ttl > now:
                        raise LeaseHeldError(
                            f"{self.path}: a damaged run lease, written at "
                            f"{modified.isoformat()}, is not stale yet; expected no lease or a "
                            "stale one",
                            where=self.where,
                        )
                elif not held.stale(now):
                    raise LeaseHeldError(
                        f"{self.path}: the run lease is held by {held.owner!r} until "
                        f"{held.expires_at.isoformat()}; expected no lease or a stale one",
                        holder=held,
                        where=self.where,
                    )
            self._write(record)
        self.record = record
        return record

    def release(self) -> bool:
        """Remove the lease if it is still the one this object took; ``False`` otherwise."""
        mine = self.record
        if mine is None:
            return False
        with self._thread_lock, self._guarded():
            _, held = self._read()
            self.record = None
            if held != mine:
                return False
            self.path.unlink()
        return True
