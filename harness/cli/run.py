"""`harness run`: plan, check the platform and the designs, run every trial (storing each),
then write the report of what was measured."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from harness.checks import doctor
from harness.checks.runtime_needs import why_not_runnable
from harness.errors import HarnessError
from harness.plan.config import PROFILES, RUN_HELP, machine_topology, run_config
from harness.plan.designs import DEFAULT_BIN_DIR, DEFAULT_REGISTRY, Design, load_registry
from harness.plan.measure import capacity_config, floor_summary, needs_calibration, uncalibrated
from harness.plan.plan import RunConfig, make_plan, plan_from_dict, resolve_out, validate

HELP = "plan and run a benchmark matrix, then write the report"
EXIT_TRIALS_FAILED = 1
EXIT_INTERRUPTED = 130


# `harness run --help` in groups, as wrk's and hyperfine's users read a long option list: what
# runs, how it is measured, where it runs, where results go. A plan flag not named here still
# appears, under "other options".
RUN_GROUPS: dict[str, tuple[str, ...]] = {
    "what runs": (
        "servers",
        "protocols",
        "cores",
        "connections",
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


def _not_runnable(
    config: RunConfig, designs: dict[str, Design], bin_dir: Path, explicit: bool
) -> dict[str, str]:
    """Designs that cannot run here (no binary, or a need of its runtime the machine does not
    meet): an error when named explicitly, left out with `all`."""
    reasons = {
        n: why
        for n in config.servers
        if (why := designs[n].missing(bin_dir) or why_not_runnable(designs[n]))
    }
    if reasons and explicit:
        name, why = next(iter(reasons.items()))
        raise HarnessError(f"design {name} cannot run here: {why}")
    return reasons


def _preflight(
    config: RunConfig, designs: dict[str, Design], bin_dir: Path, cpus: str, console: Console
) -> dict[str, str]:
    """Quick conformance of every design and protocol: a design doing different work than the
    others cannot be compared. Returns {design: reason} for the failures."""
    from harness.checks import conformance

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


def run(args: argparse.Namespace, console: Console) -> int:
    # The heavy stages (pandas, pyarrow, matplotlib) load only when a run is really made.
    from harness.cli import hosts as hosts_cli
    from harness.cli.report import write_report
    from harness.run import platform as platform_info
    from harness.run.calibration import calibrate
    from harness.run.execute import execute
    from harness.store import RunStore, load_run
    from harness.store.manifest import new_manifest, new_run_id, resume_state

    designs = load_registry(args.registry)
    topology = machine_topology()
    session = None  # several hosts: a run.multihost.HostSession (docs/multi-host.md)
    if args.resume:
        from harness.store.repair import repair_run

        repaired = repair_run(args.resume)  # tables a failed write or a damaged file left short
        if repaired.changed or repaired.lost or repaired.damaged_records:
            for line in repaired.lines():
                console.print(f"{args.resume}: {line}", style="yellow", highlight=False)
        run = load_run(args.resume)
        plan = plan_from_dict(run.manifest["plan"])
        store = RunStore.reopen(args.resume)
        done, capacities = resume_state(store)
        manifest = run.manifest
        now = datetime.now(UTC).isoformat(timespec="seconds")
        manifest.setdefault("resumed_at", []).append(now)
        out_root = args.resume.resolve().parent
        if hosts_cli.is_multihost(plan.config):
            session, _, _ = hosts_cli.open_hosts(
                plan.config, designs, args.bin_dir, console, plan=plan
            )
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
        hosts_info: dict = {}
        if hosts_cli.is_multihost(config):  # calibration runs here: not across hosts (yet)
            config = hosts_cli.canonical(hosts_cli.without_calibration(config, console))
        calibrating = needs_calibration(config)
        if hosts_cli.is_multihost(config):
            session, plan, hosts_info = hosts_cli.open_hosts(
                config, designs, args.bin_dir, console, dry_run=args.dry_run
            )
        else:
            plan = make_plan(config, topology, designs)
        if args.dry_run:
            if calibrating:
                cal_plan = make_plan(capacity_config(config), topology, designs)
                console.print(
                    f"--measure {config.measure}: calibration first ({len(cal_plan.trials)} "
                    "closed-loop capacity trial(s), then the load generator's open-loop ramp); "
                    "it chooses the mode and rates of the trials below (shown closed loop)",
                    highlight=False,
                )
            for t in plan.trials:
                flag = " OVERSUBSCRIBED" if t.cpus.oversubscribed else ""
                console.print(
                    f"{t.trial_id}: server cpus {list(t.cpus.server)} client cpus "
                    f"{list(t.cpus.client[: t.client_threads])}{flag}"
                    + (f" ({t.cpus.note})" if hosts_info else ""),
                    highlight=False,
                )
            console.print(f"{len(plan.trials)} trials, about {plan.estimated_seconds():.0f} s")
            return 0
        out_root = resolve_out(args.out)
        checks = (
            []
            if session is not None
            else doctor.run_checks(  # hosts: checked each
                doctor.Context(
                    designs=[(n, designs[n].missing(args.bin_dir)) for n in config.servers],
                    needed_fds=max(config.connections) + 64,
                    connections=max(config.connections),
                )
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
        run_id = new_run_id(out_root)
        command = ["harness", *sys.argv[1:]]
        platform = platform_info.collect(topology)
        calibration: dict[str, object] = {"calibrated": False}
        if calibrating:
            cal = calibrate(
                config,
                topology,
                designs,
                store=RunStore(out_root / run_id / "calibration"),
                manifest_for=lambda p: new_manifest(
                    f"{run_id}-calibration",
                    p,
                    designs,
                    command,
                    platform,
                    {"calibration_of": run_id},
                ),
                bin_dir=args.bin_dir,
                console=console,
            )
            if cal.interrupted:
                console.print(
                    "interrupted during the calibration: nothing was measured yet "
                    f"(its trials are in {out_root / run_id / 'calibration'}); run again",
                    style="yellow",
                    highlight=False,
                )
                return EXIT_INTERRUPTED
            config, decision = cal.config, cal.decision
            calibration = {
                "calibrated": True,
                "directory": "calibration",
                "trials": cal.trials,
                "server_floor": floor_summary(cal.floor),
            }
        else:
            decision = uncalibrated(config, args.no_calibrate)
        plan = make_plan(config, topology, designs, assign=getattr(session, "assign", None))
        console.print(f"measuring: {decision.mode}: {decision.reason}", highlight=False)
        store = RunStore(out_root / run_id)
        manifest = new_manifest(
            run_id,
            plan,
            designs,
            command,
            platform,
            {
                "bin_dir": str(args.bin_dir),
                "plan_source": source,
                "doctor": doctor.to_dicts(checks),
                "left_out": {**skipped, **refused},
                "preflight": not args.no_preflight,
                "measurement": decision.to_dict(),
                "calibration": calibration,
                **({"hosts": hosts_info} if hosts_info else {}),
            },
        )
        done, capacities = set(), {}
        console.print(
            f"{len(plan.trials)} trials, about {plan.estimated_seconds():.0f} s; "
            f"results in {out_root / run_id}/",
            highlight=False,
        )
    try:
        outcome = execute(
            plan,
            designs,
            store=store,
            manifest=manifest,
            bin_dir=args.bin_dir,
            console=console,
            skip=done,
            capacities=capacities,
            hosts=session,
        )
    finally:
        if session is not None:
            session.close()
    reports_root = args.reports or out_root.resolve().parent / "reports"
    path = write_report(outcome.directory, reports_root / outcome.run_id / "index.html")
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
