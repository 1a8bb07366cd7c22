"""One trial across hosts (harness.run.multihost's HostSession.run_trial) as it goes: its
processes, port, clocks and files; the server's samples; the steps that need no session (the
server's READY and SIGTERM over SSH, the hosts polled); a failure raised as TrialFailed and
returned by run_trial as the failed result."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.plan.designs import Design
from harness.plan.plan import TrialSpec
from harness.run import clock, procs, sampler, server
from harness.run.remote import Connection, RemoteError, RemoteProcess
from harness.run.trial import FailureKind, HostsTrialResult, _now


class TrialFailed(Exception):
    """A trial across hosts failed: the reason, and fields of its result (run_trial returns
    the failed result; nothing escapes)."""

    def __init__(self, kind: FailureKind, reason: str, **fields: Any) -> None:
        super().__init__(reason)
        self.kind, self.reason, self.fields = kind, reason, fields


@dataclass
class HostsTrial:
    """One trial across hosts as it goes: its processes, port, clocks and files."""

    spec: TrialSpec
    raw: Path
    started: str
    server_host: str
    port: int | None = None  # once picked (free there, checked by ss)
    addr: str = ""
    srv: RemoteProcess | None = None
    conns: dict[str, Connection] = field(default_factory=dict)
    clients: dict[str, RemoteProcess] = field(default_factory=dict)
    offsets: dict[str, clock.ClockOffset] = field(default_factory=dict)
    files: dict[str, tuple[str, str]] = field(default_factory=dict)  # host -> (json, hlog) there
    settings: dict[str, Any] = field(default_factory=dict)
    start_local: int = 0

    def file(self, suffix: str) -> Path:
        return self.raw / f"{self.spec.trial_id}.{suffix}"

    def fail(self, failed: TrialFailed) -> HostsTrialResult:
        port_kw = {"port": self.port, "port_attempts": 1} if self.port is not None else {}
        return HostsTrialResult(
            self.spec, "failed", failed.reason, self.started, _now(), failure=failed.kind,
            server_host=self.server_host, **port_kw, **failed.fields,
        )  # fmt: skip


@dataclass
class ServerWindow:
    """The server host's samples at the window's opening and after the load."""

    before: sampler.TreeSample | None = None
    after: sampler.TreeSample | None = None
    before_cpus: dict[int, tuple[float, float]] = field(default_factory=dict)
    after_cpus: dict[int, tuple[float, float]] = field(default_factory=dict)


def poll_hosts(t: HostsTrial, pending: dict[str, RemoteProcess]) -> None:
    """Drop the load generators that ended; a lost host or a dead server fails the trial."""
    assert t.srv is not None
    for h, p in list(pending.items()):
        try:
            if p.poll() is not None:
                del pending[h]
        except RemoteError:
            raise TrialFailed(
                "host_lost",
                f"client host {h} failed during the trial: its load generator "
                f"ended without an exit status ({p.error})",
            ) from None
    try:
        code = t.srv.poll()
    except RemoteError:
        raise TrialFailed(
            "host_lost", f"server host {t.server_host} failed during the trial ({t.srv.error})"
        ) from None
    if code is not None:
        tail = procs.tail(t.file("server.log"))
        why = f"server on {t.server_host} died during the trial (exit {code}): {tail}"
        raise TrialFailed("server_died", why)


def add_samples(result: HostsTrialResult, spec: TrialSpec, window: ServerWindow) -> None:
    if window.before is None or window.after is None:
        return
    result.threads = sampler.thread_rows(spec.trial_id, "server", window.before, window.after)
    result.server_cpu_s = sum(r["cpu_s"] for r in result.threads)
    result.server_rss_bytes = window.after.rss_bytes
    # The contended flag, on the server host's CPUs (the client hosts' CPU ids are other
    # machines' and are not judged).
    result.cpu_busy = sampler.cpu_deltas(
        window.before_cpus, window.after_cpus, set(spec.cpus.server)
    )


def wait_ready(srv: RemoteProcess, log: Path, settings: dict[str, Any]) -> str | None:
    """None once the server printed READY; otherwise why not. Other lines before READY are
    skipped, but its `server-settings/1` line goes into settings["line"], as on one machine."""
    deadline = time.monotonic() + server.READY_TIMEOUT_S
    while time.monotonic() < deadline:
        line = srv.read_line(0.1)
        if line is not None and line.strip() == "READY":
            return None
        if line is not None and (parsed := server.parse_settings(line)) is not None:
            settings.setdefault("line", parsed)
        try:
            code = srv.poll()
        except RemoteError as exc:
            return f"was lost before it was ready ({exc})"
        if code is not None:
            tail = procs.tail(log)
            return f"exited with code {code} before it was ready" + (f": {tail}" if tail else "")
    return f"not ready after {server.READY_TIMEOUT_S:.0f} s"


def stop_server(srv: RemoteProcess, design: Design) -> tuple[dict[str, Any] | None, list[str]]:
    """SIGTERM, the counters line (if the design prints one) and what went wrong."""
    notes: list[str] = []
    code: int | None = None
    try:
        srv.send_signal("TERM")
        code = srv.wait(server.SHUTDOWN_LIMIT_S)
    except RemoteError as exc:
        late = f"server still running {server.SHUTDOWN_LIMIT_S:.0f} s after SIGTERM"
        notes.append(late if "still running" in str(exc) else f"server: {exc}")
    out = srv.stdout_bytes.decode(errors="replace")
    counters = None
    if design.counters:
        line = next((ln for ln in out.splitlines() if ln.lstrip().startswith("{")), None)
        with contextlib.suppress(json.JSONDecodeError):
            counters = json.loads(line) if line else None
        if counters is None:
            notes.append("server printed no counters after SIGTERM")
    if code not in (None, 0):
        notes.append(f"server exited with code {code} after SIGTERM")
    return counters, notes
