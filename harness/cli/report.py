"""`harness report`: the HTML report of a results directory, and the exports beside it."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

HELP = "write the HTML report of a results directory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results_dir", type=Path)
    parser.add_argument(
        "-o", "--output", type=Path, default=None, help="default: reports/<run-id>/index.html"
    )


def write_report(results_dir: Path, output: Path) -> Path:
    """The run analysed once, then drawn as the HTML report and written as the exports."""
    from harness.analysis.analyse import analyse
    from harness.report import exports, html
    from harness.store import load_run

    run = load_run(results_dir)
    analysis = analyse(run)
    path = html.write_report(analysis, output)
    exports.write_exports(analysis, output.parent)
    return path


def run(args: argparse.Namespace, console: Console) -> int:
    from harness.store import load_run_manifest

    manifest = load_run_manifest(args.results_dir)
    output = args.output or (Path("reports") / manifest["run_id"] / "index.html")
    console.print(str(write_report(args.results_dir, output)), highlight=False)
    return 0
