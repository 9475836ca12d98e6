from __future__ import annotations

import csv
import html
import io
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from backuppolicy.core.exceptions import BackendNotFoundError, PolicyError
from backuppolicy.core.model import LegalHold, RecoveryPoint, Status
from backuppolicy.report import (
    Clause,
    ComplianceReport,
    Finding,
    LoggedCheck,
    display_style,
    log_anchor,
    plot_coverage,
    set_display_style,
)

NOW = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
RETENTION = Clause("retention", "§2.1, §2.2", "retention 35 days")
QUARTERLY = Clause("quarterly-restore-test", "§3.2", "a restore test every quarter")


@pytest.fixture(name="points")
def _points() -> list[RecoveryPoint]:
    hold = LegalHold(reason="litigation", reference="case-17")
    points = [
        RecoveryPoint(id=f"db-{i}", target="shop-db", created_at=NOW - timedelta(days=i))
        for i in range(10)
    ]
    points += [
        RecoveryPoint(id="db-0-offsite", target="shop-db", created_at=NOW, tier="offsite"),
        RecoveryPoint(id="cfg-1", target="shop-config", created_at=NOW, legal_hold=hold),
        RecoveryPoint(
            id="cfg-2",
            target="shop-config",
            created_at=NOW - timedelta(days=1),
            status=Status.FAILED,
        ),
        RecoveryPoint(id="img@v1", target="assets", created_at=NOW, kind="s3-version"),
    ]
    return points


@pytest.fixture(name="report")
def _report(points: list[RecoveryPoint]) -> ComplianceReport:
    return ComplianceReport(
        policy="web-apps",
        now=NOW,
        findings=(
            Finding(
                RETENTION,
                compliant=True,
                target="shop-db",
                application="shop",
                evidence=("db-9",),
                detail="nothing past the rule",
            ),
            Finding(
                RETENTION,
                compliant=False,
                target="<script>alert('x')</script>",
                evidence=("a", "b", "c", "d", "e"),
                detail="5 point(s) past the rule & more",
            ),
            Finding(
                QUARTERLY, compliant=False, period="2026-Q3", detail="no restore test in 2026-Q3"
            ),
        ),
        points=points,
    )


