"""The registry: target kinds, plug-ins and sweepers, reached by name and imported lazily.

Built-in kinds are registered by name and imported lazily, so ``import backuppolicy``
never imports boto3. Third-party packages register more kinds through the
entry-point group ``backuppolicy.targets``::

    [project.entry-points."backuppolicy.targets"]
    my-nas = "my_package.nas:NasShare"

The same registry, by *group* (`PLUGIN_GROUPS`), holds the other backends that the layers
above reach by name, never by import: the objects behind an ``s3://`` store, and the resolver
of selectors and accounts (``"aws"``).
Like fsspec's ``known_implementations``, each entry is a ``"module:attr"`` string imported on
first use, so ``import backuppolicy`` never imports boto3; `register_plugin` and the group's
entry points add more. `leftover_sweepers` finds the sweepers that need no target the same way.

Every name here is re-exported by `backuppolicy.core.targets`.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Final

from backuppolicy.core.exceptions import BackendNotFoundError, PolicyError

if TYPE_CHECKING:
    from backuppolicy.core.capabilities import Sweepable
    from backuppolicy.core.targets import BackupTarget

__all__ = [
    "ENTRY_POINT_GROUP",
    "PLUGIN_GROUPS",
    "get_plugin",
    "get_target_class",
    "known_plugins",
    "known_target_kinds",
    "leftover_sweepers",
    "register_plugin",
    "register_target",
]

ENTRY_POINT_GROUP = "backuppolicy.targets"

_REGION_SWEEPER: Final = "backuppolicy.aws._sweep:RegionSweeper"
_DIRECTORY_SWEEPER: Final = "backuppolicy.local:Directory"


def _resolve(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def leftover_sweepers(
    regions: Iterable[str] = (), *, session: Any = None, endpoint_url: str | None = None
) -> list[Sweepable]:
    """The sweepers that need no target: each AWS region of *regions*, then restored directories.

    Backends are imported lazily (AWS only when *regions* are given), like the built-in kinds.
    """
    sweepers: list[Sweepable] = []
    regions = list(dict.fromkeys(regions))
    if regions:
        region_sweeper = _resolve(_REGION_SWEEPER)
        sweepers.extend(
            region_sweeper(region, session=session, endpoint_url=endpoint_url) for region in regions
        )
    sweepers.append(_resolve(_DIRECTORY_SWEEPER))  # a class: its sweep is a class method
    return sweepers


_BUILTIN: dict[str, str] = {
    "rds-instance": "backuppolicy.aws.rds:RdsInstance",
    "aurora-cluster": "backuppolicy.aws.rds:AuroraCluster",
    "ec2-instance": "backuppolicy.aws.ec2:Ec2Instance",
    "ebs-volume": "backuppolicy.aws.ec2:EbsVolume",
    "s3-bucket": "backuppolicy.aws.s3:S3Bucket",
    "directory": "backuppolicy.local:Directory",
    "aws-backup": "backuppolicy.aws.awsbackup:AwsBackupTarget",
}
_REGISTERED: dict[str, Callable[..., BackupTarget] | str] = {}
_EXTRAS: dict[str, str] = {"backuppolicy.aws": "boto3 (pip install backuppolicy)"}


def register_target(kind: str, factory: Callable[..., BackupTarget] | str) -> None:
    """Register a target *factory* (a class, a callable, or ``"module:attr"``) under *kind*.

    Example:
        >>> register_target("memory-demo", "backuppolicy.testing:MemoryTarget")
        >>> "memory-demo" in known_target_kinds()
        True
    """
    _REGISTERED[kind] = factory


def known_target_kinds() -> tuple[str, ...]:
    """All kinds that `get_target_class` can resolve, sorted."""
    names = set(_BUILTIN) | set(_REGISTERED)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return tuple(sorted(names))


def get_target_class(kind: str) -> Callable[..., BackupTarget]:
    """Resolve a target *kind* to its factory, importing the backend lazily.

    Raises:
        BackendNotFoundError: No target is registered under *kind* (the message suggests close
            names), or its module cannot be imported (the message names the package to install).
    """
    spec: Callable[..., BackupTarget] | str | None = _REGISTERED.get(kind) or _BUILTIN.get(kind)
    if spec is None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == kind:
                spec = f"{ep.module}:{ep.attr}"
                break
    if spec is None:
        known = known_target_kinds()
        close = difflib.get_close_matches(kind, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        message = (
            f"target kind: expected one of {', '.join(known)} or a kind registered in the "
            f"entry-point group {ENTRY_POINT_GROUP!r} (got {kind!r}).{hint}"
        )
        raise BackendNotFoundError(message, name=kind, known=known)
    if not isinstance(spec, str):
        return spec
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        package = next((v for k, v in _EXTRAS.items() if module_name.startswith(k)), module_name)
        message = f"target kind {kind!r} needs {module_name!r}, which failed to import: {exc}. Install {package}."
        raise BackendNotFoundError(message, name=kind) from exc
    factory: Callable[..., BackupTarget] = getattr(module, attr)
    return factory


# --------------------------------------------------------------------------------------------
# Other backends reached by name: URL schemes of stores, resolvers of selectors and accounts.

PLUGIN_GROUPS: Final[Mapping[str, str]] = {
    "object-store": "backuppolicy.object_stores",
    "resolver": "backuppolicy.resolvers",
    "lease": "backuppolicy.leases",
    "key-provider": "backuppolicy.key_providers",
}
"""Plug-in groups and their entry-point groups.

