"""`harness doctor`: the platform checks (like pyperf's `system show`); exit 2 on an error."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from harness.checks import doctor
from harness.checks.runtime_needs import NeedStatus, machine_needs
from harness.plan.designs import DEFAULT_BIN_DIR, DEFAULT_REGISTRY, Design, load_registry

HELP = "check the platform for benchmarking (like pyperf)"
EXIT_ERRORS = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bin-dir", type=Path, default=DEFAULT_BIN_DIR)
    parser.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")


def run(args: argparse.Namespace, console: Console) -> int:
    designs = load_registry(args.registry)
    checks = doctor.run_checks(
        doctor.Context(designs=[(d.name, d.missing(args.bin_dir)) for d in designs.values()])
    )
    if args.json:
        print(json.dumps(doctor.to_dicts(checks), indent=2))
    else:
        console.print(doctor.format_table(checks), highlight=False)
        console.print(format_needs(list(designs.values())), highlight=False, soft_wrap=True)
    return EXIT_ERRORS if doctor.has_errors(checks) else 0


def format_needs(designs: list[Design]) -> str:
    """What the designs' runtimes need from this machine (io_uring, memlock, kernel): one line
    per distinct check with what it saw and who needs it, then the fix of each unmet one."""
    lines = ["", "what the designs' runtimes need from this machine:"]
    for need in machine_needs(designs):
        r = need.result
        lines.append(f"  {r.status.value:<8} {r.need:<9} {r.seen}  (for {', '.join(need.designs)})")
        if r.status is NeedStatus.PROBLEM:
            lines.append(f"           {r.problem}; fix: {r.fix or 'see the runtime docs'}")
    return "\n".join(lines)