class _Cells(HTMLParser):
    """Collects the text of every table cell, row by row, and the <pre> text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.pre: list[str] = []
        self._in: str | None = None
        self._folded = 0  # inside <details> but not its <summary>: hidden until opened
        self.anchors: list[str] = []  # ids of elements
        self.links: list[str] = []  # hrefs

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.anchors.append(str(found["id"]))
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
        if tag == "details":
            self._folded += 1
        if tag == "summary":
            self._folded -= 1
        if tag == "tr":
            self.rows.append([])
        if tag in {"td", "th"}:
            self.rows[-1].append("")
        if tag in {"td", "th", "pre"}:
            self._in = tag
        if tag == "pre":
            self.pre.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "summary":
            self._folded += 1
        if tag == "details":
            self._folded -= 1
        if tag in {"td", "th", "pre"}:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in in {"td", "th"} and not self._folded:
            self.rows[-1][-1] += data
        elif self._in == "pre":
            self.pre[-1] += data


def parse(markup: str) -> _Cells:
    """The cells and <pre> texts of *markup*."""
    parser = _Cells()
    parser.feed(markup)
    return parser


class TestValues:
    def test_clause_text(self) -> None:
        """A clause reads as its section then its title."""
        assert "§2.1, §2.2 retention 35 days" == str(RETENTION)

    def test_finding_needs_a_bool(self) -> None:
        """compliant must be True or False, not a truthy value."""
        with pytest.raises(TypeError):
            Finding(RETENTION, compliant="yes")  # type: ignore[arg-type]

    def test_clause_needs_a_key(self) -> None:
        """A clause without a key is refused with the standard message."""
        with pytest.raises(PolicyError, match="key: expected a non-empty string"):
            Clause("", "§1", "x")

    def test_report_needs_findings(self) -> None:
        """Findings must be Finding values."""
        with pytest.raises(PolicyError, match=r"findings\[0\]: expected a Finding"):
            ComplianceReport(policy="p", now=NOW, findings=["ok"])  # type: ignore[list-item]

    def test_subjects(self, report: ComplianceReport) -> None:
        """The subject is the target, the application, the period or the policy."""
        assert ["shop-db", "<script>alert('x')</script>", "2026-Q3"] == [
            f.subject for f in report.findings
        ]
        assert "application shop" == Finding(RETENTION, compliant=True, application="shop").subject
        assert "policy" == Finding(RETENTION, compliant=True).subject


class TestReport:
    def test_repr(self, report: ComplianceReport) -> None:
        """The repr counts the findings."""
        assert (
            "<backuppolicy.ComplianceReport(policy='web-apps', findings=3, compliant=1, not_compliant=2)>"
            == repr(report)
        )

    def test_queries(self, report: ComplianceReport) -> None:
        """ok, failures, clauses and of() slice the findings."""
        assert (False, 2, [RETENTION, QUARTERLY], 2) == (
            report.ok,
            len(report.failures),
            report.clauses,
            len(report.of("retention")),
        )

    def test_summary(self, report: ComplianceReport, monkeypatch: pytest.MonkeyPatch) -> None:
        """The text table has a title, a header and one row per finding, evidence shortened."""
        monkeypatch.setenv("COLUMNS", "200")
        lines = report.summary().splitlines()
        assert (
            "compliance of policy 'web-apps' at 2026-11-26T05:00:00+00:00: 1 of 3 findings compliant"
            == lines[0]
        )
        assert 6 == len(lines)
        assert "a, b, c (+2 more)" in lines[4]
        assert "NOT OK" in lines[4]

    @pytest.mark.parametrize("columns", [60, 80])
    def test_summary_fits_the_terminal(
        self, report: ComplianceReport, monkeypatch: pytest.MonkeyPatch, columns: int
    ) -> None:
        """The table wraps its cells to $COLUMNS (it was as wide as its longest detail)."""
        monkeypatch.setenv("COLUMNS", str(columns))
        text = report.summary()
        assert max(len(line) for line in text.splitlines()[1:]) <= columns
        assert "past" in text.split()  # wrapped, not cut

    def test_summary_failures_only(
        self, report: ComplianceReport, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """failures_only leaves the compliant findings out."""
        monkeypatch.setenv("COLUMNS", "200")
        assert 5 == len(report.summary(failures_only=True).splitlines())
        empty = ComplianceReport(policy="p", now=NOW, findings=())
        assert "(no findings to show)" == empty.summary().splitlines()[1]

    def test_json(self, report: ComplianceReport) -> None:
        """to_json is to_dict as JSON, with every finding and its full evidence."""
        data = json.loads(report.to_json())
        assert report.to_dict() == data
        assert {"findings": 3, "compliant": 1, "not_compliant": 2, "not_applicable": 0} == data[
            "counts"
        ]
        assert ["a", "b", "c", "d", "e"] == data["findings"][1]["evidence"]

    def test_csv(self, report: ComplianceReport, tmp_path: Path) -> None:
        """to_csv has one row per finding, evidence space-separated, also written to a file."""
        text = report.to_csv(tmp_path / "report.csv")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert ["true", "false", "false"] == [r["compliant"] for r in rows]
        assert "a b c d e" == rows[1]["evidence"]
        assert "2026-Q3" == rows[2]["period"]
        assert text == (tmp_path / "report.csv").read_text(encoding="utf-8")


class TestHtml:
    def test_values_escaped(self, report: ComplianceReport) -> None:
        """No value reaches the HTML unescaped."""
        markup = report._repr_html_()
        assert "<script>" not in markup
        assert html.escape("<script>alert('x')</script>") in markup

    def test_html_and_text_agree(self, report: ComplianceReport) -> None:
        """The HTML table shows exactly the text table's cells, and the fallback is the text."""
        parsed = parse(report._repr_html_())
        assert [list(r) for r in report.rows()] == parsed.rows[1:]
        assert ["clause", "subject", "tier", "result", "evidence", "detail"] == parsed.rows[0]
        assert [report.summary()] == parsed.pre

    def test_text_only_style(self, report: ComplianceReport) -> None:
        """With the text style the notebook shows the text table only, then HTML comes back."""
        with set_display_style("text"):
            parsed = parse(report._repr_html_())
            assert ([], [report.summary()]) == (parsed.rows, parsed.pre)
        assert "html" == display_style()
        assert parse(report._repr_html_()).rows

    def test_unknown_style(self) -> None:
        """Only html and text are styles."""
        with pytest.raises(PolicyError, match="style: expected 'html' or 'text'"):
            set_display_style("rich")

    def test_standalone_page(self, report: ComplianceReport, tmp_path: Path) -> None:
        """to_html writes a whole page with the table (and the plot when matplotlib is there)."""
        page = report.to_html(tmp_path / "report.html")
        assert page.startswith("<!DOCTYPE html>")
        assert page == (tmp_path / "report.html").read_text(encoding="utf-8")
        assert [list(r) for r in report.rows()] == parse(page).rows[1:]
        has_matplotlib = "matplotlib" in sys.modules or _importable("matplotlib")
        assert has_matplotlib == ("data:image/png;base64," in page)

    def test_page_without_plot(self, report: ComplianceReport) -> None:
        """plot=False leaves the figure out."""
        assert "<img" not in report.to_html(plot=False)


