"""Secrets never print: a canary planted in every field that holds one is searched in every output.

The canary is planted in a webhook URL's path and query, a webhook's ``user:password@``, an
``Authorization`` header, the DSN of a `SqlCheck`, the URL of an `HttpCheck`, and the DSN that a
`StaticEndpoint` hands to a `SqlProbe`. The requests fail for real (a closed port on 127.0.0.1)
or through a driver that quotes its DSN in its error, as real drivers do. Then every output is
searched: repr and str of every object, exception texts and their tracebacks, log records (all
levels, with tracebacks), `RunReport.to_dict` and the CLI's ``--json``, the policy document,
the recovery report and runbook, the JSONL testing log, the HTML report.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import pickle
import socket
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

import backuppolicy as bp
import backuppolicy.cli.main as cli
from backuppolicy.checks.probes import ProbeContext, SqlProbe, StaticEndpoint, run_probe
from backuppolicy.checks.restore_test import RestoreTest
from backuppolicy.checks.verify import VerifyContext
from backuppolicy.core import registry
from backuppolicy.core.exceptions import BackendError, PolicyError
from backuppolicy.core.secrets import Secret, json_default, redact_url, scrub, secret_field
from backuppolicy.notify import Event, EventKind, WebhookNotifier, notify_all
from backuppolicy.testing import MemoryTarget
from backuppolicy.workflows.recovery import HttpCheck, RecoveryPlan, SqlCheck
from backuppolicy.workflows.testlog import TestLog
from backuppolicy.workflows.verify import restore_test

CANARY = "cAnArY"
"""Every planted secret contains this; no output may."""

NOW = datetime(2026, 11, 23, 4, 10, tzinfo=UTC)
NOW_TEXT = "2026-11-23T04:10:00Z"
EVENT = Event(
    kind=EventKind.BACKUP_FAILED,
    policy="shop",
    target="db",
    message="CreateDBSnapshot failed",
    error="boom",
    at=NOW,
)


class _DriverError(Exception):
    """What a database driver raises: its text quotes the DSN it was given."""


def leaky_connect(dsn: str) -> Any:
    """A connection factory that fails the way drivers do, quoting the whole DSN."""
    raise _DriverError(f'connection to "{dsn}" failed: FATAL: password authentication failed')


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(name="port")
def _port() -> int:
    """A port on 127.0.0.1 where nothing listens: every request to it fails."""
    return _closed_port()


@pytest.fixture(name="planted")
def _planted(port: int) -> dict[str, str]:
    """One canary secret per field that can hold one."""
    return {
        "webhook_path": f"http://127.0.0.1:{port}/services/T0{CANARY}1/B0/{CANARY}2xyz",
        "webhook_userinfo": f"http://ops:{CANARY}3pw@127.0.0.1:{port}/hook?token={CANARY}4",
        "header": f"Bearer {CANARY}5",
        "sql_check_dsn": f"postgresql://app:{CANARY}6@127.0.0.1:{port}/shop",
        "http_check_url": f"http://127.0.0.1:{port}/health?token={CANARY}7",
        "probe_dsn": f"postgresql://app:{CANARY}8@127.0.0.1:{port}/shop",
    }


@pytest.fixture(name="env")
def _env(planted: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The planted secrets in the environment, where policy and plan files refer to them."""
    names = {
        "SHOP_WEBHOOK_URL": planted["webhook_path"],
        "SHOP_PAGER_URL": planted["webhook_userinfo"],
        "SHOP_WEBHOOK_AUTH": planted["header"],
        "SHOP_DSN": planted["sql_check_dsn"],
        "SHOP_HEALTH_URL": planted["http_check_url"],
    }
    for name, value in names.items():
        monkeypatch.setenv(name, value)
    return names


