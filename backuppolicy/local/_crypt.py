"""Client-side encryption of directory archives: a segmented AEAD stream under an envelope key.

An encrypted archive is::

    MAGIC (b"BPAE") | version (1 byte) | header length (4 bytes, big-endian) | header (JSON)
    | segment 0 | segment 1 | ... | final segment

The header names the scheme, the segment size, a random 7-byte nonce prefix and the wrapped
data key (`KeySource.wrap` of a fresh 32-byte key per archive): never the key itself. Each
segment is AES-256-GCM of `SEGMENT_BYTES` of plaintext (the final one is shorter, possibly
empty) with the nonce ``prefix || counter (4 bytes) || last flag (1 byte)`` and the whole header
as associated data: the STREAM construction (Hoang, Reyhanitabar, Rogaway and Vizár, "Online
Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015), as used by age
and Tink's streaming AEAD. Reordered, dropped, duplicated or altered segments, a truncated
stream, a stream extended past its final segment and an altered header all fail to decrypt.

Plaintext archives (gzip, starting ``1f 8b``) have no header: `is_encrypted` tells them apart,
so archives written before encryption existed still restore.

Key sources (`KeySource`): `FileKeySource` (a 32-byte key in a file or an environment
variable, named by reference: `backuppolicy.core.secrets.Secret`) and, through the registry's
``"key-provider"`` group, ``"kms"``: `backuppolicy.aws.KmsDataKeys` (``GenerateDataKey`` and
``Decrypt``: envelope encryption).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backuppolicy.core.exceptions import DecryptionError, PolicyError
from backuppolicy.core.secrets import Secret

MAGIC: Final = b"BPAE"
"""First bytes of an encrypted archive (a plaintext one starts with gzip's ``1f 8b``)."""
VERSION: Final = 1
"""Version of the encrypted-archive format."""
SCHEME: Final = "aes-256-gcm-stream-64k"
"""The construction: AES-256-GCM segments of `SEGMENT_BYTES`, STREAM nonces."""
SEGMENT_BYTES: Final = 64 * 1024
"""Plaintext bytes per segment (the final segment holds fewer, possibly none)."""
TAG_BYTES: Final = 16
_PREFIX_BYTES: Final = 7
_MAX_HEADER: Final = 64 * 1024
_MAX_SEGMENTS: Final = 2**32
_WRAP_AAD: Final = b"backuppolicy data key v1"
_KEY_ID_INFO: Final = b"backuppolicy key id v1"
_FIXED: Final = len(MAGIC) + 1 + 4


@runtime_checkable
class KeySource(Protocol):
    """**Protocol:** where the data keys of encrypted archives come from.

    Attributes:
        reference: What the key is, by reference (``"kms:alias/backups"``,
            ``"{file: /etc/bp/archive.key}"``): safe to print, recorded in sidecars.
    """

    reference: str

    def wrap(self) -> tuple[bytes, dict[str, str]]:
        """A fresh 32-byte data key and its wrapped form (JSON-able, stored in the header)."""
        ...

    def unwrap(self, wrapped: Mapping[str, str]) -> bytes | None:
        """The data key of *wrapped*, ``None`` if *wrapped* is not from this source.

        Raises:
            DecryptionError: *wrapped* is from this source but does not unwrap (tampered).
        """
        ...


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError) as exc:
        msg = f"encrypted archive: {what} is not base64"
        raise DecryptionError(msg, result={"field": what}) from exc


def parse_key(text: str, reference: str) -> bytes:
    """The 32-byte key written in *text*: 64 hex digits or base64 (the value is never shown).

    Raises:
        PolicyError: *text* is neither (the message names *reference* only).
    """
    value = text.strip()
    key: bytes | None = None
    try:
        key = bytes.fromhex(value) if len(value) == 64 else base64.b64decode(value, validate=True)  # noqa: PLR2004
    except ValueError:
        key = None
    if key is None or len(key) != 32:  # noqa: PLR2004
        raise PolicyError(
            f"encryption key {reference}: expected 32 bytes as 64 hex digits or base64 "
            "(the value is not shown).",
            path=reference,
            expected="a 32-byte key, hex or base64",
            got="***",
        )
    return key


