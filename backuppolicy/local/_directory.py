"""The `Directory` target: backups of a directory as archives, listing, deletes, holds, copies.

Its restores (`Directory.restore`, `Directory.restore_to` and the `Restorable` protocol) are
in `backuppolicy.local._directory_restore`.
"""

from __future__ import annotations

import fnmatch
import glob
import gzip
import hashlib
import io
import json
import os
import re
import socket
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableSet, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from backuppolicy.core.exceptions import BackendError, PolicyError, ResourceNotFoundError
from backuppolicy.core.model import (
    TAG_POLICY,
    TAG_REASON,
    TAG_TARGET,
    TAG_TIER,
    TAG_TOKEN,
    LegalHold,
    RecoveryPoint,
    Status,
    ensure_aware,
    is_owned,
)
from backuppolicy.core.naming import name_stamp
from backuppolicy.core.targets import Destination, IsolationProfile, SweptResource
from backuppolicy.local._archive_store import ArchiveStore, refuse_protected
from backuppolicy.local._crypt import (
    SCHEME,
    EncryptingSink,
    KeySource,
    decrypt_to,
    key_source_from,
)
from backuppolicy.local._directory_restore import DirectoryRestores
from backuppolicy.local._format import (
    ARCHIVE_FORMAT,
    DATA,
    MANIFEST,
    ArchiveWriter,
    HashingReader,
    HashingSink,
    archive_key,
    link_escapes,
    manifest_mode,
    sidecar_key,
)
from backuppolicy.local._leftovers import (
    LEFTOVER_GRACE,
    is_abandoned_leftover,
    remove_abandoned_leftover,
)
from backuppolicy.local._stores import DirectoryStore, open_store

if TYPE_CHECKING:
    from backuppolicy.core.durations import Duration
    from backuppolicy.core.locks import PointLock
    from backuppolicy.core.policy import Policy, TargetSpec

_GZIP_LEVEL = 6
DECLARED_VOLUME = "declared-volume"
"""A tier location's ``encryption``: its directory store is on an encrypted volume (unverified)."""
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    """Whether *rel* or one of its parent directories matches one of *patterns*."""
    parts = rel.split("/")
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        base = parts[depth - 1]
        for pattern in patterns:
            if fnmatch.fnmatchcase(prefix, pattern):
                return True
            if "/" not in pattern and fnmatch.fnmatchcase(base, pattern):
                return True
    return False


class _Entry:
    __slots__ = ("kind", "link", "path", "rel", "st")

    def __init__(self, rel: str, path: str, st: os.stat_result) -> None:
        self.rel = rel
        self.path = path
        self.st = st
        self.link = str(Path(path).readlink()) if stat.S_ISLNK(st.st_mode) else ""
        if stat.S_ISDIR(st.st_mode):
            self.kind = "dir"
        elif stat.S_ISREG(st.st_mode):
            self.kind = "file"
        elif stat.S_ISLNK(st.st_mode):
            self.kind = "symlink"
        else:
            self.kind = "special"


