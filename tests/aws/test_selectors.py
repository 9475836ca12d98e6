"""Selectors resolve through the Resource Groups Tagging API (moto supports GetResources).

A persistently failing page is simulated with `botocore.stub.Stubber` on an injected client,
since moto never fails a page.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from backuppolicy.aws.discovery import resolve, unprotected_resources
from backuppolicy.core.exceptions import PolicyError, ThrottledError
from backuppolicy.core.model import TAG_POLICY
from backuppolicy.core.policy import Policy, TargetSpec
from backuppolicy.core.selector import Selector

_PASSWORD = "password-for-moto"  # moto needs one


def _db(session: boto3.Session, name: str, tags: dict[str, str], region: str = "us-east-1") -> None:
    session.client("rds", region_name=region).create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin",
        MasterUserPassword=_PASSWORD,
        AllocatedStorage=20,
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )


@pytest.fixture(name="session")
def _session(aws: None) -> boto3.Session:
    session = boto3.Session(region_name="us-east-1")
    for i in range(3):
        _db(session, f"shop-{i}", {"backup": "daily"})
    _db(session, "scratch", {})
    ec2 = session.client("ec2")
    ec2.create_volume(
        AvailabilityZone="us-east-1a",
        Size=1,
        TagSpecifications=[
            {
                "ResourceType": "volume",
                "Tags": [
                    {"Key": "backup", "Value": "weekly"},
                    {"Key": "Name", "Value": "data vol"},
                ],
            }
        ],
    )
    s3 = session.client("s3")
    s3.create_bucket(Bucket="assets-bucket")
    s3.put_bucket_tagging(
        Bucket="assets-bucket", Tagging={"TagSet": [{"Key": "backup", "Value": "daily"}]}
    )
    return session


class TestSelector:
    def test_empty_selector_refused(self) -> None:
        """A selector with no condition would protect everything by accident."""
        with pytest.raises(PolicyError) as info:
            Selector()
        assert "selector" == info.value.path

    def test_unknown_kind(self) -> None:
        """Kinds must be ones a selector can find."""
        with pytest.raises(PolicyError) as info:
            Selector(resource_types=["directory"])
        assert "resource_types" == info.value.path

    def test_from_dict_errors_name_the_policy_field(self) -> None:
        """Errors from the policy-file form name the file's keys."""
        with pytest.raises(PolicyError) as info:
            Selector.from_dict({"kinds": ["rds-instnace"]}, path="targets[3].selector")
        assert "targets[3].selector.kinds" == info.value.path
        with pytest.raises(PolicyError) as info:
            Selector.from_dict({"tag": {"a": "b"}}, path="targets[3].selector")
        assert "targets[3].selector.tag" == info.value.path

    def test_matches(self) -> None:
        """Tags with None match any value; the glob sees the id and the Name tag."""
        selector = Selector(tags={"backup": None}, name_pattern="data*")
        resource = {
            "kind": "ebs-volume",
            "region": "us-east-1",
            "id": "vol-1",
            "tags": {"backup": "x", "Name": "data"},
        }
        assert (True, False) == (
            selector.matches(resource),
            selector.matches({**resource, "tags": {"Name": "data"}}),
        )


class TestResolve:
    def test_by_tag_every_page(self, session: boto3.Session) -> None:
        """All pages are read (one resource per page) and each resource becomes a target spec."""
        calls: list[str] = []
        session.events.register(
            "before-call.resource-groups-tagging-api.GetResources", lambda **_: calls.append("x")
        )
        specs = resolve(Selector(tags={"backup": "daily"}), session=session, page_size=1)
        assert ["assets-bucket", "shop-0", "shop-1", "shop-2"] == [s["name"] for s in specs]
        assert len(calls) >= len(specs)
        policy_targets = [TargetSpec.from_dict(spec) for spec in specs]
        assert {"rds-instance", "s3-bucket"} == {t.kind for t in policy_targets}

    def test_kind_and_name(self, session: boto3.Session) -> None:
        """Kind and name pattern narrow the selection."""
        specs = resolve(
            Selector(
                tags={"backup": "daily"}, resource_types=["rds-instance"], name_pattern="shop-[12]"
            ),
            session=session,
        )
        assert [
            {
                "name": "shop-1",
                "kind": "rds-instance",
                "settings": {"db_instance_id": "shop-1", "region": "us-east-1"},
            },
            {
                "name": "shop-2",
                "kind": "rds-instance",
                "settings": {"db_instance_id": "shop-2", "region": "us-east-1"},
            },
        ] == specs

    def test_name_tag_and_regions(self, session: boto3.Session) -> None:
        """Names come from the Name tag; a name found in two regions gets the region appended."""
        _db(session, "shop-0", {"backup": "daily"}, region="eu-west-1")
        specs = resolve(
            Selector(
                tags={"backup": None},
                resource_types=["rds-instance", "ebs-volume"],
                regions=["us-east-1", "eu-west-1"],
            ),
            session=session,
        )
        names = [s["name"] for s in specs]
        assert ["data-vol", "shop-0-eu-west-1", "shop-0-us-east-1", "shop-1", "shop-2"] == names

    def test_failing_page_raises(self) -> None:
        """A page still throttled after the retries raises: never a short list."""
        from botocore.stub import Stubber

        from backuppolicy.aws import _client

        client = boto3.client("resourcegroupstaggingapi", region_name="us-east-1")
        stub = Stubber(client)
        stub.add_response(
            "get_resources",
            {
                "ResourceTagMappingList": [
                    {"ResourceARN": "arn:aws:rds:us-east-1:1:db:a", "Tags": []}
                ],
                "PaginationToken": "t",
            },
        )
        for _ in range(3):
            stub.add_client_error("get_resources", "ThrottlingException", http_status_code=400)
        retry = _client.RetryPolicy(max_attempts=3, sleep=lambda _s: None)
        original = _client.AwsBackend.__init__

        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            original(
                self,
                *args,
                **{**kwargs, "clients": {"resourcegroupstaggingapi": client}, "retry": retry},
            )

        with stub, pytest.MonkeyPatch.context() as patch:
            patch.setattr(_client.AwsBackend, "__init__", init)
            with pytest.raises(ThrottledError):
                resolve(Selector(resource_types=["rds-instance"]))
        stub.assert_no_pending_responses()


class TestUnprotected:
    def test_resources_no_target_covers(self, session: boto3.Session) -> None:
        """Resources named by a target, tagged for the policy or selected are covered."""
        _db(session, "billing", {TAG_POLICY: "web"})
        policy = Policy.from_dict(
            {
                "name": "web",
                "schedule": {"every": "day"},
                "retention": {"max_age": "35d"},
                "targets": [
                    {"name": "db", "kind": "rds-instance", "settings": {"db_instance_id": "shop-0"}}
                ],
            }
        )
        found = unprotected_resources(
            policy, selectors=[Selector(tags={"backup": "weekly"})], session=session
        )
        # 'scratch' was never tagged: GetResources does not see it (a documented AWS limit).
        assert ["assets-bucket", "shop-1", "shop-2"] == sorted(r["id"] for r in found)
