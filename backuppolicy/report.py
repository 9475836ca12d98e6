"""Compliance reports: what the audit found, as text, HTML, JSON, CSV, DataFrames and plots.

`backuppolicy.workflows._audit.audit` returns a `ComplianceReport`: one `Finding` per clause of the
policy and per target (or application, or period), each compliant or not, with the evidence
(point ids, testing-log entry ids) and one line of detail.

* ``report.summary()`` is a text table; ``report._repr_html_()`` the same table in HTML for
  notebooks, every value escaped, with a ``<pre>`` text fallback. `set_display_style`
  ``("text")`` makes notebooks show the text only. The HTML starts with what is not compliant,
  one sentence each, and links every testing-log id of the evidence to its entry, listed
  below the table (`LoggedCheck`).
* A finding is ``ok``, ``NOT OK`` or ``n/a`` (`Finding.result`): a clause that does not apply
  (`Finding.not_applicable`) fails nothing, and is not counted as compliant either.
* ``report.to_dict()``, ``report.to_json()``, ``report.to_csv()`` and ``report.to_html(path)``
  (a standalone page, with the coverage plot when matplotlib is installed) export it.
* ``report.to_dataframe()`` and `plot_coverage` need the ``notebook`` extra (pandas,
  matplotlib): ``pip install 'backuppolicy[notebook]'``; they import it only when called.

Example:
    >>> from datetime import datetime, UTC
    >>> clause = Clause("retention", "§2.1", "retention 35 days")
    >>> report = ComplianceReport(
    ...     policy="web-apps", now=datetime(2026, 11, 26, 5, 0, tzinfo=UTC),
    ...     findings=(Finding(clause, compliant=True, target="shop-db",
    ...                       evidence=("snap-9",), detail="nothing older than 35 days"),))
    >>> report
    <backuppolicy.ComplianceReport(policy='web-apps', findings=1, compliant=1, not_compliant=0)>
    >>> print(report.summary())
    compliance of policy 'web-apps' at 2026-11-26T05:00:00+00:00: 1 of 1 findings compliant
    clause                  subject  tier  result  evidence  detail
    ───────────────────────────────────────────────────────────────────────────────────
    §2.1 retention 35 days  shop-db  -     ok      snap-9    nothing older than 35 days
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

import attrs

from backuppolicy.core.exceptions import BackendNotFoundError, PolicyError
from backuppolicy.core.model import RecoveryPoint, Status, ensure_aware
from backuppolicy.core.tables import render_table

if TYPE_CHECKING:
    from backuppolicy.notify import NotifierFailure

__all__ = [
    "DISPLAY_STYLES",
    "Clause",
    "ComplianceReport",
    "Finding",
    "LoggedCheck",
    "display_style",
    "log_anchor",
    "plot_coverage",
    "set_display_style",
]

DISPLAY_STYLES: Final = ("html", "text")
"""How reports show in notebooks (`set_display_style`)."""

_NOTEBOOK_EXTRA: Final = "pip install 'backuppolicy[notebook]'"
_style = {"display": "html"}


class _StyleToken:
    """Returned by `set_display_style`: a context manager that restores the previous style."""

    def __init__(self, previous: str) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _style["display"] = self._previous


def set_display_style(style: str) -> _StyleToken:
    """Show reports in notebooks as ``"html"`` tables (default) or as ``"text"`` only.

    Takes effect at once; used in a ``with`` statement, the previous style comes back at the end.

    Example:
        >>> with set_display_style("text"):
        ...     display_style()
        'text'
        >>> display_style()
        'html'

    Raises:
        PolicyError: *style* is not ``"html"`` or ``"text"``.
    """
    if style not in DISPLAY_STYLES:
        raise PolicyError.for_field("style", "'html' or 'text'", style)
    previous = _style["display"]
    _style["display"] = style
    return _StyleToken(previous)


def display_style() -> str:
    """The current notebook display style (``"html"`` or ``"text"``)."""
    return _style["display"]


def _text(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str):
        raise PolicyError.for_field(attribute.name, "a string", value)


def _non_empty(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise PolicyError.for_field(attribute.name, "a non-empty string", value)


def _aware(_inst: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    ensure_aware(value, field=attribute.name)


@attrs.frozen
class Clause:
    """A clause of the written policy that the audit checks.

    Example:
        >>> str(Clause("retention", "§2.1", "retention 35 days"))
        '§2.1 retention 35 days'

    Attributes:
        key: Stable identifier, for code (``"daily-backup"``, ``"retention"``, ``"offsite-copy"``,
            ``"quarterly-restore-test"``, ``"application-restore-test"``, ``"integrity-check"``,
            ``"copy-integrity"``, ``"s3-versioning"``, ``"encryption"``, ``"not-public"``, ``"rds-settings"``).
        section: Section(s) of the written policy (``"§2.1"``).
        title: What the clause requires, with this policy's numbers (``"retention 35 days"``).
    """

    key: str = attrs.field(validator=_non_empty)
    section: str = attrs.field(validator=_text)
    title: str = attrs.field(validator=_non_empty)

    def __str__(self) -> str:
        return f"{self.section} {self.title}".strip()


def _to_evidence(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(item) for item in value)


@attrs.frozen
class Finding:
    """Whether one clause holds for one target, application or period, and why.

    Attributes:
        clause: The `Clause`.
        compliant: Whether the clause holds. "No evidence" is not compliant.
        target: The target concerned (``""`` for an application, a period or the whole policy).
        application: The application concerned, if any.
        tier: The copy tier concerned, if any.
        period: The period concerned (``"2026-Q3"``), for clauses about periods.
        evidence: What the verdict rests on: point ids and testing-log entry ids.
        detail: One human line: what was found.
        simulated: Whether the evidence it rests on was obtained against stand-ins (the
            demo's simulated world, a probe endpoint standing in for a restored database):
            shown as ``ok (simulated)``, "met (simulated)".
        not_applicable: The clause does not apply to the subject (the check ran and said so).
            Such a finding is *compliant* (it fails nothing) but is counted on its own, as
            ``n/a``, never as ``ok``.

    .. versionchanged:: 0.2
       *not_applicable*.
    """

    clause: Clause = attrs.field(validator=attrs.validators.instance_of(Clause))
    compliant: bool = attrs.field(validator=attrs.validators.instance_of(bool))
    target: str = attrs.field(default="", validator=_text, kw_only=True)
    application: str = attrs.field(default="", validator=_text, kw_only=True)
    tier: str = attrs.field(default="", validator=_text, kw_only=True)
    period: str = attrs.field(default="", validator=_text, kw_only=True)
    evidence: tuple[str, ...] = attrs.field(default=(), converter=_to_evidence, kw_only=True)
    detail: str = attrs.field(default="", validator=_text, kw_only=True)
    simulated: bool = attrs.field(
        default=False, validator=attrs.validators.instance_of(bool), kw_only=True
    )

    not_applicable: bool = attrs.field(default=False, kw_only=True)

    @not_applicable.validator
    def _check_not_applicable(self, attribute: attrs.Attribute[bool], value: object) -> None:
        if not isinstance(value, bool):
            raise PolicyError.for_field(attribute.name, "a bool", value)
        if value and not self.compliant:
            raise PolicyError.for_field(
                attribute.name, "False for a finding that is not compliant", value
            )

    @property
    def result(self) -> str:
        """``"ok"``, ``"ok (simulated)"``, ``"NOT OK"`` or ``"n/a"`` (not applicable)."""
        if self.not_applicable:
            return "n/a"
        if not self.compliant:
            return "NOT OK"
        return "ok (simulated)" if self.simulated else "ok"

    @property
    def counts_as_ok(self) -> bool:
        """Compliant, and the clause applies (what the report counts as ``ok``)."""
        return self.compliant and not self.not_applicable

    def sentence(self) -> str:
        """One sentence for the report's summary: the subject, the clause and what was found."""
        where = f"{self.subject} (tier {self.tier})" if self.tier else self.subject
        verdict = "does not apply to" if self.not_applicable else "is not met for"
        if self.compliant and not self.not_applicable:
            verdict = "is met for"
        detail = self.detail.rstrip(". ")
        return f"{self.clause} {verdict} {where}" + (f": {detail}." if detail else ".")

    @property
    def subject(self) -> str:
        """What the finding is about: the target, ``"application <name>"``, the period or ``"policy"``."""
        if self.target:
            return self.target
        if self.application:
            return f"application {self.application}"
        return self.period or "policy"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "clause": str(self.clause),
            "key": self.clause.key,
            "section": self.clause.section,
            "subject": self.subject,
            "target": self.target,
            "application": self.application,
            "tier": self.tier,
            "period": self.period,
            "compliant": self.compliant,
            "evidence": list(self.evidence),
            "detail": self.detail,
            "simulated": self.simulated,
            "not_applicable": self.not_applicable,
            "result": self.result,
        }


