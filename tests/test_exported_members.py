"""Every name a public module exports in ``__all__`` exists, so ``from m import *`` works.

Modelled on httpx's ``tests/test_exported_members.py``.
"""

from __future__ import annotations

import importlib

import pytest

PUBLIC_MODULES = (
    "backuppolicy",
    "backuppolicy.aws",
    "backuppolicy.local",
    "backuppolicy.testing",
    # split into core.results and checks.metadata/integrity/restore_test; still re-exports all
    "backuppolicy.checks.verify",
)


class TestExportedMembers:
    @pytest.mark.parametrize("name", PUBLIC_MODULES)
    def test_every_exported_name_exists(self, name):
        """Each name of the module's __all__ is an attribute of the module."""
        module = importlib.import_module(name)
        assert [] == [member for member in module.__all__ if not hasattr(module, member)]

    @pytest.mark.parametrize("name", PUBLIC_MODULES)
    def test_star_import_works(self, name):
        """``from <module> import *`` binds every name of __all__."""
        namespace: dict[str, object] = {}
        exec(f"from {name} import *", namespace)  # noqa: S102 - the statement under test
        assert set(importlib.import_module(name).__all__) <= set(namespace)

    @pytest.mark.parametrize("name", PUBLIC_MODULES)
    def test_all_names_each_member_once(self, name):
        """__all__ names each member once (ruff's RUF022 keeps it sorted)."""
        exported = importlib.import_module(name).__all__
        assert len(set(exported)) == len(exported)


class TestAwsExports:
    def test_all_is_exactly_what_the_module_imports(self):
        """backuppolicy.aws.__all__ names every public class and function it imports, and no other.

        The façade imports them on first use (`backuppolicy.core.lazy`): ``dir()`` lists them.
        """
        import types

        from backuppolicy import aws

        imported = {
            name
            for name in dir(aws)
            if not name.startswith("_")
            and not isinstance(getattr(aws, name), types.ModuleType)
            and name != "annotations"  # from __future__ import annotations
        }
        assert sorted(imported) == sorted(aws.__all__)

    def test_storage_and_discovery_exports(self):
        """The S3 object store is exported; discovery is reached as backuppolicy.aws.discovery."""
        from backuppolicy import aws
        from backuppolicy.aws import discovery

        assert ("S3Objects" in aws.__all__, discovery.__all__) == (
            True,
            ["default_session", "resolve", "resolve_targets", "unprotected_resources"],
        )
