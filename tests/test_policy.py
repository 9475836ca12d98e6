"""Tests for backuppolicy.core.policy: loading, validation, dumping, lookups and reprs."""

from __future__ import annotations

import contextlib
import copy
import html
import json
import os
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.loading import PolicyLoader, load_yaml
from backuppolicy.core.policy import (
    BUILTIN_TARGET_KINDS,
    EVENTS,
    MAX_POLICY_BYTES,
    NotificationSpec,
    Objective,
    Policy,
    PolicyLookupError,
    TargetSpec,
    TierSpec,
    VerificationSpec,
)
from backuppolicy.core.retention import rule_from_spec
from backuppolicy.core.schedule import Cadence, Schedule

EXAMPLES = Path(__file__).parent.parent / "examples"


def _minimal() -> dict[str, Any]:
    """The smallest valid policy as plain data."""
    return {
        "name": "web-apps",
        "schedule": Schedule.daily(at="04:00", tz="GMT").to_spec(),
        "retention": {"max_age": "35d"},
        "tiers": [
            {"name": "local", "every": "day"},
            {"name": "offsite", "every": "week", "location": {"region": "eu-west-1"}},
        ],
        "targets": [
            {"name": "orders-db", "kind": "rds-instance", "settings": {"db_instance_id": "orders"}},
            {"name": "assets", "kind": "s3-bucket", "settings": {"bucket": "acme-assets"}},
            {"name": "config", "kind": "directory", "settings": {"path": "/etc/shop"}},
        ],
    }


@pytest.fixture(name="data")
def _data() -> dict[str, Any]:
    """A fresh, valid policy dict that a test may mutate."""
    return _minimal()


@pytest.fixture(name="example")
def _example() -> Policy:
    """The seed policy, loaded from examples/policy.yaml."""
    return Policy.from_file(EXAMPLES / "policy.yaml")


def _error(data: Any) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(data)
    return info.value


class TestExamplePolicy:
    """examples/policy.yaml encodes the written (seed) policy exactly."""

    def test_schedule_is_daily_at_four_gmt(self, example):
        """§1.1/§1.2: the backups run every day at 04:00 GMT."""
        assert ("0 4 * * *", "GMT") == (example.schedule.cron, example.schedule.tz)

    def test_retention_is_35_days(self, example):
        """§2.1: backups are kept for 35 days."""
        assert {"max_age": "35d"} == example.retention.to_spec()

    def test_tiers_are_daily_local_and_weekly_offsite(self, example):
        """§1.4: a daily local copy and a weekly off-site copy in another region."""
        tiers = {tier.name: tier for tier in example.tiers}
        assert Cadence.DAY == tiers["local"].every
        assert Cadence.WEEK == tiers["offsite"].every
        assert "eu-west-1" == tiers["offsite"].location["region"]
        assert {"eu-west-2"} == {
            t.settings["region"] for t in example.targets if "region" in t.settings
        }

    def test_targets_cover_the_critical_components(self, example):
        """§1.1, §7, §8: databases, VMs, S3 assets, configuration files and application code."""
        kinds = {target.kind for target in example.targets}
        assert {"rds-instance", "ec2-instance", "s3-bucket", "directory"} == kinds
        assert example.target("assets").settings["versioning"] is True

    def test_rolling_full_backups_over_a_week(self, example):
        """§1.5: a full backup of everything completes over one week."""
        assert Cadence.WEEK == example.rolling_period

    def test_verification_cadences(self, example):
        """§3.2, §3.3, §4.1, §4.2: quarterly tests, yearly per application, yearly integrity."""
        v = example.verification
        assert (Cadence.QUARTER, Cadence.YEAR, Cadence.YEAR) == (
            v.restore_test_every,
            v.restore_test_per_application_every,
            v.integrity_check_every,
        )
        assert ("local", "offsite") == v.integrity_covers_tiers
        assert v.require_encryption
        assert v.require_private

    def test_rpo_is_derived_from_the_daily_schedule(self, example):
        """A daily schedule means an RPO of 24 hours, and the seed sets no RTO."""
        assert [(Duration(hours=24), None)] * 2 == [
            (example.objective_for(app).rpo, example.objective_for(app).rto)
            for app in example.applications
        ]

    def test_failed_backups_are_notified(self, example):
        """§1.7: key personnel hear about failed backups."""
        assert all("backup_failed" in spec.on for spec in example.notifications)
        assert "sns" == example.notifications[0].kind

    def test_toml_example_is_the_same_policy(self, example):
        """examples/policy.toml encodes the same policy as the YAML file."""
        assert example == Policy.from_file(EXAMPLES / "policy.toml")


