"""Off-site copies in another account: the tiers that name an ``account``, and their backends.

A tier with an ``account`` (`~backuppolicy.core.specs.TierSpec`) keeps its copies in another AWS
account (the backup account), reached by assuming the tier's role. `offsite_accounts` reads those
tiers from the policy for one target; `OffsiteCopies` is the mixin of the RDS and EBS targets that
builds, per such account, a *sibling*: the same target kind, with the same name and policy, whose
session is the assumed role's and whose region is the tier's. Every operation on a point then goes
to the backend of the account that holds it (the point's ``location`` is ``aws:<account>:<region>``):

* `list_points` merges the target's own points with those of each sibling, so list, prune,
  verify, integrity, restore test, restore and audit see the copies as points of their tier;
* `refresh`, `delete`, the holds and `restore` of an off-site point run with the backup
  account's credentials only: the production account's own clients never touch them;
* `copy` to such a tier shares the snapshot with the backup account, has the sibling copy it
  with the backup account's key, and removes the share in a ``finally`` (also when the copy
  fails). Each kind gives the three steps (``_share``, ``_unshare``, ``_copy_shared``).

AWS refuses to share snapshots encrypted with the account's default key (``aws/rds``,
``aws/ebs``): https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/share-encrypted-snapshot.html
and https://docs.aws.amazon.com/ebs/latest/userguide/ebs-modifying-snapshot-permissions.html, so
`OffsiteCopies.copy` refuses such a source before sharing anything (``kms:DescribeKey``).

A run whose own credentials are already the backup account's (a scheduled prune inside the
backup account) uses them instead of assuming the tier's role: the role production assumes can
then be limited to copying in, and only the backup account itself deletes its copies.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Self

import attrs

from backuppolicy.aws._client import AwsBackend
from backuppolicy.aws.accounts import assume_role_session
from backuppolicy.core.exceptions import BackendError, PolicyError
from backuppolicy.core.model import RecoveryPoint

if TYPE_CHECKING:
    import boto3

    from backuppolicy.core.policy import Policy, TargetSpec

    # A type only: a prune job that builds its target in code never loads the policy schema.
    from backuppolicy.core.specs import AccountSpec
    from backuppolicy.core.targets import Destination

__all__ = [
    "OffsiteAccount",
    "OffsiteCopies",
    "account_of",
    "offsite_accounts",
    "own_copy_regions",
]

_log = logging.getLogger(__name__)


@attrs.frozen
class OffsiteAccount:
    """A copy tier in another account: its role, region and the key copies are encrypted with.

    Attributes:
        tier: Name of the tier.
        account: The role to assume in the backup account.
        region: Region of the copies in the backup account.
        kms_key_id: ARN of the backup account's key that encrypts the copies.
    """

    tier: str
    account: AccountSpec
    region: str
    kms_key_id: str

    @property
    def account_id(self) -> str:
        """The backup account's id."""
        return self.account.account_id


def offsite_accounts(policy: Policy, spec: TargetSpec) -> tuple[OffsiteAccount, ...]:
    """The copy tiers of *spec* that live in another account (a tier with ``account``)."""
    return tuple(
        OffsiteAccount(
            tier.name,
            tier.account,
            str(tier.location["region"]),
            str(tier.location["kms_key_id"]),
        )
        for tier in policy.copy_tiers_for(spec)
        if tier.account is not None
    )


def own_copy_regions(policy: Policy, spec: TargetSpec) -> list[str]:
    """The regions of *spec*'s copy tiers in its own account (tiers without ``account``)."""
    return [
        str(t.location["region"])
        for t in policy.copy_tiers_for(spec)
        if "region" in t.location and t.account is None
    ]


def account_of(point: RecoveryPoint) -> str | None:
    """The account that holds *point* (from its ``location``, ``aws:<account>:<region>``)."""
    parts = point.location.split(":")
    if len(parts) == 3 and parts[0] == "aws" and parts[1]:  # noqa: PLR2004
        return parts[1]
    account = point.details.get("account")
    return str(account) if account else None


