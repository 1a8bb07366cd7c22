"""`harness bundle RESULTS_DIR`: one archive of a run (manifest, tables, raw/, report) to send
or attach; `harness publish` reads it back (docs/publish.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

HELP = "archive a run (manifest, tables, raw/, report) as one .tar.gz"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results_dir", type=Path, help="a run directory, results/<run-id>/")
    parser.add_argument(
        "-o", "--output", type=Path, default=None, help="default: <run-id>.tar.gz here"
    )


def run(args: argparse.Namespace, console: Console) -> int:
    from harness.report.bundle import SUFFIX, scratch, write_bundle
    from harness.session.report import write_report
    from harness.store import load_run_manifest
    from harness.store.files import resolve_run_dir

    directory, note = resolve_run_dir(args.results_dir, "RESULTS_DIR")
    if note:
        console.print(note, highlight=False)
    manifest = load_run_manifest(directory)
    output = args.output or Path(f"{manifest['run_id']}{SUFFIX}")
    with scratch() as tmp:
        report = Path(tmp) / "report"
        write_report(directory, report / "index.html")
        path = write_bundle(directory, output, report)
    console.print(str(path), highlight=False)
    return 0