class TestLoading:
    """Policy.from_file / from_yaml / from_toml."""

    def test_missing_file_names_the_file(self, tmp_path):
        """A missing file is a PolicyError naming the file, not FileNotFoundError."""
        missing = tmp_path / "nope.yaml"
        with pytest.raises(PolicyError, match=re.escape(str(missing))):
            Policy.from_file(missing)

    def test_unknown_suffix(self, tmp_path):
        """Only .yaml, .yml and .toml are read."""
        path = tmp_path / "policy.json"
        path.write_text("{}")
        with pytest.raises(PolicyError, match=r"\.yaml, \.yml or \.toml"):
            Policy.from_file(path)

    def test_unreadable_file(self, tmp_path):
        """A directory or undecodable bytes give a PolicyError naming the file."""
        folder = tmp_path / "dir.yaml"
        folder.mkdir()
        binary = tmp_path / "bin.yml"
        binary.write_bytes(b"\xff\xfe\x00name")
        for path in (folder, binary):
            with pytest.raises(PolicyError, match=re.escape(str(path))):
                Policy.from_file(path)

    def test_yaml_syntax_error_names_file_and_line(self, tmp_path):
        """A YAML syntax error says file:line:column of where the unclosed '[' started."""
        path = tmp_path / "policy.yaml"
        path.write_text("name: x\nretention:\n  max_age: [35d\n")
        with pytest.raises(PolicyError) as info:
            Policy.from_file(path)
        assert str(info.value).startswith(f"{path}:3:12:")  # was :4:, where PyYAML gave up

    def test_yaml_unterminated_string_names_where_it_started(self, tmp_path):
        """An unclosed quote is reported at its start, with the line where PyYAML gave up too."""
        path = tmp_path / "policy.yaml"
        path.write_text(
            'name: x\ndescription: ok\nowner:   "ops team\nretention:\n  max_age: 35d\n'
        )
        with pytest.raises(PolicyError) as info:
            Policy.from_file(path)
        message = str(info.value)
        assert message.startswith(f"{path}:3:10:")
        assert "unterminated string starting at line 3, column 10;" in message
        assert "at line 6, column 1" in message

    def test_unknown_kind_suggests_the_kind_of_the_same_service(self):
        """kind: rds-database is too far from rds-instance for difflib; the service prefix is not."""
        with pytest.raises(PolicyError, match="Did you mean 'rds-instance'"):
            TargetSpec.from_dict({"name": "db", "kind": "rds-database", "settings": {}})

    def test_toml_syntax_error_names_file_and_line(self, tmp_path):
        """A TOML syntax error names the file and the line."""
        path = tmp_path / "policy.toml"
        path.write_text('name = "x"\nretention = {max_age = }\n')
        with pytest.raises(PolicyError, match=re.escape(str(path)) + r".*line 2"):
            Policy.from_file(path)

    def test_validation_error_names_line_of_the_field(self, tmp_path):
        """A bad field in a YAML file is reported at its line, with its path."""
        text = (EXAMPLES / "policy.yaml").read_text().replace("max_age: 35d", "max_age: soon")
        line = text.splitlines().index("  max_age: soon") + 1
        path = tmp_path / "policy.yaml"
        path.write_text(text)
        with pytest.raises(PolicyError) as info:
            Policy.from_file(path)
        assert f"{path}:{line}: retention.max_age: expected" in str(info.value)
        assert "retention.max_age" == info.value.path

    def test_duplicate_yaml_key(self):
        """A key given twice is an error (PyYAML would silently keep the last one)."""
        with pytest.raises(PolicyError, match=r"<string>:3:.*'name' twice"):
            Policy.from_yaml("name: a\nretention: {max_age: 35d}\nname: b\n")

    def test_yaml_1_1_pitfalls(self, data):
        """`on:` stays a key, `04:00` stays text, `no` stays text (YAML 1.2 scalars)."""
        data["notifications"] = [{"kind": "log", "on": ["overdue"]}]
        text = Policy.from_dict(data).to_yaml()
        assert "on:" in text
        loaded = Policy.from_yaml(text.replace("'on':", "on:"))
        assert ("overdue",) == loaded.notifications[0].on
        assert {"a": "04:00", "b": "no", "c": True, "d": 12} == load_yaml(
            "a: 04:00\nb: no\nc: true\nd: 12\n"
        )[0]

    def test_yaml_top_level_must_be_a_mapping(self):
        """A YAML list is not a policy."""
        with pytest.raises(PolicyError, match=r"expected a mapping"):
            Policy.from_yaml("- a\n- b\n")


