"""The embedded demo: the seed policy run for 40 simulated days in an in-process AWS world.

``backuppolicy demo`` needs no AWS account: moto (in-process) plays AWS, with two RDS
databases, an EC2 instance with two volumes and a versioned S3 bucket in eu-west-2, a second
region (eu-west-1) as the off-site location, and a temporary directory of configuration files
and application code. The policy is the seed's (``examples/policy.yaml``, shipped inside the
package) with its resource ids and paths pointed at that world. Each simulated day at 04:05 GMT
the daily job runs (backups, weekly off-site copies spread by the rolling schedule), then the
35-day retention is planned and applied, and the copies due that day on the rolling integrity
schedule are checked (`integrity_due`). On day 6 a legal hold is placed on the oldest
database snapshot (the backup of day 1); it survives the pruning that removes its neighbours.
After the last day the backups are proven and the policy audited: the seed policy's world is
compliant, every verdict labelled "simulated" (moto plays AWS; stand-ins answer the probes of
restored databases and volumes; EBS integrity compares sizes only). Then `run` shows one
deliberately broken case, with its own log: a database restore that lost rows against the
fingerprint recorded at backup time.

`open_world` and `world` give the same world to a notebook or a script: after the simulated
days and the checks and restore tests, the policy, the targets and the testing log are yours to
audit and explore until the world is closed.

Your own policy runs on the same world: ``run(policy=...)``, ``open_world(policy=...)`` and
``backuppolicy demo --policy FILE`` take a `Policy` or a policy file. `for_world` says what it
changes so that the policy fits the world (see "Try your policy on the demo world" in the docs).

Needs the ``demo`` extra (moto and time-machine): ``pip install 'backuppolicy[demo]'``.
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import attrs

from backuppolicy.core.exceptions import BackendNotFoundError, PolicyError
from backuppolicy.core.model import RecoveryPoint

if TYPE_CHECKING:
    from backuppolicy.checks.probes import ProbeLike
    from backuppolicy.core.policy import Policy
    from backuppolicy.core.results import CheckResult
    from backuppolicy.core.targets import BackupTarget
    from backuppolicy.workflows.testlog import TestLog

__all__ = ["DemoWorld", "for_world", "load_seed_policy", "open_world", "run", "world"]

REGION: Final = "eu-west-2"
OFFSITE_REGION: Final = "eu-west-1"
START = datetime(2026, 10, 17, 4, 5, tzinfo=UTC)
_FAKE_ENV = {
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",  # ~300 AMIs with snapshots slow every listing down
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_DEFAULT_REGION": REGION,
}


def _load_policy(policy: Policy | str | os.PathLike[str] | None) -> Policy:
    from backuppolicy.core.policy import Policy  # noqa: PLC0415

    if policy is None:
        return load_seed_policy()
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, (str, os.PathLike)):
        return Policy.from_file(Path(policy))
    raise PolicyError.for_field("policy", "a Policy, a policy file's path or None", policy)


def load_seed_policy() -> Policy:
    """The seed policy (`examples/policy.yaml`) as shipped inside the package."""
    from backuppolicy.core.policy import Policy  # noqa: PLC0415

    text = resources.files("backuppolicy").joinpath("data/seed_policy.yaml").read_text("utf-8")
    return Policy.from_yaml(text, source="seed_policy.yaml")


@contextmanager
def _fake_aws_env() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in [*_FAKE_ENV, "AWS_PROFILE", "AWS_ENDPOINT_URL"]}
    os.environ.update(_FAKE_ENV)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_BACKENDS: dict[int, Any] = {}
"""One `AwsBackend` (one boto3 session) per open world, by the id of its moto mock."""


def _client(service: str, region: str) -> Any:
    """A client of the fake AWS world, made the way the library makes its own (`AwsBackend`).

    Clients share one session per world (`_BACKENDS`): botocore then loads each service's
    model once, instead of once per client.
    """
    from backuppolicy.aws import AwsBackend  # noqa: PLC0415 - imports boto3; the demo only

    if not _CURRENT_MOCK:  # a world built by a caller's own moto (tests): nothing to share
        return AwsBackend("demo-world", region=region).client(service)
    key = id(_CURRENT_MOCK[-1])
    backend = _BACKENDS.get(key)
    if backend is None:
        backend = _BACKENDS[key] = AwsBackend("demo-world", region=REGION)
    return backend.client(service, region=region)


_CURRENT_MOCK: list[object] = []
"""The moto mocks of the open worlds, innermost last (`_enter_world` pushes and pops)."""


def _protect_bucket(s3: Any, bucket: str) -> None:
    """Default SSE-KMS encryption and a full public access block (seed §7.5)."""
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def _build_world(root: Path) -> dict[str, Any]:
    """Create the AWS resources and directories of the demo; return the ids to put in the policy."""
    kms = _client("kms", REGION)
    local_key = kms.create_key(Description="backups")["KeyMetadata"]["Arn"]
    ec2 = _client("ec2", REGION)
    ec2.enable_ebs_encryption_by_default()
    # The isolated restore-test network (seed §3.4): its own VPC, subnets and security group.
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.99.{i}.0/24", AvailabilityZone=f"{REGION}{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in enumerate("ab")
    ]
    group = ec2.create_security_group(
        GroupName="restore-tests", Description="isolated restore tests", VpcId=vpc
    )["GroupId"]
    rds = _client("rds", REGION)
    rds.create_db_subnet_group(
        DBSubnetGroupName="restore-tests",
        DBSubnetGroupDescription="isolated restore tests",
        SubnetIds=subnets,
    )
    _offsite_isolation()
    for db in ("shop-prod", "blog-prod"):
        rds.create_db_instance(
            DBInstanceIdentifier=db,
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            AllocatedStorage=20,
            MasterUsername="demo",
            MasterUserPassword="demo-password-1",
            StorageEncrypted=True,
            KmsKeyId=local_key,
            BackupRetentionPeriod=35,  # the policy's settings (§1.2, §2.1): nothing drifts
            PreferredBackupWindow="04:00-05:00",
            PreferredMaintenanceWindow="sun:06:00-sun:06:30",
            CopyTagsToSnapshot=True,
        )
    instance = ec2.run_instances(
        ImageId="ami-0d3c5a7f1e2b4c6d8",  # moto accepts any image id when no AMIs are loaded
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        SubnetId=subnets[0],
        BlockDeviceMappings=[
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 10, "Encrypted": True}}
        ],
    )["Instances"][0]["InstanceId"]
    s3 = _client("s3", REGION)
    s3.create_bucket(
        Bucket="acme-web-assets", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    s3.put_bucket_versioning(
        Bucket="acme-web-assets", VersioningConfiguration={"Status": "Enabled"}
    )
    _protect_bucket(s3, "acme-web-assets")
    for i in range(5):
        s3.put_object(
            Bucket="acme-web-assets",
            Key=f"img/logo-{i}.png",
            Body=b"v1",
            ChecksumAlgorithm="SHA256",
        )
    offsite_s3 = _client("s3", OFFSITE_REGION)
    offsite_s3.create_bucket(
        Bucket="acme-backups-offsite",
        CreateBucketConfiguration={"LocationConstraint": OFFSITE_REGION},
    )
    # Versioned like the source: each weekly copy of an object is a version of its own, so the
    # older copies' manifests still find their versions (unversioned, a copy overwrites them).
    offsite_s3.put_bucket_versioning(
        Bucket="acme-backups-offsite", VersioningConfiguration={"Status": "Enabled"}
    )
    _protect_bucket(offsite_s3, "acme-backups-offsite")
    offsite_kms = _client("kms", OFFSITE_REGION)
    key = offsite_kms.create_key(Description="off-site backups")["KeyMetadata"]["KeyId"]
    offsite_kms.create_alias(AliasName="alias/backups-offsite", TargetKeyId=key)
    topic = _client("sns", REGION).create_topic(Name="backup-alerts")["TopicArn"]
    _install_hold_deny()

    # The directory archives' key (seed §7.5, §8.3): a random 32-byte key in a file of the
    # run directory, named by reference in the policy like /etc/backuppolicy/archive.key.
    root.mkdir(parents=True, exist_ok=True)
    archive_key = root / "archive.key"
    archive_key.write_text(os.urandom(32).hex() + "\n")
    archive_key.chmod(0o600)
    config = root / "etc-shop"
    code = root / "srv-shop"
    for folder, files in (
        (config, {"shop.conf": "workers = 4\n", "db.conf": "host = shop-prod\n"}),
        (code, {"app.py": "print('shop')\n", "lib/util.py": "X = 1\n", "debug.log": "noise\n"}),
    ):
        for name, content in files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    return {
        "instance": instance,
        "config": config,
        "code": code,
        "topic": topic,
        "root": root,
        "archive_key": archive_key,
        "security_group": group,
        "subnet": subnets[0],
    }


def _offsite_isolation() -> None:
    """The restore-test subnet group in the off-site region too, for integrity restores there.

    The off-site copies of the databases are restored in their own region (seed §4.2); the
    policy's isolation profile names the subnet group ``restore-tests``, so it exists in both.
    """
    ec2 = _client("ec2", OFFSITE_REGION)
    vpc = ec2.create_vpc(CidrBlock="10.98.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.98.{i}.0/24", AvailabilityZone=f"{OFFSITE_REGION}{az}"
        )["Subnet"]["SubnetId"]
        for i, az in enumerate("ab")
    ]
    _client("rds", OFFSITE_REGION).create_db_subnet_group(
        DBSubnetGroupName="restore-tests",
        DBSubnetGroupDescription="isolated restore tests (off-site copies)",
        SubnetIds=subnets,
    )


def _install_hold_deny() -> None:
    """Install the hold deny statement (§2.3) as the permissions boundary of the backup role.

    `backuppolicy.aws.iam.hold_deny_policy`, as ``backuppolicy export iam --holds`` prints it:
    the world's RDS targets can then declare ``hold_deny_installed``. moto stores IAM
    policies but enforces none, so this is a simulated enforcement, like the rest of the world.
    """
    import json  # noqa: PLC0415

    from backuppolicy.aws.iam import hold_deny_policy  # noqa: PLC0415

    iam = _client("iam", REGION)
    arn = iam.create_policy(
        PolicyName="backuppolicy-legal-hold-deny",
        PolicyDocument=json.dumps(hold_deny_policy()),
    )["Policy"]["Arn"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(
        RoleName="backuppolicy-runner",
        AssumeRolePolicyDocument=json.dumps(trust),
        PermissionsBoundary=arn,
    )


_SEED_PATHS: Final = {"shop-config": "config", "shop-code": "code"}


def for_world(policy: Policy, world: Mapping[str, Any]) -> Policy:
    """*policy* with what only the demo world knows filled in, so that it runs there.

    The demo world is fixed: RDS instances ``shop-prod`` and ``blog-prod``, an EC2 instance
    with a data volume, the versioned bucket ``acme-web-assets`` (all in eu-west-2), the
    off-site bucket ``acme-backups-offsite`` and the key ``alias/backups-offsite`` in
    eu-west-1, and an SNS topic. Your policy keeps its schedule, retention, tiers, objectives
    and checks; only these settings change:

    * every ``ec2-instance`` target backs up the world's instance;
    * every ``directory`` target backs up a directory of the world (the seed's
      ``shop-config`` and ``shop-code`` their sample files, any other a small sample tree);
    * the ``local`` tier's store is a directory of the world;
    * the restore-test isolation uses the world's subnet and security group;
    * SNS notifications go to the world's topic;
    * ``rds-instance`` and ``aurora-cluster`` targets declare ``hold_deny_installed``: the
      world installs the hold deny statement as the permissions boundary of its backup role
      (moto does not enforce IAM: the audit's verdict on it is simulated, as every other).

    RDS and S3 targets must name the world's databases and bucket (``resource_id`` /
    ``bucket``); other kinds run as your policy says.

    Args:
        policy: The policy to adapt.
        world: What `_build_world` made (the ids of the world's resources).
    """
    from backuppolicy.core.policy import Policy  # noqa: PLC0415

    data: dict[str, Any] = policy.to_dict()  # JSON-shaped, edited in place
    for target in data["targets"]:
        settings = target.setdefault("settings", {})
        if target["kind"] == "ec2-instance":
            settings["instance_id"] = world["instance"]
        elif target["kind"] == "directory":
            _directory_for_world(target["name"], settings, world)
        elif target["kind"] in {"rds-instance", "aurora-cluster"}:
            settings["hold_deny_installed"] = True
    for tier in data.get("tiers", []):
        if tier["name"] == "local" and "store" in tier.get("location", {}):
            tier["location"]["store"] = str(Path(world["root"]) / "store-local")
    isolation = data.get("verification", {}).get("isolation")
    if isolation:
        isolation["security_group_ids"] = [world["security_group"]]
        isolation["subnet_id"] = world["subnet"]
        isolation.pop("availability_zone", None)
    for notification in data.get("notifications", []):
        if notification["kind"] == "sns":
            notification["settings"]["topic_arn"] = world["topic"]
    return Policy.from_dict(data)


def _directory_for_world(name: str, settings: dict[str, Any], world: Mapping[str, Any]) -> None:
    """Point a directory target at the world: its seeded folder, or a small sample tree."""
    seeded = _SEED_PATHS.get(name)
    if seeded is not None:
        settings["path"] = str(world[seeded])
    else:
        folder = Path(world["root"]) / "dirs" / name
        (folder / "sample").mkdir(parents=True, exist_ok=True)
        (folder / "sample" / "README.txt").write_text(f"{name}\n")
        settings["path"] = str(folder)
    if "encryption" in settings:  # the archive key the world made, by reference
        settings["encryption"] = {"key": f"file:{world['archive_key']}"}


def _demo_policy(world: dict[str, Any], policy: Policy | None = None) -> Policy:
    """The seed policy (or *policy*) with its settings pointed at the demo world."""
    return for_world(policy if policy is not None else load_seed_policy(), world)


def _write(out: TextIO | None, text: str = "") -> None:
    if out is not None:
        out.write(text + "\n")
        out.flush()


def _requirements() -> tuple[Any, Any]:
    """The demo's optional dependencies: the time_machine module and moto's ``mock_aws``."""
    try:
        import time_machine  # noqa: PLC0415
        from moto import mock_aws  # noqa: PLC0415
    except ImportError as exc:
        message = f"the demo needs moto and time-machine: pip install 'backuppolicy[demo]' ({exc})"
        raise BackendNotFoundError(message, name="demo") from exc
    from backuppolicy._moto import patch_moto  # noqa: PLC0415

    patch_moto()
    return time_machine, mock_aws


def _forget_mock(mock: object) -> None:
    """Drop *mock*'s clients when its world closes (they would talk to a moto that is gone)."""
    _BACKENDS.pop(id(mock), None)
    if mock in _CURRENT_MOCK:
        _CURRENT_MOCK.remove(mock)


def _enter_world(
    stack: ExitStack, policy: Policy | None = None
) -> tuple[Path, Policy, dict[str, BackupTarget], _StandIns]:
    """Enter the demo's temp dir, fake AWS and clock on *stack*; build the world and its policy."""
    from backuppolicy import workflows  # noqa: PLC0415

    time_machine, mock_aws = _requirements()
    root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="backuppolicy-demo-")))
    stack.enter_context(_fake_aws_env())
    mock = stack.enter_context(mock_aws())
    _CURRENT_MOCK.append(mock)
    stack.callback(_forget_mock, mock)
    stack.enter_context(time_machine.travel(START - timedelta(hours=1), tick=True))
    adapted = _demo_policy(_build_world(root), policy)
    return root, adapted, workflows.build_targets(adapted), _stand_ins(adapted, root)


