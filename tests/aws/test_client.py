"""The AWS client layer: retries, error mapping, pagination, client creation.

Most tests inject a real boto3 client wrapped in `botocore.stub.Stubber` through ``clients=``:
it answers without any network or moto, and lets a test script throttling, 5xx and
multi-page answers that moto does not produce (moto returns describe_snapshots and
describe_db_snapshots in a single page, and never throttles).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from backuppolicy.aws._client import (
    AwsBackend,
    RetryPolicy,
    error_code,
    is_transient,
    map_client_errors,
)
from backuppolicy.core.exceptions import (
    BackendError,
    PermissionDeniedError,
    ResourceNotFoundError,
    ThrottledError,
)

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"

# (error code, HTTP status) of every transient answer the retry policy must absorb.
TRANSIENT = [
    ("Throttling", 400),
    ("ThrottlingException", 400),
    ("RequestLimitExceeded", 503),
    ("SlowDown", 503),
    ("RequestTimeout", 400),
    ("InternalError", 500),
    ("ServiceUnavailable", 503),
    ("", 500),
    ("", 503),
]


def _client(service: str, region: str = REGION) -> Any:
    return boto3.Session(region_name=region).client(service)


def _client_error(
    code: str, status: int = 400, operation: str = "DescribeDBSnapshots"
) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


class _Counter:
    """Counts the calls of one operation that reached the (stubbed) client."""

    def __init__(self, client: Any, event: str) -> None:
        self.count = 0
        client.meta.events.register(f"after-call.{event}", self._seen)

    def _seen(self, **_kwargs: Any) -> None:
        self.count += 1


class _FlakyConnection:
    """A client proxy whose first calls of *method* fail to connect.

    Stubber can only script HTTP answers, not a dropped connection, so the proxy raises
    the botocore connection error itself, then hands over to the real (stubbed) client.
    """

    def __init__(self, client: Any, method: str, failures: int, error: Exception) -> None:
        self._client = client
        self._method = method
        self._failures = failures
        self._error = error
        self.calls = 0

    @property
    def meta(self) -> Any:
        return self._client.meta

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name != self._method:
            return attr

        def flaky(**params: Any) -> Any:
            self.calls += 1
            if self.calls <= self._failures:
                raise self._error
            return attr(**params)

        return flaky


@pytest.fixture(name="waits")
def _waits() -> list[float]:
    return []


@pytest.fixture(name="retry")
def _retry(waits: list[float]) -> RetryPolicy:
    return RetryPolicy(max_attempts=4, base=0.5, max_backoff=3.0, sleep=waits.append)


@pytest.fixture(name="rds")
def _rds() -> Iterator[tuple[Any, Stubber]]:
    client = _client("rds")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture(name="backend")
def _backend(rds: tuple[Any, Stubber], retry: RetryPolicy) -> AwsBackend:
    return AwsBackend("orders-db", clients={"rds": rds[0]}, retry=retry)


def _assert_backoff(policy: RetryPolicy, waits: list[float]) -> None:
    for number, wait in enumerate(waits):
        assert 0 <= wait <= min(policy.max_backoff, policy.base * 2**number)


class TestRetry:
    """Transient errors are retried with bounded exponential backoff; others never are."""

    @pytest.mark.parametrize(("code", "status"), TRANSIENT)
    def test_transient_then_success(self, backend, rds, waits, code, status):
        """Two transient answers are retried and the third call's result is returned."""
        client, stubber = rds
        counter = _Counter(client, "rds.DescribeDBSnapshots")
        for _ in range(2):
            stubber.add_client_error(
                "describe_db_snapshots", service_error_code=code, http_status_code=status
            )
        stubber.add_response(
            "describe_db_snapshots", {"DBSnapshots": [{"DBSnapshotIdentifier": "s1"}]}
        )
        result = backend.call("rds", "describe_db_snapshots")
        assert [{"DBSnapshotIdentifier": "s1"}] == result["DBSnapshots"]
        assert 3 == counter.count
        assert 2 == len(waits)
        _assert_backoff(backend.retry, waits)

    @pytest.mark.parametrize(
        "error",
        [
            EndpointConnectionError(endpoint_url="https://rds.us-east-1.amazonaws.com"),
            ReadTimeoutError(endpoint_url="https://rds.us-east-1.amazonaws.com"),
        ],
        ids=["EndpointConnectionError", "ReadTimeoutError"],
    )
    def test_connection_error_then_success(self, rds, retry, waits, error):
        """Dropped connections are retried like throttling."""
        client, stubber = rds
        stubber.add_response("describe_db_snapshots", {"DBSnapshots": []})
        flaky = _FlakyConnection(client, "describe_db_snapshots", failures=2, error=error)
        backend = AwsBackend("orders-db", clients={"rds": flaky}, retry=retry)
        assert [] == backend.call("rds", "describe_db_snapshots")["DBSnapshots"]
        assert 3 == flaky.calls
        assert 2 == len(waits)

    def test_waits_capped_by_max_backoff(self, rds, waits):
        """Every wait stays under base * 2**n and under max_backoff, and nothing really sleeps."""
        client, stubber = rds
        policy = RetryPolicy(max_attempts=10, base=1.0, max_backoff=2.0, sleep=waits.append)
        backend = AwsBackend("orders-db", clients={"rds": client}, retry=policy)
        for _ in range(9):
            stubber.add_client_error("describe_db_snapshots", service_error_code="Throttling")
        stubber.add_response("describe_db_snapshots", {"DBSnapshots": []})
        backend.call("rds", "describe_db_snapshots")
        assert 9 == len(waits)
        _assert_backoff(policy, waits)
        assert max(waits) <= 2.0

    def test_throttling_exhausted(self, backend, rds, retry, waits):
        """Still throttled after max_attempts calls: ThrottledError from the last ClientError."""
        client, stubber = rds
        counter = _Counter(client, "rds.DescribeDBSnapshots")
        for _ in range(retry.max_attempts):
            stubber.add_client_error("describe_db_snapshots", service_error_code="Throttling")
        with pytest.raises(ThrottledError) as info:
            backend.call("rds", "describe_db_snapshots", resource="orders-db")
        assert retry.max_attempts == counter.count
        assert retry.max_attempts - 1 == len(waits)
        assert ("orders-db", "DescribeDBSnapshots", "orders-db", "Throttling") == (
            info.value.backend,
            info.value.operation,
            info.value.resource,
            info.value.code,
        )
        assert isinstance(info.value.__cause__, ClientError)

    def test_server_error_exhausted(self, backend, rds, retry):
        """A 500 that never clears ends as a plain BackendError with the code."""
        _, stubber = rds
        for _ in range(retry.max_attempts):
            stubber.add_client_error(
                "describe_db_snapshots", service_error_code="InternalError", http_status_code=500
            )
        with pytest.raises(BackendError) as info:
            backend.call("rds", "describe_db_snapshots")
        assert (BackendError, "InternalError") == (type(info.value), info.value.code)

    def test_connection_error_exhausted(self, rds, retry):
        """A connection that never comes back ends as BackendError naming the botocore error."""
        client, _ = rds
        error = EndpointConnectionError(endpoint_url="https://rds.us-east-1.amazonaws.com")
        flaky = _FlakyConnection(client, "describe_db_snapshots", failures=99, error=error)
        backend = AwsBackend("orders-db", clients={"rds": flaky}, retry=retry)
        with pytest.raises(BackendError, match="could not reach AWS") as info:
            backend.call("rds", "describe_db_snapshots")
        assert ("EndpointConnectionError", retry.max_attempts) == (info.value.code, flaky.calls)
        assert error is info.value.__cause__

    @pytest.mark.parametrize(
        ("code", "status"),
        [
            ("AccessDenied", 403),
            ("UnauthorizedOperation", 403),
            ("DBSnapshotNotFound", 404),
            ("InvalidParameterValue", 400),
            ("ValidationError", 400),
            ("DBSnapshotAlreadyExists", 400),
        ],
    )
    def test_non_transient_not_retried(self, backend, rds, waits, code, status):
        """A non-transient error is raised after exactly one call and no wait."""
        client, stubber = rds
        counter = _Counter(client, "rds.DescribeDBSnapshots")
        stubber.add_client_error(
            "describe_db_snapshots", service_error_code=code, http_status_code=status
        )
        with pytest.raises(BackendError) as info:
            backend.call("rds", "describe_db_snapshots")
        assert (1, [], code) == (counter.count, waits, info.value.code)

    def test_default_policy_values(self):
        """The default policy: 8 attempts, 120 s in total, 0.25 s base, 20 s cap, time.sleep."""
        policy = RetryPolicy()
        assert (8, 120.0, 0.25, 20.0, time.sleep) == (
            policy.max_attempts,
            policy.max_total,
            policy.base,
            policy.max_backoff,
            policy.sleep,
        )

    def test_policy_equality_ignores_sleep(self):
        """Two policies with different sleep functions but equal numbers are equal."""
        assert RetryPolicy(sleep=[].append) == RetryPolicy()


