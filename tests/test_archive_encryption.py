"""Client-side encryption of directory archives (issue 12, §7.5 and §8.3).

Round trips with a file key and a KMS data key (moto), wrong keys, tampering, truncation and
reordering detected with nothing written to the destination, archives written before
encryption still restoring, and the key never printed.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backuppolicy.checks.integrity import IntegrityCheck
from backuppolicy.checks.metadata import Encrypted
from backuppolicy.checks.verify import VerifyContext
from backuppolicy.core.exceptions import DecryptionError, PolicyError
from backuppolicy.core.policy import Policy
from backuppolicy.core.results import CheckStatus
from backuppolicy.core.secrets import Secret
from backuppolicy.local import Directory, DirectoryStore, FileKeySource
from backuppolicy.local._crypt import (
    SEGMENT_BYTES,
    TAG_BYTES,
    DecryptingReader,
    EncryptingSink,
    read_header,
)

KEY_HEX = "7f" * 32  # a test key; the tests check it never appears in any output


def _key_file(tmp_path: Path, name: str = "archive.key", value: str = KEY_HEX) -> Path:
    path = tmp_path / name
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "conf").mkdir(parents=True, exist_ok=True)
    (src / "conf" / "app.conf").write_text("port = 8080\n")
    (src / "blob.bin").write_bytes(os.urandom(300_000))  # several segments
    return src


def _directory(tmp_path: Path, key: Path | None, **kwargs: Any) -> Directory:
    encryption = FileKeySource(Secret.from_file(str(key))) if key is not None else None
    return Directory(
        _source(tmp_path) if not (tmp_path / "src").exists() else tmp_path / "src",
        name="app-config",
        store=DirectoryStore(tmp_path / "store"),
        encryption=encryption,
        **kwargs,
    )


def _archive(target: Directory, point: Any) -> Path:
    return target.store.path / f"{point.id}.tar.gz"  # type: ignore[attr-defined]


def _reseal(target: Directory, point: Any, data: bytes) -> None:
    """Replace the archive with *data* and its sidecar's SHA-256, as an attacker with the store could."""
    import hashlib
    import json

    _archive(target, point).write_bytes(data)
    sidecar = target.store.path / f"{point.id}.json"  # type: ignore[attr-defined]
    meta = json.loads(sidecar.read_text())
    meta["archive"]["sha256"] = hashlib.sha256(data).hexdigest()
    sidecar.write_text(json.dumps(meta))