@attrs.frozen
class _Simulation:
    """What the simulated days did: the held point, what was pruned and why, failures."""

    held: RecoveryPoint | None
    pruned: Counter[str]
    pruned_reasons: Counter[str]
    failures: list[str]
    integrity: Counter[str] = attrs.field(factory=Counter)


def _simulate(
    policy: Policy,
    targets: dict[str, BackupTarget],
    *,
    days: int,
    out: TextIO | None,
    log: TestLog,
    stand_ins: _StandIns,
) -> _Simulation:
    """Run *days* daily jobs, a line per day to *out*.

    Each day: the backups and copies, the day-6 legal hold, the pruning, and the integrity
    checks of the copies due that day on the rolling schedule (`integrity_due`: every copy
    once per integrity window), recorded in *log*.
    """
    import time_machine  # noqa: PLC0415

    from backuppolicy import workflows  # noqa: PLC0415
    from backuppolicy.workflows.verify import integrity_due  # noqa: PLC0415

    integrity: Counter[str] = Counter()
    pruned: Counter[str] = Counter()
    pruned_reasons: Counter[str] = Counter()
    failures: list[str] = []
    held: RecoveryPoint | None = None
    s3 = _s3()
    for day in range(days):
        now = START + timedelta(days=day)
        with time_machine.travel(now, tick=False):
            s3.put_object(
                Bucket="acme-web-assets",
                Key=f"img/logo-{day % 5}.png",
                Body=f"v{day}".encode(),
                ChecksumAlgorithm="SHA256",
            )
            report = workflows.backup(policy, now=now, targets=targets, max_workers=1, notifiers=[])
            failures += [f"day {day}: {r.target}: {r.error}" for r in report.failed]
            # One listing per target a day: the backup run's own (it listed each target before
            # backing it up, `RunReport.listed`), shared by the hold, the retention plan and the
            # integrity schedule (apply re-reads every point before deleting it). A target the
            # run cannot vouch for (a failed step) is listed again.
            handed = report.listed()
            listed = {
                name: handed[name] if name in handed else list(target.list_points())
                for name, target in targets.items()
            }
            hold_note = ""
            if day == _HOLD_DAY - 1:  # the day the lawyers call
                held = _place_demo_hold(policy, targets, now, listed)
                if held is not None:
                    made = (held.created_at - START).days + 1
                    hold_note = (
                        f", legal hold on {held.target}:{held.id} (the backup of day {made})"
                    )
                    listed[held.target] = list(targets[held.target].list_points())
            plan = workflows.plan_retention(policy, now=now, targets=targets, listed=listed)
            # One delete at a time: in-process moto is not thread-safe (see _check_and_restore_test).
            applied = workflows.apply(plan, max_workers=1)
            failures += [f"day {day}: delete {o.point.id}: {o.reason}" for o in applied.failed]
            for point in applied.deleted:
                pruned[f"{point.target}/{point.tier}"] += 1
                pruned_reasons.update(plan.reasons[point.id])
            gone = {(p.target, p.id) for p in applied.deleted}
            checked = integrity_due(
                policy,
                now=now,
                targets=targets,
                listed={
                    name: [p for p in points if (p.target, p.id) not in gone]
                    for name, points in listed.items()
                },
                log=log,
                probes=stand_ins.integrity_probes,
                endpoint_resolver=stand_ins.resolvers,
                notifiers=[],
                ran_by="backuppolicy demo",
                max_workers=1,
                ebs_direct=False,  # moto's EBS direct APIs know no EC2 snapshot: size only
                simulated=True,
            )
            integrity.update(r.status.value for r in checked)
            failures += [
                f"day {day + 1}: integrity of {r.target}:{r.point_id}: {r.status.value}: {r.details}"
                for r in checked
                if not r.ok
            ]
            copies = ", ".join(f"{c.target}->{c.tier}" for c in report.copies)
            bad = sum(not r.ok for r in checked)
            _write(
                out,
                f"day {day + 1:2d} {now:%Y-%m-%d %H:%M} GMT: {len(report.created)} backups"
                f"{', copies: ' + copies if copies else ''}"
                f"{', pruned ' + str(len(applied.deleted)) if applied.deleted else ''}"
                f"{', FAILED ' + str(len(report.failed)) if report.failed else ''}"
                f"{hold_note}"
                f"{', integrity-checked ' + str(len(checked)) if checked else ''}"
                f"{' (' + str(bad) + ' NOT OK)' if bad else ''}",
            )
    return _Simulation(held, pruned, pruned_reasons, failures, integrity)


