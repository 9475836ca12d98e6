"""What the targets of a policy stand for in one run: `Resolution`, and who resolves them.

A single-resource target stands for itself. A selector target, or a target in another
account, needs a backend to resolve it: the tagging API to find resources, STS to assume
roles. Workflows never import that backend: they ask the registry for a `TargetResolver` by
name (`get_resolver`, ``"aws"`` is `backuppolicy.aws.discovery`, loaded on first use), so the
layers above the backends stay free of boto3 and of AWS calls.

Example:
    >>> from backuppolicy.core.policy import TargetSpec
    >>> spec = TargetSpec("cfg", "directory", settings={"path": "/etc/app"})
    >>> needs_resolver([spec])
    False
    >>> [t.name for t in stands_for_itself(spec).targets]
    ['cfg']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, cast

import attrs

from backuppolicy.core.exceptions import BackendError, PolicyError
from backuppolicy.core.registry import get_plugin

if TYPE_CHECKING:
    from backuppolicy.core.model import RecoveryPoint
    from backuppolicy.core.policy import Policy, TargetSpec
    from backuppolicy.core.selector import Selector

__all__ = ["Resolution", "TargetResolver", "get_resolver", "needs_resolver", "stands_for_itself"]


@attrs.frozen
class Resolution:
    """What one target of a policy stands for in one run.

    A single-resource target stands for itself; a selector target for one concrete target per
    resource its selector finds now, in every region it fans out to. Each concrete target
    comes with the session to reach it (for AWS, the role of the target's ``account`` assumed,
    once per account and region).

    Attributes:
        spec: The policy's target.
        targets: The concrete targets, sorted by name for a selector (empty when nothing
            matches, or when every account and region failed).
        sessions: The session of each concrete target, by name (``None``: the caller's).
        searched: The ``(account id, region)`` pairs a selector searched or a target uses
            (``None``: the caller's account, the default region).
        errors: One line per account and region that failed (``"account 222222222222 in
            eu-west-2: PermissionDeniedError: ..."``), or a name collision.
        exception: The first exception, for callers that re-raise.
    """

    spec: TargetSpec
    targets: tuple[TargetSpec, ...] = ()
    sessions: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    searched: tuple[tuple[str | None, str | None], ...] = ()
    errors: tuple[str, ...] = ()
    exception: BaseException | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def ok(self) -> bool:
        """Whether every account and region resolved."""
        return not self.errors

    def error(self) -> BaseException:
        """The error of a failed resolution: the first exception's class, every failure named."""
        message = f"target {self.spec.name!r} could not be resolved: " + "; ".join(self.errors)
        first = self.exception
        if isinstance(first, BackendError):
            return type(first)(
                message,
                backend=self.spec.name,
                operation=first.operation,
                resource=first.resource,
                code=first.code,
            )
        if isinstance(first, PolicyError):
            return PolicyError(message, path=first.path, expected=first.expected, got=first.got)
        return BackendError(message, backend=self.spec.name, operation="resolve")

    def unavailable(self) -> _Unresolved:
        """A stand-in target whose every call raises `error`: workflows report it per target."""
        return _Unresolved(self.spec.name, self.error())


class _Unresolved:
    """A target that could not be resolved: every call raises the resolution error."""

    kind = "selector"

    def __init__(self, name: str, error: BaseException) -> None:
        self._name = name
        self._error = error

    @property
    def name(self) -> str:
        return self._name

    def _fail(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        raise self._error

    def list_points(self) -> Iterator[RecoveryPoint]:
        self._fail()

    create_backup = refresh = delete = copy = restore = _fail


def stands_for_itself(
    spec: TargetSpec, *, session: Any = None, region: str | None = None
) -> Resolution:
    """The `Resolution` of a target with neither selector nor account: itself, in the caller's session."""
    where = spec.settings.get("region") or region
    return Resolution(spec, (spec,), sessions={spec.name: session}, searched=((None, where),))


def needs_resolver(specs: Iterable[TargetSpec]) -> bool:
    """Whether one of *specs* has a selector or an account (else each stands for itself)."""
    return any(spec.selector is not None or spec.account is not None for spec in specs)


class TargetResolver(Protocol):
    """**Protocol:** resolves selector targets and accounts (`backuppolicy.aws.discovery`)."""

    def default_session(self) -> Any:
        """A session for a run that was given none (one per run: sessions are costly)."""
        ...

    def resolve_targets(
        self,
        specs: Iterable[TargetSpec],
        *,
        session: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> list[Resolution]:
        """One `Resolution` per target of *specs*, in order; failures are recorded, not raised."""
        ...

    def unprotected_resources(
        self,
        policy: Policy,
        *,
        selectors: Iterable[Selector] = (),
        regions: Iterable[str] = (),
        session: Any = None,
        endpoint_url: str | None = None,
    ) -> list[dict[str, Any]]:
        """Resources that no target of *policy* and no selector covers."""
        ...


def get_resolver(name: str = "aws") -> TargetResolver:
    """The resolver registered as *name* in the ``resolver`` plug-in group, imported on first use.

    Raises:
        BackendNotFoundError: No resolver is registered as *name*, or it cannot be imported.
    """
    return cast("TargetResolver", get_plugin("resolver", name))
