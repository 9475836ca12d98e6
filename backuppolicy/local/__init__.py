"""Local backend: directories of configuration files and application code, archived into stores.

A `Directory` target turns a directory into a gzip-compressed tar archive with a
SHA-256 manifest of every entry, and keeps it in an `ArchiveStore`: a
`DirectoryStore` (a directory on a local server, the ``"local"`` tier) or an
`S3Store` (a bucket prefix, the ``"offsite"`` tier). Each stored backup is one
`~backuppolicy.RecoveryPoint` of kind ``"archive"``.

Layout of one point named ``bp-<target>-<UTC stamp>`` in a store:

* ``<name>.tar.gz``: the archive. Its members are ``data/`` (the directory) and,
  last, ``manifest.json`` (every entry's path, type, size, mode and SHA-256).
* ``<name>.json``: the sidecar (ownership tags, reason, token, legal hold, the
  archive's SHA-256 and size). It is written last and is the "complete" marker: an
  archive without a sidecar is an interrupted backup and lists as `Status.FAILED`.

Every file is written atomically (temporary file, fsync, rename; on S3 an object
appears only once its upload completes). Restores extract into a fresh directory,
refuse hostile archives (absolute paths, ``..``, device files, links that escape)
and check every file against the manifest.

With ``encryption=`` (a `KeySource`: `FileKeySource`, or `backuppolicy.aws.KmsDataKeys` by
the registry's ``"key-provider"`` group), the archive is encrypted before it leaves the
machine: ``BPAE`` header (the wrapped data key, never the key), then AES-256-GCM segments of
64 KiB (the STREAM construction, see `backuppolicy.local._crypt`). The sidecar's SHA-256 is of
the stored (encrypted) bytes, so copies are checked without the key; restores and `verify`
decrypt, authenticating every segment before anything is extracted.

``import backuppolicy.local`` does not import boto3 and imports nothing from
`backuppolicy.aws`: `S3Store` keeps the archive format and gets the S3 calls from the
registry's ``"s3"`` object store (`backuppolicy.aws.S3Objects`), imported when a store is
created.
"""

from backuppolicy.core.exceptions import UnsafeArchiveError
from backuppolicy.local._archive_store import ArchiveStore
from backuppolicy.local._crypt import FileKeySource, KeySource
from backuppolicy.local._directory import Directory
from backuppolicy.local._extract import (
    MAX_ARCHIVE_MEMBERS,
    MAX_EXPANDED_BYTES,
    MAX_EXPANSION_RATIO,
    MAX_MANIFEST_BYTES,
    MIN_FREE_BYTES,
)
from backuppolicy.local._format import ARCHIVE_FORMAT, MAX_SIDECAR_BYTES, ArchiveWriter
from backuppolicy.local._lease import FileLease
from backuppolicy.local._leftovers import sweep_restore_staging
from backuppolicy.local._stores import DirectoryStore, S3Store, open_store

__all__ = [
    "ARCHIVE_FORMAT",
    "MAX_ARCHIVE_MEMBERS",
    "MAX_EXPANDED_BYTES",
    "MAX_EXPANSION_RATIO",
    "MAX_MANIFEST_BYTES",
    "MAX_SIDECAR_BYTES",
    "MIN_FREE_BYTES",
    "ArchiveStore",
    "ArchiveWriter",
    "Directory",
    "DirectoryStore",
    "FileKeySource",
    "FileLease",
    "KeySource",
    "S3Store",
    "UnsafeArchiveError",
    "open_store",
    "sweep_restore_staging",
]
