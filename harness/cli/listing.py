"""`harness list`: the server designs of the registry, their factors, whether they run here, and
the controlled pairs (two designs that differ in one factor only)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from harness.checks.runtime_needs import why_not_runnable
from harness.plan.designs import (
    DEFAULT_BIN_DIR,
    DEFAULT_REGISTRY,
    Design,
    controlled_pairs,
    load_registry,
)

HELP = "list the server designs, their factors, whether they run here, and controlled pairs"

_HEADER = (
    "DESIGN",
    "SCHEDULER",
    "ACCEPT",
    "IO",
    "RUNTIME",
    "MAINTENANCE",
    "CONCURRENCY",
    "STATE",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bin-dir", type=Path, default=DEFAULT_BIN_DIR)
    parser.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)


def state(design: Design, bin_dir: Path) -> str:
    """ "runnable", or "not runnable here: <why>" (a missing binary first, then an unmet need)."""
    why = design.missing(bin_dir) or why_not_runnable(design)
    return "runnable" if why is None else f"not runnable here: {why}"


def _runtime(design: Design) -> str:
    if design.runtime is None:
        return "-"
    version = design.runtime_version or "(version unknown)"
    if design.runtime == "none" and design.crate:  # a bare-syscall design: name its crate
        return f"none ({design.crate} {version})"
    return f"{design.runtime} {version}"


def rows(designs: list[Design], bin_dir: Path) -> list[tuple[str, ...]]:
    """One row per design, after the header; "-" marks an undeclared factor."""
    out = [_HEADER]
    for d in designs:
        out.append(
            (
                d.name,
                d.scheduler or "-",
                d.accept or "-",
                d.io or "-",
                _runtime(d),
                d.maintenance or "-",
                d.concurrency,
                state(d, bin_dir),
            )
        )
    return out


def run(args: argparse.Namespace, console: Console) -> int:
    designs = list(load_registry(args.registry).values())
    table = rows(designs, args.bin_dir)
    widths = [max(len(r[i]) for r in table) for i in range(len(_HEADER) - 1)]
    for r in table:
        cells = "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True))
        console.print(f"{cells}  {r[-1]}", highlight=False, soft_wrap=True)
    pairs = controlled_pairs(designs)
    console.print(f"\ncontrolled pairs ({len(pairs)}):", highlight=False)
    for p in pairs:
        console.print(
            f"  {p.a} -> {p.b}: {p.factor} ({p.a_value} -> {p.b_value})",
            highlight=False,
            soft_wrap=True,
        )
    return 0
