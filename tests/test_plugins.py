"""The plug-in registry of core/registry.py: how the layers above reach aws/ without importing it."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from backuppolicy.core import registry
from backuppolicy.core.exceptions import BackendError, BackendNotFoundError, PolicyError
from backuppolicy.core.policy import Policy
from backuppolicy.core.resolution import Resolution, get_resolver, stands_for_itself
from backuppolicy.core.targets import get_plugin, known_plugins, register_plugin
from backuppolicy.workflows import _audit
from backuppolicy.workflows.backups import build_targets
from backuppolicy.workflows.testlog import S3LogStore, TestLog

NOW = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)


@pytest.fixture(autouse=True, name="clean_plugins")
def _clean_plugins(monkeypatch):
    """Every test starts from the built-in plug-ins only."""
    monkeypatch.setattr(registry, "_REGISTERED_PLUGINS", {g: {} for g in registry.PLUGIN_GROUPS})


def _policy(*specs: dict[str, Any]) -> Policy:
    return Policy.from_dict(
        {
            "name": "web",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": "35d"},
            "tiers": [{"name": "local", "every": "day"}],
            "targets": list(specs),
        }
    )


_DBS = {"name": "dbs", "kind": "rds-instance", "selector": {"tags": {"backup": "daily"}}}
_DB = {"name": "orders", "kind": "rds-instance", "settings": {"db_instance_id": "orders"}}


class _FakeResolver:
    """A resolver of the ``resolver`` group that records its calls and finds nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def default_session(self) -> Any:
        self.calls.append(("default_session", None))
        return "the-session"

    def resolve_targets(self, specs: Iterable[Any], **options: Any) -> list[Resolution]:
        specs = list(specs)
        self.calls.append(("resolve_targets", options))
        return [
            Resolution(spec, errors=("searched nowhere",), exception=PolicyError("no"))
            if spec.selector is not None
            else stands_for_itself(spec, session=options["session"])
            for spec in specs
        ]

    def unprotected_resources(self, policy: Policy, **options: Any) -> list[dict[str, Any]]:
        self.calls.append(("unprotected_resources", options))
        arn = "arn:aws:rds:eu-west-2:111111111111:db:stray"
        return [{"arn": arn, "kind": "rds-instance", "region": "eu-west-2", "id": "stray"}]


class TestGetPlugin:
    def test_builtin_resolver_is_aws_discovery(self):
        """The 'aws' resolver is the module backuppolicy.aws.discovery, imported on lookup."""
        from backuppolicy.aws import discovery

        assert (discovery, discovery) == (get_plugin("resolver", "aws"), get_resolver())

    def test_builtin_object_store(self):
        """Scheme 's3' of the object-store group is backuppolicy.aws.S3Objects."""
        from backuppolicy.aws import S3Objects

        assert S3Objects is get_plugin("object-store", "s3")

    def test_registered_object_wins(self):
        """A registered plug-in replaces the built-in one of the same name."""
        fake = _FakeResolver()
        register_plugin("resolver", "aws", fake)
        assert fake is get_resolver("aws")

    def test_registered_string_with_dotted_attribute(self):
        """'module:Class.attr' resolves the attribute of the class."""
        register_plugin("object-store", "mem", "backuppolicy.workflows.testlog:TestLog.open")
        assert TestLog.open == get_plugin("object-store", "mem")

    def test_entry_point(self, monkeypatch):
        """A name of the group's entry points resolves to what it names (here: a module)."""
        point = EntryPoint(name="gcp", value="backuppolicy.core.selector", group="x")

        def entry_points(*, group: str) -> list[EntryPoint]:
            return [point] if group == "backuppolicy.resolvers" else []

        monkeypatch.setattr(registry, "entry_points", entry_points)
        from backuppolicy.core import selector

        assert (selector, ("aws", "gcp")) == (get_resolver("gcp"), known_plugins("resolver"))

    def test_unknown_name_lists_the_known(self):
        """A miss names the group, what is known and the entry-point group."""
        with pytest.raises(
            BackendNotFoundError, match=r"expected one of aws .*'backuppolicy\.resolvers'"
        ) as info:
            get_resolver("gcp")
        assert ("gcp", ("aws",)) == (info.value.name, info.value.known)

    def test_unknown_group(self):
        """Only the groups of PLUGIN_GROUPS exist."""
        with pytest.raises(PolicyError, match="object-store, resolver"):
            register_plugin("stores", "s3", object())

    def test_unimportable_module_names_the_package(self):
        """A registered module that fails to import says what to install."""
        register_plugin("resolver", "broken", "backuppolicy.aws.no_such_module")
        with pytest.raises(BackendNotFoundError, match="Install boto3"):
            get_resolver("broken")


