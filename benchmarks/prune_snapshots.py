"""Prune 365 of 400 daily RDS snapshots with RdsInstance.delete_many on ThreadedMotoServer.

Data: one DB instance with ``--n`` manual snapshots owned by the library, snapshot *i*
backdated to *i* days + 1 hour old (moto's in-process backend is edited: the API cannot
backdate). The run lists the snapshots, plans ``MaxAge(days=35)`` and deletes the plan's
points with at most ``--workers`` concurrent calls, then checks that exactly the
snapshots younger than 35 days are left.

Requests are counted server-side (every request moto answers, by its ``Action=``), and
``--latency-ms`` delays every request on the server, as a round trip to AWS would (the
sleep is outside the GIL). The approach is the one of the peer harness in
``shared/bench/setup_s3.py``, re-implemented here so nothing outside the project is needed.
Like the peer harness, the prune runs in a child process (its own GIL, as a user's job
would) and the wall time includes that process's start-up; ``--in-process`` skips that.

    python benchmarks/prune_snapshots.py                  # no added latency
    python benchmarks/prune_snapshots.py --latency-ms 50  # the peer tool took ~21 s here
    python benchmarks/prune_snapshots.py --latency-ms 50 --workers 8   # the former fixed pool
    python benchmarks/prune_snapshots.py --latency-ms 50 --one-at-a-time
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}.items():
    os.environ.setdefault(_name, _value)

import boto3  # noqa: E402 - after the fake credentials
from botocore.config import Config  # noqa: E402

from backuppolicy.aws._client import RetryPolicy  # noqa: E402
from backuppolicy.aws.rds import RdsInstance  # noqa: E402
from backuppolicy.core.model import TAG_POLICY, TAG_REASON, TAG_TARGET, TAG_TOKEN  # noqa: E402
from backuppolicy.core.retention import MaxAge  # noqa: E402

# moto is imported by the server side only (start_server), so the child that prunes starts
# as fast as a user's job would.

REGION = "us-east-1"
DB = "orders-db"
POLICY = "bench"

COUNTER: collections.Counter[str] = collections.Counter()
LATENCY = [0.0]  # seconds added to every request
_LOCK = threading.Lock()
_ORIGINAL: dict[str, Any] = {}


def _count_request(self: Any, *_args: Any) -> None:  # replaces werkzeug's access log line
    with _LOCK:
        COUNTER[getattr(self, "action", None) or self.command] += 1


def _peek_action(self: Any) -> Any:  # read a form body's Action= and put the body back
    env = _ORIGINAL["make_environ"](self)
    self.action = None
    length = env.get("CONTENT_LENGTH")
    if env.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded") and length:
        data = env["wsgi.input"].read(int(length))
        env["wsgi.input"] = io.BytesIO(data)
        self.action = urllib.parse.parse_qs(data.decode()).get("Action", [None])[0]
    return env


def _slow_run_wsgi(self: Any) -> Any:  # sleeps off the GIL, like a round trip would
    if LATENCY[0]:
        time.sleep(LATENCY[0])
    return _ORIGINAL["run_wsgi"](self)


def start_server() -> tuple[Any, str]:
    """Start moto on 127.0.0.1 (free port) with request counting and latency injection."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: PLC0415
    from moto.moto_server.werkzeug_app import MotoRequestHandler  # noqa: PLC0415

    _ORIGINAL["run_wsgi"] = MotoRequestHandler.run_wsgi
    _ORIGINAL["make_environ"] = MotoRequestHandler.make_environ
    MotoRequestHandler.log_request = _count_request
    MotoRequestHandler.run_wsgi = _slow_run_wsgi
    MotoRequestHandler.make_environ = _peek_action
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def populate(endpoint: str, n: int, now: datetime) -> None:
    """One instance and *n* snapshots owned by the library, snapshot i aged i days + 1 hour."""
    rds = boto3.client("rds", endpoint_url=endpoint, region_name=REGION)
    rds.create_db_instance(
        DBInstanceIdentifier=DB,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin",
        MasterUserPassword="password1",
        AllocatedStorage=20,
    )
    from moto.core import DEFAULT_ACCOUNT_ID  # noqa: PLC0415 - server side only
    from moto.rds.models import rds_backends  # noqa: PLC0415

    snapshots = rds_backends[DEFAULT_ACCOUNT_ID][REGION].database_snapshots

    def create(i: int) -> None:
        created = now - timedelta(days=i, hours=1)
        snapshot_id = f"bp-{DB}-{created:%Y%m%dt%H%M%Sz}"
        tags = {TAG_POLICY: POLICY, TAG_TARGET: DB, TAG_REASON: "scheduled", TAG_TOKEN: str(i)}
        rds.create_db_snapshot(
            DBSnapshotIdentifier=snapshot_id,
            DBInstanceIdentifier=DB,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
        # Both times: for a snapshot that is no copy AWS reports them equal, and the
        # target dates points by OriginalSnapshotCreateTime.
        snapshots[snapshot_id].created = created.replace(tzinfo=None)
        snapshots[snapshot_id].original_snapshot_create_time = created.replace(tzinfo=None)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(n)))


