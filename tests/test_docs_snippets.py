"""The documented calls work: `bp.restore` and `bp.audit` are functions, and the docs' code runs."""

from __future__ import annotations

import importlib
import re
import shutil
import sqlite3
import sys
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

import backuppolicy as bp


class TestPublicFunctions:
    def test_restore_and_audit_are_plain_functions(self) -> None:
        """`bp.restore(plan, confirm=True)` and `bp.audit(policy, now=now)` are functions."""
        assert isinstance(bp.restore, types.FunctionType)
        assert isinstance(bp.audit, types.FunctionType)
        assert (bp.restore.__name__, bp.audit.__name__) == ("restore", "audit")

    def test_no_module_shadows_them(self) -> None:
        """No public module is named like the functions: nothing to rebind, nothing shadowed."""
        for name in ("backuppolicy.restore", "backuppolicy.audit"):
            with pytest.raises(ModuleNotFoundError):
                importlib.import_module(name)
        from backuppolicy import workflows

        assert (workflows.restore, workflows.audit) == (bp.restore, bp.audit)
        assert sys.modules["backuppolicy.workflows._restore"].plan_restore is bp.plan_restore


# --------------------------------------------------------------------------------------------
# Every ```python block of the docs and of the generated runbook runs

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
SKIP = re.compile(r"^%\s*snippet:\s*skip\s*(?:-|:)?\s*(?P<reason>.+?)\s*$")
OUTSIDE = re.compile(r"""["'](/(?:etc|srv|var|opt|home|root|usr|mnt|tmp)(?:/[^"']*)?)["']""")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?:python|\{code-block\}\s+python)\s*$")


@attrs.frozen
class _Block:
    """One Python code block of a Markdown page."""

    where: str
    code: str
    skip: str | None


def _blocks(text: str, name: str) -> list[_Block]:
    """The ```python blocks of *text*, each with the skip reason of a ``% snippet: skip`` line before it."""
    lines = text.splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        found = FENCE.match(lines[index])
        if found is None:
            index += 1
            continue
        end = index + 1
        while not lines[end].startswith(found["fence"]):
            end += 1
        before = lines[index - 1] if index else ""
        reason = SKIP.match(before)
        body = [line for line in lines[index + 1 : end] if not line.startswith(":")]
        blocks.append(
            _Block(f"{name}:{index + 1}", "\n".join(body), reason["reason"] if reason else None)
        )
        index = end + 1
    return blocks


def _pages() -> list[str]:
    return sorted(
        str(path.relative_to(ROOT))
        for path in DOCS.rglob("*.md")
        if _blocks(path.read_text(encoding="utf-8"), path.name)
    )


def _run(blocks: list[_Block], namespace: dict[str, Any]) -> list[tuple[str, str]]:
    """Run *blocks* in order in one namespace; return the skipped ones with their reasons."""
    skipped = []
    for block in blocks:
        if block.skip is not None:
            skipped.append((block.where, block.skip))
            continue
        outside = OUTSIDE.search(block.code)
        if outside:  # never let the docs write to the machine: mark such a block instead
            raise AssertionError(
                f"{block.where}: uses {outside[1]!r}, outside the sandbox; "
                "mark it with '% snippet: skip - <reason>'"
            )
        try:
            exec(compile(block.code, block.where, "exec"), namespace)  # noqa: S102 - the docs' own code
        except Exception as exc:
            raise AssertionError(
                f"{block.where}: {type(exc).__name__}: {exc}\n{block.code}"
            ) from exc
    return skipped


@attrs.frozen
class _Sandbox:
    """The demo's moto world in a temporary directory, with the names the snippets assume."""

    root: Path
    namespace: dict[str, Any]


