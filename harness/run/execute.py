"""Run a plan trial by trial, handing each result to the store before the next starts.

The store is passed in (the cli opens it; see `ResultStore`), so this stage does not depend on
the next. A resumed run (`harness run --resume`) passes the trials already stored as `skip`.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from harness.errors import HarnessError, StoreError
from harness.plan.designs import Design
from harness.plan.plan import TRIAL_OVERHEAD_S, Plan, TrialSpec
from harness.run import flags
from harness.run.trial import TrialResult, run_trial

INTERRUPTED = "interrupted by the user"


class ResultStore(Protocol):
    """Where results go (store.RunStore): written after every trial."""

    directory: Path

    def record(self, run_id: str, result: TrialResult) -> None: ...

    def trial_counts(self) -> tuple[int, int]: ...

    def write_manifest(self, manifest: dict[str, Any]) -> None: ...


@dataclass
class RunOutcome:
    run_id: str
    directory: Path
    results: list[TrialResult]
    interrupted: bool

    @property
    def failed(self) -> list[TrialResult]:
        return [r for r in self.results if r.status != "ok"]


def check_binaries(plan: Plan, designs: dict[str, Design], bin_dir: Path) -> None:
    missing = [f"{bin_dir / 'loadgen'} is not built"] if not (bin_dir / "loadgen").is_file() else []
    for name in sorted({t.server for t in plan.trials}):
        why = designs[name].missing(bin_dir)
        if why:
            missing.append(why)
    if missing:
        raise HarnessError(f"{'; '.join(missing)}; build with `make build` (or pass --bin-dir)")


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _describe(spec: TrialSpec) -> str:
    what = f"{spec.server} {spec.protocol} {spec.server_cores} core(s) {spec.connections} conns"
    if spec.protocol == "echo":
        what += f" {spec.size_bytes} B"
    if spec.requests_per_connection:
        what += f" reconnect/{spec.requests_per_connection}"
    if spec.mode == "open":
        what += f" open {spec.rate:,.0f}/s" if spec.rate else f" open {spec.rate_fraction:g}x"
    return f"{what} rep {spec.repetition + 1}"


def _resolve_rate(spec: TrialSpec, capacities: dict[str, float | None]) -> TrialSpec | str:
    """A sweep trial's offered rate from its capacity trial, or why it cannot have one."""
    if spec.rate_fraction is None:
        return spec
    capacity = capacities.get(spec.capacity_trial or "")
    if not capacity:
        return f"capacity trial {spec.capacity_trial} measured no throughput"
    return replace(spec, rate=round(spec.rate_fraction * capacity, 3))


def execute(
    plan: Plan,
    designs: dict[str, Design],
    *,
    store: ResultStore,
    manifest: dict[str, Any],
    bin_dir: Path,
    console: Console,
    skip: set[str] | frozenset[str] = frozenset(),
    capacities: dict[str, float | None] | None = None,
    hosts: Any = None,
) -> RunOutcome:
    """Run every trial of the plan not in `skip`; `capacities` holds throughputs already
    measured (a resumed run's capacity trials). `hosts`: a run.multihost.HostSession when the
    server and load generators are on other hosts (docs/multi-host.md)."""
    run_one = hosts.run_trial if hosts is not None else run_trial
    check_binaries(plan, designs, bin_dir)
    store.write_manifest(manifest)
    capacities = dict(capacities or {})
    todo = [t for t in plan.trials if t.trial_id not in skip]
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM cleans up like Ctrl-C
    results: list[TrialResult] = []
    interrupted = False
    store_failure: StoreError | None = None
    remaining = sum(t.warmup_s + t.duration_s + TRIAL_OVERHEAD_S for t in todo)
    progress = _progress(console)
    try:
        with progress:
            task = progress.add_task("starting", total=len(todo), left=_fmt(remaining))
            for i, spec in enumerate(todo):
                what = _describe(spec)
                progress.update(task, description=what, left=_fmt(remaining))
                if not console.is_terminal:
                    console.print(
                        f"[{i + 1}/{len(todo)}] {what} (~{_fmt(remaining)} left)", highlight=False
                    )
                result = _trial(spec, run_one, designs[spec.server], bin_dir, store, capacities)
                interrupted = result.reason == INTERRUPTED
                result.flags = flags.judge(result)  # once, here: the store keeps what it says
                results.append(result)
                store.record(manifest["run_id"], result)  # a resumed trial replaces its rows
                if result.status != "ok":
                    console.print(f"  trial {spec.trial_id} failed: {result.reason}",
                                  highlight=False, style="red")  # fmt: skip
                remaining -= spec.warmup_s + spec.duration_s + TRIAL_OVERHEAD_S
                progress.advance(task)
                if interrupted:
                    break
    except KeyboardInterrupt:
        interrupted = True
    except StoreError as exc:  # the run stops; the error names the trials only in raw/
        store_failure = exc
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        _write_outcome(manifest, store, len(plan.trials), interrupted, store_failure)
    return RunOutcome(manifest["run_id"], store.directory, results, interrupted)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("~{task.fields[left]} left"),
        console=console,
        disable=not console.is_terminal,
    )


def _trial(
    spec: TrialSpec,
    run_one: Callable[[TrialSpec, Design, Path, Path], TrialResult],
    design: Design,
    bin_dir: Path,
    store: ResultStore,
    capacities: dict[str, float | None],
) -> TrialResult:
    """One trial (its rate resolved from a capacity trial's throughput, for a sweep); an
    interruption is its failure, INTERRUPTED. A closed-loop trial's throughput is recorded
    as a capacity for the sweeps after it."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    resolved = _resolve_rate(spec, capacities)
    if isinstance(resolved, str):
        return TrialResult(spec, "failed", resolved, now, now, failure="rate_unresolved")
    try:
        result = run_one(resolved, design, bin_dir, store.directory / "raw")
    except KeyboardInterrupt:
        return TrialResult(resolved, "failed", INTERRUPTED, now, now, failure="interrupted")
    if result.status == "ok" and result.loadgen:
        capacities[spec.trial_id] = result.loadgen["summary"].get("throughput_rps")
    return result


def _write_outcome(
    manifest: dict[str, Any],
    store: ResultStore,
    planned: int,
    interrupted: bool,
    store_failure: StoreError | None,
) -> None:
    """The manifest's end and outcome (complete | interrupted | failed to store: why, as
    docs/data.md says), written whatever happened."""
    stored, failed = store.trial_counts()
    manifest["ended_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    if store_failure:
        result = f"failed to store: {store_failure}"
    else:
        result = "interrupted" if interrupted else "complete"
    manifest["outcome"] = {
        "trials_planned": planned,
        "trials_stored": stored,
        "trials_failed": failed,
        "interrupted": interrupted,
        "result": result,
    }
    try:
        store.write_manifest(manifest)
    except StoreError:
        if store_failure is None:
            raise  # otherwise the first failure is the one to report


def _fmt(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
