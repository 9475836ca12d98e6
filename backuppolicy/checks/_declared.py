"""The probes a policy file declares, built for a restore test, and the fingerprints of a backup.

`declared_probes` turns a target's ``probes:`` and ``fingerprint:`` (`ProbesSpec`,
`FingerprintSpec`) into probes of the one family (`backuppolicy.checks.probes`), so the CLI,
the Lambda handler and `backuppolicy.workflows.verify.restore_test` all run the same proof:

* `ManifestProbe`: restored files or objects against the checksums of the backup's own
  manifest (every one, a deterministic sample, or the paths and keys named in the policy);
* `FingerprintProbe`: the fingerprint queries, recorded on the source at backup time
  (`record_fingerprints`, tags ``fingerprint:<name>`` on the point), compared with the
  restored database (exactly, or within the declared tolerance);
* `SqlProbe` with a `connector` of the declared database, and `HttpCheck` for a health URL.

Every comparison records both sides in the evidence: ``expected`` (from the backup) and
``observed`` (after the restore). Secrets (a DSN's password) are revealed only to connect and
scrubbed from every error.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import random
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from backuppolicy.checks.health import HttpCheck, _sqlite_connect
from backuppolicy.checks.probes import ProbeContext, ProbeLike, SqlProbe
from backuppolicy.core._probe_specs import DatabaseRef, FingerprintQuery
from backuppolicy.core.capabilities import ManifestedPoints
from backuppolicy.core.exceptions import BackendError
from backuppolicy.core.results import ProbeResult
from backuppolicy.core.secrets import Secret, reveal, scrub

if TYPE_CHECKING:
    from backuppolicy.core.capabilities import ManifestEntry
    from backuppolicy.core.specs import TargetSpec

__all__ = [
    "FINGERPRINT_ERROR_TAG",
    "FINGERPRINT_TAG_PREFIX",
    "FingerprintProbe",
    "ManifestProbe",
    "connector",
    "declared_probes",
    "fingerprint_value",
    "record_fingerprints",
]

FINGERPRINT_TAG_PREFIX: Final = "fingerprint:"
"""Tag of a point holding the value of a fingerprint query at backup time: ``fingerprint:<name>``."""
FINGERPRINT_ERROR_TAG: Final = "fingerprint-error"
"""Tag of a point whose fingerprints could not be taken: why (scrubbed of secrets)."""

_CHUNK: Final = 256 * 1024
_MAX_TAG_VALUE: Final = 256
_MAX_COMPARISONS_SHOWN: Final = 100
_TAG_UNSAFE: Final = re.compile(r"[^\w .:/=+\-@]")


# --------------------------------------------------------------------------------------------
# Connecting to a declared database


def _driver(name: str) -> Callable[[str], Any]:
    if name == "sqlite":
        return _sqlite_connect
    module, _, function = name.partition(":")
    found = getattr(importlib.import_module(module), function)
    if not callable(found):
        msg = f"driver {name!r} is not callable"
        raise TypeError(msg)
    return found  # type: ignore[no-any-return]


def connector(ref: DatabaseRef) -> Callable[[Any], Any]:
    """``connect(endpoint)`` for *ref*: fills ``{endpoint}`` and ``{password}``, then connects.

    The password (and a DSN given by reference) is revealed only here; a driver error is
    re-raised as a `BackendError` with every secret scrubbed from its text.
    """

    def connect(endpoint: Any) -> Any:
        secrets: list[object] = []
        try:
            dsn = reveal(ref.dsn)
            if isinstance(ref.dsn, Secret):
                secrets.append(dsn)
            if ref.password is not None:
                password = ref.password.reveal()
                secrets.append(password)
                dsn = dsn.replace("{password}", password)
            where = "" if endpoint is None else str(reveal(endpoint))
            dsn = dsn.replace("{endpoint}", where)
            secrets.append(dsn)
            return _driver(ref.driver)(dsn)
        except Exception as exc:  # noqa: BLE001 - rewrapped without the secrets
            text = scrub(f"{type(exc).__name__}: {exc}", secrets)
            raise BackendError(
                f"connect to {ref.describe()}: {text}",
                backend="probes",
                operation="connect",
                resource=ref.describe(),
            ) from None

    return connect


# --------------------------------------------------------------------------------------------
# Fingerprint values


def fingerprint_value(rows: Sequence[Sequence[object]]) -> str:
    """The stored form of a query's result: a number as text, anything else as its SHA-256.

    Short and made of characters every backend's tags accept (RDS, EC2, S3, sidecars).

    Example:
        >>> fingerprint_value([(1200,)])
        '1200'
        >>> fingerprint_value([("a", 1), ("b", 2)])[:7]
        'sha256:'
    """
    if len(rows) == 1 and len(rows[0]) == 1:
        value = rows[0][0]
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return repr(value)
    canonical = json.dumps([list(row) for row in rows], default=str, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _within(expected: str, observed: str, tolerance: float | str | None) -> bool:
    if expected == observed:
        return True
    want, got = _number(expected), _number(observed)
    if tolerance is None or want is None or got is None:
        return want is not None and want == got
    if isinstance(tolerance, str):
        allowed = abs(want) * float(tolerance.rstrip("%")) / 100
    else:
        allowed = float(tolerance)
    return abs(got - want) <= allowed


def _tag_text(text: str) -> str:
    return _TAG_UNSAFE.sub(" ", text)[:_MAX_TAG_VALUE]


def _query_rows(connection: Any, query: str) -> list[tuple[object, ...]]:
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(query)
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()
    finally:
        connection.close()


def record_fingerprints(spec: TargetSpec) -> dict[str, str]:
    """Run *spec*'s fingerprint queries on its source database: the tags for the new point.

    ``{"fingerprint:<name>": value}`` (`fingerprint_value`), or ``{"fingerprint-error": why}``
    when the source cannot be queried (the backup goes ahead; the restore test then says that
    no fingerprint was recorded). Nothing when the target declares no source or no queries.
    """
    fingerprint = spec.fingerprint
    if fingerprint is None or fingerprint.source is None or not fingerprint.queries:
        return {}
    connect = connector(fingerprint.source)
    tags: dict[str, str] = {}
    for query in fingerprint.queries:
        try:
            rows = _query_rows(connect(None), query.query)
        except Exception as exc:  # noqa: BLE001 - a failed fingerprint never fails the backup
            secrets = [fingerprint.source.password] if fingerprint.source.password else []
            why = scrub(f"{query.name}: {type(exc).__name__}: {exc}", secrets)
            return {FINGERPRINT_ERROR_TAG: _tag_text(why)}
        tags[FINGERPRINT_TAG_PREFIX + query.name] = fingerprint_value(rows)
    return tags


# --------------------------------------------------------------------------------------------
# Probes


def _to_queries(value: Iterable[FingerprintQuery]) -> tuple[FingerprintQuery, ...]:
    return tuple(value)


def _to_paths(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class FingerprintProbe:
    """The fingerprint queries, run on the restored database and compared with the backup's.

    The expected values are the point's ``fingerprint:<name>`` tags, taken on the source when
    the backup was made (`record_fingerprints`); a point without them fails (nothing to prove
    the data against), saying why when the backup recorded an error.

    Attributes:
        queries: The fingerprint queries (with their tolerances).
        connect: ``connect(endpoint)`` to the restored database (`connector`).
        name: Name of the probe.
    """

    queries: tuple[FingerprintQuery, ...] = attrs.field(converter=_to_queries)
    connect: Callable[[Any], Any] = attrs.field(eq=False)
    name: str = "fingerprint: queries"

    def run(self, ctx: ProbeContext) -> ProbeResult:
        """Compare every query's restored value with its value at backup time."""
        tags = ctx.point.tags if ctx.point is not None else {}
        comparisons: list[dict[str, object]] = []
        problems: list[str] = []
        for query in self.queries:
            expected = tags.get(FINGERPRINT_TAG_PREFIX + query.name)
            item: dict[str, object] = {
                "name": query.name,
                "query": query.query,
                "expected": expected,
                "tolerance": query.tolerance,
            }
            try:
                observed: str | None = fingerprint_value(
                    _query_rows(self.connect(ctx.endpoint), query.query)
                )
            except Exception as exc:  # noqa: BLE001 - the connector scrubbed its secrets
                observed = None
                item["error"] = f"{type(exc).__name__}: {exc}"
            item["observed"] = observed
            if expected is None:
                why = tags.get(FINGERPRINT_ERROR_TAG)
                problems.append(
                    f"{query.name}: no fingerprint recorded at backup time"
                    + (f" ({why})" if why else "")
                )
                item["ok"] = False
            elif observed is None:
                problems.append(f"{query.name}: {item['error']}")
                item["ok"] = False
            else:
                item["ok"] = _within(expected, observed, query.tolerance)
                if not item["ok"]:
                    within = f" within {query.tolerance}" if query.tolerance is not None else ""
                    problems.append(
                        f"{query.name}: expected {expected}{within} (backup time), "
                        f"observed {observed} after the restore"
                    )
            comparisons.append(item)
        ok = not problems
        details = (
            f"{len(self.queries)} fingerprint(s) as at backup time"
            if ok
            else f"{len(problems)} of {len(self.queries)} fingerprint(s) differ: "
            + "; ".join(problems[:5])
        )
        return ProbeResult(self.name, ok=ok, details=details, evidence={"comparisons": comparisons})