class FileKeySource:
    """Data keys wrapped (AES-256-GCM) under a 32-byte key read from a file or the environment.

    The key is named by reference (`Secret.from_file`, `Secret.from_env`) and read when used;
    ``repr`` and errors show the reference only. The header records a key id (an HMAC of the
    key, not the key) so that a restore with *previous* keys picks the right one after a
    rotation.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "archive.key")
        >>> with open(path, "w") as file:
        ...     _ = file.write(os.urandom(32).hex())
        >>> source = FileKeySource(Secret.from_file(path))
        >>> key, wrapped = source.wrap()
        >>> source.unwrap(wrapped) == key
        True

    Args:
        key: The key, by reference.
        previous: Keys of earlier archives (after a rotation), tried by key id on unwrap.
    """

    def __init__(self, key: Secret, *, previous: Sequence[Secret] = ()) -> None:
        if not isinstance(key, Secret):
            raise PolicyError.for_field("key", "a Secret (a file or env reference)", type(key))
        self._key = key
        self._previous = tuple(previous)
        self.reference = key.reference or "a key given in code"

    def __repr__(self) -> str:
        return f"FileKeySource({self.reference})"

    @staticmethod
    def _material(secret: Secret) -> tuple[bytes, str]:
        key = parse_key(secret.reveal(), secret.reference or "given in code")
        return key, hmac.new(key, _KEY_ID_INFO, hashlib.sha256).hexdigest()[:16]

    def wrap(self) -> tuple[bytes, dict[str, str]]:
        """A fresh data key, wrapped under the current key."""
        kek, key_id = self._material(self._key)
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        wrapped = AESGCM(kek).encrypt(nonce, data_key, _WRAP_AAD)
        return data_key, {
            "kind": "file",
            "key_id": key_id,
            "nonce": _b64(nonce),
            "wrapped": _b64(wrapped),
        }

    def unwrap(self, wrapped: Mapping[str, str]) -> bytes | None:
        """The data key, if one of the keys (current, then previous) has its key id."""
        if wrapped.get("kind") != "file":
            return None
        for secret in (self._key, *self._previous):
            kek, key_id = self._material(secret)
            if hmac.compare_digest(key_id, str(wrapped.get("key_id", ""))):
                try:
                    return AESGCM(kek).decrypt(
                        _unb64(wrapped.get("nonce"), "nonce"),
                        _unb64(wrapped.get("wrapped"), "wrapped key"),
                        _WRAP_AAD,
                    )
                except (InvalidTag, ValueError) as exc:
                    msg = (
                        "encrypted archive: the wrapped data key does not unwrap (tampered header)"
                    )
                    raise DecryptionError(msg, result={"key_id": key_id}) from exc
        return None


def key_source_from(
    value: object, path: str, *, kms_options: Mapping[str, Any] | None = None
) -> KeySource:
    """The `KeySource` of a policy value: ``file:/path``, ``env:VAR`` or ``kms:<key id/ARN/alias>``.

    A ``kms:`` key comes from the registry's ``"key-provider"`` plug-in ``"kms"``
    (`backuppolicy.aws.KmsDataKeys`, imports boto3), made with *kms_options*.

    Raises:
        PolicyError: Any other value (the message shows the form, not a key).
    """
    from backuppolicy.core.registry import get_plugin  # noqa: PLC0415 - only for kms:

    text = value if isinstance(value, str) else ""
    scheme, _, rest = text.partition(":")
    if scheme == "file" and rest.startswith("/"):
        return FileKeySource(Secret.from_file(rest))
    if scheme == "env" and rest:
        return FileKeySource(Secret.from_env(rest))
    if scheme == "kms" and rest:
        source: KeySource = get_plugin("key-provider", "kms")(rest, **dict(kms_options or {}))
        return source
    raise PolicyError.for_field(
        path,
        "a key by reference: 'file:/absolute/path', 'env:VARIABLE' or 'kms:<key id, ARN or alias/...>'",
        value if scheme in {"file", "env", "kms"} and not rest else "(not shown)",
    )


