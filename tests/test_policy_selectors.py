"""Selector and account targets in policy files: validation, round trip, the document, expand()."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.policy import SELECTOR_KIND, AccountSpec, Policy, TargetSpec
from backuppolicy.core.selector import Selector
from backuppolicy.workflows.backups import backup_now

ROLE = "arn:aws:iam::222222222222:role/backup"


def _policy(*targets: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "web",
        "schedule": {"every": "day", "at": "04:00"},
        "retention": {"max_age": "35d"},
        "tiers": [{"name": "local", "every": "day"}],
        "targets": list(targets),
    }


_DB = {"name": "orders", "kind": "rds-instance", "settings": {"db_instance_id": "orders"}}
_DBS = {
    "name": "dbs",
    "kind": "rds-instance",
    "selector": {"tags": {"backup": "daily"}},
    "regions": ["eu-west-2"],
    "account": {"role_arn": ROLE, "external_id": "tenant-7", "session_name": "nightly"},
    "application": "shop",
    "settings": {"kms_key_id": "alias/backup"},
}


@pytest.fixture(name="policy")
def _the_policy() -> Policy:
    return Policy.from_dict(_policy(_DB, _DBS))


def _error(data: dict[str, Any]) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(data)
    return info.value


class TestSelectorTarget:
    def test_kind_folds_into_the_selector(self, policy: Policy) -> None:
        """`kind` next to a selector becomes the selector's kind; the target's kind is 'selector'."""
        dbs = policy.target("dbs")
        assert (SELECTOR_KIND, ("rds-instance",)) == (dbs.kind, dbs.selector.resource_types)  # type: ignore[union-attr]

    def test_kind_is_optional(self) -> None:
        """Without `kind` the selector's kinds (or all it can find) apply."""
        data = {"name": "any", "selector": {"tags": ["backup"]}}
        spec = TargetSpec.from_dict(data)
        assert (SELECTOR_KIND, ()) == (spec.kind, spec.selector.resource_types)  # type: ignore[union-attr]

    def test_account_fields(self, policy: Policy) -> None:
        """The account's role, external ID and session name are read."""
        expected = AccountSpec(ROLE, external_id="tenant-7", session_name="nightly")
        assert expected == policy.target("dbs").account
        assert "222222222222" == expected.account_id

    def test_account_as_a_role_arn(self) -> None:
        """`account:` may be the role ARN alone."""
        spec = TargetSpec.from_dict({**_DB, "account": ROLE})
        assert AccountSpec(ROLE) == spec.account

    def test_resource_in_words(self, policy: Policy) -> None:
        """A selector target's resource says what it selects, where."""
        assert (
            "every rds-instance tagged backup=daily in eu-west-2" == policy.target("dbs").resource
        )


