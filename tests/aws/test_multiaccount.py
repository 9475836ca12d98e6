"""Assume a role per account and fan out, with moto's STS.

In moto, credentials returned by ``AssumeRole`` act as the account of the role's ARN, so each
assumed session sees its own account's resources. A refused ``AssumeRole`` is injected with a
botocore ``before-call`` hook returning AccessDenied for one account.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from backuppolicy.aws.accounts import assume_role_session, for_each_account
from backuppolicy.core.exceptions import PolicyError

A = "111111111111"
B = "222222222222"
ROLE_A = f"arn:aws:iam::{A}:role/backuppolicy"
ROLE_B = f"arn:aws:iam::{B}:role/backuppolicy"


@pytest.fixture(name="base")
def _base(aws: None) -> boto3.Session:
    return boto3.Session(region_name="us-east-1")


class TestAssumeRole:
    def test_acts_as_the_roles_account(self, base: boto3.Session) -> None:
        """The session is the role in its account, named after the job."""
        session = assume_role_session(ROLE_B, session_name="nightly-backup", base_session=base)
        identity = session.client("sts").get_caller_identity()
        assert B == identity["Account"]
        assert identity["Arn"].endswith(":assumed-role/backuppolicy/nightly-backup")

    def test_accounts_are_isolated(self, base: boto3.Session) -> None:
        """A bucket made in one account is not seen from another."""
        assume_role_session(ROLE_A, base_session=base).client("s3").create_bucket(Bucket="in-a")
        listed = assume_role_session(ROLE_B, base_session=base).client("s3").list_buckets()
        assert [] == [b["Name"] for b in listed["Buckets"]]

    def test_external_id_is_sent(self, base: boto3.Session) -> None:
        """The external ID goes into the AssumeRole call."""
        sent: list[dict[str, Any]] = []
        base.events.register(
            "before-parameter-build.sts.AssumeRole", lambda params, **_: sent.append(dict(params))
        )
        assume_role_session(ROLE_A, external_id="tenant-7", base_session=base)
        assert ["tenant-7"] == [p.get("ExternalId") for p in sent]

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"role_arn": "arn:aws:iam::1:role/x"}, "role_arn"),
            ({"role_arn": ROLE_A, "session_name": "a b"}, "session_name"),
            ({"role_arn": ROLE_A, "duration_seconds": 60}, "duration_seconds"),
        ],
    )
    def test_refused_before_any_call(self, kwargs: dict[str, Any], field: str) -> None:
        """Malformed values are refused without calling STS."""
        with pytest.raises(PolicyError) as info:
            assume_role_session(**kwargs)
        assert field == info.value.path


def _deny(account: str) -> Any:
    def handler(params: dict[str, Any], **_: Any) -> Any:
        if account not in str(params.get("body", "")):
            return None
        response = AWSResponse("https://sts.invalid/", 403, {}, None)  # type: ignore[arg-type]
        return response, {
            "Error": {"Code": "AccessDenied", "Message": "not trusted"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }

    return handler


class TestForEachAccount:
    def test_accounts_times_regions(self, base: boto3.Session) -> None:
        """Every account and region runs once, with a session of that account and region."""

        def who(
            session: boto3.Session, account: str, region: str | None
        ) -> tuple[str, str, str | None]:
            identity = session.client("sts").get_caller_identity()["Account"]
            return identity, account, session.region_name

        report = for_each_account(
            [ROLE_A, ROLE_B], who, regions=["us-east-1", "eu-west-1"], base_session=base
        )
        assert [
            (A, A, "us-east-1"),
            (A, A, "eu-west-1"),
            (B, B, "us-east-1"),
            (B, B, "eu-west-1"),
        ] == [run.value for run in report.runs]
        assert report.ok

    def test_failures_are_isolated(self, base: boto3.Session) -> None:
        """One account failing (refused role, or raising) does not stop the others."""
        base.events.register("before-call.sts.AssumeRole", _deny(B))
        role_c = "arn:aws:iam::333333333333:role/backuppolicy"

        def work(session: boto3.Session, account: str, region: str | None) -> str:
            if account == "333333333333":
                raise RuntimeError("bucket listing exploded")
            return account

        report = for_each_account([ROLE_A, ROLE_B, role_c], work, base_session=base)
        assert [(A, True), (B, False), ("333333333333", False)] == [
            (r.account, r.ok) for r in report.runs
        ]
        assert "PermissionDeniedError" in str(report.failed[0].error)
        assert "RuntimeError: bucket listing exploded" == report.failed[1].error
        assert {"ok": False, "runs": 3} == {
            "ok": report.to_dict()["ok"],
            "runs": len(report.to_dict()["runs"]),
        }

    def test_bounded_concurrency(self, base: boto3.Session) -> None:
        """No more runs are in flight than max_workers."""
        lock = threading.Lock()
        state = {"now": 0, "peak": 0}
        barrier = threading.Barrier(2, timeout=10)

        def work(session: boto3.Session, account: str, region: str | None) -> None:
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            barrier.wait()  # two runs must overlap, proving the pool runs in parallel
            with lock:
                state["now"] -= 1

        roles = [f"arn:aws:iam::{i:012d}:role/r" for i in range(1, 5)]
        report = for_each_account(roles, work, base_session=base, max_workers=2)
        assert (True, 2) == (report.ok, state["peak"])

    def test_bad_arguments(self, base: boto3.Session) -> None:
        """Malformed role ARNs and worker counts are refused before anything runs."""
        with pytest.raises(PolicyError) as info:
            for_each_account([ROLE_A, "role/x"], lambda *_: None, base_session=base)
        assert "role_arn" == info.value.path
        with pytest.raises(PolicyError) as info:
            for_each_account([ROLE_A], lambda *_: None, base_session=base, max_workers=0)
        assert "max_workers" == info.value.path
