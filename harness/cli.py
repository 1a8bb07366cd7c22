"""Command line: thin shells over the pipeline stages (plan -> run -> store -> analyse -> report).

Every user error becomes one line on stderr naming the problem and the fix, and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from harness import cpus as cpu_planning
from harness.designs import DEFAULT_BIN_DIR, DEFAULT_REGISTRY, load_registry
from harness.errors import HarnessError
from harness.execute import execute
from harness.plan import RunConfig, make_plan, resolve_out
from harness.report import write_report
from harness.store import load_run
from harness.topology import SYSFS_CPU, Topology, read_topology, restrict

EXIT_USAGE = 2
EXIT_TRIALS_FAILED = 1
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other bad input
        raise HarnessError(f"{message} (see `{self.prog} --help`)")


def _int_list(flag: str):
    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(x) for x in text.split(",") if x.strip())
        except ValueError:
            raise HarnessError(
                f"{flag} takes comma-separated whole numbers, got {text!r}; e.g. {flag} 1,2,4"
            ) from None
        if not values or any(v < 1 for v in values):
            raise HarnessError(f"{flag} values must be 1 or more, got {text!r}; e.g. {flag} 1,2,4")
        return values

    return parse


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def machine_topology() -> Topology:
    root = Path(os.environ.get("HARNESS_SYSFS_CPU", SYSFS_CPU))
    topo = read_topology(root)
    return topo if "HARNESS_SYSFS_CPU" in os.environ else restrict(topo, os.sched_getaffinity(0))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="plan and run a benchmark matrix, then write the report")
    run.add_argument(
        "--cores",
        type=_int_list("--cores"),
        default=None,
        help="server core counts, e.g. 1,2,4 (default: powers of two that fit)",
    )
    run.add_argument(
        "--servers",
        type=_names,
        default=None,
        help="comma-separated designs, or 'all' (default: all)",
    )
    run.add_argument("--protocols", type=_names, default=("echo",), help="default: echo")
    run.add_argument("--connections", type=_int_list("--connections"), default=(64,))
    run.add_argument(
        "--size", type=_int_list("--size"), default=(64,), help="echo message sizes in bytes"
    )
    run.add_argument("--duration", type=float, default=10.0, help="measured seconds per trial")
    run.add_argument("--warmup", type=float, default=2.0, help="discarded seconds per trial")
    run.add_argument("--repeat", type=int, default=3, help="repetitions per configuration")
    run.add_argument(
        "--client-cpus",
        type=int,
        default=None,
        help="load-generator CPUs (default: 4 per server core, capped by free CPUs)",
    )
    run.add_argument("--out", type=Path, default=Path("results"), help="results root directory")
    run.add_argument(
        "--reports",
        type=Path,
        default=None,
        help="reports root directory (default: reports/ beside --out)",
    )
    run.add_argument(
        "--oversubscribe",
        action="store_true",
        help="run even when the machine has too few CPUs; trials are marked",
    )
    run.add_argument(
        "--seed",
        type=int,
        default=None,
        help="shuffle the design order inside each group with this seed",
    )
    run.add_argument("--bin-dir", type=Path, default=DEFAULT_BIN_DIR)
    run.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    run.add_argument("--dry-run", action="store_true", help="print the plan and exit")

    report = sub.add_parser("report", help="write the HTML report of a results directory")
    report.add_argument("results_dir", type=Path)
    report.add_argument(
        "-o", "--output", type=Path, default=None, help="default: reports/<run-id>/index.html"
    )

    lst = sub.add_parser("list", help="list the server designs and whether they run here")
    lst.add_argument("--bin-dir", type=Path, default=DEFAULT_BIN_DIR)
    lst.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    return parser


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    designs = load_registry(args.registry)
    topology = machine_topology()
    servers = tuple(designs) if args.servers in (None, ("all",)) else args.servers
    cores = args.cores or tuple(cpu_planning.default_core_counts(topology))
    config = RunConfig(
        servers=servers,
        protocols=args.protocols,
        cores=cores,
        connections=args.connections,
        sizes=args.size,
        duration_s=args.duration,
        warmup_s=args.warmup,
        repeat=args.repeat,
        oversubscribe=args.oversubscribe,
        client_cpus=args.client_cpus,
        seed=args.seed,
    )
    plan = make_plan(config, topology, designs)
    if args.dry_run:
        for t in plan.trials:
            flag = " OVERSUBSCRIBED" if t.cpus.oversubscribed else ""
            console.print(
                f"{t.trial_id}: server cpus {list(t.cpus.server)} client cpus "
                f"{list(t.cpus.client[: t.client_threads])}{flag}",
                highlight=False,
            )
        console.print(f"{len(plan.trials)} trials, about {plan.estimated_seconds():.0f} s")
        return 0
    out_root = resolve_out(args.out)
    console.print(
        f"{len(plan.trials)} trials, about {plan.estimated_seconds():.0f} s; "
        f"results in {out_root}/",
        highlight=False,
    )
    outcome = execute(
        plan,
        designs,
        out_root=out_root,
        bin_dir=args.bin_dir,
        command=["harness", *sys.argv[1:]],
        topology=topology,
        console=console,
    )
    reports_root = args.reports or out_root.resolve().parent / "reports"
    path = write_report(load_run(outcome.directory), reports_root / outcome.run_id / "index.html")
    console.print(f"results: {outcome.directory}", highlight=False)
    console.print(f"report:  {path}", highlight=False)
    if outcome.interrupted:
        console.print("interrupted: the trials measured so far are stored", style="yellow")
        return EXIT_INTERRUPTED
    if outcome.failed:
        console.print(
            f"{len(outcome.failed)} of {len(outcome.results)} trials failed: "
            + ", ".join(r.spec.trial_id for r in outcome.failed),
            style="red",
            highlight=False,
        )
        return EXIT_TRIALS_FAILED
    return 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    run = load_run(args.results_dir)
    output = args.output or (Path("reports") / run.manifest["run_id"] / "index.html")
    console.print(str(write_report(run, output)), highlight=False)
    return 0


def cmd_list(args: argparse.Namespace, console: Console) -> int:
    for d in load_registry(args.registry).values():
        why = d.missing(args.bin_dir)
        state = "runnable" if why is None else f"not runnable: {why}"
        console.print(
            f"{d.name:<20} {d.family:<16} {d.io_model:<9} {','.join(d.protocols):<10} {state}",
            highlight=False,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    console = Console(soft_wrap=True)
    try:
        args = build_parser().parse_args(argv)
        handler = {"run": cmd_run, "report": cmd_report, "list": cmd_list}[args.command]
        return handler(args, console)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
