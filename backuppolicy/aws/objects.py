"""Plain objects in an S3 bucket: the storage calls under the archive and testing-log stores.

`S3Objects` makes every S3 call of `backuppolicy.local.S3Store` (archives and their sidecars)
and of `backuppolicy.S3LogStore` (one object per testing-log entry): bounded reads, paginated
listings, uploads (one PutObject, or a multipart upload past one part) and the conditional
writes that keep concurrent writers apart (``If-Match``, ``If-None-Match: *``). The stores keep
their formats and reach this class through the registry (the ``"object-store"`` plug-in group,
scheme ``"s3"``), so neither imports boto3 nor makes an AWS call itself: the powertools split of
the workflow in the base and the storage in the backend.

Every call goes through `backuppolicy.aws.AwsBackend` (retries, error mapping).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from backuppolicy.aws._client import AwsBackend, RetryPolicy
from backuppolicy.aws.accounts import assume_role_session
from backuppolicy.core.exceptions import BackendError, PolicyError, ResourceNotFoundError
from backuppolicy.core.specs import AccountSpec

if TYPE_CHECKING:
    import boto3
    from botocore.client import BaseClient
    from botocore.config import Config
    from botocore.response import StreamingBody
    from types_boto3_s3.type_defs import CompletedPartTypeDef

__all__ = ["MIN_PART_SIZE", "S3Objects"]

_MiB = 1024 * 1024
MIN_PART_SIZE: Final = 5 * _MiB
"""Smallest part of a multipart upload that S3 accepts (the last part excepted)."""

_CONFLICT_CODES: Final = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


class _S3Writer:
    """Buffers up to one part; small objects go up with PutObject, big ones as a multipart upload."""

    def __init__(self, objects: S3Objects, key: str) -> None:
        self._objects = objects
        self._key = key
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []
        self.encryption: str | None = None

    def write(self, data: bytes, /) -> int:
        self._buffer += data
        if len(self._buffer) >= self._objects.part_size:
            self._flush_part()
        return len(data)

    def _flush_part(self) -> None:
        objects = self._objects
        if self._upload_id is None:
            created = objects.backend.call(
                "s3",
                "create_multipart_upload",
                resource=self._key,
                Bucket=objects.bucket,
                Key=self._key,
                **objects.sse_params,
            )
            self._upload_id = str(created["UploadId"])
        number = len(self._parts) + 1
        part = objects.backend.call(
            "s3",
            "upload_part",
            resource=self._key,
            Bucket=objects.bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=bytes(self._buffer),
        )
        self._parts.append({"ETag": part["ETag"], "PartNumber": number})
        self._buffer = bytearray()

    def commit(self) -> None:
        objects = self._objects
        if self._upload_id is None:
            done = objects.backend.call(
                "s3",
                "put_object",
                resource=self._key,
                Bucket=objects.bucket,
                Key=self._key,
                Body=bytes(self._buffer),
                **objects.sse_params,
            )
        else:
            if self._buffer:
                self._flush_part()
            done = objects.backend.call(
                "s3",
                "complete_multipart_upload",
                resource=self._key,
                Bucket=objects.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        self.encryption = done.get("ServerSideEncryption")

    def abort(self) -> None:
        if self._upload_id is not None:
            self._objects.backend.call(
                "s3",
                "abort_multipart_upload",
                resource=self._key,
                Bucket=self._objects.bucket,
                Key=self._key,
                UploadId=self._upload_id,
            )


class S3Objects:
    """The objects of one bucket, by full key: what a store built on S3 needs and nothing more.

    Example:
        >>> objects = S3Objects("acme-backups", name="s3://acme-backups/web/")  # doctest: +SKIP

    Args:
        bucket: The bucket.
        name: Name of the backend in errors and logs (default ``s3://<bucket>``).
        kms_key_id: KMS key for SSE-KMS on every write, or ``None`` for the bucket's default.
        part_size: Multipart part size in bytes (at least `MIN_PART_SIZE`).
        session: A `boto3.Session`.
        region: Region of the bucket.
        endpoint_url: Endpoint (moto server, LocalStack).
        clients: Ready clients (``{"s3": client}``).
        config: Extra botocore `Config`.
        retry: The `RetryPolicy`.
        account: Another account that owns the bucket (`~backuppolicy.core.specs.AccountSpec`):
            every call is then made with its role, assumed from *session* on first use (a tier
            in a backup account). Credentials that already are that account's are used as
            they are (a run inside the backup account).

    Attributes:
        bucket: The bucket.
        kms_key_id: KMS key for SSE-KMS, or ``None``.
        part_size: Multipart part size in bytes.
        backend: The `AwsBackend` that makes every call.
    """

    def __init__(
        self,
        bucket: str,
        *,
        name: str | None = None,
        kms_key_id: str | None = None,
        part_size: int = 8 * _MiB,
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, BaseClient] | None = None,
        config: Config | None = None,
        retry: RetryPolicy | None = None,
        account: AccountSpec | None = None,
    ) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise PolicyError.for_field("bucket", "a non-empty bucket name", bucket)
        if account is not None and not isinstance(account, AccountSpec):
            raise PolicyError.for_field("account", "an AccountSpec or None", account)
        if (
            isinstance(part_size, bool)
            or not isinstance(part_size, int)
            or part_size < MIN_PART_SIZE
        ):
            raise PolicyError.for_field("part_size", f"an integer >= {MIN_PART_SIZE}", part_size)
        self.bucket = bucket
        self.kms_key_id = kms_key_id
        self.part_size = part_size
        self.account = account
        self._backend_options: dict[str, Any] = {
            "session": session,
            "region": region,
            "endpoint_url": endpoint_url,
            "clients": clients,
            "config": config,
            "retry": retry,
        }
        self._name = name or f"s3://{bucket}"
        self._backend: AwsBackend | None = None
        self._backend_lock = threading.Lock()
        if account is None:
            self._backend = AwsBackend(self._name, **self._backend_options)

    @property
    def backend(self) -> AwsBackend:
        """The `AwsBackend` that makes every call (the *account*'s role, assumed on first use)."""
        if self._backend is None:
            with self._backend_lock:
                if self._backend is None:
                    self._backend = self._account_backend()
        return self._backend

    def _account_backend(self) -> AwsBackend:
        """A backend with the credentials of *account*: its role assumed, unless already its own."""
        account = self.account
        assert account is not None  # noqa: S101 - only called with an account
        options = dict(self._backend_options)
        base = options["session"]
        caller = AwsBackend(
            f"caller:{self._name}",
            session=base,
            region=options["region"],
            endpoint_url=options["endpoint_url"],
            retry=options["retry"],
        ).call("sts", "get_caller_identity")
        if str(caller["Account"]) != account.account_id:
            options["session"] = assume_role_session(
                account.role_arn,
                external_id=account.external_id,
                session_name=account.session_name,
                base_session=base,
                region=options["region"],
                endpoint_url=options["endpoint_url"],
                retry=options["retry"],
            )
            options["clients"] = None  # clients of the base credentials would bypass the role
        return AwsBackend(self._name, **options)

    def __repr__(self) -> str:
        return f"<backuppolicy.aws.S3Objects(bucket={self.bucket!r})>"

    @property
    def sse_params(self) -> dict[str, str]:
        """Server-side encryption parameters for PutObject / CreateMultipartUpload."""
        if self.kms_key_id is None:
            return {}
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}

    @contextlib.contextmanager
    def open_writer(self, key: str) -> Iterator[_S3Writer]:
        """Upload *key* (PutObject, or a multipart upload past one part); abort on error.

        The object appears only once the context exits cleanly; the writer's ``encryption``
        is then the server-side encryption S3 applied.
        """
        writer = _S3Writer(self, key)
        try:
            yield writer
            writer.commit()
        except BaseException:
            with contextlib.suppress(BackendError):
                writer.abort()
            raise

    @contextlib.contextmanager
    def open_reader(self, key: str) -> Iterator[StreamingBody]:
        """Stream *key* with GetObject (a botocore streaming body, closed on exit).

        Raises:
            ResourceNotFoundError: *key* does not exist.
        """
        response = self.backend.call("s3", "get_object", resource=key, Bucket=self.bucket, Key=key)
        body: StreamingBody = response["Body"]
        try:
            yield body
        finally:
            body.close()

    def get_bounded(self, key: str, limit: int) -> tuple[bytes, bool]:
        """At most ``limit + 1`` bytes of *key* (a Range request) and whether it holds more than *limit*.

        Raises:
            ResourceNotFoundError: *key* does not exist.
        """
        return self.backend.get_bounded(self.bucket, key, limit, resource=key)

    def get_bounded_if(self, key: str, limit: int, etag: str) -> tuple[bytes, bool] | None:
        """`get_bounded` of *key* only while its ETag is *etag* (``If-Match``); ``None`` if not.

        S3 answers 412 when the object changed since *etag* was read: an ETag names one
        content of the key ("An object's ETag is a string representing a specific version of an
        object", https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-reads.html),
        so the bytes returned are exactly those of *etag*.

        Raises:
            ResourceNotFoundError: *key* does not exist.
        """
        try:
            return self.backend.get_bounded(self.bucket, key, limit, resource=key, IfMatch=etag)
        except BackendError as exc:
            if exc.code in {"PreconditionFailed", "412"}:
                return None
            raise

    def list_etags(
        self, prefix: str, *, page_size: int | None = None
    ) -> Iterator[list[tuple[str, datetime, str]]]:
        """``(key, last modified, ETag)`` of the objects under *prefix*, a list per page.

        As `list_pages`, with each object's ETag (ListObjectsV2 returns it with the key).
        """
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if page_size is not None:
            params["MaxKeys"] = page_size
        for page in self.backend.paginate(
            "s3", "list_objects_v2", resource=self.backend.name, **params
        ):
            yield [
                (str(item["Key"]), item["LastModified"], str(item.get("ETag", "")))
                for item in page.get("Contents", ())
            ]

    def list_pages(
        self,
        prefix: str,
        *,
        start_after: str | None = None,
        page_size: int | None = None,
        resource: str | None = None,
    ) -> Iterator[list[tuple[str, datetime]]]:
        """``(key, last modified)`` of the objects under *prefix*, one list per ListObjectsV2 page.

        Every page is read, each retried on its own; a page that finally fails raises (naming
        *resource*, default the backend's name).
        """
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if start_after is not None:
            params["StartAfter"] = start_after
        if page_size is not None:
            params["MaxKeys"] = page_size
        for page in self.backend.paginate(
            "s3", "list_objects_v2", resource=resource or self.backend.name, **params
        ):
            yield [(str(item["Key"]), item["LastModified"]) for item in page.get("Contents", ())]

    def exists(self, key: str) -> bool:
        """HeadObject."""
        return self.etag(key) is not None

    def etag(self, key: str) -> str | None:
        """The ETag of *key* (HeadObject), ``None`` if there is no such object."""
        try:
            head = self.backend.call("s3", "head_object", resource=key, Bucket=self.bucket, Key=key)
        except ResourceNotFoundError:
            return None
        return str(head["ETag"])

    def retain(self, key: str, mode: str, until: datetime) -> str:
        """Object Lock retention on the current version of *key* (``PutObjectRetention``).

        *mode* is ``"governance"`` or ``"compliance"``. A retention that already lasts until
        *until* or later is left as it is (S3 never shortens a compliance retention).

        Returns:
            The version id that was locked.

        Raises:
            ResourceNotFoundError: *key* does not exist.
            PolicyError: *mode* is not governance or compliance.
        """
        if mode not in {"governance", "compliance"}:
            raise PolicyError.for_field("mode", "'governance' or 'compliance'", mode)
        head = self.backend.call("s3", "head_object", resource=key, Bucket=self.bucket, Key=key)
        version = str(head.get("VersionId") or "")
        if not version or version == "null":
            msg = (
                f"{self._name}: cannot lock {key!r}: the bucket keeps no versions "
                "(Object Lock needs a bucket created with ObjectLockEnabledForBucket)"
            )
            raise PolicyError(msg)
        current = head.get("ObjectLockRetainUntilDate")
        if isinstance(current, datetime) and current >= until:
            return version
        self.backend.call(
            "s3",
            "put_object_retention",
            resource=key,
            Bucket=self.bucket,
            Key=key,
            VersionId=version,
            Retention={"Mode": mode.upper(), "RetainUntilDate": until},
        )
        return version

    def put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> bool:
        """PutObject of *body* (with SSE-KMS when the objects have a key); ``False`` if a condition failed.

        With *if_match* the object is written only if its ETag is still that one (``False``
        when it changed or is gone); with *if_none_match* only if there is no such object yet
        (``False`` when there is).
        """
        params: dict[str, Any] = {"Body": body, **self.sse_params}
        if content_type is not None:
            params["ContentType"] = content_type
        if if_match is not None:
            params["IfMatch"] = if_match
        if if_none_match:
            params["IfNoneMatch"] = "*"
        try:
            self.backend.call(
                "s3", "put_object", resource=key, Bucket=self.bucket, Key=key, **params
            )
        except ResourceNotFoundError:
            if if_match is None:
                raise
            return False
        except BackendError as exc:
            if if_match is not None and exc.code in _CONFLICT_CODES:
                return False
            if if_none_match and exc.code == "PreconditionFailed":
                return False
            raise
        return True

    def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """DeleteObject (a delete marker in a versioned bucket); ``False`` if *if_match* failed.

        A missing object is not an error without *if_match*.
        """
        params: dict[str, str] = {} if if_match is None else {"IfMatch": if_match}
        try:
            self.backend.call(
                "s3", "delete_object", resource=key, Bucket=self.bucket, Key=key, **params
            )
        except ResourceNotFoundError:
            if if_match is None:
                raise
            return False
        except BackendError as exc:
            if if_match is not None and exc.code in _CONFLICT_CODES:
                return False
            raise
        return True