_INVALID = [
    ((), {"retension": {}}, "retension", "Did you mean 'retention'?"),
    (
        ("targets", 2),
        {"retention": {"max_age": "soon"}},
        "targets[2].retention.max_age",
        "'soon'",
    ),
    (("tiers", 1), {"every": "fortnightly"}, "tiers[1].every", "'fortnightly'"),
    (("tiers", 1), {"evry": "week"}, "tiers[1].evry", "Did you mean 'every'?"),
    (
        (),
        {"notifications": [{"kind": "sns", "settings": {"topic_arn": "backup-alerts"}}]},
        "notifications[0].settings.topic_arn",
        "an SNS topic ARN",
    ),
    (
        (),
        {"notifications": [{"kind": "sns", "settings": {}}]},
        "notifications[0].settings.topic_arn",
        "required",
    ),
    (
        (),
        {"notifications": [{"kind": "log", "on": ["backup_faild"]}]},
        "notifications[0].on[0]",
        "Did you mean 'backup_failed'?",
    ),
    (("targets", 1), {"name": "orders-db"}, "targets[1].name", "'orders-db'"),
    (("tiers", 1), {"name": "local"}, "tiers[1].name", "'local'"),
    (("targets", 0), {"tiers": ["ofsite"]}, "targets[0].tiers[0]", "Did you mean 'offsite'?"),
    (
        (),
        {"objectives": [{"application": "shopp", "rpo": "24h"}]},
        "objectives[0].application",
        "",
    ),
    ((), {"targets": {"orders-db": {}}}, "targets", "a list of targets"),
    (("targets", 0), {"settings": ["db_instance_id"]}, "targets[0].settings", "a mapping"),
    (("targets", 0), {"enabled": "yes"}, "targets[0].enabled", "true or false"),
    (
        ("targets", 0),
        {"retention": {"keep_daily": "seven"}},
        "targets[0].retention.keep_daily",
        "",
    ),
    (
        ("targets", 0),
        {"kind": "rds-instnace"},
        "targets[0].kind",
        "Did you mean 'rds-instance'?",
    ),
    (
        ("targets", 0),
        {"settings": {"db_instance": "x"}},
        "targets[0].settings.db_instance",
        "Did",
    ),
    (
        ("targets", 2),
        {"settings": {"path": "etc/shop"}},
        "targets[2].settings.path",
        "absolute",
    ),
    (("targets", 0), {"name": "orders db"}, "targets[0].name", "letters, digits"),
    ((), {"timezone": "Mars/Olympus"}, "timezone", "IANA"),
    ((), {"rolling_period": "hour"}, "rolling_period", "a day or longer"),
    (
        (),
        {"verification": {"integrity_covers_tiers": ["cold"]}},
        "verification.integrity_covers_tiers[0]",
        "",
    ),
    (
        (),
        {"verification": {"isolation": {"subnet": "x"}}},
        "verification.isolation.subnet",
        "Did",
    ),
    (
        (),
        {"verification": {"restore_test_every": 3}},
        "verification.restore_test_every",
        "'quarter'",
    ),
    ((), {"tiers": ["local"]}, "tiers[0]", "a mapping"),
    (
        ("tiers", 1),
        {"location": {"region": "Europe"}},
        "tiers[1].location.region",
        "AWS region",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "error_path", "fragment"),
    _INVALID,
    ids=[f"{case[2]}-{n}" for n, case in enumerate(_INVALID)],
)
def test_validation_errors_name_the_field(data, path, value, error_path, fragment):
    """Every invalid field is a PolicyError whose path and message name it."""
    node = data
    for key in path:
        node = node[key]
    node.update(value)
    error = _error(data)
    assert error_path == error.path
    assert str(error).startswith(f"{error_path}: expected ")
    assert fragment in str(error)


class TestValidation:
    """Structural checks beyond single fields."""

    def test_missing_required_key(self, data):
        """A missing required key is named."""
        del data["targets"][1]["kind"]
        assert "targets[1].kind" == _error(data).path

    def test_not_a_mapping(self):
        """The policy itself must be a mapping."""
        assert "" == _error(["name"]).path

    def test_objective_for_unknown_application(self, data):
        """Objectives refer to applications of the targets (did-you-mean included)."""
        data["targets"][0]["application"] = "shop"
        data["objectives"] = [{"application": "sho", "rpo": "24h"}]
        error = _error(data)
        assert "objectives[0].application" == error.path
        assert "Did you mean 'shop'?" in str(error)

    def test_duplicate_objective(self, data):
        """One objective per application."""
        data["objectives"] = [{"application": "assets", "rpo": "24h"}] * 2
        assert "objectives[1].application" == _error(data).path

    def test_plugin_kind_needs_package_prefix(self, data):
        """An unknown kind is accepted as 'package:kind', with free settings."""
        data["targets"].append({"name": "nas", "kind": "acme_nas:share", "settings": {"x": [1]}})
        policy = Policy.from_dict(data)
        assert {"x": [1]} == policy.target("nas").settings
        data["targets"][-1]["kind"] = "share"
        assert "targets[3].kind" == _error(data).path

    def test_constructor_errors_name_fields(self):
        """Building specs in Python validates the same way, naming the field."""
        with pytest.raises(PolicyError, match=r"^settings\.db_instance_id: "):
            TargetSpec("orders-db", "rds-instance")
        with pytest.raises(PolicyError, match=r"^settings\.url: "):
            NotificationSpec("webhook")
        with pytest.raises(PolicyError, match=r"^isolation\.subnets: "):
            VerificationSpec(isolation={"subnets": []})
        with pytest.raises(PolicyError, match=r"^rpo: "):
            Objective("shop", rpo=Duration())

    def test_policy_constructor_checks_references(self):
        """Policy(...) checks duplicate names and tier references too."""
        target = TargetSpec("a", "directory", settings={"path": "/a"}, tiers=("cold",))
        with pytest.raises(PolicyError, match=r"^targets\[0\]\.tiers\[0\]: "):
            Policy(
                "p",
                schedule=Schedule.daily(),
                retention=rule_from_spec({"max_age": "35d"}),
                targets=[target],
            )
        with pytest.raises(PolicyError, match=r"^targets\[1\]: expected a TargetSpec"):
            Policy(
                "p",
                schedule=Schedule.daily(),
                retention=rule_from_spec({"max_age": "35d"}),
                targets=[attrs.evolve(target, tiers=None), "b"],
            )

    def test_schedule_inherits_the_policy_timezone(self, data):
        """A schedule without tz uses the policy's time zone."""
        data["timezone"] = "Europe/London"
        data["schedule"] = {key: v for key, v in data["schedule"].items() if key != "tz"}
        assert "Europe/London" == Policy.from_dict(data).schedule.tz
        data["schedule"] = "0 4 * * *"
        assert "Europe/London" == Policy.from_dict(data).schedule.tz


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_KEYS = st.sampled_from(
    [
        "name",
        "schedule",
        "retention",
        "tiers",
        "targets",
        "verification",
        "objectives",
        "notifications",
        "timezone",
        "rolling_period",
        "kind",
        "settings",
        "every",
        "on",
        "max_age",
    ]
)


