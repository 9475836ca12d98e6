"""How a kind writes the IAM statements it needs: placeholders and grants, for ``iam_actions(spec)``.

A kind's ``iam_actions(spec)`` (`~backuppolicy.core.targets.TargetKind`) knows its spec only;
what depends on the policy and on the call to `backuppolicy.aws.iam_policy` (partition,
account, the target's region and its copy tiers' regions, the policy's name, the isolation
profile's name prefix and sweep tag) is written as a placeholder that `iam_policy` fills in, for
every kind alike:

* `PARTITION`, `ACCOUNT`, `REGION`, `POLICY`, `RESTORE_PREFIX`, `SWEEP_TAG` stand for one
  string each, in resources and in conditions (keys and values);
* a resource holding `REGIONS` stands for one resource per region: the target's, then its copy
  tiers' (in tier order, without repeats);
* a statement with ``COPIES_ONLY: True`` is left out when the target has no copy region.

The built-in kinds write their statements as `Grant` values (one per set of workflows) and
turn them into the ``{workflow: [statements]}`` mapping with `by_workflow`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

import attrs

from backuppolicy.core.model import TAG_HOLD, TAG_POLICY

__all__ = [
    "ACCOUNT",
    "ALL_WORKFLOWS",
    "COPIES_ONLY",
    "LISTING_WORKFLOWS",
    "PARTITION",
    "POLICY",
    "REGION",
    "REGIONS",
    "RESTORE_PREFIX",
    "SOURCE_ACCOUNT",
    "STORE",
    "STORE_BUCKET",
    "SWEEP_TAG",
    "TIER_KEY",
    "Grant",
    "by_workflow",
    "created",
    "held",
    "hold_tags",
    "owned",
    "swept",
]

ALL_WORKFLOWS: Final = ("backup", "prune", "verify", "restore-test", "holds", "enforce")
"""The workflows `backuppolicy.aws.iam_policy` knows, in the order statements are listed.

``holds`` is `backuppolicy.place_hold` / `backuppolicy.release_hold` (and the audit's reads of
what enforces a hold); ``enforce`` is ``backuppolicy verify --enforce``
(`backuppolicy.workflows.verify.enforce_settings`), on top of ``verify``.
"""

LISTING_WORKFLOWS: Final = ("backup", "prune", "verify", "restore-test", "holds")
"""The workflows that list a target's points: what a `Grant` with no workflows stands for."""

PARTITION: Final = "${bp:partition}"
ACCOUNT: Final = "${bp:account}"
REGION: Final = "${bp:region}"
REGIONS: Final = "${bp:regions}"
POLICY: Final = "${bp:policy}"
RESTORE_PREFIX: Final = "${bp:restore-prefix}"
SWEEP_TAG: Final = "${bp:sweep-tag}"
COPIES_ONLY: Final = "CopiesOnly"
SOURCE_ACCOUNT: Final = "${bp:source-account}"
"""In a backup account's statements: the production account whose snapshots are copied in."""
STORE: Final = "${bp:store}"
"""In a backup account's statements: the tier's store, ``bucket/prefix`` (an S3 copy tier)."""
STORE_BUCKET: Final = "${bp:store-bucket}"
"""In a backup account's statements: the bucket of the tier's store."""
TIER_KEY: Final = "${bp:tier-key}"
"""In a backup account's statements: the ARN of the tier's ``kms_key_id``."""


@attrs.frozen
class Grant:
    """Actions on resources, for some workflows (default: all), maybe under a condition.

    Attributes:
        workflows: The workflows that need it (empty: every workflow that lists points,
            `LISTING_WORKFLOWS`; ``enforce`` lists nothing).
        actions: IAM actions.
        resources: Resource ARNs (with placeholders).
        condition: IAM condition, if any.
        copies: Only when the target has copy regions.
    """

    workflows: tuple[str, ...]
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Mapping[str, object] | None = attrs.field(default=None, hash=False)
    copies: bool = False


def by_workflow(grants: Iterable[Grant]) -> dict[str, list[dict[str, object]]]:
    """The ``{workflow: [statements]}`` mapping of *grants*, workflows in `ALL_WORKFLOWS` order.

    A grant with no workflows goes to each of `LISTING_WORKFLOWS`.

    Example:
        >>> by_workflow([Grant(("prune",), ("rds:DeleteDBSnapshot",), ("*",))])
        {'prune': [{'Action': ['rds:DeleteDBSnapshot'], 'Resource': ['*']}]}
    """
    grants = list(grants)
    out: dict[str, list[dict[str, object]]] = {}
    for workflow in ALL_WORKFLOWS:
        for grant in grants:
            if workflow not in (grant.workflows or LISTING_WORKFLOWS):
                continue
            statement: dict[str, object] = {
                "Action": list(grant.actions),
                "Resource": list(grant.resources),
            }
            if grant.condition:
                statement["Condition"] = grant.condition
            if grant.copies:
                statement[COPIES_ONLY] = True
            out.setdefault(workflow, []).append(statement)
    return out


def owned() -> dict[str, object]:
    """The condition that a resource carries this policy's ownership tag."""
    return {"StringEquals": {f"aws:ResourceTag/{TAG_POLICY}": POLICY}}


def swept() -> dict[str, object]:
    """The condition that a resource carries the isolation profile's sweep tag."""
    return {"Null": {f"aws:ResourceTag/{SWEEP_TAG}": "false"}}


def created(*actions: str) -> dict[str, object]:
    """The condition that EC2 tags are put by one of *actions* (``CreateSnapshot``)."""
    return {"StringEquals": {"ec2:CreateAction": list(actions)}}


def held() -> dict[str, object]:
    """The condition that a resource carries the legal hold tag (``backuppolicy:legal-hold``)."""
    return {"Null": {f"aws:ResourceTag/{TAG_HOLD}": "false"}}


def hold_tags(*extra: str) -> dict[str, object]:
    """The condition that a tag request names only the hold tag (and *extra* tag keys)."""
    return {"ForAllValues:StringEquals": {"aws:TagKeys": [TAG_HOLD, *extra]}}