def _formatted(exc: BaseException) -> str:
    """The exception as a traceback prints it, chained exceptions included."""
    return "".join(traceback.format_exception(exc))


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every log record, formatted with its traceback, and its arguments."""
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    parts = []
    for record in caplog.records:
        parts.append(formatter.format(record))
        parts.append(repr(record.args))
        parts.append(repr(vars(record)))
    return "\n".join(parts)


def _assert_clean(outputs: dict[str, Any]) -> None:
    leaks = sorted(name for name, text in outputs.items() if CANARY in str(text))
    assert [] == leaks, f"the canary leaked into: {', '.join(leaks)}"


class TestSecret:
    def test_literal_is_redacted_everywhere_but_reveal(self):
        """repr, str, format, to_dict and JSON redact; reveal gives the value."""
        value = f"https://hooks.slack.com/services/T000/B000/{CANARY}"
        secret = Secret(value)
        shown = [repr(secret), str(secret), f"{secret}", f"{secret!r:>80}", secret.to_dict()]
        shown.append(json.dumps({"url": secret}, default=json_default))
        _assert_clean({f"output {i}": text for i, text in enumerate(shown)})
        assert "https://hooks.slack.com/services/***" == str(secret)
        assert value == secret.reveal()

    def test_pickling_a_literal_is_refused_and_copies_are_the_same(self):
        """A literal never leaves through pickle; copies do not reveal it."""
        secret = Secret(f"Bearer {CANARY}")
        with pytest.raises(TypeError, match="cannot pickle a literal Secret") as info:
            pickle.dumps(secret)
        assert CANARY not in str(info.value)
        assert (secret, secret) == (copy.copy(secret), copy.deepcopy(secret))

    def test_a_reference_pickles_as_a_reference(self, monkeypatch):
        """A reference holds no secret: it pickles, and still reads the variable when revealed."""
        monkeypatch.setenv("BP_TEST_SECRET", CANARY)
        secret = pickle.loads(pickle.dumps(Secret.from_env("BP_TEST_SECRET")))  # noqa: S301
        assert (Secret.from_env("BP_TEST_SECRET"), CANARY) == (secret, secret.reveal())
        assert "Secret(env='BP_TEST_SECRET')" == repr(secret)

    def test_missing_variable_names_the_reference(self, monkeypatch):
        """A variable that is not set is a PolicyError naming it."""
        monkeypatch.delenv("BP_TEST_MISSING", raising=False)
        with pytest.raises(PolicyError, match=r"secret \{env: BP_TEST_MISSING\}: .*not set"):
            Secret.from_env("BP_TEST_MISSING").reveal()

    def test_file_reference(self, tmp_path):
        """A file's content is the secret (one trailing newline dropped); errors name the file."""
        path = tmp_path / "db-password"
        path.write_text(f"{CANARY}\n")
        assert CANARY == Secret.from_file(path).reveal()
        with pytest.raises(PolicyError, match=r"secret \{file: .*/nope\}: cannot be read") as info:
            Secret.from_file(tmp_path / "nope").reveal()
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        with pytest.raises(PolicyError, match="not a regular file"):
            Secret.from_file(fifo).reveal()
        assert CANARY not in str(info.value)

    @pytest.mark.parametrize(
        ("text", "shown"),
        [
            (
                "https://hooks.slack.com/services/T000/B000/XXXX",
                "https://hooks.slack.com/services/***",
            ),
            ("postgresql://user:pw@host/db", "postgresql://user:***@host/db"),
            ("https://u:p@h/x?token=abc", "https://***@h/x?token=***"),
            ("https://alerts.example/hook", "https://alerts.example/hook"),
            ("https://hooks.zapier.com/abcdef", "https://hooks.zapier.com/***"),
            ("dbname=shop password='a b' host=db", "dbname=shop password=*** host=db"),
        ],
    )
    def test_redact_url(self, text, shown):
        """Display keeps the host and the first word, hides passwords, tokens and query values."""
        assert shown == redact_url(text)

    def test_scrub_removes_the_parts_a_driver_quotes(self):
        """The password is scrubbed even where an error quotes it on its own."""
        dsn = f"postgresql://app:{CANARY}@db/shop"
        text = scrub(f"connect {dsn} failed; password {CANARY} rejected", [dsn])
        assert "connect postgresql://app:***@db/shop failed; password *** rejected" == text


