"""moto's in-process S3 mock must survive concurrent requests (see backuppolicy/_moto.py).

moto re-imports ``moto.s3.urls`` on every S3 request; `importlib.reload` takes the module out
of ``sys.modules`` while it runs, and a second thread reloading in that window failed with
``ImportError: module moto.s3.urls not in sys.modules`` (seen in CI, in a check's thread pool).
"""

from __future__ import annotations

import importlib
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from types import ModuleType
from typing import Any

import boto3
import moto.s3.models
import pytest

from backuppolicy._moto import serialize_s3_url_reloads

pytestmark = pytest.mark.usefixtures("aws")


def test_a_request_during_another_threads_reload_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold the first reload open in the window where the module is out of sys.modules."""
    serialize_s3_url_reloads()
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="bucket-threads")
    s3.put_object(Bucket="bucket-threads", Key="k", Body=b"x")
    # A new custom-endpoint setting makes both requests want a reload (the only reason moto
    # reloads; an unchanged setting reloads nothing, see tests/test_moto_patches.py).
    monkeypatch.setenv("MOTO_S3_CUSTOM_ENDPOINTS", "http://s3.threads.test:9000")
    inside, release = threading.Event(), threading.Event()
    first = threading.Lock()
    real_reload = importlib.reload

    def slow_reload(module: ModuleType) -> ModuleType:
        if not first.acquire(blocking=False):
            return real_reload(module)
        # What importlib's _exec does while it re-executes the module, held open.
        name = module.__name__
        sys.modules.pop(name)
        inside.set()
        release.wait(5)
        sys.modules[name] = module
        return real_reload(module)

    monkeypatch.setattr(moto.s3.models, "reload", slow_reload)
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(s3.head_object, Bucket="bucket-threads", Key="k")
        assert inside.wait(5)
        racing = pool.submit(s3.head_object, Bucket="bucket-threads", Key="k")
        # Give the racing request time to reach moto's reload (where it failed) before the
        # first reload finishes; with the fix it waits on the lock instead.
        wait([racing], timeout=0.5)
        release.set()
        results: list[Any] = [held.result(), racing.result()]
    assert [r["ContentLength"] for r in results] == [1, 1]


def test_serializing_twice_wraps_once() -> None:
    """A second call keeps the first wrapper: no lock inside a lock."""
    serialize_s3_url_reloads()
    fget = moto.s3.models.S3Backend.__dict__["_url_module"].fget
    serialize_s3_url_reloads()
    assert moto.s3.models.S3Backend.__dict__["_url_module"].fget is fget
