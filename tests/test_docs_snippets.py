"""The documented calls work: `bp.restore` and `bp.audit` are functions, and the docs' code runs."""

from __future__ import annotations

import importlib
import sys

import backuppolicy as bp


class TestPublicFunctions:
    def test_restore_and_audit_are_the_functions(self) -> None:
        """`bp.restore(plan, confirm=True)` and `bp.audit(policy, now=now)` call the functions."""
        restore_module = importlib.import_module("backuppolicy.restore")
        audit_module = importlib.import_module("backuppolicy.audit")
        assert (restore_module.restore, audit_module.audit) == (bp.restore, bp.audit)
        assert callable(bp.restore)
        assert callable(bp.audit)

    def test_submodules_stay_importable(self) -> None:
        """`from backuppolicy.restore import X` and `from backuppolicy import restore` both work."""
        from backuppolicy import audit, restore
        from backuppolicy.restore import RestorePlan

        assert (bp.restore, bp.audit) == (restore, audit)
        assert "backuppolicy.restore" == RestorePlan.__module__
        assert sys.modules["backuppolicy.restore"].plan_restore is bp.plan_restore
