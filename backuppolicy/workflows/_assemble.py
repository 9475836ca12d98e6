"""Assembly: the targets and notifiers of a policy, built from their specs.

`build_targets` turns each enabled `TargetSpec` into a `~backuppolicy.core.targets.BackupTarget`
(through the registry, `~backuppolicy.core.targets.get_target_class`), resolving selector
targets into the targets they find; `build_notifiers` does the same for the notifications.
`select_specs` and `run_specs` choose the specs a run goes through. Private: the workflows use
these names; `build_targets` and `build_notifiers` are public from `backuppolicy.workflows`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import attrs

from backuppolicy.core.exceptions import BackendNotFoundError, PolicyError
from backuppolicy.core.policy import Policy, TargetSpec
from backuppolicy.core.resolution import get_resolver, needs_resolver, stands_for_itself
from backuppolicy.core.targets import BackupTarget, get_target_class
from backuppolicy.notify import EventKind, LogNotifier, Notifier, SnsNotifier, WebhookNotifier

if TYPE_CHECKING:
    import boto3

__all__ = [
    "build_notifiers",
    "build_targets",
    "run_specs",
    "select_specs",
    "source_tier_of",
]


# --------------------------------------------------------------------------------------------
# Building targets and notifiers from a policy


def source_tier_of(policy: Policy, spec: TargetSpec) -> str:
    tiers = policy.tiers_for(spec)
    return tiers[0].name if tiers else "local"


def build_targets(
    policy: Policy,
    *,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    only: Iterable[str] | None = None,
) -> dict[str, BackupTarget]:
    """Build the enabled targets of *policy* from their kinds and settings.

    Each kind's class builds its targets itself (``from_spec``,
    `~backuppolicy.core.targets.TargetKind`): it gets the spec, the policy, and *session*,
    *endpoint_url* and *region*. AWS targets get ``copy_regions`` from the policy's copy tiers,
    so their off-site copies are listed (and pruned) too; directory targets store archives in
    the source tier's ``store``. A kind whose class has no ``from_spec`` is called with its
    settings as keywords, plus ``name`` and ``policy``. The default session is made only when
    a target's kind says it calls AWS (``needs_aws_session = True`` on its class).

    A selector target is resolved now (by the registry's ``"aws"`` resolver,
    `backuppolicy.aws.discovery.resolve_targets`): it becomes
    one target per resource found, named ``<target>-<resource>``; a target with an ``account``
    gets the session of its role, assumed once per account and region for this call. A
    resolution that fails (a refused role, a denied ``GetResources``) does not raise: the
    target's name maps to a stand-in whose calls raise that error, so `backup` and
    `plan_retention` report it as that target's failure and go on with the others.

    Args:
        policy: The policy.
        session: A `boto3.Session` for every AWS target (default: the default session).
        endpoint_url: Endpoint for every AWS client (moto server, LocalStack).
        region: Region for AWS targets whose settings name none.
        only: Names of the targets to build (default: all enabled targets).

    Raises:
        PolicyError: *only* names a target the policy does not have, or a target's settings
            cannot be used (e.g. a directory target without a store).
        BackendNotFoundError: A target's kind is not installed.
    """
    wanted = select_specs(policy, only)
    if needs_resolver(wanted) or any(_needs_aws_session(spec) for spec in wanted):
        resolver = get_resolver("aws")  # boto3 only when the policy has AWS targets
        if session is None:
            session = resolver.default_session()  # one session: each re-reads botocore's models
        resolved = resolver.resolve_targets(
            wanted, session=session, endpoint_url=endpoint_url, region=region
        )
    else:
        resolved = [stands_for_itself(spec, session=session, region=region) for spec in wanted]
    built: dict[str, BackupTarget] = {}
    owner: dict[str, str] = {}
    for found in resolved:
        if not found.ok:  # reported as this target's failure by backup and plan_retention
            built[found.spec.name] = found.unavailable()
        for spec in found.targets:
            if spec.name in owner:
                raise PolicyError.for_field(
                    "targets",
                    "distinct target names",
                    spec.name,
                    hint=f"Targets {owner[spec.name]!r} and {found.spec.name!r} both make it.",
                )
            owner[spec.name] = found.spec.name
            built[spec.name] = _build_target(
                policy,
                spec,
                session=found.sessions.get(spec.name, session),
                endpoint_url=endpoint_url,
                region=region,
            )
    return built


def select_specs(policy: Policy, only: Iterable[str] | None) -> list[TargetSpec]:
    if only is None:
        return [spec for spec in policy.targets if spec.enabled]
    return [policy.target(name) for name in only]


def run_specs(specs: Iterable[TargetSpec], built: Mapping[str, BackupTarget]) -> list[TargetSpec]:
    """The targets a run goes through: a selector target stands for its built targets.

    Those are named ``<target>-...`` (policy validation reserves that prefix); the selector
    target itself is kept when its resolution failed (its name maps to a stand-in).
    """
    out: list[TargetSpec] = []
    for spec in specs:
        if spec.selector is None or spec.name in built:
            out.append(spec)
        if spec.selector is not None:
            prefix = f"{spec.name}-"
            out.extend(attrs.evolve(spec, name=n) for n in built if n.startswith(prefix))
    return out


def _needs_aws_session(spec: TargetSpec) -> bool:
    """Whether the kind of *spec* calls AWS (its class says so: ``needs_aws_session``)."""
    try:
        kind = get_target_class(spec.kind)
    except BackendNotFoundError:
        return False  # reported when the target is built, as for any other kind
    return bool(getattr(kind, "needs_aws_session", False))


def _build_target(
    policy: Policy,
    spec: TargetSpec,
    *,
    session: boto3.Session | None,
    endpoint_url: str | None,
    region: str | None,
) -> BackupTarget:
    factory = get_target_class(spec.kind)
    from_spec = getattr(factory, "from_spec", None)
    if callable(from_spec):  # the kind reads its own settings (`TargetKind.from_spec`)
        built: BackupTarget = from_spec(
            spec, policy, session=session, endpoint_url=endpoint_url, region=region
        )
        return built
    # A kind without it gets its settings as keywords (less ``region`` and ``kms_key_id``).
    settings = {k: v for k, v in spec.settings.items() if k not in {"region", "kms_key_id"}}
    return factory(**settings, name=spec.name, policy=policy.name)


def build_notifiers(
    policy: Policy,
    event: EventKind | None = None,
    *,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
) -> list[Notifier]:
    """The notifiers of *policy*'s ``notifications`` (those subscribed to *event*, if given)."""
    result: list[Notifier] = []
    for spec in policy.notifications:
        if event is not None and event.value not in spec.on:
            continue
        settings = dict(spec.settings)
        if spec.kind == "log":
            level = logging.getLevelName(str(settings.get("level", "ERROR")))
            result.append(
                LogNotifier(logger=settings.get("logger", "backuppolicy.events"), level=level)
            )
        elif spec.kind == "sns":
            result.append(
                SnsNotifier(
                    settings["topic_arn"],
                    session=session,
                    endpoint_url=endpoint_url,
                    region=settings.get("region"),
                )
            )
        elif spec.kind == "webhook":
            result.append(
                WebhookNotifier(
                    settings["url"],
                    timeout=float(settings.get("timeout", 10.0)),
                    headers=settings.get("headers", {}),
                )
            )
    return result
