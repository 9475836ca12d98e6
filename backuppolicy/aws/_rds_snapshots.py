"""The snapshots of the RDS targets: list, create, copy, delete, hold, sharing.

`RdsSnapshots` is the mixin of `RdsInstance` and `AuroraCluster` that makes manual
snapshots named ``bp-<target>-<UTC stamp>[-<token digest>]`` (the stamp is the slot of a
scheduled backup, the time of a manual one: `backuppolicy.core.naming`), copies them to
another region (re-encrypting with the destination's KMS key) and deletes only what
the target owns.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from backuppolicy.aws._rds_base import (
    OUR_PREFIX,
    RdsBase,
    encode_tag,
    identifier,
    region_of,
    sha8,
)
from backuppolicy.core.exceptions import (
    BackendError,
    PolicyError,
    ProtectedPointError,
    ResourceNotFoundError,
)
from backuppolicy.core.model import (
    TAG_HOLD,
    TAG_POLICY,
    TAG_REASON,
    TAG_TARGET,
    TAG_TIER,
    TAG_TOKEN,
    LegalHold,
    RecoveryPoint,
    Status,
)
from backuppolicy.core.naming import name_stamp, token_stamp
from backuppolicy.core.targets import (
    Destination,
)

if TYPE_CHECKING:
    from backuppolicy.aws._offsite import OffsiteAccount
    from backuppolicy.core.concurrency import AdaptiveLimit

__all__ = ["RdsSnapshots"]

_TAG_ALLOWED_RE = re.compile(r"^[\w\s.:/=+\-@]*$")


def _newest_by_tier(points: Iterable[RecoveryPoint]) -> dict[str, RecoveryPoint]:
    """The newest completed managed point of each tier (ties: `RecoveryPoint.order_key`)."""
    newest: dict[str, RecoveryPoint] = {}
    for point in points:
        if point.is_good and point.managed:
            best = newest.get(point.tier)
            if best is None or point.order_key > best.order_key:
                newest[point.tier] = point
    return newest


def _succeeded(future: Future[bool]) -> bool:
    return (
        future.done() and not future.cancelled() and future.exception() is None and future.result()
    )


# --------------------------------------------------------------------------- shared base


_SNAPSHOT_KINDS = frozenset({"rds-snapshot", "rds-cluster-snapshot"})


class RdsSnapshots(RdsBase):
    """Lists, creates, copies, deletes and holds the snapshots of the instance or cluster."""

    def _snapshots(self, region: str, **params: Any) -> Iterator[dict[str, Any]]:
        api = self._api
        for page in self.paginate(
            "rds",
            api.describe_snapshots,
            resource=self.resource_id,
            region=region,
            MaxRecords=100,
            **params,
        ):
            yield from page.get(api.snapshots_key, [])

    def list_points(self) -> Iterator[RecoveryPoint]:
        """Stream the manual and automated snapshots, in the target's region then the copy regions.

        Automated snapshots are listed with ``managed=False`` (RDS expires them after the
        retention period); manual ones are ``managed=True`` when they carry this policy's and
        this target's ownership tags. Every page is read with retries; a page that finally
        fails raises `backuppolicy.BackendError`, never a shorter listing.
        """
        for region in (self.region, *(r for r in self.copy_regions if r != self.region)):
            for raw in self._snapshots(region, **{self._api.resource_param: self.resource_id}):
                yield self._to_point(raw, region)

    def _snapshot_name(self, token: str | None) -> str:
        stamp = name_stamp(token, self._now())
        suffix = stamp if token is None else f"{stamp}-{sha8(token)}"
        return identifier(f"bp-{self.name}-{suffix}", max_length=self._api.snapshot_max_length)

    def _our_tags(self, reason: str, token: str) -> dict[str, str]:
        return {
            TAG_POLICY: encode_tag(self.policy, field="policy"),
            TAG_TARGET: encode_tag(self.name, field="name"),
            TAG_REASON: encode_tag(reason, field="reason"),
            TAG_TOKEN: encode_tag(token, field="token"),
            TAG_TIER: "local",
        }

    def _legacy_name(self, token: str) -> str:
        """The name a snapshot of *token* had before the naming rule: ``bp-<target>-<token>``."""
        suffix = re.sub(r"[^a-z0-9]+", "-", token.lower()).strip("-")
        if suffix != token:  # "run 1" and "run-1" did not share a name
            suffix = f"{suffix}-{sha8(token)}"
        return identifier(f"bp-{self.name}-{suffix}", max_length=self._api.snapshot_max_length)

    def _find_token(self, token: str) -> RecoveryPoint | None:
        """The snapshot of this target made for *token*, if any (a retried or repeated call).

        A token with a stamp (`backuppolicy.core.naming.token_stamp`: every scheduled and
        default manual token) names its snapshot whatever the time of the call. Under the
        naming rule's name, RDS itself finds it: ``CreateDBSnapshot`` answers
        ``DBSnapshotAlreadyExists``, and `create_backup` then reads it. Here the snapshot is
        looked up only under the name it had before that rule (``bp-<target>-<token>``), in one
        small call. Only a token without a stamp, whose name carries the time of the call, is
        searched for among all the manual snapshots of the instance or cluster.
        """
        if token_stamp(token) is not None:
            legacy = self._legacy_name(token)
            if legacy == self._snapshot_name(token):
                return None  # the create finds it (DBSnapshotAlreadyExists)
            point = self._describe_snapshot(legacy, self.region)
            return point if point is not None and self._made_for(point, token) else None
        for raw in self._snapshots(
            self.region, SnapshotType="manual", **{self._api.resource_param: self.resource_id}
        ):
            point = self._to_point(raw, self.region)
            if self._made_for(point, token):
                return point
        return None

    def _made_for(self, point: RecoveryPoint, token: str) -> bool:
        """Whether *point* is a manual snapshot of this target made for *token*."""
        return (
            point.details.get("snapshot_type") == "manual"
            and point.details.get("source") == self.resource_id
            and point.tags.get(TAG_TOKEN) == token
            and point.tags.get(TAG_TARGET) == self.name
        )

    def create_backup(
        self,
        *,
        reason: str = "scheduled",
        tags: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> RecoveryPoint:
        """Take a manual snapshot now and return its point (usually `Status.PENDING`).

        The snapshot is named ``bp-<target>-<stamp>``, or ``bp-<target>-<stamp>-<token digest>``
        when a *token* is given; the stamp is the slot of a scheduled backup and the time a
        manual one was taken (the rule of `backuppolicy.core.naming`). It carries the
        ownership tags. The same *token* returns the
        existing snapshot (with its ``backuppolicy:token`` tag) instead of a duplicate: a
        token with a stamp (every scheduled and default manual token) finds it by its name
        (the create is refused as a duplicate, and the snapshot is read), and under the name
        it had before the naming rule in one small call; a token without a stamp by reading
        the instance's or cluster's manual snapshots.

        Raises:
            PolicyError: A tag in *tags* is not valid for RDS.
            BackendError: The snapshot name is taken by a snapshot this call did not make.
        """
        user_tags = dict(tags or {})
        for key, value in user_tags.items():
            if not isinstance(value, str) or not _TAG_ALLOWED_RE.match(value):
                raise PolicyError.for_field(
                    f"tags[{key!r}]",
                    "letters, digits, white space or _ . : / = + - @ (RDS tag values)",
                    value,
                )
            if key.startswith(("aws:", "rds:", OUR_PREFIX)):
                raise PolicyError.for_field(
                    "tags", "keys not starting with 'aws:', 'rds:' or 'backuppolicy:'", key
                )
        if token is not None:
            if not isinstance(token, str) or not token:
                raise PolicyError.for_field("token", "a non-empty string or None", token)
            existing = self._find_token(token)
            if existing is not None:
                return existing
        name = self._snapshot_name(token)
        effective = token if token is not None else uuid.uuid4().hex
        all_tags = {**user_tags, **self._our_tags(reason, effective)}
        api = self._api
        try:
            result = self.call(
                "rds",
                api.create_snapshot,
                resource=name,
                **{api.snapshot_param: name, api.resource_param: self.resource_id},
                Tags=[{"Key": k, "Value": v} for k, v in all_tags.items()],
            )
        except BackendError as exc:
            if "AlreadyExists" not in exc.code:
                raise
            # A retried create whose first response was lost: the snapshot is ours if it
            # carries our token; otherwise the name is taken and we must not pretend.
            point = self._describe_snapshot(name, self.region)
            if point is not None and point.tags.get(TAG_TOKEN) == effective:
                return point
            raise BackendError(
                f"{self.name}: snapshot name {name!r} is taken by a snapshot this call did not "
                f"create (token {point.tags.get(TAG_TOKEN) if point else None!r}, expected "
                f"{effective!r}); use another token",
                backend=self.name,
                operation=exc.operation,
                resource=name,
                code=exc.code,
            ) from exc
        return self._to_point(result[api.snapshot_key], self.region)

    # ----------------------------------------------------------------- copy

    def copy(self, point: RecoveryPoint, destination: Destination) -> RecoveryPoint:
        """Copy *point* to ``destination.region`` and return the copy (usually pending).

        The copy is made by the destination region's client (``SourceRegion`` and the
        source ARN), keeps the source's tags and gets ``backuppolicy:tier`` =
        ``destination.tier`` and this target's ownership tags. An encrypted snapshot needs
        ``destination.kms_key_id``, a key in the destination region. Copying the same point
        to the same destination again returns the existing copy.

        Raises:
            PolicyError: No destination region, an encrypted source without
                ``destination.kms_key_id``, a cross-account destination, or a point that is
                not completed. Raised before any AWS call.
        """
        region = destination.region
        if not region:
            raise PolicyError.for_field("destination.region", "an AWS region name", region)
        if destination.account is not None:
            raise PolicyError.for_field(
                "destination.account",
                "None (share the snapshot and copy it from the other account instead)",
                destination.account,
            )
        if point.encrypted and not destination.kms_key_id:
            raise PolicyError.for_field(
                "destination.kms_key_id",
                f"a KMS key id or ARN in {region} because snapshot {point.id!r} is encrypted",
                destination.kms_key_id,
            )
        if point.status is not Status.COMPLETED:
            raise PolicyError.for_field(
                "point.status",
                f"completed (RDS copies only available snapshots; {point.id!r} is not)",
                point.status.value,
            )
        source_region = region_of(point, self.region)
        arn = point.details.get("arn") or self._arn_of(point)
        same_region = region == source_region
        # Always suffixed with the tier, also across regions: RDS identifiers are unique per
        # region only, and a plan across tiers needs one id per point.
        target_id = identifier(
            f"{point.id}-{destination.tier}", max_length=self._api.snapshot_max_length
        )
        existing = self._describe_snapshot(target_id, region)
        if existing is not None:
            if existing.tags.get(TAG_TARGET) == self.name:
                return existing
            raise BackendError(
                f"{self.name}: copy name {target_id!r} in {region} is taken by a snapshot of "
                f"another target ({existing.tags.get(TAG_TARGET)!r})",
                backend=self.name,
                operation=self._api.copy_snapshot,
                resource=target_id,
            )
        tags = {
            key: encode_tag(value, field=f"tags[{key!r}]") if key.startswith(OUR_PREFIX) else value
            for key, value in point.tags.items()
            if key != TAG_HOLD  # a hold protects the held copy, not every copy of it
        }
        tags.setdefault(TAG_REASON, "copy")
        tags.update(
            {
                TAG_POLICY: encode_tag(self.policy, field="policy"),
                TAG_TARGET: encode_tag(self.name, field="name"),
                TAG_TIER: encode_tag(destination.tier, field="destination.tier"),
            }
        )
        api = self._api
        params: dict[str, Any] = {
            api.copy_source_param: arn,
            api.copy_target_param: target_id,
            "CopyTags": True,
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        }
        if not same_region:
            params["SourceRegion"] = source_region
        if destination.kms_key_id:
            params["KmsKeyId"] = destination.kms_key_id
        result = self.call("rds", api.copy_snapshot, resource=target_id, region=region, **params)
        return self._to_point(result[api.snapshot_key], region)

    # ----------------------------------------------------------------- copy across accounts

    def _copy_id(self, point: RecoveryPoint, tier: str) -> str:
        return identifier(f"{point.id}-{tier}", max_length=self._api.snapshot_max_length)

    def existing_copy(self, point: RecoveryPoint, account: OffsiteAccount) -> RecoveryPoint | None:
        """In the backup account (this target is its backend): the copy of *point*, if made.

        Raises:
            BackendError: The copy's name is taken by a snapshot of another target.
        """
        copy_id = self._copy_id(point, account.tier)
        existing = self._describe_snapshot(copy_id, account.region)
        if existing is None:
            return None
        if existing.tags.get(TAG_TARGET) != self.name:
            raise BackendError(
                f"{self.name}: copy name {copy_id!r} in account {account.account_id} "
                f"{account.region} is taken by a snapshot of another target "
                f"({existing.tags.get(TAG_TARGET)!r})",
                backend=self.name,
                operation=self._api.copy_snapshot,
                resource=copy_id,
            )
        return existing

    def copy_shared(
        self, point: RecoveryPoint, source_arn: str, account: OffsiteAccount
    ) -> RecoveryPoint:
        """In the backup account: copy the snapshot *source_arn* shared with it, with its key.

        The copy is named ``<point id>-<tier>``, encrypted with ``account.kms_key_id`` (AWS
        requires a key of the copying account for a shared encrypted snapshot) and tagged as
        ours (policy, target, tier, reason and the source's token); tags are given, not copied
        (a shared snapshot's tags are not readable across accounts).
        """
        tags = {
            key: encode_tag(value, field=f"tags[{key!r}]") if key.startswith(OUR_PREFIX) else value
            for key, value in point.tags.items()
            if key != TAG_HOLD
        }
        tags.setdefault(TAG_REASON, "copy")
        tags.update(
            {
                TAG_POLICY: encode_tag(self.policy, field="policy"),
                TAG_TARGET: encode_tag(self.name, field="name"),
                TAG_TIER: encode_tag(account.tier, field="tier"),
            }
        )
        api = self._api
        copy_id = self._copy_id(point, account.tier)
        params: dict[str, Any] = {
            api.copy_source_param: source_arn,
            api.copy_target_param: copy_id,
            "KmsKeyId": account.kms_key_id,
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        }
        source_region = source_arn.split(":")[3]
        if source_region != account.region:
            params["SourceRegion"] = source_region
        result = self.call(
            "rds", api.copy_snapshot, resource=copy_id, region=account.region, **params
        )
        return self._to_point(result[api.snapshot_key], account.region)

    def _check_shareable(self, point: RecoveryPoint) -> None:
        """Refuse a point that is not completed, or encrypted with the default ``aws/rds`` key."""
        if point.status is not Status.COMPLETED:
            raise PolicyError.for_field(
                "point.status",
                f"completed (RDS shares only available snapshots; {point.id!r} is not)",
                point.status.value,
            )
        key = point.details.get("kms_key_id")
        if point.encrypted and key:
            described = self.call(
                "kms",
                "describe_key",
                resource=str(key),
                region=region_of(point, self.region),
                KeyId=str(key),
            )
            if described.get("KeyMetadata", {}).get("KeyManager") == "AWS":
                raise PolicyError.for_field(
                    "point.kms_key_id",
                    "a customer managed key (AWS refuses to share snapshots encrypted with the "
                    "default aws/rds key; encrypt the database with a key whose policy lets the "
                    "backup account use it)",
                    key,
                )

    def _attribute_call(self, point: RecoveryPoint, account_id: str, change: str) -> None:
        cluster = point.kind == "rds-cluster-snapshot"
        operation = (
            "modify_db_cluster_snapshot_attribute" if cluster else "modify_db_snapshot_attribute"
        )
        self.call(
            "rds",
            operation,
            resource=point.id,
            region=region_of(point, self.region),
            **{self._api.snapshot_param: point.id},
            AttributeName="restore",
            **{change: [account_id]},
        )

    def _share(self, point: RecoveryPoint, account_id: str) -> str:
        """Let *account_id* copy the snapshot (attribute ``restore``); return its ARN."""
        arn = str(point.details.get("arn") or self._arn_of(point))
        self._attribute_call(point, account_id, "ValuesToAdd")
        return arn

    def _unshare(self, point: RecoveryPoint, account_id: str) -> None:
        """Remove *account_id* from the snapshot's ``restore`` attribute."""
        self._attribute_call(point, account_id, "ValuesToRemove")

    def _arn_of(self, point: RecoveryPoint) -> str:
        fresh = self.refresh(point)
        if fresh is None:
            raise ResourceNotFoundError(
                f"{self.name}: snapshot {point.id!r} does not exist",
                backend=self.name,
                operation=self._api.describe_snapshots,
                resource=point.id,
            )
        return str(fresh.details["arn"])

    # ----------------------------------------------------------------- delete

    def _check_deletable(self, point: RecoveryPoint) -> None:
        why = ""
        if point.target != self.name or point.kind != self._api.kind:
            why = f"it belongs to {point.kind} target {point.target!r}, not to {self.name!r}"
        elif not point.managed:
            why = "it is not managed by this policy (automated, or not tagged as ours)"
        elif point.legal_hold is not None:
            why = f"it is under {point.legal_hold.describe()}"
        elif point.status is Status.PENDING:
            why = "it is still pending"
        if why:
            raise ProtectedPointError(
                f"{self.name}: refusing to delete snapshot {point.id!r}: {why}; nothing was deleted",
                point=point,
            )

    def _delete_snapshot(self, point: RecoveryPoint) -> None:
        api = self._api
        try:
            self.call(
                "rds",
                api.delete_snapshot,
                resource=point.id,
                region=region_of(point, self.region),
                **{api.snapshot_param: point.id},
            )
        except ResourceNotFoundError:
            # It existed a moment ago: a retry after a lost response finds it gone. Gone is
            # what was asked for, and the delete call was not repeated on a live snapshot.
            return

    def _missing(self, point: RecoveryPoint) -> ResourceNotFoundError:
        return ResourceNotFoundError(
            f"{self.name}: snapshot {point.id!r} does not exist (any more)",
            backend=self.name,
            operation=self._api.describe_snapshots,
            resource=point.id,
        )

    def delete(self, point: RecoveryPoint) -> None:
        """Delete the snapshot of *point*, after re-reading it from RDS.

        Both the given point and the snapshot as RDS reports it now must be managed by this
        target, without legal hold and not pending.

        Raises:
            ProtectedPointError: *point* is not managed by this target, under legal hold or
                pending; nothing is deleted.
            ResourceNotFoundError: The snapshot does not exist.
        """
        self._check_deletable(point)
        current = self.refresh(point)
        if current is None:
            raise self._missing(point)
        self._check_deletable(current)
        self._delete_snapshot(current)

    def delete_limit(self, point: RecoveryPoint) -> AdaptiveLimit:
        """The shared `AdaptiveLimit` of RDS calls in the region of *point*.

        AWS throttles RDS per account and region with one token bucket (by default a burst of
        300 requests and 12 a second sustained, see ``docs/explanation/aws-request-rates.md``); every
        fan-out of deletes against that region shares this limit.
        """
        return self.adaptive_limit("rds", region_of(point, self.region))

    def delete_many(
        self, points: Iterable[RecoveryPoint], *, max_workers: int | None = None
    ) -> list[str]:
        """Delete *points* concurrently; return the deleted ids.

        Every point is checked, as given and as one fresh listing per region reports it,
        before the first delete: if any is protected (held, pending, not ours, or the newest
        completed snapshot of its tier, which retention always keeps), nothing is deleted. Points that are
        already gone are skipped (not in the result). The first error of a worker stops the
        deletes not started yet and is raised.

        Concurrency adapts (`delete_limit`): it starts at 8 deletes in flight and grows while
        RDS answers without throttling, up to 32 (or *max_workers*); a ``Throttling`` answer
        halves it (the throttled call itself is retried with backoff by the `RetryPolicy`).

        Example:
            >>> plan = rule.plan(db.list_points(), now=now)  # doctest: +SKIP
            >>> db.delete_many(plan.delete)  # doctest: +SKIP
            ['bp-orders-db-20261001t040000z', ...]

        Raises:
            ProtectedPointError: One of *points* may not be deleted, or is the newest completed
                snapshot of its tier (nothing was deleted).
            PolicyError: *max_workers* is not a positive integer.
        """
        workers = self.max_workers if max_workers is None else max_workers
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
        ):
            raise PolicyError.for_field("max_workers", "None or an integer >= 1", workers)
        live = self._live_to_delete(list(points))
        if not live:
            return []
        return self._delete_concurrently(live, workers)

    def _live_to_delete(self, todo: list[RecoveryPoint]) -> list[RecoveryPoint]:
        """*todo* as one fresh listing per region reports it, every one checked (see `delete_many`)."""
        for point in todo:
            self._check_deletable(point)
        fresh: dict[tuple[str, str], RecoveryPoint] = {}
        for region in dict.fromkeys(region_of(p, self.region) for p in todo):
            for raw in self._snapshots(
                region, SnapshotType="manual", **{self._api.resource_param: self.resource_id}
            ):
                listed = self._to_point(raw, region)
                fresh[(listed.id, region)] = listed
        newest = _newest_by_tier(fresh.values())
        live = []
        for point in todo:
            current = fresh.get((point.id, region_of(point, self.region)))
            if current is not None:
                self._check_deletable(current)
                if newest.get(current.tier) is current:
                    raise ProtectedPointError(
                        f"{self.name}: refusing to delete snapshot {current.id!r}: it is the "
                        f"newest completed snapshot of tier {current.tier!r}; nothing was deleted",
                        point=current,
                    )
                live.append(current)
        return live

    def _delete_concurrently(self, live: list[RecoveryPoint], workers: int | None) -> list[str]:
        """Delete *live* in slots of `delete_limit` (at most *workers* at once); stop at an error."""
        stop = threading.Event()

        def delete(point: RecoveryPoint) -> bool:
            with self.delete_limit(point).slot():
                if stop.is_set():  # waited for a slot while another delete failed
                    return False
                try:
                    self._delete_snapshot(point)
                except BaseException:
                    stop.set()
                    raise
                return True

        pool_size = min(len(live), workers or max(self.delete_limit(p).cap for p in live))
        with ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="bp-rds-delete") as pool:
            futures = [pool.submit(delete, point) for point in live]
            _done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()  # stop at the first error; running deletes finish
        deleted = [p.id for p, f in zip(live, futures, strict=True) if _succeeded(f)]
        errors = [f.exception() for f in futures if not f.cancelled() and f.exception()]
        if errors:
            error = errors[0]
            assert error is not None  # noqa: S101 - narrowed for mypy
            error.add_note(f"{len(deleted)} of {len(live)} snapshots were deleted before it")
            raise error
        return deleted

    # ----------------------------------------------------------------- holds

    def place_hold(self, point: RecoveryPoint, hold: LegalHold) -> RecoveryPoint:
        """Put *point* under legal *hold* (a tag on the snapshot); return the held point.

        Raises:
            PolicyError: *point* is an automated snapshot (RDS deletes those whatever their
                tags: copy it first and hold the copy).
        """
        if point.details.get("snapshot_type") == "automated":
            raise PolicyError.for_field(
                "point",
                "a manual snapshot (RDS expires automated snapshots whatever their tags; copy it first)",
                point.id,
            )
        value = encode_tag(hold.to_tag(), field="hold")
        arn = point.details.get("arn") or self._arn_of(point)
        self.call(
            "rds",
            "add_tags_to_resource",
            resource=point.id,
            region=region_of(point, self.region),
            ResourceName=arn,
            Tags=[{"Key": TAG_HOLD, "Value": value}],
        )
        return point.evolve(legal_hold=hold, tags={**point.tags, TAG_HOLD: hold.to_tag()})

    def release_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Remove the legal hold tag from *point*; return the released point."""
        arn = point.details.get("arn") or self._arn_of(point)
        self.call(
            "rds",
            "remove_tags_from_resource",
            resource=point.id,
            region=region_of(point, self.region),
            ResourceName=arn,
            TagKeys=[TAG_HOLD],
        )
        tags = {k: v for k, v in point.tags.items() if k != TAG_HOLD}
        return point.evolve(legal_hold=None, tags=tags)

    def is_database_snapshot(self, point: RecoveryPoint) -> bool:
        """Whether *point* is a DB (cluster) snapshot; RDS keeps no checksum of it."""
        return point.kind in _SNAPSHOT_KINDS

    def point_sharing(
        self, point: RecoveryPoint | None, *, region: str | None
    ) -> tuple[dict[str, Any], list[str]] | None:
        """Whether the snapshot *point* can be restored by everyone (``restore`` holds ``all``)."""
        if point is None or point.kind not in _SNAPSHOT_KINDS:
            return None
        if point.kind == "rds-cluster-snapshot":
            result = self.call(
                "rds",
                "describe_db_cluster_snapshot_attributes",
                resource=point.id,
                region=region,
                DBClusterSnapshotIdentifier=point.id,
            )
            attributes = result.get("DBClusterSnapshotAttributesResult", {}).get(
                "DBClusterSnapshotAttributes", []
            )
        else:
            result = self.call(
                "rds",
                "describe_db_snapshot_attributes",
                resource=point.id,
                region=region,
                DBSnapshotIdentifier=point.id,
            )
            attributes = result.get("DBSnapshotAttributesResult", {}).get(
                "DBSnapshotAttributes", []
            )
        restore = [
            str(v)
            for a in attributes
            if a.get("AttributeName") == "restore"
            for v in a.get("AttributeValues", [])
        ]
        issues = (
            [f"snapshot {point.id}: restore attribute shared with 'all'"]
            if "all" in restore
            else []
        )
        return {"restore_shared_with": restore}, issues