@attrs.frozen
class LoggedCheck:
    """A testing-log entry cited as evidence, as the report shows it (`ComplianceReport.log_entries`).

    Attributes:
        id: The entry's id in the backup testing log (what findings cite as evidence).
        checked_at: When the check ran.
        target: The target checked.
        check: The check's name (``"restore-test"``, ``"encrypted"`` ...).
        status: The check's status (``"pass"``, ``"fail"`` ...).
        details: What the check found.
        tier: The tier checked, if any.
        point_id: The point checked, if any.
    """

    id: str = attrs.field(validator=_non_empty)
    checked_at: datetime = attrs.field(validator=_aware)
    target: str = attrs.field(validator=_text)
    check: str = attrs.field(validator=_text)
    status: str = attrs.field(validator=_text)
    details: str = attrs.field(default="", validator=_text)
    tier: str = attrs.field(default="", validator=_text, kw_only=True)
    point_id: str = attrs.field(default="", validator=_text, kw_only=True)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "checked_at": self.checked_at.isoformat(),
            "target": self.target,
            "tier": self.tier,
            "point_id": self.point_id,
            "check": self.check,
            "status": self.status,
            "details": self.details,
        }


_HEADERS: Final = ("clause", "subject", "tier", "result", "evidence", "detail")
_CSV_HEADERS: Final = (
    "clause",
    "key",
    "section",
    "subject",
    "target",
    "application",
    "tier",
    "period",
    "compliant",
    "evidence",
    "detail",
    "simulated",
    "not_applicable",
)
_MAX_EVIDENCE_SHOWN = 3


