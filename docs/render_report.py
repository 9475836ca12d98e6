# ruff: noqa: INP001 - a script run by hand, not part of a package
"""Render the demo's HTML compliance report to docs/_static/report.png (a by-hand docs step).

Needs the demo extra and Chromium (Debian: ``apt-get install chromium``); CI does not run it.

    python docs/render_report.py              # runs an 8-day demo for the report
    python docs/render_report.py report.html  # renders an existing report

The window is a laptop screen (1366x900), so the picture shows what a reader sees first.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).parent / "_static" / "report.png"
WINDOW = "1366,900"


def main(argv: list[str]) -> int:
    """Render *argv[0]* (or a fresh demo report) to `OUT`; return the exit status."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.stderr.write("needs Chromium: apt-get install chromium\n")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        if argv:
            report = Path(argv[0]).resolve()
        else:
            from backuppolicy import demo  # noqa: PLC0415 - only when a demo is needed

            report = Path(tmp) / "report.html"
            demo.run(days=8, report_path=report, run_dir=Path(tmp) / "run")
        OUT.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603 - a fixed command line of a browser found on PATH
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--window-size={WINDOW}",
                f"--screenshot={OUT}",
                report.as_uri(),
            ],
            check=True,
            capture_output=True,
        )
    sys.stdout.write(f"{OUT} ({OUT.stat().st_size // 1024} KiB)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