_TOKENS = st.text(
    alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789", min_size=6
)


class TestRedactionProperties:
    @given(password=_TOKENS)
    @example(password="postgr")  # also the scheme's start: found there, not leaked
    def test_no_dsn_password_survives(self, password):
        """Whatever the password, a DSN's Secret and a scrubbed driver error never show it."""
        dsn = f"postgresql://app:{password}@db.internal:5432/shop"
        # A password that is also part of the rest (say "postgr") would be found there.
        assume(password not in dsn.replace(password, "", 1))
        error = scrub(f'connection to "{dsn}" failed for password {password}', [dsn])
        for text in (repr(Secret(dsn)), str(Secret(dsn)), redact_url(dsn), error):
            assert password not in text

    @given(team=_TOKENS, token=_TOKENS)
    def test_no_webhook_token_survives(self, team, token):
        """Whatever the tokens, a webhook URL's Secret shows none of them, and inline is refused."""
        url = f"https://hooks.slack.com/services/{team}/{token}"
        # A token that is also part of the rest (say "servic") would be found there.
        rest = url.replace(f"/{team}/{token}", "")
        assume(team not in rest and token not in rest and team not in token)
        assume(token not in team)
        assert team not in str(Secret(url))
        assert token not in str(Secret(url))
        with pytest.raises(PolicyError):
            secret_field(url, "url", kind="webhook")