def _evidence_text(evidence: Sequence[str]) -> str:
    if not evidence:
        return "-"
    shown = ", ".join(evidence[:_MAX_EVIDENCE_SHOWN])
    more = len(evidence) - _MAX_EVIDENCE_SHOWN
    return f"{shown} (+{more} more)" if more > 0 else shown


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return render_table(headers, rows)


_CSS: Final = (
    ".backuppolicy-report{max-width:80rem;line-height:1.35}"
    ".backuppolicy-report table{border-collapse:collapse;width:100%;table-layout:auto}"
    ".backuppolicy-report th,.backuppolicy-report td{border:1px solid #ccc;padding:2px 6px;"
    "text-align:left;vertical-align:top;overflow-wrap:break-word}"
    ".backuppolicy-report th{background:#f3f3f3}"
    ".backuppolicy-report td.nowrap{white-space:nowrap}"
    ".backuppolicy-report .ok{background:#e6f4ea}"
    ".backuppolicy-report .not-ok{background:#fce8e6}"
    ".backuppolicy-report .ok.simulated{background:#fff8e1}"
    ".backuppolicy-report .n-a{background:#f1f3f4;color:#555}"
    ".backuppolicy-report .evidence{font-family:monospace;font-size:0.85em;"
    "overflow-wrap:anywhere;max-width:18rem}"
    ".backuppolicy-report .clause{min-width:11rem}"
    ".backuppolicy-report .summary li{margin:0.2em 0}"
    ".backuppolicy-report details{display:inline}"
    ".backuppolicy-report summary{display:inline;cursor:pointer;color:#1a73e8}"
    ".backuppolicy-report :target{outline:2px solid #1a73e8}"
)
_ROW_CLASS: Final = {"ok": "ok", "ok (simulated)": "ok simulated", "NOT OK": "not-ok", "n/a": "n-a"}


def log_anchor(entry_id: str) -> str:
    """The HTML id of a testing-log entry in the report (``log-`` and the entry id, quoted).

    Example:
        >>> log_anchor("a1b2 c3")
        'log-a1b2%20c3'
    """
    return "log-" + quote(entry_id, safe="")