class TestRoundTrip:
    def test_file_key_round_trip(self, tmp_path):
        """A file key: the stored archive is ciphertext; verify and restore decrypt it."""
        target = _directory(tmp_path, _key_file(tmp_path))
        point = target.create_backup()
        stored = _archive(target, point).read_bytes()
        assert stored.startswith(b"BPAE\x01")
        assert b"port = 8080" not in stored
        assert point.encrypted is True
        assert point.details["client_encryption"]["key"].startswith("{file: ")
        assert target.verify(point) == point.checksum
        out = target.restore_to(point, tmp_path / "out")
        assert (out / "conf" / "app.conf").read_text() == "port = 8080\n"
        assert (out / "blob.bin").read_bytes() == (tmp_path / "src" / "blob.bin").read_bytes()

    def test_integrity_check_decrypts(self, tmp_path):
        """The integrity check (deep) and the encrypted check pass on an encrypted archive."""
        target = _directory(tmp_path, _key_file(tmp_path))
        point = target.create_backup()
        ctx = VerifyContext(now=point.created_at)
        result = IntegrityCheck(deep=True).verify(target, point, ctx)
        assert CheckStatus.PASS == result.status, result.details
        assert CheckStatus.PASS == Encrypted().verify(target, point, ctx).status

    def test_kms_envelope_round_trip(self, tmp_path, aws):
        """KMS envelope: GenerateDataKey, the wrapped key in the header, Decrypt on restore (moto)."""
        import boto3

        from backuppolicy.aws import KmsDataKeys

        session = boto3.Session(region_name="us-east-1")
        key = session.client("kms").create_key()["KeyMetadata"]["KeyId"]
        session.client("kms").create_alias(AliasName="alias/backups", TargetKeyId=key)
        target = Directory(
            _source(tmp_path),
            name="app-config",
            store=DirectoryStore(tmp_path / "store"),
            encryption=KmsDataKeys("alias/backups", session=session),
        )
        point = target.create_backup()
        with _archive(target, point).open("rb") as handle:
            header, info = read_header(handle, "test")
        assert info["key"]["kind"] == "kms"
        assert key in info["key"]["key_id"]
        assert "Plaintext" not in header.decode("utf-8", "replace")
        out = target.restore_to(point, tmp_path / "out")
        assert (out / "conf" / "app.conf").read_text() == "port = 8080\n"

    def test_policy_file_key_by_reference(self, tmp_path):
        """A policy's `encryption: {key: file:...}` encrypts; the sidecar names the reference."""
        key = _key_file(tmp_path)
        policy = Policy.from_dict(
            {
                "name": "p",
                "schedule": {"every": "day", "at": "04:00"},
                "retention": {"max_age": "35d"},
                "tiers": [
                    {
                        "name": "local",
                        "every": "day",
                        "location": {"store": str(tmp_path / "store")},
                    }
                ],
                "targets": [
                    {
                        "name": "app-config",
                        "kind": "directory",
                        "settings": {
                            "path": str(_source(tmp_path)),
                            "encryption": {"key": f"file:{key}"},
                        },
                    }
                ],
            }
        )
        target = Directory.from_spec(policy.target("app-config"), policy)
        point = target.create_backup()
        assert _archive(target, point).read_bytes().startswith(b"BPAE")
        assert point.details["client_encryption"]["key"] == f"{{file: {key}}}"

    @pytest.mark.parametrize(
        "value",
        [{"key": "7f" * 32}, {"key": "file:relative"}, {"keys": "file:/k"}, "file:/k"],
    )
    def test_bad_policy_values(self, tmp_path, value):
        """Inline keys, relative paths, unknown keys are PolicyErrors that never show the value."""
        with pytest.raises(PolicyError, match=r"settings\.encryption") as err:
            Policy.from_dict(
                {
                    "name": "p",
                    "schedule": {"every": "day", "at": "04:00"},
                    "retention": {"max_age": "35d"},
                    "targets": [
                        {
                            "name": "d",
                            "kind": "directory",
                            "settings": {"path": "/srv/app", "encryption": value},
                        }
                    ],
                }
            )
        assert "7f7f7f7f" not in str(err.value)

    def test_old_plaintext_archive_still_restores(self, tmp_path):
        """Archives written before encryption restore and verify with a keyed target."""
        plain = _directory(tmp_path, None)
        point = plain.create_backup()
        assert _archive(plain, point).read_bytes()[:2] == b"\x1f\x8b"
        keyed = Directory(
            tmp_path / "src",
            name="app-config",
            store=plain.store,
            encryption=FileKeySource(Secret.from_file(str(_key_file(tmp_path)))),
        )
        [listed] = [p for p in keyed.list_points() if p.id == point.id]
        assert keyed.verify(listed) == listed.checksum
        out = keyed.restore_to(listed, tmp_path / "out")
        assert (out / "conf" / "app.conf").read_text() == "port = 8080\n"

    def test_rotation_previous_key_restores(self, tmp_path):
        """After a rotation, previous_keys decrypt older archives."""
        old = _key_file(tmp_path, "old.key")
        target = _directory(tmp_path, old)
        point = target.create_backup()
        new = _key_file(tmp_path, "new.key", os.urandom(32).hex())
        rotated = Directory(
            tmp_path / "src",
            name="app-config",
            store=target.store,
            encryption=FileKeySource(Secret.from_file(str(new))),
            previous_keys=[FileKeySource(Secret.from_file(str(old)))],
        )
        out = rotated.restore_to(point, tmp_path / "out")
        assert (out / "conf" / "app.conf").exists()


