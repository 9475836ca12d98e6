"""Make moto's in-process mock safe to call from several threads at once, and cheaper per call.

The demo and the test suite run the library against moto in-process. Some of moto's internals
cost far more than the work they do, and two of them race between threads:

* moto 5 (``moto.s3.models.S3Backend._url_module``) calls `importlib.reload` on
  ``moto.s3.urls`` for every S3 request it intercepts, twice, so that a change of the
  ``MOTO_S3_CUSTOM_ENDPOINTS`` environment variable is seen (that module's only input).
  `importlib.reload` takes the module out of ``sys.modules`` while it re-executes it, so a
  second thread reloading in that window fails with ``ImportError: module moto.s3.urls not in
  sys.modules``; the library's checks and restores call S3 from a thread pool, so the demo and
  the tests hit this race now and then. The reloads also took about an eighth of the demo's
  CPU time. :func:`serialize_s3_url_reloads` serializes the reloads behind one lock and
  reloads only when the setting differs from the one the module was last loaded with.
* moto's EC2 resources read their own tags (``TaggedEC2Resource.get_tags``) by running
  ``describe_tags`` with a ``resource-id`` filter: a scan of every tag of every resource in
  the region, repeated for every snapshot a ``DescribeSnapshots`` filter looks at.
  :func:`index_ec2_tag_reads` reads the resource's own entry of the same tag table instead.
* moto's ``ListObjectVersions`` deep-copies every version of every key of the bucket, its
  data included, only to mark the copies "latest" or not, and then drops them (each copy's
  finalizer closes its own buffer). :func:`lighten_s3_version_listings` makes those copies
  shallow: a new object with the version's attributes, whose own ``is_latest`` can be set,
  that reads the version's data (under the version's lock) and never closes it.
* moto's serializer (EC2's and RDS's answers, among others) asks up to six alias providers,
  each a new object, which attribute of a model holds each field of each item of an answer
  (``AttributePicker.get_possible_keys``): a third of the demo's CPU time went there and into
  the XML it writes. :func:`memoize_serializer_aliases` remembers the attributes to try for
  each kind of object, field and shape, which is all the providers look at.
* The same serializer reads every timestamp moto keeps as text with botocore's
  ``parse_to_aware_datetime`` (``dateutil``, about 0.25 ms each), and xmltodict checks every
  element name it writes, the same few hundred names again and again.
  :func:`read_serializer_timestamps_fast` reads ISO 8601 text with an offset with
  `datetime.fromisoformat` (anything else still goes to botocore), and
  :func:`memoize_xml_name_checks` remembers the names that passed xmltodict's check.
* moto's RDS backend keeps instances and snapshots in a ``CaseInsensitiveDict`` (requests',
  over an ``OrderedDict``); a thread that lists snapshots while another creates one fails
  with ``RuntimeError: OrderedDict mutated during iteration`` (seen in CI, in a backup run's
  thread pool). :func:`snapshot_case_insensitive_iteration` makes iteration read the keys
  as they are when it starts, as a listing of AWS does.

Each changes how moto computes an answer, never the answer: ``tests/test_moto_patches.py``
compares each with moto's own code. Calling them twice is harmless; a moto without the
patched internals is left as it is. :func:`patch_moto` installs them all.
"""

from __future__ import annotations

import threading
from datetime import UTC
from typing import Any

from backuppolicy.core._isotime import aware_from_iso

__all__ = [
    "index_ec2_tag_reads",
    "lighten_s3_version_listings",
    "memoize_serializer_aliases",
    "memoize_xml_name_checks",
    "patch_moto",
    "read_serializer_timestamps_fast",
    "serialize_s3_url_reloads",
    "snapshot_case_insensitive_iteration",
]

_RELOAD_LOCK = threading.Lock()
_MARK = "_backuppolicy_patched"
_FNMATCH_SPECIALS = frozenset("*?[\\")