def prune(
    endpoint: str, maxage: int, workers: int | None, *, one_at_a_time: bool
) -> dict[str, Any]:
    """List, plan and delete, as a user's prune job would; return phase timings.

    *workers* ``None`` keeps the library's defaults (adaptive: 8 deletes in flight at first,
    up to 32 while RDS does not throttle).
    """
    start = time.perf_counter()
    fixed: dict[str, Any] = {}
    if workers is not None:
        fixed = {"config": Config(max_pool_connections=max(10, workers)), "max_workers": workers}
    db = RdsInstance(
        DB, policy=POLICY, region=REGION, endpoint_url=endpoint, retry=RetryPolicy(), **fixed
    )
    db.client("rds")
    ready = time.perf_counter()
    plan = MaxAge(days=maxage).plan(db.list_points(), now=datetime.now(UTC))
    planned = time.perf_counter()
    if one_at_a_time:
        for point in plan.delete:
            db.delete(point)
        deleted = len(plan.delete)
    else:
        deleted = len(db.delete_many(plan.delete))
    done = time.perf_counter()
    limit = db.delete_limit(plan.delete[0]) if plan.delete else None
    return {
        "deleted": deleted,
        "peak_in_flight_limit": limit.peak if limit else None,
        "throttles": limit.throttles if limit else None,
        "client_setup_s": round(ready - start, 3),
        "list_and_plan_s": round(planned - ready, 3),
        "delete_s": round(done - planned, 3),
    }


def prune_in_subprocess(endpoint: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run `prune` in a child process (as a user would), so the client has its own GIL."""
    argv = [sys.executable, __file__, "--child", endpoint, "--maxage", str(args.maxage)]
    argv += ["--workers", str(args.workers)] if args.workers else []
    argv += ["--one-at-a-time"] if args.one_at_a_time else []
    done = subprocess.run(argv, check=True, capture_output=True, text=True)  # noqa: S603 - our own script
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="snapshots, one per day")
    parser.add_argument("--maxage", type=int, default=35, help="days")
    parser.add_argument(
        "--workers",
        type=int,
        help="fixed most concurrent deletes (default: the library's adaptive limit, 8 to 32)",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    parser.add_argument(
        "--one-at-a-time", action="store_true", help="delete() each point in turn instead"
    )
    parser.add_argument(
        "--in-process", action="store_true", help="run the client in the server's process"
    )
    parser.add_argument("--json", help="append the result as one JSON line to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        report = prune(args.child, args.maxage, args.workers, one_at_a_time=args.one_at_a_time)
        print(json.dumps(report))
        return 0

    server, endpoint = start_server()
    try:
        populate(endpoint, args.n, datetime.now(UTC))
        COUNTER.clear()
        LATENCY[0] = args.latency_ms / 1000
        start = time.perf_counter()
        if args.in_process:
            report = prune(endpoint, args.maxage, args.workers, one_at_a_time=args.one_at_a_time)
        else:
            report = prune_in_subprocess(endpoint, args)
        wall = time.perf_counter() - start
        LATENCY[0] = 0.0
        requests = dict(COUNTER)
        check = RdsInstance(DB, policy=POLICY, region=REGION, endpoint_url=endpoint)
        left = [p for p in check.list_points() if p.managed]
    finally:
        server.stop()
    expected_left = min(args.n, args.maxage)
    result = {
        "label": "backuppolicy-" + ("one-at-a-time" if args.one_at_a_time else "delete_many"),
        "n": args.n,
        "workers": 1 if args.one_at_a_time else (args.workers or "adaptive"),
        "latency_ms": args.latency_ms,
        "wall_s": round(wall, 3),
        **report,
        "requests": sum(requests.values()),
        "by_op": requests,
        "remaining": len(left),
        "expect_remaining": expected_left,
        "ok": len(left) == expected_left,
    }
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "a", encoding="utf-8") as out:  # noqa: PTH123 - a plain append
            out.write(json.dumps(result) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
