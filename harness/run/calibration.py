"""Calibrate before measuring (plan/measure.py says what and why): run the capacity trials and
the client's open-loop ramp into the run's `calibration/` store, measure the platform's noise
floor on the server CPUs, and hand the results to `measure.decide`.

Calibration trials are ordinary trials (same server start, load generator and rows), kept in
their own directory so that they are never ranked with the measured ones; `harness report
RUN/calibration` shows them like any run.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.plan.calibrate import KEEP_UP_SHARE, DesignCapacity, RampPoint
from harness.plan.designs import Design
from harness.plan.measure import (
    Decision,
    GroupKey,
    as_given,
    capacity_config,
    decide,
    group_of,
    ramp_config,
    without_work,
)
from harness.plan.plan import Plan, RunConfig, make_plan
from harness.plan.topology import Topology, format_cpu_list
from harness.run import flags
from harness.run.execute import ResultStore, RunOutcome, execute
from harness.run.trial import TrialResult

# The platform's own stalls on the server CPUs, measured while nothing else runs there.
FLOOR_SECONDS = 2.0


@dataclass
class Calibration:
    config: RunConfig  # the measured plan's configuration
    decision: Decision
    trials: int
    floor: dict[str, Any] | None  # hiccup meter on the server CPUs (None: not measured)
    interrupted: bool = False


def renumbered(plan: Plan, start: int) -> Plan:
    """A plan's trials numbered from `start`, so two phases share one store without clashes."""
    trials = tuple(
        replace(t, index=start + i, trial_id=f"{start + i:04d}{t.trial_id[4:]}")
        for i, t in enumerate(plan.trials)
    )
    return replace(plan, trials=trials)


def _summary(result: TrialResult) -> dict[str, Any]:
    return ((result.loadgen or {}).get("summary") or {}) if result.status == "ok" else {}


def capacities_of(results: list[TrialResult]) -> dict[GroupKey, list[DesignCapacity]]:
    out: dict[GroupKey, list[DesignCapacity]] = {}
    for r in results:
        bound = flags.client_bound(r.loadgen or {}).set if r.status == "ok" else None
        rate = _summary(r).get("throughput_rps")
        out.setdefault(group_of(r.spec), []).append(DesignCapacity(r.spec.server, rate, bound))
    return out


def ramp_points(results: list[TrialResult]) -> dict[GroupKey, list[RampPoint]]:
    out: dict[GroupKey, list[RampPoint]] = {}
    for r in results:
        s = _summary(r)
        if r.spec.rate is None or not s:
            continue
        # The client gave out when it could not send on its own schedule; the load generator's
        # wider client-bound verdict also fires on a platform stall, which is not a limit.
        sent, due = s.get("sent_rate"), s.get("scheduled_rate")
        bound = (
            sent < KEEP_UP_SHARE * due
            if sent is not None and due
            else flags.client_bound(r.loadgen or {}).set
        )
        achieved = s.get("achieved_rate", s.get("throughput_rps")) or 0.0
        threads = ((r.loadgen or {}).get("client_cpu") or {}).get("threads") or []
        busy = [t["busy_fraction"] for t in threads if t.get("busy_fraction") is not None]
        out.setdefault(without_work(group_of(r.spec)), []).append(
            RampPoint(float(r.spec.rate), float(achieved), bound, max(busy) if busy else None)
        )
    return out


def fastest(capacities: dict[GroupKey, list[DesignCapacity]]) -> dict[GroupKey, tuple[str, float]]:
    """Per group at no work, the design with the highest closed-loop capacity."""
    out = {}
    for group, caps in capacities.items():
        measured = [c for c in caps if c.rate]
        if group[5] == "none" and measured:
            best = max(measured, key=lambda c: (c.rate or 0.0, c.design))
            out[group] = (best.design, float(best.rate or 0.0))
    return out


def server_floor(bin_dir: Path, cpus: tuple[int, ...], out: Path) -> dict[str, Any] | None:
    """The hiccup meter on the server CPUs with no server running (jHiccup's idle baseline):
    what the platform alone adds to any latency measured there. None when it cannot run."""
    meter = bin_dir / "hiccup"
    if not meter.is_file() or not cpus:
        return None
    try:
        subprocess.run(
            [str(meter), "--cpus", format_cpu_list(list(cpus)), "--duration", str(FLOOR_SECONDS),
             "--json", str(out)],
            check=True, capture_output=True, timeout=FLOOR_SECONDS + 10,
        )  # fmt: skip
        return json.loads(out.read_text())
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def calibrate(
    config: RunConfig,
    topology: Topology,
    designs: dict[str, Design],
    *,
    store: ResultStore,
    manifest_for: Callable[[Plan], dict[str, Any]],
    bin_dir: Path,
    console: Console,
) -> Calibration:
    """Both calibration phases, then the decision. Interrupted: the decision is a placeholder
    and `interrupted` is set (the caller stops: nothing was measured yet)."""
    phase1 = make_plan(capacity_config(config), topology, designs)
    console.print(
        f"calibration: {len(phase1.trials)} closed-loop capacity trial(s), then the load "
        "generator's open-loop ramp",
        highlight=False,
    )
    first = execute(
        phase1, designs, store=store, manifest=manifest_for(phase1), bin_dir=bin_dir,
        console=console,
    )  # fmt: skip
    results = list(first.results)
    capacities = capacities_of(first.results)
    floor_cpus = phase1.trials[0].cpus.server if phase1.trials else ()
    floor = server_floor(bin_dir, floor_cpus, store.directory / "raw" / "server-floor.json")
    second: RunOutcome | None = None
    if not first.interrupted:
        ramp = ramp_config(config, fastest(capacities))
        if ramp is not None:
            phase2 = renumbered(make_plan(ramp, topology, designs), len(phase1.trials))
            both = replace(phase2, trials=phase1.trials + phase2.trials)
            second = execute(
                phase2, designs, store=store, manifest=manifest_for(both), bin_dir=bin_dir,
                console=console,
            )  # fmt: skip
            results += second.results
    interrupted = first.interrupted or bool(second and second.interrupted)
    work_ok = all(designs[s].work for s in config.servers)
    if interrupted:
        return Calibration(config, as_given(config, "interrupted"), len(results), floor, True)
    ramps = ramp_points(second.results if second else [])
    main, decision = decide(config, capacities, ramps, work_supported=work_ok)
    return Calibration(main, decision, len(results), floor)