def _mutate(data: Any, draw: Any) -> Any:
    """Replace one randomly chosen node of *data* by garbage."""
    if isinstance(data, dict) and data and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(data)))
        data[key] = _mutate(data[key], draw)
        return data
    if isinstance(data, list) and data and draw(st.booleans()):
        index = draw(st.integers(0, len(data) - 1))
        data[index] = _mutate(data[index], draw)
        return data
    return draw(_JSON | st.dictionaries(_KEYS, _JSON, max_size=3))


class TestGarbage:
    """Bad input never escapes as anything but PolicyError."""

    @given(_JSON | st.dictionaries(_KEYS, _JSON, max_size=6))
    def test_random_data(self, garbage):
        """Random JSON-like data gives a Policy or a PolicyError."""
        with contextlib.suppress(PolicyError):
            assert isinstance(Policy.from_dict(garbage), Policy)

    @given(st.data())
    def test_mutated_example(self, data):
        """The example with one node replaced by garbage gives a Policy or a PolicyError."""
        mutated = _mutate(copy.deepcopy(EXAMPLE_DATA), data.draw)
        error: PolicyError | None = None
        try:
            assert isinstance(Policy.from_dict(mutated), Policy)
        except PolicyError as exc:
            error = exc
        if error is not None and error.path:
            assert str(error).startswith(f"{error.path}: ")

    @given(st.text(max_size=60))
    def test_random_yaml(self, text):
        """Random text as YAML gives a Policy or a PolicyError."""
        with contextlib.suppress(PolicyError):
            assert isinstance(Policy.from_yaml(text), Policy)


EXAMPLE_DATA = Policy.from_file(EXAMPLES / "policy.yaml").to_dict()

_NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
_DURATIONS = st.sampled_from(["35d", "24h", "1w", "1y2m3d4h", "90min", "6m"])
_CADENCES = st.sampled_from(["hour", "day", "week", "month", "quarter", "year"])
_RETENTION = st.dictionaries(
    st.sampled_from(["max_age", "keep_daily", "keep_weekly", "keep_last", "keep_within"]),
    st.integers(1, 30),
    min_size=1,
    max_size=3,
).map(
    lambda spec: {
        key: (f"{value}d" if key in ("max_age", "keep_within") else value)
        for key, value in spec.items()
    }
)
_SCHEDULES = st.builds(
    lambda hour, tz, window: Schedule.daily(at=f"{hour:02d}:30", tz=tz, window=window).to_spec(),
    st.integers(0, 23),
    st.sampled_from(["UTC", "GMT", "Europe/London"]),
    st.sampled_from(["1h", "2h", "30min"]),
)
_SETTINGS = {
    "rds-instance": st.fixed_dictionaries(
        {"db_instance_id": _NAMES}, optional={"region": st.just("eu-west-1")}
    ),
    "aurora-cluster": st.fixed_dictionaries({"db_cluster_id": _NAMES}),
    "ec2-instance": st.fixed_dictionaries(
        {"instance_id": _NAMES}, optional={"no_reboot": st.booleans()}
    ),
    "ebs-volume": st.fixed_dictionaries({"volume_id": _NAMES}, optional={"kms_key_id": _NAMES}),
    "s3-bucket": st.fixed_dictionaries(
        {"bucket": _NAMES}, optional={"prefix": st.text(max_size=5), "versioning": st.booleans()}
    ),
    "directory": st.fixed_dictionaries(
        {"path": _NAMES.map(lambda n: f"/srv/{n}")},
        optional={"exclude": st.lists(_NAMES, max_size=2)},
    ),
    "aws-backup": st.fixed_dictionaries(
        {"resource_arn": _NAMES.map(lambda n: f"arn:aws:rds:eu-west-1:123456789012:db:{n}")}
    ),
}
_NOTIFICATIONS = st.one_of(
    st.fixed_dictionaries({"kind": st.just("log"), "settings": st.just({"level": "ERROR"})}),
    st.fixed_dictionaries(
        {
            "kind": st.just("sns"),
            "settings": st.just({"topic_arn": "arn:aws:sns:eu-west-1:123456789012:alerts"}),
        }
    ),
    st.fixed_dictionaries(
        {"kind": st.just("webhook"), "settings": st.just({"url": "https://hooks.example/x"})}
    ),
).flatmap(
    lambda spec: st.lists(st.sampled_from(EVENTS), min_size=1, unique=True).map(
        lambda on: {**spec, "on": on}
    )
)


