"""Bounded concurrency for the S3 target's copies and deletes, and the count of their requests.

`Pool` is a thread pool with a bounded queue that fails fast; `Requests` counts the requests
made by API operation, across threads (the ``requests`` of the S3 reports).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, Self

from backuppolicy.core.exceptions import PolicyError

__all__ = ["Pool", "Requests"]

_P = ParamSpec("_P")


class Requests:
    """Thread-safe count of requests by API operation."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, operation: str, n: int = 1) -> None:
        with self._lock:
            self._counts[operation] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class Pool:
    """A thread pool with a bounded queue that fails fast: the first worker error is raised."""

    def __init__(self, max_workers: int) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise PolicyError.for_field("max_workers", "an integer >= 1", max_workers)
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="backuppolicy-s3")
        self._slots = threading.BoundedSemaphore(max_workers * 2)
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._executor.shutdown(wait=True, cancel_futures=exc is not None or bool(self._errors))
        if exc is None:
            self.raise_first()

    def raise_first(self) -> None:
        with self._lock:
            if self._errors:
                raise self._errors[0]

    def submit(self, fn: Callable[_P, object], *args: _P.args, **kwargs: _P.kwargs) -> None:
        self.raise_first()
        self._slots.acquire()
        try:
            future = self._executor.submit(fn, *args, **kwargs)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(self._done)

    def _done(self, future: Future[object]) -> None:
        self._slots.release()
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            with self._lock:
                self._errors.append(error)