def _sha256(body: Any) -> str:
    digest = hashlib.sha256()
    try:
        for chunk in body.iter_chunks(_CHUNK):
            digest.update(chunk)
    finally:
        body.close()
    return f"sha256:{digest.hexdigest()}"


@attrs.frozen
class ManifestProbe:
    """Restored files or objects against the checksums of the backup's own manifest.

    *paths* named in the policy are always checked (and must be in the manifest); then every
    other entry (*sample* ``None``), a sample of *sample* entries chosen with
    ``random.Random(seed)`` (*seed* default: the point's id, so each point gets its own sample
    and a run can be repeated), or none (*sample* 0). The seed and the sample are in the
    evidence, with both sides of every comparison that failed and of the first 100 that passed.

    Attributes:
        paths: Paths (or keys) relative to the restored copy that must be there and match.
        sample: How many other entries to check; ``None``: all of them.
        seed: Seed of the sample; ``None``: the point's id.
        name: Name of the probe.
    """

    paths: tuple[str, ...] = attrs.field(default=(), converter=_to_paths)
    sample: int | None = None
    seed: str | None = None
    name: str = "fingerprint: manifest"

    def _chosen(self, entries: Sequence[ManifestEntry], seed: str) -> list[ManifestEntry]:
        named = set(self.paths)
        rest = sorted((e for e in entries if e.path not in named), key=lambda e: e.path)
        if self.sample is None:
            return rest
        return sorted(
            random.Random(seed).sample(rest, min(self.sample, len(rest))),  # noqa: S311 - a sample, not a secret
            key=lambda e: e.path,
        )

    def run(self, ctx: ProbeContext) -> ProbeResult:
        """Compare the chosen entries of the point's manifest with the restored copy."""
        target, point = ctx.target, ctx.point
        if not isinstance(target, ManifestedPoints) or point is None:
            return ProbeResult(
                self.name,
                ok=False,
                details="the target keeps no manifest with checksums for its points",
            )
        entries = target.manifest_entries(point)
        seed = self.seed if self.seed is not None else point.id
        by_path = {e.path: e for e in entries}
        problems = [f"{p}: not in the backup's manifest" for p in self.paths if p not in by_path]
        chosen = [by_path[p] for p in self.paths if p in by_path] + self._chosen(entries, seed)
        comparisons: list[dict[str, object]] = []
        matched = 0
        for entry in chosen:
            try:
                expected = entry.sha256 or _sha256(target.open_backed_up(entry))
            except (LookupError, OSError) as exc:
                problems.append(f"{entry.path}: backed-up copy unreadable ({exc})")
                continue
            try:
                observed: str | None = _sha256(target.open_restored(ctx.endpoint, entry.path))
            except (LookupError, OSError):
                observed = None
            ok = observed == expected
            if ok:
                matched += 1
            else:
                what = "missing after the restore" if observed is None else "differs"
                problems.append(f"{entry.path}: {what}")
            if not ok or len(comparisons) < _MAX_COMPARISONS_SHOWN:
                comparisons.append(
                    {"path": entry.path, "expected": expected, "observed": observed, "ok": ok}
                )
        ok = not problems
        details = (
            f"{matched} of {len(entries)} manifest entr{'y' if len(entries) == 1 else 'ies'} "
            "match the restored copy"
            + ("" if self.sample is None else f" (sample of {self.sample}, seed {seed!r})")
            if ok
            else f"{len(problems)} problem(s) in {len(chosen)} checked of {len(entries)}: "
            + "; ".join(problems[:5])
        )
        return ProbeResult(
            self.name,
            ok=ok,
            details=details,
            evidence={
                "manifest_entries": len(entries),
                "sample": self.sample,
                "seed": seed,
                "named": list(self.paths),
                "checked": len(chosen),
                "matched": matched,
                "problems": problems,
                "comparisons": comparisons,
            },
        )