@pytest.fixture(name="sandbox")
def _sandbox(aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> _Sandbox:
    """The demo world (moto, the shop's resources, one backup of each target), cwd in *tmp_path*.

    ``policy.yaml`` and ``examples/`` (the recovery plan and its policy) point at that world.
    The namespace holds what the snippets take from their page's prose: ``bp``, ``policy``,
    ``targets``, ``log``/``my_testing_log``, ``now``, ``points``, ``psycopg`` ...
    """
    from backuppolicy import demo, workflows
    from backuppolicy.workflows.testlog import TestLog

    monkeypatch.setenv("AWS_DEFAULT_REGION", demo.REGION)
    monkeypatch.chdir(tmp_path)
    world = demo._build_world(tmp_path / "world")
    policy = demo._demo_policy(world)
    (tmp_path / "policy.yaml").write_text(policy.to_yaml(), encoding="utf-8")
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "policy.yaml").write_text(policy.to_yaml(), encoding="utf-8")
    shutil.copy(ROOT / "examples" / "recovery_plan.yaml", examples / "recovery_plan.yaml")
    # The snippets call with the default sleep: no poll, retry or health-check interval waits.
    from backuppolicy.workflows._restore import restore
    from backuppolicy.workflows.recovery import RecoveryPlan

    for function in (restore, RecoveryPlan.rehearse, RecoveryPlan.execute):
        monkeypatch.setitem(function.__kwdefaults__, "sleep", _no_wait)
    targets = workflows.build_targets(policy)
    now = datetime.now(UTC)
    report = workflows.backup(policy, now=now, targets=targets, notifiers=[], max_workers=1)
    assert report.ok, report
    log = TestLog.open("memory://")
    namespace: dict[str, Any] = {
        "__name__": "__docs__",
        "bp": bp,
        "policy": policy,
        "targets": targets,
        "log": log,
        "my_testing_log": log,
        "now": now,
        "points": list(targets["shop-db"].list_points()),
        "sys": sys,
        # restore-a-database.md connects its SQL check with psycopg (not a dependency here).
        "psycopg": types.SimpleNamespace(connect=sqlite3.connect),
        # test-a-restore.md: "resolver(resource) -> endpoint", e.g. through an SSH tunnel.
        "my_tunnel_resolver": lambda resource: resource.endpoint,
    }
    return _Sandbox(tmp_path, namespace)


def _no_wait(_seconds: float) -> None:
    """Polls in the snippets never wait."""


# What a page's prose says exists before its first snippet, made in the sandbox.


