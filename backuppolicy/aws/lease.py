"""`S3Lease`: the run lease of a policy whose testing log is in S3.

One small object (`~backuppolicy.core.capabilities.LeaseRecord` as JSON) next to the log. It is
created with a conditional write, ``PutObject`` with ``If-None-Match: *``, which S3 answers
``412 Precondition Failed`` when the key already exists (S3 conditional writes, generally
available since August 2024: https://aws.amazon.com/about-aws/whats-new/2024/08/amazon-s3-conditional-writes/).
A stale lease is taken over with ``If-Match`` on the ETag that was read
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html), so of two runs
that read the same stale lease, exactly one replaces it; it is released with a conditional
``DeleteObject`` (``If-Match``), so a run whose lease was taken over never removes its successor's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from backuppolicy.aws._client import AwsBackend
from backuppolicy.core.capabilities import LeaseRecord
from backuppolicy.core.exceptions import (
    BackendError,
    LeaseHeldError,
    PolicyError,
    ResourceNotFoundError,
)

if TYPE_CHECKING:
    import boto3

__all__ = ["S3Lease"]

_CONFLICT: Final = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_MAX_BYTES: Final = 4096


class S3Lease:
    """The run lease as an S3 object (`~backuppolicy.core.capabilities.Lease`).

    Example:
        >>> lease = S3Lease("acme-backup-logs", "testing-log/_lease/web-apps.lease")  # doctest: +SKIP

    Args:
        bucket: The bucket.
        key: The key of the lease object.
        backend: The `AwsBackend` to call through (an S3 log store's), or ``None`` to make
            one from *session*, *region* and *endpoint_url*.
        session: A `boto3.Session`.
        region: Region of the bucket.
        endpoint_url: Endpoint (moto server, LocalStack).

    Attributes:
        bucket: The bucket.
        key: The key.
        record: The record this object wrote when it took the lease, else ``None``.
        etag: The ETag of that object.
    """

    def __init__(
        self,
        bucket: str,
        key: str,
        *,
        backend: AwsBackend | None = None,
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise PolicyError.for_field("bucket", "a bucket name", bucket)
        if not isinstance(key, str) or not key:
            raise PolicyError.for_field("key", "an object key", key)
        self.bucket = bucket
        self.key = key
        self.backend = backend or AwsBackend(
            f"s3://{bucket}", session=session, region=region, endpoint_url=endpoint_url
        )
        self.record: LeaseRecord | None = None
        self.etag: str | None = None

    def __repr__(self) -> str:
        return f"S3Lease({self.bucket!r}, {self.key!r})"

    @property
    def where(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"

    def _put(self, body: bytes, **condition: str) -> str | None:
        """Conditional PutObject; the new ETag, or ``None`` when the condition failed."""
        try:
            response: Any = self.backend.call(
                "s3",
                "put_object",
                resource=self.where,
                Bucket=self.bucket,
                Key=self.key,
                Body=body,
                ContentType="application/json",
                **condition,
            )
        except ResourceNotFoundError:
            if "IfMatch" in condition:  # the stale lease was released meanwhile
                return None
            raise
        except BackendError as exc:
            if exc.code in _CONFLICT:
                return None
            raise
        return str(response["ETag"])

    def _get(self) -> tuple[LeaseRecord | None, str, datetime] | None:
        """The lease (record or ``None`` if damaged, ETag, last modified), ``None`` if absent."""
        try:
            response: Any = self.backend.call(
                "s3",
                "get_object",
                resource=self.where,
                Bucket=self.bucket,
                Key=self.key,
                Range=f"bytes=0-{_MAX_BYTES}",
            )
        except ResourceNotFoundError:
            return None
        body = response["Body"]
        try:
            raw = body.read(_MAX_BYTES + 1)
        finally:
            body.close()
        return LeaseRecord.from_bytes(raw), str(response["ETag"]), response["LastModified"]

    def acquire(self, *, owner: str, now: datetime, ttl: timedelta) -> LeaseRecord:
        """Take the lease until ``now + ttl`` (``If-None-Match: *``), or take over a stale one (``If-Match``).

        A damaged lease object counts as stale once its ``LastModified`` is older than *ttl*.

        Raises:
            LeaseHeldError: Another owner holds a lease that is not stale at *now*, or won
                the race for a stale one.
        """
        record = LeaseRecord(owner=owner, acquired_at=now, expires_at=now + ttl)
        body = record.to_bytes()
        for _ in range(3):  # a lease released between our put and our read: try again
            etag = self._put(body, IfNoneMatch="*")
            if etag is not None:
                return self._took(record, etag)
            found = self._get()
            if found is None:
                continue
            held, held_etag, modified = found
            stale = held.stale(now) if held is not None else modified + ttl <= now
            if not stale:
                who = (
                    f"{held.owner!r} until {held.expires_at.isoformat()}"
                    if held
                    else "a damaged lease"
                )
                raise LeaseHeldError(
                    f"{self.where}: the run lease is held by {who}; expected no lease or a stale one",
                    holder=held,
                    where=self.where,
                )
            etag = self._put(body, IfMatch=held_etag)
            if etag is not None:
                return self._took(record, etag)
            raise LeaseHeldError(
                f"{self.where}: another run took over the stale run lease first",
                holder=None,
                where=self.where,
            )
        raise LeaseHeldError(
            f"{self.where}: the run lease changed hands three times while it was being taken",
            where=self.where,
        )

    def _took(self, record: LeaseRecord, etag: str) -> LeaseRecord:
        self.record, self.etag = record, etag
        return record

    def release(self) -> bool:
        """Delete the lease object if it is still ours (``If-Match`` on our ETag)."""
        etag, self.record, self.etag = self.etag, None, None
        if etag is None:
            return False
        try:
            self.backend.call(
                "s3",
                "delete_object",
                resource=self.where,
                Bucket=self.bucket,
                Key=self.key,
                IfMatch=etag,
            )
        except ResourceNotFoundError:
            return False
        except BackendError as exc:
            if exc.code in _CONFLICT:
                return False
            raise
        return True
