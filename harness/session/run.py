"""`harness run` as a sequence of steps, each a short function with dataclasses in and out:
a new run is chosen (designs that can run here), planned (here or across hosts), checked (the
platform, then each design's conformance), calibrated (the measure decided) and stored; a resumed
run is repaired and reopened; then either is executed trial by trial and reported."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from harness.checks import doctor
from harness.checks.runtime_needs import why_not_runnable
from harness.errors import EXIT_INTERRUPTED, EXIT_TRIALS_FAILED, HarnessError
from harness.plan.config import machine_topology, run_config, saved_topology
from harness.plan.designs import Design, load_registry
from harness.plan.measure import capacity_config, floor_summary, needs_calibration, uncalibrated
from harness.plan.plan import Plan, RunConfig, make_plan, plan_from_dict, resolve_out, validate
from harness.plan.topology import Topology
from harness.session import hosts as run_hosts

if TYPE_CHECKING:  # the heavy stages (pandas, pyarrow) load only when a run is really made
    from harness.checks.doctor import CheckResult
    from harness.plan.measure import Decision
    from harness.run.execute import RunOutcome
    from harness.run.multihost import HostSession
    from harness.store import RunStore


@dataclass(frozen=True)
class RunRequest:
    """What the command line asked of a run (the plan flags stay in `options`, which
    plan.config.run_config reads)."""

    options: argparse.Namespace
    registry: Path
    bin_dir: Path
    out: Path
    reports: Path | None = None
    topology: Path | None = None
    resume: Path | None = None
    dry_run: bool = False
    preflight: bool = True
    calibrate: bool = True
    command: tuple[str, ...] = ("harness", "run")

    @property
    def explicit(self) -> bool:
        """Designs named on the command line: one that cannot run is an error, not left out."""
        return self.options.servers not in (None, "all") and self.options.profile is None


@dataclass(frozen=True)
class Chosen:
    """The run's configuration with the designs that cannot run here left out (and why)."""

    config: RunConfig
    source: str | None
    left_out: dict[str, str]


@dataclass
class Planned:
    """The plan of a new run (closed loop until a calibration decides), and its hosts."""

    config: RunConfig
    plan: Plan
    calibrating: bool
    hosts: HostSession | None = None
    hosts_info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Checked:
    """What the checks before measuring found: the platform's, and the designs the preflight
    refused (left out of `config`)."""

    config: RunConfig
    checks: list[CheckResult]
    refused: dict[str, str]


@dataclass(frozen=True)
class NewRun:
    """Where a new run is stored and what its manifest records of the machine and command."""

    out_root: Path
    run_id: str
    platform: dict[str, Any]
    command: list[str]


@dataclass(frozen=True)
class Measurement:
    """The configuration to measure, the Decision (mode, ranked measure and why) and the
    manifest's `calibration` record."""

    config: RunConfig
    decision: Decision
    calibration: dict[str, object]


@dataclass
class Prepared:
    """A run ready to execute: its plan, store and manifest, and what a resumed run holds."""

    plan: Plan
    store: RunStore
    manifest: dict[str, Any]
    out_root: Path
    done: set[str] = field(default_factory=set)
    capacities: dict[str, float | None] = field(default_factory=dict)
    hosts: HostSession | None = None


def run_session(request: RunRequest, console: Console) -> int:
    """The whole of `harness run`; its exit code (docs/architecture.md)."""
    designs = load_registry(request.registry)
    if request.topology is not None and not request.dry_run:
        raise HarnessError(
            "--topology plans on another machine's CPUs: it goes with --dry-run only"
        )
    if request.resume:
        prepared: Prepared | int = resume(request, request.resume, designs, console)
    else:
        topology = saved_topology(request.topology) if request.topology else machine_topology()
        prepared = prepare(request, designs, topology, console)
    if isinstance(prepared, int):  # a dry run, or interrupted during the calibration
        return prepared
    outcome = execute_run(prepared, designs, request.bin_dir, console)
    reports_root = request.reports or prepared.out_root.resolve().parent / "reports"
    report_run(outcome, reports_root, console)
    return exit_code(outcome, console)


def resume(
    request: RunRequest, directory: Path, designs: dict[str, Design], console: Console
) -> Prepared:
    """A stored run reopened with its stored plan, after repairing what a failed write left."""
    from harness.store import RunStore, load_run
    from harness.store.manifest import resume_state
    from harness.store.repair import repair_run

    repaired = repair_run(directory)
    if repaired.changed or repaired.lost or repaired.damaged_records:
        for line in repaired.lines():
            console.print(f"{directory}: {line}", style="yellow", highlight=False)
    stored = load_run(directory)
    plan = plan_from_dict(stored.manifest["plan"])
    store = RunStore.reopen(directory)
    done, capacities = resume_state(store)
    manifest = stored.manifest
    manifest.setdefault("resumed_at", []).append(datetime.now(UTC).isoformat(timespec="seconds"))
    hosts = None
    if run_hosts.is_multihost(plan.config):
        hosts, _, _ = run_hosts.open_hosts(
            plan.config, designs, request.bin_dir, console, plan=plan
        )
    console.print(
        f"resuming {manifest['run_id']}: {len(plan.trials) - len(done)} of "
        f"{len(plan.trials)} trials left",
        highlight=False,
    )
    out_root = directory.resolve().parent
    return Prepared(plan, store, manifest, out_root, done, capacities, hosts)


