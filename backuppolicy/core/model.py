"""Values that describe backups: `RecoveryPoint`, `Status`, `LegalHold`.

A recovery point is one restorable copy of one target: an RDS snapshot, an EBS
snapshot (or the group of snapshots of one EC2 instance backup), an S3 object
version, an archive of a directory in a store, an AWS Backup recovery point.
The same backup copied off-site is a second point, in another ``location`` and
``tier``.

Ownership and holds are recorded on the backend as tags, with these keys:

============================  ===========================================================
``backuppolicy:policy``       name of the policy that created the point (ownership)
``backuppolicy:target``       name of the target the point belongs to (ownership)
``backuppolicy:reason``       ``scheduled`` or the reason given for a manual backup
``backuppolicy:token``        idempotency token of the create call
``backuppolicy:tier``         tier of the copy (``local``, ``offsite``)
``backuppolicy:legal-hold``   ``<reference>|<since ISO 8601>|<reason>`` while under hold
============================  ===========================================================
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.locks import PointLock

__all__ = [
    "TAG_HOLD",
    "TAG_POLICY",
    "TAG_REASON",
    "TAG_TARGET",
    "TAG_TIER",
    "TAG_TOKEN",
    "LegalHold",
    "RecoveryPoint",
    "Status",
    "ensure_aware",
    "is_owned",
]

TAG_POLICY = "backuppolicy:policy"
TAG_TARGET = "backuppolicy:target"
TAG_REASON = "backuppolicy:reason"
TAG_TOKEN = "backuppolicy:token"
TAG_TIER = "backuppolicy:tier"
TAG_HOLD = "backuppolicy:legal-hold"


def is_owned(tags: Mapping[str, str], *, policy: str, target: str) -> bool:
    """Whether *tags* mark a point as created by this library for *policy* and *target*.

    The ownership rule of every backend: only points that carry both ownership tags with
    these values are managed (and so may ever be deleted).

    Example:
        >>> is_owned({TAG_POLICY: "web", TAG_TARGET: "db"}, policy="web", target="db")
        True
        >>> is_owned({TAG_POLICY: "web"}, policy="web", target="db")
        False
    """
    return tags.get(TAG_POLICY) == policy and tags.get(TAG_TARGET) == target


def ensure_aware(value: datetime, *, field: str = "datetime") -> datetime:
    """Return *value* unchanged if it is a timezone-aware datetime, else raise.

    Raises:
        PolicyError: *value* is not a datetime or is naive (no ``tzinfo``).

    Example:
        >>> ensure_aware(datetime(2026, 11, 26), field="now")
        Traceback (most recent call last):
        ...
        backuppolicy.core.exceptions.PolicyError: now: expected a timezone-aware datetime (got datetime.datetime(2026, 11, 26, 0, 0)). Pass tzinfo=datetime.UTC.
    """
    if not isinstance(value, datetime):
        raise PolicyError.for_field(field, "a timezone-aware datetime", value)
    if value.tzinfo is None or value.utcoffset() is None:
        raise PolicyError.for_field(
            field, "a timezone-aware datetime", value, hint="Pass tzinfo=datetime.UTC."
        )
    return value


def _aware(_inst: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    ensure_aware(value, field=attribute.name)


def _aware_or_none(_inst: object, attribute: attrs.Attribute[Any], value: datetime | None) -> None:
    if value is not None:
        ensure_aware(value, field=attribute.name)


def _non_empty_str(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise PolicyError.for_field(attribute.name, "a non-empty string", value)


def _str(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str):
        raise PolicyError.for_field(attribute.name, "a string", value)


def _to_status(value: Status | str) -> Status:
    if isinstance(value, Status):
        return value
    try:
        return Status(value)
    except ValueError:
        expected = "one of " + ", ".join(s.value for s in Status)
        raise PolicyError.for_field("status", expected, value) from None


def _to_tags(value: Mapping[str, str] | None) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PolicyError.for_field("tags", "a mapping of str to str", value)
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise PolicyError.for_field(f"tags[{key!r}]", "a str value under a str key", item)
    return dict(value)


def _size(_inst: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise PolicyError.for_field(attribute.name, "None or an integer >= 0", value)


def _ordinal(_inst: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise PolicyError.for_field(attribute.name, "None or an integer", value)


class Status(enum.Enum):
    """State of a recovery point.

    Only `COMPLETED` points count as good backups: they fill retention buckets
    and the "newest completed point" floor. `PENDING` points are never deleted.
    """

    COMPLETED = "completed"
    """Finished and usable."""
    PENDING = "pending"
    """Still being created or copied."""
    FAILED = "failed"
    """Creation or copy failed; not restorable."""
    PARTIAL = "partial"
    """Some parts finished, others did not (e.g. one volume of an instance backup)."""


@attrs.frozen
class LegalHold:
    """A regulatory or legal hold on a recovery point: held points are never deleted.

    Example:
        >>> hold = LegalHold(reason="litigation", reference="case-17",
        ...                  since=datetime(2026, 1, 5, tzinfo=UTC))
        >>> hold.to_tag()
        'case-17|2026-01-05T00:00:00+00:00|litigation'
        >>> LegalHold.from_tag(hold.to_tag()) == hold
        True

    Attributes:
        reason: Why the point is held ("litigation", "tax audit 2026").
        reference: The case, ticket or regulation that requires the hold.
        since: When the hold was placed (timezone-aware), if known.
    """

    reason: str = attrs.field(validator=_str)
    reference: str = attrs.field(default="", validator=_str)
    since: datetime | None = attrs.field(default=None, validator=_aware_or_none)

    def to_tag(self) -> str:
        """Encode the hold as the value of the ``backuppolicy:legal-hold`` tag."""
        since = self.since.isoformat() if self.since else ""
        return f"{self.reference}|{since}|{self.reason}"

    @classmethod
    def from_tag(cls, value: str) -> LegalHold:
        """Decode a ``backuppolicy:legal-hold`` tag value written by `to_tag`.

        A value that is not in that format still means "held": it becomes the reason.
        """
        parts = value.split("|", 2)
        if len(parts) != 3:  # noqa: PLR2004
            return cls(reason=value)
        reference, since_text, reason = parts
        try:
            since = datetime.fromisoformat(since_text) if since_text else None
        except ValueError:
            since = None
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return cls(reason=reason, reference=reference, since=since)

    def describe(self) -> str:
        """Short text for reasons and reports: ``"legal hold: case-17 (litigation)"``."""
        label = self.reference or self.reason
        extra = f" ({self.reason})" if self.reference and self.reason else ""
        return f"legal hold: {label}{extra}"


@attrs.frozen
class RecoveryPoint:
    """One backup copy of one target.

    Example:
        >>> point = RecoveryPoint(
        ...     id="snap-1", target="orders-db", kind="rds-snapshot",
        ...     created_at=datetime(2026, 11, 25, 4, 0, tzinfo=UTC),
        ... )
        >>> point.is_good, point.age(datetime(2026, 11, 26, 4, 0, tzinfo=UTC))
        (True, datetime.timedelta(days=1))

    Attributes:
        id: Identifier of the copy, unique within its location (snapshot id, version id, archive name).
        target: Name of the target (protected resource) the point belongs to.
        created_at: When the backup was taken; must be timezone-aware.
        kind: What the copy is: ``rds-snapshot``, ``rds-cluster-snapshot``, ``ebs-snapshot``,
            ``ec2-instance-backup``, ``ami``, ``s3-version``, ``archive``, ``aws-backup``, ...
        location: Where the copy lives: ``aws:<account>:<region>``, a vault ARN, a directory, a bucket.
        tier: The copy tier: ``"local"`` (same place as the source) or ``"offsite"``, or any tier
            name of the policy.
        status: `Status` of the point.
        size_bytes: Size of the copy, if the backend reports it.
        encrypted: Whether the copy is encrypted at rest (``None`` if unknown).
        tags: Tags on the copy (backend tags, including our ownership tags).
        legal_hold: The `LegalHold` on the point, or ``None``.
        checksum: Content checksum (``sha256:<hex>``) if known.
        managed: Whether this library created the point for this policy and may delete it.
        details: Backend-specific facts (ARN, KMS key, snapshot ids of a multi-volume backup ...).
        ordinal: The backend's own order of the target's points, where it knows one: the larger
            ordinal is the newer point. It only breaks ties of equal `created_at` between
            points of one target (S3 lists a key's versions newest first, while their
            ``LastModified`` has one-second resolution). ``None`` (the default) where the
            backend has no order; such ties fall back to restic's rule (the larger id is newer).
            A fact of the listing, not of the copy: points are equal whatever their ordinals.
        lock: The lock the backend enforces on the point (S3 Object Lock retention, an EBS
            snapshot lock, an AWS Backup legal hold), or ``None``. Nobody, this library
            included, can delete a point while its lock is active.
    """

    id: str = attrs.field(validator=_non_empty_str)
    target: str = attrs.field(validator=_non_empty_str)
    created_at: datetime = attrs.field(validator=_aware)
    kind: str = attrs.field(default="unknown", validator=_str, kw_only=True)
    location: str = attrs.field(default="", validator=_str, kw_only=True)
    tier: str = attrs.field(default="local", validator=_str, kw_only=True)
    status: Status = attrs.field(default=Status.COMPLETED, converter=_to_status, kw_only=True)
    size_bytes: int | None = attrs.field(default=None, validator=_size, kw_only=True)
    encrypted: bool | None = attrs.field(default=None, kw_only=True)
    tags: Mapping[str, str] = attrs.field(
        factory=dict, converter=_to_tags, hash=False, kw_only=True
    )
    legal_hold: LegalHold | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(LegalHold)),
        kw_only=True,
    )
    checksum: str | None = attrs.field(default=None, kw_only=True)
    managed: bool = attrs.field(default=True, kw_only=True)
    details: Mapping[str, Any] = attrs.field(factory=dict, hash=False, kw_only=True, repr=False)
    ordinal: int | None = attrs.field(default=None, validator=_ordinal, kw_only=True, eq=False)
    lock: PointLock | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(PointLock)),
        kw_only=True,
    )

    @property
    def order_key(self) -> tuple[datetime, bool, int, str]:
        """Sort key of the points of one target: the larger key is the newer point.

        Newer `created_at` first; on equal times a point with an `ordinal` is newer than one
        without, the larger ordinal is newer, and last the larger id (restic's rule). It is a
        total order, so results never depend on the order in which points were listed.

        Example:
            >>> at = datetime(2026, 11, 25, tzinfo=UTC)
            >>> a = RecoveryPoint(id="k@zzz", target="t", created_at=at, ordinal=0)
            >>> b = RecoveryPoint(id="k@aaa", target="t", created_at=at, ordinal=1)
            >>> max([a, b], key=lambda p: p.order_key).id
            'k@aaa'
        """
        ordinal = self.ordinal
        return (self.created_utc, ordinal is not None, ordinal or 0, self.id)

    @property
    def is_good(self) -> bool:
        """Whether the point is a completed, usable backup."""
        return self.status is Status.COMPLETED

    @property
    def held(self) -> bool:
        """Whether the point is under a legal hold."""
        return self.legal_hold is not None

    @property
    def created_utc(self) -> datetime:
        """`created_at` converted to UTC."""
        return self.created_at.astimezone(UTC)

    def age(self, now: datetime) -> timedelta:
        """How old the point is at *now* (timezone-aware)."""
        return ensure_aware(now, field="now") - self.created_at

    def evolve(self, **changes: Any) -> RecoveryPoint:
        """Return a copy with *changes* applied (``attrs.evolve``)."""
        return attrs.evolve(self, **changes)