class TestInlineSecretsRefused:
    @pytest.mark.parametrize(
        ("settings", "field"),
        [
            ({"url": f"https://hooks.slack.com/services/T000/B000/{CANARY}"}, "settings.url"),
            ({"url": f"https://ops:{CANARY}@alerts.example/hook"}, "settings.url"),
            ({"url": f"https://alerts.example/hook?token={CANARY}"}, "settings.url"),
            (
                {"url": "https://alerts.example/hook", "headers": {"Authorization": CANARY}},
                "settings.headers.Authorization",
            ),
            (
                {"url": "https://alerts.example/hook", "headers": {"X-Id": f"Bearer {CANARY}"}},
                "settings.headers.X-Id",
            ),
        ],
    )
    def test_policy_file_refuses_inline_webhook_secrets(self, settings, field):
        """An inline token is a PolicyError naming the field and the reference syntax, not the value."""
        data = {
            "name": "shop",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": "7d"},
            "targets": [{"name": "cfg", "kind": "directory", "settings": {"path": "/srv/cfg"}}],
            "notifications": [{"kind": "webhook", "settings": settings}],
        }
        with pytest.raises(PolicyError) as info:
            bp.Policy.from_dict(data)
        message = str(info.value)
        assert f"notifications[0].{field}" in message
        assert "{env: SOME_VARIABLE}" in message
        _assert_clean({"message": message, "got": info.value.got, "args": info.value.args})

    @pytest.mark.parametrize(
        ("check", "field"),
        [
            (
                {
                    "kind": "sql",
                    "database": f"postgresql://app:{CANARY}@db/shop",
                    "query": "select 1",
                },
                "database",
            ),
            (
                {"kind": "sql", "database": f"host=db password={CANARY}", "query": "select 1"},
                "database",
            ),
            ({"kind": "http", "url": f"https://web/health?api_key={CANARY}"}, "url"),
        ],
    )
    def test_recovery_plan_refuses_inline_credentials(self, check, field):
        """A plan file's SQL DSN with a password, or a URL with a token, must be a reference."""
        data = {
            "name": "shop",
            "application": "shop",
            "steps": [{"id": "up", "kind": "health-check", "check": check}],
        }
        with pytest.raises(PolicyError, match=rf"^steps\[0\]\.check\.{field}: ") as info:
            RecoveryPlan.from_dict(data)
        _assert_clean({"message": str(info.value), "got": info.value.got})

    @pytest.mark.parametrize(
        "notifications",
        [
            # The list's dash forgotten: the section is one mapping, not a list.
            {
                "kind": "webhook",
                "settings": {"url": f"https://hooks.slack.com/services/T0/B0/{CANARY}"},
            },
            [
                [
                    {
                        "kind": "webhook",
                        "settings": {"url": f"https://ops:{CANARY}@alerts.example/hook"},
                    }
                ]
            ],
            [{"kind": "webhook", "settings": f"url: https://alerts.example/hook?token={CANARY}"}],
            [
                {
                    "kind": "webhook",
                    "settings": [{"url": f"https://discord.com/api/webhooks/1/{CANARY}"}],
                }
            ],
            # The webhook URL pasted into the wrong setting or kind.
            [
                {
                    "kind": "sns",
                    "settings": {"topic_arn": f"https://hooks.slack.com/services/T0/B0/{CANARY}"},
                }
            ],
            [
                {
                    "kind": "webhook",
                    "settings": {
                        "url": {"env": "X"},
                        "timeout": f"https://a.example/hook?key={CANARY}",
                    },
                }
            ],
            [
                {
                    "kind": "webhook",
                    "settings": {"url": {"env": "X"}},
                    "on": f"https://u:{CANARY}@a.example/h",
                }
            ],
        ],
    )
    def test_a_misshapen_section_does_not_quote_the_secret_in_it(self, notifications):
        """An inline secret inside a section of the wrong shape is not quoted by the shape error."""
        data = {
            "name": "shop",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": "7d"},
            "targets": [{"name": "cfg", "kind": "directory", "settings": {"path": "/srv/cfg"}}],
            "notifications": notifications,
        }
        with pytest.raises(PolicyError, match=r"^notifications") as info:
            bp.Policy.from_dict(data)
        _assert_clean({"message": str(info.value), "traceback": _formatted(info.value)})

    @pytest.mark.parametrize(
        "step",
        [
            {
                "id": "up",
                "kind": "health-check",
                "check": [{"kind": "sql", "database": f"postgresql://app:{CANARY}@db/shop"}],
            },
            {
                "id": "up",
                "kind": "health-check",
                "check": f"host=db user=app password={CANARY} dbname=shop",
            },
            [
                {
                    "id": "up",
                    "kind": "health-check",
                    "check": {"kind": "http", "url": f"https://web/h?token={CANARY}"},
                }
            ],
        ],
    )
    def test_a_misshapen_plan_step_does_not_quote_the_secret_in_it(self, step):
        """The same for a recovery plan: a check of the wrong shape is refused without its DSN."""
        data = {"name": "shop", "application": "shop", "steps": [step]}
        with pytest.raises(PolicyError, match=r"^steps\[0\]") as info:
            RecoveryPlan.from_dict(data)
        _assert_clean({"message": str(info.value), "traceback": _formatted(info.value)})

    @pytest.mark.parametrize("source", ["env", "file"])
    def test_a_secret_pasted_as_a_reference_is_not_quoted(self, source):
        """``{env: <the secret itself>}`` is refused without quoting what was pasted."""
        with pytest.raises(PolicyError, match=rf"^url\.{source}: expected ") as info:
            secret_field(
                {source: f"https://hooks.slack.com/services/T0/B0/{CANARY}"}, "url", kind="webhook"
            )
        _assert_clean({"message": str(info.value), "got": info.value.got})

    def test_plain_values_stay_inline(self):
        """Words, hosts and ``{endpoint}`` templates are no secrets and stay inline."""
        assert "https://alerts.example/hook" == secret_field(
            "https://alerts.example/hook", "url", kind="webhook"
        )
        assert "http://{endpoint}/api/v1/health" == secret_field(
            "http://{endpoint}/api/v1/health", "url", kind="url"
        )
        assert "postgresql://app@{endpoint}/shop" == secret_field(
            "postgresql://app@{endpoint}/shop", "database", kind="dsn"
        )


