"""Target discovery: a `Selector` picks resources by tags, type, name and region at run time.

Real estates have hundreds of databases and instances; nobody lists them one by one. A selector
says *which* resources a policy protects (``backup=daily``, like AWS Backup's tag-based
selections). It is a pure value: resolving it against AWS (the tagging API, assumed roles) is
`backuppolicy.aws.discovery`'s job, which workflows reach through the registry
(`backuppolicy.core.resolution.get_resolver`).

Example:
    >>> Selector(tags={"backup": "daily"}, resource_types=["rds-instance"]).describe()
    'rds-instance resources tagged backup=daily'
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, cast

import attrs

from backuppolicy.core.exceptions import PolicyError

__all__ = ["RESOURCE_SETTINGS", "RESOURCE_TYPES", "Selector"]

RESOURCE_TYPES: Final[Mapping[str, str]] = {
    "rds-instance": "rds:db",
    "aurora-cluster": "rds:cluster",
    "ec2-instance": "ec2:instance",
    "ebs-volume": "ec2:volume",
    "s3-bucket": "s3",
}
"""Target kinds a selector can find, and their Resource Groups Tagging API resource types."""

RESOURCE_SETTINGS: Final[Mapping[str, str]] = {
    "rds-instance": "db_instance_id",
    "aurora-cluster": "db_cluster_id",
    "ec2-instance": "instance_id",
    "ebs-volume": "volume_id",
    "s3-bucket": "bucket",
}
"""The setting of a target of each kind that names its resource (``db_instance_id`` ...)."""

_REGION_RE: Final = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")
_KEYS: Final = ("tags", "kinds", "name", "regions")


def _to_tags(value: object) -> Mapping[str, str | None]:
    if value is None:
        return {}
    if isinstance(value, (list, tuple)):
        value = dict.fromkeys(value)
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and k and (v is None or isinstance(v, str)) for k, v in value.items()
    ):
        raise PolicyError.for_field(
            "tags",
            "a mapping of tag key to value (or null for any value), or a list of keys",
            value,
        )
    return dict(value)


def _hint(word: object, choices: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"Did you mean {match[0]!r}?" if match else ""


def _items(value: object) -> tuple[object, ...]:
    """*value* as a tuple of items: a string is one item; ``tuple()`` rejects a non-iterable."""
    return (value,) if isinstance(value, str) else tuple(cast("Iterable[object]", value or ()))


def _to_types(value: object) -> tuple[str, ...]:
    items = _items(value)
    for item in items:
        if item not in RESOURCE_TYPES:
            raise PolicyError.for_field(
                "resource_types",
                "kinds among " + ", ".join(RESOURCE_TYPES),
                item,
                hint=_hint(item, RESOURCE_TYPES),
            )
    return cast("tuple[str, ...]", items)  # each item is a key of RESOURCE_TYPES


def _to_regions(value: object) -> tuple[str, ...]:
    regions: list[str] = []
    for item in _items(value):
        if not isinstance(item, str) or not _REGION_RE.fullmatch(item):
            raise PolicyError.for_field("regions", "AWS region names like 'eu-west-2'", item)
        regions.append(item)
    return tuple(regions)


def _check_pattern(_inst: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise PolicyError.for_field("name_pattern", "None or a glob like 'shop-*'", value)


@attrs.frozen
class Selector:
    """Which resources a policy protects, decided at run time.

    A resource matches when it carries every tag of *tags* (a ``None`` value matches any
    value), is of one of *resource_types* (all supported kinds when empty), its id or ``Name``
    tag matches *name_pattern* (a glob), and it lives in one of *regions* (the caller's region
    when empty).

    Example:
        >>> Selector.from_dict({"tags": {"backup": "daily"}, "kinds": "rds-instance",
        ...                     "name": "shop-*"}).name_pattern
        'shop-*'

    Attributes:
        tags: Required tags: key to value, ``None`` for any value.
        resource_types: Target kinds (keys of `RESOURCE_TYPES`).
        name_pattern: Glob on the resource id or its ``Name`` tag, or ``None``.
        regions: Regions to search.
    """

    tags: Mapping[str, str | None] = attrs.field(factory=dict, converter=_to_tags, hash=False)
    resource_types: tuple[str, ...] = attrs.field(default=(), converter=_to_types)
    name_pattern: str | None = attrs.field(default=None, validator=_check_pattern)
    regions: tuple[str, ...] = attrs.field(default=(), converter=_to_regions)

    def __attrs_post_init__(self) -> None:
        if not self.tags and not self.resource_types and self.name_pattern is None:
            raise PolicyError.for_field(
                "selector",
                "at least one of tags, resource_types or name_pattern (an empty selector would "
                "protect everything by accident)",
                {},
            )

    @classmethod
    def from_dict(cls, data: object, *, path: str = "selector") -> Selector:
        """Build from the policy-file form ``{tags:, kinds:, name:, regions:}``; errors name *path*."""
        if not isinstance(data, Mapping):
            raise PolicyError.for_field(path, "a mapping with " + ", ".join(_KEYS), data)
        unknown = [key for key in data if key not in _KEYS]
        if unknown:
            raise PolicyError.for_field(
                f"{path}.{unknown[0]}",
                "a known key: " + ", ".join(_KEYS),
                unknown[0],
                hint=_hint(unknown[0], _KEYS),
            )
        try:
            return cls(
                tags=data.get("tags"),
                resource_types=data.get("kinds", ()),
                name_pattern=data.get("name"),
                regions=data.get("regions", ()),
            )
        except PolicyError as exc:
            field = {"resource_types": "kinds", "name_pattern": "name"}.get(exc.path, exc.path)
            where = path if field == "selector" else f"{path}.{field}"
            hint = _hint(exc.got, RESOURCE_TYPES) if field == "kinds" else ""
            raise PolicyError.for_field(where, exc.expected or "", exc.got, hint=hint) from None

    def to_dict(self) -> dict[str, object]:
        """The policy-file form that `from_dict` reads back (empty conditions left out)."""
        data: dict[str, object] = {}
        if self.tags:
            data["tags"] = dict(self.tags)
        if self.resource_types:
            data["kinds"] = list(self.resource_types)
        if self.name_pattern is not None:
            data["name"] = self.name_pattern
        if self.regions:
            data["regions"] = list(self.regions)
        return data

    def describe(self) -> str:
        """One line: ``"rds-instance resources tagged backup=daily"``."""
        kinds = ", ".join(self.resource_types) or "all"
        words = [f"{kinds} resources"]
        if self.tags:
            tags = ", ".join(f"{k}={v}" if v is not None else k for k, v in self.tags.items())
            words.append(f"tagged {tags}")
        if self.name_pattern:
            words.append(f"named {self.name_pattern}")
        if self.regions:
            words.append(f"in {', '.join(self.regions)}")
        return " ".join(words)

    def tag_filters(self) -> list[dict[str, str | list[str]]]:
        """``TagFilters`` of ``GetResources``."""
        return [
            {"Key": key, "Values": [value]} if value is not None else {"Key": key}
            for key, value in self.tags.items()
        ]

    def matches(self, resource: Mapping[str, Any]) -> bool:
        """Whether a resource found by `backuppolicy.aws.discovery` matches."""
        if self.resource_types and resource["kind"] not in self.resource_types:
            return False
        if self.regions and resource["region"] not in self.regions:
            return False
        tags = resource.get("tags", {})
        for key, value in self.tags.items():
            if key not in tags or (value is not None and tags[key] != value):
                return False
        if self.name_pattern is None:
            return True
        names = {resource["id"], tags.get("Name", "")}
        return any(fnmatch.fnmatchcase(name, self.name_pattern) for name in names if name)
