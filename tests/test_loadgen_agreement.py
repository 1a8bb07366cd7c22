"""The load generator agrees with an independent client (Debian's wrk) on a server-bound server.

When the server is the bottleneck (`--work fixed:N` burns N us per request on its one CPU),
every correct closed-loop client at the same concurrency measures the same throughput: the
server's. So wrk and our load generator on each of its I/O paths (`--io epoll`, `--io uring`,
docs/loadgen.md "I/O paths"), each pinned to the client CPU with one thread and the same
connections, are run interleaved (wrk, epoll, uring, wrk, uring, epoll, wrk) against one
epoll-tpc server on the other CPU, and each path's median throughput must agree with wrk's
within 3%.

As in every trial of the harness, the client CPU polls when idle (harness.run.client_idle): on
one machine a halted client CPU costs the server's CPU an interrupt per wake-up, and the two
clients sleep differently often (0.81 against 0.48 interrupts per request, measured), so that
the server's capacity would depend on the client (docs/fairness.md, "Waking the client"). Where
the CPU cannot be set to poll, the test skips saying why.

The machine's own noise is measured by the same runs: the spread (max - min) / median of wrk's
throughputs. When it is wider than the tolerance the comparison cannot resolve 3%, and the test
skips saying so (with the figures), rather than pass or fail on noise. Bounded: seven runs of
RUN_S seconds plus start-up, each killed after a hard limit; the server is stopped at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BIN_DIR, require_binaries
from helpers import free_port, server_process

from harness.run.client_idle import polling_when_idle

TOLERANCE = 0.03
RUN_S = 3
CONNECTIONS = 64
WORK = "fixed:20"  # ~20 us per request: ~40k req/s on one CPU, well below the client's capacity
DESIGN = "epoll-tpc"
# wrk, then the I/O paths in turn, their order reversed in the second round.
ORDER = ["wrk", "epoll", "uring", "wrk", "uring", "epoll", "wrk"]
CPUS = sorted(os.sched_getaffinity(0))


@contextlib.contextmanager
def _server(cpu: int) -> Iterator[int]:
    port = free_port()
    argv = [str(BIN_DIR / DESIGN), "--protocol", "http", "--port", str(port)]
    argv += ["--threads", "1", "--cpus", str(cpu), "--work", WORK]
    with server_process(argv, ready_port=port):
        yield port


def _wrk(port: int, cpu: int) -> float:
    argv = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{RUN_S}s"]
    out = subprocess.run(
        [*argv, f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=RUN_S + 15,
        check=True,
    ).stdout
    m = re.search(r"^Requests/sec:\s*([\d.]+)", out, re.M)
    assert m, f"cannot read wrk's output:\n{out}"
    return float(m.group(1))


def _loadgen(port: int, cpu: int, out: Path, io: str) -> float:
    argv = [str(BIN_DIR / "loadgen"), "--protocol", "http", "--port", str(port), "--io", io]
    argv += ["--threads", "1", "--cpus", str(cpu), "--connections", str(CONNECTIONS)]
    argv += ["--warmup", "0", "--duration", str(RUN_S), "--out", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_S + 15)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(out.read_text())["summary"]
    assert summary["errors_total"] == 0, summary["errors"]
    return summary["throughput_rps"]


def test_loadgen_and_wrk_measure_the_same_server_bound_throughput(tmp_path: Path) -> None:
    require_binaries("loadgen", DESIGN)
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk; scripts/apt-packages.txt)")
    if len(CPUS) < 2:
        pytest.skip("needs two CPUs: one for the server, one for the clients")
    client_cpu, server_cpu = CPUS[0], CPUS[1]
    runs: dict[str, list[float]] = {tool: [] for tool in ORDER}
    with polling_when_idle([client_cpu]) as idle, _server(server_cpu) as port:
        if idle.mode != "poll":
            pytest.skip(f"the client CPU cannot be set to poll when idle: {idle.why}")
        _wrk(port, client_cpu)  # the server's first connections and caches: not measured
        for i, tool in enumerate(ORDER):
            if tool == "wrk":
                runs[tool].append(_wrk(port, client_cpu))
            else:
                out = tmp_path / f"loadgen-{i}.json"
                runs[tool].append(_loadgen(port, client_cpu, out, tool))
    wrk = runs.pop("wrk")
    wrk_median = statistics.median(wrk)
    noise = (max(wrk) - min(wrk)) / wrk_median
    ratios = {io: statistics.median(rps) / wrk_median for io, rps in runs.items()}
    figures = f"wrk {', '.join(f'{x:.0f}' for x in wrk)} req/s; " + "; ".join(
        f"loadgen --io {io} {', '.join(f'{x:.0f}' for x in rps)} req/s, /wrk {ratios[io]:.3f}"
        for io, rps in runs.items()
    )
    if noise > TOLERANCE:
        pytest.skip(
            f"the machine is too noisy to resolve {TOLERANCE:.0%}: wrk's own runs spread by "
            f"{noise:.1%} ({figures})"
        )
    assert all(abs(ratio - 1) <= TOLERANCE for ratio in ratios.values()), (
        f"loadgen and wrk disagree by more than {TOLERANCE:.0%}: {figures}"
    )