class TestDetected:
    """Wrong key, tampering, truncation, reordering: a DecryptionError and nothing restored."""

    @pytest.fixture(name="setup")
    def _setup(self, tmp_path):
        target = _directory(tmp_path, _key_file(tmp_path))
        return target, target.create_backup()

    def _refused(self, target, point, tmp_path, match):
        dest = tmp_path / "out"
        with pytest.raises(DecryptionError, match=match):
            target.restore_to(point, dest)
        assert not dest.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bp-restore")]
        with pytest.raises(DecryptionError):
            target.verify(point)

    def test_wrong_key(self, setup, tmp_path):
        """Another key: DecryptionError naming the key by reference; nothing restored."""
        target, point = setup
        other = Directory(
            tmp_path / "src",
            name="app-config",
            store=target.store,
            encryption=FileKeySource(
                Secret.from_file(str(_key_file(tmp_path, "other.key", "01" * 32)))
            ),
        )
        self._refused(other, point, tmp_path, "wrong key")

    def test_no_key(self, setup, tmp_path):
        """No key configured: DecryptionError; nothing restored."""
        target, point = setup
        keyless = Directory(tmp_path / "src", name="app-config", store=target.store)
        self._refused(keyless, point, tmp_path, "wrong key")

    @pytest.mark.parametrize("where", ["header", "first", "middle", "last"])
    def test_tampered_byte(self, setup, tmp_path, where):
        """One flipped byte anywhere (header, any segment), with a matching sidecar: refused."""
        target, point = setup
        data = bytearray(_archive(target, point).read_bytes())
        header, _ = read_header(io.BytesIO(bytes(data)), "t")
        index = {
            "header": len(header) - 5,
            "first": len(header) + 10,
            "middle": len(header) + SEGMENT_BYTES + TAG_BYTES + 100,
            "last": len(data) - 1,
        }[where]
        data[index] ^= 0x01
        _reseal(target, point, bytes(data))
        self._refused(target, point, tmp_path, "tampered|segment|header")

    def test_truncated_at_a_segment_boundary(self, setup, tmp_path):
        """Truncation at a segment boundary (no final segment): refused."""
        target, point = setup
        data = _archive(target, point).read_bytes()
        header, _ = read_header(io.BytesIO(data), "t")
        _reseal(target, point, data[: len(header) + 2 * (SEGMENT_BYTES + TAG_BYTES)])
        self._refused(target, point, tmp_path, "segment")

    def test_segments_swapped(self, setup, tmp_path):
        """Two segments swapped: refused."""
        target, point = setup
        data = _archive(target, point).read_bytes()
        header, _ = read_header(io.BytesIO(data), "t")
        size = SEGMENT_BYTES + TAG_BYTES
        body = data[len(header) :]
        swapped = body[size : 2 * size] + body[:size] + body[2 * size :]
        _reseal(target, point, header + swapped)
        self._refused(target, point, tmp_path, "segment 0")

    def test_sha_mismatch_without_reseal_is_caught_first(self, setup, tmp_path):
        """A change the sidecar does not know is caught by its SHA-256 first."""
        from backuppolicy.core.exceptions import VerificationError

        target, point = setup
        path = _archive(target, point)
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))
        with pytest.raises(VerificationError):
            target.restore_to(point, tmp_path / "out")
        assert not (tmp_path / "out").exists()


class TestKeyNeverPrinted:
    def test_repr_errors_and_logs(self, tmp_path, caplog):
        """The key is in no repr, error, sidecar or log record."""
        caplog.set_level(logging.DEBUG)
        key = _key_file(tmp_path)
        source = FileKeySource(Secret.from_file(str(key)))
        target = _directory(tmp_path, key)
        point = target.create_backup()
        texts = [repr(source), repr(target), repr(point), str(point.details)]
        other = Directory(
            tmp_path / "src",
            name="app-config",
            store=target.store,
            encryption=FileKeySource(
                Secret.from_file(str(_key_file(tmp_path, "o.key", "02" * 32)))
            ),
        )
        with pytest.raises(DecryptionError) as err:
            other.restore_to(point, tmp_path / "out")
        texts += [str(err.value), repr(err.value.result)]
        bad = _key_file(tmp_path, "bad.key", KEY_HEX[:-2])
        with pytest.raises(PolicyError) as bad_err:
            FileKeySource(Secret.from_file(str(bad))).wrap()
        texts.append(str(bad_err.value))
        texts += [r.getMessage() for r in caplog.records]
        sidecar = (target.store.path / f"{point.id}.json").read_text()
        texts.append(sidecar)
        for text in texts:
            assert KEY_HEX not in text
            assert KEY_HEX[:-2] not in text
            assert bytes.fromhex(KEY_HEX).hex() not in text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.one_of(
        st.integers(0, 3 * SEGMENT_BYTES + 10),
        st.sampled_from(
            [0, 1, SEGMENT_BYTES - 1, SEGMENT_BYTES, SEGMENT_BYTES + 1, 2 * SEGMENT_BYTES]
        ),
    ),
    chunk=st.integers(1, 3 * SEGMENT_BYTES),
)
def test_stream_round_trip_around_segment_boundaries(size, chunk):
    """Round trip for sizes around segment boundaries, in any write size; a dropped final segment is detected."""
    key = FileKeySource(Secret(KEY_HEX))
    plain = os.urandom(size)
    out = io.BytesIO()
    sink = EncryptingSink(out, key)
    for start in range(0, size, chunk):
        sink.write(plain[start : start + chunk])
    sink.finish()
    sealed = out.getvalue()
    reader = DecryptingReader(io.BytesIO(sealed), [key], "t")
    got = bytearray()
    while part := reader.read(chunk):
        got += part
    assert plain == bytes(got)
    segments = size // SEGMENT_BYTES + 1
    header, _ = read_header(io.BytesIO(sealed), "t")
    assert len(sealed) == len(header) + size + segments * TAG_BYTES
    if segments > 1:  # dropping the final segment is detected
        cut = len(header) + (segments - 1) * (SEGMENT_BYTES + TAG_BYTES)
        with pytest.raises(DecryptionError):
            DecryptingReader(io.BytesIO(sealed[:cut]), [key], "t").read()