* ``object-store``: URL scheme → a class of plain objects under a bucket prefix (bounded
  reads, listings, uploads and conditional writes). The archive store
  `backuppolicy.local.S3Store` and the testing-log store `backuppolicy.S3LogStore` keep their
  formats and build on ``"s3"`` (`backuppolicy.aws.S3Objects`), which makes every S3 call.
* ``resolver``: name → a resolver of selectors and accounts
  (`backuppolicy.core.resolution.TargetResolver`): ``"aws"`` is the module
  `backuppolicy.aws.discovery`.
* ``lease``: where the testing log lives → the `~backuppolicy.core.capabilities.Lease` that
  keeps two runs of `backuppolicy.run` apart: ``"file"`` (`backuppolicy.local.FileLease`) and
  ``"s3"`` (`backuppolicy.aws.S3Lease`).
* ``key-provider``: scheme → a source of data keys for encrypted directory archives
  (`backuppolicy.local`): ``"kms"`` is `backuppolicy.aws.KmsDataKeys` (envelope encryption).
"""

_BUILTIN_PLUGINS: dict[str, dict[str, str]] = {
    "object-store": {"s3": "backuppolicy.aws.objects:S3Objects"},
    "resolver": {"aws": "backuppolicy.aws.discovery"},
    "lease": {"file": "backuppolicy.local:FileLease", "s3": "backuppolicy.aws.lease:S3Lease"},
    "key-provider": {"kms": "backuppolicy.aws.kms:KmsDataKeys"},
}
_REGISTERED_PLUGINS: dict[str, dict[str, object]] = {group: {} for group in PLUGIN_GROUPS}


def _check_group(group: str) -> str:
    if group not in PLUGIN_GROUPS:
        raise PolicyError.for_field("group", "one of " + ", ".join(PLUGIN_GROUPS), group)
    return PLUGIN_GROUPS[group]


def register_plugin(group: str, name: str, plugin: object) -> None:
    """Register *plugin* (an object, or ``"module"`` / ``"module:attr"``) as *name* in *group*.

    Example:
        >>> register_plugin("resolver", "doc-example", "backuppolicy.aws.discovery")
        >>> "doc-example" in known_plugins("resolver")
        True

    Raises:
        PolicyError: *group* is not one of `PLUGIN_GROUPS`.
    """
    _check_group(group)
    _REGISTERED_PLUGINS[group][name] = plugin


def known_plugins(group: str) -> tuple[str, ...]:
    """The names that `get_plugin` resolves in *group*, sorted."""
    entry_group = _check_group(group)
    names = set(_BUILTIN_PLUGINS[group]) | set(_REGISTERED_PLUGINS[group])
    names.update(ep.name for ep in entry_points(group=entry_group))
    return tuple(sorted(names))


def get_plugin(group: str, name: str) -> Any:
    """The plug-in *name* of *group*, its module imported on first use.

    Registered plug-ins come first, then the built-in table, then the group's entry points.
    A ``"module"`` entry resolves to the module itself; ``"module:attr"`` (``attr`` may be dotted,
    ``"Class.from_url"``) to that attribute.

    Raises:
        PolicyError: *group* is not one of `PLUGIN_GROUPS`.
        BackendNotFoundError: Nothing is registered as *name* (the message lists what is), or
            its module cannot be imported (the message names the package to install).
    """
    entry_group = _check_group(group)
    spec = _REGISTERED_PLUGINS[group].get(name) or _BUILTIN_PLUGINS[group].get(name)
    if spec is None:
        for ep in entry_points(group=entry_group):
            if ep.name == name:
                spec = ep.value
                break
    if spec is None:
        known = known_plugins(group)
        message = (
            f"{group}: expected one of {', '.join(known) or 'none'} or a name registered in "
            f"the entry-point group {entry_group!r} (got {name!r})."
        )
        raise BackendNotFoundError(message, name=name, known=known)
    if not isinstance(spec, str):
        return spec
    module_name, _, attr = spec.partition(":")
    try:
        found: Any = importlib.import_module(module_name.strip())
    except ImportError as exc:
        package = next((v for k, v in _EXTRAS.items() if module_name.startswith(k)), module_name)
        message = f"{group} {name!r} needs {module_name!r}, which failed to import: {exc}. Install {package}."
        raise BackendNotFoundError(message, name=name) from exc
    for part in attr.strip().split(".") if attr.strip() else ():
        found = getattr(found, part)
    return found
