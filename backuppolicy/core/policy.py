"""The backup policy as a value: `Policy` and its specs, loaded from YAML, TOML or a dict.

A `Policy` says *what* is backed up (`TargetSpec`), *when* (the policy's `Schedule`, and
the copy tiers, `TierSpec`), *how long* copies are kept (a `RetentionRule`, with
overrides per tier and per target), *how we know it works* (`VerificationSpec`),
*what we promise* (`Objective`: RPO and RTO per application) and *who hears about
failures* (`NotificationSpec`).

Loading validates everything up front. Every error is a `PolicyError` whose message
names the path of the field, what was expected and what was given, e.g.::

    targets[2].retention.max_age: expected a duration like '35d' (got 'soon').
    tiers[1].evry: expected a known key: name, every, location, retention (got 'evry'). Did you mean 'every'?

`Policy.to_markdown` renders the human policy document (the sections of the written
policy) from the same object, so the document can never drift from the code.

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

import contextlib
import difflib
import enum
import functools
import hashlib
import html
import importlib.metadata
import itertools
import math
import os
import re
import stat
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import yaml

from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError, short_repr
from backuppolicy.core.model import TAG_HOLD, TAG_POLICY, TAG_TARGET
from backuppolicy.core.retention import RetentionRule, rule_from_spec
from backuppolicy.core.schedule import Cadence, Schedule, rolling_slots
from backuppolicy.core.secrets import Secret, redact_url, secret_field
from backuppolicy.core.selector import RESOURCE_TYPES, Selector
from backuppolicy.core.targets import NAME_PREFIX_RE

__all__ = [
    "BUILTIN_TARGET_KINDS",
    "EVENTS",
    "MAX_POLICY_BYTES",
    "NOTIFICATION_KINDS",
    "SELECTOR_KIND",
    "TARGET_SETTINGS",
    "AccountSpec",
    "NotificationSpec",
    "Objective",
    "Policy",
    "PolicyLookupError",
    "TargetSpec",
    "TierSpec",
    "VerificationSpec",
]

BUILTIN_TARGET_KINDS: Final = (
    "aurora-cluster",
    "aws-backup",
    "directory",
    "ebs-volume",
    "ec2-instance",
    "rds-instance",
    "s3-bucket",
)
"""Target kinds that ship with backuppolicy."""

SELECTOR_KIND: Final = "selector"
"""The ``kind`` of a target that has a selector: its resources' kinds are the selector's."""

NOTIFICATION_KINDS: Final = ("log", "sns", "webhook")
"""Kinds of `NotificationSpec`."""

EVENTS: Final = ("backup_failed", "copy_failed", "verification_failed", "overdue", "prune_failed")
"""Events a notification can subscribe to (``on:``): the values of `backuppolicy.notify.EventKind`."""

MAX_POLICY_BYTES: Final = 1024 * 1024
"""Largest policy file or text read, in bytes (1 MiB); a larger one is refused unparsed."""

_MAX_DEPTH: Final = 64  # nesting levels of a policy document
_MAX_NODES: Final = 100_000  # nodes of a policy document, every alias use counted in full
_MAX_INT_DIGITS: Final = 64  # far below int()'s 4,300-digit limit

_ENTRY_POINT_GROUP: Final = "backuppolicy.targets"
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_NAME_EXPECTED: Final = (
    "a name of 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
)
_KIND_RE: Final = re.compile(r"[a-z][a-z0-9]*(?:[-_.][a-z0-9]+)*")
_PLUGIN_KIND_RE: Final = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*:[a-z][a-z0-9]*(?:[-_.][a-z0-9]+)*"
)
_REGION_RE: Final = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")
_ACCOUNT_RE: Final = re.compile(r"\d{12}")
_SNS_ARN_RE: Final = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}")
_URL_RE: Final = re.compile(r"https?://[^\s/$.?#][^\s]*")
_S3_URI_RE: Final = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](?:/[^\s]*)?")
_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_ROLE_ARN_RE: Final = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}")
_SESSION_NAME_RE: Final = re.compile(r"[\w+=,.@-]{2,64}")
_EXTERNAL_ID_RE: Final = re.compile(r"[\w+=,.@:/-]{2,1224}")


class PolicyLookupError(PolicyError, LookupError):
    """A target, tier or application name is not in the policy.

    Attributes:
        name: The name that was looked up.
        known: The names the policy has.
    """

    def __init__(self, message: str, *, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        super().__init__(message, path="", expected="one of " + ", ".join(known), got=name)


# --------------------------------------------------------------------------------------------
# Small validation helpers (paths are relative to the object being built; `_at` re-roots them).


def _did_you_mean(word: object, choices: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"Did you mean {match[0]!r}?" if match else ""


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _reroot(exc: PolicyError, prefix: str) -> PolicyError:
    """Return *exc* with its path (and message) prefixed by *prefix*."""
    if not prefix:
        return exc
    old = exc.path
    new = prefix if not old else (f"{prefix}{old}" if old.startswith("[") else f"{prefix}.{old}")
    message = str(exc)
    if old and message.startswith(f"{old}: "):
        message = f"{new}: {message[len(old) + 2 :]}"
    elif not old:
        message = f"{new}: {message}"
    return PolicyError(message, path=new, expected=exc.expected, got=exc.got)


@contextlib.contextmanager
def _at(prefix: str) -> Iterator[None]:
    """Re-root the path of any `PolicyError` raised inside the block under *prefix*."""
    try:
        yield
    except PolicyLookupError:
        raise
    except PolicyError as exc:
        raise _reroot(exc, prefix) from None


def _mapping(
    value: Any, path: str, keys: Sequence[str], required: Sequence[str] = ()
) -> dict[str, Any]:
    """Check that *value* is a mapping with text keys among *keys*, holding every *required* key."""
    if not isinstance(value, Mapping):
        raise PolicyError.for_field(path, f"a mapping with keys {', '.join(keys)}", value)
    for key in value:
        if not isinstance(key, str):
            raise PolicyError.for_field(path, "a mapping with text keys", key)
        if key not in keys:
            raise PolicyError.for_field(
                _join(path, key),
                f"a known key: {', '.join(keys)}",
                key,
                hint=_did_you_mean(key, keys),
            )
    for key in required:
        if key not in value:
            raise PolicyError.for_field(_join(path, key), "a value (the key is required)", None)
    return dict(value)


def _list(value: Any, path: str, what: str) -> list[Any]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise PolicyError.for_field(path, f"a list of {what}", value)
    return list(value)


def _text(value: Any, path: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise PolicyError.for_field(
            path, "a string" if allow_empty else "a non-empty string", value
        )
    return value


def _flag(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyError.for_field(path, "true or false", value)
    return value


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise PolicyError.for_field(path, _NAME_EXPECTED, value)
    return value


def _names(value: Any, path: str) -> tuple[str, ...]:
    items = _list(value, path, "names")
    names = tuple(_name(item, _join(path, i)) for i, item in enumerate(items))
    for i, name in enumerate(names):
        if name in names[:i]:
            raise PolicyError.for_field(_join(path, i), "each name at most once", name)
    return names


def _timezone(value: Any, path: str) -> str:
    expected = "an IANA time zone name such as 'UTC', 'GMT' or 'Europe/London'"
    if not isinstance(value, str) or not value:
        raise PolicyError.for_field(path, expected, value)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise PolicyError.for_field(path, expected, value) from None
    return value


def _duration(value: Any, path: str, *, positive: bool = True) -> Duration:
    duration = Duration.coerce(value, field=path)
    if positive and duration.is_zero:
        raise PolicyError.for_field(path, "a duration longer than zero", str(duration))
    return duration


def _cadence(value: Any, path: str) -> Cadence:
    """Read a `Cadence` from its value (``"quarter"``) or its adverb (``"quarterly"``)."""
    if not isinstance(value, (Cadence, str)):
        raise PolicyError.for_field(
            path, "one of " + ", ".join(repr(c.value) for c in Cadence), value
        )
    return Cadence.coerce(value, path=path)


def _retention(value: Any, path: str) -> RetentionRule:
    if isinstance(value, RetentionRule):
        return value
    if not isinstance(value, Mapping):
        raise PolicyError.for_field(
            path, "a mapping of retention rules such as {max_age: 35d}", value
        )
    try:
        return rule_from_spec(value, path=path)
    except PolicyError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        raise PolicyError.for_field(path, "a valid retention rule", dict(value)) from exc


def _schedule(value: Any, path: str, *, tz: str = "UTC") -> Schedule:
    if isinstance(value, Schedule):
        return value
    if isinstance(value, str):
        value = {"cron": value, "tz": tz}
    elif isinstance(value, Mapping) and "tz" not in value:
        value = {**value, "tz": tz}
    if not isinstance(value, (Mapping, str)):
        raise PolicyError.for_field(path, "a schedule (a mapping or a cron line)", value)
    try:
        return Schedule.from_spec(value, path=path)
    except PolicyError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        raise PolicyError.for_field(path, "a valid schedule", value) from exc


def _every(value: Any, path: str, *, tz: str = "UTC") -> Cadence | Schedule:
    """A tier's ``every``: a cadence (``week``, ``weekly``), or a schedule (mapping or cron line)."""
    if isinstance(value, (Cadence, Schedule)):
        return value
    if isinstance(value, str) and not value.strip().startswith("@") and len(value.split()) < 5:  # noqa: PLR2004 - a cron line has five fields
        return _cadence(value, path)
    if isinstance(value, (str, Mapping)):
        return _schedule(value, path, tz=tz)
    raise PolicyError.for_field(
        path, "a cadence (day, week, month, quarter, year) or a schedule", value
    )


def _every_to_spec(every: Cadence | Schedule) -> Any:
    return every.value if isinstance(every, Cadence) else every.to_spec()


def _every_describe(every: Cadence | Schedule) -> str:
    return every.adverb if isinstance(every, Cadence) else every.describe()


# ---- settings checkers -----------------------------------------------------------------------

_Check = Callable[[Any, str], Any]


def _s_text(value: Any, path: str) -> str:
    return _text(value, path)


def _s_name_prefix(value: Any, path: str) -> str:
    if not isinstance(value, str) or not NAME_PREFIX_RE.fullmatch(value):
        raise PolicyError.for_field(
            path, "a letter, then up to 31 letters, digits or hyphens", value
        )
    return value


