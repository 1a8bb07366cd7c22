"""Realistic synthetic runs, written through the real storage path (RunStore + trial_rows).

`build_run(directory)` writes what `harness run` would have written for a small rate-sweep
matrix: designs tokio-ws (work-stealing), tokio-tpc and epoll-tpc (thread-per-core) at 1 and 2
server cores, echo 64 B over 64 connections, 3 repetitions interleaved A B C; each repetition
measures a closed-loop capacity trial per design, then offers 0.5x, 0.8x and 0.95x of it open
loop. Deterministic (a seeded generator, fixed timestamps), and with the things a report must
show rather than hide:

- FAILED: epoll-tpc's 1-core capacity trial of repetition 1 crashed, so its three open-loop
  trials failed too (no capacity, no rate to offer);
- CLIENT_BOUND: epoll-tpc's 2-core capacity trial of repetition 2 saturated a client thread;
- RATE_MISSED: tokio-tpc at 2 cores, repetition 0, 0.95x: the server fell behind the schedule.

`build_client_bound_run` is what a 2-CPU machine gives: every trial client-bound, none ranked.

`build_empty_run` (interrupted before the first trial) and `build_failed_run` (every trial
failed) cover the runs with nothing to rank.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis import histogram
from harness.plan.cpus import CpuAssignment
from harness.plan.plan import Plan, RunConfig, TrialSpec
from harness.run import flags
from harness.run.trial import TrialResult
from harness.store import SCHEMA_VERSION, RunStore, trial_rows

RUN_ID = "20261122T113000Z"
DESIGNS = ("tokio-ws", "tokio-tpc", "epoll-tpc")
CORES = (1, 2)
REPEAT = 3
FRACTIONS = (0.5, 0.8, 0.95)
CONNECTIONS = 64
SIZE = 64
WARMUP_S = 2.0
DURATION_S = 10.0
SAMPLES = 4000  # latency samples drawn per trial (the histogram shape; counts are rescaled)

FAMILY = {
    "tokio-ws": "work-stealing",
    "tokio-tpc": "thread-per-core",
    "epoll-tpc": "thread-per-core",
    "tokio-ws-reuseport": "work-stealing",
    "monoio-epoll-tpc": "thread-per-core",
    "monoio-tpc": "thread-per-core",
}
# The monoio chain (build_chain_run): tokio-ws -> tokio-ws-reuseport -> tokio-tpc ->
# monoio-epoll-tpc -> monoio-tpc, one factor per step.
CHAIN = ("tokio-ws", "tokio-ws-reuseport", "tokio-tpc", "monoio-epoll-tpc", "monoio-tpc")
# Closed-loop capacity in requests/s (median over repetitions).
CAPACITY = {
    ("tokio-ws", 1): 182_000.0,
    ("tokio-ws", 2): 331_000.0,
    ("tokio-tpc", 1): 214_000.0,
    ("tokio-tpc", 2): 418_000.0,
    ("epoll-tpc", 1): 251_000.0,
    ("epoll-tpc", 2): 489_000.0,
    ("tokio-ws-reuseport", 1): 190_000.0,
    ("tokio-ws-reuseport", 2): 352_000.0,
    ("monoio-epoll-tpc", 1): 218_000.0,
    ("monoio-epoll-tpc", 2): 425_000.0,
    ("monoio-tpc", 1): 262_000.0,
    ("monoio-tpc", 2): 505_000.0,
}
# Voluntary context switches per request (work-stealing parks and unparks its workers).
CTXT = {"tokio-ws": 0.040, "tokio-tpc": 0.012, "epoll-tpc": 0.006, "tokio-ws-reuseport": 0.035,
        "monoio-epoll-tpc": 0.010, "monoio-tpc": 0.004}  # fmt: skip
# Share of the connections each worker got at 2 cores: SO_REUSEPORT hashing is uneven.
SPLIT = {"tokio-ws": (0.5, 0.5), "tokio-tpc": (0.59375, 0.40625), "epoll-tpc": (0.5625, 0.4375),
         "tokio-ws-reuseport": (0.5, 0.5), "monoio-epoll-tpc": (0.59375, 0.40625),
         "monoio-tpc": (0.59375, 0.40625)}  # fmt: skip

FAILED = f"-epoll-tpc-echo-k1-c{CONNECTIONS}-b{SIZE}-closed-r1"
CLIENT_BOUND = f"-epoll-tpc-echo-k2-c{CONNECTIONS}-b{SIZE}-closed-r2"
RATE_MISSED = f"-tokio-tpc-echo-k2-c{CONNECTIONS}-b{SIZE}-open0.95x-r0"
CRASH = "server died during the trial (exit 139): Segmentation fault (core dumped)"

DESIGN_ENTRIES = {
    "tokio-ws": "tokio multi-thread runtime, one listener, connection tasks stolen between "
    "N pinned workers",
    "tokio-tpc": "N pinned threads, each a tokio current-thread runtime + LocalSet with its own "
    "SO_REUSEPORT listener",
    "epoll-tpc": "no runtime: one epoll loop per pinned thread with its own SO_REUSEPORT "
    "listener; the overhead floor",
    "tokio-ws-reuseport": "the tokio multi-thread runtime behind N SO_REUSEPORT listeners",
    "monoio-epoll-tpc": "monoio's legacy (epoll) driver per pinned thread",
    "monoio-tpc": "monoio's io_uring driver per pinned thread",
}
# The factors of each design (servers/registry.toml), so chains of controlled pairs exist.
FACTORS = {
    "tokio-ws": ("work-stealing", "shared-listener", "epoll", "tokio"),
    "tokio-ws-reuseport": ("work-stealing", "reuseport", "epoll", "tokio"),
    "tokio-tpc": ("per-core", "reuseport", "epoll", "tokio"),
    "epoll-tpc": ("per-core", "reuseport", "epoll", "none"),
    "monoio-epoll-tpc": ("per-core", "reuseport", "epoll", "monoio"),
    "monoio-tpc": ("per-core", "reuseport", "uring-oneshot", "monoio"),
}


@dataclass(frozen=True)
class FakeRun:
    directory: Path
    failed_ids: tuple[str, ...]
    flagged_ids: tuple[str, ...]
    trial_ids: tuple[str, ...]


def _cpus(k: int) -> CpuAssignment:
    """A 16-CPU machine without SMT: the server takes the top k CPUs, the client 4k from 0."""
    return CpuAssignment(
        server=tuple(range(16 - k, 16)), client=tuple(range(4 * k)), oversubscribed=False
    )


def _cpus_two(k: int) -> CpuAssignment:
    """A 2-CPU machine: the server on CPU 1, the load generator alone on CPU 0."""
    return CpuAssignment(server=(1,), client=(0,), oversubscribed=False)


def plan(
    *,
    designs: tuple[str, ...] = DESIGNS,
    fractions: tuple[float, ...] = FRACTIONS,
    cores: tuple[int, ...] = CORES,
    cpus: Callable[[int], CpuAssignment] = _cpus,
) -> Plan:
    """The plan `harness run --mode open --rate-sweep ...` makes, in the same order and ids."""
    config = RunConfig(
        servers=designs,
        protocols=("echo",),
        cores=cores,
        connections=(CONNECTIONS,),
        sizes=(SIZE,),
        duration_s=DURATION_S,
        warmup_s=WARMUP_S,
        repeat=REPEAT,
        oversubscribe=False,
        client_cpus=None,
        seed=None,
        mode="open" if fractions else "closed",
        rate_sweep=fractions,
    )
    trials: list[TrialSpec] = []

    def add(base: TrialSpec, **changes: Any) -> TrialSpec:
        spec = replace(base, index=len(trials), **changes)
        load = "closed" if spec.mode == "closed" else f"open{spec.rate_fraction:g}x"
        spec = replace(
            spec,
            trial_id=f"{spec.index:04d}-{spec.server}-echo-k{spec.server_cores}"
            f"-c{CONNECTIONS}-b{SIZE}-{load}-r{spec.repetition}",
        )
        trials.append(spec)
        return spec

    for rep in range(REPEAT):
        for k in cores:
            for server in designs:
                base = TrialSpec(
                    index=0,
                    trial_id="",
                    server=server,
                    design_family=FAMILY[server],
                    io_model="epoll",
                    protocol="echo",
                    server_cores=k,
                    connections=CONNECTIONS,
                    size_bytes=SIZE,
                    repetition=rep,
                    warmup_s=WARMUP_S,
                    duration_s=DURATION_S,
                    timeout_s=2.0,
                    cpus=cpus(k),
                )
                capacity = add(base)
                for f in fractions:
                    add(base, mode="open", rate_fraction=f, capacity_trial=capacity.trial_id)
    return Plan(config=config, trials=tuple(trials))


def _thread_row(
    spec: TrialSpec,
    role: str,
    thread: int,
    name: str,
    cpu_s: float,
    shares: tuple[float, float],
    switches: tuple[int, int],
) -> dict[str, Any]:
    """One row of threads.parquet: `shares` of its CPU time in user mode and in the kernel,
    `switches` its voluntary and involuntary context switches."""
    pid, cpus = (4000, spec.cpus.server) if role == "server" else (9000, spec.cpus.client)
    return {
        "trial_id": spec.trial_id,
        "role": role,
        "pid": pid + spec.index,
        "tid": pid + 1 + spec.index * 10 + thread,
        "name": name,
        "cpu": cpus[thread],
        "user_s": cpu_s * shares[0],
        "system_s": cpu_s * shares[1],
        "cpu_s": cpu_s,
        "voluntary_ctxt_switches": switches[0],
        "involuntary_ctxt_switches": switches[1],
    }


def _hist(samples_us: np.ndarray, requests: int) -> dict[str, Any]:
    """A loadgen histogram of `requests` values shaped like the samples."""
    buckets = histogram.record(int(v) for v in np.maximum(samples_us * 1000.0, 1.0))
    scale = requests / len(samples_us)
    rows, carried = [], 0.0
    for lo, hi, n in buckets:
        carried += n * scale
        count = int(carried)
        carried -= count
        if count:
            rows.append({"lower_ns": lo, "upper_ns": hi, "count": count})
    return {"unit": "ns", "sub_buckets": histogram.SUB_BUCKETS, "buckets": rows}


def _percentiles(samples_us: np.ndarray) -> dict[str, float]:
    q = np.percentile(samples_us, [50, 90, 99, 99.9])
    return {
        "min": float(samples_us.min()),
        "mean": float(samples_us.mean()),
        "p50": float(q[0]),
        "p90": float(q[1]),
        "p99": float(q[2]),
        "p999": float(q[3]),
        "max": float(samples_us.max()),
    }


def _result(
    spec: TrialSpec,
    rng: np.random.Generator,
    capacity: float | None,
    *,
    all_client_bound: bool = False,
) -> TrialResult:
    """What the runner would return for this trial on the synthetic machine (with
    all_client_bound, every closed-loop trial saturates its load generator, and the first one
    also steps by 10% in its window)."""
    started = f"2026-11-22T11:{30 + spec.index // 5:02d}:{(spec.index % 5) * 12:02d}.000+00:00"
    ended = started.replace(".000+", ".900+")
    k, server = spec.server_cores, spec.server
    open_loop = spec.mode == "open"
    if spec.trial_id.endswith(FAILED) and spec.server == "epoll-tpc":
        return TrialResult(spec, "failed", CRASH, started, ended)
    if open_loop and capacity is None:
        return TrialResult(
            spec,
            "failed",
            f"capacity trial {spec.capacity_trial} failed: no rate to offer",
            started,
            ended,
        )
    noise = 1.0 + rng.normal(0.0, 0.012)
    if open_loop:
        assert capacity is not None and spec.rate_fraction is not None
        rate = spec.rate_fraction * capacity
        spec = replace(spec, rate=rate)
        achieved = rate * (0.9995 + rng.uniform(0.0, 0.0004))
        if spec.trial_id.endswith(RATE_MISSED) and spec.server == "tokio-tpc":
            achieved = rate * 0.962
        throughput = achieved
    else:
        throughput = CAPACITY[(server, k)] * noise
    client_bound = (spec.trial_id.endswith(CLIENT_BOUND) and spec.server == "epoll-tpc") or (
        all_client_bound and not open_loop
    )
    if client_bound:
        throughput *= 0.86  # the client, not the server, set the pace
    requests = int(throughput * DURATION_S)
    window = requests / throughput

    # Latency: closed loop follows Little's law (connections / throughput); open loop is the
    # service time plus queueing that grows as the offered load nears capacity, worse for
    # per-core queues than for one shared queue (M/M/1 x k against M/M/k).
    tpc = FAMILY[server] == "thread-per-core"
    if open_loop:
        rho = min(achieved / CAPACITY[(server, k)], 0.985)
        service = rng.lognormal(np.log(24.0), 0.18, SAMPLES)
        per_request_us = 1e6 * k / CAPACITY[(server, k)]
        mean_wait = per_request_us * rho / (1.0 - rho) * (1.0 if tpc or k == 1 else 0.55)
        wait = rng.exponential(mean_wait * 8.0, SAMPLES)
        corrected = service + wait
        uncorrected = service + 0.35 * wait
    else:
        mean_us = CONNECTIONS / throughput * 1e6
        sigma = 0.30 if tpc else 0.22
        corrected = rng.lognormal(np.log(mean_us) - sigma**2 / 2, sigma, SAMPLES)
        tail = rng.random(SAMPLES) < 0.004
        corrected[tail] *= rng.uniform(3.0, 8.0, int(tail.sum()))
        uncorrected = None

    series = []
    for i in range(int(DURATION_S)):
        n = int(throughput * (1.0 + rng.normal(0.0, 0.004)))
        if all_client_bound and spec.index == 0 and i >= 3:
            n = int(n * 1.10)  # a step inside the window: unsteady as well
        series.append(
            {
                "interval": i,
                "start_s": float(i),
                "requests": n,
                "errors": 0,
                "p50_us": float(np.percentile(corrected, 50)),
                "p99_us": float(np.percentile(corrected, 99)),
                "p999_us": float(np.percentile(corrected, 99.9)),
            }
        )

    client_threads = min(len(spec.cpus.client), spec.connections)
    busy = 0.96 if client_bound else 0.35 + 0.3 * rng.random()
    client_cpu = {
        "user_s": 0.0,
        "system_s": 0.0,
        "total_s": busy * window * client_threads,
        "threads": [
            {
                "thread": i,
                "cpu": spec.cpus.client[i],
                "user_s": busy * window * 0.3,
                "system_s": busy * window * 0.7,
            }
            for i in range(client_threads)
        ],
    }
    summary: dict[str, Any] = {
        "requests": requests,
        "errors_total": 0,
        "errors": {"connect": 0, "reset": 0, "eof": 0, "mismatch": 0, "timeout": 0},
        "window_s": window,
        "throughput_rps": throughput,
        "latency_us": _percentiles(corrected),
    }
    report: dict[str, Any] = {
        "schema": "loadgen/1",
        "latency_kind": "closed-loop",
        "summary": summary,
        "histogram": _hist(corrected, requests),
        "series": series,
        "client_cpu": client_cpu,
    }
    if open_loop:
        assert uncorrected is not None
        report["latency_kind"] = "open-loop"
        summary.update(
            target_rate=spec.rate,
            achieved_rate=achieved,
            sent_rate=achieved,
            service_latency_us=_percentiles(uncorrected),
            schedule_lag_us={
                "p99": float(np.percentile(corrected - uncorrected, 99)),
                "max": float((corrected - uncorrected).max()),
            },
        )
        report["service_histogram"] = _hist(uncorrected, requests)

    split = SPLIT[server] if k == 2 else (1.0,)
    workers, threads = [], []
    util = 0.97 if (tpc or not open_loop) else 0.99
    if open_loop:
        util *= achieved / CAPACITY[(server, k)]
    for w, share in enumerate(split):
        conns = round(CONNECTIONS * share)
        # A worker with more connections serves more of them (it is a closed loop), but not in
        # proportion: its connections wait longer.
        served = int(requests * (share * 0.7 + 0.3 / k)) if tpc else int(requests * share)
        workers.append(
            {
                "worker": w,
                "cpu": spec.cpus.server[w],
                "connections": conns,
                "messages": served,
                "bytes_in": served * SIZE,
                "bytes_out": served * SIZE,
            }
        )
        cpu_s = window * util * (0.8 + 0.2 * share * k if tpc else 1.0)
        vol = int(served * CTXT[server] * (1.0 + rng.normal(0.0, 0.02)))
        switches = (vol, int(vol * 0.02) + 3)
        threads.append(
            _thread_row(spec, "server", w, f"{server}-w{w}", cpu_s, (0.35, 0.65), switches)
        )
    for i in range(client_threads):
        threads.append(
            _thread_row(spec, "client", i, f"loadgen-{i}", busy * window, (0.3, 0.7), (40, 2))
        )
    counters = {"workers": workers}
    server_cpu_s = sum(t["cpu_s"] for t in threads if t["role"] == "server")
    return TrialResult(
        spec,
        "ok",
        "",
        started,
        ended,
        loadgen=report,
        counters=counters,
        threads=threads,
        server_cpu_s=server_cpu_s,
        server_rss_bytes=6_000_000 + 150_000 * k,
    )


def manifest(the_plan: Plan, *, trials_run: int, trials_failed: int, interrupted: bool) -> dict:
    designs = {
        name: {
            "name": name,
            "family": FAMILY[name],
            "io_model": "epoll",
            "language": "rust",
            "protocols": ["echo", "http"],
            "command": f"{{bin_dir}}/{name} --protocol {{protocol}} --host {{host}} "
            "--port {port} --threads {threads} --cpus {cpus}",
            "ready": "line",
            "pins_itself": True,
            "counters": True,
            "summary": DESIGN_ENTRIES[name],
            "default": name != "epoll-tpc",
            "work": True,
            **dict(zip(("scheduler", "accept", "io", "runtime"), FACTORS[name], strict=True)),
        }
        for name in the_plan.config.servers
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": RUN_ID,
        "started_at": "2026-11-22T11:30:00+00:00",
        "ended_at": None if interrupted else "2026-11-22T11:50:12+00:00",
        "command": [
            "harness",
            "run",
            "--servers",
            ",".join(the_plan.config.servers),
            "--cores",
            ",".join(str(k) for k in the_plan.config.cores),
        ]
        + (
            [
                "--mode",
                "open",
                "--rate-sweep",
                ",".join(f"{f:g}" for f in the_plan.config.rate_sweep),
            ]
            if the_plan.config.rate_sweep
            else []
        ),
        "plan": the_plan.to_dict(),
        "designs": designs,
        "platform": {
            "kernel": "Linux 6.8.0-45-generic",
            "machine": "x86_64",
            "hostname": "bench-01",
            "python": "3.11.7",
            "rustc": "rustc 1.83.0 (90b35a623 2024-11-26)",
            "cargo": "cargo 1.83.0 (5ffbef321 2024-10-29)",
            "cpu_affinity": list(range(16)),
            "topology": {
                "cpus": 16,
                "physical_cores": 16,
                "numa_nodes": 1,
                "smt": False,
                "cores": [[i] for i in range(16)],
            },
            "git": {"commit": "f5070e9d2c1b0a9e8f7d6c5b4a3928171605f4e3", "dirty": True},
            "pyperf": {
                "perf_version": "2.10.0",
                "date": "2026-11-22 11:29:58.102030",
                "platform": "Linux-6.8.0-45-generic-x86_64-with-glibc2.36",
                "aslr": "Full randomization",
                "load_avg_1min": 0.08,
                "runnable_threads": 1,
                "hostname": "bench-01",
                "boot_time": "2026-11-20 08:00:01",
                "uptime": 185_997.1,
                "cpu_model_name": "AMD EPYC 7443P 24-Core Processor",
                "cpu_count": 16,
                "cpu_freq": "0-15=2850 MHz",
                "cpu_config": "0-15=driver:acpi-cpufreq, governor:performance; idle:acpi_idle",
            },
        },
        "bin_dir": "/work/main/target/release",
        "plan_source": None,
        "doctor": [
            {
                "name": "cpu governor",
                "status": "ok",
                "value": "performance on CPUs 0-15",
                "explanation": "every CPU runs at its full frequency",
                "fix": "",
            },
            {
                "name": "turbo",
                "status": "warning",
                "value": "boost enabled",
                "explanation": "the frequency depends on temperature and on the other cores",
                "fix": "echo 0 | sudo tee /sys/devices/system/cpu/cpufreq/boost",
            },
            {
                "name": "isolated CPUs",
                "status": "info",
                "value": "none",
                "explanation": "other tasks may run on the benchmark CPUs",
                "fix": "boot with isolcpus=1-15",
            },
        ],
        "outcome": {
            "trials_planned": len(the_plan.trials),
            "trials_run": trials_run,
            "trials_failed": trials_failed,
            "interrupted": interrupted,
        },
    }


def build_run(
    directory: Path, *, seed: int = 7, fractions: tuple[float, ...] = FRACTIONS
) -> FakeRun:
    """The full synthetic run (closed loop only with fractions=()); returns where it is and which
    trials are failed or flagged. Another seed gives another run of the same plan."""
    return _build(directory, plan(fractions=fractions), seed)


def build_chain_run(directory: Path, *, seed: int = 5) -> FakeRun:
    """The monoio chain (CHAIN) at 1 and 2 cores, closed loop, 3 repetitions, no flagged or
    failed trial: every step of the chain has a ratio."""
    return _build(directory, plan(designs=CHAIN, fractions=()), seed)


def build_client_bound_run(directory: Path, *, seed: int = 11) -> FakeRun:
    """What a 2-CPU machine gives: tokio-ws and tokio-tpc on 1 server core, the load generator
    alone on the other core, closed loop, 3 repetitions. The one client core is as busy as the
    server's, so every trial is client-bound (and the first also unsteady): nothing is ranked,
    yet every number was measured (CPU times, context switches, histograms are all there)."""
    the_plan = plan(designs=("tokio-ws", "tokio-tpc"), fractions=(), cores=(1,), cpus=_cpus_two)
    return _build(directory, the_plan, seed, all_client_bound=True)


def _build(
    directory: Path, the_plan: Plan, seed: int, *, all_client_bound: bool = False
) -> FakeRun:
    rng = np.random.default_rng(seed)
    store = RunStore(directory)
    capacities: dict[str, float | None] = {}
    failed, flagged, ids = [], [], []
    for spec in the_plan.trials:
        capacity = capacities.get(spec.capacity_trial or "")
        result = _result(spec, rng, capacity, all_client_bound=all_client_bound)
        if spec.mode == "closed":
            ok = result.status == "ok" and result.loadgen is not None
            thr = result.loadgen["summary"]["throughput_rps"] if ok else None  # type: ignore[index]
            capacities[spec.trial_id] = thr
        result.flags = flags.judge(result)  # as run.execute does before storing
        rows = trial_rows(RUN_ID, result)
        trial = rows["trials"][0]
        ids.append(spec.trial_id)
        if trial["status"] != "ok":
            failed.append(spec.trial_id)
        elif trial["client_bound"] or trial["rate_missed"] or trial["unsteady"]:
            flagged.append(spec.trial_id)
        for table, table_rows in rows.items():
            store.add(table, table_rows)
    store.flush()
    store.write_manifest(
        manifest(the_plan, trials_run=len(ids), trials_failed=len(failed), interrupted=False)
    )
    return FakeRun(directory, tuple(failed), tuple(flagged), tuple(ids))


def build_empty_run(directory: Path) -> FakeRun:
    """A run interrupted before its first trial finished: a manifest and empty tables."""
    the_plan = plan()
    store = RunStore(directory)
    data = manifest(the_plan, trials_run=0, trials_failed=0, interrupted=True)
    del data["doctor"]  # older runs have no doctor table
    store.write_manifest(data)
    return FakeRun(directory, (), (), ())


def build_failed_run(directory: Path) -> FakeRun:
    """Every trial failed (e.g. the servers were not built for this CPU)."""
    the_plan = plan(designs=("tokio-ws", "tokio-tpc"), fractions=())
    store = RunStore(directory)
    ids = []
    for spec in the_plan.trials:
        result = TrialResult(
            spec,
            "failed",
            "server exited with code 132 before it was ready: Illegal instruction",
            "2026-11-22T11:30:00.000+00:00",
            "2026-11-22T11:30:00.300+00:00",
            failure="server_start",
        )
        for table, rows in trial_rows(RUN_ID, result).items():
            store.add(table, rows)
        ids.append(spec.trial_id)
    store.flush()
    store.write_manifest(
        manifest(the_plan, trials_run=len(ids), trials_failed=len(ids), interrupted=False)
    )
    return FakeRun(directory, tuple(ids), (), tuple(ids))


if __name__ == "__main__":  # python tests/fake_run.py DIR: a run to look at
    import sys

    print(build_run(Path(sys.argv[1])))
