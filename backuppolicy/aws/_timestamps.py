"""Sessions whose clients parse response timestamps with `datetime.fromisoformat`.

botocore parses every timestamp of a response with ``dateutil.parser`` (``botocore.utils.
parse_timestamp``): about 0.25 ms each, so a page of 1000 object versions (``LastModified``)
or snapshots (``SnapshotCreateTime``, ``OriginalSnapshotCreateTime``) costs 0.25-0.5 s of CPU
before our code sees it. AWS's XML and query protocols send ISO 8601 with an offset
(``2026-12-06T04:00:00.000Z``), which `datetime.fromisoformat` reads (Python 3.11+) about
fifty times faster. Anything else (epoch numbers of the JSON protocols, RFC 1123 dates of
headers such as HeadObject's ``Last-Modified``, a time without an offset) goes to botocore's
own parser, so every value parses to the same instant as before; only the ``tzinfo`` object
differs (`datetime.UTC` instead of ``dateutil.tz.tzutc()``), and both compare equal.

botocore's documented hook is its session's ``response_parser_factory`` component
(``set_parser_defaults(timestamp_parser=...)``), the one the AWS CLI uses. Only the sessions
this library makes get it; a session passed in by the caller is left as it is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import boto3
import botocore.session
from botocore.utils import parse_timestamp as _botocore_parse_timestamp

from backuppolicy.core._isotime import aware_from_iso

__all__ = ["new_boto3_session", "parse_timestamp"]


def parse_timestamp(value: Any) -> datetime:
    """A response timestamp as an aware `datetime` (fast for ISO 8601 with an offset).

    >>> parse_timestamp("2026-12-06T04:00:00.123Z").isoformat()
    '2026-12-06T04:00:00.123000+00:00'
    >>> parse_timestamp("Sun, 06 Dec 2026 04:00:00 GMT").isoformat()
    '2026-12-06T04:00:00+00:00'
    >>> parse_timestamp(1796529600).isoformat()
    '2026-12-06T04:00:00+00:00'
    """
    parsed = aware_from_iso(value)
    if parsed is not None:
        return parsed
    result: datetime = _botocore_parse_timestamp(value)
    return result


def new_boto3_session(**kwargs: Any) -> boto3.Session:
    """`boto3.Session` (*kwargs* as for it) whose clients parse timestamps with `parse_timestamp`."""
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=parse_timestamp
    )
    return boto3.Session(botocore_session=core, **kwargs)
