"""Stage 2: run one trial: start the server pinned, wait until it is ready, drive it with the load
generator pinned to disjoint CPUs, watch both through /proc (and perf), stop the server with
SIGTERM and collect what both sides report.

A trial never raises for a failure of the thing measured: it returns a TrialResult with status
"failed" and the reason, and the run goes on. Only KeyboardInterrupt escapes, after cleanup.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from harness.plan.designs import Design
from harness.plan.plan import TrialSpec
from harness.plan.topology import format_cpu_list
from harness.run import procs, sampler, server
from harness.run.client_idle import polling_when_idle
from harness.run.flags import TrialFlags

HOST = server.HOST
LOADGEN_SLACK_S = 15.0  # beyond warm-up + duration + request timeout, before we kill it
CLIENT_SAMPLE_EVERY_S = 0.5  # the client exits at the window's end: sample it while it runs


# Why a trial failed, as data (docs/data.md, `failure`); its `reason` says it in words, with the
# details (exit codes, log lines, ports).
FailureKind = Literal[
    "server_start",  # the server did not start or was not ready in time
    "port_shared",  # another process listens on the trial's port (SO_REUSEPORT)
    "server_died",  # the server exited during the trial
    "server_stop",  # the server stopped badly or reported no usable counters
    "loadgen_overran",  # the load generator ran past its limit and was killed
    "loadgen_failed",  # the load generator ended without a usable report
    "no_requests",  # no request succeeded
    "host_lost",  # a host (or its connection) failed during a trial across hosts
    "hosts_unmergeable",  # the client hosts' results could not be merged
    "rate_unresolved",  # a rate-sweep trial's capacity trial measured no throughput
    "interrupted",  # the user stopped the run during the trial
]


@dataclass(frozen=True)
class Failed:
    """A failure found while running a trial: its kind, and the reason in words."""

    kind: FailureKind
    reason: str


@dataclass
class TrialResult:
    spec: TrialSpec
    status: str  # "ok" | "failed"
    reason: str
    started_at: str
    ended_at: str
    loadgen: dict[str, Any] | None = None
    counters: dict[str, Any] | None = None
    threads: list[dict[str, Any]] = field(default_factory=list)  # threads.parquet rows
    server_cpu_s: float | None = None
    server_rss_bytes: int | None = None
    perf: dict[str, int | None] = field(default_factory=dict)
    cpu_busy: dict[int, tuple[float, float]] = field(default_factory=dict)  # per CPU, window
    port: int | None = None  # the port the server listened on
    port_attempts: int | None = None  # ports tried: > 1 when a picked port was taken meanwhile
    # The server's `server-settings/1` line (profile and runtime settings), None if it printed none
    server_settings: dict[str, Any] | None = None
    flags: TrialFlags | None = None  # judged once by the run (run.flags.judge), then stored
    # How the load generator's CPUs idled (run.client_idle): "poll" or "system", and why not poll
    client_idle: str | None = None
    client_idle_why: str = ""
    failure: FailureKind | None = None  # with status "failed": what kind of failure


@dataclass
class HostsTrialResult(TrialResult):
    """A TrialResult whose load-generator document is the hosts' merged one; `per_host` keeps
    each client host's own document (its rows are stored apart: the `client_host` column).
    Defined here, not in run.multihost, so that reading stored records imports nothing of SSH."""

    per_host: dict[str, dict[str, Any]] = field(default_factory=dict)
    server_host: str = ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def loadgen_argv(spec: TrialSpec, loadgen: Path, port: int, out: Path) -> list[str]:
    client = spec.cpus.client[: spec.client_threads]
    argv = [
        str(loadgen),
        "--host",
        HOST,
        "--port",
        str(port),
        "--protocol",
        spec.protocol,
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
        "--hlog",
        str(out.parent / out.name.replace(".loadgen.json", ".hlog")),
    ]
    if spec.protocol == "echo":
        argv += ["--size", str(spec.size_bytes)]
    # Options beyond the closed-loop defaults are passed only when used.
    if spec.pipeline != 1:
        argv += ["--pipeline", str(spec.pipeline)]
    if spec.rate is not None:
        argv += ["--rate", f"{spec.rate:g}", "--arrival", spec.arrival, "--seed", str(spec.seed)]
    if spec.hot_fraction is not None and spec.hot_share is not None:
        argv += ["--hot-fraction", f"{spec.hot_fraction:g}", "--hot-share", f"{spec.hot_share:g}"]
    if spec.requests_per_connection is not None:
        argv += ["--requests-per-connection", str(spec.requests_per_connection)]
    return argv


def server_argv(spec: TrialSpec, design: Design, bin_dir: Path, port: int) -> list[str]:
    cpus = format_cpu_list(spec.cpus.server)
    argv = design.argv(
        bin_dir=bin_dir,
        protocol=spec.protocol,
        host=HOST,
        port=port,
        threads=spec.server_cores,
        cpus=cpus,
    )
    if spec.work != "none":
        argv += ["--work", spec.work, "--seed", str(spec.seed)]
    return argv


def _counters(stopped: server.Stopped, design: Design, log: Path) -> tuple[dict | None, list[str]]:
    """The counters line (if the design prints one) and what was wrong with the shutdown."""
    notes: list[str] = []
    counters = None
    if design.counters:
        line = next((ln for ln in stopped.stdout.splitlines() if ln.lstrip().startswith("{")), None)
        try:
            counters = json.loads(line) if line else None
        except json.JSONDecodeError:
            counters = None
        if counters is None:
            notes.append("server printed no counters after SIGTERM")
    if stopped.returncode is None:
        notes.append(
            f"server still running {server.SHUTDOWN_LIMIT_S:.0f} s after SIGTERM: "
            + procs.log_lines(log)
        )
    elif stopped.returncode != 0:
        notes.append(procs.ended("server", stopped.returncode, log, " after SIGTERM"))
    return counters, notes


def _not_ready(exc: server.ServerStartError, log: Path) -> str:
    """A trial's reason for a server that never became ready: how it ended, then its log."""
    if exc.kind == "spawn":
        return f"server could not start: {exc.detail}"
    if exc.kind == "exited":
        return procs.ended("server", exc.exit_code, log, " before it was ready")
    return f"server not ready after {server.READY_TIMEOUT_S:.0f} s: {procs.log_lines(log)}"


