"""S3 buckets as a backup target: versions as recovery points, retention, point-in-time restore.

S3 *versioning* is the backup mechanism: every overwrite or delete of an object under the
target's prefix leaves the previous version behind as a *noncurrent* version. `S3Bucket`:

* checks and enables versioning, and reads MFA delete, Object Lock, default encryption and
  the public access block (`S3Bucket.settings`) for verification;
* streams the versions under the prefix as `RecoveryPoint` objects (kind ``"s3-version"``,
  id ``"<key>@<version id>"``), with one ``ListObjectVersions`` request per 1000 entries;
* plans noncurrent-version retention **per key** with any retention rule
  (`S3Bucket.noncurrent_retention_plan`) and applies it with ``DeleteObjects`` in batches of at
  most 1000 (`S3Bucket.apply_noncurrent_retention`), or compiles it to a lifecycle rule that
  lets AWS do the same (`S3Bucket.noncurrent_lifecycle_rule`);
* places and reads legal holds through S3 Object Lock;
* records a *manifest* on `S3Bucket.create_backup`: a small JSON-lines object listing the
  current version of every key, a restorable point in time;
* restores the prefix to any time T (`S3Bucket.restore_to_time`) into another bucket or
  prefix, or in place, with server-side copies and bounded concurrency;
* copies manifests (and the versions they list) into *copy stores* (other buckets, other
  regions) and lists those copies as points of their tier (``copy_stores=``), so off-site
  copies are refreshed, pruned, restored and verified like the source's manifests.

`S3Bucket` is composed of one mixin per operation, each in its own module on the shared core
``_s3_base.S3Base`` (configuration, listing, heads, tags, where a point lives): ``_s3_access``
(object reads for checks and probes), ``_s3_transfer`` (server-side copies, batched deletes),
``_s3_retention`` (noncurrent retention), ``_s3_restore`` (scratch and point-in-time restores)
and ``_s3_copy`` (manifest copies in copy stores). This module holds the target itself: its
kind (`S3Bucket.from_spec`, `S3Bucket.iam_actions`), settings, points and their manifests,
holds and deletes.

Time granularity: S3 listings report ``LastModified`` in whole seconds. A version whose
``LastModified`` second is *S* counts as written at *S*: it is part of the state at *when*
exactly when ``S <= floor(when)``. Every write made during the same second as *when* is
therefore included, even one made a fraction of a second after *when*.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self

import attrs

from backuppolicy.aws._iam_statements import (
    ACCOUNT,
    PARTITION,
    REGION,
    STORE,
    STORE_BUCKET,
    TIER_KEY,
    Grant,
    by_workflow,
)
from backuppolicy.aws._offsite import offsite_accounts
from backuppolicy.aws._rds_settings import Drift
from backuppolicy.aws._s3_access import ObjectAccess
from backuppolicy.aws._s3_base import (
    KIND_MANIFEST,
    KIND_VERSION,
    MANIFEST_FORMAT,
    CopyStore,
    encode_tags,
    hold_from_tag,
    hold_tag,
    null_version_refused,
    s3_url,
    utcnow,
)
from backuppolicy.aws._s3_copy import CopyStores
from backuppolicy.aws._s3_lock import ObjectLocking, point_lock_of
from backuppolicy.aws._s3_offsite import S3OffsiteCopies
from backuppolicy.aws._s3_restore import RestoreReport, Restores
from backuppolicy.aws._s3_retention import KeyRetentionPlan, NoncurrentRetention, RetentionRunReport
from backuppolicy.aws._s3_transfer import DELETE_BATCH_LIMIT, MAX_COPY_OBJECT_SIZE
from backuppolicy.core.capabilities import encryption_mismatch
from backuppolicy.core.exceptions import PolicyError, ProtectedPointError, ResourceNotFoundError
from backuppolicy.core.model import (
    TAG_HOLD,
    TAG_POLICY,
    TAG_REASON,
    TAG_TARGET,
    TAG_TOKEN,
    LegalHold,
    RecoveryPoint,
    Status,
    ensure_aware,
    is_owned,
)
from backuppolicy.core.naming import name_stamp, token_stamp
from backuppolicy.core.targets import AwsBackupMapping

if TYPE_CHECKING:
    import boto3

    from backuppolicy.core.policy import Policy, TargetSpec

__all__ = [
    "DELETE_BATCH_LIMIT",
    "MAX_COPY_OBJECT_SIZE",
    "KeyRetentionPlan",
    "RestoreReport",
    "RetentionRunReport",
    "S3Bucket",
    "S3Settings",
    "null_version_refused",
]


@attrs.frozen
class S3Settings:
    """Protection settings of a bucket, as read by `S3Bucket.settings`.

    Attributes:
        bucket: Bucket name.
        versioning: ``"Enabled"``, ``"Suspended"`` or ``"Disabled"`` (never enabled).
        mfa_delete: Whether MFA delete is enabled (it can only be changed by the root user).
        object_lock: Whether Object Lock is enabled on the bucket.
        object_lock_default: Default retention (``{"Mode": ..., "Days": ...}``), if any.
        encryption: Default encryption algorithm (``"AES256"``, ``"aws:kms"``), or ``None`` when
            the bucket has none. AWS gives every bucket SSE-S3 (``"AES256"``) since January 2023,
            so ``None`` means an emulator or a non-AWS S3, and counts as unencrypted.
        kms_key_id: KMS key of the default encryption, if any.
        public_access_block: The four public-access-block flags (empty if none is set).
    """

    bucket: str
    versioning: str
    mfa_delete: bool = False
    object_lock: bool = False
    object_lock_default: Mapping[str, object] = attrs.field(factory=dict, hash=False)
    encryption: str | None = None
    kms_key_id: str | None = None
    public_access_block: Mapping[str, bool] = attrs.field(factory=dict, hash=False)

    @property
    def versioned(self) -> bool:
        """Whether versioning is enabled."""
        return self.versioning == "Enabled"

    @property
    def blocks_public_access(self) -> bool:
        """Whether all four public-access-block flags are set."""
        flags = (
            "BlockPublicAcls",
            "IgnorePublicAcls",
            "BlockPublicPolicy",
            "RestrictPublicBuckets",
        )
        return all(self.public_access_block.get(flag, False) for flag in flags)


# The target ----------------------------------------------------------------


class S3Bucket(
    S3OffsiteCopies, ObjectLocking, CopyStores, Restores, NoncurrentRetention, ObjectAccess
):
    """The objects under a prefix of a versioned S3 bucket, as a backup target.

    Points:

    * ``kind="s3-version"``: one object version, ``id = f"{key}@{version_id}"`` (split on the
      last ``@``; version ids never contain one), ``target`` the target's `name`. A noncurrent
      version's ``created_at`` is the moment it stopped being the live object (the
      ``LastModified`` of the version or delete marker that replaced it): that is when it became
      a backup, the clock AWS's ``NoncurrentDays`` uses. The current version's ``created_at``
      is its ``LastModified``. The real ``LastModified`` is in ``details["last_modified"]``.
      Current versions are ``managed=False`` (never deleted: they are the live data);
      noncurrent versions are managed when *manage_noncurrent* is true.
    * ``kind="s3-manifest"``: written by `create_backup`, a JSON-lines object under
      ``<internal_prefix>manifests/<name>/`` listing the current version of every key; managed
      when it carries our ownership tags. Keys under *internal_prefix* are never treated as data.

    Copy stores (``copy_stores={"s3://offsite-bucket/web-apps": "offsite"}``): `copy` puts a
    manifest's copy at ``<store prefix>manifests/<name>/`` and the versions it lists at
    ``<store prefix><key relative to the prefix>``. `list_points` also lists the manifest copies
    found in every configured store, as ``kind="s3-manifest"`` points of the store's tier with
    ``id = "s3://<bucket>/<key>@<version id>"`` and ``details`` naming the store's bucket, key,
    version and region (asked once with ``GetBucketLocation``). Only manifest copies are points
    there: the copied data versions are not listed one by one (a manifest copy stands for them).
    A copy's manifest is rewritten to list the copied versions (their keys and version ids in the
    store), so `read_manifest`, `restore` and integrity checks read the copy itself, not the
    source. A copy keeps the source manifest's ``created_at`` and tags (legal hold aside) and gets
    ``backuppolicy:tier``.

    Example:
        >>> from backuppolicy import aws
        >>> assets = aws.S3Bucket("assets", prefix="img/", region="us-east-1")  # doctest: +SKIP
        >>> assets.ensure_versioning()                                          # doctest: +SKIP
        >>> report = assets.restore_to_time(when, dest_bucket="assets-restored") # doctest: +SKIP
        >>> report.restored, report.requests                                    # doctest: +SKIP
        (1998, {'ListObjectVersions': 10, 'CopyObject': 1998})

    Args:
        bucket: Bucket name.
        prefix: Key prefix of the protected objects (``""``: the whole bucket).
        name: Target name (default: ``bucket`` or ``bucket/prefix``).
        policy: Name of the policy (ownership tag of manifests).
        session: A `boto3.Session`.
        region: AWS region of the bucket.
        endpoint_url: Endpoint (moto server, LocalStack).
        clients: Ready clients by service name (``{"s3": client}``).
        config: Extra botocore `Config`.
        retry: The `RetryPolicy`.
        account_id: AWS account id for ``location`` (default: asked from STS once).
        manage_noncurrent: Whether noncurrent versions may be deleted by retention.
        internal_prefix: Where manifests and restore-test copies live.
        max_pool_connections: HTTP connections per client (at least the concurrency you use).
        copy_stores: Stores that hold this target's copies, ``s3://bucket/prefix`` URL -> tier
            name (a mapping or ``(url, tier)`` pairs); their manifest copies are listed. A
            non-empty prefix is a folder: ``s3://b/web-apps`` means ``web-apps/``.
        inventory: Where the bucket's S3 Inventory reports land and the S3 Batch Operations
            job's role (the policy's ``inventory`` setting: ``bucket``, ``prefix``,
            ``role_arn``, ``min_versions``, ``report``, ``priority``): large point-in-time
            restores run from it (see `restore_to_time`'s *engine*).

    Attributes:
        bucket: Bucket name.
        prefix: Key prefix of the protected objects.
        policy: Name of the policy.
        manage_noncurrent: Whether noncurrent versions are managed.
        internal_prefix: Prefix of manifests and restore-test copies.
    """

    # -- the kind -------------------------------------------------------------------------

    needs_aws_session: ClassVar[bool] = True
    """Targets of this kind call AWS: `backuppolicy.build_targets` makes them a session."""

    @classmethod
    def from_spec(
        cls,
        spec: TargetSpec,
        policy: Policy,
        *,
        session: boto3.Session | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> Self:
        """The target of *spec*: its bucket and prefix, its region (default *region*).

        The ``store`` of each copy tier (every tier after the first) that names one becomes a
        copy store of that tier.

        A copy tier with an ``account`` keeps its copies in its ``location.store``, a bucket of
        that account, reached through the tier's role (`backuppolicy.aws._s3_offsite`).

        Raises:
            PolicyError: A copy tier in another account names no ``location.store``.
        """
        offsite_stores: dict[str, str] = {}
        for tier in policy.copy_tiers_for(spec):
            if tier.account is None:
                continue
            store = tier.location.get("store")
            if not isinstance(store, str) or not store.startswith("s3://"):
                raise PolicyError.for_field(
                    f"tiers[{tier.name}].location.store",
                    f"the s3://bucket/prefix in account {tier.account.account_id} that holds the "
                    f"copies of s3-bucket target {spec.name!r}",
                    store,
                )
            offsite_stores[tier.name] = store
        settings = spec.settings
        target = cls(
            settings["bucket"],
            prefix=settings.get("prefix", ""),
            name=spec.name,
            policy=policy.name,
            session=session,
            endpoint_url=endpoint_url,
            region=settings.get("region") or region,
            copy_stores={
                t.location["store"]: t.name
                for t in policy.copy_tiers_for(spec)
                if t.location.get("store") and t.account is None
            },
            inventory=settings.get("inventory"),
        )
        target.offsite_stores = offsite_stores
        return target.with_offsite(offsite_accounts(policy, spec))

    def _sibling(self, session: boto3.Session, region: str, store: CopyStore) -> Self:
        """This target in another account (*session*), whose only copy store is *store*."""
        sibling = type(self)(
            self.bucket,
            prefix=self.prefix,
            name=self.name,
            policy=self.policy,
            session=session,
            endpoint_url=self.endpoint_url,
            region=region,
            retry=self.retry,
            manage_noncurrent=self.manage_noncurrent,
            internal_prefix=self.internal_prefix,
            copy_stores={store.url: store.tier},
        )
        return sibling.with_offsite(())

    @classmethod
    def aws_backup(cls, spec: TargetSpec) -> AwsBackupMapping:
        """AWS Backup protects buckets as ``S3``: the whole bucket, so a *prefix* is a caveat."""
        prefix = spec.settings.get("prefix")
        caveat = (
            f"AWS Backup backs up the whole bucket {spec.settings['bucket']!r}, "
            f"not only the prefix {prefix!r}."
        )
        caveats = (caveat,) if prefix else ()
        return AwsBackupMapping("arn:{partition}:s3:::{bucket}", "S3", caveats=caveats)

    @classmethod
    def iam_actions(cls, spec: TargetSpec) -> dict[str, list[dict[str, object]]]:
        """The IAM statements of each workflow (`backuppolicy.aws.iam_policy` fills them in).

        S3 objects have no resource tags usable in conditions, so deletes are scoped by prefix.
        """
        bucket = f"arn:{PARTITION}:s3:::{spec.settings['bucket']}"
        data = f"{bucket}/{spec.settings.get('prefix', '')}*"
        internal = f"{bucket}/_backuppolicy/*"
        objects = (data, internal) if spec.settings.get("prefix") else (data,)
        return by_workflow(
            [
                *cls._iam_hold_grants(bucket, objects),
                *cls._iam_enforce_grants(spec, bucket),
                Grant((), ("s3:ListBucketVersions",), (bucket,)),
                # Is there Object Lock? Once per listing, so that known manifests need no HEAD.
                Grant((), ("s3:GetBucketObjectLockConfiguration",), (bucket,)),
                Grant((), ("s3:GetObjectVersion", "s3:GetObjectVersionTagging"), (internal,)),
                Grant(("backup", "prune"), ("s3:GetObject",), (internal,)),
                Grant(("backup", "verify"), ("s3:GetBucketVersioning",), (bucket,)),
                Grant(("backup",), ("s3:PutObject", "s3:PutObjectTagging"), (internal,)),
                Grant(("prune",), ("s3:DeleteObjectVersion",), objects),
                # HeadObject of each version and of its key's current version before deleting it.
                Grant(("prune",), ("s3:GetObject", "s3:GetObjectVersion"), objects),
                Grant(
                    ("verify",),
                    (
                        "s3:GetEncryptionConfiguration",
                        "s3:GetBucketPublicAccessBlock",
                        "s3:GetBucketObjectLockConfiguration",
                    ),
                    (bucket,),
                ),
                Grant(
                    ("restore-test",),
                    ("s3:GetObjectVersion", "s3:GetObjectVersionTagging"),
                    objects,
                ),
                Grant(
                    ("restore-test",),
                    ("s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObjectVersion"),
                    (internal,),
                ),
            ]
        )

    @staticmethod
    def _iam_hold_grants(bucket: str, objects: tuple[str, ...]) -> list[Grant]:
        """Legal holds: the hold tag on a version, its Object Lock legal hold (and its manifest's).

        The legal hold is read back with ``HeadObject`` (``s3:GetObjectVersion``), so
        ``s3:GetObjectLegalHold`` is not needed.
        """
        return [
            Grant(("holds",), ("s3:GetBucketObjectLockConfiguration",), (bucket,)),
            Grant(
                ("holds",),
                (
                    "s3:GetObjectVersion",
                    "s3:GetObjectVersionTagging",
                    "s3:PutObjectVersionTagging",
                    "s3:PutObjectLegalHold",
                ),
                objects,
            ),
        ]

    @staticmethod
    def _iam_enforce_grants(spec: TargetSpec, bucket: str) -> list[Grant]:
        """``verify --enforce``: read and set the bucket's encryption and public access block.

        Only when the target's settings state them (`enforce_settings` skips it otherwise).
        """
        settings = spec.settings
        if (
            not isinstance(settings.get("encryption"), str)
            and "block_public_access" not in settings
        ):
            return []
        grants = [
            Grant(
                ("enforce",),
                (
                    "s3:GetBucketVersioning",
                    "s3:GetBucketObjectLockConfiguration",
                    "s3:GetEncryptionConfiguration",
                    "s3:GetBucketPublicAccessBlock",
                    "s3:PutEncryptionConfiguration",
                    "s3:PutBucketPublicAccessBlock",
                ),
                (bucket,),
            )
        ]
        if settings.get("kms_key_id"):  # the bucket's key and the policy's are compared by ARN
            key = f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/*"
            grants.append(Grant(("enforce",), ("kms:DescribeKey",), (key,)))
        return grants

    @classmethod
    def iam_offsite_actions(cls, spec: TargetSpec) -> dict[str, dict[str, list[dict[str, object]]]]:
        """The statements for copy tiers in another account, per side (``production``, ``backup``).

        Production reads the versions it streams to the backup account (nothing on the backup
        account's bucket); the backup account writes, lists, prunes, locks, checks and
        restore-tests the copies in the tier's store (`STORE`) with the tier's key (`TIER_KEY`).
        """
        bucket = f"arn:{PARTITION}:s3:::{spec.settings['bucket']}"
        data = f"{bucket}/{spec.settings.get('prefix', '')}*"
        internal = f"{bucket}/_backuppolicy/*"
        objects = (data, internal) if spec.settings.get("prefix") else (data,)
        store_bucket = f"arn:{PARTITION}:s3:::{STORE_BUCKET}"
        store = f"arn:{PARTITION}:s3:::{STORE}*"
        production = [
            Grant(("backup",), ("s3:GetObject", "s3:GetObjectVersion"), objects),
            Grant(("backup",), ("s3:GetObjectVersionTagging",), objects),
        ]
        backup = [
            Grant(
                (),
                (
                    "s3:ListBucketVersions",
                    "s3:GetBucketLocation",
                    "s3:GetBucketObjectLockConfiguration",
                ),
                (store_bucket,),
            ),
            Grant(
                (), ("s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectVersionTagging"), (store,)
            ),
            Grant((), ("kms:Decrypt",), (TIER_KEY,)),
            Grant(("backup",), ("s3:PutObject", "s3:PutObjectTagging"), (store,)),
            Grant(("backup", "restore-test"), ("kms:GenerateDataKey",), (TIER_KEY,)),
            Grant(("prune",), ("s3:DeleteObjectVersion",), (store,)),
            Grant(("verify",), ("s3:GetBucketPublicAccessBlock",), (store_bucket,)),
            Grant(
                ("restore-test",),
                ("s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObjectVersion"),
                (store,),
            ),
        ]
        return {"production": by_workflow(production), "backup": by_workflow(backup)}

    def __repr__(self) -> str:
        return f"<backuppolicy.aws.S3Bucket(bucket={self.bucket!r}, prefix={self.prefix!r})>"

    @property
    def kind(self) -> str:
        """Registered target kind: ``"s3-bucket"``."""
        return "s3-bucket"

    @property
    def copy_stores(self) -> dict[str, str]:
        """The configured copy stores: ``s3://bucket/prefix/`` URL -> tier name."""
        return {store.url: store.tier for store in self._copy_stores}

    # Settings ----------------------------------------------------------------

    def ensure_versioning(self) -> str:
        """Enable versioning unless it is on already; return the status it had before.

        MFA delete is never changed (only the root user can, with an MFA device).
        """
        before = self.versioning()
        if before != "Enabled":
            self.call(
                "s3",
                "put_bucket_versioning",
                resource=self.bucket,
                Bucket=self.bucket,
                VersioningConfiguration={"Status": "Enabled"},
            )
        return before

    def settings(self) -> S3Settings:
        """Read versioning, MFA delete, Object Lock, default encryption and the public access block.

        Read-only: four requests (``GetBucketVersioning``, ``GetObjectLockConfiguration``,
        ``GetBucketEncryption``, ``GetPublicAccessBlock``).
        """
        versioning = self.call(
            "s3", "get_bucket_versioning", resource=self.bucket, Bucket=self.bucket
        )
        lock = self._optional("get_object_lock_configuration").get("ObjectLockConfiguration", {})
        rules = (
            self._optional("get_bucket_encryption")
            .get("ServerSideEncryptionConfiguration", {})
            .get("Rules", [])
        )
        default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
        block = self._optional("get_public_access_block").get("PublicAccessBlockConfiguration", {})
        self._object_lock = lock.get("ObjectLockEnabled") == "Enabled"
        return S3Settings(
            bucket=self.bucket,
            versioning=str(versioning.get("Status") or "Disabled"),
            mfa_delete=versioning.get("MFADelete") == "Enabled",
            object_lock=self._object_lock,
            object_lock_default=dict(lock.get("Rule", {}).get("DefaultRetention", {})),
            encryption=default.get("SSEAlgorithm"),
            kms_key_id=default.get("KMSMasterKeyID"),
            public_access_block={k: bool(v) for k, v in block.items()},
        )

    _PUBLIC_ACCESS_FLAGS: ClassVar[tuple[str, ...]] = (
        "BlockPublicAcls",
        "IgnorePublicAcls",
        "BlockPublicPolicy",
        "RestrictPublicBuckets",
    )

    def bucket_drift(self, expected: Mapping[str, Any]) -> list[Drift]:
        """How the bucket's default encryption and public access block differ from *expected*.

        *expected* holds the policy's settings (`expected_bucket_settings`): ``encryption``
        (``"AES256"`` accepts SSE-S3 or SSE-KMS; ``"aws:kms"`` needs SSE-KMS and, with
        ``kms_key_id``, that key, compared through KMS), ``block_public_access`` (``True``
        needs all four flags; ``False`` asks for nothing). Read-only: `settings`, plus
        ``DescribeKey`` when two key names differ.

        AWS documents the shape read here: ``GetBucketEncryption`` returns
        ``ServerSideEncryptionConfiguration.Rules[].ApplyServerSideEncryptionByDefault``
        with ``SSEAlgorithm`` (``AES256``, ``aws:kms``, ``aws:kms:dsse``) and, for SSE-KMS,
        ``KMSMasterKeyID``; every bucket has SSE-S3 at least since January 2023.
        """
        current = self.settings()
        drifts: list[Drift] = []
        wanted = expected.get("encryption")
        if wanted is not None:
            problem = encryption_mismatch(
                str(wanted),
                expected.get("kms_key_id"),
                current.encryption,
                current.kms_key_id,
                self.same_kms_key,
            )
            if problem is not None:
                field = problem.split(":", 1)[0]
                actual = current.encryption if field == "encryption" else current.kms_key_id
                want = wanted if field == "encryption" else expected.get("kms_key_id")
                drifts.append(Drift(field, want, actual or "none"))
        if expected.get("block_public_access") and not current.blocks_public_access:
            off = [f for f in self._PUBLIC_ACCESS_FLAGS if not current.public_access_block.get(f)]
            drifts.append(Drift("block_public_access", "all four flags", "off: " + ", ".join(off)))
        return drifts

    def enforce_bucket_settings(
        self, expected: Mapping[str, Any], *, apply: bool = False
    ) -> list[Drift]:
        """The changes that bring the bucket to *expected*; made only when *apply* is true.

        Idempotent: a bucket that matches gets no request. Encryption is set with
        ``PutBucketEncryption`` (SSE-KMS with the expected key, the S3 Bucket Key on; or SSE-S3),
        the public access block with ``PutPublicAccessBlock`` (all four flags). Nothing is ever
        loosened: ``block_public_access: false`` and ``encryption: AES256`` on an SSE-KMS bucket
        ask for no change. Existing objects keep the encryption they were written with.
        """
        drifts = self.bucket_drift(expected)
        if not apply:
            return drifts
        fields = {d.field for d in drifts}
        if fields & {"encryption", "kms_key_id"}:
            default: dict[str, str] = {"SSEAlgorithm": str(expected["encryption"])}
            if expected.get("kms_key_id") and default["SSEAlgorithm"] != "AES256":
                default["KMSMasterKeyID"] = str(expected["kms_key_id"])
            rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": default}
            if default["SSEAlgorithm"] != "AES256":
                rule["BucketKeyEnabled"] = True
            self.call(
                "s3",
                "put_bucket_encryption",
                resource=self.bucket,
                Bucket=self.bucket,
                ServerSideEncryptionConfiguration={"Rules": [rule]},
            )
        if "block_public_access" in fields:
            self.call(
                "s3",
                "put_public_access_block",
                resource=self.bucket,
                Bucket=self.bucket,
                PublicAccessBlockConfiguration=dict.fromkeys(self._PUBLIC_ACCESS_FLAGS, True),
            )
        return drifts

    # Listing ----------------------------------------------------------------

    def list_points(self) -> Iterator[RecoveryPoint]:
        """Stream the manifests of this target, their copies, then every object version.

        Manifest copies are listed from every store of *copy_stores*, and from the store of each
        tier in another account with that account's credentials, in the store's tier (only
        manifests: the data versions copied with them are not points). Delete markers are not
        points (nothing to restore). One ``ListObjectVersions`` request per 1000 entries, plus
        one ``HeadObject`` and one ``GetObjectTagging`` per manifest or manifest copy.
        """
        if self.stores_only:
            for store in self._copy_stores:
                yield from self._copy_points(store)
            return
        yield from self._manifest_points()
        for store in self._copy_stores:
            yield from self._copy_points(store)
        for account in self.offsite:  # each tier's store in another account, by its role
            yield from self.offsite_backend(account).list_points()
        for group in self._data_groups():
            yield from self._group_points(group, markers=False)

    # Manifests (create_backup) ----------------------------------------------------------------

    def _ownership_tags(
        self, reason: str, token: str | None, tags: Mapping[str, str] | None
    ) -> dict[str, str]:
        result = dict(tags or {})
        result.update({TAG_POLICY: self.policy, TAG_TARGET: self.name, TAG_REASON: reason})
        if token is not None:
            result[TAG_TOKEN] = token
        return result

    def _manifest_point(
        self, key: str, version_id: str, head: Mapping[str, Any], tags: Mapping[str, str]
    ) -> RecoveryPoint:
        meta = head.get("Metadata", {})
        created = (
            datetime.fromisoformat(meta["created-at"])
            if "created-at" in meta
            else head["LastModified"]
        )
        return RecoveryPoint(
            id=f"{key}@{version_id}",
            target=self.name,
            created_at=created.astimezone(UTC),
            kind=KIND_MANIFEST,
            location=self.location,
            size_bytes=int(meta["bytes"]) if "bytes" in meta else None,
            tags=tags,
            legal_hold=hold_from_tag(tags[TAG_HOLD]) if TAG_HOLD in tags else None,
            managed=is_owned(tags, policy=self.policy, target=self.name),
            lock=point_lock_of(head),
            details={
                "bucket": self.bucket,
                "key": key,
                "version_id": version_id,
                "objects": int(meta.get("objects", "0")),
                "manifest_bytes": int(head.get("ContentLength") or head.get("Size") or 0),
            },
        )

    def _manifest_points(self) -> Iterator[RecoveryPoint]:
        """The manifests: their tags read every time, their heads once per version if exact.

        A manifest version listed before in a bucket without Object Lock needs no
        ``HeadObject`` (`_listed_head`); ``GetObjectTagging`` is always asked (holds and
        ownership are tags, and tags change).
        """
        lock_free = self._lock_check(self.bucket)
        for entry in self._entries(self._manifest_prefix):
            if entry.is_marker or not entry.is_latest:
                continue
            try:
                head = self._listed_head(entry.key, entry.version_id, lock_free)
                if head is None:
                    continue  # deleted since the listing page: not listed
                tags = self._tags_of(entry.key, entry.version_id)
            except ResourceNotFoundError:
                continue  # deleted since the listing page: not listed
            yield self._manifest_point(entry.key, entry.version_id, head, tags)

    def create_backup(
        self,
        *,
        reason: str = "scheduled",
        tags: Mapping[str, str] | None = None,
        token: str | None = None,
        now: datetime | None = None,
    ) -> RecoveryPoint:
        """Ensure versioning is on and record a manifest of the current versions under the prefix.

        S3 versioning is what keeps the data; the manifest makes a named, restorable point in
        time: one JSON line per live key with its current version id, ETag, size and
        ``LastModified`` (built in a spooled temporary file, so memory stays flat). The listing
        is not atomic: writes made while it runs may or may not be in the manifest.

        The same *token* returns the existing manifest instead of writing a second one. The
        manifest is ``bp-<target>-<stamp>-<token digest>.jsonl`` under the target's manifest
        folder: the stamp is the slot of a scheduled backup, the time a manual one was taken
        (the rule of `backuppolicy.core.naming`); without a token the digest is random, and a
        token that ends in no stamp gives ``token-<digest>.jsonl`` (one HEAD finds it again).
        """
        stamp = (datetime.now(UTC) if now is None else ensure_aware(now, field="now")).astimezone(
            UTC
        )
        if token is not None:
            digest = hashlib.sha256(token.encode()).hexdigest()[:24]
            legacy = (
                f"{self._manifest_prefix}token-{digest}.jsonl"  # the name before the naming rule
            )
            key = (
                f"{self._manifest_prefix}bp-{self.name}-{name_stamp(token, stamp)}-{digest}.jsonl"
                if token_stamp(token) is not None
                else legacy
            )
            for candidate in dict.fromkeys((key, legacy)):
                existing = self._head_or_none(candidate, None)
                if existing is not None:
                    version = str(existing.get("VersionId") or "null")
                    tags = self._tags_of(candidate, version)
                    return self._manifest_point(candidate, version, existing, tags)
        else:
            unique = uuid.uuid4().hex[:8]
            key = f"{self._manifest_prefix}bp-{self.name}-{name_stamp(None, stamp)}-{unique}.jsonl"
        self.ensure_versioning()
        objects = total = 0
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024**2) as body:
            header = {
                "format": MANIFEST_FORMAT,
                "bucket": self.bucket,
                "prefix": self.prefix,
                "target": self.name,
                "created_at": stamp.isoformat(),
                "reason": reason,
                "token": token,
            }
            body.write(json.dumps(header).encode() + b"\n")
            for group in self._data_groups():
                current = group[0]
                if current.is_marker:
                    continue
                line = {
                    "key": current.key,
                    "version_id": current.version_id,
                    "etag": current.etag,
                    "size": current.size,
                    "last_modified": current.last_modified.astimezone(UTC).isoformat(),
                }
                body.write(json.dumps(line).encode() + b"\n")
                objects += 1
                total += current.size
            length = body.tell()
            body.seek(0)
            all_tags = self._ownership_tags(reason, token, tags)
            metadata = {
                "created-at": stamp.isoformat(),
                "objects": str(objects),
                "bytes": str(total),
            }
            result = self.call(
                "s3",
                "put_object",
                resource=s3_url(self.bucket, key),
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/x-ndjson",
                Metadata=metadata,
                Tagging=encode_tags(all_tags),
            )
        version = str(result.get("VersionId") or "null")
        head = {"Metadata": metadata, "ContentLength": length, "LastModified": stamp}
        return self._manifest_point(key, version, head, all_tags)

    # Point operations ----------------------------------------------------------------

    def refresh(self, point: RecoveryPoint) -> RecoveryPoint | None:
        """Re-read a point: current-ness, Object Lock hold and retention; ``None`` if it is gone.

        A manifest copy is re-read from its copy store.
        """
        backend = self._backend_of(point)  # a copy in another account: its credentials only
        if backend is not None:
            return backend.refresh(point)  # type: ignore[no-any-return]
        loc = self._locate(point, KIND_VERSION, KIND_MANIFEST)
        key, version = loc.key, loc.version
        where = {"bucket": loc.bucket, "region": loc.region}
        head = self._head_or_none(key, version, **where)
        if head is None:
            return None
        if point.kind == KIND_MANIFEST:
            tags = self._tags_of(key, version, **where)
            if loc.store is None:
                fresh = self._manifest_point(key, version, head, tags)
            else:
                region = loc.region or self._store_region(loc.bucket)
                fresh = self._copy_point(
                    loc.store, region, key=key, version_id=version, head=head, tags=tags
                )
            if fresh.legal_hold is None:
                fresh = fresh.evolve(
                    legal_hold=self._lock_hold(head, key, version, utcnow(), **where)
                )
            return fresh
        current = self._head_or_none(key, None, **where)
        is_current = current is not None and str(current.get("VersionId") or "null") == version
        hold = self._lock_hold(head, key, version, utcnow(), **where)
        details = dict(point.details)
        details["is_latest"] = is_current
        details["object_lock_mode"] = head.get("ObjectLockMode")
        details["object_lock_retain_until"] = head.get("ObjectLockRetainUntilDate")
        return point.evolve(
            # a version copied on its own into a store is not ours to prune (see `copy`)
            managed=self.manage_noncurrent and not is_current and loc.store is None,
            legal_hold=hold,
            lock=point_lock_of(head),
            encrypted=head.get("ServerSideEncryption") is not None or None,
            details=details,
        )

    def delete(self, point: RecoveryPoint) -> None:
        """Permanently delete one noncurrent version, one of our manifests or a manifest copy.

        Re-reads the point first (``HeadObject`` and ``GetObjectTagging``).

        * A manifest in the target's bucket: only the manifest goes; the versions it lists are
          the bucket's data, pruned by version retention.
        * A manifest copy in a copy store: the copy's manifest is deleted, then every copied
          version it lists that no other manifest copy under the store's ``manifests/`` folder
          (of any target) lists, with ``DeleteObjects``. The manifest goes first, so a point is
          never listed without its data; if the data delete then fails (Object Lock on the
          store, permissions), those versions stay behind unlisted: expire them with a lifecycle
          rule on the store. If another manifest copy in the store cannot be read, no data is
          deleted (only the manifest). Memory holds the (key, version) pairs of the deleted copy.

        Raises:
            ProtectedPointError: The point is unmanaged (a current version, a version copied on
                its own, or not ours), under legal hold or Object Lock retention, or pending.
                Nothing was deleted.
            ResourceNotFoundError: The version no longer exists.
        """
        backend = self._backend_of(point)  # a copy in another account: its credentials only
        if backend is not None:
            backend.delete(point)
            return
        loc = self._locate(point, KIND_VERSION, KIND_MANIFEST)
        _refuse_protected(point)
        fresh = self.refresh(point)
        if fresh is None:
            raise ResourceNotFoundError(
                f"{self.name}: version {point.id!r} does not exist",
                backend=self.name,
                operation="HeadObject",
                resource=s3_url(loc.bucket, loc.key),
                code="NoSuchVersion",
            )
        _refuse_protected(fresh)
        orphans = (
            self._unreferenced_copies(loc)
            if loc.store is not None and point.kind == KIND_MANIFEST
            else []
        )
        self.call(
            "s3",
            "delete_object",
            resource=s3_url(loc.bucket, loc.key),
            region=loc.region,
            Bucket=loc.bucket,
            Key=loc.key,
            VersionId=loc.version,
        )
        for start in range(0, len(orphans), DELETE_BATCH_LIMIT):
            batch = orphans[start : start + DELETE_BATCH_LIMIT]
            self._delete_batch(loc.bucket, loc.region, batch, None)

    def place_hold(self, point: RecoveryPoint, hold: LegalHold) -> RecoveryPoint:
        """Put *point* under legal *hold* and return it re-read.

        The hold's reason and reference go into the version's ``backuppolicy:legal-hold`` tag
        (its other tags are kept). With Object Lock enabled on the bucket an Object Lock legal
        hold is placed too, so nobody (not only this library) can delete the version. Versions
        of data need Object Lock; a manifest without Object Lock is held by the tag alone, and so
        is a manifest copy in a copy store (whatever the store's Object Lock).

        Raises:
            PolicyError: *point* is a data version and the bucket has no Object Lock.
        """
        backend = self._backend_of(point)  # a copy in another account: its credentials only
        if backend is not None:
            return backend.place_hold(point, hold)  # type: ignore[no-any-return]
        return self._set_hold(point, hold)

    def release_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Remove the legal hold from *point* (tag and Object Lock legal hold); return it re-read."""
        backend = self._backend_of(point)  # a copy in another account: its credentials only
        if backend is not None:
            return backend.release_hold(point)  # type: ignore[no-any-return]
        return self._set_hold(point, None)

    def _set_hold(self, point: RecoveryPoint, hold: LegalHold | None) -> RecoveryPoint:
        loc = self._locate(point, KIND_VERSION, KIND_MANIFEST)
        key, version = loc.key, loc.version
        resource = s3_url(loc.bucket, key)
        locked = loc.store is None and self._lock_enabled()
        if not locked and point.kind == KIND_VERSION and hold is not None:
            raise PolicyError.for_field(
                f"{loc.bucket}.object_lock",
                "Object Lock enabled on the bucket to hold object versions",
                "disabled",
            )
        where: dict[str, str] = {"Bucket": loc.bucket, "Key": key, "VersionId": version}
        if locked:
            self.call(
                "s3",
                "put_object_legal_hold",
                resource=resource,
                LegalHold={"Status": "OFF" if hold is None else "ON"},
                **where,
            )
        tags = self._tags_of(key, version, bucket=loc.bucket, region=loc.region)
        tags.pop(TAG_HOLD, None)
        if hold is not None:
            tags[TAG_HOLD] = hold_tag(hold)
        if tags:
            tag_set = [{"Key": k, "Value": v} for k, v in tags.items()]
            self.call(
                "s3",
                "put_object_tagging",
                resource=resource,
                region=loc.region,
                Tagging={"TagSet": tag_set},
                **where,
            )
        else:
            self.call("s3", "delete_object_tagging", resource=resource, region=loc.region, **where)
        fresh = self.refresh(point)
        if fresh is None:  # pragma: no cover - deleted between the two calls
            raise ResourceNotFoundError(
                f"{self.name}: version {point.id!r} disappeared while setting its hold",
                backend=self.name,
                operation="HeadObject",
                resource=resource,
            )
        return fresh


def _refuse_protected(point: RecoveryPoint) -> None:
    if point.lock is not None and point.lock.active(utcnow()):
        raise ProtectedPointError(
            f"refusing to delete {point.id!r}: it is {point.lock.describe()} (S3 Object Lock)",
            point=point,
        )
    if point.held:
        assert point.legal_hold is not None  # noqa: S101 - narrowed by `held`
        raise ProtectedPointError(
            f"refusing to delete {point.id!r}: it is under {point.legal_hold.describe()}",
            point=point,
        )
    if not point.managed:
        what = (
            "the current version of its key"
            if point.details.get("is_latest")
            else "not managed by this policy"
        )
        raise ProtectedPointError(f"refusing to delete {point.id!r}: it is {what}", point=point)
    if point.status is Status.PENDING:
        raise ProtectedPointError(
            f"refusing to delete {point.id!r}: it is still pending", point=point
        )