class TestCanaryInPythonObjects:
    def test_webhooks_never_print_their_tokens(self, planted, caplog):
        """Failing webhooks: repr, errors, tracebacks and logs carry no token, user info or header."""
        hooks = [
            WebhookNotifier(planted["webhook_path"], headers={"Authorization": planted["header"]}),
            WebhookNotifier(planted["webhook_userinfo"], timeout=2),
        ]
        outputs: dict[str, Any] = {}
        for i, hook in enumerate(hooks):
            outputs[f"repr {i}"] = repr(hook)
            outputs[f"str {i}"] = str(hook)
            outputs[f"headers {i}"] = repr(hook.headers)
            with pytest.raises(BackendError) as info:
                hook.notify(EVENT)
            outputs[f"error {i}"] = str(info.value)
            outputs[f"traceback {i}"] = _formatted(info.value)
            outputs[f"resource {i}"] = info.value.resource
            with pytest.raises(TypeError):
                pickle.dumps(hook)
        with caplog.at_level(logging.DEBUG):
            failures = notify_all(hooks, EVENT)
            logging.getLogger("backuppolicy.test").error("failed", exc_info=failures[0].error)
        assert 2 == len(failures)
        outputs["failures"] = repr(failures)
        outputs["log"] = _log_text(caplog)
        _assert_clean(outputs)
        assert "webhook http://127.0.0.1" in outputs["error 0"]

    def test_an_error_that_quotes_the_url_is_not_chained(self, port):
        """http.client quotes a bad URL's path: the text is scrubbed and the original not chained."""
        hook = WebhookNotifier(f"http://127.0.0.1:{port}/services/T0/B0/{CANARY} x")
        with pytest.raises(BackendError, match="InvalidURL") as info:
            hook.notify(EVENT)
        assert info.value.__cause__ is None
        result = HttpCheck(f"http://127.0.0.1:{port}/health?token={CANARY} x").run()
        assert "control characters" in result.details
        _assert_clean(
            {"error": str(info.value), "traceback": _formatted(info.value), "check": repr(result)}
        )

    def test_sql_and_http_checks_never_print_credentials(self, planted):
        """SqlCheck and HttpCheck: describe, command, to_dict, repr and failed results are clean."""
        sql = SqlCheck(planted["sql_check_dsn"], "select 1", connect=leaky_connect)
        http = HttpCheck(planted["http_check_url"], timeout=2)
        outputs: dict[str, Any] = {}
        for name, check in {"sql": sql, "http": http}.items():
            result = check.run()
            assert not result.ok
            outputs |= {
                f"{name} repr": repr(check),
                f"{name} describe": check.describe(),
                f"{name} command": check.command(),
                f"{name} to_dict": json.dumps(check.to_dict(), default=str),
                f"{name} result": repr(result),
                f"{name} result dict": json.dumps(result.to_dict(), default=str),
            }
        _assert_clean(outputs)
        assert "password authentication failed" in outputs["sql result"]
        assert "127.0.0.1" in outputs["sql result"]

    def test_probe_dsn_never_prints(self, planted, tmp_path):
        """A StaticEndpoint DSN reaches the driver revealed, and no result or log entry shows it."""
        seen: list[str] = []

        def connect(dsn: str) -> Any:
            seen.append(dsn)
            return leaky_connect(dsn)

        resolver = StaticEndpoint(planted["probe_dsn"], description="local stand-in")
        probe = SqlProbe("select count(*) from orders", expect=3, connect=connect)
        direct = run_probe(probe, ProbeContext(resource=None, endpoint=resolver(None)))
        target = MemoryTarget("db", clock=lambda: NOW)
        point = target.create_backup()
        log = TestLog.open(tmp_path / "testing-log.jsonl")
        result = RestoreTest(probes=[probe]).verify(
            target, point, VerifyContext(now=NOW, endpoint_resolver=resolver)
        )
        log.record(result)
        assert [planted["probe_dsn"]] * 2 == seen
        assert not result.ok
        _assert_clean(
            {
                "resolver": repr(resolver),
                "probe": repr(probe),
                "direct": repr(direct),
                "result": repr(result),
                "evidence": json.dumps(result.to_dict(), default=str),
                "log file": (tmp_path / "testing-log.jsonl").read_text(),
            }
        )