_ACCOUNTS = st.sampled_from(
    [
        "arn:aws:iam::222222222222:role/backup",
        {"role_arn": "arn:aws:iam::333333333333:role/bp", "external_id": "tenant-7"},
    ]
)
_SELECTOR_TARGETS = st.fixed_dictionaries(
    {
        "name": st.just("Found"),
        "selector": st.fixed_dictionaries(
            {"tags": st.sampled_from([{"backup": "daily"}, ["backup"]])},
            optional={
                "kinds": st.lists(
                    st.sampled_from(["rds-instance", "ebs-volume", "s3-bucket"]),
                    min_size=1,
                    max_size=2,
                    unique=True,
                ),
                "name": st.just("shop-*"),
            },
        ),
    },
    optional={
        "regions": st.lists(st.sampled_from(["eu-west-1", "eu-west-2"]), unique=True),
        "account": _ACCOUNTS,
        "settings": st.just({"kms_key_id": "k"}),
        "application": st.sampled_from(["shop", "blog"]),
    },
)


@st.composite
def _policies(draw: Any) -> dict[str, Any]:
    """Valid policies as plain data."""
    tier_names = draw(st.lists(st.sampled_from(["local", "offsite", "archive"]), unique=True))
    tiers = []
    for name in tier_names:
        tier: dict[str, Any] = {"name": name, "every": draw(_CADENCES | _SCHEDULES)}
        tier["location"] = draw(
            st.sampled_from([{}, {"region": "eu-west-1", "kms_key_id": "k"}, {"store": "/srv/b"}])
        )
        if draw(st.booleans()):
            tier["retention"] = draw(_RETENTION)
        tiers.append(tier)
    targets = []
    for name in draw(st.lists(_NAMES, unique=True, max_size=5)):
        kind = draw(st.sampled_from(BUILTIN_TARGET_KINDS))
        target: dict[str, Any] = {"name": name, "kind": kind, "settings": draw(_SETTINGS[kind])}
        if draw(st.booleans()):
            target["application"] = draw(st.sampled_from(["shop", "blog"]))
        if draw(st.booleans()):
            target["retention"] = draw(_RETENTION)
        if draw(st.booleans()):
            target["schedule"] = draw(_SCHEDULES)
        if tier_names and draw(st.booleans()):
            target["tiers"] = draw(st.lists(st.sampled_from(tier_names), unique=True))
        target["enabled"] = draw(st.booleans())
        if draw(st.booleans()):
            target["account"] = draw(_ACCOUNTS)
        targets.append(target)
    if draw(st.booleans()):  # upper case: no generated name starts with the reserved "Found-"
        targets.append(draw(_SELECTOR_TARGETS))
    applications = list(dict.fromkeys(t.get("application", t["name"]) for t in targets))
    objectives = (
        [
            {"application": app, "rpo": draw(_DURATIONS)}
            | ({"rto": draw(_DURATIONS)} if draw(st.booleans()) else {})
            for app in draw(st.lists(st.sampled_from(applications), unique=True))
        ]
        if applications
        else []
    )
    verification = {
        "restore_test_every": draw(_CADENCES),
        "integrity_covers_tiers": draw(st.lists(st.sampled_from(tier_names), unique=True))
        if tier_names
        else [],
        "isolation": draw(st.sampled_from([{}, {"subnet_group": "g", "tags": {"a": "b"}}])),
        "freshness_grace": draw(_DURATIONS),
        "require_private": draw(st.booleans()),
    }
    return {
        "name": draw(_NAMES),
        "description": draw(st.text(max_size=20)),
        "timezone": draw(st.sampled_from(["UTC", "GMT", "Europe/Berlin"])),
        "schedule": draw(_SCHEDULES),
        "retention": draw(_RETENTION),
        "rolling_period": draw(
            st.none() | st.sampled_from(["day", "week", "month", "quarter", "year"])
        ),
        "tiers": tiers,
        "targets": targets,
        "verification": verification,
        "objectives": objectives,
        "notifications": draw(st.lists(_NOTIFICATIONS, max_size=2)),
    }


class TestRoundTrip:
    """to_dict / to_yaml give back an equal policy."""

    def test_example_round_trips(self, example):
        """The example survives to_dict, to_yaml and JSON."""
        assert example == Policy.from_dict(example.to_dict())
        assert example == Policy.from_yaml(example.to_yaml())
        assert example == Policy.from_dict(json.loads(json.dumps(example.to_dict())))

    @settings(max_examples=50)
    @given(_policies())
    def test_generated_policies_round_trip(self, data):
        """Policy.from_dict(p.to_dict()) == p and the same through YAML."""
        policy = Policy.from_dict(data)
        assert policy == Policy.from_dict(policy.to_dict())
        assert policy == Policy.from_yaml(policy.to_yaml())

    @pytest.mark.parametrize("text", ["\x85", "img\u2028/", "a\u2029b"])
    def test_yaml_line_break_characters_survive(self, data, text):
        """A value holding a character YAML reads as a line break (NEL, LS, PS) comes back as is."""
        (assets,) = [t for t in data["targets"] if t["kind"] == "s3-bucket"]
        assets["settings"]["prefix"] = text
        policy = Policy.from_dict(data)
        assert policy == Policy.from_yaml(policy.to_yaml())

    def test_dump_is_canonical(self, data):
        """Dumping twice gives the same text, with defaults written out."""
        policy = Policy.from_dict(data)
        text = policy.to_yaml()
        assert text == Policy.from_yaml(text).to_yaml()
        assert "restore_test_every: quarter" in text
        assert "application: orders-db" in text