def serialize_s3_url_reloads() -> None:
    """Serialize moto's per-request reload of ``moto.s3.urls``, and skip needless ones (idempotent).

    The module is reloaded, under one lock, the first time and whenever moto's setting of
    custom S3 endpoints (``MOTO_S3_CUSTOM_ENDPOINTS``) differs from the last reload's.

    >>> serialize_s3_url_reloads()
    >>> from moto.s3.models import S3Backend
    >>> getattr(S3Backend._url_module.fget, "_backuppolicy_patched", False)
    True
    """
    from moto import settings  # noqa: PLC0415
    from moto.s3.models import S3Backend  # noqa: PLC0415

    current = S3Backend.__dict__.get("_url_module")
    if not isinstance(current, property) or current.fget is None:
        return  # a moto without the per-request reload: nothing to serialize
    if getattr(current.fget, _MARK, False):
        return
    unlocked = current.fget
    loaded: dict[str, Any] = {}  # "endpoints": the setting of the last reload, "module": it

    def _url_module(self: Any) -> Any:
        endpoints = tuple(settings.get_s3_custom_endpoints())
        with _RELOAD_LOCK:
            if "module" not in loaded or loaded["endpoints"] != endpoints:
                loaded["module"] = unlocked(self)
                loaded["endpoints"] = endpoints
            return loaded["module"]

    setattr(_url_module, _MARK, True)
    S3Backend._url_module = property(_url_module)  # type: ignore[method-assign,assignment]  # noqa: SLF001


def index_ec2_tag_reads() -> None:
    r"""Read an EC2 resource's tags from its own entry of moto's tag table (idempotent).

    moto's ``TaggedEC2Resource.get_tags`` scans the whole table for a ``resource-id`` filter
    (an ``fnmatch`` pattern, exact for an id without ``*?[\\``); this looks the id up, and
    builds the same list of ``{"resource_id", "key", "value", "resource_type"}`` entries in
    the same order. An id with a pattern character goes to moto's own scan.

    >>> index_ec2_tag_reads()
    >>> from moto.ec2.models.core import TaggedEC2Resource
    >>> getattr(TaggedEC2Resource.get_tags, "_backuppolicy_patched", False)
    True
    """
    from moto.ec2.models.core import TaggedEC2Resource  # noqa: PLC0415
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix  # noqa: PLC0415

    scan = TaggedEC2Resource.__dict__.get("get_tags")
    if scan is None or getattr(scan, _MARK, False):
        return

    def get_tags(self: Any) -> list[dict[str, str]]:
        resource_id = self.id
        if not resource_id:
            return []
        if not isinstance(resource_id, str) or _FNMATCH_SPECIALS.intersection(resource_id):
            return scan(self)  # type: ignore[no-any-return]
        table = self.ec2_backend.tags
        tags = table.get(resource_id) if isinstance(table, dict) else None
        if not tags:
            return []
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
        return [
            {"resource_id": resource_id, "key": key, "value": value, "resource_type": kind}
            for key, value in list(tags.items())
        ]

    setattr(get_tags, _MARK, True)
    TaggedEC2Resource.get_tags = get_tags  # type: ignore[method-assign]


class _ListingCopies:
    """``copy`` as ``moto.s3.models`` sees it: `copy.deepcopy` of a key's versions is shallow.

    Only a list of ``FakeKey``/``FakeDeleteMarker`` (what ``bucket.keys.iterlists()`` gives
    ``list_object_versions``, that module's one deep copy) is copied shallowly; anything else
    goes to the standard library.
    """

    _backuppolicy_patched = True

    def __init__(self, real: Any, kinds: tuple[type, ...], key_kind: type) -> None:
        self._real = real
        self._kinds = kinds
        self._key_kind = key_kind

    def copy(self, value: Any) -> Any:
        """The standard library's `copy.copy`."""
        return self._real.copy(value)

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        """A listing copy of a list of versions; the standard `copy.deepcopy` of anything else."""
        if type(value) is list and all(isinstance(v, self._kinds) for v in value):
            return [self._listing_copy(v) for v in value]
        return self._real.deepcopy(value, memo)

    def _listing_copy(self, version: Any) -> Any:
        if isinstance(version, self._key_kind):
            key: Any = version
            with key.lock:  # the ETag is read from the data once, on the version itself
                _ = key.etag
        clone = object.__new__(type(version))
        clone.__dict__.update(version.__dict__)
        # FakeKey.__del__ calls self.dispose(), which closes the data buffer: the copy shares
        # the version's buffer, so its own dispose does nothing.
        clone.__dict__["dispose"] = _keep
        return clone


def _keep(garbage: bool = False) -> None:  # noqa: FBT001, FBT002 - FakeKey.dispose's signature
    """A listing copy's ``dispose``: the data belongs to the version it copies."""


