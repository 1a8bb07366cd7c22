"""Command line: thin shells over the pipeline stages (plan -> run -> store -> analyse -> report).

Every user error becomes one line on stderr naming the problem and the fix, and exit code 2.
Run options come from, in increasing precedence: built-in defaults, a named profile
(`--profile quick|ci|full`) or a plan file (`--plan FILE.toml` or a run's manifest.json), and the
command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from harness import cpus as cpu_planning
from harness import doctor
from harness.designs import DEFAULT_BIN_DIR, DEFAULT_REGISTRY, Design, load_registry
from harness.errors import HarnessError
from harness.plan import RunConfig, make_plan, plan_from_dict, resolve_out, validate
from harness.topology import SYSFS_CPU, Topology, read_topology, restrict

EXIT_USAGE = 2
EXIT_TRIALS_FAILED = 1
EXIT_INTERRUPTED = 130
PROFILES = Path(__file__).resolve().parent / "profiles"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other bad input
        raise HarnessError(f"{message} (see `{self.prog} --help`)")


def _list_of(kind: Callable[[str], Any], flag: str, minimum: float | None = 1):
    def parse(text: str | list | int | float) -> tuple:
        items = text if isinstance(text, list) else str(text).split(",")
        try:
            values = tuple(kind(str(x).strip()) for x in items if str(x).strip())
        except ValueError:
            raise HarnessError(
                f"{flag} takes comma-separated {kind.__name__} values, "
                f"got {text!r}; e.g. {flag} 1,2,4"
            ) from None
        if not values or (minimum is not None and any(v < minimum for v in values)):
            raise HarnessError(
                f"{flag} values must be {minimum} or more, got {text!r}; e.g. {flag} 1,2,4"
            )
        return values

    return parse


def _names(text: str | list) -> tuple[str, ...]:
    items = text if isinstance(text, list) else str(text).split(",")
    return tuple(str(x).strip() for x in items if str(x).strip())


def _scalar(kind: Callable[[str], Any], flag: str):
    def parse(text: Any) -> Any:
        try:
            return kind(text)
        except (TypeError, ValueError):
            raise HarnessError(f"{flag} takes a {kind.__name__}, got {text!r}") from None

    return parse


# flag -> (RunConfig field, parser, default). The plan file uses the flag names without "--".
RUN_OPTIONS: dict[str, tuple[str, Callable[[Any], Any], Any]] = {
    "servers": ("servers", _names, None),
    "protocols": ("protocols", _names, ("echo",)),
    "cores": ("cores", _list_of(int, "--cores"), None),
    "connections": ("connections", _list_of(int, "--connections"), (64,)),
    "size": ("sizes", _list_of(int, "--size"), (64,)),
    "duration": ("duration_s", _scalar(float, "--duration"), 10.0),
    "warmup": ("warmup_s", _scalar(float, "--warmup"), 2.0),
    "repeat": ("repeat", _scalar(int, "--repeat"), 3),
    "timeout": ("timeout_s", _scalar(float, "--timeout"), 2.0),
    "client-cpus": ("client_cpus", _scalar(int, "--client-cpus"), None),
    "seed": ("seed", _scalar(int, "--seed"), None),
    "mode": ("mode", str, "closed"),
    "rates": ("rates", _list_of(float, "--rates", None), ()),
    "rate-sweep": ("rate_sweep", _list_of(float, "--rate-sweep", None), ()),
    "arrival": ("arrival", str, "poisson"),
    "pipeline": ("pipeline", _list_of(int, "--pipeline"), (1,)),
    "work": ("works", _names, ("none",)),
    "hot-fraction": ("hot_fraction", _scalar(float, "--hot-fraction"), None),
    "hot-share": ("hot_share", _scalar(float, "--hot-share"), None),
    "requests-per-connection": (
        "requests_per_connection",
        _scalar(int, "--requests-per-connection"),
        None,
    ),
}
RUN_HELP = {
    "servers": "comma-separated designs, or 'all' (default: the registry's default ones)",
    "protocols": "echo and/or http (default: echo)",
    "cores": "server core counts, e.g. 1,2,4 (default: powers of two that fit)",
    "connections": "connection counts (default: 64)",
    "size": "echo message sizes in bytes (default: 64)",
    "duration": "measured seconds per trial (default: 10)",
    "warmup": "discarded seconds per trial (default: 2)",
    "repeat": "repetitions per configuration (default: 3)",
    "timeout": "load-generator request timeout in seconds (default: 2)",
    "client-cpus": "load-generator CPUs (default: 4 per server core, capped by free CPUs)",
    "seed": "shuffle the design order in each group; also seeds arrivals and server work",
    "mode": "closed (default) or open loop",
    "rates": "open loop: offered requests per second, e.g. 10000,50000",
    "rate-sweep": "open loop: fractions of each configuration's measured capacity, e.g. 0.5,0.9",
    "arrival": "open loop: poisson (default) or uniform",
    "pipeline": "requests outstanding per connection (default: 1)",
    "work": "server CPU burn per request: none, fixed:US, exp:MEAN_US, bimodal:US1:US2:P2, "
    "lognormal:MEDIAN_US:SIGMA (comma-separated for several)",
    "hot-fraction": "skew: this fraction of connections carries --hot-share of the load",
    "hot-share": "skew: the share of requests (open) or pipeline depth (closed) they carry",
    "requests-per-connection": "churn: reconnect after this many requests (1: every request)",
}


def machine_topology() -> Topology:
    root = Path(os.environ.get("HARNESS_SYSFS_CPU", SYSFS_CPU))
    topo = read_topology(root)
    return topo if "HARNESS_SYSFS_CPU" in os.environ else restrict(topo, os.sched_getaffinity(0))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="harness", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="plan and run a benchmark matrix, then write the report")
    for flag, help_text in RUN_HELP.items():
        run.add_argument(f"--{flag}", dest=flag.replace("-", "_"), default=None, help=help_text)
    run.add_argument(
        "--profile",
        help="a named plan: " + ", ".join(sorted(p.stem for p in PROFILES.glob("*.toml"))),
    )
    run.add_argument("--plan", type=Path, help="a plan TOML file, or a run's manifest.json")
    run.add_argument(
        "--resume",
        type=Path,
        metavar="RESULTS_DIR",
        help="continue an interrupted run with its stored plan",
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
        default=None,
        help="run even when the machine has too few CPUs; trials are marked",
    )
    run.add_argument(
        "--no-preflight",
        action="store_true",
        help="skip the conformance check of each design before measuring",
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

    doc = sub.add_parser("doctor", help="check the platform for benchmarking (like pyperf)")
    doc.add_argument("--bin-dir", type=Path, default=DEFAULT_BIN_DIR)
    doc.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    doc.add_argument("--json", action="store_true", help="print the checks as JSON")

    try:
        from harness import compare
    except ImportError:  # pragma: no cover - compare is optional while it is being written
        compare = None  # type: ignore[assignment]
    if compare is not None:
        compare.add_arguments(sub.add_parser("compare", help="compare two runs"))
    return parser


def _plan_file_options(args: argparse.Namespace) -> tuple[dict[str, Any], str | None]:
    """Options from --profile or --plan, as {flag: value}; and the source, for the manifest."""
    if args.profile and args.plan:
        raise HarnessError("--profile and --plan both name a plan; give one")
    path = args.plan
    if args.profile:
        path = PROFILES / f"{args.profile}.toml"
        if not path.is_file():
            names = ", ".join(sorted(p.stem for p in PROFILES.glob("*.toml")))
            raise HarnessError(f"unknown profile {args.profile!r}; profiles: {names}")
    if path is None:
        return {}, None
    try:
        text = path.read_text()
    except OSError as exc:
        raise HarnessError(f"cannot read --plan {path}: {exc.strerror}") from exc
    if path.suffix == ".json":  # a manifest: its resolved configuration, exactly
        try:
            config = json.loads(text)["plan"]["config"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise HarnessError(f"{path} is not a run manifest (no plan.config)") from None
        by_field = {f: flag for flag, (f, _, _) in RUN_OPTIONS.items()}
        options = {by_field[k]: v for k, v in config.items() if k in by_field}
        options["oversubscribe"] = config.get("oversubscribe", False)
        return options, str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"{path} is not valid TOML: {exc}") from exc
    options = {k.replace("_", "-"): v for k, v in data.items()}
    unknown = sorted(set(options) - set(RUN_OPTIONS) - {"oversubscribe"})
    if unknown:
        raise HarnessError(
            f"{path}: unknown option(s) {', '.join(unknown)}; known: {', '.join(RUN_OPTIONS)}"
        )
    return options, str(path)


def run_config(
    args: argparse.Namespace, designs: dict[str, Design], topology: Topology
) -> tuple[RunConfig, str | None]:
    file_options, source = _plan_file_options(args)
    values: dict[str, Any] = {}
    for flag, (field, parse, default) in RUN_OPTIONS.items():
        given = getattr(args, flag.replace("-", "_"))
        raw = given if given is not None else file_options.get(flag)
        values[field] = default if raw is None else parse(raw)
    if values["servers"] is None:
        values["servers"] = tuple(n for n, d in designs.items() if d.default)
    elif values["servers"] == ("all",):
        values["servers"] = tuple(designs)
    if values["cores"] is None:
        values["cores"] = tuple(cpu_planning.default_core_counts(topology))
    oversubscribe = (
        args.oversubscribe
        if args.oversubscribe is not None
        else bool(file_options.get("oversubscribe", False))
    )
    return RunConfig(oversubscribe=oversubscribe, **values), source


def _not_runnable(
    config: RunConfig, designs: dict[str, Design], bin_dir: Path, explicit: bool
) -> dict[str, str]:
    """Designs that cannot run here: an error when named explicitly, left out with `all`."""
    reasons = {n: why for n in config.servers if (why := designs[n].missing(bin_dir))}
    if reasons and explicit:
        name, why = next(iter(reasons.items()))
        raise HarnessError(f"design {name} cannot run here: {why}")
    return reasons


def _preflight(
    config: RunConfig, designs: dict[str, Design], bin_dir: Path, cpus: str, console: Console
) -> dict[str, str]:
    """Quick conformance of every design and protocol: a design doing different work than the
    others cannot be compared. Returns {design: reason} for the failures."""
    try:
        from harness import conformance
    except ImportError:  # pragma: no cover - while conformance is being written
        return {}
    refused: dict[str, str] = {}
    for name in config.servers:
        for proto in config.protocols:
            if proto not in designs[name].protocols:
                continue
            failures = [
                c
                for c in conformance.quick_check(designs[name], proto, bin_dir, cpus)
                if not c.passed
            ]
            if failures:
                refused[name] = f"{proto}: " + "; ".join(f"{c.name}: {c.reason}" for c in failures)
                break
    if refused:
        for name, why in refused.items():
            console.print(
                f"refused {name}: failed conformance ({why})", style="red", highlight=False
            )
    return refused


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from harness import platform as platform_info
    from harness.execute import execute, new_manifest, new_run_id, resume_state
    from harness.store import RunStore, load_run

    designs = load_registry(args.registry)
    topology = machine_topology()
    if args.resume:
        run = load_run(args.resume)
        plan = plan_from_dict(run.manifest["plan"])
        store = RunStore.reopen(args.resume)
        done, capacities = resume_state(store)
        manifest = run.manifest
        now = datetime.now(UTC).isoformat(timespec="seconds")
        manifest.setdefault("resumed_at", []).append(now)
        out_root = args.resume.resolve().parent
        console.print(
            f"resuming {run.manifest['run_id']}: {len(plan.trials) - len(done)} of "
            f"{len(plan.trials)} trials left",
            highlight=False,
        )
    else:
        config, source = run_config(args, designs, topology)
        explicit = args.servers not in (None, "all") and args.profile is None
        validate(config, designs)
        skipped = _not_runnable(config, designs, args.bin_dir, explicit)
        if skipped:
            for name, why in skipped.items():
                console.print(f"leaving out {name}: {why}", style="yellow", highlight=False)
            config = RunConfig(
                **{**vars(config), "servers": tuple(s for s in config.servers if s not in skipped)}
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
        checks = doctor.run_checks(
            doctor.Context(
                designs=[(n, designs[n].missing(args.bin_dir)) for n in config.servers],
                needed_fds=max(config.connections) + 64,
                connections=max(config.connections),
            )
        )
        if doctor.has_errors(checks):
            console.print(doctor.format_table(checks), highlight=False)
            errors = [c for c in checks if c.status == doctor.Status.ERROR]
            raise HarnessError(
                f"the platform check failed ({errors[0].name}: {errors[0].value}); "
                f"fix: {errors[0].fix}"
            )
        for c in checks:
            if c.status == doctor.Status.WARNING:
                console.print(
                    f"warning: {c.name}: {c.value} ({c.fix})", style="yellow", highlight=False
                )
        refused: dict[str, str] = {}
        if not args.no_preflight:
            first = plan.trials[0].cpus.server if plan.trials else (0,)
            refused = _preflight(config, designs, args.bin_dir, str(first[0]), console)
            if refused and explicit:
                name, why = next(iter(refused.items()))
                raise HarnessError(
                    f"design {name} failed conformance ({why}); fix the server "
                    "or leave it out of --servers"
                )
            if refused:
                config = RunConfig(
                    **{
                        **vars(config),
                        "servers": tuple(s for s in config.servers if s not in refused),
                    }
                )
                plan = make_plan(config, topology, designs)
        run_id = new_run_id(out_root)
        store = RunStore(out_root / run_id)
        manifest = new_manifest(
            run_id,
            plan,
            designs,
            ["harness", *sys.argv[1:]],
            platform_info.collect(topology),
            {
                "bin_dir": str(args.bin_dir),
                "plan_source": source,
                "doctor": doctor.to_dicts(checks),
                "left_out": {**skipped, **refused},
                "preflight": not args.no_preflight,
            },
        )
        done, capacities = set(), {}
        console.print(
            f"{len(plan.trials)} trials, about {plan.estimated_seconds():.0f} s; "
            f"results in {out_root / run_id}/",
            highlight=False,
        )
    outcome = execute(
        plan,
        designs,
        store=store,
        manifest=manifest,
        bin_dir=args.bin_dir,
        console=console,
        skip=done,
        capacities=capacities,
    )
    reports_root = args.reports or out_root.resolve().parent / "reports"
    path = _write_report(outcome.directory, reports_root / outcome.run_id / "index.html")
    console.print(f"results: {outcome.directory}", highlight=False)
    console.print(f"report:  {path}", highlight=False)
    if outcome.interrupted:
        console.print(
            "interrupted: the trials measured so far are stored; continue with "
            f"harness run --resume {outcome.directory}",
            style="yellow",
            highlight=False,
        )
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


def _write_report(results_dir: Path, output: Path) -> Path:
    from harness import report
    from harness.store import load_run

    run = load_run(results_dir)
    path = report.write_report(run, output)
    if hasattr(report, "write_exports"):
        report.write_exports(run, output.parent)
    return path


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from harness.store import load_run

    run = load_run(args.results_dir)
    output = args.output or (Path("reports") / run.manifest["run_id"] / "index.html")
    console.print(str(_write_report(args.results_dir, output)), highlight=False)
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


def cmd_doctor(args: argparse.Namespace, console: Console) -> int:
    designs = load_registry(args.registry)
    checks = doctor.run_checks(
        doctor.Context(designs=[(d.name, d.missing(args.bin_dir)) for d in designs.values()])
    )
    if args.json:
        print(json.dumps(doctor.to_dicts(checks), indent=2))
    else:
        console.print(doctor.format_table(checks), highlight=False)
    return EXIT_USAGE if doctor.has_errors(checks) else 0


def main(argv: list[str] | None = None) -> int:
    console = Console(soft_wrap=True)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "compare":
            from harness import compare

            return compare.run(args, console)
        handler = {"run": cmd_run, "report": cmd_report, "list": cmd_list, "doctor": cmd_doctor}[
            args.command
        ]
        return handler(args, console)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
