"""A SQLite file target: a target kind written as a plug-in, outside backuppolicy.

`SqliteFile` protects one SQLite database file. A backup is a consistent copy made with SQLite's
online backup API (``sqlite3.Connection.backup``: safe while the application writes), kept in an
archive directory with a JSON sidecar that holds its SHA-256, its tags and its legal hold. The
target knows everything about its kind, so the library needs no change for it:

* it builds itself from its policy entry (`SqliteFile.from_spec`);
* it lists, creates, refreshes and deletes points, and copies them to another tier's directory;
* it restores a point to a new file (`SqliteFile.restore_to`) and, for restore tests, into a
  temporary directory that is always removed (`SqliteFile.restore`);
* it plans and carries out its own restores for `backuppolicy.plan_restore` and
  `backuppolicy.restore` (the `~backuppolicy.core.targets.Restorable` protocol: one step, a copy
  of the point to a new file, never over anything);
* it checks a point (`SqliteFile.verify`: the SHA-256 and ``PRAGMA integrity_check``), and
  `sqlite_probes` prove the data of a restored copy (``integrity_check`` and a row count);
* it removes its own crash leftovers (`SqliteFile.sweep_incomplete`);
* it names the IAM actions it needs: none (`SqliteFile.iam_actions`).

Register it in the entry-point group ``backuppolicy.targets`` of the package that ships it::

    [project.entry-points."backuppolicy.targets"]
    sqlite-file = "sqlite_target:SqliteFile"

A policy then names it like a built-in kind::

    targets:
      - name: notes
        kind: sqlite-file
        settings: {path: /srv/notes/notes.db}
    tiers:
      - name: local
        location: {store: /srv/backups/sqlite}
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

import attrs

from backuppolicy import (
    LegalHold,
    PolicyError,
    ProtectedPointError,
    RecoveryPoint,
    ResourceNotFoundError,
    SqlProbe,
    Status,
    VerificationError,
)
from backuppolicy.core.model import TAG_HOLD, TAG_POLICY, TAG_REASON, TAG_TARGET, TAG_TOKEN
from backuppolicy.core.restoring import (
    ABSENT,
    RestoreCheck,
    RestoreOutcome,
    RestorePlan,
    RestoreStep,
    StepAction,
    choose_point,
)
from backuppolicy.core.targets import Destination, IsolationProfile, RestoredResource

if TYPE_CHECKING:
    from backuppolicy import Policy, TargetSpec

__all__ = ["KIND", "POINT_KIND", "SqliteFile", "sqlite_probes"]

KIND: Final = "sqlite-file"
"""The kind this module registers."""

POINT_KIND: Final = "sqlite-backup"
"""The ``kind`` of the recovery points of a `SqliteFile`."""

_MAX_SIDECAR: Final = 64 * 1024  # bytes: a larger sidecar is refused unread
_CHUNK: Final = 1024 * 1024
_LEFTOVER_GRACE: Final = timedelta(days=1)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _read_only(path: Path) -> sqlite3.Connection:
    """Open *path* read-only: a missing file is an error, never a new empty database."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def _integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` of the database at *path*: ``"ok"`` or the first problem."""
    with contextlib.closing(_read_only(path)) as db:
        rows = db.execute("PRAGMA integrity_check").fetchall()
    return "; ".join(str(row[0]) for row in rows[:5])


def _copy_database(source: Path, dest: Path) -> None:
    """Copy *source* to *dest* with the online backup API, through a temporary file."""
    tmp = dest.with_name(f".tmp-{uuid.uuid4().hex}-{dest.name}")
    try:
        with (
            contextlib.closing(_read_only(source)) as src,
            contextlib.closing(sqlite3.connect(tmp)) as dst,
        ):
            src.backup(dst)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    try:
        tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


