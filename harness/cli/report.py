"""`harness report`: the HTML report of a results directory, and the exports beside it."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from harness.session.report import write_report

HELP = "write the HTML report of a results directory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results_dir", type=Path)
    parser.add_argument(
        "-o", "--output", type=Path, default=None, help="default: reports/<run-id>/index.html"
    )


def run(args: argparse.Namespace, console: Console) -> int:
    from harness.store import load_run_manifest

    manifest = load_run_manifest(args.results_dir)
    output = args.output or (Path("reports") / manifest["run_id"] / "index.html")
    console.print(str(write_report(args.results_dir, output)), highlight=False)
    return 0
