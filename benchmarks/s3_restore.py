"""Benchmark: point-in-time restore of a versioned bucket with S3Bucket.restore_to_time.

Runs moto's ThreadedMotoServer on 127.0.0.1 in this process, fills a versioned bucket with
``--keys`` keys x ``--versions`` versions (1 KiB each), picks T between version 2 and 3, and
restores to T into another bucket and then in place. Every HTTP request the server answers is
counted by operation (server side), and an optional per-request latency emulates S3 round
trips (a sleep before each request is served, off the GIL, like a network wait).

    python benchmarks/s3_restore.py                       # 2000 x 5, no latency
    python benchmarks/s3_restore.py --latency-ms 50       # emulate 50 ms per request
    python benchmarks/s3_restore.py --del-before 200 --del-after 200 --new-after 200

The minimum for a restore into another bucket is ceil(entries / 1000) ListObjectVersions
pages plus one CopyObject per key alive at T; in place, one copy per key changed since T plus
one DeleteObjects per 1000 keys created after T.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import json
import math
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import MotoRequestHandler

from backuppolicy.aws import RetryPolicy
from backuppolicy.aws.s3 import S3Bucket

COUNTER: collections.Counter[str] = collections.Counter()
LATENCY = [0.0]
_LOCK = threading.Lock()
_RUN_WSGI = MotoRequestHandler.run_wsgi


def _classify(handler: Any) -> str:
    path, _, query = handler.path.partition("?")
    parts = path.lstrip("/").split("/", 1)
    has_key = len(parts) == 2 and parts[1] != ""
    method = handler.command
    if method == "GET" and not has_key:
        return "ListObjectVersions" if "versions" in query else "ListObjects"
    if method == "PUT" and has_key:
        if handler.headers.get("x-amz-copy-source"):
            return "UploadPartCopy" if "partNumber" in query else "CopyObject"
        return "PutObject"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    return f"{method} {'object' if has_key else 'bucket'}"


def _count(self: Any, code: Any = "-", size: Any = "-") -> None:  # noqa: ARG001 - werkzeug's signature
    with _LOCK:
        COUNTER[_classify(self)] += 1


def _slow_run_wsgi(self: Any) -> Any:
    if LATENCY[0]:
        time.sleep(LATENCY[0])
    return _RUN_WSGI(self)


def start_server() -> tuple[ThreadedMotoServer, str]:
    """Start moto with request counting and latency injection; return (server, endpoint)."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    MotoRequestHandler.log_request = _count  # type: ignore[method-assign]
    MotoRequestHandler.run_wsgi = _slow_run_wsgi  # type: ignore[method-assign]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def _next_second() -> None:
    time.sleep(1.0 - (time.time() % 1.0) + 0.02)


def _body(key: str, version: int) -> bytes:
    head = f"{key}:v{version}:".encode()
    return head + b"x" * (1024 - len(head))


def populate(s3: Any, args: argparse.Namespace) -> tuple[datetime, dict[str, bytes]]:
    """Fill bucket 'src'; return T and the expected live objects at T."""
    s3.create_bucket(Bucket="src")
    s3.put_bucket_versioning(Bucket="src", VersioningConfiguration={"Status": "Enabled"})
    base = [f"data/{i // 100:03d}/obj-{i:06d}.bin" for i in range(args.keys)]
    gone = base[: args.del_before]
    late = base[args.del_before : args.del_before + args.del_after]
    fresh = [f"new/obj-{i:06d}.bin" for i in range(args.new_after)]

    def run(fn: Any, items: list[str]) -> None:
        with cf.ThreadPoolExecutor(16) as pool:
            list(pool.map(fn, items))

    def put(version: int) -> Any:
        return lambda k: s3.put_object(Bucket="src", Key=k, Body=_body(k, version))

    for version in (1, 2):
        run(put(version), base)
    _next_second()
    run(lambda k: s3.delete_object(Bucket="src", Key=k), gone)
    _next_second()
    when = datetime.fromtimestamp(int(time.time()) + 0.5, UTC)
    _next_second()
    for version in range(3, args.versions + 1):
        run(put(version), base)
    run(put(1), fresh)
    run(lambda k: s3.delete_object(Bucket="src", Key=k), late)
    expected = {k: _body(k, 2) for k in base[args.del_before :]}
    return when, expected


