"""Across runs from many machines (for `harness publish`): each machine's fingerprint from its
run's manifest, and the ratios measured within each run, queried over every run's parquet
through duckdb (one SQL query over all files, no hand-written merge).

A ratio is thread-per-core / work-stealing throughput of two designs measured side by side in
one run (same repetition, same configuration): absolute figures are never compared across
machines, only ratios measured within each. A ratio whose trials carry an instrument flag
(client-bound, oversubscribed, contended) is kept, counted and labelled, never hidden.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from harness.analysis.flagged import INSTRUMENT_FLAGS

# Per run, per pair and configuration: the median, min and max of the per-repetition ratios of
# closed-loop throughput (thread-per-core design / work-stealing design, paired by repetition).
RATIO_SQL = """
WITH t AS (
    SELECT filename AS source, server, scheduler, protocol, server_cores, connections,
           size_bytes, pipeline, work, repetition, throughput_rps,
           ({flagged}) AS flagged
    FROM read_parquet(?, union_by_name = true, filename = true)
    WHERE status = 'ok' AND mode = 'closed' AND throughput_rps > 0
),
pairs AS (
    SELECT a.source, a.server AS tpc, b.server AS ws, a.protocol, a.server_cores,
           a.connections, a.size_bytes, a.pipeline, a.work, a.repetition,
           a.throughput_rps / b.throughput_rps AS ratio,
           (a.flagged OR b.flagged) AS flagged
    FROM t AS a JOIN t AS b
      USING (source, protocol, server_cores, connections, size_bytes, pipeline, work, repetition)
    WHERE a.scheduler = 'per-core' AND b.scheduler = 'work-stealing'
)
SELECT source, tpc, ws, protocol, server_cores, connections, size_bytes, pipeline, work,
       median(ratio) AS ratio, min(ratio) AS ratio_min, max(ratio) AS ratio_max,
       count(*) AS repetitions, sum(CASE WHEN flagged THEN 1 ELSE 0 END) AS flagged
FROM pairs
GROUP BY ALL
ORDER BY tpc, ws, protocol, size_bytes, connections, server_cores, source
"""


@dataclass(frozen=True)
class Fingerprint:
    """What a machine is, from a run's manifest (what it did not record says so)."""

    machine_id: str  # short hash of CPU model, core layout and kernel
    cpu_model: str
    topology: str
    kernel: str
    virtualization: str
    rustc: str
    runtimes: dict[str, str]  # runtime -> version, from the designs the run used

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("CPU model", self.cpu_model),
            ("topology", self.topology),
            ("kernel", self.kernel),
            ("virtualisation", self.virtualization),
            ("rustc", self.rustc),
            ("runtimes", ", ".join(f"{r} {v}" for r, v in sorted(self.runtimes.items()))),
        ]


def hosts_text(manifest: dict[str, Any]) -> str:
    """Where a run put the server and the load generators."""
    layout = (manifest.get("hosts") or {}).get("layout") or {}
    if not layout:
        return "one machine (server and load generator on disjoint CPUs)"
    return (
        f"server on {layout.get('server_host')}, load generators on "
        f"{', '.join(layout.get('client_hosts') or [])}"
    )


def _topology_text(topo: dict[str, Any]) -> str:
    if not topo:
        return "not recorded"
    return (
        f"{topo.get('cpus', '?')} CPUs on {topo.get('physical_cores', '?')} physical cores, "
        f"{topo.get('numa_nodes', '?')} NUMA node(s), SMT {'on' if topo.get('smt') else 'off'}"
    )


def fingerprint(manifest: dict[str, Any]) -> Fingerprint:
    """The machine that ran the server: this machine's platform, or the server host's (a run
    across hosts records each host's platform)."""
    platform = manifest.get("platform") or {}
    pyperf = platform.get("pyperf") or {}
    hosts = manifest.get("hosts") or {}
    layout = hosts.get("layout") or {}
    server = (hosts.get("platforms") or {}).get(layout.get("server_host")) or {}
    topo = server.get("topology") or platform.get("topology") or {}
    cpu_model = str(server.get("cpu_model") or pyperf.get("cpu_model_name") or "not recorded")
    kernel = str(server.get("kernel") or platform.get("kernel") or "not recorded")
    virt = str(platform.get("virtualization") or "not recorded")
    # Virtualisation is shown but not part of the id: older runs did not record it.
    key = json.dumps([cpu_model, topo.get("cores"), kernel], sort_keys=True)
    runtimes = {
        str(d.get("runtime")): str(d.get("runtime_version"))
        for d in (manifest.get("designs") or {}).values()
        if d.get("runtime") and d.get("runtime_version")
    }
    return Fingerprint(
        machine_id=hashlib.sha256(key.encode()).hexdigest()[:8],
        cpu_model=cpu_model,
        topology=_topology_text(topo),
        kernel=kernel,
        virtualization=virt,
        rustc=str(platform.get("rustc") or "not recorded"),
        runtimes=runtimes,
    )


def ratios(run_dirs: list[Path]) -> pd.DataFrame:
    """Per-run ratios of every thread-per-core / work-stealing pair (RATIO_SQL), over all the
    runs' trials.parquet files in one duckdb query; `source` is each run's trials.parquet."""
    files = [str(d / "trials.parquet") for d in run_dirs if (d / "trials.parquet").is_file()]
    if not files:
        return pd.DataFrame()
    con = duckdb.connect()
    try:
        names = {
            r[0] for r in con.execute("SELECT name FROM parquet_schema(?) ", [files]).fetchall()
        }
        flags = [f for f in INSTRUMENT_FLAGS if f in names]
        flagged = " OR ".join(f"coalesce({f}, false)" for f in flags) or "false"
        return con.execute(RATIO_SQL.format(flagged=flagged), [files]).df()
    finally:
        con.close()