def _importable(name: str) -> bool:
    """Whether *name* can be imported."""
    try:
        __import__(name)
    except ImportError:
        return False
    return True


class TestOptionalExtras:
    def test_dataframe(self, report: ComplianceReport) -> None:
        """to_dataframe has one row per finding, compliant as bools and evidence as lists."""
        pytest.importorskip("pandas")
        frame = report.to_dataframe()
        assert [True, False, False] == frame["compliant"].tolist()
        assert ["a", "b", "c", "d", "e"] == frame["evidence"][1]
        assert "bool" == str(frame["compliant"].dtype)

    def test_dataframe_without_pandas(
        self, report: ComplianceReport, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without pandas the error says which extra to install."""
        monkeypatch.setitem(sys.modules, "pandas", None)
        with pytest.raises(BackendNotFoundError, match=r"pip install 'backuppolicy\[notebook\]'"):
            report.to_dataframe()

    def test_plot_without_matplotlib(
        self, points: list[RecoveryPoint], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without matplotlib the error says which extra to install."""
        monkeypatch.setitem(sys.modules, "matplotlib.dates", None)
        with pytest.raises(BackendNotFoundError, match=r"plot_coverage\(\) needs matplotlib"):
            plot_coverage(points)

    def test_plot_coverage_png(self, report: ComplianceReport, tmp_path: Path) -> None:
        """The coverage plot has a row per target and a legend entry per tier, and saves as PNG."""
        pytest.importorskip("matplotlib")
        figure = report.plot_coverage()
        (axes,) = figure.axes
        assert ["shop-config", "shop-db"] == [t.get_text() for t in axes.get_yticklabels()]
        labels = axes.get_legend_handles_labels()[1]
        assert ["local", "local failed", "legal hold", "offsite", "now"] == labels
        figure.savefig(tmp_path / "coverage.png")  # the Agg canvas: no display needed
        assert b"\x89PNG" == (tmp_path / "coverage.png").read_bytes()[:4]

    def test_plot_options(self, points: list[RecoveryPoint]) -> None:
        """targets= orders and filters the rows; include_versions adds S3 object versions."""
        pytest.importorskip("matplotlib")
        figure = plot_coverage(points, targets=["assets", "shop-db"], include_versions=True)
        labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
        assert ["assets", "shop-db"] == labels

    @pytest.mark.parametrize("days", [3, 10, 40, 400])
    def test_date_labels_do_not_overlap(self, days: int) -> None:
        """After drawing, no two x-axis date labels overlap, whatever the span of the points.

        Ten days of six targets in two tiers, with failed and held points (a legend beside the
        axes), made ten overlapping ``YYYY-MM-DD`` labels before.
        """
        pytest.importorskip("matplotlib")
        hold = LegalHold(reason="litigation")
        points = [
            RecoveryPoint(
                id=f"{target}-{tier}-{i}",
                target=target,
                tier=tier,
                created_at=NOW - timedelta(days=i, hours=5),
                status=Status.FAILED if i == 3 else Status.COMPLETED,
                legal_hold=hold if i == 5 else None,
            )
            for i in range(days)
            for target in ("shop-db", "blog-db", "web-server", "assets", "shop-config", "code")
            for tier in ("local", "offsite")
        ]
        figure = plot_coverage(points, now=NOW)
        figure.draw_without_rendering()  # lays the ticks and labels out
        boxes = [
            label.get_window_extent()
            for label in figure.axes[0].get_xticklabels()
            if label.get_visible() and label.get_text()
        ]
        assert len(boxes) >= 2
        overlapping = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]
        assert [] == overlapping