_HOLD_DAY: Final = 6
"""The simulated day (counted from 1, as printed) on which the demo places its legal hold."""


def _proof_time(days: int) -> datetime:
    """When the backups are proven: 09:05 GMT of the last simulated day, after its backups."""
    return START + timedelta(days=days - 1, hours=5)


def run(
    *,
    days: int = 40,
    out: TextIO | None = None,
    report_path: Path | None = None,
    run_dir: Path | None = None,
    policy: Policy | str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Run the demo for *days* simulated days; print to *out*; return a JSON-ready summary.

    *policy* (a `Policy` or a policy file) runs instead of the seed policy, adapted to the
    world by `for_world`.

    After the last day the demo proves the backups: verifications and integrity checks of
    every copy, a restore test of each application with a data probe, a rehearsal of the
    recovery plan, and the audit of the policy; every result goes to a backup testing log, and
    the compliance report is written as HTML.

    What the demo leaves behind goes into its own run directory, *run_dir* (default: a new
    directory ``backuppolicy-demo-*`` under the system's temp dir, never shared with another
    run): the backup testing log ``testing-log.jsonl`` and, unless *report_path* says
    otherwise, the report ``report.html``. The summary names both (``run_dir``, ``proof.report``).

    Raises:
        BackendNotFoundError: moto or time-machine is not installed (the ``demo`` extra).
        PolicyError: *policy* is not valid (or not a policy).

    .. versionchanged:: 0.2
       *policy*.
    """
    chosen = _load_policy(policy)
    time_machine, _ = _requirements()
    if run_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix="backuppolicy-demo-"))
    run_dir.mkdir(parents=True, exist_ok=True)

    from backuppolicy.workflows.testlog import TestLog  # noqa: PLC0415

    started = time.monotonic()
    with ExitStack() as stack:
        _, adapted, targets, stand_ins = _enter_world(stack, chosen)
        log = TestLog.open(run_dir / "testing-log.jsonl", ran_by="backuppolicy demo")
        _write(
            out, f"backuppolicy demo: policy {adapted.name!r}, {len(targets)} targets, {days} days"
        )
        _write(out, f"  targets: {', '.join(f'{t.name} ({t.kind})' for t in adapted.targets)}")
        _write(out, "  tiers: " + ", ".join(t.describe() for t in adapted.tiers))
        _write(out, f"  retention: {adapted.retention.describe()}\n")
        days_run = _simulate(adapted, targets, days=days, out=out, log=log, stand_ins=stand_ins)
        summary = _summarise(
            adapted,
            targets,
            days_run.held,
            days_run.pruned,
            days_run.pruned_reasons,
            days_run.failures,
        )
        summary["integrity"] = dict(sorted(days_run.integrity.items()))
        _print_summary(out, summary)
        proof_at = _proof_time(days)
        with time_machine.travel(proof_at, tick=True):
            summary["proof"] = _prove(
                adapted,
                targets,
                proof_at,
                log,
                stand_ins,
                out,
                report_path or run_dir / "report.html",
            )
            summary["broken_case"] = _broken_case(adapted, targets, proof_at, stand_ins, out)
        summary["ok"] = bool(summary["ok"] and summary["proof"]["ok"])
    summary["run_dir"] = str(run_dir)
    summary["seconds"] = round(time.monotonic() - started, 1)
    _write(out, f"\n{'ok' if summary['ok'] else 'FAILED'} in {summary['seconds']} s")
    return summary


@attrs.frozen
class DemoWorld:
    """The demo world after its simulated days, open for exploring (see `open_world`).

    The in-process AWS (moto), the fake credentials in ``os.environ``, the simulated clock
    (time-machine, running from `now`) and the temporary directory stay in place until
    `close` is called: use the targets and the log only while the world is open.

    Attributes:
        policy: The seed policy pointed at the demo world.
        targets: The policy's targets by name, built as ``backuppolicy backup`` builds them.
        log: The backup testing log (in memory) with the checks and restore tests run at `now`.
        now: When the checks and restore tests ran: 09:05 GMT on the last simulated day.
        start: The first simulated day; the world has no history before it, so audits pass it
            as ``since=``.
        failures: Backups or deletions that failed during the simulated days (none expected).
    """

    policy: Policy
    targets: dict[str, BackupTarget] = attrs.field(repr=lambda t: f"<{len(t)} targets>")
    log: TestLog
    now: datetime
    start: datetime = START
    failures: tuple[str, ...] = ()
    _stack: ExitStack = attrs.field(factory=ExitStack, repr=False, eq=False)

    def close(self) -> None:
        """Tear the world down: moto, the environment, the clock and the temp dir. Idempotent."""
        self._stack.close()


def open_world(
    days: int = 10, *, policy: Policy | str | os.PathLike[str] | None = None
) -> DemoWorld:
    """Build the demo world, simulate *days* days, run the checks and restore tests; keep it open.

    The same world as `run` (the seed policy, its targets in an in-process moto AWS, the
    daily backups, weekly off-site copies, the day-6 legal hold on the backup of day 1 and the pruning), but quiet:
    it prints nothing, writes no HTML report and skips the recovery rehearsal. The checks,
    integrity checks and a restore test of every target (databases with a SQL data probe
    against a stand-in, as in `run`) go into `DemoWorld.log`. Call `DemoWorld.close` when
    done, or use `world`.

    Args:
        days: How many days to simulate (at least 1); about a second per day.
        policy: Your policy (a `Policy` or a policy file) instead of the seed policy; it is
            adapted to the world by `for_world`, and `DemoWorld.policy` is the adapted one.

    .. versionchanged:: 0.2
       *policy*.

    Returns:
        The open `DemoWorld`.

    Raises:
        PolicyError: *days* is not an int >= 1.
        BackendNotFoundError: moto or time-machine is not installed (the ``demo`` extra).

    Example:
        >>> from backuppolicy import demo
        >>> w = demo.open_world(days=10)  # doctest: +SKIP
        >>> [(e.target, e.check) for e in w.log.failures()]  # doctest: +SKIP
        [('shop-config', 'encrypted'), ('shop-code', 'encrypted')]
        >>> w.close()  # doctest: +SKIP
    """
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise PolicyError.for_field("days", "an int >= 1", days)
    chosen = _load_policy(policy)
    time_machine, _ = _requirements()
    from backuppolicy.workflows.testlog import TestLog  # noqa: PLC0415

    stack = ExitStack()
    try:
        _, adapted, targets, stand_ins = _enter_world(stack, chosen)
        log = TestLog.open("memory://", ran_by="backuppolicy demo")
        days_run = _simulate(adapted, targets, days=days, out=None, log=log, stand_ins=stand_ins)
        now = _proof_time(days)
        stack.enter_context(time_machine.travel(now, tick=True))
        _check_and_restore_test(adapted, targets, now, log, None, stand_ins)
    except BaseException:
        stack.close()
        raise
    return DemoWorld(
        policy=adapted,
        targets=targets,
        log=log,
        now=now,
        failures=tuple(days_run.failures),
        stack=stack,
    )


@contextmanager
def world(
    days: int = 10, *, policy: Policy | str | os.PathLike[str] | None = None
) -> Iterator[DemoWorld]:
    """`open_world` as a context manager: the world is torn down when the block ends.

    Args:
        days: How many days to simulate (at least 1).
        policy: Your policy instead of the seed policy (see `open_world`).

    Yields:
        The open `DemoWorld`.

    Raises:
        PolicyError: *days* is not an int >= 1.
        BackendNotFoundError: moto or time-machine is not installed (the ``demo`` extra).

    Example:
        >>> from backuppolicy import audit, demo
        >>> with demo.world(days=10) as w:  # doctest: +SKIP
        ...     report = audit(
        ...         w.policy, now=w.now, targets=w.targets, log=w.log, since=w.start, notifiers=[]
        ...     )
        ...     print(report.summary(failures_only=True))
    """
    opened = open_world(days, policy=policy)
    try:
        yield opened
    finally:
        opened.close()


_ORDERS = 42  # rows in the demo's stand-in database


def _stand_in_database(root: Path) -> tuple[Any, str, str]:
    """A database with real data for the SQL probes of restored databases: connect, endpoint, words.

    moto runs no database engine, so a restored RDS instance cannot answer queries. The probe
    connects to a stand-in instead: the PostgreSQL server named by ``BACKUPPOLICY_DEMO_PG``
    (``host:port:dbname``, user ``postgres``, with pg8000 installed) when given, else an SQLite
    file. The evidence and the output say which.
    """
    import sqlite3  # noqa: PLC0415

    dsn = os.environ.get("BACKUPPOLICY_DEMO_PG")
    if dsn:
        import pg8000.dbapi  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: PLC0415

        host, port, database = dsn.split(":", 2)

        def connect(_endpoint: Any) -> Any:
            return pg8000.dbapi.connect(
                user="postgres", host=host, port=int(port), database=database
            )

        with connect(None) as conn:
            cursor = conn.cursor()
            cursor.execute("create table if not exists orders (id int primary key)")
            cursor.execute("delete from orders")
            for i in range(_ORDERS):
                cursor.execute("insert into orders values (%s)", (i,))
            conn.commit()
        return (
            connect,
            dsn,
            f"PostgreSQL at {host}:{port}/{database} standing in for the restored instance",
        )
    path = _orders_file(root / "orders.sqlite", _ORDERS)
    return (
        sqlite3.connect,
        str(path),
        f"SQLite file {path.name} standing in for the restored instance",
    )


def _orders_file(path: Path, rows: int) -> Path:
    """An SQLite file at *path* with a table ``orders`` of *rows* rows."""
    import sqlite3  # noqa: PLC0415

    conn = sqlite3.connect(path)
    with conn:
        conn.execute("create table orders (id integer primary key)")
        conn.executemany("insert into orders values (?)", [(i,) for i in range(rows)])
    conn.close()
    return path


def _stand_in_volume(policy: Policy, root: Path) -> tuple[Path, str]:
    """A directory standing in for the restored web server's volumes: path and words.

    moto restores EBS snapshots as API objects without blocks, so nothing can be read from the
    restored volumes; the probe reads the shop's code from this stand-in instead.
    """
    code = _shop_code(policy)
    volume = root / "stand-in-web-server-volume"
    volume.mkdir(exist_ok=True)
    if code is not None:
        (volume / "app.py").write_bytes((code / "app.py").read_bytes())
    else:
        (volume / "app.py").write_text("print('shop')\n")
    return (
        volume,
        f"directory {volume.name} standing in for the restored volumes (moto keeps no blocks)",
    )


def _shop_code(policy: Policy) -> Path | None:
    try:
        return Path(str(policy.target("shop-code").settings["path"]))
    except LookupError:
        return None


@attrs.frozen
class _StandIns:
    """The probes of every target and the stand-ins they read where moto keeps no data.

    Attributes:
        restore_probes: The data probes of each target's restore test.
        integrity_probes: The probes of the databases' integrity restores.
        resolvers: Where the probes of restored databases and volumes connect (stand-ins).
        database: What stands in for the restored databases, in words.
        database_endpoint: Its endpoint (an SQLite file, or ``host:port:db``).
        root: The world's directory.
    """

    restore_probes: dict[str, list[ProbeLike]]
    integrity_probes: dict[str, list[ProbeLike]]
    resolvers: dict[str, Any]
    database: str
    database_endpoint: str
    root: Path


def _stand_ins(policy: Policy, root: Path) -> _StandIns:
    """Each target's data probes, and the stand-ins of the restored databases and volumes.

    The restored directories and the restored S3 prefix are read for real (files and objects
    the world holds); the restored databases and volumes have no data in moto, so their probes
    read stand-ins, which the evidence names.
    """
    from backuppolicy.checks.probes import (  # noqa: PLC0415
        FileProbe,
        S3ObjectProbe,
        SqlProbe,
        StaticEndpoint,
    )

    connect, endpoint, words = _stand_in_database(root)
    database = SqlProbe("select count(*) from orders", expect=_ORDERS, connect=connect)
    volume, volume_words = _stand_in_volume(policy, root)
    probes: dict[str, list[ProbeLike]] = {}
    integrity: dict[str, list[ProbeLike]] = {}
    resolvers: dict[str, Any] = {}
    for spec in policy.targets:
        if spec.kind in {"rds-instance", "aurora-cluster"}:
            probes[spec.name] = integrity[spec.name] = [database]
            resolvers[spec.name] = StaticEndpoint(endpoint, description=words)
        elif spec.kind in {"ec2-instance", "ebs-volume"}:
            probes[spec.name] = [FileProbe({"app.py": None})]
            resolvers[spec.name] = StaticEndpoint(str(volume), description=volume_words)
        elif spec.kind == "s3-bucket":
            probes[spec.name] = [S3ObjectProbe({"img/logo-0.png": None})]
        elif spec.kind == "directory":
            path = Path(str(spec.settings["path"]))
            excluded = [str(x) for x in spec.settings.get("exclude", ())]
            backed_up = sorted(
                p.relative_to(path).as_posix()
                for p in path.rglob("*")
                if p.is_file() and not any(fnmatch.fnmatch(p.name, x) for x in excluded)
            )
            probes[spec.name] = [FileProbe(dict.fromkeys(backed_up))] if backed_up else []
    return _StandIns(probes, integrity, resolvers, words, endpoint, root)


def _demo_checks(policy: Policy, stand_ins: _StandIns) -> list[Any]:
    """The policy's default checks, with the integrity check the demo world can run.

    Databases are restored into isolation and probed (against the stand-in); EBS snapshots are
    restored to volumes and compared by size only, because moto's EBS direct APIs do not know
    the snapshots EC2 makes.
    """
    from backuppolicy.checks.integrity import IntegrityCheck  # noqa: PLC0415
    from backuppolicy.workflows.verify import default_checks  # noqa: PLC0415

    probes = next(iter(stand_ins.integrity_probes.values()), [])
    demo_integrity = IntegrityCheck(restore_databases=True, probes=probes, ebs_direct=False)
    return [
        demo_integrity if isinstance(check, IntegrityCheck) else check
        for check in default_checks(policy)
    ]


def _check_and_restore_test(  # noqa: PLR0917 - an internal step of run() and open_world()
    policy: Policy,
    targets: Mapping[str, BackupTarget],
    now: datetime,
    log: TestLog,
    out: TextIO | None,
    stand_ins: _StandIns,
) -> tuple[list[CheckResult], list[CheckResult]]:
    """Run the checks (the newest copy of each tier) and a restore test of every target into *log*.

    Everything runs in a simulated world (moto plays AWS), so every result is marked
    ``simulated``; the probes are those of `_stand_ins`.
    """
    from backuppolicy.workflows.verify import restore_test, run_checks  # noqa: PLC0415

    checks = run_checks(
        policy,
        now=now,
        targets=targets,
        log=log,
        checks=_demo_checks(policy, stand_ins),
        notifiers=[],
        simulated=True,
        endpoint_resolver=stand_ins.resolvers,
        # One at a time: in-process moto is not thread-safe when a restore test creates and
        # deletes instances while another check iterates the same backend's snapshots
        # ("OrderedDict mutated during iteration"). Against AWS the checks run in parallel.
        max_workers=1,
    )
    by_status = Counter(r.status.value for r in checks)
    _write(
        out,
        "  checks of the newest copy of each tier: "
        + ", ".join(f"{n} {k}" for k, n in sorted(by_status.items())),
    )
    for result in checks:
        if not result.ok:
            _write(
                out,
                f"    {result.status.value.upper()} {result.target} {result.check}: {result.details}",
            )
    tests = restore_test(
        policy,
        now=now,
        targets=targets,
        probes=stand_ins.restore_probes,
        endpoint_resolver=stand_ins.resolvers,
        log=log,
        notifiers=[],
        simulated=True,
    )
    _write(
        out, f"  restore tests, all simulated (moto plays AWS; data probe: {stand_ins.database}):"
    )
    for result in tests:
        took = result.evidence.get("restore_seconds", result.duration)
        _write(
            out,
            f"    {result.status.value:<8} {result.target:<12} {result.details} ({float(took):.1f} s)",
        )
    return checks, tests


def _integrity_lines(log: TestLog, out: TextIO | None) -> dict[str, int]:
    """Print what the integrity checks of the log found, per target and tier; return the counts."""
    from backuppolicy.core.results import CheckKind  # noqa: PLC0415

    statuses: Counter[str] = Counter()
    per: dict[str, Counter[str]] = {}
    methods: dict[str, set[str]] = {}
    for entry in log.entries(kind=CheckKind.INTEGRITY):
        result = entry.result
        key = f"{result.target}/{result.tier}"
        statuses[result.status.value] += 1
        per.setdefault(key, Counter())[result.status.value] += 1
        methods.setdefault(key, set()).add(str(result.evidence.get("method", "?")))
    _write(
        out,
        "  integrity checks, every copy once per window (rolling schedule) and the newest copies: "
        + ", ".join(f"{n} {k}" for k, n in sorted(statuses.items())),
    )
    for key in sorted(per):
        counts = ", ".join(f"{n} {k}" for k, n in sorted(per[key].items()))
        how = ", ".join(sorted(_METHOD_WORDS.get(m, m) for m in methods[key]))
        _write(out, f"    {key:<22} {counts:<12} {how}")
    return dict(statuses)


_METHOD_WORDS: Final = {
    "archive-sha256-vs-sidecar": "archive SHA-256 vs its sidecar (real)",
    "manifest: every listed version": "every object version of the manifest (real)",
    "restore-into-isolation+probes": "restored into isolation, SQL probe on the stand-in",
    "restore-to-volume": "restored to volumes: size only, not data (moto keeps no blocks)",
}


def _prove(  # noqa: PLR0917 - an internal step of run()
    policy: Policy,
    targets: Mapping[str, BackupTarget],
    now: datetime,
    log: TestLog,
    stand_ins: _StandIns,
    out: TextIO | None,
    report_path: Path,
) -> dict[str, Any]:
    """Verify, integrity-check, restore-test, rehearse and audit; return the JSON summary.

    The results go to *log*, which already holds the daily integrity checks; the HTML report
    goes to *report_path*.
    """
    from backuppolicy import workflows  # noqa: PLC0415

    _write(out, f"\nproving the backups at {now:%Y-%m-%d %H:%M} GMT (every result simulated):")
    checks, tests = _check_and_restore_test(policy, targets, now, log, out, stand_ins)
    by_status = Counter(r.status.value for r in checks)
    integrity = _integrity_lines(log, out)

    recovery = _rehearse_recovery(policy, targets, now, out)

    # Judge only the time the demo simulated: the world has no history before START.
    report = workflows.audit(
        policy,
        now=now,
        targets=targets,
        log=log,
        notifiers=[],
        since=START,
        coverage=True,
        simulated=True,  # moto plays AWS: every verdict rests on a simulated world
    )
    counts = report.counts()
    simulated = sum(f.counts_as_ok and f.simulated for f in report.findings)
    _write(out, "\ncompliance (findings that are not compliant first):")
    _write(out, report.summary(failures_only=True))
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report.to_html(report_path)
    _write(out, f"\nHTML report: {report_path}")
    _write(out, f"backup testing log: {getattr(log.store, 'path', log.store)}")
    _write(out, "\nbackup testing log, last entries (* simulated: moto plays AWS):")
    for entry in list(log.entries())[-6:]:
        result = entry.result
        _write(
            out,
            f"  {result.checked_at:%Y-%m-%d %H:%M} {result.target:<12} {result.check:<13} "
            f"{result.status.value + ('*' if result.simulated else ''):<9} {result.details[:70]}",
        )
    applicable = counts["findings"] - counts["not_applicable"]
    verdict = "COMPLIANT" if counts["not_compliant"] == 0 else "NOT COMPLIANT"
    _write(
        out,
        f"\naudit: {verdict}: {counts['compliant']} of {applicable} findings compliant "
        f"({simulated} on simulated evidence), {counts['not_compliant']} not compliant, "
        f"{counts['not_applicable']} not applicable",
    )
    # The demo is ok when the machinery works: restore tests and the rehearsal pass. What the
    # audit finds about the world is reported (the seed policy's world is compliant).
    ok = all(r.ok for r in tests) and bool(recovery["ok"])
    return {
        "ok": ok,
        "compliant": counts["compliant"],
        "not_compliant": counts["not_compliant"],
        "not_applicable": counts["not_applicable"],
        "simulated": simulated,
        "findings": counts["findings"],
        "checks": dict(by_status),
        "integrity": integrity,
        "restore_tests": {r.target: r.status.value for r in tests},
        "data_probe": stand_ins.database,
        "recovery": recovery,
        "report": str(report_path),
        "log_entries": sum(1 for _ in log.entries()),
    }


_LOST_ROWS: Final = 5
"""Rows the broken case's restored database has lost."""
_FINGERPRINT: Final = "select count(*) from orders"
"""The broken case's fingerprint query."""


def _broken_case(
    policy: Policy,
    world_targets: Mapping[str, BackupTarget],
    now: datetime,
    stand_ins: _StandIns,
    out: TextIO | None,
) -> dict[str, Any]:
    """A deliberately broken case, after the audit: a restore that lost rows against its fingerprint.

    The first database target (``shop-db`` in the seed) gets a fingerprint query (the row
    count of ``orders``, taken on the source database when the backup is made: the SQLite
    stand-in of the world); a manual backup records it, and its restore test reads a copy of
    the stand-in that has lost `_LOST_ROWS` rows. The test fails, and an audit of that test
    alone (its own in-memory log) shows the finding. The compliance verdict above is not
    touched: it was judged before, on its own log.
    """
    from backuppolicy import workflows  # noqa: PLC0415
    from backuppolicy.checks.probes import StaticEndpoint  # noqa: PLC0415
    from backuppolicy.core.policy import Policy  # noqa: PLC0415
    from backuppolicy.workflows.testlog import TestLog  # noqa: PLC0415
    from backuppolicy.workflows.verify import restore_test  # noqa: PLC0415

    databases = [s for s in policy.targets if s.kind in {"rds-instance", "aurora-cluster"}]
    if not databases or os.environ.get("BACKUPPOLICY_DEMO_PG"):
        _write(out, "\nbroken case: skipped (it needs a database target and the SQLite stand-in)")
        return {"skipped": True}
    spec = databases[0]
    data: dict[str, Any] = policy.to_dict()  # JSON-shaped, edited in place
    for target in data["targets"]:
        if target["name"] == spec.name:
            target["fingerprint"] = {
                "source": stand_ins.database_endpoint,  # the source database, at backup time
                "queries": [{"name": "orders", "query": _FINGERPRINT}],
            }
    data["targets"] = [t for t in data["targets"] if t["name"] == spec.name]
    broken = Policy.from_dict(data)
    targets = {spec.name: world_targets[spec.name]}  # the same database: only the policy differs
    point = workflows.backup_now(
        broken, spec.name, reason="broken case", requested_by="demo", now=now, targets=targets
    )
    restored = stand_ins.root / "broken-restored-orders.sqlite"
    _orders_file(restored, _ORDERS - _LOST_ROWS)
    log = TestLog.open("memory://", ran_by="backuppolicy demo (broken case)")
    words = (
        f"SQLite file {restored.name} standing in for the restored instance, {_LOST_ROWS} rows lost"
    )
    (test,) = restore_test(
        broken,
        now=now,
        targets=targets,
        endpoint_resolver={spec.name: StaticEndpoint(str(restored), description=words)},
        log=log,
        notifiers=[],
        simulated=True,
    )
    report = workflows.audit(
        broken, now=now, targets=targets, log=log, notifiers=[], since=START, simulated=True
    )
    findings = [f for f in report.of("application-restore-test") if not f.compliant]
    _write(
        out,
        f"\nNow a broken case: {spec.name}'s backup {point.id} recorded the fingerprint "
        f"{_FINGERPRINT!r} = {point.tags.get('fingerprint:orders')} on the source; "
        f"its restored copy (a stand-in) has lost {_LOST_ROWS} rows.",
    )
    _write(out, f"  restore test: {test.status.value.upper()} (simulated): {test.details}")
    for finding in findings:
        _write(out, f"  finding: {finding.result} {finding.sentence()}")
    _write(out, "  (its own log and audit: the compliance verdict above is unchanged)")
    return {
        "target": spec.name,
        "point": point.id,
        "status": test.status.value,
        "simulated": test.simulated,
        "details": test.details,
        "findings": [f.sentence() for f in findings],
    }


def _rehearse_recovery(
    policy: Policy, targets: Mapping[str, BackupTarget], now: datetime, out: TextIO | None
) -> dict[str, Any]:
    """Rehearse examples/recovery_plan.yaml in the demo world; print each step's RTO/RPO vs the policy."""
    import http.server  # noqa: PLC0415
    import threading  # noqa: PLC0415

    from backuppolicy.workflows.recovery import RecoveryPlan  # noqa: PLC0415
    from backuppolicy.workflows.testlog import TestLog  # noqa: PLC0415

    class _Health(
        http.server.BaseHTTPRequestHandler
    ):  # stands in for the restored shop and its database
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    text = resources.files("backuppolicy").joinpath("data/recovery_plan.yaml").read_text("utf-8")
    try:
        plan = RecoveryPlan.from_yaml(text, policy=policy)
    except PolicyError as exc:  # a policy of your own: the seed's plan may not fit it
        _write(out, f"\nrecovery rehearsal: skipped, the example plan does not fit: {exc}")
        return {"ok": True, "skipped": str(exc)}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = f"127.0.0.1:{server.server_address[1]}"
    log = TestLog.open("memory://", ran_by="demo")
    try:
        report = plan.rehearse(
            now=now,
            targets=targets,
            # moto has no network: the demo's isolation is the default profile, and the checks
            # of the restored database and web server reach a local stand-in.
            isolation=None,  # the policy's isolation profile: the demo world has its network
            resolve_endpoint=lambda step, endpoint: (
                local if step in {"check-db", "check-web"} else endpoint
            ),
            sleep=lambda _seconds: None,
            log=log,
        )
    finally:
        server.shutdown()
        server.server_close()
    _write(out, f"\nrecovery rehearsal of {plan.name!r} (examples/recovery_plan.yaml):")
    _write(out, report.summary())
    return {
        "ok": report.ok,
        "rto_seconds": round(report.rto, 1),
        "rpo_hours": round(report.rpo.total_seconds() / 3600, 1) if report.rpo else None,
        "steps": {s.id: s.status.value for s in report.steps},
    }


def _s3() -> Any:

    return _client("s3", REGION)


def _place_demo_hold(
    policy: Policy,
    targets: Mapping[str, BackupTarget],
    now: datetime,
    listed: Mapping[str, list[RecoveryPoint]],
) -> RecoveryPoint | None:
    from backuppolicy import workflows  # noqa: PLC0415

    names = sorted(targets, key=lambda name: name != "shop-db")  # the seed's database first
    points: list[RecoveryPoint] = []
    for name in names:
        points = [p for p in listed[name] if p.managed and p.tier == "local"]
        if points:
            break
    if not points:
        return None
    oldest = min(points, key=lambda p: p.created_at)
    return workflows.place_hold(
        policy, oldest, reason="litigation", reference="case-17", now=now, targets=targets
    )


def _summarise(  # noqa: PLR0917 - an internal helper of run()
    policy: Policy,
    targets: Mapping[str, BackupTarget],
    held: RecoveryPoint | None,
    pruned: Counter[str],
    reasons: Counter[str],
    failures: list[str],
) -> dict[str, Any]:
    per: Counter[str] = Counter()
    oldest: dict[str, str] = {}
    held_now: list[str] = []
    for name, target in targets.items():
        for point in target.list_points():
            if point.kind == "s3-version":
                key = f"{name}/versions"
            else:
                key = f"{name}/{point.tier}" + ("" if point.managed else " (not ours)")
            per[key] += 1
            stamp = point.created_at.strftime("%Y-%m-%d")
            oldest[key] = min(oldest.get(key, stamp), stamp)
            if point.held:
                held_now.append(f"{name}:{point.id}")
    held_id = f"{held.target}:{held.id}" if held else None
    return {
        "policy": policy.name,
        "points": dict(sorted(per.items())),
        "oldest": dict(sorted(oldest.items())),
        "pruned": dict(sorted(pruned.items())),
        "pruned_reasons": dict(reasons.most_common(5)),
        "held": held_now,
        "held_point_survived": held_id in held_now if held_id else False,
        "failures": failures,
        "ok": not failures and (held_id in held_now if held_id else True),
    }


def _print_summary(out: TextIO | None, summary: dict[str, Any]) -> None:
    _write(out, "\nrecovery points now (target/tier: count, oldest):")
    for key, count in summary["points"].items():
        _write(out, f"  {key:<28} {count:4d}  oldest {summary['oldest'][key]}")
    _write(out, "\npruned (target/tier: count):")
    for key, count in summary["pruned"].items():
        _write(out, f"  {key:<28} {count:4d}")
    _write(out, "  why: " + "; ".join(f"{r} ({n})" for r, n in summary["pruned_reasons"].items()))
    _write(out, "\nlegal holds: " + (", ".join(summary["held"]) or "none"))
    _write(out, f"held point survived pruning: {summary['held_point_survived']}")
    if summary["failures"]:
        _write(out, "\nfailures:")
        for failure in summary["failures"]:
            _write(out, f"  {failure}")