def _nonce(prefix: bytes, counter: int, *, last: bool) -> bytes:
    if counter >= _MAX_SEGMENTS:
        msg = f"encrypted archive: more than {_MAX_SEGMENTS} segments"
        raise DecryptionError(msg)
    return prefix + struct.pack(">I", counter) + (b"\x01" if last else b"\x00")


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class EncryptingSink:
    """Encrypts what is written into *sink*, one segment at a time; call `finish` at the end.

    Args:
        sink: Where the ciphertext goes (the store's writer, through the hashing sink).
        source: Where the data key comes from.
    """

    def __init__(self, sink: Sink, source: KeySource) -> None:
        self._sink = sink
        data_key, wrapped = source.wrap()
        self._aead = AESGCM(data_key)
        self._prefix = os.urandom(_PREFIX_BYTES)
        self.header_info: dict[str, object] = {
            "scheme": SCHEME,
            "segment": SEGMENT_BYTES,
            "nonce_prefix": _b64(self._prefix),
            "key": wrapped,
            "reference": source.reference,
        }
        body = json.dumps(self.header_info, sort_keys=True).encode("utf-8")
        self._header = MAGIC + bytes([VERSION]) + struct.pack(">I", len(body)) + body
        self._sink.write(self._header)
        self._buffer = bytearray()
        self._counter = 0
        self._done = False

    def write(self, data: bytes, /) -> int:
        """Buffer *data*; write every full segment."""
        self._buffer += data
        while len(self._buffer) > SEGMENT_BYTES:  # keep one back: the final may be full-size-less
            self._emit(bytes(self._buffer[:SEGMENT_BYTES]), last=False)
            del self._buffer[:SEGMENT_BYTES]
        return len(data)

    def flush(self) -> None:
        """Nothing to flush until `finish` (`gzip.GzipFile` calls it)."""

    def _emit(self, plain: bytes, *, last: bool) -> None:
        nonce = _nonce(self._prefix, self._counter, last=last)
        self._sink.write(self._aead.encrypt(nonce, plain, self._header))
        self._counter += 1

    def finish(self) -> None:
        """Write the remaining full segment, if any, and the final (shorter, maybe empty) one."""
        if self._done:
            return
        if len(self._buffer) == SEGMENT_BYTES:
            self._emit(bytes(self._buffer), last=False)
            self._buffer.clear()
        self._emit(bytes(self._buffer), last=True)
        self._buffer.clear()
        self._done = True


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _read_exact(stream: Readable, size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left > 0 and (chunk := stream.read(left)):
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def is_encrypted(head: bytes) -> bool:
    """Whether an archive starting with *head* is encrypted (its first 4 bytes suffice)."""
    return head[: len(MAGIC)] == MAGIC


def read_header(stream: Readable, where: str) -> tuple[bytes, dict[str, Any]]:
    """Read the header of an encrypted archive: its raw bytes and its JSON.

    Raises:
        DecryptionError: Not an encrypted archive of a known version, or a damaged header.
    """
    fixed = _read_exact(stream, _FIXED)
    if len(fixed) < _FIXED or not is_encrypted(fixed):
        msg = f"{where}: not an encrypted archive (no {MAGIC!r} header)"
        raise DecryptionError(msg, result={"archive": where})
    if fixed[len(MAGIC)] != VERSION:
        msg = (
            f"{where}: encrypted archive version {fixed[len(MAGIC)]} (this version reads {VERSION})"
        )
        raise DecryptionError(msg, result={"archive": where, "version": fixed[len(MAGIC)]})
    (length,) = struct.unpack(">I", fixed[len(MAGIC) + 1 :])
    if length > _MAX_HEADER:
        msg = f"{where}: encrypted archive header of {length} bytes (at most {_MAX_HEADER})"
        raise DecryptionError(msg, result={"archive": where})
    body = _read_exact(stream, length)
    problem = ""
    try:
        info = json.loads(body.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        info, problem = None, str(exc)
    if not problem and not isinstance(info, dict):
        problem = "not a JSON object"
    elif not problem and info.get("scheme") != SCHEME:
        problem = f"unknown scheme {info.get('scheme')!r}"
    elif not problem and (
        info.get("segment") != SEGMENT_BYTES or not isinstance(info.get("key"), dict)
    ):
        problem = "unexpected segment size or no wrapped key"
    if problem or not isinstance(info, dict):
        msg = f"{where}: damaged encrypted archive header: {problem}"
        raise DecryptionError(msg, result={"archive": where})
    return fixed + body, info


def _data_key(info: Mapping[str, Any], sources: Sequence[KeySource], where: str) -> bytes:
    wrapped = {str(k): str(v) for k, v in dict(info["key"]).items()}
    for source in sources:
        key = source.unwrap(wrapped)
        if key is not None:
            return key
    named = str(info.get("reference", "unknown"))
    kind = wrapped.get("kind", "?")
    have = ", ".join(s.reference for s in sources) or "none"
    msg = (
        f"{where}: wrong key: the archive was encrypted with a {kind} key ({named}, key id "
        f"{wrapped.get('key_id', '?')}); the keys given ({have}) do not match"
    )
    raise DecryptionError(msg, result={"archive": where, "expected": named, "got": have})


class DecryptingReader:
    """Reads the plaintext of an encrypted archive; every segment is authenticated first.

    Nothing is returned from a segment before its tag is checked; the end of the stream is
    accepted only after the final segment (its last flag set), so truncation is an error.

    Args:
        stream: The encrypted archive, positioned at its start.
        sources: The key sources to try (the target's key, then previous keys).
        where: Names the archive in errors.
    """

    def __init__(self, stream: Readable, sources: Sequence[KeySource], where: str) -> None:
        self._stream = stream
        self._where = where
        self._header, info = read_header(stream, where)
        self.reference = str(info.get("reference", ""))
        self._aead = AESGCM(_data_key(info, sources, where))
        self._prefix = _unb64(info.get("nonce_prefix"), "nonce prefix")
        if len(self._prefix) != _PREFIX_BYTES:
            msg = f"{where}: damaged encrypted archive header (nonce prefix)"
            raise DecryptionError(msg, result={"archive": where})
        self._counter = 0
        self._plain = b""
        self._finished = False

    def _next(self) -> None:
        chunk = _read_exact(self._stream, SEGMENT_BYTES + TAG_BYTES)
        last = len(chunk) < SEGMENT_BYTES + TAG_BYTES
        if last and len(chunk) < TAG_BYTES:
            msg = f"{self._where}: encrypted archive is truncated (segment {self._counter} missing)"
            raise DecryptionError(msg, result={"archive": self._where, "segment": self._counter})
        nonce = _nonce(self._prefix, self._counter, last=last)
        try:
            self._plain = self._aead.decrypt(nonce, chunk, self._header)
        except InvalidTag as exc:
            msg = (
                f"{self._where}: encrypted archive segment {self._counter} does not authenticate "
                "(tampered, reordered or truncated)"
            )
            raise DecryptionError(
                msg, result={"archive": self._where, "segment": self._counter}
            ) from exc
        self._counter += 1
        self._finished = last

    def read(self, size: int = -1, /) -> bytes:
        """Up to *size* bytes of plaintext (all that is left if *size* < 0)."""
        out: list[bytes] = []
        want = size if size >= 0 else None
        while want is None or want > 0:
            if not self._plain:
                if self._finished:
                    break
                self._next()
                continue
            take = self._plain if want is None else self._plain[:want]
            self._plain = self._plain[len(take) :]
            out.append(take)
            if want is not None:
                want -= len(take)
        return b"".join(out)


def decrypt_to(stream: Readable, sink: Sink, sources: Sequence[KeySource], where: str) -> int:
    """Decrypt all of *stream* into *sink*; return the plaintext size.

    Raises:
        DecryptionError: Wrong key, tampered or truncated (*sink* then holds a prefix of the
            plaintext: write it where nothing trusts it until this returns).
    """
    reader = DecryptingReader(stream, sources, where)
    size = 0
    while chunk := reader.read(SEGMENT_BYTES):
        sink.write(chunk)
        size += len(chunk)
    return size