def prepare(
    request: RunRequest, designs: dict[str, Design], topology: Topology, console: Console
) -> Prepared | int:
    """A new run chosen, planned, checked, calibrated and stored; 0 after a dry run's plan,
    EXIT_INTERRUPTED when the calibration was interrupted."""
    from harness.run import platform as platform_info
    from harness.store.manifest import new_run_id

    chosen = choose_designs(request, designs, topology, console)
    planned = plan_run(chosen.config, request, designs, topology, console)
    if request.dry_run:
        show_plan(planned, designs, topology, console)
        return 0
    out_root = resolve_out(request.out)
    checked = check_before_measuring(planned, request, designs, console)
    new = NewRun(
        out_root, new_run_id(out_root), platform_info.collect(topology), list(request.command)
    )
    measurement = measure_decision(
        checked.config, planned, request, designs, topology, new, console
    )
    if measurement is None:
        return EXIT_INTERRUPTED
    assign = getattr(planned.hosts, "assign", None)
    plan = make_plan(measurement.config, topology, designs, assign=assign)
    console.print(
        f"measuring: {measurement.decision.mode}: {measurement.decision.reason}", highlight=False
    )
    return open_store(plan, designs, request, chosen, checked, measurement, planned, new, console)


def not_runnable(
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


def without_servers(config: RunConfig, left_out: dict[str, str]) -> RunConfig:
    """The configuration without the designs left out."""
    return replace(config, servers=tuple(s for s in config.servers if s not in left_out))


def choose_designs(
    request: RunRequest, designs: dict[str, Design], topology: Topology, console: Console
) -> Chosen:
    """The run's configuration from the flags, validated, with what cannot run here left out."""
    config, source = run_config(request.options, designs, topology)
    validate(config, designs)
    skipped = not_runnable(config, designs, request.bin_dir, request.explicit)
    for name, why in skipped.items():
        console.print(f"leaving out {name}: {why}", style="yellow", highlight=False)
    return Chosen(without_servers(config, skipped), source, skipped)


def plan_run(
    config: RunConfig,
    request: RunRequest,
    designs: dict[str, Design],
    topology: Topology,
    console: Console,
) -> Planned:
    """The plan on this machine's CPUs, or across hosts (connected unless a dry run)."""
    if not run_hosts.is_multihost(config):
        planned = Planned(config, make_plan(config, topology, designs), needs_calibration(config))
    else:  # calibration runs on this machine: not across hosts (yet)
        config = run_hosts.canonical(run_hosts.without_calibration(config, console))
        hosts, plan, info = run_hosts.open_hosts(
            config, designs, request.bin_dir, console, dry_run=request.dry_run
        )
        planned = Planned(config, plan, needs_calibration(config), hosts, info)
    for k, why in planned.plan.dropped_cores:
        console.print(f"left out --cores {k}: {why}", style="yellow", highlight=False)
    return planned


def show_plan(
    planned: Planned, designs: dict[str, Design], topology: Topology, console: Console
) -> None:
    """--dry-run: every trial's CPUs, and the calibration that would come first."""
    config, plan = planned.config, planned.plan
    if planned.calibrating:
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
            + (f" ({t.cpus.note})" if planned.hosts_info else ""),
            highlight=False,
        )
    console.print(f"{len(plan.trials)} trials, about {plan.estimated_seconds():.0f} s")


def check_before_measuring(
    planned: Planned, request: RunRequest, designs: dict[str, Design], console: Console
) -> Checked:
    """The platform checks (across hosts each host was checked as it was opened), then the
    preflight conformance of every design."""
    checks = [] if planned.hosts is not None else check_platform(planned, request, designs)
    stop_on_failed_checks(checks, console)
    refused: dict[str, str] = {}
    if request.preflight:
        first = planned.plan.trials[0].cpus.server if planned.plan.trials else (0,)
        refused = preflight(planned.config, designs, request.bin_dir, str(first[0]), console)
        if refused and request.explicit:
            name, why = next(iter(refused.items()))
            raise HarnessError(
                f"design {name} failed conformance ({why}); fix the server "
                "or leave it out of --servers"
            )
    return Checked(without_servers(planned.config, refused), checks, refused)


def stop_on_failed_checks(checks: list[CheckResult], console: Console) -> None:
    """A failed platform check stops the run (the table, then one line naming the first error
    and its fix); a warning is printed and the run goes on."""
    errors = [c for c in checks if c.status == doctor.Status.ERROR]
    if errors:
        console.print(doctor.format_table(checks), highlight=False)
        raise HarnessError(
            f"the platform check failed ({errors[0].name}: {errors[0].value}); fix: {errors[0].fix}"
        )
    for c in checks:
        if c.status == doctor.Status.WARNING:
            console.print(
                f"warning: {c.name}: {c.value} ({c.fix})", style="yellow", highlight=False
            )


