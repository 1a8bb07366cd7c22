"""Stages 2-3 together: run a plan trial by trial, storing each result before the next starts."""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from harness import platform as platform_info
from harness.designs import Design
from harness.errors import HarnessError
from harness.plan import TRIAL_OVERHEAD_S, Plan
from harness.runner import TrialResult, run_trial
from harness.store import SCHEMA_VERSION, RunStore, trial_rows
from harness.topology import Topology


@dataclass
class RunOutcome:
    run_id: str
    directory: Path
    results: list[TrialResult]
    interrupted: bool

    @property
    def failed(self) -> list[TrialResult]:
        return [r for r in self.results if r.status != "ok"]


def new_run_id(out_root: Path) -> str:
    base = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id, n = base, 1
    while (out_root / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


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


def execute(
    plan: Plan,
    designs: dict[str, Design],
    *,
    out_root: Path,
    bin_dir: Path,
    command: list[str],
    topology: Topology,
    console: Console,
) -> RunOutcome:
    check_binaries(plan, designs, bin_dir)
    run_id = new_run_id(out_root)
    store = RunStore(out_root / run_id)
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ended_at": None,
        "command": command,
        "plan": plan.to_dict(),
        "designs": {n: vars(designs[n]) for n in plan.config.servers},
        "platform": platform_info.collect(topology),
        "bin_dir": str(bin_dir),
    }
    store.write_manifest(manifest)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM cleans up like Ctrl-C
    results: list[TrialResult] = []
    interrupted = False
    remaining = plan.estimated_seconds()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("~{task.fields[left]} left"),
        console=console,
        disable=not console.is_terminal,
    )
    try:
        with progress:
            task = progress.add_task("starting", total=len(plan.trials), left=_fmt(remaining))
            for spec in plan.trials:
                what = (
                    f"{spec.server} {spec.protocol} {spec.server_cores} core(s) "
                    f"{spec.connections} conns {spec.size_bytes} B rep {spec.repetition + 1}"
                )
                progress.update(task, description=what, left=_fmt(remaining))
                if not console.is_terminal:
                    console.print(
                        f"[{spec.index + 1}/{len(plan.trials)}] {what} (~{_fmt(remaining)} left)",
                        highlight=False,
                    )
                try:
                    result = run_trial(spec, designs[spec.server], bin_dir, store.directory / "raw")
                except KeyboardInterrupt:
                    now = datetime.now(UTC).isoformat(timespec="milliseconds")
                    result = TrialResult(spec, "failed", "interrupted by the user", now, now)
                    interrupted = True
                results.append(result)
                for table, rows in trial_rows(run_id, result).items():
                    store.add(table, rows)
                store.flush()
                if result.status != "ok":
                    console.print(
                        f"  trial {spec.trial_id} failed: {result.reason}",
                        highlight=False,
                        style="red",
                    )
                remaining -= spec.warmup_s + spec.duration_s + TRIAL_OVERHEAD_S
                progress.advance(task)
                if interrupted:
                    break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGTERM, previous)
        manifest["ended_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        manifest["outcome"] = {
            "trials_planned": len(plan.trials),
            "trials_run": len(results),
            "trials_failed": sum(r.status != "ok" for r in results),
            "interrupted": interrupted,
        }
        store.write_manifest(manifest)
    return RunOutcome(run_id, store.directory, results, interrupted)


def _fmt(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def stdout_console() -> Console:
    return Console(file=sys.stdout, soft_wrap=True)
