"""The end-to-end suite's S3 servers: moto's ThreadedMotoServer and LocalStack's own S3.

LocalStack's S3 provider is not moto: it is a second, independent implementation of S3, so a
test that passes on both relies less on one emulator's quirks. `s3_server` parametrizes a test
over both. LocalStack runs as a separate process that ``.ci/localstack.sh start`` starts (``.ci/run``
does); its URL comes from ``BACKUPPOLICY_LOCALSTACK_URL``. Without it the LocalStack cases are
skipped with the reason (``BACKUPPOLICY_LOCALSTACK_UNAVAILABLE`` carries the reason when
``.ci/run`` could not start it).

LocalStack's state is not reset between tests as moto's is: every bucket a test makes through
`S3Server.bucket` has a unique name and is emptied and deleted after the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import boto3
import pytest

LOCALSTACK_URL = "BACKUPPOLICY_LOCALSTACK_URL"
"""The environment variable with the URL of a running LocalStack (``http://127.0.0.1:PORT``)."""

LOCALSTACK_UNAVAILABLE = "BACKUPPOLICY_LOCALSTACK_UNAVAILABLE"
"""Set by ``.ci/run`` to the reason when LocalStack could not start."""

REGION = "us-east-1"


@attrs.define
class S3Server:
    """One S3 server of the parametrized tests.

    Attributes:
        name: ``"moto"`` or ``"localstack"``.
        url: The endpoint URL.
        shares_clock: The server runs in this process, so ``time_machine.travel`` dates its
            writes (moto); LocalStack's clock is its own.
    """

    name: str
    url: str
    shares_clock: bool
    buckets: list[str] = attrs.field(factory=list)

    def client(self) -> Any:
        """A boto3 S3 client for the server."""
        return boto3.client("s3", region_name=REGION, endpoint_url=self.url)

    def bucket(self, stem: str, *, versioned: bool = False) -> str:
        """Create a bucket with a unique name starting with *stem*; deleted after the test."""
        name = f"{stem}-{uuid.uuid4().hex[:12]}"
        client = self.client()
        client.create_bucket(Bucket=name)
        self.buckets.append(name)
        if versioned:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def clean_up(self) -> None:
        """Delete every version and delete marker of the test's buckets, then the buckets."""
        client = self.client()
        for name in self.buckets:
            for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
                doomed = [
                    {"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
                ]
                if doomed:
                    client.delete_objects(Bucket=name, Delete={"Objects": doomed, "Quiet": True})
            client.delete_bucket(Bucket=name)


def _healthy(url: str) -> str | None:
    """``None`` if LocalStack at *url* serves S3, else why not."""
    import requests

    try:
        response = requests.get(f"{url}/_localstack/health", timeout=5)
        status = response.json().get("services", {}).get("s3")
    except (requests.RequestException, ValueError) as exc:
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    if status not in {"available", "running"}:
        return f"its S3 service is {status!r}"
    return None


@pytest.fixture(name="localstack_url", scope="session")
def _localstack_url() -> str:
    """The URL of the running LocalStack; skips, with the reason, when there is none."""
    url = os.environ.get(LOCALSTACK_URL, "").rstrip("/")
    if not url:
        reason = os.environ.get(LOCALSTACK_UNAVAILABLE) or (
            f"{LOCALSTACK_URL} is not set: start LocalStack with `.ci/localstack.sh start` "
            f"and export {LOCALSTACK_URL}=<the URL it prints>"
        )
        pytest.skip(f"LocalStack S3 unavailable: {reason}")
    problem = _healthy(url)
    if problem is not None:
        pytest.fail(f"{LOCALSTACK_URL}={url} is set but LocalStack does not serve S3: {problem}")
    return url


@pytest.fixture(name="s3_server", params=["moto", "localstack"])
def _s3_server(request: pytest.FixtureRequest) -> Iterator[S3Server]:
    """Each S3 server in turn: moto (reset after the test) and LocalStack."""
    if request.param == "moto":
        server = S3Server("moto", request.getfixturevalue("endpoint_url"), shares_clock=True)
    else:
        server = S3Server("localstack", request.getfixturevalue("localstack_url"), False)
    yield server
    server.clean_up()
