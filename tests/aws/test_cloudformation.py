"""The CloudFormation export: cfn-lint clean, least privilege, and its state machine run on moto.

The state machine's definition is interpreted here (`_Interpreter`: Map, Task with Retry and
Catch, Wait, Choice, Pass, Succeed) and every Task calls `backuppolicy.lambda_handler.handler`
in-process, against moto's RDS, so a restore test runs end to end the way Step Functions
would run it.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

import backuppolicy.cli.main as cli
from backuppolicy.aws import cloudformation
from backuppolicy.aws._rds_restore import InstanceRestores
from backuppolicy.aws.backup_plan import VaultLock
from backuppolicy.aws.iam import iam_policy
from backuppolicy.aws.rds import RdsInstance
from backuppolicy.checks.health import CallableCheck
from backuppolicy.core.exceptions import ThrottledError
from backuppolicy.core.policy import Policy
from backuppolicy.core.targets import TAG_RESTORE_ID, StagedRestore
from backuppolicy.lambda_handler import handler
from backuppolicy.testing import MemoryTarget
from backuppolicy.workflows import restore_steps
from backuppolicy.workflows.testlog import TestLog

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-west-2"

FULL: dict[str, Any] = {
    "name": "full",
    "timezone": "Europe/London",
    "schedule": {"every": "day", "at": "04:00", "tz": "Europe/London", "window": "1h"},
    "retention": {"max_age": "35d"},
    "tiers": [
        {"name": "local", "every": "day"},
        {
            "name": "offsite",
            "every": "week",
            "location": {"region": "eu-west-1", "kms_key_id": "alias/offsite"},
        },
        {"name": "archive", "every": "month", "location": {"region": "us-east-1", "vault": "arch"}},
    ],
    "targets": [
        {
            "name": "shop-db",
            "kind": "rds-instance",
            "application": "shop",
            "settings": {"db_instance_id": "shop-prod", "region": REGION},
        },
        {
            "name": "orders",
            "kind": "aws-backup",
            "application": "shop",
            "settings": {"resource_arn": "arn:aws:dynamodb:eu-west-2:123456789012:table/orders"},
        },
        {"name": "config", "kind": "directory", "settings": {"path": "/etc/shop"}},
    ],
    "verification": {"restore_test_every": "quarter", "restore_test_per_application_every": "year"},
    "notifications": [
        {"kind": "sns", "settings": {"topic_arn": "arn:aws:sns:eu-west-2:123456789012:alerts"}},
        {"kind": "webhook", "settings": {"url": {"env": "ALERT_WEBHOOK_URL"}}},
    ],
    "run": {"log": "s3://acme-testing-log/full/", "heartbeat": {"env": "HEARTBEAT_URL"}},
}


def _lint(text: str) -> list[str]:
    from cfnlint.api import ManualArgs, lint

    matches = lint(text, config=ManualArgs(regions=[REGION]))
    return [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches]


def _policies() -> list[tuple[str, Policy]]:
    return [
        ("examples/policy.yaml", Policy.from_file(REPO / "examples/policy.yaml")),
        ("examples/policy.toml", Policy.from_file(REPO / "examples/policy.toml")),
        ("data/seed_policy.yaml", Policy.from_file(REPO / "backuppolicy/data/seed_policy.yaml")),
        ("every feature", Policy.from_dict(FULL)),
    ]


class TestCfnLint:
    @pytest.mark.parametrize(("label", "policy"), _policies(), ids=lambda v: str(v)[:24])
    @pytest.mark.parametrize("form", ["yaml", "json"])
    def test_no_errors_and_no_warnings(self, label, policy, form):
        """cfn-lint finds nothing in the template of the examples and of every feature."""
        lock = VaultLock(7, 400) if label == "every feature" else None
        template = cloudformation.export_cloudformation(policy, vault_lock=lock)
        text = cloudformation.to_yaml(template) if form == "yaml" else json.dumps(template)
        assert [] == _lint(text)

    def test_lint_catches_a_broken_template(self):
        """The check can fail: a schedule without its target is reported."""
        template = cloudformation.export_cloudformation(Policy.from_dict(FULL))
        del template["Resources"]["RunHourly"]["Properties"]["Target"]
        assert any(line.startswith("E") for line in _lint(json.dumps(template)))


class TestTemplate:
    @pytest.fixture(name="template")
    def _template(self) -> dict[str, Any]:
        return cloudformation.export_cloudformation(Policy.from_dict(FULL), vault_lock=VaultLock(7))

    def test_the_hourly_run_leaves_restore_tests_to_the_state_machine(self, template):
        """Every scheduled ``run`` says ``restore_tests: false``: the state machine runs them."""
        inputs = [
            json.loads(r["Properties"]["Target"]["Input"]["Fn::Sub"])
            for r in template["Resources"].values()
            if r["Type"] == "AWS::Scheduler::Schedule"
            and "Fn::Sub" in r["Properties"]["Target"].get("Input", {})
            and '"action": "run"' in r["Properties"]["Target"]["Input"]["Fn::Sub"]
        ]
        assert inputs
        assert all(i["restore_tests"] is False for i in inputs)

    def test_one_schedule_per_cadence(self, template):
        """Hourly run, the backup time, each copy tier's cadence, and the restore tests."""
        schedules = {
            name: (
                r["Properties"]["ScheduleExpression"],
                r["Properties"]["ScheduleExpressionTimezone"],
            )
            for name, r in template["Resources"].items()
            if r["Type"] == "AWS::Scheduler::Schedule"
        }
        assert {
            "RunHourly": ("cron(30 * * * ? *)", "Europe/London"),
            "RunOnBackupSchedule": ("cron(0 4 * * ? *)", "Europe/London"),
            "RunTierOffsite": ("cron(0 4 ? * SUN *)", "Europe/London"),
            "RunTierArchive": ("cron(0 4 1 * ? *)", "Europe/London"),
            "RestoreTests": ("cron(0 4 1 1,4,7,10 ? *)", "Europe/London"),
        } == schedules
        restore = template["Resources"]["RestoreTests"]["Properties"]["Target"]
        # AWS targets only: a directory on a Lambda's disk is nothing to restore-test.
        assert {"targets": ["shop-db", "orders"]} == json.loads(restore["Input"])

    def test_function_role_is_the_generator_plus_its_own_plumbing(self, template):
        """The function's managed policies hold iam_policy's statements, then log, lease, SNS."""
        policy = Policy.from_dict(FULL)
        documents = [
            r["Properties"]["PolicyDocument"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::IAM::ManagedPolicy"
        ]
        statements = [s for d in documents for s in d["Statement"]]
        generated = iam_policy(
            policy, account_id="${AWS::AccountId}", partition="${AWS::Partition}"
        )
        assert [s["Sid"] for s in generated["Statement"]] == [
            s["Sid"] for s in statements[: len(generated["Statement"])]
        ]
        extra = {s["Sid"]: s["Action"] for s in statements[len(generated["Statement"]) :]}
        assert {
            "TestingLogAndLease": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
            "TestingLogList": ["s3:ListBucket"],
            "PolicyFile": ["s3:GetObject"],
            "FunctionLogs": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Notify": ["sns:Publish"],
        } == extra
        for document in documents:
            compact = json.dumps(document, separators=(",", ":"))
            assert len(compact) < 6144 + 200  # Fn::Sub wrappers vanish once deployed

    def test_scheduler_and_state_machine_roles_only_invoke(self, template):
        """The scheduler may invoke the function and start the state machine, nothing else."""
        resources = template["Resources"]

        def actions(role: str) -> set[str]:
            policies = resources[role]["Properties"]["Policies"]
            return {s["Action"] for p in policies for s in p["PolicyDocument"]["Statement"]}

        assert {"lambda:InvokeFunction", "states:StartExecution"} == actions("SchedulerRole")
        assert {"lambda:InvokeFunction"} == actions("StateMachineRole")

    def test_secrets_are_references(self, template):
        """Env secrets become Secrets Manager references, never values."""
        variables = template["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
        assert {"Fn::Sub": "{{resolve:secretsmanager:${SecretHeartbeatUrl}}}"} == variables[
            "HEARTBEAT_URL"
        ]
        assert "SecretAlertWebhookUrl" in template["Parameters"]

    def test_aws_backup_resources_when_the_kind_is_used(self, template):
        """Vault with its lock, plan (one rule per cadence), selection; copy vaults warned."""
        resources = template["Resources"]
        vault = resources["BackupVault"]["Properties"]
        assert {"MinRetentionDays": 7} == vault["LockConfiguration"]
        rules = resources["BackupPlan"]["Properties"]["BackupPlan"]["BackupPlanRule"]
        assert ["daily", "offsite-weekly", "archive-monthly"] == [r["RuleName"] for r in rules]
        warnings = template["Metadata"]["backuppolicy"]["warnings"]
        assert any("'arch' in us-east-1" in w for w in warnings)
        plain = cloudformation.export_cloudformation(
            Policy.from_file(REPO / "examples/policy.yaml")
        )
        assert not any(r["Type"].startswith("AWS::Backup::") for r in plain["Resources"].values())

    def test_every_step_before_teardown_catches_to_teardown(self, template):
        """Each Task retries transient errors; Start, Poll and Probe catch everything to Teardown."""
        definition = template["Resources"]["RestoreTestStateMachine"]["Properties"]["Definition"]
        states = definition["States"]["EachTarget"]["ItemProcessor"]["States"]
        tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
        assert ["Start", "Poll", "Probe", "Teardown", "Record"] == list(tasks)
        for state in tasks.values():
            assert list(cloudformation.TRANSIENT_ERRORS) == state["Retry"][0]["ErrorEquals"]
        for name in ("Start", "Poll", "Probe"):
            assert [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Teardown"}
            ] == (tasks[name]["Catch"])
        assert "Record" == tasks["Teardown"]["Catch"][0]["Next"]


class TestCli:
    def _run(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(argv))
        return code, out.getvalue(), err.getvalue()

    def test_yaml_by_default_json_on_request(self, tmp_path):
        """The default is YAML; --format json (or --json) prints the same template as JSON."""
        policy = str(REPO / "examples/policy.yaml")
        code, text, _ = self._run("export", "cloudformation", "--policy", policy)
        assert 0 == code
        as_yaml = yaml.safe_load(text)
        code, text, _ = self._run(
            "export", "cloudformation", "--policy", policy, "--format", "json"
        )
        assert as_yaml == json.loads(text)
        assert (
            "AWS::StepFunctions::StateMachine"
            == (as_yaml["Resources"]["RestoreTestStateMachine"]["Type"])
        )

    def test_warnings_go_to_stderr(self, tmp_path):
        """Copy vaults outside the stack are warned on stderr, the template stays clean."""
        path = tmp_path / "full.yaml"
        path.write_text(yaml.safe_dump(FULL))
        code, text, err = self._run("export", "cloudformation", "--policy", str(path))
        assert 0 == code
        assert "WARNING: copy vault 'arch' in us-east-1" in err
        assert "WARNING" not in text


# --------------------------------------------------------------------------------------------
# The state machine, interpreted, against moto


def _get(data: Mapping[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.removeprefix("$").split(".")[1:]:
        value = value[part]
    return value


def _set(data: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = dict(data)
    key = path.removeprefix("$.")
    assert "." not in key, path
    out[key] = value
    return out


class _Interpreter:
    """Runs the ASL this module generates: Map, Task (Lambda invoke, Retry, Catch), Wait, Choice, Pass."""

    def __init__(self, invoke: Callable[[dict[str, Any]], Any], log_url: str) -> None:
        self.invoke = invoke
        self.log_url = log_url
        self.path: list[str] = []
        self.waits = 0

    def run(self, definition: Mapping[str, Any], data: Any) -> Any:  # noqa: C901, PLR0912 - a branch per state type
        name = definition["StartAt"]
        while True:
            state = definition["States"][name]
            self.path.append(name)
            kind = state["Type"]
            if kind == "Map":
                items = _get(data, state["ItemsPath"])
                results = [self.run(state["ItemProcessor"], {"target": item}) for item in items]
                data = _set(data, state["ResultPath"], results)
            elif kind == "Task":
                result, error = self._task(state, data)
                if error is None:
                    data = result
                else:
                    catch = next(
                        (c for c in state.get("Catch", []) if self._matches(c, error["Error"])),
                        None,
                    )
                    if catch is None:
                        raise AssertionError(f"{name}: uncaught {error}")
                    data = _set(data, catch["ResultPath"], error)
                    name = catch["Next"]
                    continue
            elif kind == "Wait":
                self.waits += 1
            elif kind == "Choice":
                name = self._choose(state, data)
                continue
            elif kind == "Pass":
                if "Result" in state:
                    data = _set(data, state["ResultPath"], state["Result"])
            elif kind == "Succeed":
                return data
            else:
                raise AssertionError(f"unknown state type {kind}")
            if state.get("End"):
                return data
            name = state["Next"]

    @staticmethod
    def _matches(rule: Mapping[str, Any], error: str) -> bool:
        return "States.ALL" in rule["ErrorEquals"] or error in rule["ErrorEquals"]

    def _task(self, state: Mapping[str, Any], data: Any) -> tuple[Any, dict[str, str] | None]:
        params = state["Parameters"]
        assert "${FunctionArn}" == params["FunctionName"]
        payload = {
            key.removesuffix(".$"): (_get(data, value) if key.endswith(".$") else value)
            for key, value in params["Payload"].items()
        }
        payload["log"] = payload["log"].replace("${LogUrl}", self.log_url)
        retry = state["Retry"][0]
        attempts = 0
        while True:
            try:
                response = {"Payload": self.invoke(payload)}
            except Exception as exc:  # noqa: BLE001 - Lambda reports any error to the state machine
                error = {
                    "Error": type(exc).__name__,
                    "Cause": json.dumps(
                        {"errorMessage": str(exc), "errorType": type(exc).__name__}
                    ),
                }
                if self._matches(retry, error["Error"]) and attempts < retry["MaxAttempts"]:
                    attempts += 1
                    continue
                return None, error
            return _get(response, state["OutputPath"]), None

    @staticmethod
    def _choose(state: Mapping[str, Any], data: Any) -> str:
        for choice in state["Choices"]:
            value = data.get(choice["Variable"].removeprefix("$."))
            if "BooleanEquals" in choice and value is choice["BooleanEquals"]:
                return str(choice["Next"])
            if (
                "NumericGreaterThanEquals" in choice
                and isinstance(value, int)
                and value >= choice["NumericGreaterThanEquals"]
            ):
                return str(choice["Next"])
        return str(state["Default"])


E2E_POLICY: dict[str, Any] = {
    "name": "shop",
    "schedule": {"every": "day", "at": "04:00"},
    "retention": {"max_age": "35d"},
    "targets": [
        {
            "name": "shop-db",
            "kind": "rds-instance",
            "application": "shop",
            "settings": {"db_instance_id": "shop-prod", "region": REGION},
        }
    ],
    "verification": {"isolation": {"subnet_group": "restore-tests"}},
}


@pytest.fixture(name="world")
def _world(aws, tmp_path, monkeypatch) -> dict[str, Any]:
    rds = boto3.client("rds", region_name=REGION)
    rds.create_db_subnet_group(
        DBSubnetGroupName="restore-tests",
        DBSubnetGroupDescription="restore tests",
        SubnetIds=_subnets(),
    )
    rds.create_db_instance(
        DBInstanceIdentifier="shop-prod",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin",
        MasterUserPassword="password1",
        AllocatedStorage=20,
    )
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(E2E_POLICY))
    monkeypatch.setenv("BACKUPPOLICY_FILE", str(policy_path))
    # moto's RDS serves no database, so the policy's SQL probes cannot run here: this probe
    # stands in for them and checks what moto does give, the restored instance's endpoint.
    # Without any probe the test would be (rightly) unproven.
    monkeypatch.setattr(restore_steps, "declared_probes", lambda spec, target: [_HAS_ENDPOINT])
    db = RdsInstance("shop-prod", name="shop-db", region=REGION)
    point = db.create_backup(reason="test", token="t1")
    return {"rds": rds, "db": db, "point": point, "log": str(tmp_path / "testing-log.jsonl")}


_HAS_ENDPOINT = CallableCheck(bool, name="restored-endpoint")


def _subnets() -> list[str]:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{REGION}a")
    return [subnet["Subnet"]["SubnetId"]]


def _instances(rds: Any) -> list[str]:
    return sorted(i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"])


def _execute(world: Mapping[str, Any], **options: int) -> tuple[_Interpreter, dict[str, Any]]:
    definition = cloudformation.state_machine_definition(**options)
    machine = _Interpreter(handler, world["log"])
    output = machine.run(definition, {"targets": ["shop-db"]})
    (iteration,) = output["results"]
    return machine, iteration


def _logged(world: Mapping[str, Any]) -> list[Any]:
    until = datetime(9999, 1, 1, tzinfo=UTC)
    return [entry.result for entry in TestLog.open(world["log"]).entries(until=until)]


class TestStateMachineOnMoto:
    def test_restore_test_end_to_end(self, world, monkeypatch):
        """Start, two polls not ready, ready, probe, teardown, record: passed, logged, gone."""
        not_yet = [{}, {}]  # two looks that find the restore still being made
        real = InstanceRestores._ready

        def slow(self: Any, rid: str, region: str) -> dict[str, Any]:
            return not_yet.pop() if not_yet else real(self, rid, region)

        monkeypatch.setattr(InstanceRestores, "_ready", slow)
        machine, iteration = _execute(world, max_polls=5)
        assert [
            "EachTarget",
            "Start",
            *["Wait", "Poll", "Ready?"] * 3,
            "Probe",
            "Teardown",
            "Record",
            "Passed?",
            "Passed",
        ] == machine.path
        assert iteration["ok"] is True
        assert 3 == iteration["attempts"]
        assert ["shop-prod"] == _instances(world["rds"])  # the restored instance is gone
        (logged,) = _logged(world)
        assert ("restore-test", "pass", world["point"].id) == (
            logged.check,
            logged.status.value,
            logged.point_id,
        )
        assert logged.evidence["torn_down"] is True
        assert logged.evidence["restored"]["id"] == iteration["restore_id"]

    def test_failed_probe_still_tears_down_and_records(self, world, monkeypatch):
        """A probe that fails: the result fails, the teardown runs, the failure is logged."""

        def failing(ctx: Any) -> bool:
            raise ConnectionError("no route to the restored database")

        monkeypatch.setattr(restore_steps, "declared_probes", lambda spec, target: [failing])
        machine, iteration = _execute(world)
        assert ["Probe", "Teardown", "Record", "Passed?", "Failed"] == machine.path[-5:]
        assert iteration["ok"] is False
        assert ["shop-prod"] == _instances(world["rds"])
        (logged,) = _logged(world)
        assert "fail" == logged.status.value
        assert "no route to the restored database" in logged.details

    def test_error_in_the_probe_step_is_caught_to_teardown(self, world, monkeypatch):
        """The probe step itself raising goes to Teardown (Catch), then records the failure."""

        class Broken:
            def __init__(self, **_: Any) -> None:
                pass

            def verify(self, *_: Any) -> Any:
                raise RuntimeError("probe runner crashed")

        monkeypatch.setattr(restore_steps, "RestoreTest", Broken)
        machine, iteration = _execute(world)
        assert ["Probe", "Teardown", "Record", "Passed?", "Failed"] == machine.path[-5:]
        assert "RuntimeError" == iteration["error"]["Error"]
        assert ["shop-prod"] == _instances(world["rds"])
        (logged,) = _logged(world)
        assert "fail" == logged.status.value
        assert "step failed: RuntimeError: probe runner crashed" in logged.issues
        assert logged.evidence["torn_down"] is True

    def test_never_ready_times_out_and_tears_down(self, world, monkeypatch):
        """A restore never ready: max_polls polls, then TimedOut, Teardown, a failure."""
        monkeypatch.setattr(InstanceRestores, "_ready", lambda self, rid, region: {})
        machine, iteration = _execute(world, max_polls=3)
        assert 3 == machine.waits
        assert iteration["ok"] is False
        assert ["TimedOut", "Teardown", "Record"] == machine.path[-5:-2]
        assert ["shop-prod"] == _instances(world["rds"])
        (logged,) = _logged(world)
        assert "fail" == logged.status.value
        assert any("RestoreTimeout" in issue for issue in logged.issues)

    def test_transient_error_is_retried(self, world, monkeypatch):
        """A throttled start is retried by the Task's Retry and the test passes."""
        real = RdsInstance.start_restore
        calls: list[int] = []

        def throttled_once(self: Any, point: Any, into: Any = None) -> str:
            calls.append(1)
            if len(calls) == 1:
                raise ThrottledError("Rate exceeded", backend="shop-db", code="Throttling")
            return real(self, point, into)

        monkeypatch.setattr(RdsInstance, "start_restore", throttled_once)
        _, iteration = _execute(world)
        assert 2 == len(calls)
        assert iteration["ok"] is True


class TestStagedRestore:
    def test_rds_is_staged(self, world):
        """RdsInstance implements the StagedRestore protocol."""
        assert isinstance(world["db"], StagedRestore)

    def test_forged_restore_id_deletes_nothing(self, world):
        """Teardown of a restore id that is not ours (the production instance) deletes nothing."""
        out = handler(
            {
                "action": "restore-test-teardown",
                "state": {
                    "target": "shop-db",
                    "point_id": world["point"].id,
                    "restore_id": "shop-prod",
                },
            }
        )
        assert out["torn_down"] is True
        assert ["shop-prod"] == _instances(world["rds"])

    def test_restored_instance_carries_its_restore_id(self, world):
        """What start_restore makes is tagged with its restore id (what teardown checks)."""
        db, point = world["db"], world["point"]
        rid = db.start_restore(point)
        (item,) = world["rds"].describe_db_instances(DBInstanceIdentifier=rid)["DBInstances"]
        assert rid == {t["Key"]: t["Value"] for t in item["TagList"]}[TAG_RESTORE_ID]
        db.teardown_restore(rid, point)
        assert ["shop-prod"] == _instances(world["rds"])


class TestInlineSteps:
    NOW = datetime(2026, 11, 26, 6, tzinfo=UTC)

    def test_target_without_stages_restores_within_the_probe_step(self):
        """A kind that is not StagedRestore is restored, probed and torn down by the probe step."""
        policy = Policy.from_dict(
            {
                "name": "mem",
                "schedule": {"every": "day"},
                "retention": {"max_age": "35d"},
                "targets": [{"name": "db", "kind": "directory", "settings": {"path": "/x"}}],
            }
        )
        db = MemoryTarget("db", clock=lambda: self.NOW)
        db.create_backup()
        targets = {"db": db}
        state = restore_steps.start(policy, {"target": "db"}, now=self.NOW, targets=targets)
        assert state["restore_id"] is None
        state = restore_steps.poll(policy, state, now=self.NOW, targets=targets)
        assert state["ready"] is True
        state = restore_steps.probe(
            policy, state, now=self.NOW, targets=targets, probes=[_HAS_ENDPOINT]
        )
        assert 1 == len(db.teardowns)
        state = restore_steps.teardown(policy, state, targets=targets)
        out = restore_steps.record(policy, state, now=self.NOW, notifiers=[])
        assert out["ok"] is True
        assert out["result"]["evidence"]["torn_down"] is True

    def test_unknown_target_in_the_state_is_refused(self):
        """A state naming no target of the policy is a PolicyError naming state.target."""
        policy = Policy.from_dict(E2E_POLICY)
        from backuppolicy.core.exceptions import PolicyError

        with pytest.raises(PolicyError, match=r"state\.target"):
            restore_steps.start(policy, {"target": "prod-db"}, now=self.NOW, targets={})
