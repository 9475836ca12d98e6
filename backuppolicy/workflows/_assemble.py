"""Assembly: the targets and notifiers of a policy, built from their specs.

`build_targets` turns each enabled `TargetSpec` into a `~backuppolicy.core.targets.BackupTarget`
(through the registry, `~backuppolicy.core.targets.get_target_class`), resolving selector
targets into the targets they find; `build_notifiers` does the same for the notifications.
`select_specs` and `run_specs` choose the specs a run goes through. Private: the workflows use
these names; `build_targets` and `build_notifiers` are public from `backuppolicy.workflows`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.policy import Policy, TargetSpec, TierSpec
from backuppolicy.core.resolution import get_resolver, needs_resolver, stands_for_itself
from backuppolicy.core.targets import BackupTarget, get_target_class
from backuppolicy.notify import EventKind, LogNotifier, Notifier, SnsNotifier, WebhookNotifier

__all__ = [
    "build_notifiers",
    "build_targets",
    "copy_tiers",
    "run_specs",
    "select_specs",
    "source_tier_of",
]


# --------------------------------------------------------------------------------------------
# Building targets and notifiers from a policy


def _store(
    url: str, *, tier: str, session: Any, endpoint_url: str | None, region: str | None
) -> Any:
    from backuppolicy import local  # noqa: PLC0415 - debt (issue 11): Directory.from_spec

    if url.startswith("s3://"):
        return local.open_store(
            url, tier=tier, session=session, endpoint_url=endpoint_url, region=region
        )
    return local.open_store(url, tier=tier)


def copy_tiers(policy: Policy, spec: TargetSpec) -> tuple[TierSpec, ...]:
    """Tiers that hold copies of *spec* (every tier after the first, the source tier)."""
    return policy.tiers_for(spec)[1:]


def source_tier_of(policy: Policy, spec: TargetSpec) -> str:
    tiers = policy.tiers_for(spec)
    return tiers[0].name if tiers else "local"


def build_targets(
    policy: Policy,
    *,
    session: Any = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    only: Iterable[str] | None = None,
) -> dict[str, BackupTarget]:
    """Build the enabled targets of *policy* from their kinds and settings.

    AWS targets get ``copy_regions`` from the policy's copy tiers, so their off-site copies are
    listed (and pruned) too. Directory targets store archives in the source tier's ``store``.

    A kind whose class has ``from_spec`` (`~backuppolicy.core.targets.TargetKind`) builds its
    target itself: it gets the spec, the policy, and *session*, *endpoint_url* and *region*.

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
    if needs_resolver(wanted) or any(spec.kind in _AWS_KINDS for spec in wanted):
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


_AWS_KINDS = frozenset(
    {"rds-instance", "aurora-cluster", "ec2-instance", "ebs-volume", "s3-bucket", "aws-backup"}
)


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


def _build_target(
    policy: Policy,
    spec: TargetSpec,
    *,
    session: Any,
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
    return _build_builtin(
        factory, policy, spec, session=session, endpoint_url=endpoint_url, region=region
    )


def _build_builtin(
    factory: Callable[..., BackupTarget],
    policy: Policy,
    spec: TargetSpec,
    *,
    session: Any,
    endpoint_url: str | None,
    region: str | None,
) -> BackupTarget:
    """The built-in kinds that do not have ``from_spec`` yet; any other kind gets its settings."""
    settings = dict(spec.settings)
    common: dict[str, Any] = {"name": spec.name, "policy": policy.name}
    aws_common = {
        "session": session,
        "endpoint_url": endpoint_url,
        "region": settings.pop("region", None) or region,
    }
    settings.pop("kms_key_id", None)
    copy_regions = [
        t.location["region"] for t in copy_tiers(policy, spec) if "region" in t.location
    ]
    if spec.kind in {"rds-instance", "aurora-cluster", "ebs-volume"}:
        resource = settings.pop(
            {"rds-instance": "db_instance_id", "aurora-cluster": "db_cluster_id"}.get(
                spec.kind, "volume_id"
            )
        )
        return factory(resource, **common, **aws_common, copy_regions=copy_regions)
    if spec.kind == "ec2-instance":
        settings.pop("no_reboot", None)  # CreateSnapshots never reboots the instance
        return factory(
            settings.pop("instance_id"), **common, **aws_common, copy_regions=copy_regions
        )
    if spec.kind == "s3-bucket":
        return factory(
            settings.pop("bucket"),
            prefix=settings.pop("prefix", ""),
            **common,
            **aws_common,
            copy_stores={
                t.location["store"]: t.name
                for t in copy_tiers(policy, spec)
                if t.location.get("store")
            },
        )
    if spec.kind == "directory":
        tiers = policy.tiers_for(spec)
        url = tiers[0].location.get("store") if tiers else None
        if not url:
            raise PolicyError.for_field(
                f"tiers[{tiers[0].name if tiers else 'local'}].location.store",
                f"a directory or s3:// URL where archives of directory target {spec.name!r} are kept",
                url,
            )
        store_kw = {"session": session, "endpoint_url": endpoint_url, "region": region}
        store = _store(url, tier=tiers[0].name, **store_kw)
        # Stores of the copy tiers too, so their copies are listed (due checks, pruning).
        copy_stores = [
            _store(t.location["store"], tier=t.name, **store_kw)
            for t in copy_tiers(policy, spec)
            if t.location.get("store")
        ]
        return factory(
            settings.pop("path"),
            store=store,
            stores=copy_stores,
            store_options={"session": session, "endpoint_url": endpoint_url},
            exclude=tuple(settings.pop("exclude", ())),
            include=tuple(settings.pop("include", ())),
            **common,
        )
    if spec.kind == "aws-backup":  # read-only: AWS Backup makes and expires these points
        return factory(settings.pop("resource_arn"), **settings, **common, **aws_common)
    return factory(**settings, **common)


def build_notifiers(
    policy: Policy,
    event: EventKind | None = None,
    *,
    session: Any = None,
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