def _to_findings(value: Iterable[Finding]) -> tuple[Finding, ...]:
    findings = tuple(value)
    for i, finding in enumerate(findings):
        if not isinstance(finding, Finding):
            raise PolicyError.for_field(f"findings[{i}]", "a Finding", finding)
    return findings


def _to_points(value: Iterable[RecoveryPoint]) -> tuple[RecoveryPoint, ...]:
    return tuple(value)


def _to_failures(value: Iterable[NotifierFailure]) -> tuple[NotifierFailure, ...]:
    return tuple(value)


def _to_logged(value: Iterable[LoggedCheck]) -> tuple[LoggedCheck, ...]:
    return tuple(value)


@attrs.frozen(repr=False)
class ComplianceReport:
    """What `backuppolicy.workflows._audit.audit` found: one `Finding` per clause and subject.

    Attributes:
        policy: Name of the policy audited.
        now: The time the audit was made for (timezone-aware).
        findings: The findings, in clause order, then target order.
        points: The recovery points the audit saw (for `plot_coverage`).
        timezone: Time zone of the policy (for plots).
        notify_failures: Notifiers that failed to deliver a finding.
    """

    policy: str = attrs.field(validator=_non_empty)
    now: datetime = attrs.field(validator=_aware)
    findings: tuple[Finding, ...] = attrs.field(converter=_to_findings)
    points: tuple[RecoveryPoint, ...] = attrs.field(
        default=(), converter=_to_points, eq=False, kw_only=True
    )
    timezone: str = attrs.field(default="UTC", kw_only=True)
    notify_failures: tuple[NotifierFailure, ...] = attrs.field(
        default=(), converter=_to_failures, eq=False, kw_only=True
    )
    log_entries: tuple[LoggedCheck, ...] = attrs.field(
        default=(), converter=_to_logged, eq=False, kw_only=True
    )

    @property
    def ok(self) -> bool:
        """Whether every finding is compliant (findings that are not applicable fail nothing)."""
        return all(finding.compliant for finding in self.findings)

    def counts(self) -> dict[str, int]:
        """How many findings are ``ok``, ``NOT OK`` and ``n/a``, and how many in all.

        Example:
            >>> from datetime import UTC
            >>> report = ComplianceReport(policy="p", now=datetime(2026, 1, 1, tzinfo=UTC),
            ...     findings=[Finding(Clause("s3-versioning", "§7.1", "versioning"), True,
            ...                       not_applicable=True)])
            >>> report.counts()
            {'findings': 1, 'compliant': 0, 'not_compliant': 0, 'not_applicable': 1}
        """
        na = sum(f.not_applicable for f in self.findings)
        good = sum(f.counts_as_ok for f in self.findings)
        return {
            "findings": len(self.findings),
            "compliant": good,
            "not_compliant": len(self.findings) - good - na,
            "not_applicable": na,
        }

    @property
    def failures(self) -> list[Finding]:
        """The findings that are not compliant."""
        return [finding for finding in self.findings if not finding.compliant]

    @property
    def clauses(self) -> list[Clause]:
        """The clauses audited, in order."""
        return list(dict.fromkeys(finding.clause for finding in self.findings))

    def of(self, key: str) -> list[Finding]:
        """The findings of the clause with this `Clause.key` (``"retention"`` ...)."""
        return [finding for finding in self.findings if finding.clause.key == key]

    def __repr__(self) -> str:
        counts = self.counts()
        na = f", not_applicable={counts['not_applicable']}" if counts["not_applicable"] else ""
        return (
            f"<backuppolicy.ComplianceReport(policy={self.policy!r}, "
            f"findings={counts['findings']}, compliant={counts['compliant']}, "
            f"not_compliant={counts['not_compliant']}{na})>"
        )

    # ---- text ---------------------------------------------------------------------------

    def rows(self, *, failures_only: bool = False) -> list[tuple[str, ...]]:
        """Table rows ``(clause, subject, tier, result, evidence, detail)``, all text."""
        return [
            (
                str(f.clause),
                f.subject,
                f.tier or "-",
                f.result,
                _evidence_text(f.evidence),
                f.detail,
            )
            for f in self.findings
            if not (failures_only and f.compliant)
        ]

    def title(self) -> str:
        """One line: the policy, the time and the count of compliant findings.

        Findings that are not applicable are left out of the count and named after it; findings
        whose evidence was obtained against stand-ins are counted and named too.
        """
        counts = self.counts()
        na = counts["not_applicable"]
        simulated = sum(f.counts_as_ok and f.simulated for f in self.findings)
        note = f" ({simulated} on simulated evidence)" if simulated else ""
        return (
            f"compliance of policy {self.policy!r} at {self.now.isoformat()}: "
            f"{counts['compliant']} of {counts['findings'] - na} findings compliant{note}"
            + (f", {na} not applicable" if na else "")
        )

    def summary(self, *, failures_only: bool = False) -> str:
        """A text table of the findings (the text twin of `_repr_html_`)."""
        rows = self.rows(failures_only=failures_only)
        if not rows:
            return f"{self.title()}\n(no findings to show)"
        return f"{self.title()}\n{_table(_HEADERS, rows)}"

    # ---- machine formats ----------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form: policy, now, ok, counts, every finding and the cited log entries."""
        return {
            "policy": self.policy,
            "now": self.now.isoformat(),
            "ok": self.ok,
            "counts": self.counts(),
            "findings": [finding.to_dict() for finding in self.findings],
            "log_entries": [entry.to_dict() for entry in self.log_entries],
            "notify_failures": [str(failure.error) for failure in self.notify_failures],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, sort_keys=False)

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """The findings as CSV (evidence ids separated by spaces); also written to *path* if given."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(_CSV_HEADERS)
        for row in self._records():
            writer.writerow(["true" if v is True else "false" if v is False else v for v in row])
        text = buffer.getvalue()
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def _records(self) -> list[tuple[object, ...]]:
        return [
            (
                str(f.clause),
                f.clause.key,
                f.clause.section,
                f.subject,
                f.target,
                f.application,
                f.tier,
                f.period,
                f.compliant,
                " ".join(f.evidence),
                f.detail,
                f.simulated,
                f.not_applicable,
            )
            for f in self.findings
        ]

    def to_dataframe(self) -> Any:
        """The findings as a `pandas.DataFrame`, one row per finding (``evidence`` is a list).

        Raises:
            BackendNotFoundError: pandas is not installed (the ``notebook`` extra).
        """
        pandas = _require("pandas", "to_dataframe()")
        frame = pandas.DataFrame(
            [
                {**dict(zip(_CSV_HEADERS, record, strict=True)), "evidence": list(f.evidence)}
                for record, f in zip(self._records(), self.findings, strict=True)
            ],
            columns=list(_CSV_HEADERS),
        )
        return frame.astype({"compliant": bool, "simulated": bool, "not_applicable": bool})

    # ---- HTML ---------------------------------------------------------------------------

    def _evidence_html(self, evidence: Sequence[str]) -> str:
        """Evidence ids, each testing-log id a link to its entry; more than three fold away."""
        if not evidence:
            return "-"
        logged = {entry.id for entry in self.log_entries}

        def one(item: str) -> str:
            if item in logged:
                return f"<a href='#{html.escape(log_anchor(item))}'>{html.escape(item)}</a>"
            return html.escape(item)

        shown = ", ".join(one(item) for item in evidence[:_MAX_EVIDENCE_SHOWN])
        rest = evidence[_MAX_EVIDENCE_SHOWN:]
        if not rest:
            return shown
        folded = ", ".join(one(item) for item in rest)
        return f"{shown} <details><summary>(+{len(rest)} more)</summary>{folded}</details>"

    def _html_table(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in _HEADERS)
        body = []
        for finding, row in zip(self.findings, self.rows(), strict=True):
            clause, subject, tier, result, _evidence, detail = row
            cells = (
                f"<td class='clause'>{esc(clause)}</td><td class='nowrap'>{esc(subject)}</td>"
                f"<td class='nowrap'>{esc(tier)}</td><td class='nowrap'>{esc(result)}</td>"
                f"<td class='evidence'>{self._evidence_html(finding.evidence)}</td>"
                f"<td>{esc(detail)}</td>"
            )
            body.append(f"<tr class='{_ROW_CLASS[finding.result]}'>{cells}</tr>")
        return (
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            if body
            else "<p>(no findings to show)</p>"
        )

    def _html_summary(self) -> str:
        """What is not compliant, one sentence each (and what does not apply), before the table."""
        esc = html.escape
        failures = self.failures
        if failures:
            items = "".join(f"<li>{esc(f.sentence())}</li>" for f in failures)
            part = (
                f"<h3>Not compliant ({len(failures)})</h3><ul class='summary not-ok-list'>"
                f"{items}</ul>"
            )
        else:
            part = "<p class='summary'>Every clause that applies is met.</p>"
        not_applicable = [f for f in self.findings if f.not_applicable]
        if not_applicable:
            items = "".join(f"<li>{esc(f.sentence())}</li>" for f in not_applicable)
            part += (
                f"<h3>Not applicable ({len(not_applicable)})</h3>"
                f"<ul class='summary n-a-list'>{items}</ul>"
            )
        return part

    def _html_log(self) -> str:
        """The testing-log entries the findings cite, each with its anchor."""
        if not self.log_entries:
            return ""
        esc = html.escape
        zone = ZoneInfo(self.timezone)
        css = {"pass": "ok", "fail": "not-ok"}
        rows = "".join(
            f"<tr id='{esc(log_anchor(e.id))}' class='{css.get(e.status, 'n-a')}'>"
            f"<td class='evidence'>{esc(e.id)}</td>"
            f"<td class='nowrap'>{esc(f'{e.checked_at.astimezone(zone):%Y-%m-%d %H:%M %Z}')}</td>"
            f"<td>{esc(e.target)}</td><td>{esc(e.tier or '-')}</td><td>{esc(e.check)}</td>"
            f"<td class='nowrap'>{esc(e.status)}</td><td>{esc(e.details)}</td></tr>"
            for e in sorted(self.log_entries, key=lambda e: (e.checked_at, e.id))
        )
        head = "".join(
            f"<th>{h}</th>"
            for h in ("log id", "checked", "target", "tier", "check", "status", "details")
        )
        return (
            f"<h3>Testing-log entries cited as evidence ({len(self.log_entries)})</h3>"
            f"<table class='log'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        )

    def _html_fragment(self) -> str:
        esc = html.escape
        return (
            "<div class='backuppolicy-report'>"
            f"<style>{_CSS}</style>"
            f"<pre class='backuppolicy-text-fallback' hidden>{esc(self.summary())}</pre>"
            f"<p><strong>{esc(self.title())}</strong></p>"
            f"{self._html_summary()}<h3>Every finding</h3>"
            f"{self._html_table()}{self._html_log()}</div>"
        )

    def _repr_html_(self) -> str:
        """HTML for notebooks: a table, every value escaped, with a ``<pre>`` text fallback.

        With `set_display_style` ``("text")`` it is only the ``<pre>`` text.
        """
        if display_style() == "text":
            return f"<pre class='backuppolicy-text'>{html.escape(self.summary())}</pre>"
        return self._html_fragment()

    def to_html(self, path: str | os.PathLike[str] | None = None, *, plot: bool = True) -> str:
        """A standalone HTML page of the report; also written to *path* if given.

        Args:
            path: Where to write the page.
            plot: Embed the coverage plot (a PNG) when matplotlib is installed and the
                report has points.
        """
        esc = html.escape
        figure_html = ""
        if plot and self.points:
            try:
                figure = self.plot_coverage()
            except BackendNotFoundError:
                figure_html = (
                    f"<p>(install matplotlib for the coverage plot: {esc(_NOTEBOOK_EXTRA)})</p>"
                )
            else:
                buffer = io.BytesIO()
                figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
                data = base64.b64encode(buffer.getvalue()).decode("ascii")
                figure_html = (
                    f"<h2>Backup coverage</h2><img alt='backup coverage per target' "
                    f"style='max-width:100%;height:auto' src='data:image/png;base64,{data}'>"
                )
        page = (
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{esc(self.title())}</title></head>"
            "<body style='font-family:system-ui,sans-serif;margin:1rem 1.5rem'>"
            f"<h1>Compliance report: {esc(self.policy)}</h1>"
            f"{self._html_fragment()}{figure_html}</body></html>\n"
        )
        if path is not None:
            Path(path).write_text(page, encoding="utf-8")
        return page

    def plot_coverage(self, **options: Any) -> Any:
        """`plot_coverage` of the report's points at its time (*options* go through)."""
        options.setdefault("now", self.now)
        options.setdefault("timezone", self.timezone)
        options.setdefault("title", f"backup coverage of {self.policy}")
        return plot_coverage(self.points, **options)


