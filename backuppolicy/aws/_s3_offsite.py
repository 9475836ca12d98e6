"""Copies of an S3 target's manifests in another account: the S3 side of `backuppolicy.aws._offsite`.

A copy tier of an ``s3-bucket`` target with an ``account`` keeps its manifest copies and the
versions they list in the tier's ``location.store`` (``s3://bucket/prefix``), a bucket of the
backup account. `S3OffsiteCopies` builds, per such tier, a *sibling* `~backuppolicy.aws.S3Bucket`
whose session is the tier's assumed role and whose only store is the tier's
(``stores_only``: it lists nothing of production's bucket). Every operation on such a copy then
runs with the backup account's credentials only: listing, refresh, delete (prune), holds, locks,
manifest and object reads (verify, integrity, restore test), and restore tests, which copy into
``<store prefix>restore-tests/`` of the store (the backup account's own clean room).

The copy itself streams: production reads each version with its own credentials
(``GetObject``) and the sibling writes it with the backup account's (``PutObject``, multipart
above `~backuppolicy.aws._s3_copy.STREAM_PART_SIZE`, encrypted with the tier's ``kms_key_id``).
A server-side ``CopyObject`` across accounts would need the backup role to be granted read on
production's bucket by a bucket policy (and on its KMS key): "you must have read access to the
source object and write access to the destination bucket"
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html,
https://repost.aws/knowledge-center/copy-s3-objects-account). Streaming needs no grant on either
bucket from the other account, so the tier is configured in the policy file alone, and the
copies belong to the backup account (it wrote them). The cost is that the bytes go through the
runner (``max_workers`` parts of at most 16 MiB in memory at once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backuppolicy.aws._offsite import OffsiteAccount, OffsiteCopies, account_of
from backuppolicy.aws._s3_base import KIND_MANIFEST, CopyStore, parse_store
from backuppolicy.aws._s3_pool import Requests
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import RecoveryPoint

if TYPE_CHECKING:
    import boto3
    from botocore.response import StreamingBody

    from backuppolicy.core.targets import Destination, ManifestEntry

__all__ = ["S3OffsiteCopies"]

# Operations whose first argument is a point: run by the backend of the account that holds it.
_BY_POINT = (
    "read_manifest",
    "manifest_entries",
    "lock_point",
    "enforce_hold",
    "release_enforcement",
    "hold_gaps",
)
# Operations whose first argument is a bucket: an off-site store's is read by its account.
_BY_BUCKET = ("object_version_head", "open_object_version", "object_head", "public_access_block")


class S3OffsiteCopies(OffsiteCopies):
    """Mixin of `~backuppolicy.aws.S3Bucket`: its copy tiers in other accounts (see module)."""

    offsite_stores: Mapping[str, str] = {}
    """The store URL of each tier in another account (tier name -> ``s3://bucket/prefix``)."""

    def _sibling_of(self, account: OffsiteAccount, session: boto3.Session) -> Any:
        url = self.offsite_stores.get(account.tier)
        if not url:
            raise PolicyError.for_field(
                f"tiers[{account.tier}].location.store",
                "the s3://bucket/prefix of the backup account's bucket",
                url,
            )
        store = CopyStore(
            *parse_store(url, field=f"tiers[{account.tier}].location.store"), account.tier
        )
        sibling = self._sibling(session, account.region, store)  # type: ignore[attr-defined]
        sibling.scratch_store = store
        sibling.stores_only = True
        return sibling

    def _backend_of(self, point: RecoveryPoint) -> Any | None:
        account_id = account_of(point)
        for account in self.offsite:
            if account.account_id == account_id and account.tier == point.tier:
                return self.offsite_backend(account)
        return super()._backend_of(point)

    def _backend_of_bucket(self, bucket: str) -> Any | None:
        for account in self.offsite:
            url = self.offsite_stores.get(account.tier, "")
            if url and parse_store(url, field="store")[0] == bucket:
                return self.offsite_backend(account)
        return None

    def copy(
        self, point: RecoveryPoint, destination: Destination, *, max_workers: int = 8
    ) -> RecoveryPoint:
        """Copy *point*; into a tier of another account: stream it into the tier's store there.

        Raises:
            PolicyError: The destination names an account that no tier of the target reaches
                with a role, or another store or region than the tier's; *point* is not a
                manifest of the target's own bucket.
        """
        own = super(OffsiteCopies, self)
        if destination.account is None or destination.account == self._account():  # type: ignore[attr-defined]
            return own.copy(point, destination, max_workers=max_workers)  # type: ignore[attr-defined,no-any-return]
        account = self.offsite_account_for(destination)
        sibling = self.offsite_backend(account)
        store: CopyStore = sibling.scratch_store
        if destination.store is not None and parse_store(
            destination.store, field="destination.store"
        ) != (store.bucket, store.prefix):
            raise PolicyError.for_field(
                "destination.store", f"{store.url} (the tier's)", destination.store
            )
        if point.kind != KIND_MANIFEST or point.details.get("store") is not None:
            raise PolicyError.for_field(
                "point",
                "a manifest of the target's own bucket (only manifests are copied to another "
                "account, and copies are not copied again)",
                point.id,
            )
        loc = self._locate(point, KIND_MANIFEST)  # type: ignore[attr-defined]
        return sibling._copy_manifest(  # type: ignore[no-any-return]  # noqa: SLF001 - same kind
            point,
            loc,
            store=store,
            region=sibling._store_region(store.bucket),  # noqa: SLF001 - same kind
            dest_key=self._relocate(loc.key, store.prefix),  # type: ignore[attr-defined]
            requests=Requests(),
            max_workers=max_workers,
            source=self,
            encryption={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": account.kms_key_id},
        )

    def open_backed_up(self, entry: ManifestEntry) -> StreamingBody:
        """The backed-up version of *entry*, read by the account whose bucket holds it."""
        if entry.source is not None:
            backend = self._backend_of_bucket(entry.source[0])
            if backend is not None:
                return backend.open_backed_up(entry)  # type: ignore[no-any-return]
        return super().open_backed_up(entry)  # type: ignore[misc,no-any-return]


def _by_point(name: str) -> Any:
    def routed(self: S3OffsiteCopies, point: RecoveryPoint, *args: Any, **kwargs: Any) -> Any:
        backend = self._backend_of(point)
        if backend is not None:
            return getattr(backend, name)(point, *args, **kwargs)
        return getattr(super(S3OffsiteCopies, self), name)(point, *args, **kwargs)

    routed.__name__ = name
    routed.__doc__ = f"``{name}`` of *point*, by the account that holds it."
    return routed


def _by_bucket(name: str) -> Any:
    def routed(self: S3OffsiteCopies, bucket: str, *args: Any, **kwargs: Any) -> Any:
        backend = self._backend_of_bucket(bucket)
        if backend is not None:
            return getattr(backend, name)(bucket, *args, **kwargs)
        return getattr(super(S3OffsiteCopies, self), name)(bucket, *args, **kwargs)

    routed.__name__ = name
    routed.__doc__ = f"``{name}`` of *bucket*, by the account that owns it (an off-site store)."
    return routed


for _name in _BY_POINT:
    setattr(S3OffsiteCopies, _name, _by_point(_name))
for _name in _BY_BUCKET:
    setattr(S3OffsiteCopies, _name, _by_bucket(_name))
