"""The report step of a session: a stored run loaded and analysed once, then presented (the HTML
report and the exports beside it)."""

from __future__ import annotations

from pathlib import Path


def write_report(results_dir: Path, output: Path) -> Path:
    """The run analysed once, then drawn as the HTML report and written as the exports; the
    report's path."""
    from harness.analysis.analyse import analyse
    from harness.report import exports, html
    from harness.store import load_run

    analysis = analyse(load_run(results_dir))
    path = html.write_report(analysis, output)
    exports.write_exports(analysis, output.parent)
    return path