POLICY = """\
name: shop
schedule: {every: day, at: "04:00"}
retention: {max_age: 7d}
targets:
  - {name: db, kind: "testing:memory", application: shop}
  - {name: web, kind: "testing:memory", application: shop}
notifications:
  - kind: webhook
    settings:
      url: {env: SHOP_WEBHOOK_URL}
      headers: {Authorization: {env: SHOP_WEBHOOK_AUTH}, X-Source: backuppolicy}
      timeout: 2
  - kind: webhook
    settings: {url: {env: SHOP_PAGER_URL}, timeout: 2}
  - kind: log
"""

PLAN = """\
name: shop-recovery
application: shop
steps:
  - id: db-answers
    kind: health-check
    check: {kind: sql, database: {env: SHOP_DSN}, query: "select 1", connect: leaky}
  - id: web-answers
    kind: health-check
    check: {kind: http, url: {env: SHOP_HEALTH_URL}, timeout: 2}
"""


@pytest.fixture(name="memory")
def _memory(monkeypatch: pytest.MonkeyPatch) -> dict[str, MemoryTarget]:
    """``testing:memory`` targets that the test keeps (as in test_cli)."""
    kept: dict[str, MemoryTarget] = {}

    def factory(*, name: str, policy: str, **_settings: Any) -> MemoryTarget:
        return kept.setdefault(name, MemoryTarget(name, policy=policy, clock=lambda: NOW))

    monkeypatch.setitem(registry._REGISTERED, "testing:memory", factory)
    monkeypatch.delenv("BACKUPPOLICY_FILE", raising=False)
    monkeypatch.delenv("BACKUPPOLICY_TESTLOG", raising=False)
    for name in ("db", "web"):
        factory(name=name, policy="shop")
    return kept


@pytest.fixture(name="run")
def _run(memory: dict[str, MemoryTarget]) -> Callable[..., tuple[int, str]]:
    def run(*argv: str) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(list(argv), out=out, err=err)
        return code, out.getvalue() + err.getvalue()

    return run


@pytest.fixture(name="files")
def _files(tmp_path: Path, env: dict[str, str]) -> dict[str, Path]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    plan = tmp_path / "recovery.yaml"
    plan.write_text(PLAN)
    return {"policy": policy, "plan": plan, "log": tmp_path / "testing-log.jsonl"}