class TestLookups:
    """target(), targets_for(), tiers_for(), retention_for(), objective_for()."""

    def test_target_lookup(self, example):
        """target(name) finds the spec; a typo suggests the closest name."""
        assert "rds-instance" == example.target("shop-db").kind
        with pytest.raises(PolicyLookupError, match="Did you mean 'shop-db'") as info:
            example.target("shop_db")
        assert isinstance(info.value, LookupError)
        assert "shop_db" == info.value.name

    def test_targets_for_application(self, example):
        """targets_for lists an application's targets in file order."""
        assert ["blog-db"] == [t.name for t in example.targets_for("blog")]
        with pytest.raises(PolicyLookupError, match="Did you mean 'blog'"):
            example.targets_for("blg")

    def test_tiers_for(self, data):
        """A target without tiers uses every tier; with a list, only those."""
        data["targets"][0]["tiers"] = ["offsite"]
        policy = Policy.from_dict(data)
        assert ["offsite"] == [t.name for t in policy.tiers_for("orders-db")]
        assert ["local", "offsite"] == [t.name for t in policy.tiers_for("assets")]

    def test_retention_resolution(self, data):
        """The target's own retention beats the tier's, which beats the policy's."""
        data["tiers"][1]["retention"] = {"max_age": "1y"}
        data["targets"][0]["retention"] = {"keep_daily": 7}
        policy = Policy.from_dict(data)
        assert {"keep_daily": 7} == policy.retention_for("orders-db", "offsite").to_spec()
        assert {"max_age": "1y"} == policy.retention_for("assets", "offsite").to_spec()
        assert {"max_age": "35d"} == policy.retention_for("assets", "local").to_spec()
        assert {"max_age": "35d"} == policy.retention_for(policy.target("assets")).to_spec()
        with pytest.raises(PolicyLookupError):
            policy.retention_for("assets", "cold")

    def test_schedule_override(self, data):
        """A target's schedule replaces the policy's for that target only."""
        data["targets"][0]["schedule"] = Schedule.daily(at="01:00").to_spec()
        policy = Policy.from_dict(data)
        assert policy.schedule != policy.schedule_for("orders-db")
        assert policy.schedule == policy.schedule_for("assets")

    def test_objective_explicit_and_derived(self, data):
        """An explicit objective wins; otherwise RPO follows the schedule's longest gap."""
        data["objectives"] = [{"application": "assets", "rpo": "1h", "rto": "4h"}]
        data["targets"][0]["schedule"] = {"cron": "0 4 * * 1", "tz": "UTC"}
        policy = Policy.from_dict(data)
        assert Objective("assets", Duration(hours=1), Duration(hours=4)) == policy.objective_for(
            "assets"
        )
        assert Duration(days=7) == policy.objective_for("orders-db").rpo
        assert Duration(hours=24) == policy.objective_for("config").rpo