def check_platform(
    planned: Planned, request: RunRequest, designs: dict[str, Design]
) -> list[CheckResult]:
    """`harness doctor`'s checks for this run (its designs' binaries, its connections)."""
    connections = max(t.connections for t in planned.plan.trials)
    return doctor.run_checks(
        doctor.Context(
            designs=[(n, designs[n].missing(request.bin_dir)) for n in planned.config.servers],
            needed_fds=connections + 64,
            connections=connections,
        )
    )


def preflight(
    config: RunConfig, designs: dict[str, Design], bin_dir: Path, cpus: str, console: Console
) -> dict[str, str]:
    """Quick conformance of every design and protocol: a design doing different work than the
    others cannot be compared. Returns {design: reason} for the failures."""
    from harness.checks import conformance

    refused: dict[str, str] = {}
    for name in config.servers:
        for proto in (p for p in config.protocols if p in designs[name].protocols):
            checks = conformance.quick_check(designs[name], proto, bin_dir, cpus)
            failures = [c for c in checks if not c.passed]
            if failures:
                refused[name] = f"{proto}: " + "; ".join(f"{c.name}: {c.reason}" for c in failures)
                break
    for name, why in refused.items():
        console.print(f"refused {name}: failed conformance ({why})", style="red", highlight=False)
    return refused


def measure_decision(
    config: RunConfig,
    planned: Planned,
    request: RunRequest,
    designs: dict[str, Design],
    topology: Topology,
    new: NewRun,
    console: Console,
) -> Measurement | None:
    """The calibration (when the measure needs one) and the Decision; None if interrupted."""
    from harness.run.calibration import calibrate
    from harness.store import RunStore
    from harness.store.manifest import new_manifest

    if not planned.calibrating:
        return Measurement(
            config, uncalibrated(config, not request.calibrate), {"calibrated": False}
        )
    cal = calibrate(
        config,
        topology,
        designs,
        store=RunStore(new.out_root / new.run_id / "calibration"),
        manifest_for=lambda p: new_manifest(
            f"{new.run_id}-calibration",
            p,
            designs,
            new.command,
            new.platform,
            {"calibration_of": new.run_id},
        ),
        bin_dir=request.bin_dir,
        console=console,
    )
    if cal.interrupted:
        console.print(
            "interrupted during the calibration: nothing was measured yet "
            f"(its trials are in {new.out_root / new.run_id / 'calibration'}); run again",
            style="yellow",
            highlight=False,
        )
        return None
    calibration = {
        "calibrated": True,
        "directory": "calibration",
        "trials": cal.trials,
        "server_floor": floor_summary(cal.floor),
    }
    return Measurement(cal.config, cal.decision, calibration)


def open_store(
    plan: Plan,
    designs: dict[str, Design],
    request: RunRequest,
    chosen: Chosen,
    checked: Checked,
    measurement: Measurement,
    planned: Planned,
    new: NewRun,
    console: Console,
) -> Prepared:
    """The new run's store and manifest (what was planned, checked, left out and decided)."""
    from harness.store import RunStore
    from harness.store.manifest import new_manifest

    extra = {
        "bin_dir": str(request.bin_dir),
        "plan_source": chosen.source,
        "doctor": doctor.to_dicts(checked.checks),
        "left_out": {**chosen.left_out, **checked.refused},
        "preflight": request.preflight,
        "measurement": measurement.decision.to_dict(),
        "calibration": measurement.calibration,
        **({"hosts": planned.hosts_info} if planned.hosts_info else {}),
    }
    manifest = new_manifest(new.run_id, plan, designs, new.command, new.platform, extra)
    console.print(
        f"{len(plan.trials)} trials, about {plan.estimated_seconds():.0f} s; "
        f"results in {new.out_root / new.run_id}/",
        highlight=False,
    )
    store = RunStore(new.out_root / new.run_id)
    return Prepared(plan, store, manifest, new.out_root, hosts=planned.hosts)


def execute_run(
    prepared: Prepared, designs: dict[str, Design], bin_dir: Path, console: Console
) -> RunOutcome:
    """Every trial not yet done, each stored as it ends; the hosts closed whatever happens."""
    from harness.run.execute import execute

    try:
        return execute(
            prepared.plan,
            designs,
            store=prepared.store,
            manifest=prepared.manifest,
            bin_dir=bin_dir,
            console=console,
            skip=prepared.done,
            capacities=prepared.capacities,
            hosts=prepared.hosts,
        )
    finally:
        if prepared.hosts is not None:
            prepared.hosts.close()


def report_run(outcome: RunOutcome, reports_root: Path, console: Console) -> Path:
    """The report of what was measured (interrupted or not)."""
    from harness.session.report import write_report

    path = write_report(outcome.directory, reports_root / outcome.run_id / "index.html")
    console.print(f"results: {outcome.directory}", highlight=False)
    console.print(f"report:  {path}", highlight=False)
    return path


def exit_code(outcome: RunOutcome, console: Console) -> int:
    """0 when every trial was measured; 130 interrupted (with how to resume); 1 when some
    trial failed (named)."""
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
