"""The parts of a policy as values: targets, tiers, verification, objectives, notifications.

`TargetSpec`, `TierSpec`, `VerificationSpec`, `Objective`, `NotificationSpec` and `AccountSpec`.
Each spec validates itself when built (attrs validators) and reads itself from plain data
(``from_dict``, errors naming the path of the field) and back (``to_dict``). `backuppolicy.core.policy`
re-exports them; `Policy` holds them.

Target kinds:
    The built-in kinds are listed in `BUILTIN_TARGET_KINDS`; their ``settings`` are
    checked key by key (`TARGET_SETTINGS`). A plugin kind is accepted when it is
    registered in the entry-point group ``backuppolicy.targets`` or when it is spelled
    ``"package:kind"`` (the package that provides it, then its kind); its ``settings``
    must be a mapping with text keys and are checked by the plugin when the target is
    built. Any other kind is an error with a "did you mean" suggestion, so a typo such as
    ``rds-instnace`` never slips through.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, cast

import attrs

from backuppolicy.core._fields import (
    EVENTS,
    ISOLATION_SETTINGS,
    LOCATION_SETTINGS,
    NOTIFICATION_SETTINGS,
    SECRET_SETTINGS,
    SELECTOR_KIND,
    TARGET_SETTINGS,
    at_path,
    check_tier_account,
    did_you_mean,
    every_describe,
    every_to_spec,
    frozen_settings,
    join_path,
    read_cadence,
    read_duration,
    read_every,
    read_external_id,
    read_flag,
    read_free_settings,
    read_kind,
    read_mapping,
    read_name,
    read_names,
    read_retention,
    read_role_arn,
    read_schedule,
    read_selector_kind,
    read_selector_settings,
    read_session_name,
    read_settings,
    secrets_to_dict,
    to_duration,
    to_events,
    to_optional_duration,
    to_regions,
    validate_cadence,
    validate_duration,
    validate_flag,
    validate_name,
    validate_notification_kind,
    validate_optional_duration,
    validate_optional_rule,
    validate_optional_schedule,
)
from backuppolicy.core._probe_specs import FingerprintSpec, ProbesSpec
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError, short_repr
from backuppolicy.core.locks import TierLock
from backuppolicy.core.retention import RetentionRule
from backuppolicy.core.schedule import Cadence, Schedule
from backuppolicy.core.secrets import Secret
from backuppolicy.core.selector import Selector

__all__ = [
    "AccountSpec",
    "NotificationSpec",
    "Objective",
    "RunSpec",
    "SizeAnomalySpec",
    "TargetSpec",
    "TierSpec",
    "VerificationSpec",
]


# --------------------------------------------------------------------------------------------
# The specs.

_VERIFICATION_KEYS: Final = (
    "restore_test_every",
    "restore_test_per_application_every",
    "integrity_check_every",
    "integrity_covers_tiers",
    "isolation",
    "freshness_grace",
    "require_encryption",
    "require_private",
    "size_anomaly",
)
_TIER_KEYS: Final = ("name", "every", "location", "retention", "lock", "account")
_TARGET_KEYS: Final = (
    "name",
    "kind",
    "application",
    "settings",
    "schedule",
    "retention",
    "tiers",
    "enabled",
    "selector",
    "account",
    "regions",
    "probes",
    "fingerprint",
    "critical",
)
_ACCOUNT_KEYS: Final = ("role_arn", "external_id", "session_name")


def _to_covered_tiers(value: object) -> tuple[str, ...]:
    return read_names(value, "integrity_covers_tiers")


def _to_optional_names(value: object) -> tuple[str, ...] | None:
    return None if value is None else read_names(value, "tiers")


@attrs.frozen
class Objective:
    """Recovery objectives of one application: how much data it may lose, how fast it is back.

    Example:
        >>> Objective("shop", rpo="24h", rto="4h").describe()
        'shop: RPO 24 hours, RTO 4 hours'

    Attributes:
        application: Name of the application (the ``application`` of its targets).
        rpo: Recovery point objective: the most data (as time) the application may lose.
        rto: Recovery time objective: how long a full restore may take; ``None`` if not set.
    """

    application: str = attrs.field(validator=validate_name)
    rpo: Duration = attrs.field(converter=to_duration, validator=validate_duration)
    rto: Duration | None = attrs.field(
        default=None, converter=to_optional_duration, validator=validate_optional_duration
    )

    def describe(self) -> str:
        """One line: ``"shop: RPO 24 hours, RTO 4 hours"``."""
        rto = self.rto.describe() if self.rto else "not set"
        return f"{self.application}: RPO {self.rpo.describe()}, RTO {rto}"

    def to_dict(self) -> dict[str, object]:
        """Plain data, as `Policy.from_dict` reads it."""
        data: dict[str, object] = {"application": self.application, "rpo": str(self.rpo)}
        if self.rto is not None:
            data["rto"] = str(self.rto)
        return data

    @classmethod
    def from_dict(cls, data: object, *, path: str = "objective") -> Objective:
        """Build from plain data; errors name fields under *path*."""
        raw = read_mapping(data, path, ("application", "rpo", "rto"), ("application", "rpo"))
        application = read_name(raw["application"], join_path(path, "application"))
        rpo = read_duration(raw["rpo"], join_path(path, "rpo"))
        rto = (
            read_duration(raw["rto"], join_path(path, "rto"))
            if raw.get("rto") is not None
            else None
        )
        with at_path(path):
            return cls(application, rpo, rto)


@attrs.frozen
class NotificationSpec:
    """Who hears about which failures, and how.

    Example:
        >>> spec = NotificationSpec("sns", {"topic_arn": "arn:aws:sns:eu-west-1:123456789012:ops"})
        >>> spec.on
        ('backup_failed', 'copy_failed', 'verification_failed', 'overdue', 'prune_failed')

    Attributes:
        kind: ``"log"``, ``"sns"`` or ``"webhook"``.
        settings: Settings of the notifier: ``log`` takes ``logger`` and ``level``; ``sns``
            requires ``topic_arn`` and takes ``region``; ``webhook`` requires
            ``url`` and takes ``headers`` and ``timeout`` (seconds). The webhook's ``url`` and
            header values are held as `backuppolicy.Secret`; a URL with a token, or a
            credential header, is given by reference (``{"env": NAME}``, ``{"file": PATH}``)
            or as a `backuppolicy.Secret`, never as plain text.
        on: The events that trigger it (see `EVENTS`); all of them by default.
    """

    kind: str = attrs.field(validator=validate_notification_kind)
    settings: Mapping[str, Any] = attrs.field(factory=dict, converter=frozen_settings, hash=False)
    on: tuple[str, ...] = attrs.field(default=EVENTS, converter=to_events)

    def __attrs_post_init__(self) -> None:
        required, optional = NOTIFICATION_SETTINGS[self.kind]
        checked = read_settings(self.settings, "settings", required, optional)
        # Hold the secret settings as `Secret` values, however they were given.
        secrets = {key: checked[key] for key in SECRET_SETTINGS if key in checked}
        if secrets:
            object.__setattr__(self, "settings", {**self.settings, **secrets})

    def describe(self) -> str:
        """One line: ``"sns arn:aws:sns:...:ops on backup_failed, overdue"``."""
        where = {
            "log": lambda: f"logger {self.settings.get('logger', 'backuppolicy.events')}",
            "sns": lambda: f"SNS topic {self.settings.get('topic_arn')}",
            "webhook": lambda: f"webhook {self.settings.get('url')}",
        }[self.kind]()
        return f"{where} on {', '.join(self.on)}"

    def to_dict(self) -> dict[str, object]:
        """Plain data, as `Policy.from_dict` reads it."""
        settings = {key: secrets_to_dict(value) for key, value in self.settings.items()}
        return {"kind": self.kind, "settings": settings, "on": list(self.on)}

    @classmethod
    def from_dict(cls, data: object, *, path: str = "notification") -> NotificationSpec:
        """Build from plain data; errors name fields under *path*."""
        raw = read_mapping(data, path, ("kind", "settings", "on"), ("kind",))
        with at_path(path):
            validate_notification_kind(None, attrs.fields(cls).kind, raw["kind"])
        kind = cast("str", raw["kind"])  # one of NOTIFICATION_KINDS
        required, optional = NOTIFICATION_SETTINGS[kind]
        settings = read_settings(
            raw.get("settings", {}), join_path(path, "settings"), required, optional
        )
        with at_path(path):
            events = to_events(raw.get("on", list(EVENTS)))
            return cls(kind, settings, events)


@attrs.frozen
class VerificationSpec:
    """How we prove the backups work (sections 3, 4, 7 and 8 of the written policy).

    Example:
        >>> VerificationSpec().restore_test_every
        <Cadence.QUARTER: 'quarter'>

    Attributes:
        restore_test_every: At least one restore test per this cadence, across the policy.
        restore_test_per_application_every: Every application is restore-tested at least
            once per this cadence.
        integrity_check_every: Integrity checks of every copy, per this cadence.
        integrity_covers_tiers: Tiers whose copies the integrity checks cover; empty means
            every tier of the policy.
        isolation: The isolation profile restore tests run in: the fields of
            `backuppolicy.core.targets.IsolationProfile` (``subnet_group``, ``security_group_ids``,
            ``subnet_id``, ``availability_zone``, ``instance_class``, ``name_prefix``,
            ``tags``, ``sweep_tag``).
        freshness_grace: How late the newest backup of a target may be, after its schedule
            said it was due, before it counts as overdue.
        require_encryption: Whether every copy must be encrypted at rest.
        require_private: Whether copies and backed-up S3 assets must not be publicly accessible.
        size_anomaly: Alert when a backup's size is far off the rolling median of its target
            (`SizeAnomalySpec`); ``None`` (the default) checks no sizes.
    """

    restore_test_every: Cadence = attrs.field(
        default=attrs.Factory(lambda: Cadence.QUARTER), validator=validate_cadence, kw_only=True
    )
    restore_test_per_application_every: Cadence = attrs.field(
        default=attrs.Factory(lambda: Cadence.YEAR), validator=validate_cadence, kw_only=True
    )
    integrity_check_every: Cadence = attrs.field(
        default=attrs.Factory(lambda: Cadence.YEAR), validator=validate_cadence, kw_only=True
    )
    integrity_covers_tiers: tuple[str, ...] = attrs.field(
        default=(), converter=_to_covered_tiers, kw_only=True
    )
    isolation: Mapping[str, Any] = attrs.field(
        factory=dict, converter=frozen_settings, hash=False, kw_only=True
    )
    freshness_grace: Duration = attrs.field(
        default=Duration(hours=2), converter=to_duration, validator=validate_duration, kw_only=True
    )
    require_encryption: bool = attrs.field(default=True, validator=validate_flag, kw_only=True)
    require_private: bool = attrs.field(default=True, validator=validate_flag, kw_only=True)
    size_anomaly: SizeAnomalySpec | None = attrs.field(
        default=None,
        validator=lambda _inst, attribute, value: _v_size_anomaly(attribute, value),
        kw_only=True,
    )

    def __attrs_post_init__(self) -> None:
        read_settings(self.isolation, "isolation", {}, ISOLATION_SETTINGS)

    def to_dict(self) -> dict[str, object]:
        """Plain data, as `Policy.from_dict` reads it."""
        data: dict[str, object] = {
            "restore_test_every": self.restore_test_every.value,
            "restore_test_per_application_every": self.restore_test_per_application_every.value,
            "integrity_check_every": self.integrity_check_every.value,
            "integrity_covers_tiers": list(self.integrity_covers_tiers),
            "isolation": dict(self.isolation),
            "freshness_grace": str(self.freshness_grace),
            "require_encryption": self.require_encryption,
            "require_private": self.require_private,
        }
        if self.size_anomaly is not None:
            data["size_anomaly"] = self.size_anomaly.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: object, *, path: str = "verification") -> VerificationSpec:
        """Build from plain data; errors name fields under *path*."""
        raw = read_mapping(data, path, _VERIFICATION_KEYS)
        kwargs: dict[str, Any] = {}
        for key in (
            "restore_test_every",
            "restore_test_per_application_every",
            "integrity_check_every",
        ):
            if key in raw:
                kwargs[key] = read_cadence(raw[key], join_path(path, key))
        if "integrity_covers_tiers" in raw:
            kwargs["integrity_covers_tiers"] = read_names(
                raw["integrity_covers_tiers"], join_path(path, "integrity_covers_tiers")
            )
        if "isolation" in raw:
            kwargs["isolation"] = read_settings(
                raw["isolation"], join_path(path, "isolation"), {}, ISOLATION_SETTINGS
            )
        if "freshness_grace" in raw:
            kwargs["freshness_grace"] = read_duration(
                raw["freshness_grace"], join_path(path, "freshness_grace")
            )
        for key in ("require_encryption", "require_private"):
            if key in raw:
                kwargs[key] = read_flag(raw[key], join_path(path, key))
        if raw.get("size_anomaly") is not None:
            kwargs["size_anomaly"] = SizeAnomalySpec.from_dict(
                raw["size_anomaly"], path=join_path(path, "size_anomaly")
            )
        with at_path(path):
            return cls(**kwargs)


def _v_size_anomaly(attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, SizeAnomalySpec):
        raise PolicyError.for_field(attribute.name, "None or a SizeAnomalySpec", value)


def _v_every(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, (Cadence, Schedule)):
        raise PolicyError.for_field(attribute.name, "a Cadence or a Schedule", value)


def _to_every(value: object) -> Cadence | Schedule:
    return read_every(value, "every")


def _to_location(value: object) -> dict[str, object]:
    return read_settings(value, "location", {}, LOCATION_SETTINGS)


def _to_lock(value: object) -> TierLock | None:
    return None if value is None else TierLock.from_spec(value)


def _v_tier_account(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _v_optional_account(_inst, attribute, value)  # defined with AccountSpec, below


@attrs.frozen
class TierSpec:
    """A copy tier: where copies of the backups live and how often they are made.

    The written policy's tiers are a daily copy kept locally and a weekly copy kept
    off-site.

    Example:
        >>> offsite = TierSpec("offsite", "weekly", {"region": "eu-west-1"})
        >>> offsite.describe()
        'offsite: weekly copy to region eu-west-1'

    Attributes:
        name: Name of the tier (``"local"``, ``"offsite"``); recorded on every copy.
        every: How often a copy is made: a `Cadence`, or a `Schedule` of its own.
        location: Where the copies live, as the fields of `backuppolicy.core.targets.Destination`:
            ``region``, ``account`` and ``kms_key_id`` for AWS snapshot copies, ``vault`` for
            AWS Backup, ``store`` (``s3://bucket/prefix`` or an absolute directory) for
            archives. Empty means "where the backend creates its backups" (an RDS snapshot in
            the database's own region).
        retention: The tier's own retention; ``None`` uses the policy's.
        lock: How the tier's copies are locked below the library (`TierLock`: S3 Object Lock
            retention, EBS snapshot lock, AWS Backup vault lock); ``None`` locks nothing.
        account: Another AWS account that holds the tier's copies, reached by assuming a role
            there (`AccountSpec`); ``None``: the target's own account. Such a tier needs
            ``location.region`` and ``location.kms_key_id``, a key ARN in that account and
            region (RDS and EBS copy shared snapshots only with a key of the copying account).
    """

    name: str = attrs.field(validator=validate_name)
    every: Cadence | Schedule = attrs.field(converter=_to_every, validator=_v_every)
    location: Mapping[str, Any] = attrs.field(factory=dict, converter=_to_location, hash=False)
    retention: RetentionRule | None = attrs.field(default=None, validator=validate_optional_rule)
    lock: TierLock | None = attrs.field(default=None, converter=_to_lock, kw_only=True)
    account: AccountSpec | None = attrs.field(default=None, validator=_v_tier_account, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.account is not None:
            check_tier_account(self.account.account_id, self.location)

    @property
    def account_id(self) -> str | None:
        """The account id of the tier's copies: its ``account``'s, else ``location.account``."""
        if self.account is not None:
            return self.account.account_id
        account = self.location.get("account")
        return str(account) if account else None

    def describe(self) -> str:
        """One line: ``"offsite: weekly copy to region eu-west-1"``."""
        where = "; ".join(f"{key} {value}" for key, value in self.location.items())
        where = f" to {where}" if where else " in place"
        if self.account is not None:
            where += f" in {self.account.describe()}"
        keep = f", kept by: {self.retention.describe()}" if self.retention else ""
        locked = f", {self.lock.describe()}" if self.lock and self.lock.enabled else ""
        return f"{self.name}: {every_describe(self.every)} copy{where}{keep}{locked}"

    def to_dict(self) -> dict[str, object]:
        """Plain data, as `Policy.from_dict` reads it."""
        data: dict[str, object] = {
            "name": self.name,
            "every": every_to_spec(self.every),
            "location": dict(self.location),
        }
        if self.retention is not None:
            data["retention"] = self.retention.to_spec()
        if self.lock is not None:
            data["lock"] = self.lock.to_spec()
        if self.account is not None:
            data["account"] = self.account.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: object, *, path: str = "tier", tz: str = "UTC") -> TierSpec:
        """Build from plain data; errors name fields under *path*; schedules default to *tz*."""
        raw = read_mapping(data, path, _TIER_KEYS, ("name", "every"))
        name = read_name(raw["name"], join_path(path, "name"))
        every = read_every(raw["every"], join_path(path, "every"), tz=tz)
        location = read_settings(
            raw.get("location", {}), join_path(path, "location"), {}, LOCATION_SETTINGS
        )
        retention = (
            read_retention(raw["retention"], join_path(path, "retention"))
            if raw.get("retention") is not None
            else None
        )
        lock = (
            TierLock.from_spec(raw["lock"], path=join_path(path, "lock"))
            if raw.get("lock") is not None
            else None
        )
        account = (
            AccountSpec.from_dict(raw["account"], path=join_path(path, "account"))
            if raw.get("account") is not None
            else None
        )
        with at_path(path):
            return cls(name, every, location, retention, lock=lock, account=account)


@attrs.frozen
class AccountSpec:
    """The account a target lives in, reached by assuming a role there (STS ``AssumeRole``).

    Example:
        >>> AccountSpec("arn:aws:iam::123456789012:role/backup", external_id="tenant-7").describe()
        'account 123456789012 (role backup, with an external ID)'

    Attributes:
        role_arn: The IAM role to assume in the target's account.
        external_id: The external ID the role's trust policy requires, if any.
        session_name: Role session name; it shows in the account's CloudTrail, so name the job.
    """

    role_arn: str = attrs.field()
    external_id: str | None = attrs.field(default=None, kw_only=True)
    session_name: str = attrs.field(default="backuppolicy", kw_only=True)

    @role_arn.validator
    def _check_role_arn(self, _attribute: attrs.Attribute[str], value: object) -> None:
        read_role_arn(value, "role_arn")

    @external_id.validator
    def _check_external_id(self, _attribute: attrs.Attribute[str | None], value: object) -> None:
        read_external_id(value, "external_id")

    @session_name.validator
    def _check_session_name(self, _attribute: attrs.Attribute[str], value: object) -> None:
        read_session_name(value, "session_name")

    @property
    def account_id(self) -> str:
        """The 12-digit account id, from the role ARN."""
        return self.role_arn.split(":")[4]

    def describe(self) -> str:
        """One line: ``"account 123456789012 (role backup)"``."""
        role = self.role_arn.split(":role/", 1)[1]
        extra = ", with an external ID" if self.external_id else ""
        return f"account {self.account_id} (role {role}{extra})"

    def to_dict(self) -> dict[str, object]:
        """Plain data, as `from_dict` reads it."""
        data: dict[str, object] = {"role_arn": self.role_arn}
        if self.external_id is not None:
            data["external_id"] = self.external_id
        data["session_name"] = self.session_name
        return data

    @classmethod
    def from_dict(cls, data: object, *, path: str = "account") -> AccountSpec:
        """Build from a mapping (or a role ARN alone); errors name fields under *path*."""
        if isinstance(data, str):
            data = {"role_arn": data}
        raw = read_mapping(data, path, _ACCOUNT_KEYS, ("role_arn",))
        role_arn = read_role_arn(raw["role_arn"], join_path(path, "role_arn"))
        external_id = read_external_id(raw.get("external_id"), join_path(path, "external_id"))
        session_name = read_session_name(
            raw.get("session_name", "backuppolicy"), join_path(path, "session_name")
        )
        with at_path(path):
            return cls(role_arn, external_id=external_id, session_name=session_name)


def _v_optional_account(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, AccountSpec):
        raise PolicyError.for_field(attribute.name, "None or an AccountSpec", value)


def _v_optional_selector(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, Selector):
        raise PolicyError.for_field(attribute.name, "None or a Selector", value)


def _optional_of(cls: type, what: str) -> Any:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, cls):
            raise PolicyError.for_field(attribute.name, f"None or {what}", value)

    return check


def _child_name(parent: str, child: str) -> str:
    """``<parent>-<child>``, at most 63 characters (a long name ends in a hash of the whole)."""
    name = f"{parent}-{child}"
    if len(name) <= 63:  # noqa: PLR2004 - the limit of target names
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-._')}-{digest}"


def _selector_words(selector: Selector, regions: Sequence[str] = ()) -> str:
    """``"every rds-instance tagged backup=daily in eu-west-2"``."""
    words = ["every " + (" or ".join(selector.resource_types) or "resource")]
    if selector.tags:
        words.append(
            "tagged "
            + ", ".join(
                f"{key}={value}" if value is not None else f"{key} (any value)"
                for key, value in selector.tags.items()
            )
        )
    if selector.name_pattern is not None:
        words.append(f"named {selector.name_pattern}")
    where = tuple(regions) or selector.regions
    if where:
        words.append("in " + ", ".join(where))
    return " ".join(words)


_RESOURCE_KEYS: Final = {
    "rds-instance": "db_instance_id",
    "aurora-cluster": "db_cluster_id",
    "ec2-instance": "instance_id",
    "ebs-volume": "volume_id",
    "directory": "path",
    "aws-backup": "resource_arn",
}


def _default_application(self: TargetSpec) -> str:
    return str(self.name)


@attrs.frozen
class TargetSpec:
    """One thing that is backed up: a database, an instance, a volume, a bucket, a directory.

    Example:
        >>> db = TargetSpec("orders-db", "rds-instance", settings={"db_instance_id": "orders"})
        >>> db.application, db.resource
        ('orders-db', 'orders')

    Attributes:
        name: Unique name of the target in the policy; recorded on every backup it makes.
        kind: The kind of backend: one of `BUILTIN_TARGET_KINDS`, a kind registered under
            the entry-point group ``backuppolicy.targets``, or ``"package:kind"``.
        application: The application the target belongs to (restore tests and objectives
            are per application); defaults to the target's name.
        settings: Backend settings, checked per kind (see `TARGET_SETTINGS`), e.g.
            ``db_instance_id``, ``bucket`` and ``prefix``, ``path``, ``region``.
        schedule: Its own schedule; ``None`` uses the policy's.
        retention: Its own retention, for every tier; ``None`` uses the tier's or the policy's.
        tiers: Names of the tiers it is copied to; ``None`` means every tier of the policy.
        enabled: Whether backups run for it (a disabled target is still listed and audited).
        selector: Which resources it protects, found at run time (`backuppolicy.Selector`);
            then ``kind`` is `SELECTOR_KIND`, ``settings`` hold defaults for the targets it
            finds (`expand`), and each of them inherits application, schedule, retention,
            tiers and account.
        account: The account it lives in, reached by assuming a role (`AccountSpec`);
            ``None``: the caller's.
        regions: Regions a selector searches, one after another (one session per account and
            region); only for selector targets. Empty: the selector's, else the run's region.
        probes: What a restore test checks on the restored copy (`ProbesSpec`): SQL queries,
            files, S3 keys, an HTTP health URL; run by the CLI, Lambda and Python alike.
        fingerprint: Fingerprints proven after each restore (`FingerprintSpec`): the manifest's
            checksums (all, or a sample), and database queries recorded at backup time.

    A selector target:

        >>> dbs = TargetSpec.from_dict({"name": "dbs", "kind": "rds-instance",
        ...                             "selector": {"tags": {"backup": "daily"}},
        ...                             "regions": ["eu-west-2"]})
        >>> dbs.kind, dbs.resource
        ('selector', 'every rds-instance tagged backup=daily in eu-west-2')
    """

    name: str = attrs.field(validator=validate_name)
    kind: str = attrs.field()
    application: str = attrs.field(
        default=attrs.Factory(_default_application, takes_self=True),
        validator=validate_name,
        kw_only=True,
    )
    settings: Mapping[str, Any] = attrs.field(
        factory=dict, converter=frozen_settings, hash=False, kw_only=True
    )
    schedule: Schedule | None = attrs.field(
        default=None, validator=validate_optional_schedule, kw_only=True
    )
    retention: RetentionRule | None = attrs.field(
        default=None, validator=validate_optional_rule, kw_only=True
    )
    tiers: tuple[str, ...] | None = attrs.field(
        default=None, converter=_to_optional_names, kw_only=True
    )
    enabled: bool = attrs.field(default=True, validator=validate_flag, kw_only=True)
    selector: Selector | None = attrs.field(
        default=None, validator=_v_optional_selector, kw_only=True
    )
    account: AccountSpec | None = attrs.field(
        default=None, validator=_v_optional_account, kw_only=True
    )
    regions: tuple[str, ...] = attrs.field(default=(), converter=to_regions, kw_only=True)
    probes: ProbesSpec | None = attrs.field(
        default=None, validator=_optional_of(ProbesSpec, "a ProbesSpec"), kw_only=True
    )
    fingerprint: FingerprintSpec | None = attrs.field(
        default=None, validator=_optional_of(FingerprintSpec, "a FingerprintSpec"), kw_only=True
    )
    critical: bool = attrs.field(default=False, validator=validate_flag, kw_only=True)

    @kind.validator
    def _check_kind(self, _attribute: attrs.Attribute[str], value: object) -> None:
        if value != SELECTOR_KIND:
            read_kind(value, "kind")

    def __attrs_post_init__(self) -> None:
        if self.selector is not None:
            if self.kind != SELECTOR_KIND:
                raise PolicyError.for_field(
                    "kind",
                    f"{SELECTOR_KIND!r} for a target with a selector (the selector's kinds are "
                    "the kinds of the targets it finds)",
                    self.kind,
                )
            read_selector_settings(self.settings, "settings", self.selector)
            if self.regions and self.selector.regions:
                raise PolicyError.for_field(
                    "regions",
                    "regions on the target or in its selector, not both",
                    list(self.regions),
                )
            return
        if self.kind == SELECTOR_KIND:
            raise PolicyError.for_field(
                "selector", f"a selector for a target of kind {SELECTOR_KIND!r}", None
            )
        if self.regions:
            raise PolicyError.for_field(
                "regions",
                "regions only on a selector target (a single resource names its region in "
                "settings.region)",
                list(self.regions),
            )
        if self.kind in TARGET_SETTINGS:
            required, optional = TARGET_SETTINGS[self.kind]
            read_settings(self.settings, "settings", required, optional)

    def expand(self, found: Iterable[Mapping[str, Any]]) -> tuple[TargetSpec, ...]:
        """The concrete targets a selector target stands for, given the resources found.

        Each resource (a ``{"name", "kind", "settings"}`` dict of
        `backuppolicy.core.selector.resolve`) becomes a target named ``<name>-<resource name>``
        (at most 63 characters: a longer one is cut and ends in a hash of the whole, so it is
        stable), with the resource's id and region, this target's settings that its kind
        takes, and this target's application, schedule, retention, tiers, enabled and account.
        A resource name found in two regions gets the region appended. A target that is not
        a selector stands for itself.

        Example:
            >>> dbs = TargetSpec("dbs", SELECTOR_KIND, selector=Selector(tags={"backup": "daily"}))
            >>> [t.name for t in dbs.expand([{"name": "orders", "kind": "rds-instance",
            ...     "settings": {"db_instance_id": "orders", "region": "eu-west-2"}}])]
            ['dbs-orders']

        Raises:
            PolicyError: Two resources would get the same target name (the message names both).
        """
        if self.selector is None:
            return (self,)
        items = [dict(item) for item in found]
        counts: dict[str, int] = {}
        for item in items:
            counts[item["name"]] = counts.get(item["name"], 0) + 1
        made: dict[str, tuple[TargetSpec, Mapping[str, object]]] = {}
        for item in items:
            kind, resource = item["kind"], dict(item["settings"])
            child = item["name"]
            if counts[child] > 1 and resource.get("region"):
                child = f"{child}-{resource['region']}"
            name = _child_name(self.name, child)
            optional = TARGET_SETTINGS[kind][1]
            settings = {k: v for k, v in self.settings.items() if k in optional} | resource
            if name in made:
                raise PolicyError.for_field(
                    "selector",
                    "resources with distinct names (give them distinct Name tags, or narrow "
                    "the selector)",
                    name,
                    hint=(
                        f"Target {self.name!r}: {_found_words(made[name][1], made[name][0].kind)}"
                        f" and {_found_words(resource, kind)} would both be named {short_repr(name)}."
                    ),
                )
            spec = TargetSpec(
                name,
                kind,
                application=self.application,
                settings=settings,
                schedule=self.schedule,
                retention=self.retention,
                tiers=self.tiers,
                enabled=self.enabled,
                account=self.account,
                probes=self.probes,
                fingerprint=self.fingerprint,
                critical=self.critical,
            )
            made[name] = (spec, resource)
        return tuple(made[name][0] for name in sorted(made))

    @property
    def resource(self) -> str:
        """The protected resource in one string: the database id, ``s3://bucket/prefix``, the path.

        A selector target gives what it selects: ``"every rds-instance tagged backup=daily"``.
        """
        if self.selector is not None:
            return _selector_words(self.selector, self.regions)
        s = self.settings
        if self.kind == "s3-bucket":
            return f"s3://{s.get('bucket', self.name)}/{s.get('prefix', '')}"
        key = _RESOURCE_KEYS.get(self.kind)
        if key is not None:
            return str(s.get(key, self.name))
        return ", ".join(f"{key}={value}" for key, value in s.items()) or self.name

    def to_dict(self) -> dict[str, object]:
        """Plain data, as `Policy.from_dict` reads it."""
        data: dict[str, object] = {"name": self.name}
        if self.selector is not None:
            data["selector"] = self.selector.to_dict()
        else:
            data["kind"] = self.kind
        data["application"] = self.application
        data["settings"] = dict(self.settings)
        if self.regions:
            data["regions"] = list(self.regions)
        if self.account is not None:
            data["account"] = self.account.to_dict()
        if self.schedule is not None:
            data["schedule"] = self.schedule.to_spec()
        if self.retention is not None:
            data["retention"] = self.retention.to_spec()
        if self.tiers is not None:
            data["tiers"] = list(self.tiers)
        if not self.enabled:
            data["enabled"] = False
        data.update(self._proof_to_dict())
        return data

    def _proof_to_dict(self) -> dict[str, object]:
        """The target's proof settings (probes, fingerprint, critical) that are not defaults."""
        data: dict[str, object] = {}
        if self.probes is not None:
            data["probes"] = self.probes.to_dict()
        if self.fingerprint is not None:
            data["fingerprint"] = self.fingerprint.to_dict()
        if self.critical:
            data["critical"] = True
        return data

    @classmethod
    def from_dict(cls, data: object, *, path: str = "target", tz: str = "UTC") -> TargetSpec:
        """Build from plain data; errors name fields under *path*; schedules default to *tz*."""
        raw = read_mapping(data, path, _TARGET_KEYS, ("name",))
        name = read_name(raw["name"], join_path(path, "name"))
        selector = None
        if raw.get("selector") is not None:
            selector = Selector.from_dict(raw["selector"], path=join_path(path, "selector"))
            selector = read_selector_kind(raw.get("kind"), join_path(path, "kind"), selector)
            kind = SELECTOR_KIND
        elif "kind" not in raw:
            raise PolicyError.for_field(
                join_path(path, "kind"),
                "a value (the key is required unless there is a selector)",
                None,
            )
        elif raw["kind"] == SELECTOR_KIND:
            raise PolicyError.for_field(
                join_path(path, "selector"),
                f"a selector for a target of kind {SELECTOR_KIND!r}",
                None,
            )
        else:
            kind = read_kind(raw["kind"], join_path(path, "kind"))
        application = read_name(raw.get("application", name), join_path(path, "application"))
        settings_path = join_path(path, "settings")
        account = (
            AccountSpec.from_dict(raw["account"], path=join_path(path, "account"))
            if raw.get("account") is not None
            else None
        )
        regions: tuple[str, ...] = ()
        if raw.get("regions") is not None:
            with at_path(path):
                regions = to_regions(raw["regions"])
        if selector is not None:
            settings = read_selector_settings(raw.get("settings", {}), settings_path, selector)
        elif kind in TARGET_SETTINGS:
            required, optional = TARGET_SETTINGS[kind]
            settings = read_settings(raw.get("settings", {}), settings_path, required, optional)
        else:
            settings = read_free_settings(raw.get("settings", {}), settings_path)
        schedule = (
            read_schedule(raw["schedule"], join_path(path, "schedule"), tz=tz)
            if raw.get("schedule") is not None
            else None
        )
        retention = (
            read_retention(raw["retention"], join_path(path, "retention"))
            if raw.get("retention") is not None
            else None
        )
        tiers = (
            read_names(raw["tiers"], join_path(path, "tiers"))
            if raw.get("tiers") is not None
            else None
        )
        enabled = read_flag(raw.get("enabled", True), join_path(path, "enabled"))
        probes = (
            ProbesSpec.from_dict(raw["probes"], path=join_path(path, "probes"))
            if raw.get("probes") is not None
            else None
        )
        fingerprint = (
            FingerprintSpec.from_dict(raw["fingerprint"], path=join_path(path, "fingerprint"))
            if raw.get("fingerprint") is not None
            else None
        )
        critical = read_flag(raw.get("critical", False), join_path(path, "critical"))
        with at_path(path):
            return cls(
                name,
                kind,
                application=application,
                settings=settings,
                schedule=schedule,
                retention=retention,
                tiers=tiers,
                enabled=enabled,
                selector=selector,
                account=account,
                regions=regions,
                probes=probes,
                fingerprint=fingerprint,
                critical=critical,
            )


def _found_words(settings: Mapping[str, object], kind: str) -> str:
    ident = settings.get({**_RESOURCE_KEYS, "s3-bucket": "bucket"}.get(kind, ""), "?")
    return (
        f"{kind} {short_repr(ident)} in {short_repr(settings.get('region', 'the default region'))}"
    )


# --------------------------------------------------------------------------------------------
# Unattended runs (`backuppolicy run`).

_RUN_KEYS: Final = ("log", "heartbeat", "lease_timeout")
_SECRET_REF: Final = "a reference to a secret: {env: NAME} or {file: /path}"


def _to_heartbeat(value: object) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    raise PolicyError.for_field("heartbeat", f"{_SECRET_REF} (a Secret)", type(value).__name__)


def _read_heartbeat(value: object, path: str) -> Secret:
    # The ping URL is a credential (whoever has it can say the job ran): never inline.
    if isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in {"env", "file"}:
        ((source, name),) = value.items()
        try:
            return Secret.from_env(name) if source == "env" else Secret.from_file(name)
        except PolicyError as exc:
            raise PolicyError(
                f"{path}.{exc}", path=f"{path}.{exc.path}", expected=exc.expected, got=exc.got
            ) from None
    got = "an inline URL (not shown)" if isinstance(value, str) else type(value).__name__
    raise PolicyError(
        f"{path}: expected {_SECRET_REF}, e.g. 'heartbeat: {{env: BACKUPPOLICY_HEARTBEAT_URL}}' "
        f"(got {got}).",
        path=path,
        expected=_SECRET_REF,
        got=got,
    )


def _to_log(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise PolicyError.for_field(
            "log", "a testing-log URL: a file path, s3://bucket/prefix or memory://", value
        )
    return value


@attrs.frozen
class RunSpec:
    """How `backuppolicy.run` runs the policy unattended (the policy's ``run`` section).

    Example:
        >>> spec = RunSpec.from_dict({"log": "/var/lib/backuppolicy/testing-log.jsonl",
        ...                           "heartbeat": {"env": "BACKUPPOLICY_HEARTBEAT_URL"}})
        >>> spec.heartbeat, str(spec.lease_timeout)
        (Secret(env='BACKUPPOLICY_HEARTBEAT_URL'), '6h')

    Attributes:
        log: Where the testing log lives (a file path, ``s3://bucket/prefix``); the run's lease
            lives next to it. ``None``: the log must be given to the run (``--log``).
        heartbeat: The ping URL of a dead man's switch (healthchecks.io, Cronitor), a
            `~backuppolicy.core.secrets.Secret` given by reference; ``None`` for no heartbeat.
        lease_timeout: After how long a run's lease is stale and may be taken over (longer
            than the longest run, restore tests included).
    """

    log: str | None = attrs.field(default=None, converter=_to_log, kw_only=True)
    heartbeat: Secret | None = attrs.field(default=None, converter=_to_heartbeat, kw_only=True)
    lease_timeout: Duration = attrs.field(
        default=Duration(hours=6), converter=to_duration, validator=validate_duration, kw_only=True
    )

    def to_dict(self) -> dict[str, object]:
        """Plain data, as `Policy.from_dict` reads it (the heartbeat as its reference)."""
        data: dict[str, object] = {"lease_timeout": str(self.lease_timeout)}
        if self.log is not None:
            data["log"] = self.log
        if self.heartbeat is not None:
            data["heartbeat"] = secrets_to_dict(self.heartbeat)
        return data

    @classmethod
    def from_dict(cls, data: object, *, path: str = "run") -> RunSpec:
        """Build from plain data; errors name fields under *path*."""
        raw = read_mapping(data, path, _RUN_KEYS)
        kwargs: dict[str, Any] = {}
        if raw.get("heartbeat") is not None:
            kwargs["heartbeat"] = _read_heartbeat(raw["heartbeat"], join_path(path, "heartbeat"))
        if "lease_timeout" in raw:
            kwargs["lease_timeout"] = read_duration(
                raw["lease_timeout"], join_path(path, "lease_timeout")
            )
        with at_path(path):
            return cls(log=raw.get("log"), **kwargs)


# Size anomalies (verification.size_anomaly)

_SIZE_ANOMALY_KEYS: Final = ("drop_below", "rise_above", "window", "min_history", "status")
_SIZE_STATUSES: Final = ("warn", "fail")


def _read_percent(value: object, path: str) -> float:
    """``"20%"`` or ``20`` -> 20.0; anything else is a `PolicyError` naming *path*."""
    expected = "a percentage such as '20%' (or a number of percent)"
    number: object = value
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        try:
            number = float(text)
        except ValueError:
            raise PolicyError.for_field(path, expected, value) from None
    if isinstance(number, bool) or not isinstance(number, int | float) or number != number:  # noqa: PLR0124 - NaN
        raise PolicyError.for_field(path, expected, value)
    return float(number)


def _read_count(value: object, path: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PolicyError.for_field(path, f"an integer >= {minimum}", value)
    return value


def _v_drop(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 < value < 100:  # noqa: PLR2004 - percent
        raise PolicyError.for_field(attribute.name, "a percentage between 0% and 100%", value)


def _v_rise(_inst: object, attribute: attrs.Attribute[float | None], value: float | None) -> None:
    if value is not None and not value > 100:  # noqa: PLR2004 - percent
        raise PolicyError.for_field(attribute.name, "None or a percentage above 100%", value)


def _v_count(minimum: int) -> Any:
    def check(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
        _read_count(value, attribute.name, minimum)

    return check


def _v_status(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in _SIZE_STATUSES:
        raise PolicyError.for_field(attribute.name, "'warn' or 'fail'", value)


@attrs.frozen
class SizeAnomalySpec:
    """When a backup's size is an anomaly: far off the rolling median of its target.

    A sudden drop to a few percent of the usual size is the classic symptom of an empty dump.
    The ``size-anomaly`` check compares each backup with the median size of the *window*
    completed backups before it in the same tier (sizes as the backend reports them: RDS
    allocated storage, EBS volume sizes, archive and manifest bytes).

    Example:
        >>> spec = SizeAnomalySpec.from_dict({"drop_below": "20%", "window": 10})
        >>> spec.drop_below, spec.rise_above, spec.window, spec.min_history, spec.status
        (20.0, None, 10, 3, 'fail')

    Attributes:
        drop_below: A backup smaller than this percentage of the median is an anomaly.
        rise_above: A backup larger than this percentage of the median is one too
            (``None``: growth is never an anomaly).
        window: How many earlier backups the median is taken over.
        min_history: How many earlier backups with a size are needed before anything is
            judged (fewer: the check is skipped).
        status: What an anomaly is: ``"fail"`` (the default) or ``"warn"``; both are notified.
    """

    drop_below: float = attrs.field(default=20.0, validator=_v_drop, kw_only=True)
    rise_above: float | None = attrs.field(default=None, validator=_v_rise, kw_only=True)
    window: int = attrs.field(default=10, validator=_v_count(2), kw_only=True)
    min_history: int = attrs.field(default=3, validator=_v_count(1), kw_only=True)
    status: str = attrs.field(default="fail", validator=_v_status, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.min_history > self.window:
            raise PolicyError.for_field(
                "min_history", f"at most window ({self.window})", self.min_history
            )

    def to_dict(self) -> dict[str, object]:
        """Plain data, as `from_dict` reads it."""
        data: dict[str, object] = {
            "drop_below": f"{self.drop_below:g}%",
            "window": self.window,
            "min_history": self.min_history,
            "status": self.status,
        }
        if self.rise_above is not None:
            data["rise_above"] = f"{self.rise_above:g}%"
        return data

    @classmethod
    def from_dict(cls, data: object, *, path: str = "size_anomaly") -> SizeAnomalySpec:
        """Build from plain data (``true`` means every default); errors name fields under *path*."""
        if data is True:
            return cls()
        raw = read_mapping(data, path, _SIZE_ANOMALY_KEYS)
        kwargs: dict[str, Any] = {}
        for key in ("drop_below", "rise_above"):
            if raw.get(key) is not None:
                kwargs[key] = _read_percent(raw[key], join_path(path, key))
        for key, minimum in (("window", 2), ("min_history", 1)):
            if key in raw:
                kwargs[key] = _read_count(raw[key], join_path(path, key), minimum)
        if "status" in raw:
            status = raw["status"]
            if status not in _SIZE_STATUSES:
                raise PolicyError.for_field(
                    join_path(path, "status"),
                    "'warn' or 'fail'",
                    status,
                    hint=did_you_mean(status, _SIZE_STATUSES),
                )
            kwargs["status"] = status
        with at_path(path):
            return cls(**kwargs)
