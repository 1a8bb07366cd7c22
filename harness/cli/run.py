"""`harness run`: its options, parsed into a RunRequest for the run session
(harness/session/run.py: plan, check the platform and the designs, run every trial, storing
each, then write the report of what was measured)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from harness.plan.config import PROFILES, RUN_HELP
from harness.plan.designs import DEFAULT_BIN_DIR, DEFAULT_REGISTRY

HELP = "plan and run a benchmark matrix, then write the report"


# `harness run --help` in groups, as wrk's and hyperfine's users read a long option list: what
# runs, how it is measured, where it runs, where results go. A plan flag not named here still
# appears, under "other options".
RUN_GROUPS: dict[str, tuple[str, ...]] = {
    "what runs": (
        "servers",
        "protocols",
        "cores",
        "connections",
        "connections-per-core",
        "size",
        "pipeline",
        "work",
        "hot-fraction",
        "hot-share",
        "requests-per-connection",
    ),
    "how it is measured": (
        "measure",
        "mode",
        "rates",
        "rate-sweep",
        "rate-fractions",
        "arrival",
        "duration",
        "warmup",
        "repeat",
        "timeout",
        "client-cpus",
        "seed",
    ),
    "other hosts (docs/multi-host.md)": (
        "server-host",
        "client-host",
        "remote-bin",
        "ssh-key",
        "known-hosts",
    ),
}
METAVARS = {
    "servers": "NAME[,NAME...]|all",
    "protocols": "echo|http[,...]",
    "cores": "N[,N...]",
    "connections": "N[,N...]",
    "connections-per-core": "N[,N...]",
    "size": "BYTES[,BYTES...]",
    "pipeline": "DEPTH[,DEPTH...]",
    "work": "DIST[,DIST...]",
    "hot-fraction": "F",
    "hot-share": "S",
    "requests-per-connection": "K",
    "measure": "auto|fixed-rate|server-bound|closed-loop|as-given",
    "mode": "closed|open",
    "rates": "RPS[,RPS...]",
    "rate-sweep": "F[,F...]",
    "rate-fractions": "F[,F...]",
    "arrival": "poisson|uniform",
    "duration": "S",
    "warmup": "S",
    "repeat": "N",
    "timeout": "S",
    "client-cpus": "N",
    "seed": "N",
    "server-host": "USER@HOST[:PORT]",
    "client-host": "USER@HOST[:PORT]",
    "remote-bin": "PATH",
    "ssh-key": "FILE",
    "known-hosts": "FILE",
}


def add_arguments(run: argparse.ArgumentParser) -> None:
    plans = _add_plan_sources(run)
    _add_plan_flags(run)
    _add_output(run)
    _add_checks(run)
    plans.add_argument(
        "--topology",
        type=Path,
        default=None,
        metavar="FILE",
        help="with --dry-run: plan on a saved topology (a run's manifest.json from another "
        "machine) instead of this one's",
    )


def _add_plan_sources(run: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    plans = run.add_argument_group("plans")
    plans.add_argument(
        "--profile",
        metavar="NAME",
        help="a named plan: " + ", ".join(sorted(p.stem for p in PROFILES.glob("*.toml"))),
    )
    plans.add_argument(
        "--plan", type=Path, metavar="FILE", help="a plan TOML file, or a run's manifest.json"
    )
    plans.add_argument(
        "--resume",
        type=Path,
        metavar="RESULTS_DIR",
        help="continue an interrupted run with its stored plan",
    )
    plans.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    return plans


def _add_plan_flags(run: argparse.ArgumentParser) -> None:
    """Every plan flag (plan/config.py's RUN_HELP), grouped as RUN_GROUPS says."""
    groups = {title: run.add_argument_group(title) for title in RUN_GROUPS}
    other = run.add_argument_group("other options")
    group_of = {flag: groups[title] for title, flags in RUN_GROUPS.items() for flag in flags}
    for flag, help_text in RUN_HELP.items():
        repeat = {"action": "append"} if flag == "client-host" else {}
        group_of.get(flag, other).add_argument(
            f"--{flag}",
            dest=flag.replace("-", "_"),
            default=None,
            metavar=METAVARS.get(flag, flag.replace("-", "_").upper()),
            help=help_text,
            **repeat,
        )


def _add_output(run: argparse.ArgumentParser) -> None:
    output = run.add_argument_group("output")
    output.add_argument(
        "--out", type=Path, default=Path("results"), metavar="DIR", help="results root directory"
    )
    output.add_argument(
        "--reports",
        type=Path,
        default=None,
        metavar="DIR",
        help="reports root directory (default: reports/ beside --out)",
    )


def _add_checks(run: argparse.ArgumentParser) -> None:
    checks = run.add_argument_group("checks and set-up")
    checks.add_argument(
        "--oversubscribe",
        action="store_true",
        default=None,
        help="run even when the machine has too few CPUs; trials are marked",
    )
    checks.add_argument(
        "--no-preflight",
        action="store_true",
        help="skip the conformance check of each design before measuring",
    )
    checks.add_argument(
        "--no-calibrate",
        action="store_true",
        help="skip the calibration (the client's capacity and each design's closed-loop "
        "capacity); --measure auto then plans the flags as given",
    )
    checks.add_argument(
        "--bin-dir",
        type=Path,
        default=DEFAULT_BIN_DIR,
        metavar="DIR",
        help="where the Rust binaries are (default: %(default)s)",
    )
    checks.add_argument(
        "--registry",
        type=Path,
        default=DEFAULT_REGISTRY,
        metavar="FILE",
        help="the designs' registry (default: %(default)s)",
    )


def run(args: argparse.Namespace, console: Console) -> int:
    from harness.session.run import RunRequest, run_session

    same = ("registry", "bin_dir", "out", "reports", "topology", "resume", "dry_run")
    request = RunRequest(
        options=args,
        **{name: getattr(args, name) for name in same},
        preflight=not args.no_preflight,
        calibrate=not args.no_calibrate,
        command=("harness", *sys.argv[1:]),
    )
    return run_session(request, console)
