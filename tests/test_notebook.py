"""examples/audit.ipynb runs top to bottom in a fresh kernel and shows what it promises.

nbclient, nbformat and ipykernel are dev dependencies. Without them the tests are skipped with
the reason, except on CI (the ``CI`` environment variable is set, as CI services do), where they
fail: a notebook that is never run rots. The kernel is the ``python3`` kernelspec that
ipykernel installs into the environment (``<sys.prefix>/share/jupyter/kernels``), which
jupyter_client starts with this interpreter; a test checks that it did.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

NOTEBOOK = Path(__file__).parent.parent / "examples" / "audit.ipynb"
_PROBE = "import sys\nprint(sys.prefix)"  # appended to the notebook in memory
# Inserted in memory before the closing ``w.close()`` cell: what the demo world must show is the
# test's business, not the user's notebook.
_FACTS = """import json
print(json.dumps({
    "world_failures": list(w.failures),
    "not_ok": sorted(f"{f.clause.key}: {f.subject}" for f in report.failures),
    "restore_tests": sorted({e.status.value for e in w.log.entries(check="restore-test")}),
}))"""
_FACTS_MARK = "world_failures"


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def _require(name: str) -> ModuleType:
    """Import *name*; skip the test without it, or fail on CI."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        message = (
            f"running {NOTEBOOK.name} needs nbclient, nbformat and ipykernel (the dev extra): {exc}"
        )
        if _on_ci():
            pytest.fail(f"CI is set, so the notebook must run: {message}", pytrace=False)
        pytest.skip(message)


def _text(output: Any) -> str:
    """The text of one cell output: a stream's text or a result's text/plain."""
    if output["output_type"] == "stream":
        return str(output["text"])
    return str(output.get("data", {}).get("text/plain", ""))


def _cell(notebook: Any, contains: str) -> Any:
    """The code cell whose source contains *contains* (exactly one)."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and contains in c.source]
    return cell


# One kernel runs the notebook for the module's tests (on one xdist worker: tests/conftest.py).
pytestmark = pytest.mark.slow


@pytest.fixture(name="executed", scope="module")
def _executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The notebook after running every cell in a python3 kernel, in a temporary directory."""
    _require("ipykernel")
    nbformat = _require("nbformat")
    nbclient = _require("nbclient")

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    closing = next(
        i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and "w.close()" in c.source
    )
    notebook.cells.insert(closing, nbformat.v4.new_code_cell(_FACTS))
    notebook.cells.append(nbformat.v4.new_code_cell(_PROBE))
    workdir = tmp_path_factory.mktemp("notebook")
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on an error
    return notebook


class TestAuditNotebook:
    def test_is_a_valid_notebook_saved_without_outputs(self):
        """The committed notebook validates and carries no outputs (CI makes them)."""
        nbformat = _require("nbformat")
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        nbformat.validate(notebook)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert [([], None)] * len(code) == [(c.outputs, c.execution_count) for c in code]

    def test_every_cell_runs_without_error(self, executed):
        """Every code cell ran, in order, and none produced an error output."""
        code = [c for c in executed.cells if c.cell_type == "code"]
        errors = [o for c in code for o in c.outputs if o["output_type"] == "error"]
        assert [] == errors
        assert list(range(1, len(code) + 1)) == [c.execution_count for c in code]

    def test_the_kernel_ran_this_environment(self, executed):
        """The python3 kernel was this interpreter's environment, not some other Python."""
        (output,) = executed.cells[-1].outputs
        assert sys.prefix == _text(output).strip()

    def test_the_world_was_open_and_closed(self, executed):
        """The demo world was opened for 10 days without failures and closed at the end."""
        world = "".join(_text(o) for o in _cell(executed, "demo.open_world(").outputs)
        assert world.startswith("DemoWorld(policy=<backuppolicy.Policy(name='web-apps'")
        assert "failures=()" in world
        assert "w.close()" in executed.cells[-2].source  # the last cell of the notebook itself

    def test_shows_the_compliance_report_as_html_and_a_dataframe(self, executed):
        """The report renders as HTML; its findings become a DataFrame of failing rows."""
        (report,) = _cell(executed, "report = audit(").outputs
        assert "backuppolicy-report" in report["data"]["text/html"]
        assert "ComplianceReport(policy='web-apps'" in _text(report)
        (frame,) = _cell(executed, "report.to_dataframe()").outputs
        assert "<table" in frame["data"]["text/html"]

    def test_shows_the_coverage_plot_as_a_png(self, executed):
        """The coverage plot cell displays a PNG image."""
        outputs = _cell(executed, "report.plot_coverage()").outputs
        assert ["image/png"] == [k for o in outputs for k in o.get("data", {}) if k != "text/plain"]

    def test_lists_what_is_overdue(self, executed):
        """Looking back a year, the quarters before the world had no restore test."""
        printed = "".join(
            _text(o) for o in _cell(executed, "for finding in w.log.overdue(").outputs
        )
        assert "period-without-test" in printed

    def test_the_notebook_has_no_ci_assertions(self):
        """The committed notebook is what a user writes: no check cells for CI, no private imports."""
        nbformat = _require("nbformat")
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        sources = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
        assert [] == [w for w in ("raise ", "assert ", "workflows._") if w in sources]

    def test_the_demo_world_backs_up_copies_and_restore_tests(self, executed):
        """The world had no failures, the policy's core clauses hold and every restore test passed."""
        import json

        (output,) = _cell(executed, _FACTS_MARK).outputs
        facts = json.loads(_text(output))
        core = ("daily-backup", "offsite-copy", "application-restore-test", "rds-settings")
        assert [] == facts["world_failures"]
        assert [] == [n for n in facts["not_ok"] if n.split(":")[0] in core]
        assert ["pass"] == facts["restore_tests"]
