"""Façades whose names are imported on first use (PEP 562), so a job imports only what it uses.

``import backuppolicy.aws.rds`` runs ``backuppolicy/__init__.py`` and
``backuppolicy/aws/__init__.py`` first. Were those façades to import every public name
eagerly, a prune job would load the checks, the workflows, S3, EC2 and AWS Backup
(about 0.5 s of CPU at start-up) to delete a few RDS snapshots. `lazy_exports` gives
a façade a module ``__getattr__`` and ``__dir__`` instead: ``backuppolicy.Policy`` imports
``backuppolicy.core.policy`` the first time it is read, and is a plain module attribute
after that. The façades keep the same imports under ``if TYPE_CHECKING:`` for mypy and
IDEs; ``tests/test_lazy_facades.py`` checks that the two lists agree.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, tuple[str, ...]], namespace: MutableMapping[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of the façade *package* (PEP 562).

    Args:
        package: The façade's ``__name__``.
        exports: Public names by the module that defines them.
        namespace: The façade's ``globals()``; a name, once imported, is stored there, so
            ``__getattr__`` runs once per name.

    A name not in *exports* that is a submodule of *package* (``backuppolicy.workflows``)
    is imported as such, as an eager façade's imports used to make it available.

    Example:
        >>> import backuppolicy
        >>> from backuppolicy.core import retention
        >>> backuppolicy.MaxAge is retention.MaxAge
        True
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module hook of PEP 562
        module = where.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module), name)
        elif not name.startswith("_"):
            try:
                value = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{package}.{name}":
                    raise  # the submodule exists but one of its imports is missing
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:  # noqa: N807 - the module hook of PEP 562
        return sorted({*namespace, *where})

    return __getattr__, __dir__
