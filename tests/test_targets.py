"""The target registry and the values of backuppolicy.core.targets."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import attrs
import pytest

from backuppolicy.core import registry
from backuppolicy.core.exceptions import BackendNotFoundError, BackupPolicyError, PolicyError
from backuppolicy.core.policy import Policy
from backuppolicy.core.targets import (
    ENTRY_POINT_GROUP,
    BackupTarget,
    Destination,
    IsolationProfile,
    RestoredResource,
    get_target_class,
    known_target_kinds,
    register_target,
)
from backuppolicy.testing import MemoryTarget

ROOT = Path(__file__).parent.parent

BUILTIN = ("aurora-cluster", "directory", "ebs-volume", "ec2-instance", "rds-instance", "s3-bucket")


@pytest.fixture(autouse=True, name="clean_registry")
def _clean_registry(monkeypatch):
    """Every test starts from the built-in kinds only."""
    monkeypatch.setattr(registry, "_REGISTERED", {})


def _fake_entry_points(monkeypatch, *specs: tuple[str, str]) -> None:
    """Make importlib.metadata report *specs* (name, "module:attr") in our group."""
    points = [EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP) for name, value in specs]

    def entry_points(*, group: str) -> list[EntryPoint]:
        return [p for p in points if p.group == group]

    monkeypatch.setattr(registry, "entry_points", entry_points)


def _imported_after(code: str) -> dict[str, Any]:
    """Run *code* in a fresh interpreter and report which heavy modules it imported."""
    probe = (
        f"{code}\nimport json, sys\n"
        "print(json.dumps({name: name in sys.modules for name in "
        "('boto3', 'botocore', 'moto', 'backuppolicy.aws', 'backuppolicy.aws.rds')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


class TestKnownKinds:
    """known_target_kinds lists built-in, registered and entry-point kinds."""

    def test_builtin_kinds(self):
        """Every built-in kind is known, and the kinds come sorted."""
        known = known_target_kinds()
        assert set(BUILTIN) <= set(known)
        assert sorted(known) == list(known)

    def test_registered_kind_listed(self):
        """A kind registered at run time is listed."""
        register_target("memory", MemoryTarget)
        assert "memory" in known_target_kinds()

    def test_entry_point_kind_listed(self, monkeypatch):
        """A kind from the entry-point group is listed."""
        _fake_entry_points(monkeypatch, ("my-nas", "backuppolicy.testing:MemoryTarget"))
        assert {*BUILTIN, "my-nas"} <= set(known_target_kinds())


class TestGetTargetClass:
    """get_target_class resolves kinds to factories, lazily."""

    def test_builtin_resolves_lazily(self):
        """rds-instance resolves to backuppolicy.aws.rds.RdsInstance, imported on demand."""
        pytest.importorskip(
            "backuppolicy.aws.rds", reason="the RDS target is another helper's work"
        )
        from backuppolicy.aws.rds import RdsInstance

        assert RdsInstance is get_target_class("rds-instance")

    def test_registered_class(self):
        """A class registered by register_target is returned as is."""
        register_target("memory", MemoryTarget)
        assert MemoryTarget is get_target_class("memory")

    def test_registered_string(self):
        """A "module:attr" registration is imported on first use."""
        register_target("memory", "backuppolicy.testing:MemoryTarget")
        assert MemoryTarget is get_target_class("memory")

    def test_registration_overrides_builtin(self):
        """A registration under a built-in kind wins over the built-in."""
        register_target("directory", MemoryTarget)
        assert MemoryTarget is get_target_class("directory")

    def test_entry_point(self, monkeypatch):
        """A kind published in the entry-point group resolves to its object."""
        _fake_entry_points(monkeypatch, ("my-nas", "backuppolicy.testing:MemoryTarget"))
        assert MemoryTarget is get_target_class("my-nas")

    def test_factory_makes_targets(self):
        """The resolved factory builds a BackupTarget."""
        register_target("memory", MemoryTarget)
        target = get_target_class("memory")("orders-db")
        assert isinstance(target, BackupTarget)

    def test_unknown_kind_suggests(self):
        """An unknown kind raises BackendNotFoundError naming the known kinds and the closest one."""
        with pytest.raises(BackendNotFoundError) as info:
            get_target_class("rds-instanse")
        message = str(info.value)
        assert "Did you mean 'rds-instance'?" in message
        assert ENTRY_POINT_GROUP in message
        assert ("rds-instanse", known_target_kinds()) == (info.value.name, info.value.known)

    def test_unknown_kind_without_close_match(self):
        """A kind far from every known one gets no suggestion."""
        with pytest.raises(BackendNotFoundError) as info:
            get_target_class("zzz")
        assert "Did you mean" not in str(info.value)

    def test_not_found_is_lookup_error(self):
        """BackendNotFoundError is a LookupError and one of ours."""
        with pytest.raises(LookupError):
            get_target_class("nope")
        assert issubclass(BackendNotFoundError, BackupPolicyError)

    def test_unimportable_module(self):
        """A kind whose module cannot be imported raises BackendNotFoundError naming the module."""
        register_target("ghost", "backuppolicy_no_such_plugin.mod:Ghost")
        with pytest.raises(BackendNotFoundError, match="'backuppolicy_no_such_plugin.mod'") as info:
            get_target_class("ghost")
        assert isinstance(info.value.__cause__, ImportError)

    def test_unimportable_aws_module_names_boto3(self, monkeypatch):
        """A built-in AWS kind whose module fails to import tells to install boto3."""
        monkeypatch.setitem(registry._BUILTIN, "rds-instance", "backuppolicy.aws.no_such_module:X")
        with pytest.raises(BackendNotFoundError, match="Install boto3"):
            get_target_class("rds-instance")


class TestImportsStayLight:
    """The pure core never imports boto3."""

    def test_import_backuppolicy(self):
        """import backuppolicy and backuppolicy.core.targets import neither boto3 nor the AWS package."""
        imported = _imported_after("import backuppolicy, backuppolicy.core.targets")
        assert not any(imported.values()), imported

    def test_registry_lookup_of_local_kinds(self):
        """Listing kinds and resolving a non-AWS kind keep boto3 out."""
        code = (
            "import backuppolicy.core.targets as t\n"
            "t.known_target_kinds()\n"
            "t.register_target('memory', 'backuppolicy.testing:MemoryTarget')\n"
            "t.get_target_class('memory')"
        )
        imported = _imported_after(code)
        assert not any(imported.values()), imported

    def test_aws_kind_imports_on_demand(self):
        """Resolving rds-instance is what imports boto3 and the RDS module."""
        pytest.importorskip(
            "backuppolicy.aws.rds", reason="the RDS target is another helper's work"
        )
        imported = _imported_after(
            "import backuppolicy.core.targets as t\nt.get_target_class('rds-instance')"
        )
        assert (True, True) == (imported["boto3"], imported["backuppolicy.aws.rds"])


class TestValues:
    """Destination, IsolationProfile and RestoredResource."""

    def test_destination_defaults(self):
        """A Destination defaults to the offsite tier with nothing else set."""
        assert ("offsite", None, None, None, None) == attrs.astuple(Destination())

    def test_destination_frozen_and_hashable(self):
        """Destinations are immutable values usable as keys."""
        destination = Destination(region="eu-west-1", kms_key_id="alias/backup")
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            destination.region = "us-west-2"  # type: ignore[misc]
        assert {destination: 1}[Destination(region="eu-west-1", kms_key_id="alias/backup")] == 1

    def test_isolation_defaults(self):
        """The default isolation profile uses a small class, the bp-restore- prefix and the sweep tag."""
        profile = IsolationProfile()
        assert ("db.t3.micro", "bp-restore-", "backuppolicy:restore-test", (), {}) == (
            profile.instance_class,
            profile.name_prefix,
            profile.sweep_tag,
            profile.security_group_ids,
            profile.tags,
        )

    def test_isolation_security_groups_become_tuple(self):
        """Security groups given as a list are stored as a tuple, so the profile stays hashable."""
        profile = IsolationProfile(security_group_ids=["sg-1", "sg-2"], tags={"team": "ops"})
        assert ("sg-1", "sg-2") == profile.security_group_ids
        assert hash(profile) == hash(
            IsolationProfile(security_group_ids=("sg-1", "sg-2"), tags={"x": "y"})
        )

    def test_restored_resource(self):
        """A RestoredResource records what was restored, from which point, and where."""
        target = MemoryTarget("orders-db")
        point = target.create_backup()
        with target.restore(point, IsolationProfile(name_prefix="t-")) as restored:
            assert (point, "memory-restore") == (restored.point, restored.kind)
            assert restored.id.startswith("t-")
        assert isinstance(restored, RestoredResource)


class TestIsolationNamePrefix:
    @pytest.mark.parametrize(
        "prefix", ["../escape-", "a/b", "", ".hidden-", "x" * 40, "bp restore"]
    )
    def test_a_prefix_that_names_structure_is_refused(self, prefix):
        """name_prefix starts temp dirs, S3 prefixes and RDS ids: '/', '..', dots and blanks are refused."""
        with pytest.raises(PolicyError, match=r"^name_prefix: expected a letter"):
            IsolationProfile(name_prefix=prefix)

    def test_policy_files_name_the_field(self):
        """In a policy file the error names verification.isolation.name_prefix."""
        data = Policy.from_file(ROOT / "examples" / "policy.yaml").to_dict()
        data["verification"] = {"isolation": {"name_prefix": "../../etc/"}}
        with pytest.raises(PolicyError, match=r"verification\.isolation\.name_prefix: expected a"):
            Policy.from_dict(data)
