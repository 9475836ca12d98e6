"""The steps of `backuppolicy.aws.backup_plan.apply_aws_backup`: create or update each part.

Each step reads what exists, compares it with the exported document (`covers`: AWS adds
defaults) and creates, updates or replaces only what differs; creates carry a
``CreatorRequestId`` derived from their content, so a retried call makes no duplicate.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from backuppolicy.aws._backup import BackupClient
from backuppolicy.core.exceptions import PolicyError, ResourceNotFoundError
from backuppolicy.core.model import TAG_POLICY

__all__ = ["apply_document"]


def _token(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _covers(actual: object, wanted: object) -> bool:
    """Whether *actual* (as AWS returns it) has every value of *wanted* (AWS adds defaults)."""
    if isinstance(wanted, Mapping):
        return isinstance(actual, Mapping) and all(
            _covers(actual.get(key), value) for key, value in wanted.items()
        )
    if isinstance(wanted, list) and isinstance(actual, list):
        return len(actual) == len(wanted) and all(
            _covers(a, w) for a, w in zip(actual, wanted, strict=True)
        )
    return bool(actual == wanted)


def _same_rules(
    actual: Sequence[Mapping[str, object]], wanted: Sequence[Mapping[str, object]]
) -> bool:
    by_name = {rule.get("RuleName"): rule for rule in actual}
    return len(by_name) == len(wanted) and all(
        _covers(by_name.get(rule["RuleName"]), rule) for rule in wanted
    )


def _apply_vault(backend: BackupClient, vault: Mapping[str, Any], region: str | None = None) -> str:
    params = {k: v for k, v in vault.items() if k not in {"Region", "Account"}}
    try:
        backend.call(
            "backup",
            "describe_backup_vault",
            resource=params["BackupVaultName"],
            region=region,
            BackupVaultName=params["BackupVaultName"],
        )
    except ResourceNotFoundError:
        backend.call(
            "backup",
            "create_backup_vault",
            resource=params["BackupVaultName"],
            region=region,
            CreatorRequestId=_token(params, region),
            **params,
        )
        return "created"
    return "exists"


def _apply_lock(
    backend: BackupClient, lock: Mapping[str, Any], *, region: str | None = None
) -> str:
    name = lock["BackupVaultName"]
    current = backend.call(
        "backup", "describe_backup_vault", resource=name, region=region, BackupVaultName=name
    )
    same = current.get("Locked") and all(
        current.get(key) == lock.get(key) for key in ("MinRetentionDays", "MaxRetentionDays")
    )
    if same:
        return "unchanged"
    backend.call(
        "backup", "put_backup_vault_lock_configuration", resource=name, region=region, **lock
    )
    return "set"


def _apply_plan(backend: BackupClient, plan: Mapping[str, Any], policy: str) -> tuple[str, str]:
    name = plan["BackupPlanName"]
    found = backend.find("list_backup_plans", "BackupPlansList", "BackupPlanName", name)
    if found is None:
        created = backend.call(
            "backup",
            "create_backup_plan",
            resource=name,
            BackupPlan=plan,
            BackupPlanTags={TAG_POLICY: policy},
            CreatorRequestId=_token(plan),
        )
        return "created", str(created["BackupPlanId"])
    plan_id = str(found["BackupPlanId"])
    current = backend.call("backup", "get_backup_plan", resource=name, BackupPlanId=plan_id)
    if _same_rules(current.get("BackupPlan", {}).get("Rules", []), plan["Rules"]):
        return "unchanged", plan_id
    backend.call(
        "backup", "update_backup_plan", resource=name, BackupPlanId=plan_id, BackupPlan=plan
    )
    return "updated", plan_id


def _apply_selection(backend: BackupClient, plan_id: str, selection: Mapping[str, Any]) -> str:
    name = selection["SelectionName"]
    found = backend.find(
        "list_backup_selections",
        "BackupSelectionsList",
        "SelectionName",
        name,
        BackupPlanId=plan_id,
    )
    verb = "created"
    if found is not None:
        current = backend.call(
            "backup",
            "get_backup_selection",
            resource=name,
            BackupPlanId=plan_id,
            SelectionId=found["SelectionId"],
        )
        if _covers(current.get("BackupSelection"), selection):
            return "unchanged"
        # Selections cannot be updated: replace it.
        backend.call(
            "backup",
            "delete_backup_selection",
            resource=name,
            BackupPlanId=plan_id,
            SelectionId=found["SelectionId"],
        )
        verb = "replaced"
    backend.call(
        "backup",
        "create_backup_selection",
        resource=name,
        BackupPlanId=plan_id,
        BackupSelection=selection,
        CreatorRequestId=_token(plan_id, selection),
    )
    return verb


_PLAN_UPDATABLE: Final = (
    "RecoveryPointSelection",
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "StartWindowHours",
)


def _apply_testing(
    backend: BackupClient, plan: Mapping[str, Any], selections: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    name = plan["RestoreTestingPlanName"]
    done: dict[str, str] = {}
    found = backend.find(
        "list_restore_testing_plans", "RestoreTestingPlans", "RestoreTestingPlanName", name
    )
    if found is None:
        backend.call(
            "backup",
            "create_restore_testing_plan",
            resource=name,
            RestoreTestingPlan=plan,
            CreatorRequestId=_token(plan),
        )
        done[name] = "created"
    else:
        current = backend.call(
            "backup", "get_restore_testing_plan", resource=name, RestoreTestingPlanName=name
        )
        if _covers(current.get("RestoreTestingPlan"), plan):
            done[name] = "unchanged"
        else:
            update = {key: plan[key] for key in _PLAN_UPDATABLE if key in plan}
            backend.call(
                "backup",
                "update_restore_testing_plan",
                resource=name,
                RestoreTestingPlanName=name,
                RestoreTestingPlan=update,
            )
            done[name] = "updated"
    existing: set[str] = set()
    if found is not None:
        for page in backend.paginate(
            "backup", "list_restore_testing_selections", RestoreTestingPlanName=name
        ):
            existing.update(
                item["RestoreTestingSelectionName"]
                for item in page.get("RestoreTestingSelections", [])
            )
    for selection in selections:
        sel_name = selection["RestoreTestingSelectionName"]
        if sel_name not in existing:
            backend.call(
                "backup",
                "create_restore_testing_selection",
                resource=sel_name,
                RestoreTestingPlanName=name,
                RestoreTestingSelection=selection,
                CreatorRequestId=_token(name, selection),
            )
            done[sel_name] = "created"
            continue
        current = backend.call(
            "backup",
            "get_restore_testing_selection",
            resource=sel_name,
            RestoreTestingPlanName=name,
            RestoreTestingSelectionName=sel_name,
        )
        if _covers(current.get("RestoreTestingSelection"), selection):
            done[sel_name] = "unchanged"
            continue
        update = {
            k: v
            for k, v in selection.items()
            if k not in {"RestoreTestingSelectionName", "ProtectedResourceType"}
        }
        backend.call(
            "backup",
            "update_restore_testing_selection",
            resource=sel_name,
            RestoreTestingPlanName=name,
            RestoreTestingSelectionName=sel_name,
            RestoreTestingSelection=update,
        )
        done[sel_name] = "updated"
    return done


def apply_document(
    backend: BackupClient,
    document: Mapping[str, Any],
    parts: Sequence[str],
    *,
    policy: str,
    account: str,
) -> dict[str, object]:
    result: dict[str, object] = {"document": document}
    if "vault" in parts:
        result["vault"] = _apply_vault(backend, document["BackupVault"])
        result["copy_vaults"] = {
            f"{vault['Region']}:{vault['BackupVaultName']}": (
                _apply_vault(backend, vault, region=vault["Region"])
                if vault["Account"] == account
                else "other account: create it there"
            )
            for vault in document["CopyVaults"]
        }
    if "vault-lock" in parts and document["VaultLock"] is not None:
        result["vault_lock"] = _apply_lock(backend, document["VaultLock"])
    if "vault-lock" in parts and document.get("CopyVaultLocks"):
        result["copy_vault_locks"] = {
            f"{lock['Region']}:{lock['BackupVaultName']}": (
                _apply_lock(
                    backend,
                    {k: v for k, v in lock.items() if k not in {"Region", "Account"}},
                    region=lock["Region"],
                )
                if lock["Account"] == account
                else "other account: lock it there"
            )
            for lock in document["CopyVaultLocks"]
        }
    plan_id: str | None = None
    if "plan" in parts:
        result["plan"], plan_id = _apply_plan(backend, document["BackupPlan"], policy)
        result["plan_id"] = plan_id
    if "selection" in parts:
        if plan_id is None:
            name = document["BackupPlan"]["BackupPlanName"]
            found = backend.find("list_backup_plans", "BackupPlansList", "BackupPlanName", name)
            if found is None:
                raise PolicyError.for_field(
                    "parts", "'plan' too: the backup plan does not exist yet", list(parts)
                )
            plan_id = str(found["BackupPlanId"])
        result["selection"] = _apply_selection(backend, plan_id, document["BackupSelection"])
    if "restore-testing" in parts and document["RestoreTestingPlan"] is not None:
        result["restore_testing"] = _apply_testing(
            backend, document["RestoreTestingPlan"], document["RestoreTestingSelections"]
        )
    return result