def _s_region(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _REGION_RE.fullmatch(value):
        raise PolicyError.for_field(path, "an AWS region such as 'eu-west-1'", value)
    return value


def _s_account(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _ACCOUNT_RE.fullmatch(value):
        raise PolicyError.for_field(path, "a 12-digit AWS account id as a string", value)
    return value


def _s_sns_arn(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _SNS_ARN_RE.fullmatch(value):
        raise PolicyError.for_field(
            path, "an SNS topic ARN like 'arn:aws:sns:eu-west-1:123456789012:backups'", value
        )
    return value


def _s_arn(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.startswith("arn:") or value.count(":") < 5:  # noqa: PLR2004
        raise PolicyError.for_field(
            path, "an ARN like 'arn:aws:rds:eu-west-1:123456789012:db:x'", value
        )
    return value


def _s_secret_url(value: Any, path: str) -> Secret:
    """A webhook URL: ``{env: NAME}``, ``{file: PATH}``, or inline only without a token."""
    found = secret_field(value, path, kind="webhook")
    if isinstance(found, Secret):
        return found
    if not _URL_RE.fullmatch(found):
        raise PolicyError.for_field(path, "an http(s) URL", redact_url(found))
    return Secret(found)


def _s_secret_map(value: Any, path: str) -> dict[str, Secret | str]:
    """HTTP headers: name -> ``{env: NAME}``, ``{file: PATH}``, or inline without a credential."""
    if not isinstance(value, Mapping):
        raise PolicyError.for_field(
            path, "a mapping of header names to values", type(value).__name__
        )
    result: dict[str, Secret | str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise PolicyError.for_field(path, "a mapping with non-empty text keys", key)
        found = secret_field(item, _join(path, key), kind="header", header=key)
        result[key] = found if isinstance(found, Secret) else _text(found, _join(path, key))
    return result


_SECRET_SETTINGS: Final = ("url", "headers")


def _secrets_to_dict(value: Any) -> Any:
    """Plain data of a setting: a `Secret` becomes its reference (or its redacted form)."""
    if isinstance(value, Secret):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {key: _secrets_to_dict(item) for key, item in value.items()}
    return value


def _s_abs_path(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "\x00" in value:
        raise PolicyError.for_field(path, "an absolute path such as '/srv/app'", value)
    return value


def _s_store(value: Any, path: str) -> str:
    if isinstance(value, str) and value.startswith("/") and "\x00" not in value:
        return value
    if not isinstance(value, str) or not _S3_URI_RE.fullmatch(value):
        raise PolicyError.for_field(
            path, "an S3 URI such as 's3://bucket/prefix' or an absolute directory", value
        )
    return value


def _s_bool(value: Any, path: str) -> bool:
    return _flag(value, path)


def _s_text_list(value: Any, path: str) -> list[str]:
    items = _list(value, path, "strings")
    return [_text(item, _join(path, i)) for i, item in enumerate(items)]


def _s_text_map(value: Any, path: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise PolicyError.for_field(path, "a mapping of strings to strings", value)
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise PolicyError.for_field(path, "a mapping with non-empty text keys", key)
        result[key] = _text(item, _join(path, key), allow_empty=True)
    return result


def _s_seconds(value: Any, path: str) -> float | int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise PolicyError.for_field(path, "a number of seconds > 0", value)
    return value


def _s_log_level(value: Any, path: str) -> str:
    if not isinstance(value, str) or value.upper() not in _LOG_LEVELS:
        raise PolicyError.for_field(path, "a log level: " + ", ".join(_LOG_LEVELS), value)
    return value.upper()


def _s_prefix(value: Any, path: str) -> str:
    return _text(value, path, allow_empty=True)


_AWS_COMMON: Final[dict[str, _Check]] = {"region": _s_region, "kms_key_id": _s_text}

TARGET_SETTINGS: Final[dict[str, tuple[dict[str, _Check], dict[str, _Check]]]] = {
    "rds-instance": ({"db_instance_id": _s_text}, {**_AWS_COMMON}),
    "aurora-cluster": ({"db_cluster_id": _s_text}, {**_AWS_COMMON}),
    "ec2-instance": ({"instance_id": _s_text}, {**_AWS_COMMON, "no_reboot": _s_bool}),
    "ebs-volume": ({"volume_id": _s_text}, {**_AWS_COMMON}),
    "s3-bucket": (
        {"bucket": _s_text},
        {
            **_AWS_COMMON,
            "prefix": _s_prefix,
            "versioning": _s_bool,
            "encryption": _s_text,
            "block_public_access": _s_bool,
            "manage_noncurrent": _s_bool,
        },
    ),
    "directory": ({"path": _s_abs_path}, {"include": _s_text_list, "exclude": _s_text_list}),
    "aws-backup": (
        {"resource_arn": _s_arn},
        {**_AWS_COMMON, "vault": _s_text, "iam_role_arn": _s_arn},
    ),
}
"""Settings of the built-in target kinds: ``kind -> (required checks, optional checks)``."""

_NOTIFICATION_SETTINGS: Final[dict[str, tuple[dict[str, _Check], dict[str, _Check]]]] = {
    "log": ({}, {"logger": _s_text, "level": _s_log_level}),
    "sns": ({"topic_arn": _s_sns_arn}, {"region": _s_region}),
    "webhook": ({"url": _s_secret_url}, {"headers": _s_secret_map, "timeout": _s_seconds}),
}

# Keys of a tier's location: the fields of `backuppolicy.core.targets.Destination` (and a vault).
_LOCATION_SETTINGS: Final[dict[str, _Check]] = {
    "region": _s_region,
    "account": _s_account,
    "kms_key_id": _s_text,
    "vault": _s_text,
    "store": _s_store,
}

# Keys of the restore-test isolation: the fields of `backuppolicy.core.targets.IsolationProfile`.
_ISOLATION_SETTINGS: Final[dict[str, _Check]] = {
    "subnet_group": _s_text,
    "security_group_ids": _s_text_list,
    "subnet_id": _s_text,
    "availability_zone": _s_text,
    "instance_class": _s_text,
    "name_prefix": _s_name_prefix,
    "tags": _s_text_map,
    "sweep_tag": _s_text,
}


def _settings(
    value: Any, path: str, required: Mapping[str, _Check], optional: Mapping[str, _Check]
) -> dict[str, Any]:
    keys = [*required, *optional]
    raw = _mapping(value, path, keys, tuple(required))
    return {key: {**required, **optional}[key](item, _join(path, key)) for key, item in raw.items()}


def _free_settings(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError.for_field(path, "a mapping of settings", value)
    for key in value:
        if not isinstance(key, str):
            raise PolicyError.for_field(path, "a mapping with text keys", key)
    return dict(value)


def _registered_kinds() -> tuple[str, ...]:
    try:
        return tuple(
            sorted(ep.name for ep in importlib.metadata.entry_points(group=_ENTRY_POINT_GROUP))
        )
    except Exception:  # noqa: BLE001 - broken metadata must not break loading a policy
        return ()


def _kind(value: Any, path: str) -> str:
    expected = "a target kind: " + ", ".join(BUILTIN_TARGET_KINDS) + " or 'package:kind'"
    if not isinstance(value, str):
        raise PolicyError.for_field(path, expected, value)
    if value in BUILTIN_TARGET_KINDS or _PLUGIN_KIND_RE.fullmatch(value):
        return value
    registered = _registered_kinds()
    if value in registered:
        return value
    raise PolicyError.for_field(
        path, expected, value, hint=_did_you_mean(value, BUILTIN_TARGET_KINDS + registered)
    )


def _frozen_settings(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError.for_field("settings", "a mapping of settings", value)
    return dict(value)


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
)
_TIER_KEYS: Final = ("name", "every", "location", "retention")
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
)
_ACCOUNT_KEYS: Final = ("role_arn", "external_id", "session_name")


def _v_name(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    _name(value, attribute.name)


def _v_text(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    _text(value, attribute.name, allow_empty=True)


def _v_flag(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    _flag(value, attribute.name)


def _v_duration(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Duration):
        raise PolicyError.for_field(attribute.name, "a Duration", value)
    if value.is_zero:
        raise PolicyError.for_field(attribute.name, "a duration longer than zero", str(value))


def _v_optional_duration(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        _v_duration(_inst, attribute, value)


def _v_cadence(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Cadence):
        raise PolicyError.for_field(attribute.name, "a Cadence", value)


def _v_optional_rule(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, RetentionRule):
        raise PolicyError.for_field(attribute.name, "None or a RetentionRule", value)


def _v_optional_schedule(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Schedule):
        raise PolicyError.for_field(attribute.name, "None or a Schedule", value)


def _to_duration(value: Any) -> Any:
    return Duration.coerce(value, field="duration") if isinstance(value, str) else value


def _to_optional_duration(value: Any) -> Any:
    return None if value is None else _to_duration(value)


def _to_covered_tiers(value: Any) -> tuple[str, ...]:
    return _names(value, "integrity_covers_tiers")


def _to_optional_names(value: Any) -> tuple[str, ...] | None:
    return None if value is None else _names(value, "tiers")


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

    application: str = attrs.field(validator=_v_name)
    rpo: Duration = attrs.field(converter=_to_duration, validator=_v_duration)
    rto: Duration | None = attrs.field(
        default=None, converter=_to_optional_duration, validator=_v_optional_duration
    )

    def describe(self) -> str:
        """One line: ``"shop: RPO 24 hours, RTO 4 hours"``."""
        rto = self.rto.describe() if self.rto else "not set"
        return f"{self.application}: RPO {self.rpo.describe()}, RTO {rto}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as `Policy.from_dict` reads it."""
        data: dict[str, Any] = {"application": self.application, "rpo": str(self.rpo)}
        if self.rto is not None:
            data["rto"] = str(self.rto)
        return data

    @classmethod
    def from_dict(cls, data: Any, *, path: str = "objective") -> Objective:
        """Build from plain data; errors name fields under *path*."""
        raw = _mapping(data, path, ("application", "rpo", "rto"), ("application", "rpo"))
        application = _name(raw["application"], _join(path, "application"))
        rpo = _duration(raw["rpo"], _join(path, "rpo"))
        rto = _duration(raw["rto"], _join(path, "rto")) if raw.get("rto") is not None else None
        with _at(path):
            return cls(application, rpo, rto)


def _to_events(value: Any) -> tuple[str, ...]:
    items = _list(value, "on", "events")
    for i, item in enumerate(items):
        if item not in EVENTS:
            raise PolicyError.for_field(
                f"on[{i}]", "an event: " + ", ".join(EVENTS), item, hint=_did_you_mean(item, EVENTS)
            )
        if item in items[:i]:
            raise PolicyError.for_field(f"on[{i}]", "each event at most once", item)
    if not items:
        raise PolicyError.for_field("on", "at least one event", value)
    return tuple(items)


def _v_notification_kind(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in NOTIFICATION_KINDS:
        raise PolicyError.for_field(
            attribute.name,
            "a notification kind: " + ", ".join(NOTIFICATION_KINDS),
            value,
            hint=_did_you_mean(value, NOTIFICATION_KINDS),
        )


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

    kind: str = attrs.field(validator=_v_notification_kind)
    settings: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_settings, hash=False)
    on: tuple[str, ...] = attrs.field(default=EVENTS, converter=_to_events)

    def __attrs_post_init__(self) -> None:
        required, optional = _NOTIFICATION_SETTINGS[self.kind]
        checked = _settings(self.settings, "settings", required, optional)
        # Hold the secret settings as `Secret` values, however they were given.
        secrets = {key: checked[key] for key in _SECRET_SETTINGS if key in checked}
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

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as `Policy.from_dict` reads it."""
        settings = {key: _secrets_to_dict(value) for key, value in self.settings.items()}
        return {"kind": self.kind, "settings": settings, "on": list(self.on)}

    @classmethod
    def from_dict(cls, data: Any, *, path: str = "notification") -> NotificationSpec:
        """Build from plain data; errors name fields under *path*."""
        raw = _mapping(data, path, ("kind", "settings", "on"), ("kind",))
        kind = raw["kind"]
        with _at(path):
            _v_notification_kind(None, attrs.fields(cls).kind, kind)
        required, optional = _NOTIFICATION_SETTINGS[kind]
        settings = _settings(raw.get("settings", {}), _join(path, "settings"), required, optional)
        with _at(path):
            events = _to_events(raw.get("on", list(EVENTS)))
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
    """

    restore_test_every: Cadence = attrs.field(
        default=attrs.Factory(lambda: Cadence.QUARTER), validator=_v_cadence, kw_only=True
    )
    restore_test_per_application_every: Cadence = attrs.field(
        default=attrs.Factory(lambda: Cadence.YEAR), validator=_v_cadence, kw_only=True
    )
    integrity_check_every: Cadence = attrs.field(
        default=attrs.Factory(lambda: Cadence.YEAR), validator=_v_cadence, kw_only=True
    )
    integrity_covers_tiers: tuple[str, ...] = attrs.field(
        default=(), converter=_to_covered_tiers, kw_only=True
    )
    isolation: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_settings, hash=False, kw_only=True
    )
    freshness_grace: Duration = attrs.field(
        default=Duration(hours=2), converter=_to_duration, validator=_v_duration, kw_only=True
    )
    require_encryption: bool = attrs.field(default=True, validator=_v_flag, kw_only=True)
    require_private: bool = attrs.field(default=True, validator=_v_flag, kw_only=True)

    def __attrs_post_init__(self) -> None:
        _settings(self.isolation, "isolation", {}, _ISOLATION_SETTINGS)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as `Policy.from_dict` reads it."""
        return {
            "restore_test_every": self.restore_test_every.value,
            "restore_test_per_application_every": self.restore_test_per_application_every.value,
            "integrity_check_every": self.integrity_check_every.value,
            "integrity_covers_tiers": list(self.integrity_covers_tiers),
            "isolation": dict(self.isolation),
            "freshness_grace": str(self.freshness_grace),
            "require_encryption": self.require_encryption,
            "require_private": self.require_private,
        }

    @classmethod
    def from_dict(cls, data: Any, *, path: str = "verification") -> VerificationSpec:
        """Build from plain data; errors name fields under *path*."""
        raw = _mapping(data, path, _VERIFICATION_KEYS)
        kwargs: dict[str, Any] = {}
        for key in (
            "restore_test_every",
            "restore_test_per_application_every",
            "integrity_check_every",
        ):
            if key in raw:
                kwargs[key] = _cadence(raw[key], _join(path, key))
        if "integrity_covers_tiers" in raw:
            kwargs["integrity_covers_tiers"] = _names(
                raw["integrity_covers_tiers"], _join(path, "integrity_covers_tiers")
            )
        if "isolation" in raw:
            kwargs["isolation"] = _settings(
                raw["isolation"], _join(path, "isolation"), {}, _ISOLATION_SETTINGS
            )
        if "freshness_grace" in raw:
            kwargs["freshness_grace"] = _duration(
                raw["freshness_grace"], _join(path, "freshness_grace")
            )
        for key in ("require_encryption", "require_private"):
            if key in raw:
                kwargs[key] = _flag(raw[key], _join(path, key))
        with _at(path):
            return cls(**kwargs)


def _v_every(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, (Cadence, Schedule)):
        raise PolicyError.for_field(attribute.name, "a Cadence or a Schedule", value)


def _to_every(value: Any) -> Cadence | Schedule:
    return _every(value, "every")


def _to_location(value: Any) -> dict[str, Any]:
    return _settings(value, "location", {}, _LOCATION_SETTINGS)


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
    """

    name: str = attrs.field(validator=_v_name)
    every: Cadence | Schedule = attrs.field(converter=_to_every, validator=_v_every)
    location: Mapping[str, Any] = attrs.field(factory=dict, converter=_to_location, hash=False)
    retention: RetentionRule | None = attrs.field(default=None, validator=_v_optional_rule)

    def describe(self) -> str:
        """One line: ``"offsite: weekly copy to region eu-west-1"``."""
        where = "; ".join(f"{key} {value}" for key, value in self.location.items())
        where = f" to {where}" if where else " in place"
        keep = f", kept by: {self.retention.describe()}" if self.retention else ""
        return f"{self.name}: {_every_describe(self.every)} copy{where}{keep}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as `Policy.from_dict` reads it."""
        data: dict[str, Any] = {
            "name": self.name,
            "every": _every_to_spec(self.every),
            "location": dict(self.location),
        }
        if self.retention is not None:
            data["retention"] = self.retention.to_spec()
        return data

    @classmethod
    def from_dict(cls, data: Any, *, path: str = "tier", tz: str = "UTC") -> TierSpec:
        """Build from plain data; errors name fields under *path*; schedules default to *tz*."""
        raw = _mapping(data, path, _TIER_KEYS, ("name", "every"))
        name = _name(raw["name"], _join(path, "name"))
        every = _every(raw["every"], _join(path, "every"), tz=tz)
        location = _settings(
            raw.get("location", {}), _join(path, "location"), {}, _LOCATION_SETTINGS
        )
        retention = (
            _retention(raw["retention"], _join(path, "retention"))
            if raw.get("retention") is not None
            else None
        )
        with _at(path):
            return cls(name, every, location, retention)


def _role_arn(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _ROLE_ARN_RE.fullmatch(value):
        raise PolicyError.for_field(
            path, "an IAM role ARN like 'arn:aws:iam::123456789012:role/backup'", value
        )
    return value


def _external_id(value: Any, path: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not _EXTERNAL_ID_RE.fullmatch(value)):
        raise PolicyError.for_field(
            path, "None or an external ID of 2-1224 letters, digits or +=,.@:/-_", value
        )
    return value


def _session_name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _SESSION_NAME_RE.fullmatch(value):
        raise PolicyError.for_field(
            path, "a role session name of 2-64 letters, digits or +=,.@-_", value
        )
    return value


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
    def _check_role_arn(self, _attribute: attrs.Attribute[str], value: Any) -> None:
        _role_arn(value, "role_arn")

    @external_id.validator
    def _check_external_id(self, _attribute: attrs.Attribute[str | None], value: Any) -> None:
        _external_id(value, "external_id")

    @session_name.validator
    def _check_session_name(self, _attribute: attrs.Attribute[str], value: Any) -> None:
        _session_name(value, "session_name")

    @property
    def account_id(self) -> str:
        """The 12-digit account id, from the role ARN."""
        return self.role_arn.split(":")[4]

    def describe(self) -> str:
        """One line: ``"account 123456789012 (role backup)"``."""
        role = self.role_arn.split(":role/", 1)[1]
        extra = ", with an external ID" if self.external_id else ""
        return f"account {self.account_id} (role {role}{extra})"

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as `from_dict` reads it."""
        data: dict[str, Any] = {"role_arn": self.role_arn}
        if self.external_id is not None:
            data["external_id"] = self.external_id
        data["session_name"] = self.session_name
        return data

    @classmethod
    def from_dict(cls, data: Any, *, path: str = "account") -> AccountSpec:
        """Build from a mapping (or a role ARN alone); errors name fields under *path*."""
        if isinstance(data, str):
            data = {"role_arn": data}
        raw = _mapping(data, path, _ACCOUNT_KEYS, ("role_arn",))
        role_arn = _role_arn(raw["role_arn"], _join(path, "role_arn"))
        external_id = _external_id(raw.get("external_id"), _join(path, "external_id"))
        session_name = _session_name(
            raw.get("session_name", "backuppolicy"), _join(path, "session_name")
        )
        with _at(path):
            return cls(role_arn, external_id=external_id, session_name=session_name)


def _v_optional_account(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, AccountSpec):
        raise PolicyError.for_field(attribute.name, "None or an AccountSpec", value)


def _v_optional_selector(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Selector):
        raise PolicyError.for_field(attribute.name, "None or a Selector", value)


def _to_regions(value: Any) -> tuple[str, ...]:
    items = _list(value, "regions", "AWS regions")
    regions = tuple(_s_region(item, f"regions[{i}]") for i, item in enumerate(items))
    for i, region in enumerate(regions):
        if region in regions[:i]:
            raise PolicyError.for_field(f"regions[{i}]", "each region at most once", region)
    return regions


def _selector_settings(value: Any, path: str, selector: Selector) -> dict[str, Any]:
    """Settings of a selector target: defaults for the targets it finds (no ids, no region)."""
    optional: dict[str, _Check] = {}
    for kind in selector.resource_types or tuple(RESOURCE_TYPES):
        optional.update(TARGET_SETTINGS[kind][1])
    optional.pop("region", None)
    if isinstance(value, Mapping) and "region" in value:
        raise PolicyError.for_field(
            _join(path, "region"),
            "no region in a selector target's settings (list them in the target's regions)",
            value["region"],
        )
    return _settings(value, path, {}, optional)


def _selector_kind(value: Any, path: str, selector: Selector) -> Selector:
    """Fold a selector target's optional ``kind`` into its selector's kinds."""
    if value is None or value == SELECTOR_KIND:
        return selector
    kinds = selector.resource_types or tuple(RESOURCE_TYPES)
    if value not in kinds:
        raise PolicyError.for_field(
            path,
            _one_of("a kind the selector finds", kinds),
            value,
            hint=_did_you_mean(value, kinds),
        )
    return selector if selector.resource_types else attrs.evolve(selector, resource_types=(value,))


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


def _default_application(self: Any) -> str:
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

    A selector target:

        >>> dbs = TargetSpec.from_dict({"name": "dbs", "kind": "rds-instance",
        ...                             "selector": {"tags": {"backup": "daily"}},
        ...                             "regions": ["eu-west-2"]})
        >>> dbs.kind, dbs.resource
        ('selector', 'every rds-instance tagged backup=daily in eu-west-2')
    """

    name: str = attrs.field(validator=_v_name)
    kind: str = attrs.field()
    application: str = attrs.field(
        default=attrs.Factory(_default_application, takes_self=True),
        validator=_v_name,
        kw_only=True,
    )
    settings: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_settings, hash=False, kw_only=True
    )
    schedule: Schedule | None = attrs.field(
        default=None, validator=_v_optional_schedule, kw_only=True
    )
    retention: RetentionRule | None = attrs.field(
        default=None, validator=_v_optional_rule, kw_only=True
    )
    tiers: tuple[str, ...] | None = attrs.field(
        default=None, converter=_to_optional_names, kw_only=True
    )
    enabled: bool = attrs.field(default=True, validator=_v_flag, kw_only=True)
    selector: Selector | None = attrs.field(
        default=None, validator=_v_optional_selector, kw_only=True
    )
    account: AccountSpec | None = attrs.field(
        default=None, validator=_v_optional_account, kw_only=True
    )
    regions: tuple[str, ...] = attrs.field(default=(), converter=_to_regions, kw_only=True)

    @kind.validator
    def _check_kind(self, _attribute: attrs.Attribute[str], value: Any) -> None:
        if value != SELECTOR_KIND:
            _kind(value, "kind")

    def __attrs_post_init__(self) -> None:
        if self.selector is not None:
            if self.kind != SELECTOR_KIND:
                raise PolicyError.for_field(
                    "kind",
                    f"{SELECTOR_KIND!r} for a target with a selector (the selector's kinds are "
                    "the kinds of the targets it finds)",
                    self.kind,
                )
            _selector_settings(self.settings, "settings", self.selector)
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
            _settings(self.settings, "settings", required, optional)

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
        made: dict[str, tuple[TargetSpec, Mapping[str, Any]]] = {}
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

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as `Policy.from_dict` reads it."""
        data: dict[str, Any] = {"name": self.name}
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
        return data

    @classmethod
    def from_dict(cls, data: Any, *, path: str = "target", tz: str = "UTC") -> TargetSpec:
        """Build from plain data; errors name fields under *path*; schedules default to *tz*."""
        raw = _mapping(data, path, _TARGET_KEYS, ("name",))
        name = _name(raw["name"], _join(path, "name"))
        selector = None
        if raw.get("selector") is not None:
            selector = Selector.from_dict(raw["selector"], path=_join(path, "selector"))
            selector = _selector_kind(raw.get("kind"), _join(path, "kind"), selector)
            kind = SELECTOR_KIND
        elif "kind" not in raw:
            raise PolicyError.for_field(
                _join(path, "kind"),
                "a value (the key is required unless there is a selector)",
                None,
            )
        elif raw["kind"] == SELECTOR_KIND:
            raise PolicyError.for_field(
                _join(path, "selector"), f"a selector for a target of kind {SELECTOR_KIND!r}", None
            )
        else:
            kind = _kind(raw["kind"], _join(path, "kind"))
        application = _name(raw.get("application", name), _join(path, "application"))
        settings_path = _join(path, "settings")
        account = (
            AccountSpec.from_dict(raw["account"], path=_join(path, "account"))
            if raw.get("account") is not None
            else None
        )
        regions: tuple[str, ...] = ()
        if raw.get("regions") is not None:
            with _at(path):
                regions = _to_regions(raw["regions"])
        if selector is not None:
            settings = _selector_settings(raw.get("settings", {}), settings_path, selector)
        elif kind in TARGET_SETTINGS:
            required, optional = TARGET_SETTINGS[kind]
            settings = _settings(raw.get("settings", {}), settings_path, required, optional)
        else:
            settings = _free_settings(raw.get("settings", {}), settings_path)
        schedule = (
            _schedule(raw["schedule"], _join(path, "schedule"), tz=tz)
            if raw.get("schedule") is not None
            else None
        )
        retention = (
            _retention(raw["retention"], _join(path, "retention"))
            if raw.get("retention") is not None
            else None
        )
        tiers = _names(raw["tiers"], _join(path, "tiers")) if raw.get("tiers") is not None else None
        enabled = _flag(raw.get("enabled", True), _join(path, "enabled"))
        with _at(path):
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
            )


def _found_words(settings: Mapping[str, Any], kind: str) -> str:
    ident = settings.get({**_RESOURCE_KEYS, "s3-bucket": "bucket"}.get(kind, ""), "?")
    return (
        f"{kind} {short_repr(ident)} in {short_repr(settings.get('region', 'the default region'))}"
    )


# --------------------------------------------------------------------------------------------
# YAML loading: YAML 1.2-like scalars (no `on: -> True`, no `04:00 -> 240`), duplicate keys rejected.


class _BoundedLoader(yaml.SafeLoader):
    """A safe loader that bounds the document while composing it, before anything is built.

    At most `_MAX_DEPTH` levels of nesting and `_MAX_NODES` nodes, where every use of an alias
    counts the whole node it names (so a "billion laughs" document is refused after a few
    thousand nodes, not expanded), no alias inside the node it names, and integers of at most
    `_MAX_INT_DIGITS` digits.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._total = 0
        self._sizes: dict[int, int] = {}

    @staticmethod
    def _refuse(problem: str, mark: Any) -> NoReturn:
        raise yaml.composer.ComposerError(None, None, problem, mark)

    def _count(self, size: int, mark: Any) -> None:
        self._total += size
        if self._total > _MAX_NODES:
            self._refuse(
                f"found more than {_MAX_NODES} nodes, counting every alias use in full", mark
            )

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Compose one node, counting its expanded size and its depth."""
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            named = self.anchors.get(str(event.anchor))
            if named is not None:
                size = self._sizes.get(id(named))
                if size is None:
                    problem = f"found the alias *{event.anchor} inside the node it names"
                    self._refuse(problem, event.start_mark)
                self._count(size, event.start_mark)
            return super().compose_node(parent, index)
        if self._depth >= _MAX_DEPTH:
            self._refuse(f"found more than {_MAX_DEPTH} levels of nesting", event.start_mark)
        self._depth += 1
        before = self._total
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._count(1, event.start_mark)
        self._sizes[id(node)] = self._total - before
        return node


class _Loader(_BoundedLoader):
    """A bounded safe loader that reads `on`/`off`/`yes`/`no`, times and dates as strings."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag
        not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|0o[0-7_]+)$"),
    list("-+0123456789"),
)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in result
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found the key {short_repr(key)} twice",
                key_node.start_mark,
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    digits = sum(ch.isalnum() for ch in str(node.value))
    if digits > _MAX_INT_DIGITS:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"found an integer of {digits} digits (at most {_MAX_INT_DIGITS})",
            node.start_mark,
        )
    return loader.construct_yaml_int(node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


class _Dumper(yaml.SafeDumper):
    """Dumps mappings in insertion order and lists indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:  # noqa: FBT001, FBT002 - PyYAML's signature
        del indentless
        super().increase_indent(flow, indentless=False)


# Characters YAML reads as line breaks (NEL, LS, PS). With allow_unicode PyYAML writes them raw
# inside a quoted scalar, and reading that back folds them into a space: such strings are
# written double-quoted with escapes instead.
_YAML_BREAKS = frozenset("\x85\u2028\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Represent *value* as PyYAML does, double-quoted where it holds a YAML line break."""
    if _YAML_BREAKS.isdisjoint(value):
        return dumper.represent_str(value)
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


_Dumper.add_representer(str, _represent_str)


def _check_text(text: str, source: str) -> None:
    """Refuse a policy text over `MAX_POLICY_BYTES` (characters never outnumber UTF-8 bytes)."""
    if (
        len(text) > MAX_POLICY_BYTES
        or len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES
    ):
        raise PolicyError(
            f"{source}: expected a policy of at most {MAX_POLICY_BYTES} bytes "
            f"(got {len(text.encode('utf-8', 'surrogatepass'))} bytes).",
            expected=f"at most {MAX_POLICY_BYTES} bytes",
            got=len(text),
        )


# A TOML key of more than _MAX_DEPTH dotted parts (bare or quoted parts, as TOML writes them).
# Possessive parts, and never starting inside a bare part: the search stays linear in the text.
_TOML_DEEP_KEY_RE: Final = re.compile(
    r"""(?<![A-Za-z0-9_-])(?:[A-Za-z0-9_-]++|"[^"\n]*+"|'[^'\n]*+')"""
    rf"""(?:[ \t]*+\.[ \t]*+(?:[A-Za-z0-9_-]++|"[^"\n]*+"|'[^'\n]*+')){{{_MAX_DEPTH},}}"""
)


def _check_toml_keys(text: str, source: str) -> None:
    """Refuse TOML keys of more than `_MAX_DEPTH` dotted parts before tomllib parses them.

    tomllib keeps every prefix of a dotted key, so its memory grows with the square of the
    number of parts: a key of 200,000 parts (400 KB) takes tens of gigabytes.
    """
    if _TOML_DEEP_KEY_RE.search(text):
        raise PolicyError(
            f"{source}: expected TOML keys of at most {_MAX_DEPTH} dotted parts "
            "(found a longer one).",
            expected=f"keys of at most {_MAX_DEPTH} dotted parts",
            got=None,
        )


def _load_yaml(
    text: str, source: str = "<string>", loader_class: type[_BoundedLoader] = _Loader
) -> tuple[Any, yaml.Node | None]:
    """Parse YAML text once with *loader_class*; return the data and the node tree (for lines).

    Syntax errors and refused documents become `PolicyError` with file:line:column.
    """
    _check_text(text, source)
    loader: _BoundedLoader | None = None
    try:
        loader = loader_class(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        # Not chained: PyYAML's own text quotes the offending line, which may hold a secret
        # the file should have referenced; file:line:column says where to look.
        raise PolicyError(
            f"{where}: expected valid YAML ({problem}).", expected="valid YAML", got=problem
        ) from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise PolicyError(
            f"{source}: expected valid YAML ({short_repr(str(exc))}).",
            expected="valid YAML",
            got=type(exc).__name__,
        ) from exc
    finally:
        if loader is not None:
            loader.dispose()
    return data, node


def _check_shape(data: Any, source: str) -> None:
    """Refuse parsed data deeper than `_MAX_DEPTH`, larger than `_MAX_NODES` or with huge ints."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    count = 0
    while stack:
        value, depth = stack.pop()
        count += 1
        problem = ""
        if depth > _MAX_DEPTH:
            problem = f"more than {_MAX_DEPTH} levels of nesting"
        elif count > _MAX_NODES:
            problem = f"more than {_MAX_NODES} values"
        elif isinstance(value, int) and value.bit_length() > _MAX_INT_DIGITS * 4:
            problem = f"an integer of more than {_MAX_INT_DIGITS} digits"
        if problem:
            raise PolicyError(
                f"{source}: expected a policy document (got {problem}).",
                expected="a policy document",
                got=problem,
            )
        if isinstance(value, Mapping):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, list | tuple):
            stack.extend((item, depth + 1) for item in value)


def _read_policy_text(path: str | os.PathLike[str]) -> str:
    """The text of a policy file: a regular file of at most `MAX_POLICY_BYTES`, in UTF-8.

    The file is opened without blocking (a FIFO named like a policy never hangs) and checked
    with ``fstat`` before anything is read; at most ``MAX_POLICY_BYTES + 1`` bytes are read.
    """
    name = short_repr(os.fspath(path), limit=400)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise PolicyError.for_field("path", "an existing policy file", os.fspath(path)) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise PolicyError.for_field(
            "path", "a readable policy file", os.fspath(path), hint=f"({short_repr(str(exc))})"
        ) from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise PolicyError(
            f"{name}: expected a regular file (got a {_file_kind(info.st_mode)}).",
            path="path",
            expected="a regular file",
            got=os.fspath(path),
        )
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > MAX_POLICY_BYTES:
            raise _too_big(name, info.st_size)
        try:
            raw = handle.read(MAX_POLICY_BYTES + 1)
        except OSError as exc:
            raise PolicyError.for_field(
                "path", "a readable policy file", os.fspath(path), hint=f"({exc})"
            ) from exc
    if len(raw) > MAX_POLICY_BYTES:  # it grew after fstat
        raise _too_big(name, len(raw))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError.for_field(
            "path", "a UTF-8 policy file", os.fspath(path), hint=f"({exc})"
        ) from exc


def _too_big(name: str, size: int) -> PolicyError:
    return PolicyError(
        f"{name}: expected a file of at most {MAX_POLICY_BYTES} bytes (got {size} bytes or more).",
        path="path",
        expected=f"at most {MAX_POLICY_BYTES} bytes",
        got=size,
    )


def _file_kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "directory",
        stat.S_ISFIFO: "FIFO",
        stat.S_ISCHR: "character device",
        stat.S_ISBLK: "block device",
        stat.S_ISSOCK: "socket",
    }
    return next((word for test, word in kinds.items() if test(mode)), "special file")


def _path_tokens(path: str) -> list[str | int]:
    return [
        int(part.group(2)) if part.group(2) is not None else part.group(1)
        for part in re.finditer(r"([^.\[\]]+)|\[(\d+)\]", path)
    ]


def _line_of(node: yaml.Node | None, path: str) -> int | None:
    """The 1-based line of the YAML node at *path* (or of its deepest existing parent)."""
    line = None
    for token in _path_tokens(path):
        if isinstance(node, yaml.MappingNode) and isinstance(token, str):
            found = [pair for pair in node.value if getattr(pair[0], "value", None) == token]
            if not found:
                break
            line = found[0][0].start_mark.line + 1
            node = found[0][1]
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(token, int)
            and token < len(node.value)
        ):
            node = node.value[token]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _with_location(exc: PolicyError, source: str) -> PolicyError:
    located = PolicyError(f"{source}: {exc}", path=exc.path, expected=exc.expected, got=exc.got)
    located.__cause__ = exc.__cause__
    return located


_INTERVAL_SAMPLE: Final = 32


@functools.lru_cache(maxsize=256)
def _schedule_interval(schedule: Schedule) -> timedelta:
    """The longest gap between two runs of *schedule*, over a sample of its runs."""
    run = datetime(2026, 1, 1, tzinfo=UTC)
    times = []
    for _ in range(_INTERVAL_SAMPLE):
        run = schedule.next_run(run)
        times.append(run)
    return max(later - earlier for earlier, later in itertools.pairwise(times))


def _timedelta_to_duration(delta: timedelta) -> Duration:
    hours, rest = divmod(delta, timedelta(hours=1))
    if not rest and hours <= 48:  # noqa: PLR2004 - up to two days reads best in hours
        return Duration(hours=int(hours))
    return Duration.coerce(delta, field="rpo")


# --------------------------------------------------------------------------------------------
# The policy.


class _Section(enum.Enum):
    """Keys of the policy document, in file order."""

    NAME = "name"
    DESCRIPTION = "description"
    TIMEZONE = "timezone"
    SCHEDULE = "schedule"
    ROLLING_PERIOD = "rolling_period"
    RETENTION = "retention"
    TIERS = "tiers"
    TARGETS = "targets"
    VERIFICATION = "verification"
    OBJECTIVES = "objectives"
    NOTIFICATIONS = "notifications"


_POLICY_KEYS: Final = tuple(section.value for section in _Section)


def _to_rolling(value: Any) -> Cadence | None:
    if value is None:
        return None
    cadence = _cadence(value, "rolling_period")
    if cadence is Cadence.HOUR:
        raise PolicyError.for_field("rolling_period", "a period of a day or longer", value)
    return cadence


def _tuple_of(kind: type, field: str, value: Any) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise PolicyError.for_field(field, f"a sequence of {kind.__name__}", value)
    items = tuple(value)
    for i, item in enumerate(items):
        if not isinstance(item, kind):
            raise PolicyError.for_field(f"{field}[{i}]", f"a {kind.__name__}", item)
    return items


def _to_targets(value: Any) -> tuple[TargetSpec, ...]:
    return _tuple_of(TargetSpec, "targets", value)


def _to_tiers(value: Any) -> tuple[TierSpec, ...]:
    return _tuple_of(TierSpec, "tiers", value)


def _to_objectives(value: Any) -> tuple[Objective, ...]:
    return _tuple_of(Objective, "objectives", value)


def _to_notifications(value: Any) -> tuple[NotificationSpec, ...]:
    return _tuple_of(NotificationSpec, "notifications", value)


def _v_rule(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, RetentionRule):
        raise PolicyError.for_field(attribute.name, "a RetentionRule", value)


@attrs.frozen(repr=False)
class Policy:
    """A backup policy: targets, schedule, tiers, retention, verification, objectives, notifications.

    Build one with `Policy.from_file` (YAML or TOML), `Policy.from_yaml` or `Policy.from_dict`;
    `to_dict` and `to_yaml` give it back, `to_markdown` renders the human policy document.

    Example:
        >>> policy = Policy.from_dict({
        ...     "name": "web-apps",
        ...     "schedule": {"cron": "0 4 * * *", "tz": "GMT"},
        ...     "retention": {"max_age": "35d"},
        ...     "targets": [{"name": "orders-db", "kind": "rds-instance",
        ...                  "settings": {"db_instance_id": "orders"}}],
        ... })
        >>> policy
        <backuppolicy.Policy(name='web-apps', targets=1, tiers=0)>
        >>> policy.objective_for("orders-db").rpo
        Duration(years=0, months=0, weeks=0, days=0, hours=24, minutes=0)

    Attributes:
        name: Name of the policy; recorded on every backup it creates (``backuppolicy:policy``).
        schedule: When the backups run (cron, time zone, window).
        retention: How long backups are kept, unless a tier or target says otherwise.
        description: Free text: what the policy is for.
        timezone: Time zone for retention buckets and for schedules that do not name one.
        rolling_period: Rolling full backups: every target gets its full backup once per
            this `Cadence` (a day or longer), each on its own day of the period
            (`backuppolicy.core.schedule.rolling_slots`); ``None`` means every run is a full backup.
        targets: What is backed up.
        tiers: Where copies live and how often they are made.
        verification: Restore tests, integrity checks, freshness, encryption, access.
        objectives: RPO/RTO per application; applications without one get the default
            derived from their schedule (daily backups: RPO 24 hours).
        notifications: Who is told about failures.
    """

    name: str = attrs.field(validator=_v_name)
    schedule: Schedule = attrs.field(validator=attrs.validators.instance_of(Schedule), kw_only=True)
    retention: RetentionRule = attrs.field(validator=_v_rule, kw_only=True)
    description: str = attrs.field(default="", validator=_v_text, kw_only=True)
    timezone: str = attrs.field(default="UTC", kw_only=True)
    rolling_period: Cadence | None = attrs.field(default=None, converter=_to_rolling, kw_only=True)
    targets: tuple[TargetSpec, ...] = attrs.field(default=(), converter=_to_targets, kw_only=True)
    tiers: tuple[TierSpec, ...] = attrs.field(default=(), converter=_to_tiers, kw_only=True)
    verification: VerificationSpec = attrs.field(
        factory=VerificationSpec,
        validator=attrs.validators.instance_of(VerificationSpec),
        kw_only=True,
    )
    objectives: tuple[Objective, ...] = attrs.field(
        default=(), converter=_to_objectives, kw_only=True
    )
    notifications: tuple[NotificationSpec, ...] = attrs.field(
        default=(), converter=_to_notifications, kw_only=True
    )

    @timezone.validator
    def _check_timezone(self, _attribute: attrs.Attribute[str], value: Any) -> None:
        _timezone(value, "timezone")

    def __attrs_post_init__(self) -> None:
        self._check_names()
        self._check_references()

    def _check_names(self) -> None:
        named: tuple[tuple[str, tuple[str, ...]], ...] = (
            ("targets", tuple(target.name for target in self.targets)),
            ("tiers", tuple(tier.name for tier in self.tiers)),
        )
        for field, names in named:
            for i, name in enumerate(names):
                if name in names[:i]:
                    raise PolicyError.for_field(
                        f"{field}[{i}].name", f"a name not used by another of the {field}", name
                    )
        # `<selector target>-<resource>` names the targets a selector finds: keep them unique.
        for i, target in enumerate(self.targets):
            for j, other in enumerate(self.targets):
                if other.selector is not None and target.name.startswith(f"{other.name}-"):
                    raise PolicyError.for_field(
                        f"targets[{i}].name",
                        f"a name that does not start with '{other.name}-' (reserved for the "
                        f"targets the selector of targets[{j}] finds)",
                        target.name,
                    )
        applications: set[str] = set()
        for i, objective in enumerate(self.objectives):
            if objective.application in applications:
                raise PolicyError.for_field(
                    f"objectives[{i}].application",
                    "an application with no other objective",
                    objective.application,
                )
            applications.add(objective.application)

    def _check_references(self) -> None:
        tier_names = tuple(tier.name for tier in self.tiers)
        for i, target in enumerate(self.targets):
            for j, tier in enumerate(target.tiers or ()):
                if tier not in tier_names:
                    raise PolicyError.for_field(
                        f"targets[{i}].tiers[{j}]",
                        _one_of("a tier of the policy", tier_names),
                        tier,
                        hint=_did_you_mean(tier, tier_names),
                    )
        for j, tier in enumerate(self.verification.integrity_covers_tiers):
            if tier not in tier_names:
                raise PolicyError.for_field(
                    f"verification.integrity_covers_tiers[{j}]",
                    _one_of("a tier of the policy", tier_names),
                    tier,
                    hint=_did_you_mean(tier, tier_names),
                )
        applications = self.applications
        for i, objective in enumerate(self.objectives):
            if objective.application not in applications:
                raise PolicyError.for_field(
                    f"objectives[{i}].application",
                    _one_of("an application of the targets", applications),
                    objective.application,
                    hint=_did_you_mean(objective.application, applications),
                )

    # ---- loading ---------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any) -> Policy:
        """Build a policy from plain data (what YAML, TOML or JSON parse into).

        Raises:
            PolicyError: The data is not a valid policy; the message names the field.
        """
        raw = _mapping(data, "", _POLICY_KEYS, ("name", "schedule", "retention"))
        name = _name(raw["name"], "name")
        description = _text(raw.get("description", ""), "description", allow_empty=True)
        tz = _timezone(raw.get("timezone", "UTC"), "timezone")
        schedule = _schedule(raw["schedule"], "schedule", tz=tz)
        rolling = (
            _to_rolling(raw["rolling_period"]) if raw.get("rolling_period") is not None else None
        )
        retention = _retention(raw["retention"], "retention")
        tiers = tuple(
            TierSpec.from_dict(item, path=f"tiers[{i}]", tz=tz)
            for i, item in enumerate(_list(raw.get("tiers", []), "tiers", "tiers"))
        )
        targets = tuple(
            TargetSpec.from_dict(item, path=f"targets[{i}]", tz=tz)
            for i, item in enumerate(_list(raw.get("targets", []), "targets", "targets"))
        )
        verification = VerificationSpec.from_dict(raw.get("verification", {}), path="verification")
        objectives = tuple(
            Objective.from_dict(item, path=f"objectives[{i}]")
            for i, item in enumerate(_list(raw.get("objectives", []), "objectives", "objectives"))
        )
        notifications = tuple(
            NotificationSpec.from_dict(item, path=f"notifications[{i}]")
            for i, item in enumerate(
                _list(raw.get("notifications", []), "notifications", "notifications")
            )
        )
        return cls(
            name,
            description=description,
            timezone=tz,
            schedule=schedule,
            rolling_period=rolling,
            retention=retention,
            tiers=tiers,
            targets=targets,
            verification=verification,
            objectives=objectives,
            notifications=notifications,
        )

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<string>") -> Policy:
        """Build a policy from YAML text; *source* names it in errors.

        Scalars are read the YAML 1.2 way: ``on``, ``yes`` and ``no`` are strings, ``04:00``
        is a string (not the number 240), dates are strings. A key given twice is an error.
        The text is bounded: at most `MAX_POLICY_BYTES`, 64 levels of nesting, 100,000 nodes
        (every use of an alias counted in full) and integers of at most 64 digits.

        Raises:
            PolicyError: The text is not valid YAML or not a valid policy; the message
                names the source, the line and the field.
        """
        data, node = _load_yaml(text, source)
        try:
            return cls.from_dict(data)
        except PolicyError as exc:
            line = _line_of(node, exc.path) if exc.path else None
            raise _with_location(exc, f"{source}:{line}" if line else source) from None

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<string>") -> Policy:
        """Build a policy from TOML text; *source* names it in errors.

        Raises:
            PolicyError: The text is not valid TOML or not a valid policy.
        """
        _check_text(text, source)
        _check_toml_keys(text, source)
        try:
            data = tomllib.loads(text)
        except (ValueError, RecursionError) as exc:  # TOMLDecodeError is a ValueError
            raise PolicyError(
                f"{source}: expected valid TOML ({short_repr(str(exc))}).",
                expected="valid TOML",
                got=text,
            ) from exc
        _check_shape(data, source)
        try:
            return cls.from_dict(data)
        except PolicyError as exc:
            raise _with_location(exc, source) from None

    @classmethod
    def from_file(cls, path: str | Path) -> Policy:
        """Load a policy from a ``.yaml``/``.yml`` or ``.toml`` file.

        The file must be a regular file (not a FIFO, a device or a directory, checked before
        anything is read, without blocking) of at most `MAX_POLICY_BYTES`; it is parsed once.

        Raises:
            PolicyError: The file is missing, unreadable, not a regular file, too large, of an
                unknown type, not valid YAML/TOML or not a valid policy; the message names the
                file, the line where known, and the field.
        """
        file = Path(path)
        suffix = file.suffix.lower()
        if suffix not in (".yaml", ".yml", ".toml"):
            raise PolicyError.for_field(
                "path", "a policy file ending in .yaml, .yml or .toml", str(file)
            )
        text = _read_policy_text(file)
        if suffix == ".toml":
            return cls.from_toml(text, source=str(file))
        return cls.from_yaml(text, source=str(file))

    # ---- dumping ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data (YAML/JSON-ready); ``Policy.from_dict(p.to_dict()) == p``."""
        data: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "timezone": self.timezone,
            "schedule": self.schedule.to_spec(),
        }
        if self.rolling_period is not None:
            data["rolling_period"] = self.rolling_period.value
        data["retention"] = self.retention.to_spec()
        data["tiers"] = [tier.to_dict() for tier in self.tiers]
        data["targets"] = [target.to_dict() for target in self.targets]
        data["verification"] = self.verification.to_dict()
        data["objectives"] = [objective.to_dict() for objective in self.objectives]
        data["notifications"] = [notification.to_dict() for notification in self.notifications]
        return data

    def to_yaml(self) -> str:
        """The policy as YAML text that `from_yaml` reads back into an equal policy."""
        return yaml.dump(
            self.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
        )

    # ---- lookups ---------------------------------------------------------------------------

    @property
    def applications(self) -> tuple[str, ...]:
        """The applications of the targets, in order of first appearance."""
        return tuple(dict.fromkeys(target.application for target in self.targets))

    def target(self, name: str) -> TargetSpec:
        """The target called *name*.

        A name ``<selector target>-<resource>`` (what a selector target finds at run time; the
        policy reserves that prefix) gives the selector target's spec under that name, so found
        targets can be verified, restored and audited by name.

        Raises:
            PolicyLookupError: No such target (the message suggests the closest name).
        """
        for target in self.targets:
            if target.name == name:
                return target
        for target in self.targets:
            if target.selector is not None and name.startswith(f"{target.name}-"):
                return attrs.evolve(target, name=name)
        raise _lookup_error("target", name, tuple(t.name for t in self.targets))

    def tier(self, name: str) -> TierSpec:
        """The tier called *name*.

        Raises:
            PolicyLookupError: No such tier.
        """
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise _lookup_error("tier", name, tuple(t.name for t in self.tiers))

    def targets_for(self, application: str) -> tuple[TargetSpec, ...]:
        """The targets of *application*.

        Raises:
            PolicyLookupError: No target belongs to *application*.
        """
        found = tuple(target for target in self.targets if target.application == application)
        if not found:
            raise _lookup_error("application", application, self.applications)
        return found

    def tiers_for(self, target: str | TargetSpec) -> tuple[TierSpec, ...]:
        """The tiers *target* is copied to (its own list, or every tier)."""
        spec = self._target(target)
        if spec.tiers is None:
            return self.tiers
        return tuple(self.tier(name) for name in spec.tiers)

    def schedule_for(self, target: str | TargetSpec) -> Schedule:
        """The schedule of *target*: its own, or the policy's."""
        spec = self._target(target)
        return spec.schedule or self.schedule

    def retention_for(
        self, target: str | TargetSpec, tier: str | TierSpec | None = None
    ) -> RetentionRule:
        """The retention that applies to the copies of *target* in *tier*.

        The most specific rule wins: the target's own ``retention``, then the tier's, then
        the policy's.

        Raises:
            PolicyLookupError: The target or tier is not in the policy.
        """
        spec = self._target(target)
        if spec.retention is not None:
            return spec.retention
        if tier is not None:
            tier_spec = self.tier(tier) if isinstance(tier, str) else tier
            if tier_spec.retention is not None:
                return tier_spec.retention
        return self.retention

    def objective_for(self, application: str) -> Objective:
        """The objective of *application*: explicit, or derived from its targets' schedules.

        The derived RPO is the longest gap between two scheduled runs of any of the
        application's targets (24 hours for daily backups); the derived RTO is not set.

        Raises:
            PolicyLookupError: No target belongs to *application*.
        """
        for objective in self.objectives:
            if objective.application == application:
                return objective
        targets = self.targets_for(application)
        gap = max(_schedule_interval(self.schedule_for(target)) for target in targets)
        return Objective(application, _timedelta_to_duration(gap))

    def _target(self, target: str | TargetSpec) -> TargetSpec:
        return self.target(target) if isinstance(target, str) else target

    # ---- reprs -----------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"<backuppolicy.Policy(name={self.name!r}, targets={len(self.targets)}, "
            f"tiers={len(self.tiers)})>"
        )

    def summary_rows(self) -> list[tuple[str, str]]:
        """The facts shown by `summary` and `_repr_html_`, as (label, value) rows."""
        rows: list[tuple[str, str]] = [
            ("policy", self.name),
            ("schedule", self.schedule.describe()),
            ("retention", self.retention.describe()),
        ]
        if self.rolling_period is not None:
            rows.append(
                ("rolling full backups", f"one per target every {self.rolling_period.value}")
            )
        rows.extend(
            (
                f"target {t.name}",
                f"{t.kind} {t.resource} (application {t.application})"
                + ("" if t.enabled else ", disabled"),
            )
            for t in self.targets
        )
        rows.extend((f"tier {tier.name}", tier.describe()) for tier in self.tiers)
        v = self.verification
        rows.append(
            (
                "verification",
                (
                    f"restore test {v.restore_test_every.adverb}, per application "
                    f"{v.restore_test_per_application_every.adverb}, integrity check "
                    f"{v.integrity_check_every.adverb}"
                ),
            )
        )
        rows.extend(
            (f"objective {app}", self.objective_for(app).describe()) for app in self.applications
        )
        rows.extend(
            (f"notification {i + 1}", spec.describe()) for i, spec in enumerate(self.notifications)
        )
        return rows

    def summary(self) -> str:
        """A plain-text summary, one fact per line (the text twin of `_repr_html_`)."""
        rows = self.summary_rows()
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)

    def _repr_html_(self) -> str:
        """An HTML table of `summary_rows`, every value escaped, with a ``<pre>`` text fallback."""
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
            f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
            for label, value in self.summary_rows()
        )
        return (
            "<div class='backuppolicy-policy'>"
            f"<pre class='backuppolicy-text-fallback' style='display:none'>"
            f"{html.escape(repr(self))}\n{html.escape(self.summary())}</pre>"
            f"<table>{body}</table></div>"
        )

    # ---- the human document ----------------------------------------------------------------

    def to_markdown(self, *, policy_file: str = "policy.yaml") -> str:
        """Render the human policy document, in the sections of the written policy.

        Every number comes from this object, so the document cannot drift from the code.
        *policy_file* is the file name the document's commands refer to.
        """
        return _render_markdown(self, policy_file)


def _one_of(what: str, names: Sequence[str]) -> str:
    return f"{what} ({', '.join(names)})" if names else f"{what} (there are none)"


def _lookup_error(what: str, name: str, known: tuple[str, ...]) -> PolicyLookupError:
    hint = _did_you_mean(name, known)
    listing = ", ".join(known) if known else "none"
    message = f"no {what} {short_repr(name)} in the policy (known: {listing})."
    if hint:
        message = f"{message} {hint}"
    return PolicyLookupError(message, name=name, known=known)


# --------------------------------------------------------------------------------------------
# The human policy document.

_KIND_WORDS: Final = {
    "rds-instance": "RDS database instance",
    "aurora-cluster": "Aurora database cluster",
    "ec2-instance": "EC2 instance (all its EBS volumes)",
    "ebs-volume": "EBS volume",
    "s3-bucket": "S3 assets (versioned bucket)",
    "directory": "directory (configuration files, application code)",
    "aws-backup": "resource protected by AWS Backup",
}
_RESTORE_ORDER: Final = {
    "rds-instance": 0,
    "aurora-cluster": 0,
    "aws-backup": 1,
    "ebs-volume": 1,
    "ec2-instance": 2,
    "s3-bucket": 3,
    "directory": 4,
}
_RESTORE_WORDS: Final = {
    "rds-instance": "restore the DB instance from its snapshot (a new instance), then point the "
    "application at it or rename it into place",
    "aurora-cluster": "restore the cluster from its cluster snapshot and add an instance to it",
    "ec2-instance": "create volumes from the instance's snapshots (or launch from its image) and "
    "attach them in place of the damaged ones",
    "ebs-volume": "create a volume from the snapshot in the same availability zone and attach it",
    "s3-bucket": "restore the prefix to a point in time from the object versions",
    "directory": "extract the archive, checking every file against its SHA-256 manifest",
    "aws-backup": "start an AWS Backup restore job from the recovery point",
}


_WEEKDAY_NAMES: Final = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)
_KIND_SHORT: Final = {
    "rds-instance": "RDS instance",
    "aurora-cluster": "Aurora cluster",
    "ec2-instance": "EC2 instance",
    "ebs-volume": "EBS volume",
    "s3-bucket": "S3 bucket",
    "directory": "directory",
    "aws-backup": "AWS Backup resource",
}


def _value_words(value: object) -> str:
    """Settings values in words: lists joined by commas, mappings as ``key=value``."""
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={item}" for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return str(value)


def _settings_words(settings: Mapping[str, Any]) -> str:
    return "; ".join(f"{key} {_value_words(value)}" for key, value in settings.items())


def _md(text: object) -> str:
    """Escape a value for a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _kind_words(kind: str) -> str:
    return _KIND_WORDS.get(kind, f"{kind} (plugin)")


def _kinds_of(target: TargetSpec) -> tuple[str, ...]:
    """The kinds of resource a target protects: its own, or its selector's (all it can find)."""
    if target.selector is None:
        return (target.kind,)
    return target.selector.resource_types or tuple(RESOURCE_TYPES)


def _short_kind(target: TargetSpec) -> str:
    if target.selector is None:
        return _KIND_SHORT.get(target.kind, target.kind) + " "
    return ""


def _what(target: TargetSpec) -> str:
    if target.selector is None:
        return _kind_words(target.kind)
    kinds = " or ".join(_KIND_SHORT.get(kind, kind) for kind in _kinds_of(target))
    return f"every {kinds} found at run time"


def _where(target: TargetSpec) -> str:
    """The resource column: the resource (or what the selector finds), and its account."""
    if target.account is None:
        return target.resource
    return f"{target.resource}, in {target.account.describe()}"


def _md_discovery(policy: Policy, policy_file: str) -> list[str]:
    """Selector targets and targets in other accounts, in words (nothing when there are none)."""
    found = [t for t in policy.targets if t.selector is not None]
    remote = [t for t in policy.targets if t.account is not None]
    lines: list[str] = []
    if found:
        lines.append(
            "- 1.1.1 Some targets are found at run time, so new resources are protected from the "
            "next run on and removed ones stop being expected. Each resource found becomes a "
            "target named `<target>-<resource>` with the target's schedule, tiers and retention "
            f"(`backuppolicy targets --policy {policy_file}` lists what they find now):"
        )
        lines += [
            f"  - {t.name}: {_md_line(_where(t))}" + ("" if t.enabled else " (disabled)")
            for t in found
        ]
    if remote:
        lines.append(
            "- 1.1.2 Targets in other AWS accounts are reached by assuming a role there "
            "(STS AssumeRole, once per account and region per run); a refused account fails "
            "only its own targets:"
        )
        lines += [f"  - {t.name}: {_md_line(t.account.describe())}" for t in remote if t.account]
    return [*lines, ""] if lines else []


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines.extend("| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows)
    return [*lines, ""]


def _md_header(policy: Policy, policy_file: str) -> list[str]:
    lines = [f"# Infrastructure Backups and Restoration Policy: {policy.name}", ""]
    if policy.description:
        lines += [policy.description.strip(), ""]
    lines += [
        (
            f"> This document is generated from `{policy_file}` by backuppolicy "
            f"(`backuppolicy doc --policy {policy_file}`). Change the policy file, not this "
            "document: every number below is the one the code runs with."
        ),
        "",
    ]
    return lines


def _md_schedule(policy: Policy, policy_file: str) -> list[str]:
    enabled = [t for t in policy.targets if t.enabled]
    kinds = (
        ", ".join(dict.fromkeys(_kind_words(kind) for t in enabled for kind in _kinds_of(t)))
        or "none"
    )
    lines = [
        "## 1. Backup Schedule",
        "",
        (
            f"- 1.1 Backups of {len(enabled)} critical infrastructure "
            f"component{'' if len(enabled) == 1 else 's'} run "
            f"{policy.schedule.describe()}: {kinds}. The targets:"
        ),
        "",
    ]
    lines += _table(
        ("Target", "What", "Application", "Resource", "Schedule", "Tiers", "Retention"),
        (
            (
                t.name + ("" if t.enabled else " (disabled)"),
                _what(t),
                t.application,
                _where(t),
                policy.schedule_for(t).describe(),
                ", ".join(tier.name for tier in policy.tiers_for(t)) or "in place",
                policy.retention_for(t).describe() if t.retention else "policy default (section 2)",
            )
            for t in policy.targets
        ),
    )
    lines += _md_discovery(policy, policy_file)
    window = policy.schedule.window
    grace = policy.verification.freshness_grace
    lines += [
        (
            "- 1.2 Backups are automated (section 5) and run off-peak, "
            f"{policy.schedule.describe()}. A target with no successful backup "
            f"{window.describe()} (the start window) plus {grace.describe()} (the grace) after a "
            "scheduled run is overdue, and notified (1.7)."
        ),
        (
            "- 1.3 Manual backups are taken as needed, with the same tags and retention as "
            "scheduled ones (section 6)."
        ),
    ]
    if policy.tiers:
        lines.append(f"- 1.4 Backups are kept in {len(policy.tiers)} tiers, for redundancy:")
        lines += [f"  - {_md_line(tier.describe())}" for tier in policy.tiers]
    else:
        lines.append(
            "- 1.4 Backups are kept in one tier: where each backend creates them "
            "(no copy tiers are configured)."
        )
    lines += _md_rolling(policy)
    lines.append(
        f"- 1.6 The schedule is reviewed as a change to `{policy_file}`; this document is "
        "regenerated from it, so it always states the schedule that runs."
    )
    if policy.notifications:
        lines.append("- 1.7 Key personnel are notified of failed backups and other issues:")
        lines += [f"  - {_md_line(spec.describe())}" for spec in policy.notifications]
    else:
        lines.append(
            "- 1.7 No notifications are configured: failures show only in the run report "
            "and the exit status of `backuppolicy backup`."
        )
    lines += ["", "Recovery objectives per application:", ""]
    explicit = {o.application for o in policy.objectives}
    lines += _table(
        ("Application", "Targets", "RPO", "RTO"),
        (
            (
                app,
                ", ".join(t.name for t in policy.targets_for(app)),
                policy.objective_for(app).rpo.describe()
                + ("" if app in explicit else " (from the schedule)"),
                rto.describe() if (rto := policy.objective_for(app).rto) else "not set",
            )
            for app in policy.applications
        ),
    )
    return lines


def _md_rolling(policy: Policy) -> list[str]:
    period = policy.rolling_period
    names = [t.name for t in policy.targets if t.enabled]
    if period is None or not names:
        return ["- 1.5 Every run takes a full backup of every enabled target."]
    slots = rolling_slots(names, period=period)
    lines = [
        (
            "- 1.5 Backups are performed on a rolling basis: a full backup of every component "
            f"is completed once every {period.value}, each target on its own day of the "
            f"{period.value} (the other runs are incremental):"
        ),
    ]
    ordered = sorted(names, key=lambda n: (slots[n], names.index(n)))
    lines += [f"  - {name}: {_slot_words(period, slots[name])}" for name in ordered]
    return lines


def _slot_words(period: Cadence, slot: int) -> str:
    if period is Cadence.DAY:
        return "every day"
    if period is Cadence.WEEK:
        return _WEEKDAY_NAMES[slot]
    return f"day {slot + 1} of the {period.value}"


def _md_line(text: str) -> str:
    return text.replace("\n", " ")


def _md_retention(policy: Policy, policy_file: str) -> list[str]:
    lines = [
        "## 2. Backup Retention",
        "",
        f"- 2.1 Backups are retained by this rule: {_md_line(policy.retention.describe())}.",
    ]
    lines += [
        f"  - Copies in tier {tier.name} are retained by: {_md_line(tier.retention.describe())}."
        for tier in policy.tiers
        if tier.retention is not None
    ]
    lines += [
        f"  - Backups of {t.name} are retained by: {_md_line(t.retention.describe())}."
        for t in policy.targets
        if t.retention is not None
    ]
    lines += [
        (
            "- 2.2 Backups outside the retention are deleted automatically by "
            f"`backuppolicy prune --policy {policy_file} --apply` (without `--apply` it only shows "
            "the plan, with the reason for every decision), unless they are required for "
            "regulatory or legal purposes (2.3). Whatever the rules say, the newest completed "
            "backup of each target is kept, and only backups this policy created (tagged "
            f"`{TAG_POLICY}={policy.name}` and `{TAG_TARGET}`) are ever deleted."
        ),
        (
            "- 2.3 A backup required for regulatory or legal purposes is put under legal hold: "
            f"the tag `{TAG_HOLD}` with the value `<reference>|<since>|<reason>` "
            "(`backuppolicy.LegalHold(...).to_tag()`). A held backup is never deleted, stays "
            "where it is stored (encrypted, access-controlled, see 7.5 and 8.3) and is listed "
            "with its hold in every retention plan and audit report."
        ),
        f"- 2.4 The retention is reviewed as a change to `{policy_file}`.",
        "",
    ]
    return lines


def _md_testing(policy: Policy, policy_file: str) -> list[str]:
    v = policy.verification
    lines = [
        "## 3. Backup Testing Process",
        "",
        (
            "- 3.1 Restore tests prove that backups can be restored: a recovery point is "
            "restored into an isolated environment, checked, and torn down."
        ),
        f"- 3.2 At least one restore test runs every {v.restore_test_every.value}.",
        (
            "- 3.3 Every application is restore-tested at least once per "
            f"{v.restore_test_per_application_every.value}:"
        ),
    ]
    lines += [
        f"  - {app}: {', '.join(t.name for t in policy.targets_for(app))}"
        for app in policy.applications
    ]
    isolation = _settings_words(v.isolation)
    lines += [
        "- 3.4 Restore tests run with "
        f"`backuppolicy restore-test --policy {policy_file}` (by a Support team engineer or "
        "on a schedule). Restored resources go into an isolated environment"
        + (f" ({_md_line(isolation)})" if isolation else "")
        + ": no public access, a dedicated network, tags that let a sweeper remove "
        "leftovers; they are torn down after the test, even when it fails.",
        (
            "- 3.5 Every restore test is recorded in the backup testing log: date and time, "
            "target, recovery point, result, and any issues or errors."
        ),
        (
            f"- 3.6 `backuppolicy report --policy {policy_file}` lists the testing log and flags "
            "applications whose restore test is overdue."
        ),
        f"- 3.7 The testing policy is reviewed as a change to `{policy_file}`.",
        "",
    ]
    return lines


def _md_integrity(policy: Policy, policy_file: str) -> list[str]:
    v = policy.verification
    tiers = v.integrity_covers_tiers or tuple(tier.name for tier in policy.tiers)
    where = f"in tiers {', '.join(tiers)}" if tiers else "where they are stored"
    return [
        "## 4. Backup Integrity Verification",
        "",
        (
            f"- 4.1 Integrity checks run every {v.integrity_check_every.value} "
            f"(`backuppolicy verify --policy {policy_file}`), so backups are free from corruption "
            "and can be relied upon."
        ),
        f"- 4.2 They cover every copy of every target {where}.",
        "- 4.3 What is checked: the backup completed; archives match their SHA-256 manifest; "
        "snapshots and object versions are complete and readable"
        + (", and encrypted at rest" if v.require_encryption else "")
        + (", and not publicly accessible" if v.require_private else "")
        + ". Backups are also checked for freshness: the newest backup of each target must be "
        f"no older than its schedule allows, plus a grace of {v.freshness_grace.describe()}.",
        "",
    ]


def _md_automating(policy: Policy, policy_file: str) -> list[str]:
    schedule = policy.schedule
    return [
        "## 5. Automating Backups",
        "",
        (
            f"- 5.1 The scheduler runs `backuppolicy backup --policy {policy_file}` "
            f"{schedule.describe()}; as a crontab entry:"
        ),
        "",
        "  ```",
        f"  CRON_TZ={schedule.tz}",
        (
            f"  {schedule.cron} backuppolicy backup --policy {policy_file} "
            f"&& backuppolicy prune --policy {policy_file} --apply"
        ),
        "  ```",
        "",
        "- 5.2 From Python (a Lambda function, an Airflow task):",
        "",
        "  ```python",
        "  from datetime import UTC, datetime",
        "  import backuppolicy as bp",
        "",
        f'  policy = bp.Policy.from_file("{policy_file}")',
        "  report = bp.backup(policy, now=datetime.now(UTC))",
        "  bp.apply(bp.plan_retention(policy, now=datetime.now(UTC)))",
        "  ```",
        "",
        (
            "- 5.3 Runs are idempotent: a retried or re-run job reuses the backup it already "
            "made instead of making a duplicate."
        ),
        (
            f"- 5.4 `backuppolicy export aws-backup --policy {policy_file}` writes the equivalent "
            "AWS Backup plan, for accounts that prefer AWS Backup to run the schedule."
        ),
        "",
    ]


def _md_manual(policy: Policy, policy_file: str) -> list[str]:
    example = policy.targets[0].name if policy.targets else "TARGET"
    return [
        "## 6. Manually Performing Backups",
        "",
        "- 6.1 Take a backup of one target now (before a risky change, or after a failed run):",
        "",
        "  ```",
        f'  backuppolicy backup --policy {policy_file} --target {example} --reason "before upgrade"',
        "  ```",
        "",
        (
            f"- 6.2 Without `--target`, every enabled target of the policy is backed up "
            f"({len([t for t in policy.targets if t.enabled])} targets)."
        ),
        (
            "- 6.3 Manual backups carry the same ownership tags as scheduled ones, and the reason "
            "in the tag `backuppolicy:reason`; the same retention applies to them."
        ),
        "",
    ]


def _md_s3(policy: Policy, policy_file: str) -> list[str]:
    v = policy.verification
    buckets = [t for t in policy.targets if t.kind == "s3-bucket"]
    lines = ["## 7. S3 Asset Versioning and Verification", ""]
    if not buckets:
        return [*lines, "This policy has no S3 targets.", ""]
    lines += _table(
        ("Target", "Bucket", "Prefix", "Versioning", "Encryption", "Public access"),
        (
            (
                t.name,
                t.settings.get("bucket", ""),
                t.settings.get("prefix", "") or "(whole bucket)",
                "required" if t.settings.get("versioning", True) else "not required",
                t.settings.get("encryption", "required" if v.require_encryption else "any"),
                "blocked"
                if t.settings.get("block_public_access", v.require_private)
                else "not checked",
            )
            for t in buckets
        ),
    )
    lines += [
        (
            "- 7.1 S3 assets are versioned, so every version of the data is retained and can be "
            "restored; `backuppolicy verify` fails if versioning is suspended on a bucket that "
            "requires it."
        ),
        (
            "- 7.2 The versions are checked for integrity every "
            f"{v.integrity_check_every.value} (section 4): every version listed is "
            "complete and readable."
        ),
        f"- 7.3 These settings are reviewed as a change to `{policy_file}`.",
        (
            f"- 7.4 Restore a prefix to a point in time with `backuppolicy restore --policy "
            f"{policy_file} --target {buckets[0].name} --at <time>` or "
            "`backuppolicy.aws.S3Bucket(bucket, prefix=...).restore_to_time(when, dest_bucket=..., "
            "dest_prefix=...)`; the restored objects are then verified."
        ),
        "- 7.5 "
        + (
            "Encryption at rest is required"
            if v.require_encryption
            else "Encryption is not checked"
        )
        + " and "
        + ("public access must be blocked" if v.require_private else "public access is not checked")
        + "; `backuppolicy verify` checks both.",
        "",
    ]
    return lines


def _md_ec2(policy: Policy, policy_file: str) -> list[str]:
    v = policy.verification
    machines = [t for t in policy.targets if t.kind in ("ec2-instance", "ebs-volume")]
    lines = ["## 8. EC2 Snapshots", ""]
    if not machines:
        return [*lines, "This policy has no EC2 instances or EBS volumes.", ""]
    lines += [
        (
            "- 8.1 EC2 snapshots back up these virtual machines and volumes, so they can be "
            "restored quickly after a failure:"
        ),
    ]
    lines += [f"  - {t.name}: {_kind_words(t.kind)} {t.resource}" for t in machines]
    lines += [
        (
            "- 8.2 The snapshots are checked for integrity every "
            f"{v.integrity_check_every.value} (`backuppolicy verify --policy "
            f"{policy_file}`): every snapshot of a backup completed, none is missing."
        ),
        "- 8.3 "
        + ("Snapshots must be encrypted" if v.require_encryption else "Encryption is not checked")
        + " and "
        + ("must not be shared publicly" if v.require_private else "sharing is not checked")
        + "; copies to other tiers are encrypted with the tier's KMS key.",
        "",
    ]
    return lines


def _md_restores(policy: Policy, policy_file: str) -> list[str]:
    example = policy.targets[0].name if policy.targets else "TARGET"
    lines = [
        "## 9. Performing Restores",
        "",
        (
            "- 9.1 Pick the recovery point: `backuppolicy report --policy "
            f"{policy_file}` lists the points of every target, newest first, with their tier."
        ),
        (
            f"- 9.2 Restore it: `backuppolicy restore --policy {policy_file} --target {example} "
            "--point <id>` (or `--at <time>` for the newest point before a time). Per kind:"
        ),
    ]
    kinds = dict.fromkeys(kind for t in policy.targets for kind in _kinds_of(t))
    lines += [
        f"  - {_kind_words(kind)}: {_RESTORE_WORDS.get(kind, 'see the plugin documentation')}"
        for kind in kinds
    ]
    lines += [
        (
            "- 9.3 A restore never overwrites the damaged resource: it creates a new one next to "
            "it, which is switched in once verified."
        ),
        "- 9.4 The restore must meet the application's RTO (section 1, recovery objectives).",
        "",
    ]
    return lines


def _md_recovery(policy: Policy, policy_file: str) -> list[str]:
    lines = [
        "## 10. System Restart and Recovery Procedures",
        "",
        (
            "To recover an application, restore its targets in this order (data first, then "
            "machines, then assets, then configuration and code), restart it, and verify it:"
        ),
        "",
    ]
    for number, app in enumerate(policy.applications, start=1):
        objective = policy.objective_for(app)
        rto = f", RTO {objective.rto.describe()}" if objective.rto else ""
        lines.append(f"- 10.{number} {app} (RPO {objective.rpo.describe()}{rto}):")
        ordered = sorted(
            policy.targets_for(app),
            key=lambda t: _RESTORE_ORDER.get(_kinds_of(t)[0], len(_RESTORE_ORDER)),
        )
        step = 0
        for step, target in enumerate(ordered, start=1):
            name = target.name if target.selector is None else f"{target.name}-<resource>"
            lines.append(
                f"  {step}. Restore {name} "
                f"({_short_kind(target)}{target.resource}): "
                f"`backuppolicy restore --policy {policy_file} --target {name}`."
            )
        lines += [
            f"  {step + 1}. Restart {app} against the restored resources.",
            (
                f"  {step + 2}. Verify it: `backuppolicy restore-test --policy {policy_file} "
                f"--application {app}` checks, and the result goes into the testing log."
            ),
        ]
    if not policy.applications:
        lines.append("This policy has no targets.")
    return [*lines, ""]


def _render_markdown(policy: Policy, policy_file: str) -> str:
    lines = _md_header(policy, policy_file)
    for section in (
        _md_schedule,
        _md_retention,
        _md_testing,
        _md_integrity,
        _md_automating,
        _md_manual,
        _md_s3,
        _md_ec2,
        _md_restores,
        _md_recovery,
    ):
        lines += section(policy, policy_file)
    return "\n".join(lines).rstrip("\n") + "\n"