@pytest.mark.parametrize(
    ("target", "path", "fragment"),
    [
        ({**_DBS, "selector": {"tags": "daily"}}, "targets[1].selector.tags", "a mapping of tag"),
        ({**_DBS, "selector": {"tag": {"a": "b"}}}, "targets[1].selector.tag", "'tags'?"),
        ({**_DBS, "selector": {}}, "targets[1].selector", "at least one of"),
        (
            {**_DBS, "kind": None, "selector": {"kinds": ["rds-instnace"]}},
            "targets[1].selector.kinds",
            "Did you mean 'rds-instance'?",
        ),
        ({**_DBS, "kind": "rds-instnace"}, "targets[1].kind", "Did you mean 'rds-instance'?"),
        (
            {**_DBS, "kind": "s3-bucket", "selector": {"tags": ["b"], "kinds": ["rds-instance"]}},
            "targets[1].kind",
            "a kind the selector finds (rds-instance)",
        ),
        (
            {**_DBS, "account": {"role_arn": "arn:aws:iam::1:role/x"}},
            "targets[1].account.role_arn",
            "IAM role ARN",
        ),
        (
            {**_DBS, "account": {"role_arn": "arn:aws:iam::222222222222:user/x"}},
            "targets[1].account.role_arn",
            "IAM role ARN",
        ),
        ({**_DBS, "account": {"role": ROLE}}, "targets[1].account.role", "'role_arn'?"),
        (
            {**_DBS, "account": {"role_arn": ROLE, "session_name": "a b"}},
            "targets[1].account.session_name",
            "session name",
        ),
        ({**_DBS, "regions": ["mars-1"]}, "targets[1].regions[0]", "an AWS region"),
        ({**_DBS, "regions": ["eu-west-2", "eu-west-2"]}, "targets[1].regions[1]", "at most once"),
        ({**_DBS, "regions": "eu-west-2"}, "targets[1].regions", "a list of AWS regions"),
        (
            {**_DBS, "selector": {"tags": ["b"], "regions": ["eu-west-1"]}},
            "targets[1].regions",
            "not both",
        ),
        (
            {**_DBS, "settings": {"db_instance_id": "x"}},
            "targets[1].settings.db_instance_id",
            "a known key",
        ),
        ({**_DBS, "settings": {"region": "eu-west-1"}}, "targets[1].settings.region", "regions"),
        ({**_DBS, "settings": {"kms_key": "k"}}, "targets[1].settings.kms_key", "'kms_key_id'?"),
        ({**_DBS, "selectr": {"tags": ["b"]}}, "targets[1].selectr", "'selector'?"),
        ({"name": "x", "settings": {}}, "targets[1].kind", "unless there is a selector"),
        ({"name": "x", "kind": "selector"}, "targets[1].selector", "a selector"),
        (
            {**_DB, "name": "x", "regions": ["eu-west-1"]},
            "targets[1].regions",
            "only on a selector",
        ),
    ],
)
def test_errors_name_the_field(target: dict[str, Any], path: str, fragment: str) -> None:
    """Every mistake in a selector or account is reported at its field, with a hint."""
    target = {k: v for k, v in target.items() if v is not None}
    error = _error(_policy(_DB, target))
    assert (path, True) == (error.path, fragment in str(error)), str(error)


class TestReservedNames:
    def test_name_under_a_selector_is_refused(self) -> None:
        """`<selector target>-...` is reserved for the targets the selector finds."""
        error = _error(_policy(_DBS, {**_DB, "name": "dbs-orders"}))
        assert "targets[1].name" == error.path
        assert "reserved for the targets the selector of targets[0] finds" in str(error)


class TestFoundNames:
    def test_a_found_name_gives_the_selector_spec_under_that_name(self, policy: Policy) -> None:
        """policy.target('dbs-shop-a') is the selector target's spec, renamed."""
        found = policy.target("dbs-shop-a")
        assert ("dbs-shop-a", "shop", policy.target("dbs").selector) == (
            found.name,
            found.application,
            found.selector,
        )

    def test_other_names_still_fail(self, policy: Policy) -> None:
        """A name under no selector target is still unknown."""
        with pytest.raises(PolicyError, match="no target 'orders-x'"):
            policy.target("orders-x")


class TestRoundTrip:
    def test_dict_yaml_json(self, policy: Policy) -> None:
        """Selector and account targets survive to_dict, to_yaml and JSON."""
        assert policy == Policy.from_dict(policy.to_dict())
        assert policy == Policy.from_yaml(policy.to_yaml())
        assert policy == Policy.from_dict(json.loads(json.dumps(policy.to_dict())))

    def test_dump_has_no_kind_for_selectors(self, policy: Policy) -> None:
        """The dump writes the selector (with its kinds), not the 'selector' kind."""
        dumped = policy.target("dbs").to_dict()
        assert ("kind" in dumped, dumped["selector"]) == (
            False,
            {"tags": {"backup": "daily"}, "kinds": ["rds-instance"]},
        )