class SqliteFile:
    """A SQLite database file, backed up with the online backup API into an archive directory.

    Points live in ``<archive>/<name>/<id>.sqlite`` with a sidecar ``<id>.json``; a copy
    tier has the same layout in its own directory. The sidecar is written last, so a file
    without one is a crash leftover, never a point.

    Args:
        path: The database file.
        archive: Directory of the source tier's points.
        name: Name of the target in the policy (default: the file's stem).
        policy: Name of the policy that owns the points this target creates.
        tier: Name of the source tier.
        copies: Directories of the copy tiers, by tier name (listed and pruned with the rest).
        clock: Returns the current time (timezone-aware); default: the wall clock in UTC.
    """

    kind: ClassVar[str] = KIND
    """Registered kind of the target."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        archive: str | os.PathLike[str],
        name: str | None = None,
        policy: str = "default",
        tier: str = "local",
        copies: Mapping[str, str | os.PathLike[str]] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = name or self.path.stem
        self.policy = policy
        self.tier = tier
        self.clock = clock or (lambda: datetime.now(UTC))
        self.archives: dict[str, Path] = {tier: Path(archive)}
        for copy_tier, where in (copies or {}).items():
            self.archives.setdefault(copy_tier, Path(where))

    def __repr__(self) -> str:
        return f"<SqliteFile(name={self.name!r}, path={str(self.path)!r})>"

    # ----------------------------------------------------------------------------------------
    # What the library asks the kind (the class, before any target exists)

    @classmethod
    def from_spec(cls, spec: TargetSpec, policy: Policy, **context: object) -> SqliteFile:  # noqa: ARG003 - no AWS session, endpoint or region to use
        """Build the target of *spec*: ``settings.path``, and the archive of its source tier.

        The archive directory is ``settings.archive``, or else the ``store`` of the target's
        first tier; the other tiers with a ``store`` are its copy tiers.

        Raises:
            PolicyError: No ``path``, or no archive directory.
        """
        settings = dict(spec.settings)
        where = f"targets[{spec.name}].settings"
        path = settings.get("path")
        if not isinstance(path, str) or not path:
            raise PolicyError.for_field(f"{where}.path", "the SQLite database file", path)
        tiers = policy.tiers_for(spec)
        source = tiers[0] if tiers else None
        archive = settings.get("archive") or (source.location.get("store") if source else None)
        if not archive:
            raise PolicyError.for_field(
                f"{where}.archive",
                "a directory for the backups (or a store in the target's first tier)",
                archive,
            )
        return cls(
            path,
            archive=str(archive),
            name=spec.name,
            policy=policy.name,
            tier=source.name if source else "local",
            copies={t.name: str(t.location["store"]) for t in tiers[1:] if t.location.get("store")},
        )

    @classmethod
    def iam_actions(cls, spec: TargetSpec) -> Mapping[str, Sequence[Mapping[str, Any]]]:  # noqa: ARG003 - the same for every file
        """IAM statements per workflow: none, a local file needs no AWS permission."""
        return {}

    # ----------------------------------------------------------------------------------------
    # Points

    def _dir(self, tier: str) -> Path:
        return self.archives[tier] / self.name

    def _managed(self, tags: Mapping[str, str]) -> bool:
        return tags.get(TAG_POLICY) == self.policy and tags.get(TAG_TARGET) == self.name

    def _read(self, sidecar: Path, tier: str) -> RecoveryPoint:
        """The point of *sidecar*; a damaged sidecar is a FAILED, unmanaged point."""
        data = self._sidecar(sidecar)
        if data is None:
            stamp = datetime.fromtimestamp(sidecar.stat().st_mtime, UTC)
            return RecoveryPoint(
                id=sidecar.stem,
                target=self.name,
                created_at=stamp,
                kind=POINT_KIND,
                location=str(sidecar.with_suffix(".sqlite")),
                tier=tier,
                status=Status.FAILED,
                managed=False,
                details={"error": f"unreadable sidecar {sidecar.name}"},
            )
        tags = {str(k): str(v) for k, v in dict(data.get("tags", {})).items()}
        hold = tags.get(TAG_HOLD)
        return RecoveryPoint(
            id=str(data["id"]),
            target=self.name,
            created_at=datetime.fromisoformat(str(data["created_at"])),
            kind=POINT_KIND,
            location=str(sidecar.with_suffix(".sqlite")),
            tier=tier,
            status=Status.COMPLETED,
            size_bytes=int(data["size"]),
            checksum=str(data["sha256"]),
            tags=tags,
            legal_hold=LegalHold.from_tag(hold) if hold else None,
            managed=self._managed(tags),
        )

    @staticmethod
    def _sidecar(sidecar: Path) -> dict[str, Any] | None:
        try:
            if sidecar.stat().st_size > _MAX_SIDECAR:
                return None
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        required = {"id", "created_at", "sha256", "size", "tags"}
        return data if isinstance(data, dict) and required <= data.keys() else None

    def list_points(self) -> Iterator[RecoveryPoint]:
        """Every point of every tier, ours ``managed=True``; an unreadable directory raises."""
        for tier in sorted(self.archives):
            folder = self._dir(tier)
            if not folder.is_dir():
                continue
            for sidecar in sorted(folder.glob("*.json")):
                if not sidecar.name.startswith(".tmp-"):
                    yield self._read(sidecar, tier)

    def refresh(self, point: RecoveryPoint) -> RecoveryPoint | None:
        """Re-read *point* from its sidecar; ``None`` if it no longer exists."""
        if point.tier not in self.archives:
            return None
        sidecar = self._dir(point.tier) / f"{point.id}.json"
        return self._read(sidecar, point.tier) if sidecar.is_file() else None

    def create_backup(
        self,
        *,
        reason: str = "scheduled",
        tags: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> RecoveryPoint:
        """Copy the database with the online backup API; the same *token* returns the same point.

        Raises:
            ResourceNotFoundError: The database file does not exist.
        """
        if token is not None:
            for point in self.list_points():
                if point.tier == self.tier and point.managed and point.tags.get(TAG_TOKEN) == token:
                    return point
        if not self.path.is_file():
            message = f"{self.name}: database file {str(self.path)!r} does not exist"
            raise ResourceNotFoundError(
                message, backend=KIND, operation="create_backup", resource=str(self.path)
            )
        created = self.clock()
        point_id = f"{self.name}-{created:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"
        ours = {TAG_POLICY: self.policy, TAG_TARGET: self.name, TAG_REASON: reason}
        if token is not None:
            ours[TAG_TOKEN] = token
        folder = self._dir(self.tier)
        folder.mkdir(parents=True, exist_ok=True)
        data = folder / f"{point_id}.sqlite"
        _copy_database(self.path, data)
        sidecar = {
            "id": point_id,
            "created_at": created.isoformat(),
            "sha256": _sha256(data),
            "size": data.stat().st_size,
            "tags": {**(tags or {}), **ours},
        }
        _write_json(folder / f"{point_id}.json", sidecar)  # last: now it is a point
        return self._read(folder / f"{point_id}.json", self.tier)

    def delete(self, point: RecoveryPoint) -> None:
        """Delete *point* (sidecar first, so it is never half listed).

        Raises:
            ResourceNotFoundError: It does not exist.
            ProtectedPointError: It, or the point as stored now, is unmanaged, held or pending.
        """
        current = self.refresh(point)
        if current is None:
            message = f"{self.name}: point {point.id!r} does not exist"
            raise ResourceNotFoundError(
                message, backend=KIND, operation="delete", resource=point.id
            )
        for seen in (point, current):
            if not seen.managed or seen.held or seen.status is Status.PENDING:
                message = (
                    f"{self.name}: refused to delete {point.id!r} (unmanaged, held or pending)"
                )
                raise ProtectedPointError(message, point=current)
        folder = self._dir(point.tier)
        (folder / f"{point.id}.json").unlink()
        (folder / f"{point.id}.sqlite").unlink(missing_ok=True)

    def _set_hold(self, point: RecoveryPoint, hold: LegalHold | None) -> RecoveryPoint:
        current = self.refresh(point)
        if current is None:
            message = f"{self.name}: point {point.id!r} does not exist"
            raise ResourceNotFoundError(message, backend=KIND, operation="hold", resource=point.id)
        sidecar = self._dir(point.tier) / f"{point.id}.json"
        data = self._sidecar(sidecar) or {}
        tags = dict(data.get("tags", {}))
        if hold is None:
            tags.pop(TAG_HOLD, None)
        else:
            tags[TAG_HOLD] = hold.to_tag()
        _write_json(sidecar, {**data, "tags": tags})
        return self._read(sidecar, point.tier)

    def place_hold(self, point: RecoveryPoint, hold: LegalHold) -> RecoveryPoint:
        """Put *point* under legal *hold* (in its sidecar); return the updated point."""
        return self._set_hold(point, hold)

    def release_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Release the legal hold on *point*; return the updated point."""
        return self._set_hold(point, None)

    def copy(self, point: RecoveryPoint, destination: Destination) -> RecoveryPoint:
        """Copy *point* into the directory ``destination.store`` as tier ``destination.tier``.

        The copy is named ``<id>-<tier>`` (a re-run returns it), checked against the source's
        SHA-256, and the directory is listed from now on.
        """
        if destination.store is None:
            raise PolicyError.for_field("destination.store", "a directory", None)
        store = Path(str(destination.store))
        known = self.archives.get(destination.tier)
        if known is not None and known != store:
            raise PolicyError.for_field(
                "destination.store", f"the directory of tier {destination.tier!r}", str(store)
            )
        source = self.refresh(point)
        if source is None:
            message = f"{self.name}: point {point.id!r} does not exist"
            raise ResourceNotFoundError(message, backend=KIND, operation="copy", resource=point.id)
        self.archives[destination.tier] = store
        copy_id = f"{point.id}-{destination.tier}"
        existing = self.refresh(attrs.evolve(source, id=copy_id, tier=destination.tier))
        if existing is not None:
            return existing
        folder = self._dir(destination.tier)
        folder.mkdir(parents=True, exist_ok=True)
        data = folder / f"{copy_id}.sqlite"
        _copy_database(Path(source.location), data)
        checksum = _sha256(data)
        if checksum != source.checksum:
            data.unlink()
            message = f"{self.name}: copy of {point.id!r} does not match its SHA-256"
            raise VerificationError(message, result={"expected": source.checksum, "got": checksum})
        tags = {k: v for k, v in source.tags.items() if k != TAG_HOLD}
        sidecar = {
            "id": copy_id,
            "created_at": source.created_at.isoformat(),  # dated like its data
            "sha256": checksum,
            "size": data.stat().st_size,
            "tags": tags,
        }
        _write_json(folder / f"{copy_id}.json", sidecar)
        return self._read(folder / f"{copy_id}.json", destination.tier)

    # ----------------------------------------------------------------------------------------
    # Checks and restores

    def verify(self, point: RecoveryPoint) -> str:
        """Check *point*: its file's SHA-256 against the sidecar, then ``PRAGMA integrity_check``.

        `backuppolicy.IntegrityCheck` calls this; the returned checksum is its evidence.

        Raises:
            VerificationError: The file is missing or changed, or SQLite finds it damaged.
        """
        data = Path(point.location)
        if not data.is_file():
            message = f"{self.name}: the file of {point.id!r} is missing"
            raise VerificationError(message, result={"missing": str(data)})
        checksum = _sha256(data)
        if checksum != point.checksum:
            message = f"{self.name}: {point.id!r} changed since its backup"
            raise VerificationError(message, result={"expected": point.checksum, "got": checksum})
        try:
            found = _integrity(data)
        except sqlite3.DatabaseError as exc:
            found = f"{type(exc).__name__}: {exc}"
        if found != "ok":
            message = f"{self.name}: integrity_check of {point.id!r} failed: {found}"
            raise VerificationError(message, result={"integrity_check": found})
        return checksum

    def restore_to(self, point: RecoveryPoint, dest: str | os.PathLike[str]) -> Path:
        """Restore *point* to the new file *dest*, checked before it appears there.

        Raises:
            PolicyError: *dest* already exists (nothing is ever overwritten).
            VerificationError: The point fails `verify`, or the restored copy its integrity check.
        """
        target = Path(dest)
        if target.exists():
            raise PolicyError.for_field("dest", "a path where nothing exists yet", str(target))
        self.verify(point)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".tmp-{uuid.uuid4().hex}-{target.name}")
        try:
            _copy_database(Path(point.location), staging)
            found = _integrity(staging)
            if found != "ok":
                message = f"{self.name}: restored copy of {point.id!r} failed: {found}"
                raise VerificationError(message, result={"integrity_check": found})
            staging.rename(target)  # never replaces: checked above, and rename is atomic
        finally:
            staging.unlink(missing_ok=True)
        return target

    def plan_restore(
        self,
        *,
        point: RecoveryPoint | str | None,
        at: datetime | None,
        into: Any,
        now: datetime,
        token: str,
        **options: Any,
    ) -> RestorePlan:
        """Plan copying *point* (default: the newest) to the new file *into*; nothing is replaced.

        The default destination is ``<stem>.restored-<stamp><suffix>`` next to the database.

        Raises:
            PolicyError: A point in time (*at*) or an option was asked for, or something
                already exists at the destination.
        """
        if at is not None:
            raise PolicyError.for_field("at", "no time (a SQLite file restores points)", at)
        if options:
            raise PolicyError.for_field("plan_restore", "no option", sorted(options))
        chosen = choose_point(self, point, kinds=(POINT_KIND,))
        if into is not None and not isinstance(into, str | os.PathLike):
            raise PolicyError.for_field("into", "a file path", into)
        plan = RestorePlan(
            target=self.name,
            kind=KIND,
            source=f"backup {chosen.id}",
            destination="",
            in_place=False,
            steps=(),
            token=token,
            planned_at=now,
            data_time=chosen.created_at,
            point=chosen,
        )
        default = self.path.with_name(f"{self.path.stem}.restored-{plan.stamp}{self.path.suffix}")
        dest = Path(into if into is not None else default).expanduser().absolute()
        if dest.exists() or dest.is_symlink():
            raise PolicyError.for_field("into", "a path where nothing exists yet", str(dest))
        step = RestoreStep(
            StepAction.CREATE,
            str(dest),
            f"copy backup {chosen.id} to the new file {dest} (SHA-256 and integrity checked)",
        )
        return attrs.evolve(plan, destination=str(dest), steps=(step,))

    def observe_restore(self, plan: RestorePlan) -> Mapping[str, str]:
        """Whether something exists at *plan*'s destination (`restore_to` never writes over it)."""
        dest = Path(plan.destination)
        if dest.is_symlink():
            return {str(dest): f"a link to {dest.readlink()}"}
        if not dest.exists():
            return {str(dest): ABSENT}
        st = dest.stat()
        return {str(dest): f"a file of {st.st_size} bytes modified at {st.st_mtime_ns} ns"}

    def execute_restore(self, plan: RestorePlan, *, confirm: bool) -> RestoreOutcome:  # noqa: ARG002 - nothing is ever replaced
        """Copy the plan's point to its destination with `restore_to` (which refuses an existing file)."""
        if plan.point is None:
            raise PolicyError.for_field("plan.point", "the backup to restore", None)
        restored = self.restore_to(plan.point, plan.destination)
        checksum = _sha256(restored)
        check = RestoreCheck(
            "integrity-check",
            ok=True,
            details=f"backup {plan.point.id} restored to {restored}: integrity_check ok",
            evidence={"sha256": checksum, "integrity_check": "ok"},
        )
        return RestoreOutcome(str(restored), str(restored), checks=[check])

    @contextlib.contextmanager
    def restore(
        self, point: RecoveryPoint, into: IsolationProfile | None = None
    ) -> Iterator[RestoredResource]:
        """Restore *point* into a new temporary directory, removed on exit (even on error).

        The endpoint is the restored file's path: connect to it with `sqlite_probes`.
        """
        prefix = (into or IsolationProfile()).name_prefix
        folder = Path(tempfile.mkdtemp(prefix=prefix))
        try:
            restored = self.restore_to(point, folder / f"{point.id}.sqlite")
            yield RestoredResource(
                id=str(restored),
                kind=KIND,
                point=point,
                endpoint=str(restored),
                details={"sha256": _sha256(restored), "integrity_check": "ok"},
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def sweep_incomplete(
        self, *, older_than: timedelta = _LEFTOVER_GRACE, now: datetime | None = None
    ) -> list[str]:
        """Remove crash leftovers older than *older_than*: temporary files, files without sidecar.

        `backuppolicy.backup` calls this before each backup.
        """
        cutoff = (now or datetime.now(UTC)) - older_than
        removed: list[str] = []
        for tier in sorted(self.archives):
            folder = self._dir(tier)
            if not folder.is_dir():
                continue
            for item in sorted(folder.iterdir()):
                orphan = item.suffix == ".sqlite" and not item.with_suffix(".json").exists()
                stale = datetime.fromtimestamp(item.stat().st_mtime, UTC) < cutoff
                if (orphan or item.name.startswith(".tmp-")) and stale:
                    item.unlink(missing_ok=True)
                    removed.append(str(item))
        return removed


def sqlite_probes(table: str, rows: int) -> list[SqlProbe]:
    """Probes that prove a restored copy: ``PRAGMA integrity_check`` is ``ok`` and *table* has *rows* rows.

    Both open the restored file read-only (the restore test's endpoint is its path).
    """
    if not table.isidentifier():
        raise PolicyError.for_field("table", "a plain table name", table)
    return [
        SqlProbe("PRAGMA integrity_check", expect="ok", connect=_connect_restored),
        SqlProbe(f"select count(*) from {table}", expect=rows, connect=_connect_restored),  # noqa: S608 - an identifier, checked above
    ]


def _connect_restored(endpoint: Any) -> sqlite3.Connection:
    return _read_only(Path(str(endpoint)))
