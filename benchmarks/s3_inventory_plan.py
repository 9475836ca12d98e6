"""Benchmark: plan a point-in-time restore from an S3 Inventory report of 10^6 versions.

Generates a gzip CSV inventory data file (AWS's all-versions columns, every field quoted, keys
URL-encoded; see tests/aws/inventory_files.py) with ``--versions`` rows over ``--keys`` keys
(about 1 in 8 versions a delete marker, rows in shuffled order) in a temporary directory, then
times the planning path of the inventory engine on it: read + MD5 + reduce
(`InventoryState.add`), decide every key and write the S3 Batch Operations CSV manifest to a
local temporary file. Peak memory with tracemalloc (Python allocations) and the process's
peak RSS (``ru_maxrss``) are printed. No AWS, no network.

    python benchmarks/s3_inventory_plan.py                   # 1,000,000 versions, 250,000 keys
    python benchmarks/s3_inventory_plan.py --no-tracemalloc  # time without tracing overhead
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, quote_plus

from backuppolicy.aws._s3_inventory import InventoryState, read_csv_rows

COLUMNS = (
    "Bucket",
    "Key",
    "VersionId",
    "IsLatest",
    "IsDeleteMarker",
    "Size",
    "LastModifiedDate",
    "ETag",
    "StorageClass",
)
START = datetime(2026, 1, 1, tzinfo=UTC)


def generate(path: Path, versions: int, keys: int, seed: int = 1) -> str:
    """Write the inventory file; return its MD5 (as the manifest would list it)."""
    rng = random.Random(seed)
    rows: list[list[str]] = []
    per_key = [1] * keys
    for _ in range(versions - keys):
        per_key[rng.randrange(keys)] += 1
    for k, count in enumerate(per_key):
        key = quote_plus(f"data/{k % 97:02d}/object {k:07d}.bin", safe="/")
        second = rng.randrange(86400 * 30)
        for n in range(count):
            second += rng.randrange(1, 86400)
            stamp = START + timedelta(seconds=second)
            marker = n > 0 and rng.random() < 0.125
            rows.append(
                [
                    "bench-bucket",
                    key,
                    hashlib.md5(f"{k}-{n}".encode(), usedforsecurity=False).hexdigest()[:32],
                    "true" if n == count - 1 else "false",
                    "true" if marker else "false",
                    "" if marker else str(rng.randrange(1, 10**7)),
                    stamp.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    ""
                    if marker
                    else hashlib.md5(f"e{k}{n}".encode(), usedforsecurity=False).hexdigest(),
                    "" if marker else "STANDARD",
                ]
            )
    rng.shuffle(rows)
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    data = gzip.compress(text.getvalue().encode(), compresslevel=6)
    path.write_bytes(data)
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def plan(path: Path, md5: str, when: datetime, out: Path) -> dict[str, int]:
    """The inventory engine's planning: reduce, decide, write the batch manifest."""
    state = InventoryState(int(when.timestamp()), prefix="data/")
    with path.open("rb") as stream:
        state.add(read_csv_rows(stream, COLUMNS, md5=md5, where=str(path)))
    counts = {"versions": state.versions, "keys": state.keys, "copy": 0, "skipped": 0}
    with out.open("w", encoding="utf-8") as manifest:
        for decision in state.decisions(in_place=False):
            if decision.action == "copy":
                counts["copy"] += 1
                manifest.write(
                    f"bench-bucket,{quote(decision.key, safe='/')},{decision.version_id}\n"
                )
            else:
                counts["skipped"] += 1
    return counts


def main() -> None:
    """Generate, plan, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=250_000)
    parser.add_argument("--no-tracemalloc", action="store_true")
    parser.add_argument("--generate-into", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_into:  # the child: generate only (its memory is not the planner's)
        print(generate(Path(args.generate_into), args.versions, args.keys))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "inventory.csv.gz"
        began = time.perf_counter()
        md5 = subprocess.run(  # noqa: S603 - this interpreter, this script
            [
                sys.executable,
                __file__,
                "--versions",
                str(args.versions),
                "--keys",
                str(args.keys),
                "--generate-into",
                str(data),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        print(
            f"generated {args.versions:,} versions over {args.keys:,} keys: "
            f"{data.stat().st_size / 2**20:.1f} MiB gzip in {time.perf_counter() - began:.1f} s"
        )
        when = START + timedelta(days=40)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if not args.no_tracemalloc:
            tracemalloc.start()
        began, cpu = time.perf_counter(), time.process_time()
        counts = plan(data, md5, when, Path(tmp) / "manifest.csv")
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        peak = tracemalloc.get_traced_memory()[1] if not args.no_tracemalloc else 0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"plan: {elapsed:.2f} s wall, {cpu:.2f} s CPU  ({counts})")
        if peak:
            print(f"tracemalloc peak: {peak / 2**20:.0f} MiB (with tracing overhead on the time)")
        print(
            f"peak RSS: {rss / 1024:.0f} MiB (whole process; {rss_before / 1024:.0f} MiB before "
            "planning; the file was generated in a child process)"
        )
        print("target: < 10 s and < 1 GiB")


if __name__ == "__main__":
    main()
