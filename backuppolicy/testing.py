# This module is test support: pytest's plain asserts are its API, and its tests read
# ``assert expected == actual`` like every test of the project.
"""Test support: an in-memory target and the contract suite every `BackupTarget` must pass.

This module needs pytest (``pip install pytest``); it never imports boto3 or moto.

* `MemoryTarget` is a complete `BackupTarget` that lives in memory. Use it to test
  automation built on backuppolicy (workflows, scripts, notebooks) without any cloud.
  It has helpers the real targets do not: `MemoryTarget.add_point` (backdated, foreign,
  held, pending or failed points), `MemoryTarget.place_hold`, `MemoryTarget.set_status`,
  `MemoryTarget.fail_next` (fault injection) and records of deletes, restores and teardowns.
* `BackupTargetContract` is an abstract test class, in the style of fsspec's abstract
  tests: subclass it in a ``Test...`` class, provide a ``target`` fixture (and optional
  ``destination``, ``foreign_point``, ``isolation`` fixtures and hooks), and pytest runs
  the whole contract against your backend::

      from backuppolicy.testing import BackupTargetContract, MemoryTarget

      class TestMyTarget(BackupTargetContract):
          @pytest.fixture(name="target")
          def _target(self):
              return MyTarget("orders-db", policy="default")

Override a fixture by defining one with the same ``name=``; its function may have any
name (the suite re-binds it so that yours wins over the default).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import ClassVar

import pytest

from backuppolicy.core.exceptions import (
    BackendError,
    ProtectedPointError,
    ResourceNotFoundError,
)
from backuppolicy.core.locks import PointLock
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
    ensure_aware,
    is_owned,
)
from backuppolicy.core.naming import name_stamp
from backuppolicy.core.targets import BackupTarget, Destination, IsolationProfile, RestoredResource

__all__ = ["BackupTargetContract", "MemoryTarget"]

_OPERATIONS = frozenset({"create_backup", "list_points", "refresh", "delete", "copy", "restore"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MemoryTarget:
    """A complete in-memory `BackupTarget`, for tests of code that uses targets.

    Points live in a dictionary; ownership, holds and tiers are tags, as on a real
    backend, so ``managed`` is computed exactly as the AWS targets compute it.

    Example:
        >>> from datetime import UTC, datetime
        >>> db = MemoryTarget("orders-db", clock=lambda: datetime(2026, 11, 26, 4, tzinfo=UTC))
        >>> point = db.create_backup(reason="manual", token="2026-11-26")
        >>> point == db.create_backup(reason="manual", token="2026-11-26")
        True
        >>> [p.id for p in db.list_points()]
        ['bp-orders-db-20261126t040000z']
        >>> db.delete(point)
        >>> db.refresh(point) is None
        True

    Args:
        name: Name of the target in the policy; the points' ``target``.
        policy: Name of the policy that owns the points this target creates.
        clock: Returns the current time (timezone-aware); default: the wall clock in UTC.
        location: ``location`` of the local points.

    Attributes:
        policy: Name of the owning policy.
        clock: The clock used for ``created_at``.
        location: Location of the local points.
        deleted: Ids of the points deleted so far, in order (a delete happens at most once per id).
        restores: Every `RestoredResource` handed out, in order.
        teardowns: The restored resources torn down, in order.
    """

    kind: ClassVar[str] = "memory"
    """Registered kind of the target."""

    def __init__(
        self,
        name: str,
        *,
        policy: str = "default",
        clock: Callable[[], datetime] | None = None,
        location: str = "memory:local",
    ) -> None:
        self._name = name
        self.policy = policy
        self.clock: Callable[[], datetime] = clock or _utcnow
        self.location = location
        self.deleted: list[str] = []
        self.restores: list[RestoredResource] = []
        self.teardowns: list[RestoredResource] = []
        self._points: dict[str, RecoveryPoint] = {}
        self._live: dict[str, RestoredResource] = {}
        self._failures: dict[str, list[BaseException]] = {}
        self._counter = itertools.count(1)
        self._lock = threading.RLock()
        # id -> (stored point, policy, its view): a point is re-viewed only when it changed
        self._views: dict[str, tuple[RecoveryPoint, str, RecoveryPoint]] = {}

    def __repr__(self) -> str:
        return f"<MemoryTarget({self._name!r}, policy={self.policy!r}, points={len(self._points)})>"

    @property
    def name(self) -> str:
        """Name of the target in the policy."""
        return self._name

    # -- test helpers ---------------------------------------------------------------------

    def add_point(
        self,
        *,
        created_at: datetime | None = None,
        id: str | None = None,  # noqa: A002 - mirrors RecoveryPoint.id
        managed: bool = True,
        status: Status | str = Status.COMPLETED,
        tier: str = "local",
        tags: Mapping[str, str] | None = None,
        legal_hold: LegalHold | None = None,
        kind: str = "memory-snapshot",
        size_bytes: int | None = None,
        lock: PointLock | None = None,
    ) -> RecoveryPoint:
        """Put a point on the backend directly, as if it had been made earlier or by someone else.

        Args:
            created_at: When it was taken (default: now by the clock); use it to backdate.
            id: Its id (default: the next generated one).
            managed: ``False`` for a foreign point (no ownership tags).
            status: Its `Status`.
            tier: Its tier; a non-local tier also changes its ``location``.
            tags: Extra tags.
            legal_hold: A hold to put on it.
            kind: Its kind.
            size_bytes: Its size.
            lock: A lock the backend enforces (`delete` refuses it until ``lock.until``).

        Returns:
            The point as `list_points` will report it.
        """
        all_tags = dict(tags or {})
        if managed:
            all_tags.update({TAG_POLICY: self.policy, TAG_TARGET: self._name})
        if tier != "local":
            all_tags[TAG_TIER] = tier
        if legal_hold is not None:
            all_tags[TAG_HOLD] = legal_hold.to_tag()
        with self._lock:
            point = RecoveryPoint(
                id=id or self._next_id(),
                target=self._name,
                created_at=ensure_aware(created_at or self.clock(), field="created_at"),
                kind=kind,
                location=self.location if tier == "local" else f"memory:{tier}",
                tier=tier,
                status=status,
                size_bytes=size_bytes,
                encrypted=True,
                tags=all_tags,
                lock=lock,
            )
            self._points[point.id] = point
            return self._view(point)

    def place_hold(self, point: RecoveryPoint, hold: LegalHold) -> RecoveryPoint:
        """Put *point* under legal *hold* (the ``backuppolicy:legal-hold`` tag); return it re-read."""
        with self._lock:
            stored = self._stored(point, "place_hold")
            tags = {**stored.tags, TAG_HOLD: hold.to_tag()}
            self._points[stored.id] = stored.evolve(tags=tags)
            return self._view(self._points[stored.id])

    def release_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Remove the legal hold from *point*; return it re-read."""
        with self._lock:
            stored = self._stored(point, "release_hold")
            tags = {k: v for k, v in stored.tags.items() if k != TAG_HOLD}
            self._points[stored.id] = stored.evolve(tags=tags)
            return self._view(self._points[stored.id])

    def set_status(self, point: RecoveryPoint, status: Status | str) -> RecoveryPoint:
        """Change the status of *point* (a pending backup completes, a copy fails); return it."""
        with self._lock:
            stored = self._stored(point, "set_status")
            self._points[stored.id] = stored.evolve(status=status)
            return self._view(self._points[stored.id])

    def fail_next(self, operation: str, error: BaseException) -> None:
        """Make the next call of *operation* raise *error* (queued: call again for more failures).

        Args:
            operation: One of ``create_backup``, ``list_points``, ``refresh``, ``delete``,
                ``copy``, ``restore``.
            error: The exception to raise, e.g. a `backuppolicy.ThrottledError`.

        Raises:
            PolicyError: *operation* is not one of those.
        """
        if operation not in _OPERATIONS:
            from backuppolicy.core.exceptions import PolicyError  # noqa: PLC0415 - rare path

            expected = "one of " + ", ".join(sorted(_OPERATIONS))
            raise PolicyError.for_field("operation", expected, operation)
        with self._lock:
            self._failures.setdefault(operation, []).append(error)

    @property
    def live_restores(self) -> tuple[RestoredResource, ...]:
        """Restored resources not torn down yet."""
        with self._lock:
            return tuple(self._live.values())

    # -- BackupTarget ---------------------------------------------------------------------

    def create_backup(
        self,
        *,
        reason: str = "scheduled",
        tags: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> RecoveryPoint:
        """Take a backup now; the same *token* returns the existing point.

        The point is named ``bp-<target>-<stamp>`` (``-2``, ``-3`` … when taken): the slot of a
        scheduled backup, the time a manual one was taken (`backuppolicy.core.naming`).
        """
        with self._lock:
            self._maybe_fail("create_backup")
            if token is not None:
                for existing in self._points.values():
                    same = existing.tags.get(TAG_TOKEN) == token
                    if same and existing.tags.get(TAG_TARGET) == self._name:
                        return self._view(existing)
            extra = {**(tags or {}), TAG_REASON: reason}
            if token is not None:
                extra[TAG_TOKEN] = token
            base = f"bp-{self._name}-{name_stamp(token, self.clock())}"
            name, counter = base, 1
            while name in self._points or name in self.deleted:
                counter += 1
                name = f"{base}-{counter}"
            return self.add_point(tags=extra, id=name)

    def list_points(self) -> Iterator[RecoveryPoint]:
        """Every point of every tier, oldest first (ties by id)."""
        with self._lock:
            self._maybe_fail("list_points")
            points = sorted(self._points.values(), key=lambda p: p.order_key)
            views = [self._view(p) for p in points]
        return iter(views)

    def refresh(self, point: RecoveryPoint) -> RecoveryPoint | None:
        """Re-read *point*; ``None`` if it was deleted."""
        with self._lock:
            self._maybe_fail("refresh")
            stored = self._points.get(point.id)
            return None if stored is None else self._view(stored)

    def delete(self, point: RecoveryPoint) -> None:
        """Delete *point*, refusing unmanaged, held and pending points (as given or as stored).

        Raises:
            ResourceNotFoundError: *point* does not exist.
            ProtectedPointError: *point* is unmanaged, under legal hold or pending; nothing deleted.
        """
        with self._lock:
            self._maybe_fail("delete")
            current = self._view(self._stored(point, "delete"))
            for seen in (point, current):
                if not seen.managed:
                    why = f"it is not managed by policy {self.policy!r} for target {self._name!r}"
                    raise ProtectedPointError(
                        f"{self._name}: refused to delete {point.id!r}: {why}.", point=current
                    )
                if seen.legal_hold is not None:
                    why = seen.legal_hold.describe()
                    raise ProtectedPointError(
                        f"{self._name}: refused to delete {point.id!r}: {why}.", point=current
                    )
                if seen.status is Status.PENDING:
                    raise ProtectedPointError(
                        f"{self._name}: refused to delete {point.id!r}: it is still pending.",
                        point=current,
                    )
            if current.lock is not None and current.lock.active(self.clock()):
                raise ProtectedPointError(
                    f"{self._name}: refused to delete {point.id!r}: {current.lock.describe()}.",
                    point=current,
                )
            del self._points[point.id]
            self._views.pop(point.id, None)
            self.deleted.append(point.id)

    def copy(self, point: RecoveryPoint, destination: Destination) -> RecoveryPoint:
        """Copy *point* to *destination*'s tier; copying again returns the existing copy.

        Raises:
            ResourceNotFoundError: *point* does not exist.
            BackendError: *point* is not completed.
        """
        with self._lock:
            self._maybe_fail("copy")
            source = self._stored(point, "copy")
            if source.status is not Status.COMPLETED:
                raise BackendError(
                    f"{self._name}: copy of {point.id!r}: expected a completed point (got {source.status.value!r}).",
                    backend=self._name,
                    operation="copy",
                    resource=point.id,
                )
            copy_id = f"{source.id}@{destination.tier}"
            existing = self._points.get(copy_id)
            if existing is not None:
                return self._view(existing)
            tags = {k: v for k, v in source.tags.items() if k != TAG_HOLD}
            tags[TAG_TIER] = destination.tier
            where = destination.region or destination.store or destination.tier
            copy = source.evolve(
                id=copy_id,
                tier=destination.tier,
                location=f"memory:{where}",
                tags=tags,
                details={"source": source.id, "destination": destination},
            )
            self._points[copy_id] = copy
            return self._view(copy)

    def restore(
        self, point: RecoveryPoint, into: IsolationProfile | None = None
    ) -> AbstractContextManager[RestoredResource]:
        """Restore *point* into *into*; the resource is torn down when the block exits.

        Raises:
            ResourceNotFoundError: *point* does not exist.
            BackendError: *point* is not completed.
        """
        with self._lock:
            self._maybe_fail("restore")
            source = self._view(self._stored(point, "restore"))
            if source.status is not Status.COMPLETED:
                raise BackendError(
                    f"{self._name}: restore of {point.id!r}: expected a completed point (got {source.status.value!r}).",
                    backend=self._name,
                    operation="restore",
                    resource=point.id,
                )
        return self._restored(source, into or IsolationProfile())

    # -- internals ------------------------------------------------------------------------

    @contextmanager
    def _restored(self, point: RecoveryPoint, into: IsolationProfile) -> Iterator[RestoredResource]:
        with self._lock:
            number = next(self._counter)
            resource = RestoredResource(
                id=f"{into.name_prefix}{point.id}-{number}",
                kind="memory-restore",
                point=point,
                endpoint=f"memory://{into.name_prefix}{point.id}-{number}",
                details={"isolation": into, "tags": {into.sweep_tag: self._name, **into.tags}},
            )
            self._live[resource.id] = resource
            self.restores.append(resource)
        try:
            yield resource
        finally:
            with self._lock:
                self._live.pop(resource.id, None)
                self.teardowns.append(resource)

    def _next_id(self) -> str:
        while True:
            candidate = f"{self._name}-{next(self._counter):04d}"
            if candidate not in self._points:
                return candidate

    def _stored(self, point: RecoveryPoint, operation: str) -> RecoveryPoint:
        stored = self._points.get(point.id)
        if stored is None:
            raise ResourceNotFoundError(
                f"{self._name}: {operation} of {point.id!r}: expected an existing point (got none with that id).",
                backend=self._name,
                operation=operation,
                resource=point.id,
                code="NotFound",
            )
        return stored

    def _view(self, stored: RecoveryPoint) -> RecoveryPoint:
        cached = self._views.get(stored.id)
        if cached is not None and cached[0] is stored and cached[1] == self.policy:
            return cached[2]  # points are frozen: the same stored point has the same view
        tags = stored.tags
        hold = tags.get(TAG_HOLD)
        managed = is_owned(tags, policy=self.policy, target=self._name)
        view = stored.evolve(
            managed=managed, legal_hold=None if hold is None else LegalHold.from_tag(hold)
        )
        self._views[stored.id] = (stored, self.policy, view)
        return view

    def _maybe_fail(self, operation: str) -> None:
        queue = self._failures.get(operation)
        if queue:
            raise queue.pop(0)


# -- the contract suite -------------------------------------------------------------------

# Fixture name -> the attribute that defines it in BackupTargetContract. A subclass may
# define the fixture under any function name; __init_subclass__ re-binds it to this
# attribute so that it overrides the default (pytest registers class fixtures in dir()
# order, so an override under another name could otherwise lose to the default).
_CONTRACT_FIXTURES = {
    "target": "_target",
    "destination": "_destination",
    "foreign_point": "_foreign_point",
    "isolation": "_isolation",
    "hold": "_hold",
    "point": "_point",
}


class _Boom(Exception):  # noqa: N818 - a sentinel raised inside restore blocks, not an error
    """Raised by the contract inside a restore block to check the teardown."""


def _fixture_name(obj: object) -> str | None:
    marker = getattr(obj, "_fixture_function_marker", None)
    name = getattr(marker, "name", None)
    return name if isinstance(name, str) else None


class BackupTargetContract:
    """Abstract contract tests for a `BackupTarget`; subclass it in a ``Test...`` class.

    Fixtures a subclass provides (define them with ``@pytest.fixture(name=...)``):

    * ``target`` (**required**): a fresh target with no points made by this library.
    * ``destination``: a `Destination` for `BackupTarget.copy` (default: the copy tests skip).
    * ``foreign_point``: an unmanaged point that exists on the backend for ``target``, made
      outside the library (default: that test skips).
    * ``isolation``: the `IsolationProfile` for restores (default: ``None``).

    Hooks a subclass may override (plain methods):

    * `settle`: wait until a new point is completed (default: return it as is).
    * `place_hold`: put a point under legal hold (default: ``target.place_hold`` if the
      target has one, else the hold tests skip).
    * `list_copies`: the points at a destination (default: ``target.list_points()`` in
      the destination tier).
    * `restored_exists`: whether a restored resource still exists (default: ``None``,
      unknown, and the teardown is not checked).

    Class attributes: `supports_restore` and `supports_hold` (``False`` skips the restore
    tests and the tests that place a hold), `token_prefix` (of the idempotency tokens used).

    Example:
        >>> class TestMemory(BackupTargetContract):
        ...     @pytest.fixture(name="target")
        ...     def _target(self):
        ...         return MemoryTarget("orders-db")
    """

    supports_restore: ClassVar[bool] = True
    """Whether the target can restore points (``False`` skips the restore tests)."""

    supports_hold: ClassVar[bool] = True
    """Whether the target can place legal holds (``False`` skips the tests that place one)."""

    token_prefix: ClassVar[str] = "contract"
    """Prefix of the idempotency tokens the contract uses."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        for attr, obj in list(vars(cls).items()):
            canonical = _CONTRACT_FIXTURES.get(_fixture_name(obj) or "")
            if canonical is not None and attr != canonical:
                setattr(cls, canonical, obj)

    # -- fixtures -------------------------------------------------------------------------

    @pytest.fixture(name="target")
    def _target(self) -> BackupTarget:
        """The target under test: subclasses must define it."""
        pytest.fail(
            f"{type(self).__name__} must define a 'target' fixture returning a BackupTarget."
        )

    @pytest.fixture(name="destination")
    def _destination(self) -> Destination:
        """A copy destination; the copy tests skip unless a subclass defines it."""
        pytest.skip("no 'destination' fixture: copy is not tested for this target")

    @pytest.fixture(name="foreign_point")
    def _foreign_point(self) -> RecoveryPoint:
        """An unmanaged point on the backend; the test skips unless a subclass defines it."""
        pytest.skip("no 'foreign_point' fixture: unmanaged points are not tested for this target")

    @pytest.fixture(name="isolation")
    def _isolation(self) -> IsolationProfile | None:
        """Where restores go (default: the target's default)."""
        return None

    @pytest.fixture(name="hold")
    def _hold(self) -> LegalHold:
        """The legal hold the hold tests place."""
        return LegalHold(
            reason="litigation", reference="contract-1", since=datetime(2026, 1, 5, tzinfo=UTC)
        )

    @pytest.fixture(name="point")
    def _point(self, target: BackupTarget) -> RecoveryPoint:
        """A completed point created by the library on ``target``."""
        created = target.create_backup(reason="contract", token=f"{self.token_prefix}-point")
        return self.settle(target, created)

    # -- hooks ----------------------------------------------------------------------------

    def settle(self, target: BackupTarget, point: RecoveryPoint) -> RecoveryPoint:  # noqa: ARG002 - hook
        """Wait until *point* is completed and return it re-read (default: *point* as is)."""
        return point

    def place_hold(
        self, target: BackupTarget, point: RecoveryPoint, hold: LegalHold
    ) -> RecoveryPoint:
        """Put *point* under *hold* on the backend and return it re-read."""
        if not self.supports_hold:
            pytest.skip(f"{type(self).__name__}.supports_hold is False")
        method = getattr(target, "place_hold", None)
        if method is None:
            pytest.skip(
                f"{type(target).__name__} has no place_hold(); override the place_hold hook"
            )
        result = method(point, hold)
        return result if isinstance(result, RecoveryPoint) else self._must_refresh(target, point)

    def list_copies(self, target: BackupTarget, destination: Destination) -> list[RecoveryPoint]:
        """The points stored at *destination* (default: the target's points in its tier)."""
        return [p for p in target.list_points() if p.tier == destination.tier]

    def restored_exists(self, target: BackupTarget, restored: RestoredResource) -> bool | None:  # noqa: ARG002 - hook
        """Whether *restored* still exists on the backend; ``None`` when it cannot be told."""
        return None

    # -- helpers --------------------------------------------------------------------------

    def _ids(self, points: Iterable[RecoveryPoint]) -> list[str]:
        return [p.id for p in points]

    def _must_refresh(self, target: BackupTarget, point: RecoveryPoint) -> RecoveryPoint:
        current = target.refresh(point)
        assert current is not None, f"refresh({point.id!r}) returned None for an existing point"
        return current

    def _assert_refused(
        self, target: BackupTarget, argument: RecoveryPoint, existing: RecoveryPoint
    ) -> None:
        with pytest.raises(ProtectedPointError):
            target.delete(argument)
        assert existing.id in self._ids(target.list_points()), f"{existing.id!r} was deleted"
        assert target.refresh(existing) is not None, f"{existing.id!r} was deleted"

    # -- protocol -------------------------------------------------------------------------

    def test_is_backup_target(self, target: BackupTarget) -> None:
        """The target satisfies the runtime-checkable BackupTarget protocol."""
        assert isinstance(target, BackupTarget)

    def test_name_and_kind(self, target: BackupTarget) -> None:
        """The target has a non-empty name and kind."""
        assert isinstance(target.name, str)
        assert target.name
        assert isinstance(target.kind, str)
        assert target.kind

    # -- create ---------------------------------------------------------------------------

    def test_create_backup_returns_owned_point(self, target: BackupTarget) -> None:
        """A new point belongs to the target, is managed and carries the ownership tags."""
        point = target.create_backup(reason="manual", token=f"{self.token_prefix}-owned")
        assert isinstance(point, RecoveryPoint)
        assert target.name == point.target
        assert point.managed
        assert target.name == point.tags.get(TAG_TARGET)
        assert point.tags.get(TAG_POLICY)
        assert "manual" == point.tags.get(TAG_REASON)
        assert f"{self.token_prefix}-owned" == point.tags.get(TAG_TOKEN)

    def test_create_backup_keeps_extra_tags(self, target: BackupTarget) -> None:
        """Tags given to create_backup are on the point."""
        point = target.create_backup(token=f"{self.token_prefix}-tags", tags={"team": "orders"})
        assert "orders" == point.tags.get("team")

    def test_same_token_same_point(self, target: BackupTarget) -> None:
        """Creating twice with one token returns the same point and makes no duplicate."""
        token = f"{self.token_prefix}-twice"
        first = target.create_backup(reason="manual", token=token)
        second = target.create_backup(reason="manual", token=token)
        assert first.id == second.id
        tokens = [p.tags.get(TAG_TOKEN) for p in target.list_points() if p.managed]
        assert 1 == tokens.count(token)

    def test_different_tokens_different_points(self, target: BackupTarget) -> None:
        """Different tokens make different points."""
        first = target.create_backup(token=f"{self.token_prefix}-a")
        second = target.create_backup(token=f"{self.token_prefix}-b")
        assert first.id != second.id

    # -- list and refresh -----------------------------------------------------------------

    def test_list_points_includes_created(self, target: BackupTarget, point: RecoveryPoint) -> None:
        """A created point is listed, managed, under the target's name."""
        listed = {p.id: p for p in target.list_points()}
        assert point.id in listed
        assert listed[point.id].managed
        assert target.name == listed[point.id].target

    @pytest.mark.usefixtures("point")
    def test_list_points_yields_recovery_points(self, target: BackupTarget) -> None:
        """Listing yields RecoveryPoint values only."""
        assert all(isinstance(p, RecoveryPoint) for p in target.list_points())

    def test_refresh_returns_same_point(self, target: BackupTarget, point: RecoveryPoint) -> None:
        """Refreshing re-reads the point with the same id, ownership and status."""
        current = self._must_refresh(target, point)
        assert point.id == current.id
        assert current.managed
        assert point.status == current.status

    def test_refresh_after_delete_is_none(self, target: BackupTarget, point: RecoveryPoint) -> None:
        """Refreshing a deleted point returns None."""
        target.delete(point)
        assert target.refresh(point) is None

    # -- delete ---------------------------------------------------------------------------

    def test_delete_removes_point(self, target: BackupTarget, point: RecoveryPoint) -> None:
        """A deleted point is no longer listed."""
        target.delete(point)
        assert point.id not in self._ids(target.list_points())

    def test_delete_twice_raises_not_found(
        self, target: BackupTarget, point: RecoveryPoint
    ) -> None:
        """Deleting a point that is already gone raises ResourceNotFoundError."""
        target.delete(point)
        with pytest.raises(ResourceNotFoundError):
            target.delete(point)

    def test_delete_foreign_point_refused(
        self, target: BackupTarget, foreign_point: RecoveryPoint
    ) -> None:
        """A point the library did not create is listed as unmanaged and never deleted."""
        listed = {p.id: p for p in target.list_points()}
        assert foreign_point.id in listed
        assert not listed[foreign_point.id].managed
        self._assert_refused(target, listed[foreign_point.id], foreign_point)

    def test_delete_foreign_point_passed_as_managed_refused(
        self, target: BackupTarget, foreign_point: RecoveryPoint
    ) -> None:
        """A foreign point is refused even when the caller's copy claims it is managed."""
        self._assert_refused(target, foreign_point.evolve(managed=True), foreign_point)

    def test_delete_point_marked_unmanaged_refused(
        self, target: BackupTarget, point: RecoveryPoint
    ) -> None:
        """A point given with managed=False is refused, whatever the backend says."""
        self._assert_refused(target, point.evolve(managed=False), point)

    def test_delete_held_point_refused(
        self, target: BackupTarget, point: RecoveryPoint, hold: LegalHold
    ) -> None:
        """A point under legal hold on the backend is refused and reads back as held."""
        held = self.place_hold(target, point, hold)
        assert held.held
        self._assert_refused(target, held, point)

    def test_delete_stale_point_of_held_point_refused(
        self, target: BackupTarget, point: RecoveryPoint, hold: LegalHold
    ) -> None:
        """A point read before a hold was placed is refused: delete re-checks the backend."""
        self.place_hold(target, point, hold)
        self._assert_refused(target, point, point)

    def test_delete_point_marked_held_refused(
        self, target: BackupTarget, point: RecoveryPoint, hold: LegalHold
    ) -> None:
        """A point given with a legal hold is refused, whatever the backend says."""
        self._assert_refused(target, point.evolve(legal_hold=hold), point)

    def test_delete_point_marked_pending_refused(
        self, target: BackupTarget, point: RecoveryPoint
    ) -> None:
        """A point given as pending is refused."""
        self._assert_refused(target, point.evolve(status=Status.PENDING), point)

    # -- copy -----------------------------------------------------------------------------

    def test_copy_to_destination(
        self, target: BackupTarget, point: RecoveryPoint, destination: Destination
    ) -> None:
        """A copy is a managed point of the target in the destination's tier, listed there."""
        copy = target.copy(point, destination)
        assert isinstance(copy, RecoveryPoint)
        assert destination.tier == copy.tier
        assert target.name == copy.target
        assert copy.managed
        listed = self._ids(self.list_copies(target, destination))
        assert copy.id in listed, (
            f"copy {copy.id!r} is not listed at {destination!r}: configure the target to list that "
            "tier (e.g. copy_regions=) or override the list_copies hook"
        )

    def test_copy_keeps_source(
        self, target: BackupTarget, point: RecoveryPoint, destination: Destination
    ) -> None:
        """Copying leaves the source point in place."""
        target.copy(point, destination)
        assert point.id == self._must_refresh(target, point).id

    # -- restore --------------------------------------------------------------------------

    def _skip_without_restore(self) -> None:
        if not self.supports_restore:
            pytest.skip(f"{type(self).__name__}.supports_restore is False")

    def test_restore_yields_restored_resource(
        self, target: BackupTarget, point: RecoveryPoint, isolation: IsolationProfile | None
    ) -> None:
        """Restoring yields a RestoredResource of the point that exists inside the block only."""
        self._skip_without_restore()
        with target.restore(point, isolation) as restored:
            assert isinstance(restored, RestoredResource)
            assert point.id == restored.point.id
            assert self.restored_exists(target, restored) in {True, None}
        assert self.restored_exists(target, restored) in {False, None}

    def test_restore_tears_down_on_error(
        self, target: BackupTarget, point: RecoveryPoint, isolation: IsolationProfile | None
    ) -> None:
        """The restored resource is torn down when the block raises, and the error propagates."""
        self._skip_without_restore()
        seen: list[RestoredResource] = []
        # the error must come from inside the restore block, hence two statements in it
        with pytest.raises(_Boom), target.restore(point, isolation) as restored:  # noqa: PT012
            seen.append(restored)
            raise _Boom
        assert 1 == len(seen)
        assert self.restored_exists(target, seen[0]) in {False, None}

    def test_restore_keeps_point(
        self, target: BackupTarget, point: RecoveryPoint, isolation: IsolationProfile | None
    ) -> None:
        """Restoring leaves the recovery point in place."""
        self._skip_without_restore()
        with target.restore(point, isolation):
            pass
        assert point.id == self._must_refresh(target, point).id
