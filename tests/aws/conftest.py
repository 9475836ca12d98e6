"""Fixtures of the AWS tests (the moto ones, ``aws`` and ``endpoint_url``, are in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(name="accounts_apart")
def _accounts_apart(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto (``aws``) with each account's S3 buckets apart, as AWS keeps them.

    With ``MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS`` off (moto reads it on each request), a request
    for another account's bucket is refused (``AccessDenied``), as AWS refuses it without a
    bucket policy.
    """
    monkeypatch.setenv("MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS", "false")
