"""Fixtures for every test, the doctests of ``backuppolicy/`` included."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _temp_files_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Send every temporary file or directory a test makes (``tempfile.*``) into its tmp_path.

    Doctests and library defaults (e.g. the demo's run directory) call `tempfile.mkdtemp`;
    with this, no test writes under the shared system temp dir, where tests or a demo running
    at the same time could meet its files.
    """
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
