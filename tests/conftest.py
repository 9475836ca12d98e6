"""Shared fixtures: fake AWS credentials, Hypothesis profiles, moto (in-process and HTTP server)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

# No test may ever reach real AWS: fake credentials and a fixed region for every test,
# set before boto3 can read the environment.
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")
# moto's ~300 default AMIs (each with snapshots) make every DescribeSnapshots slow; no test needs them.
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

settings.register_profile(
    "default", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=200)
settings.register_profile("dev", max_examples=20, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"


@pytest.fixture(name="region")
def _region() -> str:
    """The default region of every test."""
    return REGION


@pytest.fixture(name="aws")
def _aws() -> Iterator[None]:
    """Run the test inside ``moto.mock_aws`` (in-process, no sockets)."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture(name="moto_server", scope="session")
def _moto_server() -> Iterator[ThreadedMotoServer]:
    """One moto HTTP server on 127.0.0.1 (a free port) for the end-to-end suite."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(name="endpoint_url")
def _endpoint_url(moto_server: ThreadedMotoServer) -> Iterator[str]:
    """The moto server's URL; its state is reset after each test that uses it."""
    import requests

    host, port = moto_server.get_host_and_port()
    url = f"http://{host}:{port}"
    yield url
    requests.post(f"{url}/moto-api/reset", timeout=10)