class TestClassification:
    """is_transient and error_code."""

    @pytest.mark.parametrize(("code", "status"), TRANSIENT)
    def test_transient_codes(self, code, status):
        """Throttling codes, timeouts and 5xx are transient."""
        assert is_transient(_client_error(code, status))

    @pytest.mark.parametrize(
        ("code", "status"),
        [("AccessDenied", 403), ("InvalidSnapshot.NotFound", 400), ("NoSuchKey", 404), ("", 400)],
    )
    def test_permanent_codes(self, code, status):
        """Permission, not-found and validation errors are not transient."""
        assert not is_transient(_client_error(code, status))

    def test_connection_errors_transient(self):
        """A failed connection is transient; a plain exception is not."""
        error = EndpointConnectionError(endpoint_url="https://example.invalid")
        assert (True, False) == (is_transient(error), is_transient(ValueError("x")))

    def test_error_code(self):
        """error_code reads a ClientError's code and is empty for anything else."""
        assert ("SlowDown", "") == (
            error_code(_client_error("SlowDown", 503)),
            error_code(KeyError("k")),
        )


class TestErrorMapping:
    """ClientError codes become the most specific BackendError subclass."""

    @pytest.mark.parametrize(
        ("code", "status", "expected"),
        [
            ("AccessDenied", 403, PermissionDeniedError),
            ("AccessDeniedException", 400, PermissionDeniedError),
            ("UnauthorizedOperation", 403, PermissionDeniedError),
            ("KMS.AccessDeniedException", 400, PermissionDeniedError),
            ("403", 403, PermissionDeniedError),  # S3 HEAD requests have no body, only the status
            ("", 403, PermissionDeniedError),
            ("DBSnapshotNotFound", 404, ResourceNotFoundError),
            ("DBSnapshotNotFoundFault", 404, ResourceNotFoundError),
            ("InvalidSnapshot.NotFound", 400, ResourceNotFoundError),
            ("NoSuchKey", 404, ResourceNotFoundError),
            ("NoSuchBucket", 404, ResourceNotFoundError),
            ("404", 404, ResourceNotFoundError),
            ("Throttling", 400, ThrottledError),
            ("SlowDown", 503, ThrottledError),
            ("InvalidParameterValue", 400, BackendError),
            ("InternalError", 500, BackendError),
        ],
    )
    def test_code_maps_to_class(self, code, status, expected):
        """Each code maps to its class, with the attributes and the cause attached."""
        original = _client_error(code, status, operation="DeleteDBSnapshot")
        with (
            pytest.raises(BackendError) as info,
            map_client_errors(backend="orders-db", operation="DeleteDBSnapshot", resource="snap-1"),
        ):
            raise original
        assert expected is type(info.value)
        assert ("orders-db", "DeleteDBSnapshot", "snap-1", code) == (
            info.value.backend,
            info.value.operation,
            info.value.resource,
            info.value.code,
        )
        assert original is info.value.__cause__

    def test_message_names_operation_resource_and_code(self):
        """The message names the backend, operation, resource, code and AWS's message."""
        with (
            pytest.raises(ResourceNotFoundError) as info,
            map_client_errors(backend="orders-db", operation="DeleteDBSnapshot", resource="snap-1"),
        ):
            raise _client_error("DBSnapshotNotFound", 404)
        expected = "orders-db: DeleteDBSnapshot on 'snap-1' failed with DBSnapshotNotFound: DBSnapshotNotFound happened"
        assert expected == str(info.value)

    def test_builtin_bases(self):
        """Mapped errors are also the matching builtins, for callers that do not know us."""
        assert issubclass(PermissionDeniedError, PermissionError)
        assert issubclass(ResourceNotFoundError, LookupError)

    def test_other_exceptions_pass_through(self):
        """Exceptions that are not botocore's are not touched."""
        with pytest.raises(KeyError), map_client_errors(backend="b", operation="Op"):
            raise KeyError("k")

    def test_call_maps_with_api_name(self, backend, rds):
        """call reports the API operation name and the resource it was given."""
        _, stubber = rds
        stubber.add_client_error(
            "delete_db_snapshot", service_error_code="DBSnapshotNotFound", http_status_code=404
        )
        with pytest.raises(ResourceNotFoundError) as info:
            backend.call(
                "rds", "delete_db_snapshot", resource="snap-1", DBSnapshotIdentifier="snap-1"
            )
        assert ("DeleteDBSnapshot", "snap-1") == (info.value.operation, info.value.resource)
        assert isinstance(info.value.__cause__, ClientError)

    def test_call_access_denied(self, backend, rds):
        """AccessDenied from a call is a PermissionDeniedError, raised after one call."""
        _, stubber = rds
        stubber.add_client_error(
            "describe_db_snapshots", service_error_code="AccessDenied", http_status_code=403
        )
        with pytest.raises(PermissionDeniedError, match="AccessDenied"):
            backend.call("rds", "describe_db_snapshots")