def _start_server(
    spec: TrialSpec, design: Design, bin_dir: Path, log: Path
) -> tuple[server.Server | Failed, int, int]:
    """The server started on a port nobody else holds: a port taken between picking it and
    the server binding it (the server says EADDRINUSE) is retried on a fresh one. Returns the
    server (or the reason it did not start), the port and the number of ports tried."""
    attempt = 0
    while True:
        attempt += 1
        port = procs.free_port(HOST)
        try:
            srv = server.start(
                design,
                server_argv(spec, design, bin_dir, port),
                protocol=spec.protocol,
                cpus=spec.cpus.server,
                port=port,
                log=log,
                strict_ready=False,
            )
        except server.ServerStartError as exc:
            if (
                exc.kind == "exited"
                and procs.address_in_use(log)
                and attempt < server.PORT_ATTEMPTS
            ):
                continue
            tried = f" ({attempt} ports tried, each taken)" if attempt > 1 else ""
            return Failed("server_start", _not_ready(exc, log) + tried), port, attempt
        foreign = procs.foreign_listeners(port, sampler.descendants(srv.pid))
        if foreign:
            srv.kill()
            return Failed("port_shared", _foreign(port, foreign)), port, attempt
        return srv, port, attempt


def _foreign(port: int, holders: list[str]) -> str:
    return (
        f"port {port} is also listened on by {', '.join(holders)}, outside the server's process "
        "tree (SO_REUSEPORT sharing): connections would be split with it; stop that process"
    )


