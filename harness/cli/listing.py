"""`harness list`: the server designs of the registry and whether they run here."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from harness.plan.designs import DEFAULT_BIN_DIR, DEFAULT_REGISTRY, load_registry

HELP = "list the server designs and whether they run here"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bin-dir", type=Path, default=DEFAULT_BIN_DIR)
    parser.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)


def run(args: argparse.Namespace, console: Console) -> int:
    for d in load_registry(args.registry).values():
        why = d.missing(args.bin_dir)
        state = "runnable" if why is None else f"not runnable: {why}"
        console.print(
            f"{d.name:<20} {d.family:<16} {d.io_model:<9} {','.join(d.protocols):<10} {state}",
            highlight=False,
        )
    return 0
