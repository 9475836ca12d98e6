"""The testing log's entry and how it is stored: `LogEntry`, its digest and its hash chain.

Each stored entry is the entry's JSON (`LogEntry.to_dict`, canonical: sorted keys, no spaces)
with a ``chain`` holding the SHA-256 of that content and, in a JSON-lines file, of the line
before it (`encode`). `parse` reads one back and says what is wrong with it, never raising:
unreadable, changed, not an entry, or a field that would not read back as it was written.
The stores that use this format are in `backuppolicy.workflows.logstores`; `LogEntry`,
`LogDamage`, `LogDamageKind` and `CorruptLogLineWarning` are public through
`backuppolicy.workflows.testlog`.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Final

import attrs

from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import ensure_aware
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus

__all__ = [
    "TIME_KEY",
    "CorruptLogLineWarning",
    "LogDamage",
    "LogDamageKind",
    "LogEntry",
    "Parsed",
    "aware",
    "canonical",
    "encode",
    "parse",
    "sha256",
]

_FORMAT = 1
_CHAIN = "chain"
TIME_KEY = "%Y%m%dT%H%M%S.%fZ"
"""``strftime`` format of times in entry ids and S3 keys: they sort by time."""


class CorruptLogLineWarning(UserWarning):
    """A line or object of the testing log could not be read and was skipped."""


def aware(_inst: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    ensure_aware(value, field=attribute.name)


def _non_empty(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise PolicyError.for_field(attribute.name, "a non-empty string", value)


@attrs.frozen
class LogEntry:
    """One recorded check or restore test.

    Attributes:
        id: Unique id of the entry: the time it was recorded and a random suffix
            (``20261126T050001.123456Z-3f2a...``), so ids sort by recording time.
        recorded_at: When the entry was appended (timezone-aware).
        result: The `~backuppolicy.checks.verify.CheckResult`; its ``ran_by`` is always filled in.
    """

    id: str = attrs.field(validator=_non_empty)
    recorded_at: datetime = attrs.field(validator=aware)
    result: CheckResult = attrs.field(validator=attrs.validators.instance_of(CheckResult))

    @property
    def check(self) -> str:
        """Name of the check."""
        return self.result.check

    @property
    def status(self) -> CheckStatus:
        """Outcome of the check."""
        return self.result.status

    @property
    def kind(self) -> CheckKind:
        """Kind of evidence (verification, integrity, restore test)."""
        return self.result.kind

    @property
    def target(self) -> str:
        """Name of the target checked."""
        return self.result.target

    @property
    def application(self) -> str | None:
        """Application of the target, if the check recorded it."""
        return self.result.application

    @property
    def tier(self) -> str | None:
        """Tier of the point checked, if any."""
        return self.result.tier

    @property
    def point_id(self) -> str | None:
        """The point checked, if any."""
        return self.result.point_id

    @property
    def checked_at(self) -> datetime:
        """When the check ran."""
        return self.result.checked_at

    @property
    def ran_by(self) -> str:
        """Who or what ran the check."""
        return self.result.ran_by

    @property
    def ok(self) -> bool:
        """Whether the check did not fail."""
        return self.result.ok

    @property
    def passed(self) -> bool:
        """Whether the check passed (warnings and skips do not)."""
        return self.result.status is CheckStatus.PASS

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form: the result's fields plus ``id``, ``recorded_at`` and ``v``."""
        return {
            "v": _FORMAT,
            "id": self.id,
            "recorded_at": self.recorded_at.isoformat(),
            **self.result.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> LogEntry:
        """Inverse of `to_dict`.

        Raises:
            PolicyError: *data* is not an entry (missing or malformed fields).
        """
        if not isinstance(data, Mapping):
            raise PolicyError.for_field("entry", "a JSON object", data)
        try:
            return cls(
                id=str(data["id"]),
                recorded_at=datetime.fromisoformat(str(data["recorded_at"])),
                result=CheckResult.from_dict(data),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, PolicyError):
                raise
            raise PolicyError.for_field(
                "entry", "a log entry with id, recorded_at, check, status, target, checked_at", data
            ) from exc


class LogDamageKind(enum.Enum):
    """What is wrong with a part of the testing log."""

    DAMAGED = "damaged"
    """A line or object that cannot be read, or whose content does not match its digest."""
    CHAIN_BROKEN = "chain-broken"
    """A line that does not follow the line before it: a line was removed, inserted or moved."""
    UNCHAINED = "unchained"
    """Entries written before the log had digests (legacy): read, but they cannot be checked."""
    TORN_LINE = "torn-line"
    """A line a writer left half-written when it crashed: skipped, a note rather than damage."""


@attrs.frozen
class LogDamage:
    """One problem found while reading the testing log (`TestLog.damage`).

    Attributes:
        kind: The `LogDamageKind`.
        where: The file and line (``"log.jsonl:7"``) or the object's URL.
        detail: One human line.
    """

    kind: LogDamageKind
    where: str
    detail: str

    @property
    def tampering(self) -> bool:
        """Whether this is damage (changed, removed or reordered entries), not just a note."""
        return self.kind in (LogDamageKind.DAMAGED, LogDamageKind.CHAIN_BROKEN)

    def __str__(self) -> str:
        return f"{self.where}: {self.kind.value}: {self.detail}"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "kind": self.kind.value,
            "where": self.where,
            "detail": self.detail,
            "tampering": self.tampering,
        }