def lighten_s3_version_listings() -> None:
    """Make moto's ``ListObjectVersions`` copy each version shallowly (idempotent).

    Installed only where ``moto.s3.models`` has exactly one deep copy, that of
    ``list_object_versions``; any other moto is left as it is.

    >>> lighten_s3_version_listings()
    >>> import moto.s3.models
    >>> getattr(moto.s3.models.copy, "_backuppolicy_patched", False)
    True
    """
    import copy  # noqa: PLC0415
    import inspect  # noqa: PLC0415

    from moto.s3 import models  # noqa: PLC0415

    seen = vars(models).get("copy")
    if getattr(seen, _MARK, False):
        return
    try:
        source = inspect.getsource(models)
        listing = inspect.getsource(models.S3Backend.list_object_versions)
    except (OSError, TypeError):
        return
    if seen is not copy or source.count("deepcopy(") != 1:
        return
    if "copy.deepcopy(version_key)" not in listing:
        return
    shallow = _ListingCopies(copy, (models.FakeKey, models.FakeDeleteMarker), models.FakeKey)
    setattr(models, "copy", shallow)  # noqa: B010 - a module attribute mypy does not see


_REMEMBERED_MOST = 100_000
"""Most entries a memo of this module keeps (alias lists, XML names); more starts afresh."""


def memoize_serializer_aliases() -> None:
    """Remember which attributes moto's serializer tries for a field (idempotent).

    ``AttributePicker.__call__`` asks its alias providers, for every field of every item of
    an answer, which attribute names to try. The providers read only the object's class (its
    name and its ``Meta.serialization_aliases``), the field's name and its shape (the shape's
    name, kind, serialization name and parent), so the answer is remembered under those; an
    object whose ``Meta`` is not a class is asked every time. The values are still read from
    each object, in the same order, and the response transformers still apply.

    >>> memoize_serializer_aliases()
    >>> from moto.core.serialize import AttributePicker
    >>> getattr(AttributePicker.__call__, "_backuppolicy_patched", False)
    True
    """
    import inspect  # noqa: PLC0415

    from moto.core import serialize  # noqa: PLC0415
    from moto.core.constants import MISSING  # noqa: PLC0415 - what serialize uses
    from moto.core.utils import get_value  # noqa: PLC0415

    picker = getattr(serialize, "AttributePicker", None)
    asked = vars(picker).get("__call__") if isinstance(picker, type) else None
    if asked is None or getattr(asked, _MARK, False):
        return
    try:
        source = inspect.getsource(asked)
    except (OSError, TypeError):
        return
    if "self.get_possible_keys(context)" not in source or "response_transformers" not in source:
        return
    remembering = _remembering_call(get_value, MISSING)
    setattr(remembering, _MARK, True)
    setattr(remembering, "_backuppolicy_original", asked)  # noqa: B010 - for the equivalence test
    setattr(picker, "__call__", remembering)  # noqa: B010 - mypy cannot type a patched dunder


class _RememberedAliases:
    """The attribute names moto's pickers try, by picker, class, ``Meta``, field and shape."""

    def __init__(self) -> None:
        self._names: dict[tuple[Any, ...], tuple[str, ...]] = {}

    def names(self, picker: Any, context: Any) -> tuple[str, ...]:
        """What ``picker.get_possible_keys(context)`` gives, asked once per kind of context."""
        shape = context.shape
        meta = getattr(context.obj, "Meta", None)
        if meta is not None and not isinstance(meta, type):
            return tuple(picker.get_possible_keys(context))  # an object's own Meta
        key = (
            type(picker),
            tuple(picker.alias_providers),
            context.obj.__class__,
            meta,
            context.key,
            shape,
            getattr(shape, "parent", None),
        )
        names = self._names.get(key)
        if names is None:
            if len(self._names) >= _REMEMBERED_MOST:  # a moto that makes shapes per answer
                self._names.clear()
            names = self._names[key] = tuple(picker.get_possible_keys(context))
        return names


def _remembering_call(get_value: Any, missing: Any) -> Any:
    """``AttributePicker.__call__``, with the attribute names to try remembered."""
    remembered = _RememberedAliases()

    def __call__(self: Any, context: Any) -> Any:  # noqa: N807 - the method it replaces
        obj = context.obj
        for name in remembered.names(self, context):
            value = get_value(obj, name, missing)
            if value is not missing:
                break
        else:
            value = None
        if self.response_transformers:
            key_path = f"{context.key_path}.{context.key}"
            for transform_path, transform in self.response_transformers.items():
                if key_path.endswith(transform_path):
                    value = transform(value)
                    break
        return value

    return __call__