def _snapshots(*names: str) -> list[dict[str, str]]:
    return [{"DBSnapshotIdentifier": name} for name in names]


class TestPaginate:
    """paginate walks every page through call (moto answers these listings in one page)."""

    def test_rds_marker(self, backend, rds):
        """RDS pages chain on Marker; every page is yielded in order."""
        _, stubber = rds
        stubber.add_response(
            "describe_db_snapshots", {"DBSnapshots": _snapshots("a", "b"), "Marker": "m1"}, {}
        )
        stubber.add_response(
            "describe_db_snapshots",
            {"DBSnapshots": _snapshots("c"), "Marker": "m2"},
            {"Marker": "m1"},
        )
        stubber.add_response(
            "describe_db_snapshots", {"DBSnapshots": _snapshots("d")}, {"Marker": "m2"}
        )
        pages = list(backend.paginate("rds", "describe_db_snapshots"))
        names = [s["DBSnapshotIdentifier"] for page in pages for s in page["DBSnapshots"]]
        assert ["a", "b", "c", "d"] == names

    def test_keeps_request_parameters(self, backend, rds):
        """The caller's parameters are sent with every page."""
        _, stubber = rds
        first = {"DBInstanceIdentifier": "orders-db", "SnapshotType": "manual"}
        stubber.add_response("describe_db_snapshots", {"DBSnapshots": [], "Marker": "m1"}, first)
        stubber.add_response(
            "describe_db_snapshots", {"DBSnapshots": []}, {**first, "Marker": "m1"}
        )
        assert 2 == len(list(backend.paginate("rds", "describe_db_snapshots", **first)))

    def test_ec2_next_token(self, retry):
        """EC2 pages chain on NextToken."""
        client = _client("ec2")
        backend = AwsBackend("web", clients={"ec2": client}, retry=retry)
        with Stubber(client) as stubber:
            stubber.add_response(
                "describe_snapshots",
                {"Snapshots": [{"SnapshotId": "snap-1"}], "NextToken": "t1"},
                {"OwnerIds": ["self"]},
            )
            stubber.add_response(
                "describe_snapshots",
                {"Snapshots": [{"SnapshotId": "snap-2"}]},
                {"OwnerIds": ["self"], "NextToken": "t1"},
            )
            pages = list(backend.paginate("ec2", "describe_snapshots", OwnerIds=["self"]))
            stubber.assert_no_pending_responses()
        assert ["snap-1", "snap-2"] == [s["SnapshotId"] for p in pages for s in p["Snapshots"]]

    def test_s3_two_tokens(self, retry):
        """S3 list_object_versions continues on KeyMarker and VersionIdMarker while IsTruncated."""
        client = _client("s3")
        backend = AwsBackend("assets", clients={"s3": client}, retry=retry)
        with Stubber(client) as stubber:
            stubber.add_response(
                "list_object_versions",
                {
                    "IsTruncated": True,
                    "Versions": [{"Key": "a", "VersionId": "v1"}],
                    "NextKeyMarker": "a",
                    "NextVersionIdMarker": "v1",
                },
                {"Bucket": "assets"},
            )
            stubber.add_response(
                "list_object_versions",
                {
                    "IsTruncated": True,
                    "Versions": [{"Key": "b", "VersionId": "v2"}],
                    "NextKeyMarker": "b",
                    "NextVersionIdMarker": "v2",
                },
                {"Bucket": "assets", "KeyMarker": "a", "VersionIdMarker": "v1"},
            )
            stubber.add_response(
                "list_object_versions",
                {"IsTruncated": False, "Versions": [{"Key": "c", "VersionId": "v3"}]},
                {"Bucket": "assets", "KeyMarker": "b", "VersionIdMarker": "v2"},
            )
            pages = list(backend.paginate("s3", "list_object_versions", Bucket="assets"))
            stubber.assert_no_pending_responses()
        assert ["v1", "v2", "v3"] == [v["VersionId"] for p in pages for v in p["Versions"]]

    def test_s3_not_truncated_stops(self, retry):
        """A page with IsTruncated false ends the listing even if it carries markers."""
        client = _client("s3")
        backend = AwsBackend("assets", clients={"s3": client}, retry=retry)
        with Stubber(client) as stubber:
            stubber.add_response(
                "list_object_versions",
                {"IsTruncated": False, "NextKeyMarker": "a", "NextVersionIdMarker": "v1"},
                {"Bucket": "assets"},
            )
            assert 1 == len(list(backend.paginate("s3", "list_object_versions", Bucket="assets")))

    def test_s3_list_objects_fallback_token(self, retry):
        """ListObjects without NextMarker continues from the last key (botocore's JMESPath token)."""
        client = _client("s3")
        backend = AwsBackend("assets", clients={"s3": client}, retry=retry)
        with Stubber(client) as stubber:
            stubber.add_response(
                "list_objects",
                {"IsTruncated": True, "Contents": [{"Key": "a"}, {"Key": "b"}]},
                {"Bucket": "assets"},
            )
            stubber.add_response(
                "list_objects",
                {"IsTruncated": False, "Contents": [{"Key": "c"}]},
                {"Bucket": "assets", "Marker": "b"},
            )
            pages = list(backend.paginate("s3", "list_objects", Bucket="assets"))
            stubber.assert_no_pending_responses()
        assert ["a", "b", "c"] == [o["Key"] for p in pages for o in p["Contents"]]

    def test_truncated_without_token_raises(self, retry):
        """A truncated page without a token raises instead of ending the listing short."""
        client = _client("s3")
        backend = AwsBackend("assets", clients={"s3": client}, retry=retry)
        with Stubber(client) as stubber:
            stubber.add_response(
                "list_object_versions", {"IsTruncated": True}, {"Bucket": "assets"}
            )
            with pytest.raises(BackendError, match="expected a pagination token"):
                list(backend.paginate("s3", "list_object_versions", Bucket="assets"))

    def test_throttled_page_retried(self, backend, rds, waits):
        """A throttled page is retried on its own and the listing completes."""
        _, stubber = rds
        stubber.add_response(
            "describe_db_snapshots", {"DBSnapshots": _snapshots("a"), "Marker": "m1"}, {}
        )
        stubber.add_client_error("describe_db_snapshots", service_error_code="Throttling")
        stubber.add_response(
            "describe_db_snapshots", {"DBSnapshots": _snapshots("b")}, {"Marker": "m1"}
        )
        pages = list(backend.paginate("rds", "describe_db_snapshots"))
        assert (["a", "b"], 1) == (
            [s["DBSnapshotIdentifier"] for p in pages for s in p["DBSnapshots"]],
            len(waits),
        )

    def test_failing_page_raises(self, backend, rds, retry):
        """A page still throttled after the retries raises: the listing never just ends short."""
        _, stubber = rds
        stubber.add_response(
            "describe_db_snapshots", {"DBSnapshots": _snapshots("a"), "Marker": "m1"}, {}
        )
        for _ in range(retry.max_attempts):
            stubber.add_client_error("describe_db_snapshots", service_error_code="Throttling")
        pages = backend.paginate("rds", "describe_db_snapshots")
        assert _snapshots("a") == next(pages)["DBSnapshots"]
        with pytest.raises(ThrottledError):
            next(pages)

    def test_failing_page_no_partial_list(self, backend, rds, retry):
        """Collecting a listing whose second page fails gives an error, not a partial list."""
        _, stubber = rds
        stubber.add_response(
            "describe_db_snapshots", {"DBSnapshots": _snapshots("a"), "Marker": "m1"}, {}
        )
        stubber.add_client_error(
            "describe_db_snapshots", service_error_code="AccessDenied", http_status_code=403
        )
        result = None
        with pytest.raises(PermissionDeniedError):
            result = list(backend.paginate("rds", "describe_db_snapshots"))
        assert result is None

    def test_repeated_token_raises(self, backend, rds):
        """A backend that sends the same token twice raises instead of looping forever."""
        _, stubber = rds
        stubber.add_response("describe_db_snapshots", {"DBSnapshots": [], "Marker": "m1"}, {})
        stubber.add_response(
            "describe_db_snapshots", {"DBSnapshots": [], "Marker": "m1"}, {"Marker": "m1"}
        )
        with pytest.raises(BackendError, match="same pagination token twice") as info:
            list(backend.paginate("rds", "describe_db_snapshots", resource="orders-db"))
        assert ("DescribeDBSnapshots", "orders-db") == (info.value.operation, info.value.resource)