class TestDeclaredVolume:
    def _policy(self, tmp_path: Path, location: dict[str, str]) -> Policy:
        return Policy.from_dict(
            {
                "name": "p",
                "schedule": {"every": "day", "at": "04:00"},
                "retention": {"max_age": "35d"},
                "tiers": [{"name": "local", "every": "day", "location": location}],
                "targets": [
                    {
                        "name": "app-config",
                        "kind": "directory",
                        "settings": {"path": str(_source(tmp_path))},
                    }
                ],
            }
        )

    def test_declared_is_reported_as_declared_not_verified(self, tmp_path):
        """A declared-volume store passes as 'declared, not verified'; undeclared plaintext fails."""
        store = str(tmp_path / "store")
        plain = self._policy(tmp_path, {"store": store})
        declared = self._policy(tmp_path, {"store": store, "encryption": "declared-volume"})
        results = []
        for policy in (plain, declared):
            target = Directory.from_spec(policy.target("app-config"), policy)
            point = target.create_backup()
            results.append(
                Encrypted().verify(
                    target, point, VerifyContext(now=point.created_at, policy=policy)
                )
            )
        failed, passed = results
        assert CheckStatus.FAIL == failed.status  # a plaintext archive on a plain store
        assert CheckStatus.PASS == passed.status
        assert passed.details.startswith("declared, not verified")
        assert passed.evidence["verified"] is False

    def test_the_audit_says_declared_not_verified(self, tmp_path):
        """The audit's encryption finding names declarations apart from proofs."""
        from backuppolicy.workflows import audit
        from backuppolicy.workflows.verify import run_checks

        store = str(tmp_path / "store")
        policy = self._policy(tmp_path, {"store": store, "encryption": "declared-volume"})
        target = Directory.from_spec(policy.target("app-config"), policy)
        point = target.create_backup()
        results = run_checks(
            policy, now=point.created_at, targets={"app-config": target}, checks=[Encrypted()]
        )
        report = audit(
            policy,
            now=point.created_at,
            targets={"app-config": target},
            checks=results,
            notifiers=[],
        )
        [finding] = [f for f in report.findings if f.clause.key == "encryption"]
        assert finding.compliant
        assert "1 declared, not verified" in finding.detail

    def test_a_client_encrypted_point_is_verified(self, tmp_path):
        """A client-side encrypted archive is verified, not declared."""
        target = _directory(tmp_path, _key_file(tmp_path))
        point = target.create_backup()
        result = Encrypted().verify(target, point, VerifyContext(now=point.created_at))
        assert (CheckStatus.PASS, True) == (result.status, result.evidence["verified"])
        assert "encrypted client-side" in result.details

    def test_only_declared_volume_is_accepted(self, tmp_path):
        """location.encryption accepts only 'declared-volume'."""
        with pytest.raises(PolicyError, match=r"location\.encryption.*declared-volume"):
            self._policy(tmp_path, {"store": str(tmp_path), "encryption": "yes"})