def live(s3: Any, bucket: str) -> dict[str, bytes]:
    """Every live object of *bucket* with its bytes."""
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]

    def get(key: str) -> tuple[str, bytes]:
        return key, s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    with cf.ThreadPoolExecutor(16) as pool:
        return dict(pool.map(get, keys))


def restore_in_subprocess(endpoint: str, when: datetime, dest: str | None, workers: int) -> Any:
    """Run restore_to_time in a child process (as a user would), so that the client does not
    share the server's GIL; return the child's report as a dict."""
    argv = [
        sys.executable,
        __file__,
        "--child",
        endpoint,
        when.isoformat(),
        dest or "",
        str(workers),
    ]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)  # noqa: S603 - our own script
    return json.loads(done.stdout.splitlines()[-1])


def child(endpoint: str, when: str, dest: str, workers: str) -> None:
    """The child side of `restore_in_subprocess`: restore and print the report as JSON."""
    target = S3Bucket(
        "src",
        endpoint_url=endpoint,
        region="us-east-1",
        account_id="123456789012",
        max_pool_connections=max(32, int(workers)),
        retry=RetryPolicy(),
    )
    report = target.restore_to_time(
        datetime.fromisoformat(when), dest_bucket=dest or None, max_workers=int(workers)
    )
    print(
        json.dumps(
            {
                "restored": report.restored,
                "deleted": report.deleted,
                "skipped": dict(report.skipped),
                "requests": dict(report.requests),
            }
        )
    )


def timed(label: str, fn: Any, latency_ms: float) -> dict[str, Any]:
    """Run *fn* with the latency on; return wall time, server-side requests and the report."""
    COUNTER.clear()
    LATENCY[0] = latency_ms / 1000
    start = time.perf_counter()
    report = fn()
    wall = time.perf_counter() - start
    LATENCY[0] = 0.0
    return {
        "label": label,
        "latency_ms": latency_ms,
        "wall_s": round(wall, 3),
        "server_requests": dict(COUNTER),
        "report_requests": report["requests"],
        "restored": report["restored"],
        "deleted": report["deleted"],
        "skipped": report["skipped"],
    }


def main() -> int:
    """Populate, restore into a bucket and in place, print one JSON line per run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--del-before", type=int, default=0)
    parser.add_argument("--del-after", type=int, default=0)
    parser.add_argument("--new-after", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0])
    parser.add_argument("--workers", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--json", help="append results as JSON lines to this file")
    args = parser.parse_args()

    if args.child:
        child(*args.child)
        return 0
    server, endpoint = start_server()
    config = Config(max_pool_connections=64, retries={"max_attempts": 3})
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=config)
    start = time.perf_counter()
    when, expected = populate(s3, args)
    entries = args.keys * args.versions + args.new_after + args.del_before + args.del_after
    print(
        f"populated {entries} versions and delete markers in {time.perf_counter() - start:.1f} s;"
        f" T={when.isoformat()}; minimum lists={math.ceil(entries / 1000)},"
        f" copies={len(expected)}"
    )
    results = []
    for latency in args.latency_ms:
        for workers in args.workers:
            dest = f"dst-{int(latency)}-{workers}"
            s3.create_bucket(Bucket=dest)
            result = timed(
                f"into-bucket workers={workers}",
                lambda d=dest, w=workers: restore_in_subprocess(endpoint, when, d, w),
                latency,
            )
            result["correct"] = live(s3, dest) == expected
            results.append(result)
            print(json.dumps(result), flush=True)
    # In place last: it changes the source.
    workers = args.workers[-1]
    result = timed(
        f"in-place workers={workers}",
        lambda: restore_in_subprocess(endpoint, when, None, workers),
        args.latency_ms[-1],
    )
    result["correct"] = live(s3, "src") == expected
    results.append(result)
    print(json.dumps(result), flush=True)
    server.stop()
    if args.json:
        with Path(args.json).open("a", encoding="utf-8") as out:
            out.writelines(json.dumps(r) + "\n" for r in results)
    return 0 if all(r["correct"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