class TestCanaryThroughFiles:
    def test_every_output_of_a_failing_day_is_clean(self, files, memory, run, caplog, tmp_path):
        """Backups fail, webhooks fail, checks and drills fail: no output holds a planted secret."""
        outputs: dict[str, Any] = {}
        policy = bp.Policy.from_file(files["policy"])
        outputs |= {
            "policy repr": repr(policy),
            "policy markdown": policy.to_markdown(),
            "policy html": policy._repr_html_(),
            "policy summary": policy.summary(),
            "policy yaml": policy.to_yaml(),
            "policy dict": json.dumps(policy.to_dict(), default=str),
        }
        assert bp.Policy.from_dict(policy.to_dict()) == policy
        caplog.set_level(logging.WARNING, logger="matplotlib")
        with caplog.at_level(logging.DEBUG):
            code, outputs["cli doc"] = run("doc", "--policy", str(files["policy"]))
            assert 0 == code
            code, outputs["cli validate"] = run("validate", "--policy", str(files["policy"]))
            memory["db"].fail_next("create_backup", BackendError("boom", backend="db"))
            report = bp.backup(policy, now=NOW, targets=memory)
            memory["db"].fail_next("create_backup", BackendError("boom", backend="db"))
            code, outputs["cli backup --json"] = run(
                "backup", "--policy", str(files["policy"]), "--now", NOW_TEXT, "--json"
            )
            assert 1 == code
            # The restore test's probe connects through a DSN from the environment too.
            resolver = StaticEndpoint(Secret.from_env("SHOP_DSN"), description="stand-in")
            tests = restore_test(
                policy,
                now=NOW,
                targets=memory,
                probes=[SqlProbe("select 1", expect=1, connect=leaky_connect)],
                endpoint_resolver=resolver,
                log=TestLog.open(files["log"]),
            )
            plan = RecoveryPlan.from_file(files["plan"], hooks={"leaky": leaky_connect})
            drill = plan.rehearse(now=NOW, log=TestLog.open(files["log"]), sleep=lambda _s: None)
            code, outputs["cli report"] = run(
                "report",
                "--policy",
                str(files["policy"]),
                "--now",
                NOW_TEXT,
                "--log",
                str(files["log"]),
                "--html",
                str(tmp_path / "report.html"),
                "--notify",
            )
            code, outputs["cli report --json"] = run(
                "report", "--policy", str(files["policy"]), "--now", NOW_TEXT,
                "--log", str(files["log"]), "--json",
            )  # fmt: skip
            code, outputs["cli testlog --json"] = run(
                "testlog", "--log", str(files["log"]), "--json"
            )
            code, outputs["cli testlog"] = run("testlog", "--log", str(files["log"]))
        assert report.notify_failures
        assert [False] == [t.ok for t in tests if t.target == "db"][:1]
        assert not drill.ok
        outputs |= {
            "run report repr": repr(report),
            "run report summary": report.summary(),
            "run report html": report._repr_html_(),
            "run report dict": json.dumps(report.to_dict(), default=str),
            "notify failures": repr(report.notify_failures),
            "notify tracebacks": "".join(_formatted(f.error) for f in report.notify_failures),
            "restore tests": repr(tests),
            "plan repr": repr(plan),
            "plan dict": json.dumps(plan.to_dict(), default=str),
            "runbook": plan.to_markdown(),
            "recovery report": repr(drill),
            "recovery summary": drill.summary(),
            "recovery dict": json.dumps(drill.to_dict(), default=str),
            "recovery rows": repr(drill.rows()),
            "testing log": files["log"].read_bytes().decode(),
            "html report": (tmp_path / "report.html").read_text(),
            "log": _log_text(caplog),
        }
        _assert_clean(outputs)
        # The messages still help: they name where the request went.
        assert "http://127.0.0.1" in outputs["run report dict"]
        assert "SHOP_WEBHOOK_URL" in outputs["policy markdown"]

    def test_a_misshapen_policy_file_never_prints_its_inline_secret(self, run, tmp_path):
        """The list dash forgotten around an inline webhook URL: the file error does not quote it."""
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            POLICY.partition("notifications:")[0]
            + "notifications:\n"
            + f"  kind: webhook\n  settings: {{url: 'https://hooks.slack.com/services/T0/B0/{CANARY}'}}\n"
        )
        outputs: dict[str, Any] = {}
        with pytest.raises(PolicyError, match="notifications") as info:
            bp.Policy.from_file(policy)
        outputs |= {"error": str(info.value), "traceback": _formatted(info.value)}
        for command in ("validate", "doc"):
            code, outputs[f"cli {command}"] = run(command, "--policy", str(policy))
            assert 0 != code
        _assert_clean(outputs)

    def test_missing_variable_is_reported_when_sending(self, files, memory, monkeypatch):
        """References are resolved when the notifier sends; a missing one names the variable."""
        policy = bp.Policy.from_file(files["policy"])
        monkeypatch.delenv("SHOP_WEBHOOK_URL")
        memory["db"].fail_next("create_backup", BackendError("boom", backend="db"))
        report = bp.backup(policy, now=NOW, targets=memory)
        errors = [str(f.error) for f in report.notify_failures]
        assert any("{env: SHOP_WEBHOOK_URL}" in e and "not set" in e for e in errors), errors
