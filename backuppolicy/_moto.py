"""Make moto's in-process S3 mock safe to call from several threads at once.

moto 5 (``moto.s3.models.S3Backend._url_module``) calls `importlib.reload` on
``moto.s3.urls`` for every S3 request it intercepts. `importlib.reload` takes the module out
of ``sys.modules`` while it re-executes it, so a second thread reloading in that window fails
with ``ImportError: module moto.s3.urls not in sys.modules``. The library's checks and restores
call S3 from a thread pool, so the demo (and the test suite) hit this race now and then.
:func:`serialize_s3_url_reloads` serializes those reloads behind one lock; it changes nothing
else in moto, and calling it twice is harmless.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["serialize_s3_url_reloads"]

_RELOAD_LOCK = threading.Lock()
_MARK = "_backuppolicy_serialized"


def serialize_s3_url_reloads() -> None:
    """Serialize moto's per-request reload of ``moto.s3.urls`` (idempotent).

    >>> serialize_s3_url_reloads()
    >>> from moto.s3.models import S3Backend
    >>> getattr(S3Backend._url_module.fget, "_backuppolicy_serialized", False)
    True
    """
    from moto.s3.models import S3Backend  # noqa: PLC0415

    current = S3Backend.__dict__.get("_url_module")
    if not isinstance(current, property) or current.fget is None:
        return  # a moto without the per-request reload: nothing to serialize
    if getattr(current.fget, _MARK, False):
        return
    unlocked = current.fget

    def _url_module(self: Any) -> Any:
        with _RELOAD_LOCK:
            return unlocked(self)

    setattr(_url_module, _MARK, True)
    S3Backend._url_module = property(_url_module)  # type: ignore[method-assign,assignment]  # noqa: SLF001