class _Cells(HTMLParser):
    """Collect the text of <th>/<td> cells and of <pre>."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.pre = ""
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        self._in = tag
        if tag in ("th", "td"):
            self.cells.append("")

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in in ("th", "td"):
            self.cells[-1] += data
        elif self._in == "pre":
            self.pre += data


class TestReprs:
    """__repr__, summary() and _repr_html_."""

    def test_repr(self, example):
        """The repr is short: name, number of targets and tiers."""
        assert "<backuppolicy.Policy(name='web-apps', targets=6, tiers=2)>" == repr(example)

    def test_html_and_text_agree(self, example):
        """The HTML table holds exactly the rows of the text summary, and embeds it in <pre>."""
        parser = _Cells()
        parser.feed(example._repr_html_())
        rows = example.summary_rows()
        assert [cell for row in rows for cell in row] == parser.cells
        assert f"{example!r}\n{example.summary()}" == parser.pre

    def test_html_escapes_values(self, data):
        """Values that look like markup are escaped."""
        data["targets"][2]["settings"]["path"] = "/srv/<script>&"
        markup = Policy.from_dict(data)._repr_html_()
        assert "<script>" not in markup
        assert html.escape("/srv/<script>&") in markup

    def test_summary_lists_every_target(self, example):
        """The text summary has a line per target and per tier."""
        lines = example.summary().splitlines()
        assert 6 == sum(line.startswith("target ") for line in lines)
        assert 2 == sum(line.startswith("tier ") for line in lines)


class TestSpecs:
    """The spec values on their own."""

    def test_tier_every_accepts_adverbs_and_schedules(self):
        """'weekly' means Cadence.WEEK; a cron line means a schedule of its own."""
        assert Cadence.WEEK == TierSpec("offsite", "weekly").every
        assert isinstance(TierSpec("offsite", "0 5 * * 0").every, Schedule)

    def test_application_defaults_to_name(self):
        """A target without application is its own application."""
        assert (
            "orders-db"
            == TargetSpec("orders-db", "rds-instance", settings={"db_instance_id": "o"}).application
        )

    def test_notification_default_events(self):
        """A notification without `on` hears every event."""
        assert EVENTS == NotificationSpec("log").on

    def test_specs_are_hashable(self, example):
        """Policies are frozen values that can be hashed and compared."""
        assert hash(example) == hash(Policy.from_file(EXAMPLES / "policy.yaml"))


_LAUGHS = "a0: &a0 [lol]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    os.mkfifo(path)
    return path


def _dev_zero(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.symlink_to("/dev/zero")
    return path


def _sparse(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    with path.open("wb") as handle:
        handle.truncate(50 * 1000 * 1000)
    return path


HOSTILE_FILES: dict[str, tuple[Callable[[Path], Path | str], str]] = {
    "deep-yaml": (
        lambda t: _write(t, "policy.yaml", "name: " + "[" * 5000 + "]" * 5000),
        "more than 64 levels of nesting",
    ),
    "deep-yaml-block": (
        lambda t: _write(t, "policy.yaml", "".join(f"{' ' * i}k{i}:\n" for i in range(200))),
        "more than 64 levels of nesting",
    ),
    "billion-laughs": (lambda t: _write(t, "policy.yaml", _LAUGHS), "more than 100000 nodes"),
    "recursive-alias": (
        lambda t: _write(t, "policy.yaml", "name: &x [*x]\n"),
        "found the alias \\*x inside the node it names",
    ),
    "huge-int-yaml": (
        lambda t: _write(t, "policy.yaml", "name: " + "1" * 5000 + "\n"),
        "integer of 5000 digits",
    ),
    "long-int-yaml": (
        lambda t: _write(t, "policy.yaml", "name: " + "1" * 100 + "\n"),
        "integer of 100 digits",
    ),
    "huge-int-toml": (
        lambda t: _write(t, "policy.toml", "name = " + "1" * 5000 + "\n"),
        "Exceeds the limit",
    ),
    "long-int-toml": (
        lambda t: _write(t, "policy.toml", "name = " + "1" * 1000 + "\n"),
        "integer of more than 64 digits",
    ),
    "deep-toml": (
        lambda t: _write(t, "policy.toml", "name = " + "[" * 100 + "]" * 100 + "\n"),
        "more than 64 levels of nesting",
    ),
    "very-deep-toml": (
        lambda t: _write(t, "policy.toml", "name = " + "[" * 5000 + "]" * 5000 + "\n"),
        "expected valid TOML",
    ),
    "nul-in-path": (lambda t: str(t / "pol\0icy.yaml"), "null byte"),
    "fifo": (_fifo, "expected a regular file \\(got a FIFO\\)"),
    "dev-zero": (_dev_zero, "expected a regular file \\(got a character device\\)"),
    "50-mb-file": (_sparse, "at most 1048576 bytes \\(got 50000000 bytes"),
}


class TestHostilePolicyFiles:
    """Hostile policy files fail as PolicyError naming the problem, before any expansion."""

    @pytest.mark.parametrize("case", sorted(HOSTILE_FILES))
    def test_refused_with_policy_error(self, case: str, tmp_path: Path):
        """Each hostile file is refused by a structural limit with a short message."""
        make, problem = HOSTILE_FILES[case]
        path = make(tmp_path)
        with pytest.raises(PolicyError, match=problem) as caught:
            Policy.from_file(path)
        assert len(str(caught.value)) < 1000

    def test_oversized_text(self):
        """from_yaml and from_toml refuse a text over MAX_POLICY_BYTES before parsing it."""
        text = "#" * (MAX_POLICY_BYTES + 1)
        for load in (Policy.from_yaml, Policy.from_toml):
            with pytest.raises(PolicyError, match=f"at most {MAX_POLICY_BYTES} bytes"):
                load(text)

    def test_quoted_values_are_truncated(self):
        """A huge value or key is quoted cut short in the message."""
        long = "s" * 100_000
        text = (EXAMPLES / "policy.yaml").read_text().replace("max_age: 35d", f"max_age: {long}")
        with pytest.raises(PolicyError, match="retention.max_age: expected") as caught:
            Policy.from_yaml(text)
        with pytest.raises(PolicyError, match="found the key 'sss") as duplicate:
            Policy.from_yaml(f"? {long}\n: 1\n? {long}\n: 2\n")
        assert (True, True) == (len(str(caught.value)) < 500, len(str(duplicate.value)) < 500)

    @pytest.mark.parametrize(
        "where",
        [
            (),
            ("schedule",),
            ("retention",),
            ("retention", "max_age"),
            ("tiers", 0),
            ("targets", 0, "settings"),
            ("verification", "isolation", "tags"),
        ],
    )
    def test_a_huge_unknown_key_is_named_cut_short(self, where: tuple[str | int, ...]):
        """An unknown key of 100,000 characters, at any depth, yields a short message."""
        data: Any = _minimal()
        section = data
        for step in where:  # a missing section, or a value given as a string, becomes {}
            if isinstance(step, int) or isinstance(section.get(step), dict | list):
                section = section[step]
            else:
                section[step] = section = {}
        section["k" * 100_000] = 1
        with pytest.raises(PolicyError) as caught:
            Policy.from_dict(data)
        assert len(str(caught.value)) < 1000, str(caught.value)[:300]

    def test_a_huge_unknown_key_of_a_recovery_plan_is_named_cut_short(self):
        """The same for a recovery plan file."""
        from backuppolicy.workflows.recovery import RecoveryPlan

        data = {"name": "p", "application": "shop", "steps": [], "k" * 100_000: 1}
        with pytest.raises(PolicyError) as caught:
            RecoveryPlan.from_dict(data)
        assert len(str(caught.value)) < 1000, str(caught.value)[:300]

    @pytest.mark.parametrize(
        "template",
        [
            "{keys} = 1\n",
            "[{keys}]\nx = 1\n",
            "name = {{{keys} = 1}}\n",
            "'{keys}' = 1\n[{keys}]\n",
        ],
    )
    def test_toml_dotted_keys_are_refused_before_parsing(self, template: str):
        """A 400 KB TOML key of 200,000 dotted parts is refused unparsed.

        tomllib keeps every prefix of a dotted key, so its memory grows with the square of the
        parts: this file, well under MAX_POLICY_BYTES, would take tens of gigabytes.
        """
        keys = ".".join(["a"] * 200_000)
        text = template.format(keys=keys)
        assert len(text) < MAX_POLICY_BYTES
        with pytest.raises(PolicyError, match="dotted"):
            Policy.from_toml(text)

    def test_toml_dotted_keys_within_the_limit_still_load(self):
        """Dotted keys of a real policy (a few parts) load as before."""
        text = (EXAMPLES / "policy.toml").read_text()
        assert Policy.from_toml(text) == Policy.from_file(EXAMPLES / "policy.toml")
        with pytest.raises(PolicyError, match="expected") as caught:
            Policy.from_toml("name = 'x'\nschedule.a.b.c.d.e.f.g.h = 1\n")
        assert "dotted" not in str(caught.value)

    def test_an_unknown_notification_kind_names_its_field_once(self):
        """The path of a bad notification kind is ``notifications[0].kind``, not ``.kind.kind``."""
        data: Any = {**_minimal(), "notifications": [{"kind": "slack"}]}
        with pytest.raises(
            PolicyError, match=r"^notifications\[0\]\.kind: expected a notification"
        ):
            Policy.from_dict(data)

    def test_parsed_once(self, monkeypatch: pytest.MonkeyPatch):
        """A policy error in YAML text parses the text once, also to find the line."""
        parses: list[str] = []
        real = PolicyLoader.get_single_node

        def counted(loader: PolicyLoader) -> Any:
            parses.append("parse")
            return real(loader)

        text = (EXAMPLES / "policy.yaml").read_text().replace("max_age: 35d", "max_age: soon")
        line = text.splitlines().index("  max_age: soon") + 1
        monkeypatch.setattr(PolicyLoader, "get_single_node", counted)
        with pytest.raises(PolicyError, match=f"<string>:{line}: retention.max_age"):
            Policy.from_yaml(text)
        assert ["parse"] == parses

    def test_s3_policy_read_bounded(self, aws: None):
        """The Lambda handler reads at most MAX_POLICY_BYTES + 1 bytes of a policy in S3."""
        import boto3  # local: the other tests here never import boto3

        from backuppolicy.lambda_handler import load_policy

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="cfg")
        s3.put_object(Bucket="cfg", Key="policy.yaml", Body=b"#" * (MAX_POLICY_BYTES + 10))
        with pytest.raises(PolicyError, match=f"a policy file of at most {MAX_POLICY_BYTES} bytes"):
            load_policy("s3://cfg/policy.yaml")

    @pytest.mark.parametrize("case", ["billion-laughs", "deep-yaml", "fifo", "50-mb-file"])
    def test_recovery_plan_files_too(self, case: str, tmp_path: Path):
        """Recovery plan files go through the same bounded reading and parsing."""
        from backuppolicy.workflows.recovery import RecoveryPlan

        make, problem = HOSTILE_FILES[case]
        with pytest.raises(PolicyError, match=problem):
            RecoveryPlan.from_file(make(tmp_path))


class TestYamlErrorsKeepSecrets:
    def test_a_syntax_error_never_quotes_the_line(self):
        """A malformed file's error says file:line:column, and neither it nor its chain quotes the line."""
        import traceback

        canary = "hunter2-canary-7f3a"
        text = f'name: web-apps\nnotifications:\n  - url: "https://h/{canary}\n    on: [failure]\n'
        with pytest.raises(PolicyError) as caught:
            Policy.from_yaml(text)
        printed = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
        assert re.search(r"<string>:\d+:\d+: expected valid YAML", str(caught.value))
        assert canary not in printed
