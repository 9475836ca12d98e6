"""Loading recovery plans: plain data and YAML (bounded reads through core.loading) to steps.

Errors name the field (``steps[2].needs[0]: ...``). Private: `RecoveryPlan.from_dict`,
``from_yaml`` and ``from_file`` in `backuppolicy.workflows.recovery` call it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

from backuppolicy.checks.health import CallableCheck, Check, HttpCheck, SqlCheck, TcpCheck
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.loading import BoundedLoader, load_yaml, read_policy_text
from backuppolicy.core.secrets import Secret, SecretKind, secret_field
from backuppolicy.workflows._recovery_steps import (
    Action,
    HealthCheck,
    RecoveryStep,
    ReplaceInstance,
    RestartInstance,
    RestoreDatabase,
    RestoreDirectory,
    RestoreS3,
    RestoreVolumes,
    StepKind,
    SwitchTraffic,
)

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy

_ID_RE = r"[a-z0-9][a-z0-9_.-]{0,63}"


# --------------------------------------------------------------------------------------------
# Loading


def _join(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)


def _mapping(
    value: object, path: str, keys: Sequence[str], required: Sequence[str] = ()
) -> dict[str, object]:
    if not isinstance(value, Mapping):
        raise PolicyError.for_field(path, f"a mapping with keys {', '.join(keys)}", value)
    for key in value:
        if key not in keys:
            import difflib  # noqa: PLC0415

            close = difflib.get_close_matches(str(key), keys, n=1)
            raise PolicyError.for_field(
                _join(path, str(key)),
                f"a known key: {', '.join(keys)}",
                key,
                hint=f"Did you mean {close[0]!r}?" if close else "",
            )
    for key in required:
        if key not in value:
            raise PolicyError.for_field(_join(path, key), "a value (the key is required)", None)
    return dict(value)


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError.for_field(path, "a non-empty string", value)
    return value


def _opt_text(raw: Mapping[str, object], key: str, path: str) -> str | None:
    return None if raw.get(key) is None else _text(raw[key], _join(path, key))


def _ident(value: object, path: str) -> str:
    import re  # noqa: PLC0415

    if not isinstance(value, str) or not re.fullmatch(_ID_RE, value):
        raise PolicyError.for_field(
            path, "an id of lowercase letters, digits, '.', '_' or '-' (at most 64)", value
        )
    return value


@overload
def _number(value: object, path: str, *, minimum: float = ..., integer: Literal[True]) -> int: ...
@overload
def _number(
    value: object, path: str, *, minimum: float = ..., integer: Literal[False] = ...
) -> float: ...
def _number(value: object, path: str, *, minimum: float = 0.0, integer: bool = False) -> float:
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if (
        isinstance(value, bool)
        or not ok_type
        or not isinstance(value, int | float)  # never true once ok_type holds; narrows for mypy
        or value < minimum
    ):
        raise PolicyError.for_field(
            path, f"{'an integer' if integer else 'a number'} >= {minimum:g}", value
        )
    return value


def _seconds(value: object, path: str) -> float:
    """Seconds from a number, ``"90s"`` or a duration (``"30min"``, ``"2h"``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(_number(value, path))
    if isinstance(value, str) and value.endswith("s") and value[:-1].isdigit():
        return float(value[:-1])
    duration = Duration.coerce(value, field=path)
    if not duration.is_exact:
        raise PolicyError.for_field(
            path, "seconds, or a duration in weeks, days, hours or minutes", value
        )
    return duration.approx_timedelta().total_seconds()


def _time(value: object, path: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise PolicyError.for_field(path, "an ISO 8601 time with a zone", value) from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise PolicyError.for_field(path, "an ISO 8601 time with a zone (e.g. ending in Z)", value)
    return value


def _strings(value: object, path: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise PolicyError.for_field(path, "a list of strings", value)
    return tuple(_text(item, _join(path, i)) for i, item in enumerate(value))


def _hook(ref: object, path: str, hooks: Mapping[str, Callable[..., Any]]) -> Callable[..., Any]:
    """A hook by name from *hooks*, else ``"module:function"`` imported now."""
    name = _text(ref, path)
    if name in hooks:
        return hooks[name]
    module, sep, attr = name.partition(":")
    if not sep or not module or not attr:
        known = ", ".join(sorted(hooks)) or "none given"
        raise PolicyError.for_field(
            path, f"a hook passed in hooks= ({known}) or 'module:function'", name
        )
    try:
        found = importlib.import_module(module)
        for part in attr.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise PolicyError.for_field(
            path, f"an importable 'module:function' ({exc})", name
        ) from None
    if not callable(found):
        raise PolicyError.for_field(path, "a callable", name)
    function: Callable[..., Any] = found
    return function


def _secret_text(value: object, path: str, kind: SecretKind) -> str | Secret:
    """Text, or a secret by reference (``{env: NAME}``, ``{file: PATH}``); never one inline."""
    found = secret_field(value, path, kind=kind)
    return found if isinstance(found, Secret) else _text(found, path)


class _Named(TypedDict, total=False):
    name: str


class _Timed(TypedDict, total=False):
    timeout: float


_CHECK_KEYS: dict[str, tuple[str, ...]] = {
    "http": ("kind", "url", "status", "contains", "timeout", "name"),
    "tcp": ("kind", "address", "timeout", "name"),
    "sql": ("kind", "database", "query", "expect", "connect", "name"),
    "callable": ("kind", "function", "name"),
}


def _check(value: object, path: str, hooks: Mapping[str, Callable[..., Any]]) -> Check:
    if isinstance(value, HttpCheck | TcpCheck | SqlCheck | CallableCheck):
        return value
    if not isinstance(value, Mapping) or value.get("kind") not in _CHECK_KEYS:
        got = value.get("kind") if isinstance(value, Mapping) else value
        raise PolicyError.for_field(
            _join(path, "kind") if isinstance(value, Mapping) else path,
            f"one of {', '.join(_CHECK_KEYS)}",
            got,
        )
    kind = str(value["kind"])
    required = {
        "http": ("url",),
        "tcp": ("address",),
        "sql": ("database", "query"),
        "callable": ("function",),
    }[kind]
    raw = _mapping(value, path, _CHECK_KEYS[kind], required)
    named: _Named = {}
    timed: _Timed = {}  # never set for sql (not one of its keys)
    if raw.get("name") is not None:
        named["name"] = _text(raw["name"], _join(path, "name"))
    if "timeout" in raw:
        timed["timeout"] = float(_number(raw["timeout"], _join(path, "timeout")))
    if kind == "http":
        status = _number(raw.get("status", 200), _join(path, "status"), minimum=100, integer=True)
        return HttpCheck(
            _secret_text(raw["url"], _join(path, "url"), "url"),
            status=status,
            contains=_opt_text(raw, "contains", path),
            **named,
            **timed,
        )
    if kind == "tcp":
        return TcpCheck(_text(raw["address"], _join(path, "address")), **named, **timed)
    if kind == "sql":
        connect = (
            _hook(raw["connect"], _join(path, "connect"), hooks)
            if raw.get("connect") is not None
            else None
        )
        return SqlCheck(
            _secret_text(raw["database"], _join(path, "database"), "dsn"),
            _text(raw["query"], _join(path, "query")),
            expect=raw.get("expect"),
            connect=connect,
            **named,
        )
    function = _hook(raw["function"], _join(path, "function"), hooks)
    return CallableCheck(function, ref=str(raw["function"]), name=named.get("name", ""))


_COMMON_KEYS = ("id", "kind", "title", "needs", "timeout", "retries", "retry_delay", "verify")
_ACTION_KEYS: dict[StepKind, tuple[str, ...]] = {
    StepKind.RESTORE_DATABASE: (
        "target",
        "point",
        "at",
        "into",
        "swap",
        "subnet_group",
        "security_group_ids",
        "parameter_group",
        "instance_class",
    ),
    StepKind.RESTORE_DIRECTORY: ("target", "point", "into"),
    StepKind.RESTORE_S3: ("target", "point", "at", "into"),
    StepKind.RESTORE_VOLUMES: ("target", "point", "attach_to", "devices", "availability_zone"),
    StepKind.RESTART_INSTANCE: ("target", "instance"),
    StepKind.REPLACE_INSTANCE: (
        "target",
        "image_id",
        "instance_type",
        "subnet_id",
        "security_group_ids",
    ),
    StepKind.HEALTH_CHECK: ("check", "endpoint", "attempts", "interval"),
    StepKind.SWITCH_TRAFFIC: ("hook", "command", "endpoint"),
}


def _action(  # noqa: C901, PLR0911 - one branch per kind
    kind: StepKind, raw: Mapping[str, object], path: str, hooks: Mapping[str, Callable[..., Any]]
) -> Action:
    def text(key: str) -> str | None:
        return _opt_text(raw, key, path)

    def when() -> datetime | None:
        return None if raw.get("at") is None else _time(raw["at"], _join(path, "at"))

    def strings(key: str) -> tuple[str, ...]:
        return () if raw.get(key) is None else _strings(raw[key], _join(path, key))

    if kind in _ACTION_KEYS and "target" in _ACTION_KEYS[kind] and raw.get("target") is None:
        raise PolicyError.for_field(
            _join(path, "target"), "the name of a target of the policy (the key is required)", None
        )
    target = str(raw.get("target", ""))
    if kind is StepKind.RESTORE_DATABASE:
        swap = raw.get("swap", False)
        if not isinstance(swap, bool):
            raise PolicyError.for_field(_join(path, "swap"), "true or false", swap)
        return RestoreDatabase(
            target,
            point=text("point"),
            at=when(),
            into=text("into"),
            swap=swap,
            subnet_group=text("subnet_group"),
            security_group_ids=strings("security_group_ids"),
            parameter_group=text("parameter_group"),
            instance_class=text("instance_class"),
        )
    if kind is StepKind.RESTORE_DIRECTORY:
        return RestoreDirectory(target, point=text("point"), into=text("into"))
    if kind is StepKind.RESTORE_S3:
        return RestoreS3(target, point=text("point"), at=when(), into=text("into"))
    if kind is StepKind.RESTORE_VOLUMES:
        return RestoreVolumes(
            target,
            point=text("point"),
            attach_to=text("attach_to"),
            devices=strings("devices"),
            availability_zone=text("availability_zone"),
        )
    if kind is StepKind.RESTART_INSTANCE:
        return RestartInstance(target, instance=text("instance"))
    if kind is StepKind.REPLACE_INSTANCE:
        return ReplaceInstance(
            target,
            image_id=text("image_id"),
            instance_type=text("instance_type"),
            subnet_id=text("subnet_id"),
            security_group_ids=strings("security_group_ids"),
        )
    if kind is StepKind.HEALTH_CHECK:
        if "check" not in raw:
            raise PolicyError.for_field(
                _join(path, "check"),
                "a check: {kind: http|tcp|sql|callable, ...} (the key is required)",
                None,
            )
        return HealthCheck(
            _check(raw["check"], _join(path, "check"), hooks),
            endpoint=text("endpoint"),
            attempts=_number(
                raw.get("attempts", 5), _join(path, "attempts"), minimum=1, integer=True
            ),
            interval=float(_number(raw.get("interval", 10.0), _join(path, "interval"))),
        )
    hook, command = raw.get("hook"), raw.get("command")
    if (hook is None) == (command is None):
        raise PolicyError.for_field(
            _join(path, "hook"),
            "either hook: or command: (exactly one)",
            {"hook": hook, "command": command},
        )
    if command is not None:
        return SwitchTraffic(
            command=_strings(command, _join(path, "command")), endpoint=text("endpoint")
        )
    return SwitchTraffic(
        hook=str(hook), endpoint=text("endpoint"), function=_hook(hook, _join(path, "hook"), hooks)
    )


def _step(value: object, path: str, hooks: Mapping[str, Callable[..., Any]]) -> RecoveryStep:
    if isinstance(value, RecoveryStep):
        return value
    if not isinstance(value, Mapping):
        raise PolicyError.for_field(path, "a step: a mapping with id and kind", value)
    kinds = [k.value for k in StepKind]
    if value.get("kind") not in kinds:
        raise PolicyError.for_field(
            _join(path, "kind"), f"one of {', '.join(kinds)}", value.get("kind")
        )
    kind = StepKind(value["kind"])
    raw = _mapping(value, path, _COMMON_KEYS + _ACTION_KEYS[kind], ("id",))
    verify = raw.get("verify") or []
    if isinstance(verify, Mapping) or not isinstance(verify, Sequence):
        raise PolicyError.for_field(_join(path, "verify"), "a list of checks", verify)
    needs = raw.get("needs") or []
    if isinstance(needs, str) or not isinstance(needs, Sequence):
        raise PolicyError.for_field(_join(path, "needs"), "a list of step ids", needs)
    return RecoveryStep(
        id=_ident(raw["id"], _join(path, "id")),
        action=_action(kind, raw, path, hooks),
        title=_opt_text(raw, "title", path) or "",
        needs=tuple(_ident(n, _join(_join(path, "needs"), i)) for i, n in enumerate(needs)),
        timeout=None
        if raw.get("timeout") is None
        else _seconds(raw["timeout"], _join(path, "timeout")),
        retries=_number(raw.get("retries", 0), _join(path, "retries"), integer=True),
        retry_delay=float(_number(raw.get("retry_delay", 10.0), _join(path, "retry_delay"))),
        verify=tuple(
            _check(c, _join(_join(path, "verify"), i), hooks) for i, c in enumerate(verify)
        ),
    )


_PLAN_KEYS = ("name", "application", "description", "policy", "max_parallel", "steps")


def plan_fields(
    data: object,
    *,
    policy: Policy | None,
    hooks: Mapping[str, Callable[..., Any]] | None,
    base_dir: str | os.PathLike[str] | None,
    plan_file: str | None,
) -> dict[str, Any]:
    """The fields of a `RecoveryPlan` read from plain data (see `RecoveryPlan.from_dict`)."""
    hooks = dict(hooks or {})
    raw = _mapping(data, "", _PLAN_KEYS, ("name", "application", "steps"))
    policy_file = None if raw.get("policy") is None else _text(raw["policy"], "policy")
    if policy is None and policy_file is not None:
        from backuppolicy.core.policy import Policy  # noqa: PLC0415 - only when the plan names it

        policy = Policy.from_file(Path(base_dir or ".") / policy_file)
    steps = raw["steps"]
    if isinstance(steps, str | Mapping) or not isinstance(steps, Sequence):
        raise PolicyError.for_field("steps", "a list of steps", steps)
    return {
        "name": _ident(raw["name"], "name"),
        "application": _text(raw["application"], "application"),
        "steps": tuple(_step(s, f"steps[{i}]", hooks) for i, s in enumerate(steps)),
        "description": str(raw.get("description") or "").strip(),
        "max_parallel": _number(
            raw.get("max_parallel", 4), "max_parallel", minimum=1, integer=True
        ),
        "policy": policy,
        "policy_file": policy_file,
        "plan_file": plan_file,
        "hooks": hooks,
    }


def yaml_data(text: str) -> object:
    """The plain data of a plan's YAML *text* (a bounded load: aliases and size are limited)."""
    data, _ = load_yaml(text, "recovery plan", BoundedLoader)
    return data


def read_text(file: Path) -> str:
    """The text of the plan file *file* (a bounded read)."""
    return read_policy_text(file)