def _require(module: str, what: str) -> ModuleType:
    import importlib  # noqa: PLC0415 - optional dependency, imported when used

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        message = f"{what} needs {module}, part of the notebook extra: {_NOTEBOOK_EXTRA}"
        raise BackendNotFoundError(message, name=module) from exc


_TIER_MARKERS: Final = ("o", "s", "^", "D", "v", "P")


def plot_coverage(
    points: Iterable[RecoveryPoint],
    *,
    now: datetime | None = None,
    since: datetime | None = None,
    targets: Sequence[str] | None = None,
    timezone: str = "UTC",
    include_versions: bool = False,
    title: str = "backup coverage",
    ax: Any = None,
) -> Any:
    """A matplotlib figure of backup coverage over time: one row per target, one mark per point.

    Tiers get their own marker and a small vertical offset; failed or partial points are red
    crosses, points under legal hold are circled. A vertical line marks *now*. The figure is a
    `matplotlib.figure.Figure` made without pyplot, so it works in scripts and threads; in a
    notebook it displays itself; ``figure.savefig("coverage.png")`` writes a PNG.

    Args:
        points: The recovery points.
        now: Mark this time (and end the axis there).
        since: Start the axis here (default: the oldest point).
        targets: Targets to show, in this order (default: every target of *points*, sorted).
        timezone: Time zone of the axis labels.
        include_versions: Also plot S3 object versions (``kind="s3-version"``), which are
            data rather than backups.
        title: Title of the figure.
        ax: Draw into these axes instead of a new figure.

    Raises:
        BackendNotFoundError: matplotlib is not installed (the ``notebook`` extra).
    """
    mdates = _require("matplotlib.dates", "plot_coverage()")
    figure_module = _require("matplotlib.figure", "plot_coverage()")

    shown = [p for p in points if include_versions or p.kind != "s3-version"]
    if since is not None:
        shown = [p for p in shown if p.created_at >= ensure_aware(since, field="since")]
    names = list(targets) if targets is not None else sorted({p.target for p in shown})
    tiers = sorted({p.tier for p in shown}, key=lambda t: (t != "local", t))
    if ax is None:
        figure = figure_module.Figure(
            figsize=(10, 1.0 + 0.6 * max(1, len(names))), layout="constrained"
        )
        axes = figure.add_subplot()
    else:
        axes = ax
        figure = ax.get_figure()
    zone = ZoneInfo(timezone)
    spread = 0.5 / max(1, len(tiers))
    hold_label: str | None = "legal hold"
    for index, tier in enumerate(tiers):
        offset = (index - (len(tiers) - 1) / 2) * spread
        for status_good in (True, False):
            mine = [
                p
                for p in shown
                if p.tier == tier
                and p.target in names
                and (p.status is Status.COMPLETED) is status_good
            ]
            if not mine:
                continue
            xs = [p.created_at.astimezone(zone) for p in mine]
            ys = [names.index(p.target) + offset for p in mine]
            if status_good:
                axes.scatter(
                    xs, ys, marker=_TIER_MARKERS[index % len(_TIER_MARKERS)], s=18, label=tier
                )
            else:
                axes.scatter(xs, ys, marker="x", s=30, color="red", label=f"{tier} failed")
        held = [p for p in shown if p.tier == tier and p.target in names and p.held]
        if held:
            axes.scatter(
                [p.created_at.astimezone(zone) for p in held],
                [names.index(p.target) + offset for p in held],
                s=120,
                facecolors="none",
                edgecolors="black",
                label=hold_label,
            )
            hold_label = None
    if now is not None:
        axes.axvline(
            ensure_aware(now, field="now").astimezone(zone),
            color="grey",
            linestyle="--",
            label="now",
        )
    axes.set_yticks(range(len(names)), names)
    axes.set_ylim(-0.6, len(names) - 0.4)
    axes.invert_yaxis()
    # At most ~8 date labels, concise ("Nov 12", the year once), slanted: they never overlap.
    locator = mdates.AutoDateLocator(tz=zone, minticks=3, maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))
    axes.tick_params(axis="x", labelrotation=30)
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    if shown:
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return figure