@dataclass
class Window:
    """What was sampled when the measured window opened (after the warm-up): the server's and
    the client's threads, the CPUs' times and perf; the client's last sample while it ran."""

    server_pids: list[int] = field(default_factory=list)
    server: sampler.TreeSample | None = None
    client: sampler.TreeSample | None = None
    last_client: sampler.TreeSample | None = None
    cpus: dict[int, tuple[float, float]] = field(default_factory=dict)
    perf: sampler.PerfStat | None = None


def run_trial(spec: TrialSpec, design: Design, bin_dir: Path, raw: Path) -> TrialResult:
    """Run one trial; raw is the directory for this trial's raw files."""
    started = _now()
    server_log = raw / f"{spec.trial_id}.server.log"
    loadgen_log = raw / f"{spec.trial_id}.loadgen.log"
    srv: server.Server | None = None
    client: subprocess.Popen[bytes] | None = None
    window = Window()
    with open(loadgen_log, "wb") as llog:
        try:
            srv, port, attempts = _start_server(spec, design, bin_dir, server_log)
            where = {"port": port, "port_attempts": attempts}
            if isinstance(srv, Failed):
                return _failed(spec, srv, started, **where)
            with polling_when_idle(spec.cpus.client[: spec.client_threads]) as idle:
                client = procs.spawn(
                    loadgen_argv(
                        spec, bin_dir / "loadgen", port, raw / f"{spec.trial_id}.loadgen.json"
                    ),
                    stdout=subprocess.DEVNULL,
                    stderr=llog,
                )
                why = _wait_for_loadgen(spec, srv, client, window, raw)
            llog.flush()
            if why is None:
                result = TrialResult(spec, "ok", "", started, "", **where)
                result.client_idle, result.client_idle_why = idle.mode, idle.why
                result.server_settings = srv.settings
                _add_samples(result, window)
                why = _read_report(result, client.returncode, raw)
            if why is not None:
                return _failed(spec, why, started, **where)
            return _stop_server(result, srv, design, raw, client_failed=client.returncode == 1)
        finally:
            if window.perf is not None:
                window.perf.kill()
            if client is not None:
                procs.kill_group(client)
            if srv is not None and not isinstance(srv, Failed):
                srv.kill()


def _failed(spec: TrialSpec, failed: Failed, started: str, **where: Any) -> TrialResult:
    return TrialResult(spec, "failed", failed.reason, started, _now(), failure=failed.kind, **where)


def _wait_for_loadgen(
    spec: TrialSpec,
    srv: server.Server,
    client: subprocess.Popen[bytes],
    window: Window,
    raw: Path,
) -> Failed | None:
    """Until the load generator exits, sampling the threads as the window opens and the
    client while it runs; why the trial fails if it runs past its limit (then killed)."""
    t_start = time.monotonic()
    limit = spec.warmup_s + spec.duration_s + spec.timeout_s + LOADGEN_SLACK_S
    next_client_sample = 0.0
    while client.poll() is None:
        elapsed = time.monotonic() - t_start
        if window.server is None and elapsed >= spec.warmup_s:
            window.server_pids = sampler.descendants(srv.pid)
            window.server = sampler.sample(window.server_pids)
            window.cpus = sampler.cpu_times()
            window.client = window.last_client = sampler.sample([client.pid])
            window.perf = sampler.PerfStat(window.server_pids, raw / f"{spec.trial_id}.perf.csv")
            next_client_sample = elapsed + CLIENT_SAMPLE_EVERY_S
        elif window.server is not None and elapsed >= next_client_sample:
            sample = sampler.sample([client.pid])
            if sample.threads:
                window.last_client = sample
            next_client_sample = elapsed + CLIENT_SAMPLE_EVERY_S
        if elapsed > limit:
            why = f"load generator still running {limit:.0f} s after start; killed: "
            return Failed(
                "loadgen_overran", why + procs.log_lines(raw / f"{spec.trial_id}.loadgen.log")
            )
        time.sleep(0.01)
    return None


