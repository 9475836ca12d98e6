"""Field validation for policy documents: the readers and checks of every value a policy holds.

One idea: what each field of a policy accepts. The readers take a value and the path of its
field (relative to the object being built; `at_path` re-roots them) and return the checked
value or raise a `PolicyError` that names the path, what was expected and what was given. Also
here: the vocabulary of kinds and events, the settings checks of the built-in target kinds,
notifications, tier locations and restore-test isolation, and the attrs validators the specs
share. Its public names (the kinds, `EVENTS`, `TARGET_SETTINGS`, `PolicyLookupError`) are
re-exported by `backuppolicy.core.policy`; the other names serve `backuppolicy.core.specs` and
`backuppolicy.core.policy` only.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.metadata
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.retention import RetentionRule, rule_from_spec
from backuppolicy.core.schedule import Cadence, Schedule
from backuppolicy.core.secrets import Secret, redact_url, secret_field
from backuppolicy.core.selector import RESOURCE_TYPES, Selector
from backuppolicy.core.targets import NAME_PREFIX_RE

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
# Small validation helpers (paths are relative to the object being built; `at_path` re-roots them).


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"Did you mean {match[0]!r}?" if match else ""


def join_path(path: str, key: str | int) -> str:
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
def at_path(prefix: str) -> Iterator[None]:
    """Re-root the path of any `PolicyError` raised inside the block under *prefix*."""
    try:
        yield
    except PolicyLookupError:
        raise
    except PolicyError as exc:
        raise _reroot(exc, prefix) from None


def read_mapping(
    value: object, path: str, keys: Sequence[str], required: Sequence[str] = ()
) -> dict[str, object]:
    """Check that *value* is a mapping with text keys among *keys*, holding every *required* key."""
    if not isinstance(value, Mapping):
        raise PolicyError.for_field(path, f"a mapping with keys {', '.join(keys)}", value)
    for key in value:
        if not isinstance(key, str):
            raise PolicyError.for_field(path, "a mapping with text keys", key)
        if key not in keys:
            raise PolicyError.for_field(
                join_path(path, key),
                f"a known key: {', '.join(keys)}",
                key,
                hint=did_you_mean(key, keys),
            )
    for key in required:
        if key not in value:
            raise PolicyError.for_field(join_path(path, key), "a value (the key is required)", None)
    return dict(value)


def read_list(value: object, path: str, what: str) -> list[object]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise PolicyError.for_field(path, f"a list of {what}", value)
    return list(value)


def read_text(value: object, path: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise PolicyError.for_field(
            path, "a string" if allow_empty else "a non-empty string", value
        )
    return value


def read_flag(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyError.for_field(path, "true or false", value)
    return value


def read_name(value: object, path: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise PolicyError.for_field(path, _NAME_EXPECTED, value)
    return value


def read_names(value: object, path: str) -> tuple[str, ...]:
    items = read_list(value, path, "names")
    names = tuple(read_name(item, join_path(path, i)) for i, item in enumerate(items))
    for i, name in enumerate(names):
        if name in names[:i]:
            raise PolicyError.for_field(join_path(path, i), "each name at most once", name)
    return names


def read_timezone(value: object, path: str) -> str:
    expected = "an IANA time zone name such as 'UTC', 'GMT' or 'Europe/London'"
    if not isinstance(value, str) or not value:
        raise PolicyError.for_field(path, expected, value)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise PolicyError.for_field(path, expected, value) from None
    return value


def read_duration(value: object, path: str, *, positive: bool = True) -> Duration:
    duration = Duration.coerce(value, field=path)
    if positive and duration.is_zero:
        raise PolicyError.for_field(path, "a duration longer than zero", str(duration))
    return duration


def read_cadence(value: object, path: str) -> Cadence:
    """Read a `Cadence` from its value (``"quarter"``) or its adverb (``"quarterly"``)."""
    if not isinstance(value, (Cadence, str)):
        raise PolicyError.for_field(
            path, "one of " + ", ".join(repr(c.value) for c in Cadence), value
        )
    return Cadence.coerce(value, path=path)


def read_retention(value: object, path: str) -> RetentionRule:
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


def read_schedule(value: object, path: str, *, tz: str = "UTC") -> Schedule:
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


def read_every(value: object, path: str, *, tz: str = "UTC") -> Cadence | Schedule:
    """A tier's ``every``: a cadence (``week``, ``weekly``), or a schedule (mapping or cron line)."""
    if isinstance(value, (Cadence, Schedule)):
        return value
    if isinstance(value, str) and not value.strip().startswith("@") and len(value.split()) < 5:  # noqa: PLR2004 - a cron line has five fields
        return read_cadence(value, path)
    if isinstance(value, (str, Mapping)):
        return read_schedule(value, path, tz=tz)
    raise PolicyError.for_field(
        path, "a cadence (day, week, month, quarter, year) or a schedule", value
    )


