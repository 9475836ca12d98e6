"""Least-privilege IAM: the policy document that the workflows of a `~backuppolicy.Policy` need.

`iam_policy` lists, per target of the policy and per workflow (``backup``, ``prune``, ``verify``,
``restore-test``, ``holds``, ``enforce``), exactly the IAM actions the library's calls need, on resource ARNs scoped to
the target (its database, instance, volume, bucket and prefix, the snapshots in its regions).
Deletes of recovery points are further limited by the tag condition
``aws:ResourceTag/backuppolicy:policy = <policy name>`` where the service supports it (RDS and
EC2 snapshots), and deletes of restore-test leftovers by the sweep tag. S3 objects have no
resource tags usable in conditions (``s3:ExistingObjectTag`` only sees object tags, and object
versions of the protected data carry none), so S3 deletes are scoped by prefix.

`iam_actions` maps one API call (service, operation, parameters) to the IAM actions AWS checks
for it; several calls need more than their name (``DeleteObjects`` is ``s3:DeleteObject`` or
``s3:DeleteObjectVersion`` per key, tags given at create time need ``rds:AddTagsToResource`` /
``ec2:CreateTags``). The test suite records every call the workflows make against moto and
checks each is allowed by the document, and that the document holds nothing else except
`INTENTIONAL_EXTRAS`.

``sts:GetCallerIdentity`` needs no permission and is never listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from backuppolicy.aws._iam_statements import (
    ACCOUNT,
    ALL_WORKFLOWS,
    COPIES_ONLY,
    LISTING_WORKFLOWS,
    PARTITION,
    POLICY,
    REGION,
    REGIONS,
    RESTORE_PREFIX,
    SOURCE_ACCOUNT,
    STORE,
    STORE_BUCKET,
    SWEEP_TAG,
    TIER_KEY,
)
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import TAG_HOLD, TAG_POLICY
from backuppolicy.core.policy import Policy, TargetSpec
from backuppolicy.core.selector import RESOURCE_SETTINGS
from backuppolicy.core.targets import IsolationProfile, get_target_class

__all__ = [
    "HOLD_DENY_ACTIONS",
    "INTENTIONAL_EXTRAS",
    "WORKFLOWS",
    "hold_deny_policy",
    "iam_actions",
    "iam_policy",
    "iam_table",
]

WORKFLOWS: Final = ALL_WORKFLOWS
"""The workflows `iam_policy` knows."""

INTENTIONAL_EXTRAS: Final[Mapping[str, str]] = {
    "kms:CreateGrant": "copies and restores of encrypted snapshots: RDS and EC2 create a grant on "
    "the destination key for the copy (AWS checks it on the caller, no API call of ours)",
    "kms:DescribeKey": "copies of encrypted snapshots: the service reads the destination key",
    "kms:Decrypt": "copies and restores of encrypted EBS snapshots (EC2 decrypts with the "
    "caller's permissions)",
    "kms:GenerateDataKeyWithoutPlaintext": "copies of encrypted EBS snapshots to a new key",
    "kms:ReEncryptFrom": "copies of encrypted EBS snapshots to another key",
    "kms:ReEncryptTo": "copies of encrypted EBS snapshots to another key",
    "ebs:ListSnapshotBlocks": "integrity checks of EBS snapshots (EBS direct APIs); moto's ebs "
    "backend does not know snapshots made through EC2, so the recorded run cannot call it",
    "ebs:GetSnapshotBlock": "integrity checks of EBS snapshots (EBS direct APIs), as above",
}
"""Actions in the document that no API call of ours names: each with the reason it is needed."""

_NO_PERMISSION: Final = frozenset({("sts", "GetCallerIdentity")})

_S3_VERSIONED: Final = {
    "GetObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "HeadObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "DeleteObject": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "GetObjectTagging": ("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    "PutObjectTagging": ("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    "DeleteObjectTagging": ("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
    "PutObjectLegalHold": ("s3:PutObjectLegalHold", "s3:PutObjectLegalHold"),
    "GetObjectLegalHold": ("s3:GetObjectLegalHold", "s3:GetObjectLegalHold"),
}
_S3_RENAMED: Final = {
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "PutBucketVersioning": "s3:PutBucketVersioning",
}


def _copy_source_version(params: Mapping[str, object]) -> bool:
    source = params.get("CopySource")
    if isinstance(source, Mapping):
        return bool(source.get("VersionId"))
    return isinstance(source, str) and "versionId=" in source


def _s3_actions(operation: str, params: Mapping[str, Any]) -> set[str]:
    actions: set[str] = set()
    if operation in _S3_VERSIONED:
        plain, versioned = _S3_VERSIONED[operation]
        actions.add(versioned if params.get("VersionId") else plain)
    elif operation in _S3_RENAMED:
        actions.add(_S3_RENAMED[operation])
    elif operation == "DeleteObjects":
        for item in params.get("Delete", {}).get("Objects", []):
            actions.add("s3:DeleteObjectVersion" if item.get("VersionId") else "s3:DeleteObject")
    elif operation in {"CopyObject", "UploadPartCopy"}:
        from_version = _copy_source_version(params)
        actions.update({"s3:PutObject", "s3:GetObjectVersion" if from_version else "s3:GetObject"})
        if operation == "CopyObject" and params.get("TaggingDirective", "COPY") == "COPY":
            actions.add("s3:GetObjectVersionTagging" if from_version else "s3:GetObjectTagging")
            actions.add("s3:PutObjectTagging")
    else:
        actions.add(f"s3:{operation}")
    if params.get("Tagging") and operation in {"PutObject", "CopyObject", "CreateMultipartUpload"}:
        actions.add("s3:PutObjectTagging")
    if params.get("ObjectLockLegalHoldStatus"):
        actions.add("s3:PutObjectLegalHold")
    return actions


def iam_actions(service: str, operation: str, params: Mapping[str, object]) -> frozenset[str]:
    """The IAM actions AWS checks for one API call.

    Args:
        service: The IAM prefix of the service (``"rds"``, ``"ec2"``, ``"s3"``, ``"backup"``).
        operation: The API operation name (``"DeleteObjects"``).
        params: The call's parameters (versions, tags and copy sources change the actions).

    Example:
        >>> sorted(iam_actions("s3", "DeleteObjects", {"Delete": {"Objects": [
        ...     {"Key": "a", "VersionId": "v1"}]}}))
        ['s3:DeleteObjectVersion']
        >>> sorted(iam_actions("rds", "CreateDBSnapshot", {"Tags": [{"Key": "k", "Value": "v"}]}))
        ['rds:AddTagsToResource', 'rds:CreateDBSnapshot']
        >>> iam_actions("sts", "GetCallerIdentity", {})
        frozenset()
    """
    if (service, operation) in _NO_PERMISSION:
        return frozenset()
    if service == "s3":
        return frozenset(_s3_actions(operation, params))
    actions = {f"{service}:{operation}"}
    if service == "rds" and params.get("Tags"):
        actions.add("rds:AddTagsToResource")
    if service == "ec2" and params.get("TagSpecifications"):
        actions.add("ec2:CreateTags")
    return frozenset(actions)


# --------------------------------------------------------------------------------------------
# What each kind needs


@attrs.frozen
class _Grant:
    """Actions on resources, for some workflows, maybe under a condition."""

    workflows: frozenset[str]
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Mapping[str, object] | None = attrs.field(default=None, hash=False)
    copies: bool = False  # only when the target has copy regions


@attrs.frozen
class _Where:
    partition: str
    account: str
    region: str
    regions: tuple[str, ...]  # the source region and the copy regions
    policy: str
    restore_prefix: str
    sweep_tag: str
    source_account: str = "*"  # in a backup account's document: the account copied from
    store: str = "*"  # in a backup account's document: the tier's store, bucket/prefix
    tier_key: str = "*"  # in a backup account's document: the tier's key ARN


def _all(*names: str) -> frozenset[str]:
    return frozenset(names or WORKFLOWS)


def _strings(value: object, field: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if (
        not isinstance(items, list | tuple)
        or not items
        or not all(isinstance(item, str) and item for item in items)
    ):
        raise PolicyError.for_field(field, "a non-empty string or list of strings", value)
    return tuple(items)


def _declared(spec: TargetSpec, kind: object) -> Mapping[str, Any]:
    """What the kind of *spec* says it needs (`~backuppolicy.core.targets.TargetKind`).

    Raises:
        PolicyError: The kind declares nothing (leaving it out would make a document that
            silently lacks its permissions), or declares something malformed.
    """
    declare = getattr(kind, "iam_actions", None)
    if not callable(declare):
        raise PolicyError.for_field(
            f"targets[{spec.name}].kind",
            "a kind that names the IAM actions it needs (an iam_actions(spec) classmethod "
            "returning {workflow: [statements]}, or {} for none)",
            spec.kind,
        )
    declared = declare(spec)
    if not isinstance(declared, Mapping):
        raise PolicyError.for_field(f"{spec.kind}.iam_actions()", "a mapping", declared)
    return declared


def _fill(value: Any, w: _Where) -> Any:
    """*value* (a string, or lists and mappings of them) with its placeholders filled in."""
    if isinstance(value, str):
        for placeholder, text in (
            (PARTITION, w.partition),
            (ACCOUNT, w.account),
            (REGION, w.region),
            (POLICY, w.policy),
            (RESTORE_PREFIX, w.restore_prefix),
            (SWEEP_TAG, w.sweep_tag),
            (SOURCE_ACCOUNT, w.source_account),
            (STORE_BUCKET, w.store.split("/", 1)[0]),
            (STORE, w.store),
            (TIER_KEY, w.tier_key),
        ):
            value = value.replace(placeholder, text)
        return value
    if isinstance(value, Mapping):
        return {_fill(k, w): _fill(v, w) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_fill(item, w) for item in value)
    return value


def _per_region(resource: str, w: _Where) -> list[str]:
    """*resource* once per region of the target if it holds `REGIONS`, else as it is."""
    if REGIONS in resource:
        return [resource.replace(REGIONS, region) for region in w.regions]
    return [resource]


def _kind_grants(spec: TargetSpec, declared: Mapping[str, Any], w: _Where) -> list[_Grant]:
    """The grants of *declared* (``{workflow: [statements]}``), placeholders filled in.

    Raises:
        PolicyError: A workflow or a statement is malformed.
    """
    grants = []
    for workflow, statements in declared.items():
        where = f"{spec.kind}.iam_actions()[{workflow!r}]"
        if workflow not in WORKFLOWS:
            raise PolicyError.for_field(where, "a workflow among " + ", ".join(WORKFLOWS), workflow)
        for statement in statements:
            if not isinstance(statement, Mapping):
                raise PolicyError.for_field(where, "IAM statements (mappings)", statement)
            if statement.get(COPIES_ONLY) and len(w.regions) == 1:
                continue
            actions = _strings(statement.get("Action"), f"{where}.Action")
            resources = _strings(statement.get("Resource"), f"{where}.Resource")
            condition = statement.get("Condition")
            grants.append(
                _Grant(
                    frozenset({workflow}),
                    actions,
                    tuple(_fill(r, w) for resource in resources for r in _per_region(resource, w)),
                    _fill(dict(condition), w) if condition else None,
                )
            )
    return grants


_KMS_GRANT: Final = "kms:CreateGrant"
_KMS_USE: Final = (
    "kms:DescribeKey",
    "kms:Decrypt",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
# kms:GrantIsForAWSResource exists only on CreateGrant, ListGrants and RevokeGrant: on any other
# action the key is absent and a Bool condition on it never matches.
# https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-grant-is-for-aws-resource
_FOR_AWS_RESOURCE: Final = {"Bool": {"kms:GrantIsForAWSResource": "true"}}
_KMS_ARN: Final = re.compile(r"arn:([^:]+):kms:([^:]*):([^:]*):((?:key|alias)/.+)")


def _kms_key(w: _Where, region: str, key: str, field: str = "kms_key_id") -> tuple[str, str | None]:
    """The key resource ARN for *key* and, for an alias, the alias name to condition on.

    IAM matches KMS actions against the key's ARN, never an alias ARN: a statement whose
    resource is ``...:alias/name`` grants nothing. An alias is honoured with resource
    ``...:key/*`` and the condition ``kms:ResourceAliases``.
    https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html
    """
    if key.startswith("arn:"):
        match = _KMS_ARN.fullmatch(key)
        if match is None:
            raise PolicyError.for_field(
                field, "a KMS key id, key ARN, alias name or alias ARN", key[:200]
            )
        partition, key_region, account, resource = match.groups()
        if resource.startswith("alias/"):
            return f"arn:{partition}:kms:{key_region}:{account}:key/*", resource
        return key, None
    if key.startswith("alias/"):
        return f"arn:{w.partition}:kms:{region}:{w.account}:key/*", key
    return f"arn:{w.partition}:kms:{region}:{w.account}:key/{key}", None


def _kms(w: _Where, keys: Iterable[tuple[str, str]]) -> list[_Grant]:
    """Grants on the copy tiers' keys: by key ARN, or by alias through ``kms:ResourceAliases``."""
    workflows = _all("backup", "restore-test")
    arns: list[str] = []
    grants: list[_Grant] = []
    for region, key in keys:
        resource, alias = _kms_key(w, region, key)
        if alias is None:
            arns.append(resource)
            continue
        aliased = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}}
        grants += [
            _Grant(workflows, (_KMS_GRANT,), (resource,), {**_FOR_AWS_RESOURCE, **aliased}),
            _Grant(workflows, _KMS_USE, (resource,), aliased),
        ]
    if arns:
        unique = tuple(dict.fromkeys(arns))
        grants[:0] = [
            _Grant(workflows, (_KMS_GRANT,), unique, _FOR_AWS_RESOURCE),
            _Grant(workflows, _KMS_USE, unique),
        ]
    return grants


def _data_key_grants(spec: TargetSpec, kind: object, w: _Where) -> list[_Grant]:
    """The use of the KMS keys that encrypt a kind's archives (its ``iam_data_keys(spec)``).

    ``kms:GenerateDataKey`` on the current key for backups (and the copies they write),
    ``kms:Decrypt`` on it and the previous keys for checks and restores; an alias is honoured
    through ``kms:ResourceAliases`` on the keys of its region, as for the copy tiers' keys.
    """
    declare = getattr(kind, "iam_data_keys", None)
    if not callable(declare):
        return []
    keys: Mapping[str, Iterable[str]] = declare(spec)
    field = f"targets[{spec.name}].settings.encryption.key"
    grants = []
    for action, workflows, refs in (
        ("kms:GenerateDataKey", _all("backup"), keys.get("encrypt", ())),
        ("kms:Decrypt", _all("verify", "restore-test"), keys.get("decrypt", ())),
    ):
        for ref in refs:
            resource, alias = _kms_key(w, w.region, ref, field)
            condition = (
                {"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}} if alias else None
            )
            grants.append(_Grant(workflows, (action,), (resource,), condition))
    return grants


def _store_grants(policy: Policy, spec: TargetSpec, w: _Where) -> list[_Grant]:
    """A directory's archives in ``s3://`` stores of this account (`backuppolicy.aws.objects`).

    List and read under each store's prefix for every workflow that lists points, write for
    backups (and the sidecars of holds), delete for pruning, and Object Lock retention when
    the store's tier is locked. Stores of tiers in another account are the backup account's
    (`_backup_grants`): nothing here.
    """
    if spec.kind != "directory":
        return []
    listing = frozenset(LISTING_WORKFLOWS)
    grants: list[_Grant] = []
    for tier in policy.tiers_for(spec):
        store = str(tier.location.get("store", ""))
        if tier.account is not None or not store.startswith("s3://"):
            continue
        path = store.removeprefix("s3://")
        bucket = f"arn:{w.partition}:s3:::{path.split('/', 1)[0]}"
        objects = f"arn:{w.partition}:s3:::{path}*"
        grants += [
            _Grant(listing, ("s3:ListBucket",), (bucket,)),
            _Grant(listing, ("s3:GetObject",), (objects,)),
            _Grant(_all("backup", "holds"), ("s3:PutObject",), (objects,)),
            _Grant(_all("backup"), ("s3:AbortMultipartUpload",), (objects,)),
            _Grant(_all("prune"), ("s3:DeleteObject",), (objects,)),
        ]
        if tier.lock is not None and tier.lock.enabled:
            grants += [
                _Grant(_all("backup"), ("s3:GetBucketObjectLockConfiguration",), (bucket,)),
                _Grant(_all("backup"), ("s3:PutObjectRetention",), (objects,)),
            ]
    return grants


def _sid(*parts: str) -> str:
    words = [w for part in parts for w in re.split(r"[^A-Za-z0-9]+", part) if w]
    return "".join(w[0].upper() + w[1:] for w in words)[:100]


def _where(
    policy: Policy, spec: TargetSpec, account: str, partition: str, region: str | None
) -> _Where:
    source = str(spec.settings.get("region") or region or "*")
    copy_regions = [
        str(t.location["region"])
        for t in policy.copy_tiers_for(spec)
        if t.location.get("region") and t.location["region"] != source and t.account is None
    ]
    isolation = IsolationProfile(**policy.verification.isolation)
    return _Where(
        partition=partition,
        account=account,
        region=source,
        regions=(source, *dict.fromkeys(copy_regions)),
        policy=policy.name,
        restore_prefix=isolation.name_prefix,
        sweep_tag=isolation.sweep_tag,
    )


def _selected(spec: TargetSpec) -> list[TargetSpec]:
    """One spec per kind and region a selector target searches, with ``*`` resource ids."""
    assert spec.selector is not None  # noqa: S101 - the caller checked
    kinds = [
        k
        for k in spec.selector.resource_types or tuple(RESOURCE_SETTINGS)
        if k in RESOURCE_SETTINGS
    ]
    regions = spec.regions or spec.selector.regions or (None,)
    result = []
    for kind in kinds:
        for region in regions:
            settings = {**spec.settings, RESOURCE_SETTINGS[kind]: "*"}
            if region is not None:
                settings["region"] = region
            result.append(
                attrs.evolve(
                    spec, kind=kind, selector=None, regions=(), account=None, settings=settings
                )
            )
    return result


def _concrete_targets(policy: Policy, out: list[tuple[str, _Grant]]) -> list[TargetSpec]:
    """The targets to grant for: a selector target stands for any resource of its kinds.

    Its resources are found at run time, so their ids are ``*`` (deletes keep their ownership
    tag conditions). Adds ``tag:GetResources`` for selectors and ``sts:AssumeRole`` for the
    roles that targets name in ``account`` to *out* (both belong to the identity that runs the
    workflows; the resource actions belong to the assumed roles).
    """
    result: list[TargetSpec] = []
    selectors = False
    roles: set[str] = set()
    for spec in policy.targets:
        if not spec.enabled:
            continue
        if spec.account is not None:
            roles.add(spec.account.role_arn)
        if spec.selector is None:
            result.append(spec)
            continue
        selectors = True
        result.extend(_selected(spec))
    if selectors:
        out.append(("selector", _Grant(_all(), ("tag:GetResources",), ("*",))))
    if roles:
        out.append(("account", _Grant(_all(), ("sts:AssumeRole",), tuple(sorted(roles)))))
    return result


def _grants(
    policy: Policy, wanted: frozenset[str], account: str, partition: str, region: str | None
) -> list[tuple[str, _Grant]]:
    out: list[tuple[str, _Grant]] = []
    for spec in _concrete_targets(policy, out):
        if not spec.enabled:
            continue
        kind = get_target_class(spec.kind)
        declared = _declared(spec, kind)
        copy_keys = bool(getattr(kind, "iam_copy_keys", False))
        where = _where(policy, spec, account, partition, region)
        extra = [
            *(("kms", g) for g in _data_key_grants(spec, kind, where)),
            *((spec.kind, g) for g in _store_grants(policy, spec, where)),
        ]
        out += [(name, grant) for name, grant in extra if grant.workflows & wanted]
        if not declared and not copy_keys:
            continue
        out += [
            (spec.kind, grant)
            for grant in _kind_grants(spec, declared, where)
            if grant.workflows & wanted
        ]
        keys = [
            (str(t.location.get("region") or where.region), str(t.location["kms_key_id"]))
            for t in policy.copy_tiers_for(spec)
            if t.location.get("kms_key_id") and copy_keys and t.account is None
        ]
        out += [("kms", grant) for grant in _kms(where, keys) if grant.workflows & wanted]
        if "backup" in wanted:
            out += [("lock", grant) for grant in _lock_grants(policy, spec, where)]
        out += [
            g for g in _offsite_production(policy, spec, kind, where) if g[1].workflows & wanted
        ]
    return out


def _offsite_tiers(policy: Policy, spec: TargetSpec) -> list[Any]:
    return [t for t in policy.copy_tiers_for(spec) if t.account is not None]


def _offsite_declared(spec: TargetSpec, kind: object, side: str) -> Mapping[str, Any]:
    declare = getattr(kind, "iam_offsite_actions", None)
    if not callable(declare):
        raise PolicyError.for_field(
            f"targets[{spec.name}].tiers",
            "copy tiers in another account only for kinds that copy across accounts "
            "(rds-instance, aurora-cluster, ebs-volume, s3-bucket, directory)",
            spec.kind,
        )
    declared = declare(spec)
    return declared[side]  # type: ignore[no-any-return]


def _offsite_production(
    policy: Policy, spec: TargetSpec, kind: object, where: _Where
) -> list[tuple[str, _Grant]]:
    """Production's grants for *spec*'s tiers in other accounts: share, keys, assume the roles.

    Nothing on the backup account's copies: they are reached only through the tier's role.
    """
    tiers = _offsite_tiers(policy, spec)
    if not tiers:
        return []
    declared = _offsite_declared(spec, kind, "production")
    out = [(spec.kind, grant) for grant in _kind_grants(spec, declared, where)]
    roles = tuple(sorted({str(t.account.role_arn) for t in tiers}))
    out.append(("account", _Grant(_all(), ("sts:AssumeRole",), roles)))
    return out


def _backup_grants(
    policy: Policy, wanted: frozenset[str], account: str, partition: str, region: str | None
) -> list[tuple[str, _Grant]]:
    """The backup accounts' grants: per target and tier in another account, in that account."""
    out: list[tuple[str, _Grant]] = []
    for spec in _concrete_targets(policy, []):
        if not spec.enabled:
            continue
        tiers = _offsite_tiers(policy, spec)
        if not tiers:
            continue
        kind = get_target_class(spec.kind)
        declared = _offsite_declared(spec, kind, "backup")
        production = _where(policy, spec, account, partition, region)
        for tier in tiers:
            tier_region = str(tier.location["region"])
            where = attrs.evolve(
                production,
                account=str(tier.account_id),
                region=tier_region,
                regions=(tier_region,),
                source_account=account,
                store=str(tier.location.get("store", "*")).removeprefix("s3://"),
                tier_key=str(tier.location["kms_key_id"]),
            )
            out += [
                (spec.kind, grant)
                for grant in _kind_grants(spec, declared, where)
                if grant.workflows & wanted
            ]
            keys = [(tier_region, str(tier.location["kms_key_id"]))]
            out += [("kms", grant) for grant in _kms(where, keys) if grant.workflows & wanted]
            if "backup" in wanted:
                out += [("lock", grant) for grant in _offsite_lock_grants(spec, tier, where)]
    return out


def _offsite_lock_grants(spec: TargetSpec, tier: Any, w: _Where) -> list[_Grant]:
    """What the backup account's role needs to lock the copies of a locked *tier* there."""
    if tier.lock is None or not tier.lock.enabled:
        return []
    backup = frozenset({"backup"})
    if spec.kind in {"ebs-volume", "ec2-instance"}:
        ours = {"StringEquals": {f"aws:ResourceTag/{TAG_POLICY}": w.policy}}
        snapshot = f"arn:{w.partition}:ec2:{w.region}::snapshot/*"
        return [_Grant(backup, ("ec2:LockSnapshot",), (snapshot,), ours)]
    store = str(tier.location.get("store", ""))
    if spec.kind in {"s3-bucket", "directory"} and store.startswith("s3://"):
        path = store.removeprefix("s3://")
        return [
            _Grant(
                backup,
                ("s3:GetBucketObjectLockConfiguration",),
                (f"arn:{w.partition}:s3:::{path.split('/', 1)[0]}",),
            ),
            _Grant(backup, ("s3:PutObjectRetention",), (f"arn:{w.partition}:s3:::{path}*",)),
        ]
    return []


def _lock_grants(policy: Policy, spec: TargetSpec, w: _Where) -> list[_Grant]:
    """What the backup workflow needs to lock the points of *spec*'s locked tiers in this account.

    A tier in another account is locked by that account's role (`_offsite_lock_grants`).
    """
    own = [t for t in policy.tiers_for(spec) if t.account is None]
    if not any(t.lock is not None and t.lock.enabled for t in own):
        return []
    backup = frozenset({"backup"})
    ours = {"StringEquals": {f"aws:ResourceTag/{TAG_POLICY}": w.policy}}
    if spec.kind in {"ebs-volume", "ec2-instance"}:
        snapshots = tuple(f"arn:{w.partition}:ec2:{r}::snapshot/*" for r in w.regions)
        return [_Grant(backup, ("ec2:LockSnapshot",), snapshots, ours)]
    if spec.kind == "s3-bucket":
        buckets = {str(spec.settings["bucket"])}
        buckets |= {
            str(t.location["store"]).removeprefix("s3://").split("/", 1)[0]
            for t in own
            if str(t.location.get("store", "")).startswith("s3://")
        }
        return [
            _Grant(
                backup,
                ("s3:GetBucketObjectLockConfiguration",),
                tuple(f"arn:{w.partition}:s3:::{b}" for b in sorted(buckets)),
            ),
            _Grant(
                backup,
                ("s3:PutObjectRetention",),
                tuple(f"arn:{w.partition}:s3:::{b}/*" for b in sorted(buckets)),
            ),
        ]
    return []


HOLD_DENY_ACTIONS: Final = ("rds:DeleteDBClusterSnapshot", "rds:DeleteDBSnapshot")
"""What the deny statement of `hold_deny_policy` forbids on a held snapshot."""


def hold_deny_policy(
    *,
    account_id: str = "*",
    partition: str = "aws",
    tag: str = TAG_HOLD,
    release_role_arns: Iterable[str] = (),
) -> dict[str, Any]:
    """The deny statements that make AWS itself refuse to delete a held RDS snapshot.

    RDS cannot lock a snapshot, so a legal hold on one is a tag (``backuppolicy:legal-hold``)
    that only this library honours. Installed where it binds every principal that could delete
    snapshots (an SCP of the account's organisation unit, a permissions boundary, or the
    policies of every role), this document denies ``DeleteDBSnapshot`` and
    ``DeleteDBClusterSnapshot`` on any snapshot carrying the tag, and denies removing the tag
    itself, except to the *release_role_arns* (the people who release holds).

    Example:
        >>> doc = hold_deny_policy(account_id="123456789012")
        >>> doc["Statement"][0]["Condition"]
        {'Null': {'aws:ResourceTag/backuppolicy:legal-hold': 'false'}}
    """
    rds = f"arn:{partition}:rds:*:{account_id}"
    resources = [f"{rds}:cluster-snapshot:*", f"{rds}:snapshot:*"]
    release = sorted(release_role_arns)
    untag: dict[str, Any] = {
        "Sid": "DenyRemovingTheLegalHoldTag",
        "Effect": "Deny",
        "Action": ["rds:RemoveTagsFromResource"],
        "Resource": resources,
        "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": [tag]}},
    }
    if release:
        untag["Condition"]["ArnNotLike"] = {"aws:PrincipalArn": release}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyDeletingHeldSnapshots",
                "Effect": "Deny",
                "Action": list(HOLD_DENY_ACTIONS),
                "Resource": resources,
                "Condition": {"Null": {f"aws:ResourceTag/{tag}": "false"}},
            },
            untag,
        ],
    }


def _check_workflows(actions: Iterable[str]) -> frozenset[str]:
    if isinstance(actions, str):
        actions = {actions}
    wanted = frozenset(actions)
    unknown = sorted(wanted - set(WORKFLOWS))
    if unknown:
        raise PolicyError.for_field(
            "actions", "workflows among " + ", ".join(WORKFLOWS), unknown[0]
        )
    return wanted


def iam_policy(
    policy: Policy,
    actions: Iterable[str] = WORKFLOWS,
    *,
    account_id: str = "*",
    partition: str = "aws",
    region: str | None = None,
    side: str = "production",
) -> dict[str, Any]:
    """The IAM policy document that lets *actions* (workflows) run for the targets of *policy*.

    *side* ``"production"`` (the default) is the document of the account the targets live in;
    for copy tiers in another account (a tier's ``account``) it grants sharing its snapshots
    and ``sts:AssumeRole`` on the tier's role, and nothing on the backup account's copies.
    ``"backup"`` is the document of the backup accounts' roles: copy in with their key, tag,
    list, prune and restore-test their copies (*account_id* is then production's, the account
    copied from).

    Statements with the same actions and condition are merged (their resources united), so the
    document stays small as targets are added. Every kind, built-in or plug-in, is asked for
    its statements the same way (its class's ``iam_actions(spec)``,
    `~backuppolicy.core.targets.TargetKind`); a kind that does not say is refused, never left
    out. Directory targets declare none (``{}``): their ``s3://`` stores in this account and the
    KMS key of their ``settings.encryption`` are granted here. The statements may hold the
    placeholders of `backuppolicy.aws._iam_statements` (partition, account, region, the copy
    tiers' regions, the policy's name, the isolation profile's prefix and sweep tag), filled in
    here; a kind whose class has ``iam_copy_keys = True`` also gets the use of its copy tiers'
    ``kms_key_id``.

    Args:
        policy: The policy.
        actions: Workflows among `WORKFLOWS`.
        account_id: Account id in ARNs (default ``*``).
        partition: ARN partition.
        region: Region of targets whose settings name none (default ``*``).
        side: ``"production"`` or ``"backup"`` (see above).

    Raises:
        PolicyError: *actions* names an unknown workflow, *side* is neither, or a target's kind does not name
            the IAM actions it needs.
        BackendNotFoundError: A target's kind is not installed.

    Example:
        >>> policy = Policy.from_dict({"name": "shop", "schedule": {"every": "day"},
        ...     "retention": {"max_age": "35d"}, "targets": [{"name": "db", "kind": "rds-instance",
        ...     "settings": {"db_instance_id": "shop", "region": "eu-west-2"}}]})
        >>> doc = iam_policy(policy, {"prune"}, account_id="123456789012")
        >>> [s["Action"] for s in doc["Statement"]]
        [['rds:DescribeDBSnapshots'], ['rds:DeleteDBSnapshot']]
        >>> doc["Statement"][1]["Condition"]
        {'StringEquals': {'aws:ResourceTag/backuppolicy:policy': 'shop'}}
    """
    wanted = _check_workflows(actions)
    if side not in ("production", "backup"):
        raise PolicyError.for_field("side", "'production' or 'backup'", side)
    make = _grants if side == "production" else _backup_grants
    merged: dict[tuple[tuple[str, ...], str], dict[str, Any]] = {}
    for kind, grant in make(policy, wanted, account_id, partition, region):
        key = (tuple(sorted(grant.actions)), repr(sorted((grant.condition or {}).items())))
        statement = merged.get(key)
        if statement is None:
            statement = merged[key] = {
                "Sid": _sid(kind, *sorted(grant.actions)[:1], str(len(merged))),
                "Effect": "Allow",
                "Action": sorted(grant.actions),
                "Resource": [],
            }
            if grant.condition:
                statement["Condition"] = dict(grant.condition)
        for resource in grant.resources:
            if resource not in statement["Resource"]:
                statement["Resource"].append(resource)
    statements = []
    for statement in merged.values():
        resources = statement["Resource"]
        statement["Resource"] = ["*"] if "*" in resources else sorted(resources)
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def iam_table(policy: Policy) -> list[dict[str, Any]]:
    """One row per (workflow, IAM action) the policy needs: for the reference docs and the CLI.

    Each row has ``workflow``, ``action``, ``kinds`` (the target kinds needing it) and
    ``conditions`` (the IAM conditions of its statements; an empty list means none).

    Example:
        >>> policy = Policy.from_dict({"name": "shop", "schedule": {"every": "day"},
        ...     "retention": {"max_age": "35d"}, "targets": [{"name": "db", "kind": "ebs-volume",
        ...     "settings": {"volume_id": "vol-1"}}]})
        >>> [row["action"] for row in iam_table(policy) if row["workflow"] == "prune"]
        ['ec2:DeleteSnapshot', 'ec2:DescribeSnapshots']
    """
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for workflow in WORKFLOWS:
        for kind, grant in _grants(policy, frozenset({workflow}), "*", "aws", None):
            for action in grant.actions:
                row = rows.setdefault(
                    (workflow, action),
                    {"workflow": workflow, "action": action, "kinds": [], "conditions": []},
                )
                if kind not in row["kinds"]:
                    row["kinds"].append(kind)
                if grant.condition and grant.condition not in row["conditions"]:
                    row["conditions"].append(dict(grant.condition))
    return [rows[key] for key in sorted(rows, key=lambda k: (WORKFLOWS.index(k[0]), k[1]))]
