"""The contract suite run against MemoryTarget, plus MemoryTarget's own test helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backuppolicy.core.exceptions import (
    BackendError,
    PolicyError,
    ProtectedPointError,
    ResourceNotFoundError,
    ThrottledError,
)
from backuppolicy.core.model import TAG_HOLD, TAG_POLICY, TAG_TARGET, TAG_TIER, LegalHold, Status
from backuppolicy.core.targets import BackupTarget, Destination, IsolationProfile, RestoredResource
from backuppolicy.testing import BackupTargetContract, MemoryTarget

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


@pytest.fixture(name="memory")
def _memory() -> MemoryTarget:
    return MemoryTarget("orders-db", policy="prod", clock=lambda: NOW)


class TestMemoryContract(BackupTargetContract):
    """MemoryTarget passes the whole contract."""

    @pytest.fixture(name="target")
    def _target(self, memory):
        return memory

    @pytest.fixture(name="destination")
    def _destination(self):
        return Destination(tier="offsite", region="eu-west-1")

    @pytest.fixture(name="foreign_point")
    def _foreign_point(self, memory):
        return memory.add_point(managed=False, created_at=NOW - timedelta(days=3))

    @pytest.fixture(name="isolation")
    def _isolation(self):
        return IsolationProfile(name_prefix="rt-")

    def restored_exists(self, target: BackupTarget, restored: RestoredResource) -> bool | None:
        """Whether the memory target still has the restored resource."""
        assert isinstance(target, MemoryTarget)
        return restored in target.live_restores


class _NoHoldTarget(MemoryTarget):
    """A target without place_hold, to check the contract's default hold hook skips."""

    place_hold = None  # type: ignore[assignment]


class TestContractDefaults(BackupTargetContract):
    """Fixtures defined under other function names still override the contract's defaults."""

    supports_restore = False

    @pytest.fixture(name="target")
    def _a_target(self):
        return _NoHoldTarget("web", clock=lambda: NOW)

    @pytest.fixture(name="destination")
    def _a_destination(self):
        return Destination(tier="vault")


class TestContractWithoutHolds(BackupTargetContract):
    """supports_hold = False skips the tests that place a hold, even on a target that can."""

    supports_hold = False

    @pytest.fixture(name="target")
    def _target(self):
        return MemoryTarget("files", clock=lambda: NOW)

    def test_hold_hook_skips(self, target):
        """The place_hold hook skips the calling test when holds are not supported."""
        point = target.create_backup()
        with pytest.raises(pytest.skip.Exception):
            self.place_hold(target, point, LegalHold(reason="x"))
        assert target.refresh(point).legal_hold is None


class TestContractOverrides:
    """The contract's fixture re-binding and default hooks."""

    def test_fixture_under_other_name_rebound(self):
        """A fixture defined under another function name replaces the contract's default."""
        namespace = vars(TestContractDefaults)
        assert namespace["_a_destination"] is namespace["_destination"]

    def test_base_is_not_collected(self):
        """The abstract class's name does not start with Test, so pytest does not collect it."""
        assert not BackupTargetContract.__name__.startswith("Test")


