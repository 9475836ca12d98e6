"""Fixtures for every test, the doctests of ``backuppolicy/`` included."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import pytest

from backuppolicy._moto import patch_moto


def _sleep_on_an_event(seconds: float) -> None:
    """`time.sleep` that waits on a semaphore instead of ``clock_nanosleep``."""
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    threading.Event().wait(seconds)


# Under libfaketime (.ci/run runs the suite 400 days ahead) only the calendar may move, so the
# run sets FAKETIME_DONT_FAKE_MONOTONIC=1: otherwise every timed wait of a thread waits on a
# monotonic clock 400 days ahead and never wakes. libfaketime 0.9.10 then still shifts the
# absolute deadline Python's time.sleep hands to clock_nanosleep, which fails with EINVAL, so
# sleeps wait on an event (whose timed wait libfaketime leaves alone) instead.
if (
    "faketime" in os.environ.get("LD_PRELOAD", "")
    and os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1"
):
    time.sleep = _sleep_on_an_event

# In-process moto races between threads in two places (the library calls AWS from thread
# pools) and wastes most of its time in a few others; backuppolicy/_moto.py patches both kinds,
# each compared with moto's own code in tests/test_moto_patches.py. The demo runs on them too.
patch_moto()


@pytest.fixture(autouse=True)
def _temp_files_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Send every temporary file or directory a test makes (``tempfile.*``) into its tmp_path.

    Doctests and library defaults (e.g. the demo's run directory) call `tempfile.mkdtemp`;
    with this, no test writes under the shared system temp dir, where tests or a demo running
    at the same time could meet its files.
    """
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables fit ``$COLUMNS``: pin it, so no result depends on where the suite runs.

    (A pytest-xdist worker has no terminal, a developer's shell has one of any width.) Tests of
    the fitting itself set their own width.
    """
    monkeypatch.setenv("COLUMNS", "200")