def every_to_spec(every: Cadence | Schedule) -> str | dict[str, object]:
    return every.value if isinstance(every, Cadence) else every.to_spec()


def every_describe(every: Cadence | Schedule) -> str:
    return every.adverb if isinstance(every, Cadence) else every.describe()


# ---- settings checkers -----------------------------------------------------------------------

SettingCheck = Callable[[object, str], object]


def _s_text(value: object, path: str) -> str:
    return read_text(value, path)


def _s_name_prefix(value: object, path: str) -> str:
    if not isinstance(value, str) or not NAME_PREFIX_RE.fullmatch(value):
        raise PolicyError.for_field(
            path, "a letter, then up to 31 letters, digits or hyphens", value
        )
    return value


def _s_region(value: object, path: str) -> str:
    if not isinstance(value, str) or not _REGION_RE.fullmatch(value):
        raise PolicyError.for_field(path, "an AWS region such as 'eu-west-1'", value)
    return value


def _s_account(value: object, path: str) -> str:
    if not isinstance(value, str) or not _ACCOUNT_RE.fullmatch(value):
        raise PolicyError.for_field(path, "a 12-digit AWS account id as a string", value)
    return value


def _s_sns_arn(value: object, path: str) -> str:
    if not isinstance(value, str) or not _SNS_ARN_RE.fullmatch(value):
        raise PolicyError.for_field(
            path, "an SNS topic ARN like 'arn:aws:sns:eu-west-1:123456789012:backups'", value
        )
    return value