class TestMemoryTarget:
    """MemoryTarget's own behaviour and test helpers."""

    def test_is_backup_target(self, memory):
        """MemoryTarget satisfies the protocol and has the kind 'memory'."""
        assert isinstance(memory, BackupTarget)
        assert "memory" == memory.kind

    def test_repr(self, memory):
        """The repr names the target, the policy and the number of points."""
        memory.create_backup()
        assert "<MemoryTarget('orders-db', policy='prod', points=1)>" == repr(memory)

    def test_create_uses_clock(self, memory):
        """created_at comes from the injected clock."""
        assert NOW == memory.create_backup().created_at

    def test_ownership_tags(self, memory):
        """Created points carry the policy and target tags of this target."""
        point = memory.create_backup()
        assert ("prod", "orders-db") == (point.tags[TAG_POLICY], point.tags[TAG_TARGET])

    def test_other_policy_is_unmanaged(self, memory):
        """A point owned by another policy is listed as unmanaged."""
        other = MemoryTarget("orders-db", policy="staging", clock=lambda: NOW)
        point = memory.add_point(
            tags={TAG_POLICY: "staging", TAG_TARGET: "orders-db"}, managed=False
        )
        assert not memory.refresh(point).managed
        other._points[point.id] = memory._points[point.id]
        assert other.refresh(point).managed

    def test_backdated_point(self, memory):
        """add_point backdates a point and lists points oldest first."""
        old = memory.add_point(created_at=NOW - timedelta(days=40))
        new = memory.create_backup()
        assert [old.id, new.id] == [p.id for p in memory.list_points()]
        assert timedelta(days=40) == old.age(NOW)

    def test_add_point_rejects_naive_datetime(self, memory):
        """A naive created_at is refused with a message naming the field."""
        with pytest.raises(PolicyError, match="created_at"):
            memory.add_point(created_at=datetime(2026, 1, 1))

    def test_add_point_with_id_and_hold(self, memory):
        """add_point accepts an id and a hold, and the hold reads back."""
        hold = LegalHold(reason="tax", reference="T-1", since=NOW)
        point = memory.add_point(id="snap-x", legal_hold=hold)
        assert ("snap-x", hold) == (point.id, point.legal_hold)

    def test_add_point_in_other_tier(self, memory):
        """A point added in another tier has that tier, its tag and its own location."""
        point = memory.add_point(tier="offsite")
        assert ("offsite", "offsite", "memory:offsite") == (
            point.tier,
            point.tags[TAG_TIER],
            point.location,
        )

    def test_generated_ids_skip_taken(self, memory):
        """Generated ids never collide with ids given to add_point, nor with deleted ones."""
        memory.add_point(id="orders-db-0001")
        assert "orders-db-0002" == memory.add_point().id
        memory.add_point(id="bp-orders-db-20261126t040000z")
        memory.delete(memory.add_point(id="bp-orders-db-20261126t040000z-2"))
        assert "bp-orders-db-20261126t040000z-3" == memory.create_backup().id

    def test_release_hold(self, memory):
        """release_hold removes the hold so the point can be deleted."""
        point = memory.create_backup()
        memory.place_hold(point, LegalHold(reason="audit"))
        released = memory.release_hold(point)
        assert TAG_HOLD not in released.tags
        memory.delete(released)
        assert [point.id] == memory.deleted

    def test_pending_then_completed(self, memory):
        """A pending point is refused until set_status completes it."""
        point = memory.set_status(memory.create_backup(), Status.PENDING)
        with pytest.raises(ProtectedPointError, match="pending"):
            memory.delete(point)
        memory.delete(memory.set_status(point, "completed"))
        assert memory.refresh(point) is None

    def test_protected_error_names_point(self, memory):
        """ProtectedPointError carries the current point and names the hold."""
        point = memory.place_hold(memory.create_backup(), LegalHold(reason="x", reference="case-9"))
        with pytest.raises(ProtectedPointError, match="case-9") as info:
            memory.delete(point)
        assert point == info.value.point

    def test_not_found_error_attributes(self, memory):
        """Operations on a missing point raise ResourceNotFoundError with backend and resource."""
        point = memory.create_backup()
        memory.delete(point)
        with pytest.raises(ResourceNotFoundError) as info:
            memory.copy(point, Destination())
        assert ("orders-db", "copy", point.id) == (
            info.value.backend,
            info.value.operation,
            info.value.resource,
        )

    def test_copy_is_idempotent(self, memory):
        """Copying the same point to the same tier twice returns the same copy."""
        point = memory.create_backup()
        first = memory.copy(point, Destination(tier="offsite"))
        assert first == memory.copy(point, Destination(tier="offsite"))
        assert 2 == len(list(memory.list_points()))

    def test_copy_drops_hold_and_records_source(self, memory):
        """A copy does not inherit the source's hold and records the source id."""
        point = memory.place_hold(memory.create_backup(), LegalHold(reason="x"))
        copy = memory.copy(point, Destination(tier="offsite", region="eu-west-1"))
        assert (None, point.id, "memory:eu-west-1") == (
            copy.legal_hold,
            copy.details["source"],
            copy.location,
        )

    def test_incomplete_point_not_copied(self, memory):
        """Copy refuses a point that is not completed."""
        point = memory.set_status(memory.create_backup(), Status.FAILED)
        with pytest.raises(BackendError, match="expected a completed point"):
            memory.copy(point, Destination())

    def test_incomplete_point_not_restored(self, memory):
        """Restore refuses a point that is not completed."""
        point = memory.set_status(memory.create_backup(), Status.PARTIAL)
        with pytest.raises(BackendError, match="expected a completed point"):
            memory.restore(point)

    def test_restore_records_teardown(self, memory):
        """restore records the resource, its isolation tags and its teardown."""
        point = memory.create_backup()
        with memory.restore(point) as restored:
            assert (restored,) == memory.live_restores
        assert ([restored], [restored], ()) == (
            memory.restores,
            memory.teardowns,
            memory.live_restores,
        )
        assert "orders-db" == restored.details["tags"]["backuppolicy:restore-test"]

    def test_fail_next(self, memory):
        """fail_next raises the queued error once, then the operation works again."""
        error = ThrottledError("slow down", backend="orders-db", code="Throttling")
        memory.fail_next("list_points", error)
        with pytest.raises(ThrottledError):
            list(memory.list_points())
        assert [] == list(memory.list_points())

    def test_fail_next_unknown_operation(self, memory):
        """fail_next names the valid operations when given an unknown one."""
        with pytest.raises(PolicyError, match="operation: expected one of copy, create_backup"):
            memory.fail_next("prune", RuntimeError())

    def test_deleted_records_each_delete_once(self, memory):
        """deleted lists each deleted id once; a second delete fails without recording."""
        point = memory.create_backup()
        memory.delete(point)
        with pytest.raises(ResourceNotFoundError):
            memory.delete(point)
        assert [point.id] == memory.deleted