def _add_samples(result: TrialResult, window: Window) -> None:
    """The window's thread rows, CPU time, memory, busy CPUs and perf counters (when the
    window opened at all)."""
    if window.server is None:
        return
    spec = result.spec
    after_server = sampler.sample(window.server_pids)
    ours = set(spec.cpus.server) | set(spec.cpus.client[: spec.client_threads])
    result.cpu_busy = sampler.cpu_deltas(window.cpus, sampler.cpu_times(), ours)
    result.perf = window.perf.stop() if window.perf else {}
    result.threads = sampler.thread_rows(spec.trial_id, "server", window.server, after_server)
    if window.client is not None and window.last_client is not None:
        result.threads += sampler.thread_rows(
            spec.trial_id, "client", window.client, window.last_client
        )
    result.server_cpu_s = sum(r["cpu_s"] for r in result.threads if r["role"] == "server")
    result.server_rss_bytes = after_server.rss_bytes


def _read_report(result: TrialResult, returncode: int, raw: Path) -> Failed | None:
    """The load generator's report into the result; why the trial fails if there is none."""
    log = raw / f"{result.spec.trial_id}.loadgen.log"
    out = raw / f"{result.spec.trial_id}.loadgen.json"
    if returncode < 0:  # killed: whatever it wrote is not its report
        return Failed("loadgen_failed", procs.ended("load generator", returncode, log))
    report: dict[str, Any] | None = None
    if out.exists():
        try:
            report = json.loads(out.read_text())
        except json.JSONDecodeError as exc:
            why = procs.ended("load generator", returncode, log)
            return Failed("loadgen_failed", f"{why} (and wrote invalid JSON: {exc})")
    if returncode == 2 or report is None:
        return Failed("loadgen_failed", procs.ended("load generator", returncode, log))
    result.loadgen = report
    return None


def _stop_server(
    result: TrialResult, srv: server.Server, design: Design, raw: Path, client_failed: bool
) -> TrialResult:
    """A server that died or shares its port fails the trial; otherwise it is stopped with
    SIGTERM and its counters and shutdown go into the result."""
    server_log = raw / f"{result.spec.trial_id}.server.log"
    if (code := srv.proc.poll()) is not None:
        result.status, result.failure = "failed", "server_died"
        result.reason = procs.ended("server", code, server_log, " during the trial")
    elif foreign := procs.foreign_listeners(result.port, sampler.descendants(srv.pid)):
        result.status, result.reason = "failed", _foreign(result.port, foreign)
        result.failure = "port_shared"
    else:
        counters, notes = _counters(srv.stop(), design, server_log)
        return conclude(result, counters, notes, raw, client_failed)
    result.ended_at = _now()
    return result


def conclude(
    result: TrialResult,
    counters: dict[str, Any] | None,
    notes: list[str],
    raw: Path,
    client_failed: bool = False,
) -> TrialResult:
    """The server's counters stored beside the trial's raw files; the trial fails, with every
    note, when no request succeeded or the server stopped badly (one machine or several)."""
    result.counters = counters
    if counters is not None:
        (raw / f"{result.spec.trial_id}.server.json").write_text(json.dumps(counters) + "\n")
    summary = (result.loadgen or {}).get("summary", {})
    failure: FailureKind = "server_stop"
    if client_failed or not summary.get("requests"):
        errors = summary.get("errors", {})
        kinds = ", ".join(f"{k}={v}" for k, v in errors.items() if v) or "none"
        notes.insert(0, f"no request succeeded (errors: {kinds})")
        failure = "no_requests"
    if notes:
        result.status, result.reason, result.failure = "failed", "; ".join(notes), failure
    result.ended_at = _now()
    return result
