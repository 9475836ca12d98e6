"""Response timestamps: the fast ISO 8601 path parses to the same instant as botocore's parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from botocore.utils import parse_timestamp as botocore_parse
from hypothesis import given
from hypothesis import strategies as st

from backuppolicy.aws._client import AwsBackend, new_session
from backuppolicy.aws._timestamps import parse_timestamp

_instants = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    ),
)


@given(_instants)
def test_iso_8601_as_aws_sends_it_is_the_same_instant(moment: datetime) -> None:
    """Query/XML protocols: ``...T04:00:00.123Z``, with or without milliseconds, or an offset."""
    utc = moment.astimezone(UTC)
    for text in (
        utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z",
        utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        moment.isoformat(),
    ):
        ours, theirs = parse_timestamp(text), botocore_parse(text)
        assert ours == theirs, text
        assert ours.utcoffset() == theirs.utcoffset(), text


@given(_instants)
def test_other_forms_go_to_botocore(moment: datetime) -> None:
    """RFC 1123 headers, epoch seconds and naive strings parse exactly as botocore parses them."""
    whole = moment.replace(microsecond=0).astimezone(UTC)
    for value in (format_datetime(whole, usegmt=True), whole.timestamp(), "2026-12-06T04:00:00"):
        assert parse_timestamp(value) == botocore_parse(value)


def test_a_bad_timestamp_is_refused_as_botocore_refuses_it() -> None:
    """Neither form: botocore's own error."""
    """Neither form: botocore's ValueError."""
    with pytest.raises(ValueError, match="Invalid timestamp"):
        parse_timestamp("not a time")


def test_the_sessions_we_make_parse_with_the_fast_path(aws: None) -> None:
    """A listing's times come through `parse_timestamp` (aware, `datetime.UTC`), same instant."""
    backend = AwsBackend("t", session=new_session(region="us-east-1"), region="us-east-1")
    backend.call("s3", "create_bucket", resource="b", Bucket="stamps-bucket")
    backend.call("s3", "put_object", resource="b", Bucket="stamps-bucket", Key="k", Body=b"x")
    listed = backend.call("s3", "list_objects_v2", resource="b", Bucket="stamps-bucket")
    modified = listed["Contents"][0]["LastModified"]
    assert modified.tzinfo is UTC  # botocore's own parser gives dateutil's tzutc()
    head = backend.call("s3", "head_object", resource="b", Bucket="stamps-bucket", Key="k")
    assert head["LastModified"] == modified  # an RFC 1123 header, through botocore's parser


def test_a_session_passed_in_is_left_as_it_is(aws: None) -> None:
    """A caller's own `boto3.Session` keeps botocore's parser: we never change it."""
    import boto3

    backend = AwsBackend("t", session=boto3.Session(region_name="us-east-1"), region="us-east-1")
    backend.call("s3", "create_bucket", resource="b", Bucket="stamps-bucket")
    backend.call("s3", "put_object", resource="b", Bucket="stamps-bucket", Key="k", Body=b"x")
    listed = backend.call("s3", "list_objects_v2", resource="b", Bucket="stamps-bucket")
    assert listed["Contents"][0]["LastModified"].tzinfo is not UTC