class TestWorkflowsUseTheRegistry:
    """Workflows reach the resolver by name; replacing it in the registry is enough."""

    def test_build_targets_resolves_selectors_through_the_registry(self):
        """A selector target goes to the registered 'aws' resolver, with its default session."""
        fake = _FakeResolver()
        register_plugin("resolver", "aws", fake)
        built = build_targets(_policy(_DBS))
        with pytest.raises(PolicyError, match="searched nowhere"):
            list(built["dbs"].list_points())
        assert ["default_session", "resolve_targets"] == [name for name, _ in fake.calls]
        assert "the-session" == fake.calls[1][1]["session"]

    def test_local_only_policy_never_asks_the_resolver(self, tmp_path: Path):
        """Without selectors, accounts or AWS kinds, targets stand for themselves: no resolver."""
        fake = _FakeResolver()
        register_plugin("resolver", "aws", fake)
        (tmp_path / "etc").mkdir()
        policy = Policy.from_dict(
            {
                "name": "web",
                "schedule": {"every": "day", "at": "04:00"},
                "retention": {"max_age": "35d"},
                "tiers": [
                    {
                        "name": "local",
                        "every": "day",
                        "location": {"store": str(tmp_path / "vault")},
                    }
                ],
                "targets": [
                    {
                        "name": "cfg",
                        "kind": "directory",
                        "settings": {"path": str(tmp_path / "etc")},
                    }
                ],
            }
        )
        assert (["cfg"], []) == (list(build_targets(policy)), fake.calls)

    def test_local_only_build_imports_no_boto3(self, tmp_path: Path):
        """Building a directory-only policy's targets keeps boto3 and backuppolicy.aws unloaded."""
        (tmp_path / "etc").mkdir()
        code = textwrap.dedent(
            f"""
            import json, sys
            from backuppolicy import Policy, build_targets
            policy = Policy.from_dict({{
                "name": "web", "schedule": {{"every": "day", "at": "04:00"}},
                "retention": {{"max_age": "35d"}},
                "tiers": [{{"name": "local", "every": "day", "location": {{"store": {str(tmp_path / "vault")!r}}}}}],
                "targets": [{{"name": "cfg", "kind": "directory",
                              "settings": {{"path": {str(tmp_path / "etc")!r}}}}}],
            }})
            build_targets(policy)
            print(json.dumps([m in sys.modules for m in ("boto3", "backuppolicy.aws")]))
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
        )
        assert [False, False] == json.loads(result.stdout.strip().splitlines()[-1])

    def test_audit_coverage_asks_the_registered_resolver(self):
        """The audit's coverage search is the registered resolver's unprotected_resources."""
        fake = _FakeResolver()
        register_plugin("resolver", "aws", fake)
        findings = _audit._coverage(_policy(_DB), session="s", endpoint_url=None)
        assert [("stray", False)] == [(f.subject, f.compliant) for f in findings]
        assert [
            ("unprotected_resources", {"regions": [], "session": "s", "endpoint_url": None})
        ] == fake.calls


class _MemoryObjects:
    """An object store of the ``object-store`` group that keeps objects in a dict."""

    def __init__(self, bucket: str, *, name: str | None = None, **_options: Any) -> None:
        self.bucket = bucket
        self.backend = type("Backend", (), {"name": name or bucket})()
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, body: bytes, *, if_none_match: bool = False, **_options: Any) -> bool:
        if if_none_match and key in self.objects:
            return False
        self.objects[key] = body
        return True

    def get_bounded(self, key: str, limit: int) -> tuple[bytes, bool]:
        if key not in self.objects:
            raise BackendError(f"{key} not found", backend=self.bucket, operation="GetObject")
        body = self.objects[key]
        return body[: limit + 1], len(body) > limit

    def list_pages(
        self, prefix: str, *, start_after: str | None = None, **_options: Any
    ) -> Iterator[list[tuple[str, datetime]]]:
        keys = sorted(k for k in self.objects if k.startswith(prefix) and k > (start_after or ""))
        yield [(key, NOW) for key in keys]

    @contextlib.contextmanager
    def open_reader(self, key: str) -> Iterator[Any]:  # pragma: no cover - not used by the log
        raise NotImplementedError
        yield


class TestStoresUseTheObjectStore:
    def test_s3_log_store_writes_through_the_registered_object_store(self):
        """S3LogStore keeps its format and makes every storage call through the 's3' object store."""
        register_plugin("object-store", "s3", _MemoryObjects)
        log = TestLog.open("s3://logs/web", ran_by="ops", clock=lambda: NOW)
        from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus

        entry = log.record(
            CheckResult(
                check="restore-test",
                target="orders",
                status=CheckStatus.PASS,
                checked_at=NOW,
                kind=CheckKind.RESTORE_TEST,
            )
        )
        store = log.store
        assert isinstance(store, S3LogStore)
        assert isinstance(store.objects, _MemoryObjects)
        assert ([store.key_for(entry)], [entry.id]) == (
            list(store.objects.objects),
            [e.id for e in log.store.read()],
        )
