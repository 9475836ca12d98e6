"""Throughput of client-side archive encryption: encrypt + decrypt of ``--mb`` MB, vs plaintext.

Measures the stream layer alone (`EncryptingSink`, `DecryptingReader`: AES-256-GCM in 64 KiB
STREAM segments) on random data in memory, then a whole `Directory` backup + restore of a
directory holding ``--mb`` MB of random files, with and without a file key, so the cost of
encryption is seen next to gzip and tar. Run by hand; it asserts nothing about time.

    python benchmarks/archive_encryption.py            # 200 MB
    python benchmarks/archive_encryption.py --mb 50
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

from backuppolicy.core.secrets import Secret
from backuppolicy.local import Directory, DirectoryStore, FileKeySource
from backuppolicy.local._crypt import DecryptingReader, EncryptingSink

_MB = 1024 * 1024
_WRITE = 256 * 1024  # the archive writer's chunk (CHUNK)


def _rate(megabytes: float, seconds: float) -> str:
    return f"{megabytes / seconds:8.1f} MB/s ({seconds:.2f} s)"


def stream(megabytes: int, key: FileKeySource) -> None:
    data = os.urandom(megabytes * _MB)
    view = memoryview(data)
    started = time.perf_counter()
    out = io.BytesIO()
    sink = EncryptingSink(out, key)
    for start in range(0, len(data), _WRITE):
        sink.write(view[start : start + _WRITE])
    sink.finish()
    encrypted = time.perf_counter() - started
    started = time.perf_counter()
    reader = DecryptingReader(io.BytesIO(out.getvalue()), [key], "bench")
    size = 0
    while chunk := reader.read(_WRITE):
        size += len(chunk)
    decrypted = time.perf_counter() - started
    assert size == len(data)  # noqa: S101 - a benchmark's sanity check, not a timing assertion
    print(f"stream encrypt  {megabytes} MB: {_rate(megabytes, encrypted)}")
    print(f"stream decrypt  {megabytes} MB: {_rate(megabytes, decrypted)}")
    started = time.perf_counter()
    copied = io.BytesIO()
    for start in range(0, len(data), _WRITE):
        copied.write(view[start : start + _WRITE])
    plain = time.perf_counter() - started
    print(f"stream plaintext copy      : {_rate(megabytes, plain)}")


def directory(megabytes: int, key: FileKeySource | None, root: Path, label: str) -> None:
    src = root / "src"
    if not src.exists():
        src.mkdir()
        for i in range(megabytes // 10 or 1):
            (src / f"file-{i:03d}.bin").write_bytes(os.urandom(min(10, megabytes) * _MB))
    store = DirectoryStore(root / f"store-{label}")
    target = Directory(src, name="bench", store=store, encryption=key)
    started = time.perf_counter()
    point = target.create_backup()
    backed = time.perf_counter() - started
    started = time.perf_counter()
    target.restore_to(point, root / f"out-{label}")
    restored = time.perf_counter() - started
    print(f"directory {label:9} backup : {_rate(megabytes, backed)}")
    print(f"directory {label:9} restore: {_rate(megabytes, restored)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mb", type=int, default=200, help="megabytes of data (default 200)")
    args = parser.parse_args()
    key = FileKeySource(Secret(os.urandom(32).hex()))
    stream(args.mb, key)
    with tempfile.TemporaryDirectory(prefix="bp-bench-") as tmp:
        root = Path(tmp)
        directory(args.mb, None, root, "plaintext")
        directory(args.mb, key, root, "encrypted")


if __name__ == "__main__":
    main()
