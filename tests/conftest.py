"""Shared fixtures: fake AWS credentials, Hypothesis profiles, moto (in-process and HTTP server)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

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


def _share_botocore_data_between_sessions() -> None:
    """Read each of botocore's data files once per process, not once per boto3 session.

    moto's ``mock_aws`` starts every test with a new default boto3 session, whose loader then
    decompresses and parses the service models again (EC2's is 4.5 MB of JSON): a fifth of the
    suite's time. The parsed data is kept pickled and each load gets its own copy, since
    botocore edits its models in place (S3 strips ``/{Bucket}`` from request URIs) and moto
    reads the same files for its routes. The listing of the data directories is kept too.
    """
    import pickle

    from botocore import loaders

    files: dict[str, bytes | None] = {}
    original_load_file = loaders.JSONFileLoader.load_file

    def load_file(self: loaders.JSONFileLoader, file_path: str) -> object:
        try:
            cached = files[file_path]
        except KeyError:
            data = original_load_file(self, file_path)
            files[file_path] = None if data is None else pickle.dumps(data, pickle.HIGHEST_PROTOCOL)
            return data
        return None if cached is None else pickle.loads(cached)  # noqa: S301 - our own bytes

    services: dict[tuple[tuple[str, ...], str], list[str]] = {}
    original_list = loaders.Loader.list_available_services

    def list_available_services(self: loaders.Loader, type_name: str) -> list[str]:
        key = (tuple(self.search_paths), type_name)
        if key not in services:
            services[key] = original_list(self, type_name)
        return list(services[key])

    loaders.JSONFileLoader.load_file = load_file
    loaders.Loader.list_available_services = list_available_services


_share_botocore_data_between_sessions()

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


# Under `pytest -n` (pytest-xdist, --dist=loadgroup from pyproject.toml) every test is sent to
# any worker, except these: each prefix's tests share an expensive module- or class-scoped
# fixture (a demo run, the notebook's kernel, a PostgreSQL cluster, a recording of every
# workflow), so they run together on one worker and the fixture is built once. The scopes are
# listed here rather than marked `xdist_group`: xdist 3.8 adds the group to the node id, which
# pytest 9.2 no longer lets it change (pytest-xdist#1386), and the marks are silently ignored.
_ONE_WORKER: tuple[str | tuple[str, ...], ...] = (
    # the demo's 40-day run: a tuple of prefixes is one scope
    ("tests/test_demo.py::TestFortyDays::", "tests/test_demo.py::TestTutorialQuotesTheDemo::"),
    "tests/test_demo.py::TestEightDays::",
    "tests/test_demo.py::TestPruning::",
    "tests/test_demo.py::TestWorld::",
    "tests/test_notebook.py::",
    "tests/test_probes_postgres.py::",
    "tests/aws/test_iam.py::TestIamPolicyAgainstRecordedCalls::",
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist=loadgroup` that also keeps each of `_ONE_WORKER`'s scopes on one worker."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class _Scheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            if scope != nodeid:  # an xdist_group that xdist could add to the node id
                return scope
            for prefixes in _ONE_WORKER:
                group = (prefixes,) if isinstance(prefixes, str) else prefixes
                if any(nodeid.startswith(p) for p in group):
                    return group[0]
            return nodeid

    return _Scheduling(config, log)


@pytest.fixture(name="accounts_apart")
def _accounts_apart(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto (``aws``) with each account's S3 buckets apart, as AWS keeps them.

    With ``MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS`` off (moto reads it on each request), a request
    for another account's bucket is refused (``AccessDenied``), as AWS refuses it without a
    bucket policy. (Here, not in tests/aws/conftest.py: with ``--doctest-modules`` a second
    top-level ``conftest`` module clashes with this one.)
    """
    monkeypatch.setenv("MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS", "false")
