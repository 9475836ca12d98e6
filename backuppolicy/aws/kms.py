"""KMS data keys for client-side encrypted archives: envelope encryption.

`KmsDataKeys` is the ``"kms"`` plug-in of the registry's ``"key-provider"`` group: the
directory target (`backuppolicy.local`, which never imports this package) reaches it by name
when a policy says ``encryption: {key: "kms:alias/backups"}``. Each archive gets a fresh
256-bit data key from ``GenerateDataKey``; only its KMS-encrypted form (the ``CiphertextBlob``)
is stored, in the archive's header; a restore asks ``Decrypt`` for it back. The plaintext data
key is never stored, logged or printed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from backuppolicy.aws._client import AwsBackend, RetryPolicy
from backuppolicy.core.exceptions import DecryptionError, PolicyError

if TYPE_CHECKING:
    import boto3
    from botocore.client import BaseClient

__all__ = ["KmsDataKeys"]

_CONTEXT: Final = {"backuppolicy": "archive-data-key"}


class KmsDataKeys:
    """Data keys from AWS KMS (``GenerateDataKey``, ``Decrypt``), for `backuppolicy.local` archives.

    The encryption context ``{"backuppolicy": "archive-data-key"}`` binds each wrapped key
    to its use (a CloudTrail entry shows it). ``Decrypt`` is called with the key id recorded
    in the header, so a wrapped key from another key is refused by KMS. KMS keeps rotated key
    material: archives written before a rotation still decrypt.

    Args:
        key_id: Key id, key ARN, alias name (``alias/backups``) or alias ARN.
        session: A `boto3.Session`.
        region: Region of the key (an ARN's region wins).
        endpoint_url: Endpoint (moto server, LocalStack).
        clients: Ready clients (``{"kms": client}``).
        retry: The `RetryPolicy`.

    Attributes:
        key_id: The key as given.
        reference: ``"kms:<key_id>"``.
    """

    def __init__(
        self,
        key_id: str,
        *,
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, BaseClient] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not isinstance(key_id, str) or not key_id.strip():
            raise PolicyError.for_field("key", "a KMS key id, ARN or alias", key_id)
        if key_id.startswith("arn:") and key_id.count(":") >= 5:  # noqa: PLR2004
            region = key_id.split(":")[3] or region
        self.key_id = key_id
        self.reference = f"kms:{key_id}"
        self.backend = AwsBackend(
            f"kms:{key_id}",
            session=session,
            region=region,
            endpoint_url=endpoint_url,
            clients=clients,
            retry=retry,
        )

    def __repr__(self) -> str:
        return f"KmsDataKeys({self.key_id!r})"

    def wrap(self) -> tuple[bytes, dict[str, str]]:
        """A fresh 256-bit data key (``GenerateDataKey``) and its KMS-encrypted form."""
        found = self.backend.call(
            "kms",
            "generate_data_key",
            resource=self.key_id,
            KeyId=self.key_id,
            KeySpec="AES_256",
            EncryptionContext=_CONTEXT,
        )
        return bytes(found["Plaintext"]), {
            "kind": "kms",
            "key_id": str(found["KeyId"]),
            "blob": base64.b64encode(found["CiphertextBlob"]).decode("ascii"),
        }

    def unwrap(self, wrapped: Mapping[str, str]) -> bytes | None:
        """The data key (``Decrypt`` of the stored blob); ``None`` if it is not a KMS key.

        Raises:
            DecryptionError: The blob is damaged.
            BackendError: KMS refused (``AccessDenied``, a disabled key, another key's blob).
        """
        if wrapped.get("kind") != "kms":
            return None
        try:
            blob = base64.b64decode(str(wrapped.get("blob", "")), validate=True)
        except (binascii.Error, ValueError) as exc:
            msg = f"{self.reference}: the wrapped data key is not base64 (tampered header)"
            raise DecryptionError(msg, result={"key": self.reference}) from exc
        found = self.backend.call(
            "kms",
            "decrypt",
            resource=str(wrapped.get("key_id") or self.key_id),
            CiphertextBlob=blob,
            EncryptionContext=_CONTEXT,
            KeyId=str(wrapped.get("key_id") or self.key_id),
        )
        return bytes(found["Plaintext"])