class TestClients:
    """Client creation: injection, caching, regions, endpoint and botocore config."""

    def test_injected_client_used(self, rds):
        """A client given in clients= is the one used, for its own region too."""
        client, _ = rds
        backend = AwsBackend("orders-db", clients={"rds": client})
        assert client is backend.client("rds")
        assert client is backend.client("rds", region=REGION)

    def test_injected_client_region(self):
        """Without region=, the target's region is the injected client's."""
        backend = AwsBackend("orders-db", clients={"rds": _client("rds", OTHER_REGION)})
        assert OTHER_REGION == backend.region

    def test_explicit_region(self):
        """region= wins over the environment for the target and its clients."""
        backend = AwsBackend("orders-db", region=OTHER_REGION)
        assert (OTHER_REGION, OTHER_REGION) == (
            backend.region,
            backend.client("rds").meta.region_name,
        )

    def test_session_region(self):
        """Without region=, the session's region is used."""
        backend = AwsBackend("orders-db", session=boto3.Session(region_name="ap-southeast-2"))
        assert "ap-southeast-2" == backend.client("ec2").meta.region_name

    def test_environment_region(self, region):
        """Without region= or a session, the environment's default region is used."""
        assert region == AwsBackend("orders-db").region

    def test_clients_cached_per_region(self):
        """The same service and region give the same client; another region another one."""
        backend = AwsBackend("orders-db")
        first = backend.client("rds")
        assert first is backend.client("rds")
        assert first is backend.client("rds", region=REGION)
        other = backend.client("rds", region=OTHER_REGION)
        assert (False, OTHER_REGION) == (other is first, other.meta.region_name)

    def test_one_client_across_threads(self):
        """Threads asking at once for the same client share one."""
        backend = AwsBackend("orders-db")
        barrier = threading.Barrier(8)

        def get(_: int) -> int:
            barrier.wait()
            return id(backend.client("s3"))

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert 1 == len(set(pool.map(get, range(8))))

    def test_targets_sharing_a_session_never_use_it_at_once(self):
        """Targets sharing a session make their clients from it one at a time.

        boto3 sessions are not thread-safe, and targets built from one policy share one. Before, two targets making clients at once from the shared session corrupted botocore's
        caches now and then (``RuntimeError: OrderedDict mutated during iteration``, seen in a
        backup's thread pool).
        """
        session = boto3.Session(region_name=REGION)
        real = session.client
        inside = 0
        overlaps: list[int] = []
        guard = threading.Lock()

        def watched(*args: Any, **kwargs: Any) -> Any:
            nonlocal inside
            with guard:
                inside += 1
                overlaps.append(inside)
            try:
                time.sleep(0.02)  # widen the window in which another thread could enter
                return real(*args, **kwargs)
            finally:
                with guard:
                    inside -= 1

        session.client = watched  # type: ignore[method-assign]
        backends = [AwsBackend(f"t{i}", session=session) for i in range(6)]
        barrier = threading.Barrier(len(backends))

        def make(backend: AwsBackend) -> str:
            barrier.wait()
            return str(backend.client("s3").meta.region_name)

        with ThreadPoolExecutor(max_workers=len(backends)) as pool:
            assert [REGION] * len(backends) == list(pool.map(make, backends))
        assert (len(backends), 1) == (len(overlaps), max(overlaps))

    def test_botocore_retries_off(self):
        """botocore's own retries are off, also when the caller merges a Config."""
        backend = AwsBackend("orders-db", config=Config(connect_timeout=5))
        config = backend.client("rds").meta.config
        assert (1, 5) == (config.retries["total_max_attempts"], config.connect_timeout)

    def test_name(self):
        """The backend's name is the target's."""
        assert "orders-db" == AwsBackend("orders-db").name

    def test_endpoint_url_reaches_moto_server(self, endpoint_url):
        """endpoint_url= sends every call to that endpoint (here: the moto server)."""
        backend = AwsBackend(
            "assets", endpoint_url=endpoint_url, retry=RetryPolicy(sleep=[].append)
        )
        backend.call("s3", "create_bucket", Bucket="bp-client-test")
        names = [b["Name"] for b in backend.call("s3", "list_buckets")["Buckets"]]
        assert (["bp-client-test"], endpoint_url) == (names, backend.client("s3").meta.endpoint_url)

    def test_paginate_against_moto_server(self, endpoint_url):
        """paginate over the moto server returns everything (moto answers in one page)."""
        backend = AwsBackend("web", endpoint_url=endpoint_url, retry=RetryPolicy(sleep=[].append))
        volume = backend.call("ec2", "create_volume", AvailabilityZone=f"{REGION}a", Size=1)[
            "VolumeId"
        ]
        created = {
            backend.call("ec2", "create_snapshot", VolumeId=volume)["SnapshotId"] for _ in range(3)
        }
        pages = backend.paginate("ec2", "describe_snapshots", OwnerIds=["self"])
        listed = {s["SnapshotId"] for page in pages for s in page["Snapshots"]}
        assert created <= listed
