"""Stage 2: run one trial: start the server pinned, wait until it is ready, drive it with the load
generator pinned to disjoint CPUs, stop it with SIGTERM and collect what both sides report.

A trial never raises for a failure of the thing measured: it returns a TrialResult with status
"failed" and the reason, and the run goes on. Only KeyboardInterrupt escapes, after cleanup.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import procs
from harness.designs import Design
from harness.plan import TrialSpec
from harness.topology import format_cpu_list

HOST = "127.0.0.1"
READY_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 2.0  # the server contract's bound
LOADGEN_SLACK_S = 15.0  # beyond warm-up + duration + request timeout, before we kill it


@dataclass
class TrialResult:
    spec: TrialSpec
    status: str  # "ok" | "failed"
    reason: str
    started_at: str
    ended_at: str
    loadgen: dict[str, Any] | None = None
    counters: dict[str, Any] | None = None
    server_cpu_s: float | None = None
    notes: list[str] = field(default_factory=list)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def loadgen_argv(spec: TrialSpec, loadgen: Path, port: int, out: Path) -> list[str]:
    client = spec.cpus.client[: spec.client_threads]
    return [
        str(loadgen),
        "--host",
        HOST,
        "--port",
        str(port),
        "--protocol",
        spec.protocol,
        "--size",
        str(spec.size_bytes),
        "--connections",
        str(spec.connections),
        "--threads",
        str(len(client)),
        "--cpus",
        format_cpu_list(client),
        "--warmup",
        str(spec.warmup_s),
        "--duration",
        str(spec.duration_s),
        "--timeout",
        str(spec.timeout_s),
        "--out",
        str(out),
    ]


def run_trial(spec: TrialSpec, design: Design, bin_dir: Path, raw: Path) -> TrialResult:
    """Run one trial; raw is the directory for this trial's raw files."""
    started = _now()
    fail = lambda reason, **kw: TrialResult(spec, "failed", reason, started, _now(), **kw)  # noqa: E731
    port = procs.free_port(HOST)
    server_cpus = format_cpu_list(spec.cpus.server)
    argv = design.argv(
        bin_dir=bin_dir,
        protocol=spec.protocol,
        host=HOST,
        port=port,
        threads=spec.server_cores,
        cpus=server_cpus,
    )
    server_log = raw / f"{spec.trial_id}.server.log"
    loadgen_out = raw / f"{spec.trial_id}.loadgen.json"
    loadgen_log = raw / f"{spec.trial_id}.loadgen.log"
    server: subprocess.Popen[bytes] | None = None
    client: subprocess.Popen[bytes] | None = None
    with open(server_log, "wb") as slog, open(loadgen_log, "wb") as llog:
        try:
            try:
                server = procs.spawn(
                    argv,
                    stdout=subprocess.PIPE,
                    stderr=slog,
                    cpus=None if design.pins_itself else server_cpus,
                )
            except OSError as exc:
                return fail(f"server could not start: {exc}")
            assert server.stdout is not None
            deadline = time.monotonic() + READY_TIMEOUT_S
            if design.ready == "line":
                line = procs.read_line(server.stdout, deadline, server)
                while line is not None and line.strip() != "READY":
                    line = procs.read_line(server.stdout, deadline, server)
                ready = line is not None
            else:
                ready = procs.wait_port(HOST, port, deadline, server)
            if not ready:
                code = server.poll()
                why = (
                    f"server exited with code {code} before it was ready"
                    if code is not None
                    else f"server not ready after {READY_TIMEOUT_S:.0f} s"
                )
                slog.flush()
                return fail(f"{why}: {procs.tail(server_log)}".rstrip(": "))

            load_argv = loadgen_argv(spec, bin_dir / "loadgen", port, loadgen_out)
            t_start = time.monotonic()
            client = procs.spawn(load_argv, stdout=subprocess.DEVNULL, stderr=llog)
            # Server CPU over the measured window: sampled when the window opens and closes.
            cpu_begin = cpu_end = None
            window = (spec.warmup_s, spec.warmup_s + spec.duration_s)
            limit = window[1] + spec.timeout_s + LOADGEN_SLACK_S
            while client.poll() is None:
                elapsed = time.monotonic() - t_start
                if cpu_begin is None and elapsed >= window[0]:
                    cpu_begin = procs.cpu_seconds(server.pid)
                if cpu_end is None and elapsed >= window[1]:
                    cpu_end = procs.cpu_seconds(server.pid)
                if elapsed > limit:
                    return fail(f"load generator still running {limit:.0f} s after start; killed")
                time.sleep(0.01)
            server_cpu = (
                (cpu_end - cpu_begin) if cpu_begin is not None and cpu_end is not None else None
            )
            server_died = server.poll()

            report: dict[str, Any] | None = None
            if loadgen_out.exists():
                try:
                    report = json.loads(loadgen_out.read_text())
                except json.JSONDecodeError as exc:
                    return fail(f"load generator wrote invalid JSON: {exc}")
            if client.returncode == 2 or report is None:
                llog.flush()
                return fail(
                    f"load generator failed (exit {client.returncode}): {procs.tail(loadgen_log)}"
                )

            counters = None
            if server_died is not None:
                slog.flush()
                return fail(
                    f"server died during the trial (exit {server_died}): {procs.tail(server_log)}",
                    loadgen=report,
                    server_cpu_s=server_cpu,
                )
            server.send_signal(signal.SIGTERM)
            stop_deadline = time.monotonic() + SHUTDOWN_TIMEOUT_S
            notes = []
            if design.counters:
                line = procs.read_line(server.stdout, stop_deadline, server)
                while line is not None and not line.lstrip().startswith("{"):
                    line = procs.read_line(server.stdout, stop_deadline, server)
                try:
                    counters = json.loads(line) if line else None
                except json.JSONDecodeError:
                    counters = None
                if counters is None:
                    notes.append("server printed no counters after SIGTERM")
            try:
                code = server.wait(timeout=max(0.0, stop_deadline - time.monotonic()) + 0.05)
                if code != 0:
                    notes.append(f"server exited with code {code} after SIGTERM")
            except subprocess.TimeoutExpired:
                notes.append(f"server still running {SHUTDOWN_TIMEOUT_S:.0f} s after SIGTERM")
            if counters is not None:
                (raw / f"{spec.trial_id}.server.json").write_text(json.dumps(counters) + "\n")

            ok_requests = report["summary"]["requests"]
            if client.returncode == 1 or ok_requests == 0:
                errors = report["summary"].get("errors", {})
                kinds = ", ".join(f"{k}={v}" for k, v in errors.items() if v) or "none"
                return fail(
                    f"no request succeeded (errors: {kinds})",
                    loadgen=report,
                    counters=counters,
                    server_cpu_s=server_cpu,
                    notes=notes,
                )
            if notes:
                return fail(
                    "; ".join(notes),
                    loadgen=report,
                    counters=counters,
                    server_cpu_s=server_cpu,
                    notes=notes,
                )
            return TrialResult(
                spec,
                "ok",
                "",
                started,
                _now(),
                loadgen=report,
                counters=counters,
                server_cpu_s=server_cpu,
            )
        finally:
            for proc in (client, server):
                if proc is not None:
                    procs.kill_group(proc)