def declared_probes(spec: TargetSpec, target: object) -> list[ProbeLike]:
    """The probes that *spec*'s ``probes:`` and ``fingerprint:`` declare, for *target*.

    The manifest check runs for every target that keeps manifests (`ManifestedPoints`: local
    directories, S3 manifests) unless ``fingerprint: {enabled: false}``; the others only when
    declared.
    """
    probes: list[ProbeLike] = []
    declared, fingerprint = spec.probes, spec.fingerprint
    database = (declared.database if declared is not None else None) or DatabaseRef("{endpoint}")
    if fingerprint is None or fingerprint.enabled:
        if isinstance(target, ManifestedPoints):
            sample = fingerprint.sample if fingerprint is not None else None
            seed = fingerprint.seed if fingerprint is not None else None
            probes.append(ManifestProbe(sample=sample, seed=seed))
        if fingerprint is not None and fingerprint.queries:
            probes.append(FingerprintProbe(fingerprint.queries, connector(database)))
    if declared is None:
        return probes
    if declared.files:
        probes.append(ManifestProbe(declared.files, sample=0, name="files"))
    if declared.s3_keys:
        probes.append(ManifestProbe(declared.s3_keys, sample=0, name="s3-keys"))
    probes.extend(
        SqlProbe(item.query, expect=item.expect, connect=connector(database), name=item.name)
        for item in declared.sql
    )
    if declared.http is not None:
        http = declared.http
        probes.append(
            HttpCheck(http.url, status=http.status, contains=http.contains, timeout=http.timeout)
        )
    return probes