class TestMarkdown:
    def test_selectors_and_accounts_in_words(self, policy: Policy) -> None:
        """The document says what a selector finds, where, and which account each target is in."""
        document = policy.to_markdown()
        assert "every rds-instance tagged backup=daily in eu-west-2" in document
        assert "account 222222222222 (role backup, with an external ID)" in document
        assert "`backuppolicy targets --policy policy.yaml`" in document

    def test_plain_policies_unchanged(self) -> None:
        """A policy without selectors or accounts gets no discovery section."""
        document = Policy.from_dict(_policy(_DB)).to_markdown()
        assert ("1.1.1" in document, "1.1.2" in document) == (False, False)


def _found(
    name: str, ident: str, region: str = "eu-west-2", kind: str = "rds-instance"
) -> dict[str, Any]:
    key = {"rds-instance": "db_instance_id", "ebs-volume": "volume_id"}[kind]
    return {"name": name, "kind": kind, "settings": {key: ident, "region": region}}


class TestExpand:
    def test_children_inherit(self, policy: Policy) -> None:
        """Each resource becomes a target named <target>-<resource> with the target's settings."""
        children = policy.target("dbs").expand(
            [_found("orders", "orders"), _found("billing", "bill")]
        )
        assert ["dbs-billing", "dbs-orders"] == [c.name for c in children]
        first = children[0]
        assert (
            "rds-instance",
            {"kms_key_id": "alias/backup", "db_instance_id": "bill", "region": "eu-west-2"},
            "shop",
            policy.target("dbs").account,
        ) == (first.kind, dict(first.settings), first.application, first.account)

    def test_settings_only_for_kinds_that_take_them(self) -> None:
        """A default a kind does not take (no_reboot on a volume) is left out for it."""
        spec = TargetSpec.from_dict(
            {"name": "m", "selector": {"tags": ["b"]}, "settings": {"no_reboot": True}}
        )
        (volume,) = spec.expand([_found("v", "vol-1", kind="ebs-volume")])
        assert {"volume_id": "vol-1", "region": "eu-west-2"} == dict(volume.settings)

    def test_same_name_in_two_regions(self, policy: Policy) -> None:
        """A name found in two regions gets the region appended."""
        children = policy.target("dbs").expand(
            [_found("db", "db"), _found("db", "db", "eu-west-1")]
        )
        assert ["dbs-db-eu-west-1", "dbs-db-eu-west-2"] == [c.name for c in children]

    def test_long_names_are_stable_and_valid(self, policy: Policy) -> None:
        """Names longer than 63 characters are cut and end in a hash of the whole name."""
        long = "x" * 70
        names = [policy.target("dbs").expand([_found(long + s, "a")])[0].name for s in "ab"]
        again = policy.target("dbs").expand([_found(long + "a", "a")])[0].name
        assert ([63, 63], True, names[0]) == ([len(n) for n in names], names[0] != names[1], again)

    def test_collision_names_both(self, policy: Policy) -> None:
        """Two resources that would get one name raise a PolicyError naming both."""
        with pytest.raises(PolicyError) as info:
            policy.target("dbs").expand(
                [_found("web", "db-1"), _found("web", "vol-1", kind="ebs-volume")]
            )
        message = str(info.value)
        assert ("'db-1'" in message, "'vol-1'" in message, "'dbs-web-eu-west-2'" in message) == (
            True,
            True,
            True,
        )

    def test_plain_target_is_itself(self, policy: Policy) -> None:
        """A target without a selector stands for itself."""
        assert (policy.target("orders"),) == policy.target("orders").expand([])

    def test_direct_construction_needs_the_selector_kind(self) -> None:
        """Built in code, a selector target's kind must be 'selector'."""
        with pytest.raises(PolicyError) as info:
            TargetSpec("x", "rds-instance", selector=Selector(tags={"a": None}))
        assert "kind" == info.value.path


class TestManualBackup:
    def test_selector_target_is_refused(self, policy: Policy) -> None:
        """A manual backup names one resource: a selector target is refused with a hint."""
        with pytest.raises(PolicyError) as info:
            backup_now(policy, "dbs", reason="upgrade", now=datetime(2026, 1, 1, tzinfo=UTC))
        assert ("target", True) == (info.value.path, "force=True" in str(info.value))