def _tarinfo(name: str, st: os.stat_result, kind: str, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = int(st.st_mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = stat.S_IMODE(st.st_mode) & 0o777
    if kind == "dir":
        info.type = tarfile.DIRTYPE
    elif kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = link
        info.mode = 0o777
    else:
        info.type = tarfile.REGTYPE
        info.size = st.st_size
    return info


def _default_clock() -> datetime:
    return datetime.now(UTC)


class Directory(DirectoryRestores):
    r"""A directory of configuration files or application code, backed up as archives.

    A backup is a gzip tar archive of the directory (``data/``) and a manifest
    (``manifest.json``) of every entry's path, type, size, mode and SHA-256, written
    atomically into *store*. Symbolic links are stored as links, never followed; links
    that point outside the directory are listed in the manifest (``external_links``)
    but not archived, so every archive can be restored safely. Sockets, pipes and
    device files are skipped and listed under ``skipped``.

    *include* and *exclude* are glob patterns on paths relative to the directory
    (``fnmatch``: ``*`` also matches ``/``); a pattern without ``/`` also matches a
    base name at any depth. An entry is selected when it or a parent matches an
    include pattern (or *include* is empty) and neither it nor a parent matches an
    exclude pattern. A `DirectoryStore` inside the directory is always excluded.

    Example:
        >>> import pathlib, tempfile
        >>> src = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (src / "app.conf").write_text("port = 8080\n")
        >>> etc = Directory(src, name="app-config", store=DirectoryStore(tempfile.mkdtemp()))
        >>> point = etc.create_backup(reason="before upgrade", token="change-42")
        >>> point.kind, point.tier, point.checksum.startswith("sha256:")
        ('archive', 'local', True)
        >>> etc.create_backup(token="change-42") == point
        True
        >>> with etc.restore(point) as restored:
        ...     print(pathlib.Path(restored.endpoint, "app.conf").read_text(), end="")
        port = 8080

    Attributes:
        path: The directory backed up.
        name: Name of the target in the policy (default: the directory's base name).
        include: Glob patterns of entries to back up (empty: everything).
        exclude: Glob patterns of entries to leave out.
        store: Where new backups go (its tier is the target's source tier).
        policy: Name of the policy that owns the points (the ownership tag).
        store_options: Keyword arguments for `S3Store` when a store is given as an ``s3://``
            URL (``session=``, ``endpoint_url=``, ``retry=`` ...). A copy's
            `~backuppolicy.core.targets.Destination` adds its ``kms_key_id`` and ``region``.

    *encryption* is a `~backuppolicy.local.FileKeySource` or `backuppolicy.aws.KmsDataKeys`
    (any `KeySource`): archives are then encrypted before they leave this machine (AES-256-GCM
    in 64 KiB authenticated segments under a fresh data key per archive, wrapped by the key; see
    `backuppolicy.local`), and restores, `verify` and integrity checks decrypt them. Archives
    written without encryption still restore. *previous_keys* decrypt archives written before a
    key rotation. Without it, a `DirectoryStore` made with ``declared_encryption="volume"`` (a
    tier location's ``encryption: declared-volume``) declares that its disk is encrypted:
    checks report such points as declared, not verified.

    Other arguments: *stores* are more stores to look in (copies made earlier); *clock*
    returns the current time (timezone-aware) and stamps the archive names.
    """

    kind: ClassVar[str] = "directory"
    """Registered kind of the target."""

    @classmethod
    def from_spec(
        cls,
        spec: TargetSpec,
        policy: Policy,
        *,
        session: object = None,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> Directory:
        """The target of *spec*: its ``path``, ``include`` and ``exclude``, its stores opened.

        Archives go to the ``store`` of the first tier of *spec* (a directory or an ``s3://``
        URL, opened with *session*, *endpoint_url* and *region*); the stores of the copy tiers
        are opened too, so their copies are listed (due checks, pruning).

        A copy tier with an ``account`` keeps its copies in the ``s3://`` store of that
        account: the store makes every call with the tier's role (assumed from *session*),
        encrypts with the tier's ``location.kms_key_id`` and reads the tier's region.

        Raises:
            PolicyError: The first tier names no ``store`` or names an ``account``, or a copy
                tier with an ``account`` has no ``s3://`` store.
        """
        tiers = policy.tiers_for(spec)
        if tiers and tiers[0].account is not None:
            raise PolicyError.for_field(
                f"tiers[{tiers[0].name}].account",
                f"no account for the first tier of directory target {spec.name!r} (new "
                "archives are written where the directory is; copy tiers may name an account)",
                tiers[0].account.role_arn,
            )
        for tier in tiers[1:]:
            store_url = tier.location.get("store")
            if tier.account is not None and not str(store_url or "").startswith("s3://"):
                raise PolicyError.for_field(
                    f"tiers[{tier.name}].location.store",
                    f"an s3:// URL of a bucket in account {tier.account.account_id} (copies of "
                    f"directory target {spec.name!r} in another account go to S3)",
                    store_url,
                )
        url = tiers[0].location.get("store") if tiers else None
        if not url:
            raise PolicyError.for_field(
                f"tiers[{tiers[0].name if tiers else 'local'}].location.store",
                f"a directory or s3:// URL where archives of directory target {spec.name!r} are kept",
                url,
            )

        declared = {t.name for t in tiers if t.location.get("encryption") == DECLARED_VOLUME}
        accounts = {t.name: t for t in tiers if t.account is not None}

        def store(url: str, tier: str) -> ArchiveStore:
            offsite = accounts.get(tier)
            if offsite is not None:  # a bucket of the backup account, with its role only
                return open_store(
                    url,
                    tier=tier,
                    session=session,
                    endpoint_url=endpoint_url,
                    region=str(offsite.location["region"]),
                    kms_key_id=str(offsite.location["kms_key_id"]),
                    account=offsite.account,
                )
            if url.startswith("s3://"):
                return open_store(
                    url, tier=tier, session=session, endpoint_url=endpoint_url, region=region
                )
            if tier in declared:
                return open_store(url, tier=tier, declared_encryption="volume")
            return open_store(url, tier=tier)

        settings = spec.settings
        kms = {"session": session, "endpoint_url": endpoint_url, "region": region}
        encryption: KeySource | None = None
        previous: list[KeySource] = []
        chosen = settings.get("encryption")
        if isinstance(chosen, Mapping):
            path = f"targets[{spec.name}].settings.encryption"
            encryption = key_source_from(chosen.get("key"), f"{path}.key", kms_options=kms)
            previous = [
                key_source_from(v, f"{path}.previous_keys[{i}]", kms_options=kms)
                for i, v in enumerate(chosen.get("previous_keys", ()))
            ]
        return cls(
            settings["path"],
            encryption=encryption,
            previous_keys=previous,
            store=store(url, tiers[0].name),
            stores=[
                store(t.location["store"], t.name) for t in tiers[1:] if t.location.get("store")
            ],
            store_options={"session": session, "endpoint_url": endpoint_url},
            exclude=tuple(settings.get("exclude", ())),
            include=tuple(settings.get("include", ())),
            name=spec.name,
            policy=policy.name,
        )

    @classmethod
    def iam_actions(cls, spec: TargetSpec) -> dict[str, list[dict[str, object]]]:  # noqa: ARG003
        """None of its own: `backuppolicy.aws.iam_policy` grants its stores and keys.

        Its ``s3://`` stores of this account and its KMS keys (`iam_data_keys`).
        """
        return {}

    @classmethod
    def iam_data_keys(cls, spec: TargetSpec) -> dict[str, list[str]]:
        """The KMS keys of the archives' encryption (``kms:`` keys of ``settings.encryption``).

        ``{"encrypt": [key], "decrypt": [key, *previous keys]}``, each a key id, key ARN, alias
        name or alias ARN; empty without KMS keys. `backuppolicy.aws.iam_policy` grants
        ``kms:GenerateDataKey`` on the first (backups) and ``kms:Decrypt`` on all (checks,
        restores).
        """
        chosen = spec.settings.get("encryption")
        if not isinstance(chosen, Mapping):
            return {}

        def kms(value: object) -> list[str]:
            text = value if isinstance(value, str) else ""
            return [text.removeprefix("kms:")] if text.startswith("kms:") and text[4:] else []

        current = kms(chosen.get("key"))
        previous = [k for v in chosen.get("previous_keys", ()) or () for k in kms(v)]
        if not current and not previous:
            return {}
        return {"encrypt": current, "decrypt": list(dict.fromkeys([*current, *previous]))}

    @classmethod
    def iam_offsite_actions(cls, spec: TargetSpec) -> dict[str, dict[str, list[dict[str, object]]]]:  # noqa: ARG003
        """The statements for copy tiers in another account, per side (``production``, ``backup``).

        Production needs nothing there (it assumes the tier's role, which `backuppolicy.aws.iam`
        grants); the backup account's role writes, lists, reads and prunes the archives
        and sidecars in the tier's store (``${bp:store}``), with the tier's key
        (``${bp:tier-key}``). The placeholders are those of `backuppolicy.aws.iam_policy`.
        """
        bucket = "arn:${bp:partition}:s3:::${bp:store-bucket}"
        store = "arn:${bp:partition}:s3:::${bp:store}*"
        key = "${bp:tier-key}"
        every = ("backup", "prune", "verify", "restore-test")
        backup: dict[str, list[dict[str, object]]] = {
            workflow: [
                {"Action": ["s3:ListBucket"], "Resource": [bucket]},
                {"Action": ["s3:GetObject"], "Resource": [store]},
                {"Action": ["kms:Decrypt"], "Resource": [key]},
            ]
            for workflow in every
        }
        backup["backup"] += [
            {
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                "Resource": [store],
            },
            {"Action": ["kms:GenerateDataKey"], "Resource": [key]},
        ]
        backup["prune"] += [{"Action": ["s3:DeleteObject"], "Resource": [store]}]
        return {"production": {}, "backup": backup}

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        store: ArchiveStore | str | os.PathLike[str],
        policy: str = "default",
        stores: Iterable[ArchiveStore] = (),
        store_options: Mapping[str, Any] | None = None,
        clock: Callable[[], datetime] | None = None,
        encryption: KeySource | None = None,
        previous_keys: Iterable[KeySource] = (),
    ) -> None:
        self.path = Path(path).expanduser().absolute()
        sources: tuple[object, ...] = (encryption, *previous_keys)
        for index, source in enumerate(sources):
            if source is not None and not isinstance(source, KeySource):
                where = "encryption" if index == 0 else f"previous_keys[{index - 1}]"
                raise PolicyError.for_field(
                    where, "a KeySource (FileKeySource, backuppolicy.aws.KmsDataKeys)", source
                )
        self.encryption = encryption
        self.previous_keys = tuple(previous_keys)
        name = self.path.name if name is None else name
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise PolicyError.for_field(
                "name",
                "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
                name,
                hint="Pass name= explicitly.",
            )
        self._name = name
        self.include = _patterns("include", include)
        self.exclude = _patterns("exclude", exclude)
        if not isinstance(policy, str) or not policy:
            raise PolicyError.for_field("policy", "a non-empty policy name", policy)
        self.policy = policy
        self.store_options = dict(store_options or {})
        self.store = self._open(store, tier="local")
        self._stores: dict[str, ArchiveStore] = {self.store.url: self.store}
        for extra in stores:
            self._stores.setdefault(extra.url, extra)
        self._clock = clock or _default_clock

    def __repr__(self) -> str:
        return (
            f"<backuppolicy.local.Directory(name={self._name!r}, path={str(self.path)!r}, "
            f"stores={len(self._stores)})>"
        )

    @property
    def name(self) -> str:
        """Name of the target (the ``target`` of its points)."""
        return self._name

    @property
    def stores(self) -> tuple[ArchiveStore, ...]:
        """Every store this target looks in: its own, the *stores* given, copy destinations."""
        return tuple(self._stores.values())

    # -- helpers -----------------------------------------------------------------------

    def _open(
        self, store: ArchiveStore | str | os.PathLike[str], *, tier: str, **options: str
    ) -> ArchiveStore:
        """A store object as is; an ``s3://`` URL with *store_options* and *options*; a path."""
        if isinstance(store, (str, os.PathLike)) and os.fspath(store).startswith("s3://"):
            return open_store(store, tier=tier, **{**self.store_options, **options})
        return open_store(store, tier=tier)

    def _owns(self, point: RecoveryPoint) -> bool:
        return is_owned(point.tags, policy=self.policy, target=self.name)

    def _adopt(self, point: RecoveryPoint) -> RecoveryPoint:
        return point.evolve(managed=self._owns(point))

    def _store_for(self, point: RecoveryPoint) -> ArchiveStore:
        store = self._stores.get(point.location)
        if store is None:
            known = ", ".join(sorted(self._stores))
            raise PolicyError.for_field(
                "point.location",
                f"the URL of one of the stores of {self.name!r} ({known})",
                point.location,
            )
        return store

    def _free_name(self, stamp: str) -> str:
        base = f"bp-{self.name}-{stamp}"
        name, counter = base, 1
        while self.store.exists(sidecar_key(name)) or self.store.exists(archive_key(name)):
            counter += 1
            name = f"{base}-{counter}"
        return name

    def _collect(self) -> list[_Entry]:
        skip = {
            store.path.resolve()
            for store in self._stores.values()
            if isinstance(store, DirectoryStore)
        }
        found: list[_Entry] = []

        def walk(directory: str, rel: str) -> None:
            for item in sorted(os.scandir(directory), key=lambda e: e.name):
                child = f"{rel}/{item.name}" if rel else item.name
                if self.exclude and _matches(child, self.exclude):
                    continue
                entry = _Entry(child, item.path, item.stat(follow_symlinks=False))
                if entry.kind == "dir" and Path(item.path).resolve() in skip:
                    continue
                found.append(entry)
                if entry.kind == "dir":
                    walk(item.path, child)

        walk(os.fspath(self.path), "")
        if not self.include:
            return found
        chosen = {e.rel for e in found if e.kind != "dir" and _matches(e.rel, self.include)}
        chosen |= {e.rel for e in found if e.kind == "dir" and _matches(e.rel, self.include)}
        parents = {
            "/".join(rel.split("/")[:i]) for rel in chosen for i in range(1, rel.count("/") + 1)
        }
        return [e for e in found if e.rel in chosen or e.rel in parents]

    def _write_archive(
        self, writer: ArchiveWriter, entries: list[_Entry], head: Mapping[str, object]
    ) -> tuple[str, int, dict[str, Any]]:
        root_stat = self.path.stat()
        links = {e.rel: e.link for e in entries if e.kind == "symlink"}
        external: set[str] = set()
        changed = True
        while changed:  # dropping an escaping link can make another one escape
            changed = False
            for rel, target in sorted(links.items()):
                if link_escapes(rel, target, links):
                    external.add(rel)
                    del links[rel]
                    changed = True
        manifest_entries: list[dict[str, object]] = []
        skipped: list[dict[str, str]] = []
        external_links: list[dict[str, str]] = []
        total = 0
        sink = HashingSink(writer)
        sealed = EncryptingSink(sink, self.encryption) if self.encryption is not None else None
        with (
            gzip.GzipFile(
                fileobj=sealed or sink, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0
            ) as gz,
            tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            tar.addfile(_tarinfo(DATA, root_stat, "dir"))
            for entry in entries:
                member = f"{DATA}/{entry.rel}"
                if entry.kind == "special":
                    skipped.append({"path": entry.rel, "reason": "not a file, directory or link"})
                elif entry.kind == "symlink" and entry.rel in external:
                    external_links.append({"path": entry.rel, "target": entry.link})
                elif entry.kind == "symlink":
                    tar.addfile(_tarinfo(member, entry.st, "symlink", entry.link))
                    manifest_entries.append(
                        {"path": entry.rel, "type": "symlink", "target": entry.link}
                    )
                elif entry.kind == "dir":
                    tar.addfile(_tarinfo(member, entry.st, "dir"))
                    manifest_entries.append(
                        {"path": entry.rel, "type": "dir", "mode": manifest_mode(entry.st.st_mode)}
                    )
                else:
                    digest = self._add_file(tar, member, entry)
                    total += entry.st.st_size
                    manifest_entries.append(
                        {
                            "path": entry.rel,
                            "type": "file",
                            "size": entry.st.st_size,
                            "mode": manifest_mode(entry.st.st_mode),
                            "sha256": digest,
                        }
                    )
            manifest = {
                **head,
                "format": ARCHIVE_FORMAT,
                "root": {"mode": manifest_mode(root_stat.st_mode)},
                "entries": manifest_entries,
                "external_links": external_links,
                "skipped": skipped,
                "totals": {"entries": len(manifest_entries), "file_bytes": total},
            }
            body = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8") + b"\n"
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(body), 0o644, int(root_stat.st_mtime)
            tar.addfile(info, io.BytesIO(body))
        if sealed is not None:
            sealed.finish()
        summary = {
            "entries": len(manifest_entries),
            "file_bytes": total,
            "sha256": hashlib.sha256(body).hexdigest(),
            "external_links": len(external_links),
            "skipped": len(skipped),
        }
        return sink.hexdigest(), sink.size, summary

    def _add_file(self, tar: tarfile.TarFile, member: str, entry: _Entry) -> str:
        try:
            with Path(entry.path).open("rb") as handle:
                reader = HashingReader(handle)
                tar.addfile(_tarinfo(member, entry.st, "file"), reader)
        except OSError as exc:
            msg = f"{self.name}: cannot archive {entry.path!r}: {exc} (changed or unreadable during the backup)"
            raise BackendError(
                msg, backend=self.name, operation="create_backup", resource=entry.path
            ) from exc
        return reader.hexdigest()

    # -- BackupTarget ------------------------------------------------------------------

    def create_backup(
        self,
        *,
        reason: str = "scheduled",
        tags: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> RecoveryPoint:
        """Archive the directory into the store and return the completed point.

        The same *token* returns the existing point instead of making a new one. The point is
        named ``bp-<target>-<stamp>``: the slot of a scheduled backup, the time a manual one
        was taken (the rule of `backuppolicy.core.naming`), with ``-2``, ``-3`` … when the
        name is taken.

        Raises:
            ResourceNotFoundError: The directory does not exist.
            BackendError: A file could not be read, or the store failed; nothing complete
                was written.
        """
        if not isinstance(reason, str) or not reason:
            raise PolicyError.for_field("reason", "a non-empty string", reason)
        if token is not None:
            for point in self.store.list_points(prefix=f"bp-{self.name}-"):
                if point.tags.get(TAG_TOKEN) == token and self._owns(point):
                    return self._adopt(point)
        now = ensure_aware(self._clock(), field="clock()").astimezone(UTC)
        if not self.path.is_dir():
            msg = f"{self.name}: directory {str(self.path)!r} does not exist"
            raise ResourceNotFoundError(
                msg, backend=self.name, operation="create_backup", resource=str(self.path)
            )
        name = self._free_name(name_stamp(token, now))
        point_tags = dict(tags or {})
        point_tags.update(
            {
                TAG_POLICY: self.policy,
                TAG_TARGET: self.name,
                TAG_REASON: reason,
                TAG_TIER: self.store.tier,
            }
        )
        if token is not None:
            point_tags[TAG_TOKEN] = token
        source = {"path": str(self.path), "host": socket.gethostname()}
        head = {"target": self.name, "created_at": now.isoformat(), "source": source}
        entries = self._collect()
        with self.store.open_writer(archive_key(name)) as writer:
            digest, size, summary = self._write_archive(writer, entries, head)
        sidecar = {
            "format": ARCHIVE_FORMAT,
            "id": name,
            "target": self.name,
            "created_at": now.isoformat(),
            "status": Status.COMPLETED.value,
            "tags": point_tags,
            "archive": {
                "key": archive_key(name),
                "sha256": digest,
                "size": size,
                "compression": "gzip",
            },
            "manifest": summary,
            "source": source,
            "encryption": writer.encryption,
            **self._encryption_record(),
        }
        # The sidecar is the "complete" marker: written last, atomically.
        self.store.write_json(sidecar_key(name), sidecar)
        return self._adopt(self.store.point_from_sidecar(sidecar))

    def _encryption_record(self) -> dict[str, object]:
        """The sidecar's record of client-side encryption (a key reference, never a key)."""
        if self.encryption is not None:
            return {"client_encryption": {"scheme": SCHEME, "key": self.encryption.reference}}
        return {}

    @property
    def key_sources(self) -> tuple[KeySource, ...]:
        """The keys that decrypt this target's archives: the current one, then *previous_keys*."""
        current = (self.encryption,) if self.encryption is not None else ()
        return (*current, *self.previous_keys)

    def list_points(self) -> Iterator[RecoveryPoint]:
        """Stream the points of this target in every known store (incomplete ones as FAILED)."""
        for store in self._stores.values():
            for point in store.list_points(prefix=f"bp-{self.name}-"):
                if point.target == self.name:
                    yield self._adopt(point)

    def refresh(self, point: RecoveryPoint) -> RecoveryPoint | None:
        """Re-read *point* from its store (``None`` if it is gone)."""
        current = self._store_for(point).refresh(point)
        return None if current is None else self._adopt(current)

    def delete(self, point: RecoveryPoint) -> None:
        """Delete *point* (sidecar first, then archive) after re-reading it.

        Raises:
            ProtectedPointError: The point is held, pending, or not owned by this target and policy.
            ResourceNotFoundError: The point does not exist.
        """
        current = self.refresh(point)
        if current is None:
            msg = f"{self.name}: delete: point {point.id!r} does not exist in {point.location}"
            raise ResourceNotFoundError(
                msg, backend=self.name, operation="delete", resource=point.id
            )
        for candidate in (point, current):
            refuse_protected(candidate, self.name)
        self._store_for(point).delete_point(current)

    def place_hold(self, point: RecoveryPoint, hold: LegalHold) -> RecoveryPoint:
        """Place a legal *hold* on *point* (recorded in its sidecar); return the updated point."""
        return self._adopt(self._store_for(point).place_hold(point, hold))

    def release_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Release the legal hold on *point*; return the updated point."""
        return self._adopt(self._store_for(point).release_hold(point))

    def sweep_incomplete(
        self, *, older_than: timedelta = LEFTOVER_GRACE, now: datetime | None = None
    ) -> list[str]:
        """Remove this target's crash leftovers from every store it knows; `backup` calls it.

        Leftovers are archives without a sidecar (listed as FAILED until then), ``.tmp-*``
        files and point locks, last modified more than *older_than* (default a day) before
        *now* (default the wall clock, which stamps the files) and not locked by a running
        job. Other targets' leftovers in a shared store are left to their own runs.

        Returns:
            The removed objects, as ``<store URL>/<key>``.
        """
        removed: list[str] = []
        for store in self._stores.values():
            found = store.sweep_incomplete(older_than=older_than, now=now, target=self.name)
            removed.extend(f"{store.url.rstrip('/')}/{key}" for key in found)
        return removed

    @classmethod
    def sweep_restore_tests(
        cls,
        isolation: IsolationProfile,
        *,
        before: datetime,
        dry_run: bool,
        seen: MutableSet[str],
        temp_dir: str | os.PathLike[str] | None = None,
    ) -> list[SweptResource]:
        """Remove restore-test directories (``<temp_dir>/<name_prefix>*``) left before *before*.

        Only directories a restore test made (our marker) and left (unlocked) go; never a link.
        A class method (`Sweepable`): the temporary directory is shared by every `Directory`.
        """
        base = Path(temp_dir) if temp_dir is not None else Path(tempfile.gettempdir())
        scope = f"directory:{base.absolute()}"
        swept: list[SweptResource] = []
        if scope in seen or not base.is_dir():
            return swept
        seen.add(scope)
        for path in sorted(base.glob(f"{glob.escape(isolation.name_prefix)}*")):
            if not is_abandoned_leftover(path, before=before):
                continue

            def remove(path: Path = path) -> None:
                if remove_abandoned_leftover(path, before=before):  # re-checked under its lock
                    return
                where = {"backend": "restore-test-sweeper", "operation": "rmtree"}
                if not os.path.lexists(path):
                    raise ResourceNotFoundError(
                        f"{path}: already gone", resource=str(path), **where
                    )
                msg = f"{path}: in use again or no longer ours; left in place"
                raise BackendError(msg, resource=str(path), **where)

            created = datetime.fromtimestamp(path.lstat().st_mtime, tz=UTC)
            swept.append(
                SweptResource.sweep(
                    "directory", str(path), created, None, dry_run=dry_run, delete=remove
                )
            )
        return swept

    def verify(self, point: RecoveryPoint) -> str:
        """Re-read *point*'s archive and check its SHA-256 (see `ArchiveStore.verify_point`).

        An encrypted archive is also decrypted, streaming, so every segment is authenticated
        with the key (nothing is written).

        Raises:
            VerificationError: The archive does not match its checksum.
            DecryptionError: Wrong key, or an encrypted archive that was tampered or truncated.
        """
        store = self._store_for(point)
        checksum = store.verify_point(point)
        if point.details.get("client_encryption"):
            with store.open_reader(archive_key(point.id)) as reader:
                decrypt_to(
                    reader, _Discard(), self.key_sources, f"{store.url}: archive {point.id!r}"
                )
        return checksum

    def lock_point(
        self,
        point: RecoveryPoint,
        lock: PointLock,
        *,
        cool_off: Duration | None = None,  # noqa: ARG002 - S3 Object Lock has no cool-off
    ) -> RecoveryPoint:
        """Lock *point* below the library: S3 Object Lock retention on its archive and sidecar.

        Only points in an `S3Store` whose bucket has Object Lock can be locked.

        Raises:
            PolicyError: *point* is in a store that cannot lock (a directory), or the lock
                has no expiry.
        """
        store = self._store_for(point)
        locker = getattr(store, "lock_point", None)
        if locker is None:
            raise PolicyError.for_field(
                f"tiers[{point.tier}].lock",
                f"none for a tier whose store {store.url} is a directory (only s3:// stores "
                "with Object Lock lock archives)",
                lock.mode,
            )
        return self._adopt(locker(point, lock))

    def copy(self, point: RecoveryPoint, destination: Destination) -> RecoveryPoint:
        """Copy *point* into ``destination.store`` (a store or a URL), streaming, then verify it.

        With ``destination.account`` the store must be one this target opened with that
        account's role (a copy tier with an ``account``, see `from_spec`): the archive is
        read with the caller's credentials and written with the backup account's only.

        The destination store is remembered: `list_points`, `refresh`, `delete` and
        `restore` look there from now on.

        Raises:
            PolicyError: No destination store, a tier that differs from the store's, the
                point's own store, or an account that the store is not reached as.
            VerificationError: The copy's SHA-256 differs; the bad copy was removed.
        """
        if destination.store is None:
            raise PolicyError.for_field("destination.store", "an ArchiveStore or a store URL", None)
        options: dict[str, str] = {}
        if destination.kms_key_id is not None:
            options["kms_key_id"] = destination.kms_key_id
        if destination.region is not None:
            options["region"] = destination.region
        target = self._open(destination.store, tier=destination.tier, **options)
        target = self._stores.get(target.url, target)
        if destination.account is not None:
            held_by = getattr(getattr(target, "account", None), "account_id", None)
            if held_by != destination.account:
                raise PolicyError.for_field(
                    "destination.account",
                    f"the account of a store of {self.name!r} opened with that account's role "
                    f"(store {target.url} is reached as {held_by or 'the caller'}; build the "
                    "target with from_spec, or pass an S3Store with account=)",
                    destination.account,
                )
        if target.tier != destination.tier:
            raise PolicyError.for_field(
                "destination.tier", f"the store's tier {target.tier!r}", destination.tier
            )
        source = self._store_for(point)
        if target.url == source.url:
            raise PolicyError.for_field(
                "destination.store",
                f"a store other than the point's own ({source.url})",
                target.url,
            )
        copied = source.copy_point(point, target, name=f"{point.id}-{destination.tier}")
        self._stores.setdefault(target.url, target)
        return self._adopt(copied)


class _Discard:
    def write(self, data: bytes, /) -> int:
        return len(data)


def _patterns(field: str, values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise PolicyError.for_field(field, "a list of glob patterns", values)
    result = []
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value.strip("/"):
            raise PolicyError.for_field(f"{field}[{index}]", "a non-empty glob pattern", value)
        result.append(value.strip("/"))
    return tuple(result)