CLI_POLICY = """\
name: shop
schedule: {every: day, at: "04:00"}
retention: {max_age: 7d}
targets:
  - {name: db, kind: "testing:memory", application: shop}
"""


def _full_log(path: Path) -> None:
    """A testing log with every test and check the CLI policy needs."""
    from backuppolicy.core.results import CheckKind, CheckResult
    from backuppolicy.workflows.testlog import TestLog

    log = TestLog.open(path)
    for day in ("2025-12-15", "2026-02-15", "2026-05-15", "2026-08-15", "2026-08-20", "2026-08-25"):
        log.record(
            CheckResult(
                check="restore-test",
                status="pass",
                target="db",
                kind=CheckKind.RESTORE_TEST,
                checked_at=datetime.fromisoformat(day).replace(tzinfo=UTC),
            )
        )
    log.record(
        CheckResult(
            check="integrity",
            status="pass",
            target="db",
            kind=CheckKind.INTEGRITY,
            checked_at=NOW,
        )
    )
    log.record(CheckResult(check="not-public", status="pass", target="db", checked_at=NOW))


class TestCli:
    @pytest.fixture(name="run")
    def _run(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
        """Run ``backuppolicy`` in-process with the report commands and one MemoryTarget ``db``."""
        import backuppolicy.cli.main as cli
        from backuppolicy.core import registry
        from backuppolicy.testing import MemoryTarget

        db = MemoryTarget("db", policy="shop", clock=lambda: NOW)
        db.add_point(created_at=NOW - timedelta(hours=1))
        monkeypatch.setitem(registry._REGISTERED, "testing:memory", lambda **_: db)
        monkeypatch.delenv("BACKUPPOLICY_TESTLOG", raising=False)
        monkeypatch.setenv("COLUMNS", "200")  # one line per row; test_fits_80_columns wraps
        (tmp_path / "policy.yaml").write_text(CLI_POLICY)

        def run(*argv: str) -> tuple[int, str, str]:
            out, err = io.StringIO(), io.StringIO()
            base = ["--policy", str(tmp_path / "policy.yaml"), "--now", NOW.isoformat()]
            code = cli.main([argv[0], *base, *argv[1:]], out=out, err=err)
            return code, out.getvalue(), err.getvalue()

        return run

    def test_report_text_exit_1_when_not_compliant(self, run: Any) -> None:
        """Without a testing log restore tests have no evidence: the table says so, exit 1."""
        code, out, _ = run("report")
        assert 1 == code
        assert out.startswith("compliance of policy 'shop' at 2026-11-26T05:00:00+00:00:")
        lines = out.splitlines()
        (row,) = [line for line in lines if line.startswith("NOT OK  §3.3")]
        assert lines.index(row) < min(i for i, line in enumerate(lines) if line.startswith("ok "))
        assert [
            "NOT",
            "OK",
            "§3.3",
            "each",
            "application",
            "restore-tested",
            "yearly",
            "application",
            "shop",
        ] == (row.split()[:9])

    @pytest.mark.parametrize("columns", [80, 200])
    def test_report_fits_the_terminal(
        self, run: Any, monkeypatch: pytest.MonkeyPatch, columns: int
    ) -> None:
        """The table is as wide as $COLUMNS at most, failures first, evidence one id + count."""
        monkeypatch.setenv("COLUMNS", str(columns))
        _, out, _ = run("report")
        assert max(len(line) for line in out.splitlines()[1:]) <= columns
        assert out.splitlines()[3].startswith("NOT OK")

    def test_report_missing_log_is_an_error(self, run: Any, tmp_path: Path) -> None:
        """--log naming no file: exit 2 naming it (it was read as an empty log)."""
        missing = tmp_path / "missing.jsonl"
        code, out, err = run("report", "--log", str(missing))
        assert (2, "") == (code, out)
        assert f"backuppolicy: error: --log: no testing log at {missing}" in err
        assert not missing.exists()

    def test_report_since_adoption_leaves_earlier_quarters_out(self, run: Any) -> None:
        """--since DATE: quarters that ended before adoption are not failing findings."""
        _, before, _ = run("report", "--json")
        _, after, _ = run("report", "--json", "--since", "2026-11-01")
        quarters = [
            f
            for f in json.loads(before)["findings"]
            if f["key"] == "quarterly-restore-test" and not f["compliant"]
        ]
        assert quarters  # without --since the past quarters fail for want of a restore test
        assert [] == [
            f
            for f in json.loads(after)["findings"]
            if f["key"] == "quarterly-restore-test" and not f["compliant"]
        ]

    def test_report_verbose_shows_every_evidence_id(self, run: Any, tmp_path: Path) -> None:
        """Evidence is the first id and a count; -v shows them all, --json always has all."""
        _full_log(tmp_path / "log.jsonl")
        _, short, _ = run("report", "--log", str(tmp_path / "log.jsonl"))
        _, full, _ = run("report", "--log", str(tmp_path / "log.jsonl"), "-v")
        assert re.search(r" \+\d+ ", short)
        assert not re.search(r" \+\d+ ", full)

    def test_report_json_html_csv(self, run: Any, tmp_path: Path) -> None:
        """--json prints the report's dict; --html and --csv write their files."""
        code, out, _ = run(
            "report", "--json", "--html", str(tmp_path / "r.html"), "--csv", str(tmp_path / "r.csv")
        )
        data = json.loads(out)
        assert (1, "shop") == (code, data["policy"])
        assert data["counts"]["findings"] == len(
            (tmp_path / "r.csv").read_text(encoding="utf-8").splitlines()[1:]
        )
        assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

    def test_report_compliant_with_log(self, run: Any, tmp_path: Path) -> None:
        """With every test in the log the audit passes and exits 0."""
        _full_log(tmp_path / "log.jsonl")
        code, out, _ = run("report", "--log", str(tmp_path / "log.jsonl"), "--failures")
        assert (0, "(no findings to show)") == (code, out.splitlines()[1]), out

    def test_report_damaged_log_exit_1(
        self, run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A removed entry in the testing log is a non-compliant §3.5 finding: exit 1."""
        monkeypatch.setenv("COLUMNS", "1000")  # the detail quotes a long tmp path
        path = tmp_path / "log.jsonl"
        _full_log(path)
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join(lines[:2] + lines[3:]))
        code, out, _ = run("report", "--log", str(path), "--failures")
        (row,) = [line for line in out.splitlines() if line.startswith("NOT OK  §3.5")]
        assert 1 == code
        assert "the backup testing log is intact" in row
        assert f"{path}:3: chain-broken" in out


class TestReadableHtml:
    """The HTML report: what is not compliant first, linked evidence, not-applicable apart."""

    @pytest.fixture(name="logged")
    def _logged(self) -> ComplianceReport:
        entries = [
            LoggedCheck(f"e{i}", NOW, "shop-db", "restore-test", "fail", f"restore {i} failed")
            for i in range(5)
        ]
        return ComplianceReport(
            policy="web-apps",
            now=NOW,
            findings=(
                Finding(
                    RETENTION, compliant=True, target="shop-db", detail="nothing past the rule"
                ),
                Finding(
                    Clause("s3-versioning", "§7.1", "S3 versioning enabled"),
                    compliant=True,
                    not_applicable=True,
                    target="shop-db",
                    detail="not applicable: not a bucket",
                ),
                Finding(
                    QUARTERLY,
                    compliant=False,
                    period="2026-Q3",
                    evidence=("e0", "e1", "e2", "e3", "e4", "snap-1"),
                    detail="no passing restore test in 2026-Q3",
                ),
            ),
            log_entries=entries,
        )

    def test_the_summary_comes_before_the_table_one_sentence_per_failure(self, logged):
        """Failures are listed, one sentence each, before the table of every finding."""
        page = logged.to_html()
        summary = page.index("Not compliant (1)")
        assert summary < page.index("<table")
        sentence = (
            "§3.2 a restore test every quarter is not met for 2026-Q3: "
            "no passing restore test in 2026-Q3."
        )
        assert [sentence] == [f.sentence() for f in logged.failures]
        assert sentence in page[summary : page.index("<table")]

    def test_every_log_id_links_to_its_entry_in_the_same_page(self, logged):
        """Each evidence id that is a log entry is a link to an element of the page."""
        cells = parse(logged.to_html())
        wanted = [f"#{log_anchor(f'e{i}')}" for i in range(5)]
        assert wanted == cells.links
        assert {link[1:] for link in cells.links} <= set(cells.anchors)

    def test_ids_that_are_not_log_entries_are_not_links(self, logged):
        """A point id in the evidence is plain text, not a dangling link."""
        page = logged.to_html()
        assert "snap-1" in page
        assert "#log-snap-1" not in page

    def test_anchors_are_safe_for_odd_ids(self):
        """Log ids with spaces or quotes become valid, escaped anchors."""
        assert "log-a%27b%20c" == log_anchor("a'b c")

    def test_not_applicable_is_its_own_state(self, logged):
        """n/a is neither ok nor NOT OK, and is counted on its own."""
        assert ["ok", "n/a", "NOT OK"] == [row[3] for row in logged.rows()]
        assert {"findings": 3, "compliant": 1, "not_compliant": 1, "not_applicable": 1} == (
            logged.counts()
        )
        assert logged.title().endswith("1 of 2 findings compliant, 1 not applicable")
        assert "not_applicable=1" in repr(logged)
        assert "class='n-a'" in logged.to_html()
        assert "Not applicable (1)" in logged.to_html()

    def test_a_failing_finding_cannot_be_not_applicable(self):
        """not_applicable=True with compliant=False is a contradiction, refused."""
        with pytest.raises(PolicyError, match="not_applicable"):
            Finding(QUARTERLY, compliant=False, not_applicable=True)

    def test_html_and_text_agree_with_folded_evidence(self, logged):
        """The visible HTML cells are the text rows, with more than three ids folded away."""
        assert [list(r) for r in logged.rows()] == parse(logged._repr_html_()).rows[1:4]
