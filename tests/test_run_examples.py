"""The systemd and Kubernetes examples of docs/how-to/run-the-policy-unattended.md run `backuppolicy run`."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path
from typing import Any

import yaml

from backuppolicy.cli import main as cli
from backuppolicy.cli.run import EXIT_LEASE_HELD

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _unit(name: str) -> configparser.ConfigParser:
    """A systemd unit file as configparser reads it (repeated keys kept: the last one wins)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign] - keys are case-sensitive
    parser.read(EXAMPLES / "systemd" / name, encoding="utf-8")
    return parser


def _command_of(argv: list[str]) -> list[str]:
    """The arguments after the ``backuppolicy`` program (a path or the bare name)."""
    program = next(i for i, arg in enumerate(argv) if Path(arg).name == "backuppolicy")
    return argv[program + 1 :]


def _parses_as_run(args: list[str]) -> None:
    """The arguments are a valid ``backuppolicy run --policy FILE`` command line."""
    assert args[:2] == ["run", "--policy"]
    parser, _ = cli._parser()
    parsed = parser.parse_args(args)
    assert parsed.command == "run"
    assert parsed.policy == args[2]


def test_systemd_service_runs_backuppolicy_run_once() -> None:
    """A oneshot service whose ExecStart is `backuppolicy run --policy ...`; 75 is no failure."""
    unit = _unit("backuppolicy.service")
    service = unit["Service"]
    assert service["Type"] == "oneshot"
    argv = shlex.split(service["ExecStart"])
    args = _command_of(argv)
    _parses_as_run(args)
    assert args[2] == "${BACKUPPOLICY_FILE}"
    assert service["Environment"].startswith("BACKUPPOLICY_FILE=/")
    assert str(EXIT_LEASE_HELD) in service["SuccessExitStatus"].split()
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "true"
    assert service.get("User") not in (None, "", "root")


def test_systemd_timer_is_hourly_and_persistent() -> None:
    """The timer starts the service every hour and catches up after downtime."""
    timer = _unit("backuppolicy.timer")["Timer"]
    assert timer["OnCalendar"] == "hourly"
    assert timer["Persistent"] == "true"
    assert timer["Unit"] == "backuppolicy.service"
    assert _unit("backuppolicy.timer")["Install"]["WantedBy"] == "timers.target"


def test_kubernetes_cronjob_runs_backuppolicy_run_hourly() -> None:
    """Hourly, never two at once, secrets from a Secret, 75 ignored and 2 not retried."""
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / "kubernetes" / "cronjob.yaml").read_text())
    assert (data["apiVersion"], data["kind"]) == ("batch/v1", "CronJob")
    spec = data["spec"]
    minute, hour, *rest = spec["schedule"].split()
    assert minute.isdigit()
    assert (hour, rest) == ("*", ["*", "*", "*"])
    assert spec["concurrencyPolicy"] == "Forbid"
    job = spec["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    _parses_as_run(_command_of(container["args"]))
    secret_env = [e for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert [e["name"] for e in secret_env] == ["BACKUPPOLICY_HEARTBEAT_URL"]
    rules = {
        rule["action"]: rule["onExitCodes"]["values"] for rule in job["podFailurePolicy"]["rules"]
    }
    assert rules == {"Ignore": [EXIT_LEASE_HELD], "FailJob": [2]}
    assert all(
        r["onExitCodes"]["containerName"] == container["name"]
        for r in job["podFailurePolicy"]["rules"]
    )
    assert pod["restartPolicy"] == "Never"