def read_serializer_timestamps_fast() -> None:
    """Read the serializer's ISO 8601 timestamps with an offset quickly (idempotent).

    ``moto.core.serialize.parse_to_aware_datetime`` (botocore's) gets, for text with an
    offset, what `datetime.fromisoformat` reads, in UTC as botocore gives it; only the
    ``tzinfo`` object differs (`datetime.UTC` for ``dateutil.tz.tzutc()``), which the
    serializer's formats never show. Other values (datetimes, epoch numbers, text without an
    offset) go to botocore.

    >>> read_serializer_timestamps_fast()
    >>> from moto.core import serialize
    >>> serialize.parse_to_aware_datetime("2026-12-06T04:05:00.000Z").isoformat()
    '2026-12-06T04:05:00+00:00'
    """
    from moto.core import serialize  # noqa: PLC0415

    slow = vars(serialize).get("parse_to_aware_datetime")
    if slow is None or getattr(slow, _MARK, False):
        return

    def parse_to_aware_datetime(value: Any) -> Any:
        parsed = aware_from_iso(value)
        if parsed is not None:
            return parsed.astimezone(UTC)  # botocore's answer is in UTC too
        return slow(value)

    setattr(parse_to_aware_datetime, _MARK, True)
    setattr(serialize, "parse_to_aware_datetime", parse_to_aware_datetime)  # noqa: B010


def memoize_xml_name_checks() -> None:
    """Check each element or attribute name xmltodict writes once, not every time (idempotent).

    ``xmltodict._validate_name`` raises `ValueError` for a name that is not safe in XML and
    returns nothing otherwise; a name (a string) that passed is remembered, so every other
    name is still checked, and refused, as before.

    >>> memoize_xml_name_checks()
    >>> import xmltodict
    >>> xmltodict.unparse({"ok": {"@id": "1", "#text": "x"}}, full_document=False)
    '<ok id="1">x</ok>'
    """
    import xmltodict  # noqa: PLC0415

    check = vars(xmltodict).get("_validate_name")
    if check is None or getattr(check, _MARK, False):
        return
    passed: set[tuple[str, str]] = set()

    def _validate_name(value: Any, kind: str) -> None:
        if type(value) is str and (value, kind) in passed:
            return
        check(value, kind)
        if type(value) is str and len(passed) < _REMEMBERED_MOST:
            passed.add((value, kind))

    setattr(_validate_name, _MARK, True)
    setattr(xmltodict, "_validate_name", _validate_name)  # noqa: B010


def snapshot_case_insensitive_iteration() -> None:
    """Iterate moto's ``CaseInsensitiveDict`` over its keys as they are when it starts.

    The same keys in the same order as before when nothing changes meanwhile; a key added or
    removed by another thread during the iteration no longer raises ``RuntimeError``
    (``list`` copies the ``OrderedDict``'s values in one step under the GIL).

    >>> snapshot_case_insensitive_iteration()
    >>> from moto.utilities.utils import CaseInsensitiveDict
    >>> names = CaseInsensitiveDict({"Snap-A": 1, "snap-b": 2})
    >>> for name in names:
    ...     names[name + "-copy"] = 0
    >>> list(names)
    ['Snap-A', 'snap-b', 'Snap-A-copy', 'snap-b-copy']
    """
    from moto.utilities import utils  # noqa: PLC0415

    found = getattr(utils, "CaseInsensitiveDict", None)
    if not isinstance(found, type) or getattr(vars(found).get("__iter__"), _MARK, False):
        return
    kind: Any = found
    original = kind.__iter__

    def __iter__(self: Any) -> Any:  # noqa: N807 - the method it replaces
        store = getattr(self, "_store", None)
        if store is None:
            return original(self)
        return iter([cased for cased, _ in list(store.values())])

    setattr(__iter__, _MARK, True)
    setattr(kind, "__iter__", __iter__)  # noqa: B010 - mypy cannot type a patched dunder


def patch_moto() -> None:
    """Install every patch of this module (idempotent): what the demo and the tests run on.

    >>> patch_moto()
    """
    serialize_s3_url_reloads()
    index_ec2_tag_reads()
    lighten_s3_version_listings()
    memoize_serializer_aliases()
    read_serializer_timestamps_fast()
    memoize_xml_name_checks()
    snapshot_case_insensitive_iteration()