class OffsiteCopies:
    """Mixin: route the points of off-site accounts to a backend of that account (see module).

    The class it is mixed into gives ``_sibling(session, region)`` (a target of its own kind for
    another account), ``_share``, ``_unshare`` and ``_copy_shared``. Place it first in the bases.
    """

    offsite: tuple[OffsiteAccount, ...] = ()
    """The copy tiers in other accounts (set by ``from_spec`` or `with_offsite`)."""

    def with_offsite(
        self, accounts: Iterable[OffsiteAccount], *, base_session: boto3.Session | None = None
    ) -> Self:
        """Copy to, list in and delete from *accounts* through their assumed roles; return self.

        *base_session* assumes the roles (default: this target's session).
        """
        self.offsite = tuple(accounts)
        self._offsite_base = base_session
        self._siblings: dict[str, Any] = {}
        self._siblings_lock = threading.Lock()
        return self

    # -- the backends of the other accounts ------------------------------------------------

    def offsite_account_for(self, destination: Destination) -> OffsiteAccount:
        """The tier account *destination* names, checked against the tier and its region.

        Raises:
            PolicyError: No tier of the target reaches that account with a role, or the
                destination names another region than the tier's.
        """
        account = next(
            (
                a
                for a in self.offsite
                if a.account_id == destination.account and a.tier == destination.tier
            ),
            None,
        )
        if account is None:
            raise PolicyError.for_field(
                "destination.account",
                "an account that a tier of the policy reaches through its 'account' role",
                destination.account,
            )
        if destination.region not in (None, account.region):
            raise PolicyError.for_field(
                "destination.region", f"{account.region} (the tier's)", destination.region
            )
        return account

    def _offsite_for(self, account_id: str | None) -> OffsiteAccount | None:
        for account in self.offsite:
            if account.account_id == account_id:
                return account
        return None

    def offsite_backend(self, account: OffsiteAccount) -> Any:
        """The target of *account*: this kind, name and policy, with the assumed role's session."""
        with self._siblings_lock:
            found = self._siblings.get(account.tier)
            if found is None:
                base = self._offsite_base or self.session  # type: ignore[attr-defined]
                if self._caller_account() == account.account_id:
                    session = base  # a run inside the backup account uses its own credentials
                else:
                    session = assume_role_session(
                        account.account.role_arn,
                        external_id=account.account.external_id,
                        session_name=account.account.session_name,
                        base_session=base,
                        region=account.region,
                        endpoint_url=self.endpoint_url,  # type: ignore[attr-defined]
                    )
                found = self._siblings[account.tier] = self._sibling_of(account, session)
            return found

    def _sibling_of(self, account: OffsiteAccount, session: boto3.Session) -> Any:
        """The backend of *account*'s tier with *session* (default: ``_sibling`` in its region)."""
        return self._sibling(session, account.region)  # type: ignore[attr-defined]

    def _caller_account(self) -> str:
        """The account of the credentials this target runs with (STS, no permission needed)."""
        caller = getattr(self, "_offsite_caller", None)
        if caller is None:
            base = self._offsite_base
            backend: Any = self
            if base is not None:
                backend = AwsBackend(
                    "caller",
                    session=base,
                    endpoint_url=self.endpoint_url,  # type: ignore[attr-defined]
                )
            identity = backend.call("sts", "get_caller_identity")
            caller = self._offsite_caller = str(identity["Account"])
        return caller

    def _backend_of(self, point: RecoveryPoint) -> Any | None:
        account = self._offsite_for(account_of(point))
        return None if account is None else self.offsite_backend(account)

    # -- the point operations, routed ------------------------------------------------------

    def list_points(self) -> Iterator[RecoveryPoint]:
        """The target's own points, then the copies in each backup account (one listing each)."""
        yield from super().list_points()  # type: ignore[misc]
        seen: set[tuple[str, str]] = set()
        for account in self.offsite:
            if (account.account_id, account.region) in seen:
                continue
            seen.add((account.account_id, account.region))
            yield from self.offsite_backend(account).list_points()

    def refresh(self, point: RecoveryPoint) -> RecoveryPoint | None:
        """Re-read *point* with the credentials of the account that holds it."""
        backend = self._backend_of(point)
        if backend is not None:
            return backend.refresh(point)  # type: ignore[no-any-return]
        return super().refresh(point)  # type: ignore[misc,no-any-return]

    def delete(self, point: RecoveryPoint) -> None:
        """Delete *point*; an off-site copy only with the backup account's credentials."""
        backend = self._backend_of(point)
        if backend is not None:
            backend.delete(point)
            return
        super().delete(point)  # type: ignore[misc]

    def place_hold(self, point: RecoveryPoint, hold: Any) -> RecoveryPoint:
        """Put *hold* on *point*, in the account that holds it."""
        backend = self._backend_of(point)
        if backend is not None:
            return backend.place_hold(point, hold)  # type: ignore[no-any-return]
        return super().place_hold(point, hold)  # type: ignore[misc,no-any-return]

    def release_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Release the hold on *point*, in the account that holds it."""
        backend = self._backend_of(point)
        if backend is not None:
            return backend.release_hold(point)  # type: ignore[no-any-return]
        return super().release_hold(point)  # type: ignore[misc,no-any-return]

    def restore(self, point: RecoveryPoint, *args: Any, **kwargs: Any) -> Any:
        """Restore *point*; an off-site copy is restored in the backup account (its clean room)."""
        backend = self._backend_of(point)
        if backend is not None:
            return backend.restore(point, *args, **kwargs)
        return super().restore(point, *args, **kwargs)  # type: ignore[misc]

    def point_sharing(
        self, point: RecoveryPoint | None, *, region: str | None
    ) -> tuple[dict[str, Any], list[str]] | None:
        """Who may restore *point*, asked of the account that holds it (`PointSharing`)."""
        backend = None if point is None else self._backend_of(point)
        if backend is not None:
            return backend.point_sharing(point, region=region)  # type: ignore[no-any-return]
        return super().point_sharing(point, region=region)  # type: ignore[misc,no-any-return]

    def check_restorable(self, point: RecoveryPoint | None) -> None:
        """Refuse restoring an off-site copy into this account (it stays in its account).

        Raises:
            PolicyError: *point* is a copy in another account: restore-test it there
                (`restore`), or share it back to this account by hand first.
        """
        if point is not None and self._backend_of(point) is not None:
            raise PolicyError.for_field(
                "point",
                "a point in this account (an off-site copy in account "
                f"{account_of(point)} is restored there: restore-test it, or share it back "
                "to this account with its key first)",
                point.id,
            )

    # -- copying into another account -------------------------------------------------------

    def copy(self, point: RecoveryPoint, destination: Destination) -> RecoveryPoint:
        """Copy *point*; to a tier in another account: share, copy there, unshare (see module).

        Raises:
            PolicyError: The destination names an account that no tier of the target's
                policy reaches with a role, or the source is encrypted with the default key.
            BackendError: The copy failed, or the share could not be removed (the error says
                which snapshot is still shared with which account).
        """
        own = getattr(self, "account_id", None)
        if destination.account is None or destination.account == own:
            return super().copy(point, destination)  # type: ignore[misc,no-any-return]
        account = self.offsite_account_for(destination)
        sibling = self.offsite_backend(account)
        existing = sibling.existing_copy(point, account)
        if existing is not None:
            return existing  # type: ignore[no-any-return]
        self._check_shareable(point)  # type: ignore[attr-defined]
        shared = self._share(point, account.account_id)  # type: ignore[attr-defined]
        try:
            copied: RecoveryPoint = sibling.copy_shared(point, shared, account)
        except BaseException:
            self._unshare_quietly(point, account.account_id)
            raise
        self._unshare_or_raise(point, account.account_id)
        return copied

    def _unshare_quietly(self, point: RecoveryPoint, account_id: str) -> None:
        try:
            self._unshare(point, account_id)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - the copy's own error is the one raised
            _log.error(
                "%s: the copy of %s failed and removing its share with account %s failed too "
                "(%s): remove it by hand",
                getattr(self, "name", "?"),
                point.id,
                account_id,
                exc,
            )

    def _unshare_or_raise(self, point: RecoveryPoint, account_id: str) -> None:
        try:
            self._unshare(point, account_id)  # type: ignore[attr-defined]
        except BackendError as exc:
            exc.add_note(
                f"snapshot {point.id!r} is still shared with account {account_id}: the copy was "
                "made; remove the share by hand or re-run the backup"
            )
            raise
