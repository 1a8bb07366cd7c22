"""`harness repair DIR`: rebuild a run's tables (and a damaged manifest.json) from raw/, after a
full disk, an unwritable directory or a truncated file; says how many trials it recovered."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

HELP = "rebuild a run's tables and manifest from its raw/ files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results_dir", type=Path, help="a run directory, results/<run-id>/")


def run(args: argparse.Namespace, console: Console) -> int:
    from harness.store.files import resolve_run_dir
    from harness.store.repair import repair_run

    directory, note = resolve_run_dir(args.results_dir, "RESULTS_DIR")
    if note:
        console.print(note, highlight=False)
    report = repair_run(directory)
    for line in report.lines():
        console.print(f"{directory}: {line}", highlight=False)
    return 0