def canonical(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode(
        "utf-8"
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _plain(entry: LogEntry) -> dict[str, object]:
    """The entry as the JSON data it reads back as (so its canonical form is a fixed point)."""
    data: dict[str, object] = json.loads(json.dumps(entry.to_dict(), default=str))
    return data


def encode(entry: LogEntry, *, prev: str | None = None, after_torn: bool = False) -> bytes:
    """One stored entry: its data and a ``chain`` with its digest (and the previous line's)."""
    data = _plain(entry)
    chain: dict[str, object] = {} if prev is None else {"prev": prev}
    if after_torn:
        chain["after_torn"] = True
    chain["sha256"] = sha256(canonical({**data, _CHAIN: chain}))
    return canonical({**data, _CHAIN: chain})


@attrs.frozen
class Parsed:
    entry: LogEntry | None = None
    chain: dict[str, object] | None = None
    problem: str = ""


def parse(raw: bytes) -> Parsed:
    """Parse one stored entry and check it against its digest; never raises."""
    try:
        return _check(raw, json.loads(raw.decode("utf-8")))
    except (ValueError, TypeError, RecursionError) as exc:  # JSON, UTF-8, lone surrogates
        return Parsed(problem=f"not readable ({type(exc).__name__}: {str(exc)[:80]})")


def _check(raw: bytes, data: object) -> Parsed:
    if not isinstance(data, dict):
        return Parsed(problem=f"not a JSON object (a {type(data).__name__})")
    chain = data.pop(_CHAIN, None)
    problem = _chain_problem(raw, data, chain) if chain is not None else ""
    if problem:
        return Parsed(problem=problem)
    try:
        entry = LogEntry.from_dict(data)
    except PolicyError as exc:
        return Parsed(problem=f"not an entry ({str(exc)[:120]})")
    plain = _plain(entry)
    unknown = sorted(set(data) - set(plain))
    if unknown:  # a changed field name: the entry would not read back as it was written
        return Parsed(problem=f"unknown field(s) {', '.join(unknown)[:120]}")
    # A field of the wrong type (a list of issues given as text, evidence as a list, a target
    # as a mapping ...) is converted on reading, so the entry would not read back as written.
    changed = sorted(k for k in data if k not in _LENIENT and data[k] != plain[k])
    if changed:
        return Parsed(problem=f"field(s) of the wrong type: {', '.join(changed)[:120]}")
    return Parsed(entry=entry, chain=chain)


_LENIENT: Final = frozenset({"v", "recorded_at", "checked_at"})
"""Fields whose written form may differ from the one read back (times with ``Z``, the format)."""


def _chain_problem(raw: bytes, data: dict[str, object], chain: object) -> str:
    """What is wrong with an entry's digest, ``""`` if it matches and the bytes are as written."""
    if not isinstance(chain, dict) or not isinstance(chain.get("sha256"), str):
        return "its digest is malformed"
    unsigned = {k: v for k, v in chain.items() if k != "sha256"}
    if canonical({**data, _CHAIN: {**unsigned, "sha256": chain["sha256"]}}) != raw:
        return "it is not stored as it was written (bytes changed)"
    if sha256(canonical({**data, _CHAIN: unsigned})) != chain["sha256"]:
        return "its content does not match its SHA-256 (changed)"
    return ""