def _s_arn(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.startswith("arn:") or value.count(":") < 5:  # noqa: PLR2004
        raise PolicyError.for_field(
            path, "an ARN like 'arn:aws:rds:eu-west-1:123456789012:db:x'", value
        )
    return value


def _s_secret_url(value: object, path: str) -> Secret:
    """A webhook URL: ``{env: NAME}``, ``{file: PATH}``, or inline only without a token."""
    found = secret_field(value, path, kind="webhook")
    if isinstance(found, Secret):
        return found
    if not _URL_RE.fullmatch(found):
        raise PolicyError.for_field(path, "an http(s) URL", redact_url(found))
    return Secret(found)


def _s_secret_map(value: object, path: str) -> dict[str, Secret | str]:
    """HTTP headers: name -> ``{env: NAME}``, ``{file: PATH}``, or inline without a credential."""
    if not isinstance(value, Mapping):
        raise PolicyError.for_field(
            path, "a mapping of header names to values", type(value).__name__
        )
    result: dict[str, Secret | str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise PolicyError.for_field(path, "a mapping with non-empty text keys", key)
        found = secret_field(item, join_path(path, key), kind="header", header=key)
        result[key] = found if isinstance(found, Secret) else read_text(found, join_path(path, key))
    return result


SECRET_SETTINGS: Final = ("url", "headers")


def secrets_to_dict(value: object) -> object:
    """Plain data of a setting: a `Secret` becomes its reference (or its redacted form)."""
    if isinstance(value, Secret):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {key: secrets_to_dict(item) for key, item in value.items()}
    return value


def _s_abs_path(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "\x00" in value:
        raise PolicyError.for_field(path, "an absolute path such as '/srv/app'", value)
    return value


def _s_store(value: object, path: str) -> str:
    if isinstance(value, str) and value.startswith("/") and "\x00" not in value:
        return value
    if not isinstance(value, str) or not _S3_URI_RE.fullmatch(value):
        raise PolicyError.for_field(
            path, "an S3 URI such as 's3://bucket/prefix' or an absolute directory", value
        )
    return value


def _s_bool(value: object, path: str) -> bool:
    return read_flag(value, path)


def _s_text_list(value: object, path: str) -> list[str]:
    items = read_list(value, path, "strings")
    return [read_text(item, join_path(path, i)) for i, item in enumerate(items)]


def _s_text_map(value: object, path: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise PolicyError.for_field(path, "a mapping of strings to strings", value)
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise PolicyError.for_field(path, "a mapping with non-empty text keys", key)
        result[key] = read_text(item, join_path(path, key), allow_empty=True)
    return result


def _s_seconds(value: object, path: str) -> float | int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise PolicyError.for_field(path, "a number of seconds > 0", value)
    return value


def _s_log_level(value: object, path: str) -> str:
    if not isinstance(value, str) or value.upper() not in _LOG_LEVELS:
        raise PolicyError.for_field(path, "a log level: " + ", ".join(_LOG_LEVELS), value)
    return value.upper()


def _s_prefix(value: object, path: str) -> str:
    return read_text(value, path, allow_empty=True)


SSE_ALGORITHMS: Final = ("AES256", "aws:kms", "aws:kms:dsse")
"""Values of a target's ``encryption``: S3's ``SSEAlgorithm`` names (``aws:kms`` for EBS/RDS)."""
_KEY_REF_RE: Final = re.compile(r"^(?:file:/\S+|env:[A-Za-z_][A-Za-z0-9_]*|kms:\S+)$")


def _s_sse(value: object, path: str) -> str:
    if value not in SSE_ALGORITHMS:
        raise PolicyError.for_field(
            path,
            "one of " + ", ".join(SSE_ALGORITHMS),
            value,
            hint=did_you_mean(str(value), SSE_ALGORITHMS),
        )
    return str(value)


def _key_ref(value: object, path: str) -> str:
    if not isinstance(value, str) or not _KEY_REF_RE.match(value):
        # Never quoted: a key pasted where its reference belongs must not print.
        raise PolicyError(
            f"{path}: expected a key by reference: 'file:/absolute/path', 'env:VARIABLE' or "
            "'kms:<key id, ARN or alias/...>' (the value given is not shown).",
            path=path,
            expected="a key reference",
            got="***",
        )
    return value


def _s_archive_encryption(value: object, path: str) -> dict[str, object]:
    raw = read_mapping(value, path, ("key", "previous_keys"), ("key",))
    result: dict[str, object] = {"key": _key_ref(raw["key"], join_path(path, "key"))}
    if "previous_keys" in raw:
        where = join_path(path, "previous_keys")
        items = read_list(raw["previous_keys"], where, "key references")
        result["previous_keys"] = [_key_ref(v, join_path(where, i)) for i, v in enumerate(items)]
    return result


def _s_declared(value: object, path: str) -> str:
    if value != "declared-volume":
        raise PolicyError.for_field(
            path,
            "'declared-volume' (the store's directory is on an encrypted volume; not verified)",
            value,
        )
    return "declared-volume"


INVENTORY_KEYS: Final = ("bucket", "prefix", "min_versions", "role_arn", "report", "priority")
"""Keys of an s3-bucket target's ``inventory`` setting (restores at scale, see `read_inventory`)."""
_MAX_BATCH_PRIORITY: Final = 2_147_483_647


def read_inventory(value: object, path: str) -> dict[str, object]:
    """An s3-bucket target's ``inventory``: where its S3 Inventory reports land, and the batch job.

    ``bucket`` and ``prefix`` locate the reports (``<destination prefix>/<source bucket>/<config
    id>/``); ``role_arn`` is the role S3 Batch Operations assumes; ``min_versions`` (default
    1,000,000) is the size from which a point-in-time restore runs from the inventory as a batch
    job; ``report`` (an ``s3://`` URL) is where the job's manifest and completion report go
    (default: ``_backuppolicy/batch/`` in the inventory bucket); ``priority`` (default 10).
    """
    raw = read_mapping(value, path, INVENTORY_KEYS, ("bucket", "prefix", "role_arn"))
    result: dict[str, object] = {
        "bucket": read_text(raw["bucket"], join_path(path, "bucket")),
        "prefix": read_text(raw["prefix"], join_path(path, "prefix"), allow_empty=True),
        "role_arn": _s_arn(raw["role_arn"], join_path(path, "role_arn")),
    }
    prefix = str(result["prefix"])
    if prefix and not prefix.endswith("/"):
        result["prefix"] = prefix + "/"
    for key, default, low, high in (
        ("min_versions", 1_000_000, 0, None),
        ("priority", 10, 0, _MAX_BATCH_PRIORITY),
    ):
        item = raw.get(key, default)
        if (
            not isinstance(item, int)
            or isinstance(item, bool)
            or item < low
            or (high is not None and item > high)
        ):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise PolicyError.for_field(join_path(path, key), f"an integer {bound}", item)
        result[key] = item
    if "report" in raw:
        report = raw["report"]
        if not isinstance(report, str) or not _S3_URI_RE.fullmatch(report):
            raise PolicyError.for_field(
                join_path(path, "report"), "an S3 URI such as 's3://bucket/prefix'", report
            )
        result["report"] = report
    return result


_AWS_COMMON: Final[dict[str, SettingCheck]] = {
    "region": _s_region,
    "kms_key_id": _s_text,
    "encryption": _s_sse,
}

TARGET_SETTINGS: Final[dict[str, tuple[dict[str, SettingCheck], dict[str, SettingCheck]]]] = {
    "rds-instance": (
        {"db_instance_id": _s_text},
        {**_AWS_COMMON, "hold_deny_installed": _s_bool},
    ),
    "aurora-cluster": (
        {"db_cluster_id": _s_text},
        {**_AWS_COMMON, "hold_deny_installed": _s_bool},
    ),
    "ec2-instance": ({"instance_id": _s_text}, {**_AWS_COMMON, "no_reboot": _s_bool}),
    "ebs-volume": ({"volume_id": _s_text}, {**_AWS_COMMON}),
    "s3-bucket": (
        {"bucket": _s_text},
        {
            **_AWS_COMMON,
            "prefix": _s_prefix,
            "versioning": _s_bool,
            "block_public_access": _s_bool,
            "manage_noncurrent": _s_bool,
            "inventory": read_inventory,
        },
    ),
    "directory": (
        {"path": _s_abs_path},
        {
            "include": _s_text_list,
            "exclude": _s_text_list,
            "encryption": _s_archive_encryption,
        },
    ),
    "aws-backup": (
        {"resource_arn": _s_arn},
        {**_AWS_COMMON, "vault": _s_text, "iam_role_arn": _s_arn},
    ),
}
"""Settings of the built-in target kinds: ``kind -> (required checks, optional checks)``."""

NOTIFICATION_SETTINGS: Final[dict[str, tuple[dict[str, SettingCheck], dict[str, SettingCheck]]]] = {
    "log": ({}, {"logger": _s_text, "level": _s_log_level}),
    "sns": ({"topic_arn": _s_sns_arn}, {"region": _s_region}),
    "webhook": ({"url": _s_secret_url}, {"headers": _s_secret_map, "timeout": _s_seconds}),
}

# Keys of a tier's location: the fields of `backuppolicy.core.targets.Destination` (and a vault).
LOCATION_SETTINGS: Final[dict[str, SettingCheck]] = {
    "region": _s_region,
    "account": _s_account,
    "kms_key_id": _s_text,
    "vault": _s_text,
    "store": _s_store,
    "encryption": _s_declared,
}

# Keys of the restore-test isolation: the fields of `backuppolicy.core.targets.IsolationProfile`.
ISOLATION_SETTINGS: Final[dict[str, SettingCheck]] = {
    "subnet_group": _s_text,
    "security_group_ids": _s_text_list,
    "subnet_id": _s_text,
    "availability_zone": _s_text,
    "instance_class": _s_text,
    "name_prefix": _s_name_prefix,
    "tags": _s_text_map,
    "sweep_tag": _s_text,
}


def read_settings(
    value: object,
    path: str,
    required: Mapping[str, SettingCheck],
    optional: Mapping[str, SettingCheck],
) -> dict[str, object]:
    keys = [*required, *optional]
    raw = read_mapping(value, path, keys, tuple(required))
    return {
        key: {**required, **optional}[key](item, join_path(path, key)) for key, item in raw.items()
    }


def read_free_settings(value: object, path: str) -> dict[str, object]:
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


def read_kind(value: object, path: str) -> str:
    expected = "a target kind: " + ", ".join(BUILTIN_TARGET_KINDS) + " or 'package:kind'"
    if not isinstance(value, str):
        raise PolicyError.for_field(path, expected, value)
    if value in BUILTIN_TARGET_KINDS or _PLUGIN_KIND_RE.fullmatch(value):
        return value
    registered = _registered_kinds()
    if value in registered:
        return value
    raise PolicyError.for_field(path, expected, value, hint=_kind_hint(value, registered))


def _kind_hint(value: str, registered: tuple[str, ...]) -> str:
    """The "did you mean" of a kind: close spelling, else the kind of its service (rds-...)."""
    kinds = BUILTIN_TARGET_KINDS + registered
    hint = did_you_mean(value, kinds)
    if hint:
        return hint
    service = value.split("-", 1)[0].split("_", 1)[0].lower()
    same = [kind for kind in kinds if kind.split("-", 1)[0] == service]
    return f"Did you mean {same[0]!r}?" if len(same) == 1 else ""


def frozen_settings(value: object) -> dict[str, object]:
    if not isinstance(value, Mapping):
        raise PolicyError.for_field("settings", "a mapping of settings", value)
    return dict(value)


def validate_name(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    read_name(value, attribute.name)


def validate_text(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    read_text(value, attribute.name, allow_empty=True)


def validate_flag(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    read_flag(value, attribute.name)


def validate_duration(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Duration):
        raise PolicyError.for_field(attribute.name, "a Duration", value)
    if value.is_zero:
        raise PolicyError.for_field(attribute.name, "a duration longer than zero", str(value))


def validate_optional_duration(
    _inst: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None:
        validate_duration(_inst, attribute, value)


def validate_cadence(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Cadence):
        raise PolicyError.for_field(attribute.name, "a Cadence", value)


def validate_optional_rule(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, RetentionRule):
        raise PolicyError.for_field(attribute.name, "None or a RetentionRule", value)


def validate_optional_schedule(
    _inst: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None and not isinstance(value, Schedule):
        raise PolicyError.for_field(attribute.name, "None or a Schedule", value)


def to_duration(value: object) -> Any:
    return Duration.coerce(value, field="duration") if isinstance(value, str) else value


def to_optional_duration(value: object) -> Any:
    return None if value is None else to_duration(value)


def to_events(value: object) -> tuple[str, ...]:
    items = read_list(value, "on", "events")
    for i, item in enumerate(items):
        if item not in EVENTS:
            raise PolicyError.for_field(
                f"on[{i}]", "an event: " + ", ".join(EVENTS), item, hint=did_you_mean(item, EVENTS)
            )
        if item in items[:i]:
            raise PolicyError.for_field(f"on[{i}]", "each event at most once", item)
    if not items:
        raise PolicyError.for_field("on", "at least one event", value)
    return cast("tuple[str, ...]", tuple(items))  # each item is one of EVENTS


def validate_notification_kind(
    _inst: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value not in NOTIFICATION_KINDS:
        raise PolicyError.for_field(
            attribute.name,
            "a notification kind: " + ", ".join(NOTIFICATION_KINDS),
            value,
            hint=did_you_mean(value, NOTIFICATION_KINDS),
        )


_KMS_KEY_ARN_RE: Final = re.compile(
    r"arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/[A-Za-z0-9-]{1,128}"
)


def check_tier_account(account_id: str, location: Mapping[str, object]) -> None:
    """Check the location of a tier whose copies live in account *account_id*.

    It needs ``region`` and ``kms_key_id``, a key ARN in that account and region (a shared
    snapshot is copied only with a key of the copying account, and a key id or alias alone
    would be looked up in the wrong account); ``account``, if given, must be the same account.

    Raises:
        PolicyError: Naming ``location.region``, ``location.kms_key_id`` or ``location.account``.
    """
    region = location.get("region")
    if not region:
        raise PolicyError.for_field(
            "location.region", "the region of the copies in account " + account_id, region
        )
    given = location.get("account")
    if given is not None and given != account_id:
        raise PolicyError.for_field(
            "location.account", f"the account of the tier's role ({account_id}) or nothing", given
        )
    key = location.get("kms_key_id")
    match = _KMS_KEY_ARN_RE.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        raise PolicyError.for_field(
            "location.kms_key_id",
            f"a KMS key ARN in account {account_id} and region {region} "
            f"('arn:aws:kms:{region}:{account_id}:key/<key id>')",
            key,
        )
    if match["account"] != account_id or match["region"] != region:
        raise PolicyError.for_field(
            "location.kms_key_id",
            f"a key in the tier's account {account_id} and region {region} "
            f"(got a key in account {match['account']}, region {match['region']})",
            key,
        )


def read_role_arn(value: object, path: str) -> str:
    if not isinstance(value, str) or not _ROLE_ARN_RE.fullmatch(value):
        raise PolicyError.for_field(
            path, "an IAM role ARN like 'arn:aws:iam::123456789012:role/backup'", value
        )
    return value


def read_external_id(value: object, path: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not _EXTERNAL_ID_RE.fullmatch(value)):
        raise PolicyError.for_field(
            path, "None or an external ID of 2-1224 letters, digits or +=,.@:/-_", value
        )
    return value


def read_session_name(value: object, path: str) -> str:
    if not isinstance(value, str) or not _SESSION_NAME_RE.fullmatch(value):
        raise PolicyError.for_field(
            path, "a role session name of 2-64 letters, digits or +=,.@-_", value
        )
    return value


def to_regions(value: object) -> tuple[str, ...]:
    items = read_list(value, "regions", "AWS regions")
    regions = tuple(_s_region(item, f"regions[{i}]") for i, item in enumerate(items))
    for i, region in enumerate(regions):
        if region in regions[:i]:
            raise PolicyError.for_field(f"regions[{i}]", "each region at most once", region)
    return regions


def read_selector_settings(value: object, path: str, selector: Selector) -> dict[str, object]:
    """Settings of a selector target: defaults for the targets it finds (no ids, no region)."""
    optional: dict[str, SettingCheck] = {}
    for kind in selector.resource_types or tuple(RESOURCE_TYPES):
        optional.update(TARGET_SETTINGS[kind][1])
    optional.pop("region", None)
    if isinstance(value, Mapping) and "region" in value:
        raise PolicyError.for_field(
            join_path(path, "region"),
            "no region in a selector target's settings (list them in the target's regions)",
            value["region"],
        )
    return read_settings(value, path, {}, optional)


def read_selector_kind(value: object, path: str, selector: Selector) -> Selector:
    """Fold a selector target's optional ``kind`` into its selector's kinds."""
    if value is None or value == SELECTOR_KIND:
        return selector
    kinds = selector.resource_types or tuple(RESOURCE_TYPES)
    if value not in kinds:
        raise PolicyError.for_field(
            path,
            one_of("a kind the selector finds", kinds),
            value,
            hint=did_you_mean(value, kinds),
        )
    return selector if selector.resource_types else attrs.evolve(selector, resource_types=(value,))


def one_of(what: str, names: Sequence[str]) -> str:
    return f"{what} ({', '.join(names)})" if names else f"{what} (there are none)"
