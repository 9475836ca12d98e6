"""AWS targets (imports boto3): ``from backuppolicy import aws``.

Every target takes ``session=``, ``region=``, ``endpoint_url=`` (moto server, LocalStack),
``clients=`` (ready clients) and ``retry=`` (a `RetryPolicy`).
"""

from __future__ import annotations

from backuppolicy.aws._client import AwsBackend, RetryPolicy

__all__ = ["AwsBackend", "RetryPolicy"]
