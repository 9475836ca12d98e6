"""Workflows: run a policy against its targets through the protocols and the registry.

Backups and tier copies, retention (plan, then apply), holds, restores, the testing log, the
audit and recovery rehearsals. Import the public names from the façade, ``backuppolicy``; the
functions ``restore`` and ``audit`` are also here (``backuppolicy.workflows.restore``).
"""

from backuppolicy.workflows._audit import audit
from backuppolicy.workflows._restore import plan_restore, restore
from backuppolicy.workflows.backups import (
    RunReport,
    TargetRun,
    backup,
    backup_now,
    build_notifiers,
    build_targets,
)
from backuppolicy.workflows.holds import holds, place_hold, release_hold
from backuppolicy.workflows.pruning import ApplyReport, DeleteOutcome, apply, plan_retention
from backuppolicy.workflows.unattended import RunDigest, run

__all__ = [
    "ApplyReport",
    "DeleteOutcome",
    "RunDigest",
    "RunReport",
    "TargetRun",
    "apply",
    "audit",
    "backup",
    "backup_now",
    "build_notifiers",
    "build_targets",
    "holds",
    "place_hold",
    "plan_restore",
    "plan_retention",
    "release_hold",
    "restore",
    "run",
]
