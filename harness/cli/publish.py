"""`harness publish RUN_OR_BUNDLE... -o SITE/`: one static, self-contained site over runs from
many machines (docs/publish.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from harness.errors import HarnessError

HELP = "one static site over runs (directories or bundles) from many machines"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs", type=Path, nargs="+", help="run directories (results/<run-id>/) or bundles"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="the site's directory")


def run(args: argparse.Namespace, console: Console) -> int:
    from harness.analysis.across import ratios
    from harness.analysis.analyse import analyse
    from harness.report.bundle import is_bundle, open_bundle, scratch
    from harness.report.site import write_site
    from harness.store import load_run, load_run_manifest

    with scratch() as tmp:
        run_dirs = []
        for i, given in enumerate(args.runs):
            if is_bundle(given):
                run_dirs.append(open_bundle(given, Path(tmp) / str(i)))
            elif given.is_dir():
                run_dirs.append(given)
            else:
                raise HarnessError(
                    f"{given} is neither a run directory nor a bundle (.tar.gz from "
                    "`harness bundle`)"
                )
        seen: dict[str, Path] = {}
        for given, d in zip(args.runs, run_dirs, strict=True):
            manifest = load_run_manifest(d)  # one clear line for a directory that is no run
            run_id = str(manifest.get("run_id", d.name))
            if run_id in seen:
                raise HarnessError(
                    f"run {run_id} is given twice ({seen[run_id]} and {given}); give each once"
                )
            seen[run_id] = given
        analyses = (analyse(load_run(d)) for d in run_dirs)  # one run at a time
        index = write_site(analyses, ratios(run_dirs), args.output)
    console.print(str(index), highlight=False)
    return 0