def _ec2_page(namespace: dict[str, Any], _root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ec2.md names instance i-0123456789abcdef0 and volume vol-0123456789abcdef0 in us-east-1."""
    import boto3
    import moto.ec2.models.elastic_block_store as ebs
    from moto.ec2.models import instances

    # moto draws ids at random: the page's ids are given to the resources it describes.
    with monkeypatch.context() as patch:
        patch.setattr(instances, "random_instance_id", lambda: "i-0123456789abcdef0")
        patch.setattr(ebs, "random_volume_id", lambda: "vol-0123456789abcdef0")
        boto3.client("ec2", region_name="us-east-1").run_instances(
            ImageId="ami-0d3c5a7f1e2b4c6d8",
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 10}}],
        )


def _rds_page(namespace: dict[str, Any], _root: Path, _monkeypatch: pytest.MonkeyPatch) -> None:
    """rds.md backs up instance orders-db and Aurora cluster billing in eu-west-2."""
    import boto3

    rds = boto3.client("rds", region_name="eu-west-2")
    rds.create_db_instance(
        DBInstanceIdentifier="orders-db",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="password-123",
    )
    rds.create_db_cluster(
        DBClusterIdentifier="billing",
        Engine="aurora-postgresql",
        MasterUsername="admin",
        MasterUserPassword="password-123",
    )


def _s3_page(namespace: dict[str, Any], _root: Path, _monkeypatch: pytest.MonkeyPatch) -> None:
    """s3.md and the point-in-time page use bucket assets (versioned, img/) in eu-west-1."""
    import boto3

    s3 = boto3.client("s3", region_name="eu-west-1")
    for bucket in ("assets", "assets-restored"):
        s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    s3.put_bucket_versioning(Bucket="assets", VersioningConfiguration={"Status": "Enabled"})
    for body in (b"v1", b"v2"):
        s3.put_object(Bucket="assets", Key="img/logo.png", Body=body)


def _local_page(namespace: dict[str, Any], root: Path, _monkeypatch: pytest.MonkeyPatch) -> None:
    """local-directories.md: what its first (skipped) block makes, in the sandbox."""
    from backuppolicy.core.targets import Destination
    from backuppolicy.local import Directory, DirectoryStore, S3Store

    etc = root / "etc-shop"
    etc.mkdir()
    (etc / "shop.conf").write_text("workers = 4\n")
    config = Directory(etc, name="shop-config", store=DirectoryStore(root / "backups"))
    namespace.update(
        Destination=Destination,
        config=config,
        offsite=S3Store(
            "acme-backups-offsite",
            "web-apps/",
            kms_key_id="alias/backups-offsite",
            region="eu-west-1",
        ),
        point=config.create_backup(reason="before the TLS upgrade"),
        check_config=lambda endpoint: (Path(endpoint) / "shop.conf").is_file(),
    )


def _audit_page(namespace: dict[str, Any], _root: Path, _monkeypatch: pytest.MonkeyPatch) -> None:
    """audit-notebook.md keeps its testing log in bucket acme-backup-logs."""
    import boto3

    boto3.client("s3", region_name="eu-west-2").create_bucket(
        Bucket="acme-backup-logs", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
    )


def _backend_page(namespace: dict[str, Any], root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """write-a-backend.md: the package shipping examples/sqlite_target.py is installed.

    As pip would leave it: the module on ``sys.path``, and a ``*.dist-info`` directory whose
    ``entry_points.txt`` declares the kind, found by `importlib.metadata`.
    """
    dist = root / "site-packages" / "sqlite_target_example-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sqlite-target-example\nVersion: 0.1\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[backuppolicy.targets]\nsqlite-file = sqlite_target:SqliteFile\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    monkeypatch.syspath_prepend(str(dist.parent))
    monkeypatch.delitem(sys.modules, "sqlite_target", raising=False)


PAGE_SETUP = {
    "docs/how-to/audit-notebook.md": _audit_page,
    "docs/how-to/ec2.md": _ec2_page,
    "docs/how-to/local-directories.md": _local_page,
    "docs/how-to/rds.md": _rds_page,
    "docs/how-to/s3-point-in-time-restore.md": _s3_page,
    "docs/how-to/s3.md": _s3_page,
    "docs/how-to/write-a-backend.md": _backend_page,
}


# The pages whose snippets run a whole recovery or audit (the slowest), marked ``slow``.
SLOW_PAGES = {"docs/how-to/audit-notebook.md", "docs/how-to/shop-recovery-runbook.md"}


class TestDocsSnippets:
    @pytest.mark.parametrize(
        "page",
        [
            pytest.param(page, marks=[pytest.mark.slow] if page in SLOW_PAGES else [])
            for page in _pages()
        ],
    )
    def test_page_runs(self, page: str, sandbox: _Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
        """Every ```python block of the page runs, in order, in the sandbox (or is marked skipped)."""
        if page in PAGE_SETUP:
            PAGE_SETUP[page](sandbox.namespace, sandbox.root, monkeypatch)
        blocks = _blocks((ROOT / page).read_text(encoding="utf-8"), page)
        _run(blocks, sandbox.namespace)

    @pytest.mark.slow
    def test_generated_runbook_runs(self, sandbox: _Sandbox) -> None:
        """The runbook `RecoveryPlan.to_markdown()` writes for the example plan runs too."""
        from backuppolicy.workflows.recovery import RecoveryPlan

        plan = RecoveryPlan.from_file("examples/recovery_plan.yaml")  # cwd: the sandbox
        _run(_blocks(plan.to_markdown(), "runbook"), sandbox.namespace)

    def test_skipped_blocks_are_the_listed_ones(self) -> None:
        """Only the blocks listed here are skipped, each marked in its page with its reason."""
        from backuppolicy.workflows.recovery import RecoveryPlan

        pages = [(page, (ROOT / page).read_text(encoding="utf-8")) for page in _pages()]
        runbook = RecoveryPlan.from_file(ROOT / "examples" / "recovery_plan.yaml").to_markdown()
        skipped = [
            (block.where.split(":")[0], block.skip)
            for name, text in [*pages, ("runbook", runbook)]
            for block in _blocks(text, name)
            if block.skip
        ]
        assert SKIPPED == skipped


_OUTLINE_STEPS = [
    "an outline: the image, type and network come from the original instance",
    "an outline: the check's settings and endpoint are in the step above",
    "the instance id comes from step replace-web",
    "an outline: the instance id is known only during the recovery",
    "an outline: the check's settings and endpoint are in the step above",
    "an outline: switching traffic is the plan's own hook or command",
]
SKIPPED = [
    (
        "docs/how-to/audit-notebook.md",
        (
            "opens its own demo world (moto), which cannot nest in the docs test's sandbox "
            "(tests/test_demo.py audits a demo world)"
        ),
    ),
    (
        "docs/how-to/local-directories.md",
        (
            "archives the machine's /etc/shop into /srv/backups; the docs test makes `config`, "
            "`point` and `offsite` in its sandbox"
        ),
    ),
    ("docs/how-to/local-directories.md", "restores into the machine's /srv/restore"),
    (
        "docs/how-to/run-the-policy-unattended.md",
        "runs the machine's policy against its real resources, as cron would",
    ),
    *[("docs/how-to/shop-recovery-runbook.md", reason) for reason in _OUTLINE_STEPS],
    (
        "docs/how-to/test-a-restore.md",
        "needs the restored PostgreSQL instance reachable from here",
    ),
    (
        "docs/how-to/try-your-policy-on-the-demo.md",
        "opens its own demo world (moto), which cannot nest in the docs test's sandbox",
    ),
    *[("runbook", reason) for reason in _OUTLINE_STEPS],
]
