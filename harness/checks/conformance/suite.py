"""The conformance suite: every check by name, running one bounded, shutdown and counters
against the client's own counts, and the preflight `quick_check` of `harness run`."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.checks.conformance import echo, http, processes
from harness.checks.conformance.client import (
    CheckFailed,
    CheckSkipped,
    _close,
    _connect,
    _echo,
    _expect_eof,
    _payload,
    _read_response,
    _request,
)
from harness.checks.conformance.proctree import parse_cpus
from harness.checks.conformance.server import (
    SHUTDOWN_LIMIT_S,
    RunningServer,
    ServerStartError,
    start_server,
)
from harness.plan.designs import Design

CHECK_TIMEOUT_S = 10.0  # hard bound on any one check


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # "pass" | "fail" | "skip"
    reason: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True unless the check failed: a skipped check does not refuse a design."""
        return self.status != "fail"

    def __str__(self) -> str:
        return f"{self.name}: {self.status}" + (f" ({self.reason})" if self.reason else "")


@dataclass(frozen=True)
class Check:
    name: str
    protocols: tuple[str, ...]
    run: Callable[[RunningServer], Awaitable[str]]


# In the order the test suite runs them on one server (garbage last but the /proc checks).
CHECKS: dict[str, Check] = {
    c.name: c
    for c in [
        Check("echo_sizes", ("echo",), echo.echo_sizes),
        Check("echo_split_writes", ("echo",), echo.echo_split_writes),
        Check("echo_concurrent", ("echo",), echo.echo_concurrent),
        Check("echo_half_close", ("echo",), echo.echo_half_close),
        Check("echo_back_pressure", ("echo",), echo.echo_back_pressure),
        Check("http_response", ("http",), http.http_response),
        Check("http_pipelining", ("http",), http.http_pipelining),
        Check("http_connection_close", ("http",), http.http_connection_close),
        Check("http_malformed", ("http",), http.http_malformed),
        Check("http_oversized", ("http",), http.http_oversized),
        Check("http_garbage", ("http",), http.http_garbage),
        Check("no_fd_leak", ("echo", "http"), processes.no_fd_leak),
        Check("pinning", ("echo", "http"), processes.pinning),
    ]
}


def checks_for(protocol: str) -> list[str]:
    return [name for name, c in CHECKS.items() if protocol in c.protocols]


def _run(name: str, body: Callable[[], Awaitable[str]]) -> CheckResult:
    start = time.monotonic()

    def result(status: str, reason: str) -> CheckResult:
        return CheckResult(name, status, reason, time.monotonic() - start)

    async def bounded() -> str:
        return await asyncio.wait_for(body(), CHECK_TIMEOUT_S)

    try:
        return result("pass", asyncio.run(bounded()))
    except CheckFailed as exc:
        return result("fail", str(exc))
    except CheckSkipped as exc:
        return result("skip", str(exc))
    except TimeoutError:
        return result("fail", f"did not finish within {CHECK_TIMEOUT_S:.0f} s")
    except (OSError, asyncio.IncompleteReadError) as exc:
        return result("fail", f"{type(exc).__name__}: {exc}")


def run_check(name: str, server: RunningServer) -> CheckResult:
    """Runs CHECKS[name] against a running server; never raises for the server's faults."""
    check = CHECKS[name]
    if server.protocol not in check.protocols:
        return CheckResult(name, "skip", f"{name} is not a {server.protocol} check")
    return _run(name, lambda: check.run(server))


# --- shutdown and counters (stop the server: use a fresh one) -------------------------------


@dataclass
class Traffic:
    """What the client sent and received, to compare with the server's counters."""

    connections: int = 0
    messages: int = 0  # HTTP: requests answered; echo: non-empty messages (a lower bound)
    bytes_in: int = 0  # sent by the client
    bytes_out: int = 0  # received by the client


async def _counted_traffic(server: RunningServer) -> Traffic:
    t = Traffic()
    if server.protocol == "echo":
        sizes = [1, 100, 5000, 70_000] * 3
        backs = await asyncio.gather(
            *(_echo(server, _payload(s, i), half_close=True) for i, s in enumerate(sizes))
        )
        if [len(b) for b in backs] != sizes:
            raise CheckFailed("echo traffic for the counters came back short")
        t.connections, t.messages = len(sizes), len(sizes)
        t.bytes_in = t.bytes_out = sum(sizes)
        return t

    async def one(requests: int) -> tuple[int, int]:
        """requests pipelined on one connection, the last with Connection: close; the server
        has counted them all once it closes."""
        reader, writer = await _connect(server)
        try:
            payload = _request(server.host) * (requests - 1)
            payload += _request(server.host, "Connection: close\r\n")
            writer.write(payload)
            received = 0
            for _ in range(requests):
                received += len((await _read_response(reader)).raw)
            await _expect_eof(reader, "the last response")
            return len(payload), received
        finally:
            await _close(writer)

    counts = [1, 2, 3, 4, 5, 6]
    done = await asyncio.gather(*(one(n) for n in counts))
    t.connections, t.messages = len(counts), sum(counts)
    t.bytes_in = sum(sent for sent, _ in done)
    t.bytes_out = sum(got for _, got in done)
    return t


def _counters_problem(server: RunningServer, line: str, t: Traffic) -> str | None:
    try:
        c = json.loads(line)
    except ValueError:
        return f"counters line is not JSON: {line[:80]!r}"
    head = (c.get("schema"), c.get("design"), c.get("protocol"))
    if head != ("server-counters/1", server.design.name, server.protocol):
        return f"schema, design, protocol = {head}"
    workers = c.get("workers") or []
    if [w.get("worker") for w in workers] != list(range(len(server.cpus))):
        return f"workers {[w.get('worker') for w in workers]}, expected 0..{len(server.cpus) - 1}"
    if [w.get("cpu") for w in workers] != list(server.cpus):
        return f"worker cpus {[w.get('cpu') for w in workers]}, expected {list(server.cpus)}"

    def total(key: str) -> int | None:
        values = [w.get(key) for w in workers]
        if all(v is None for v in values):
            return None  # not measured by this design: absent, which is allowed
        if any(v is None for v in values):
            raise CheckFailed(f"{key} is null for some workers only: {values}")
        return sum(values)

    try:
        got = {k: total(k) for k in ("connections", "messages", "bytes_in", "bytes_out")}
    except CheckFailed as exc:
        return str(exc)
    if got["connections"] != t.connections:
        return f"connections {got['connections']}, the client opened {t.connections}"
    if server.protocol == "http" and got["messages"] != t.messages:
        return f"messages {got['messages']}, the client sent {t.messages} requests"
    if server.protocol == "echo" and not (
        got["messages"] is not None and t.messages <= got["messages"] <= t.bytes_in
    ):
        return f"messages {got['messages']}, expected {t.messages}..{t.bytes_in} reads"
    for key, want in (("bytes_in", t.bytes_in), ("bytes_out", t.bytes_out)):
        if got[key] is not None and got[key] != want:
            return f"{key} {got[key]}, the client counted {want}"
    return None


def check_shutdown(server: RunningServer) -> list[CheckResult]:
    """Known traffic, then SIGTERM: "shutdown" (exit 0 within 2 s; on stdout nothing but the
    counters line, or nothing for counters = false) and "counters" (they equal the client's
    counts; skipped for counters = false; a null counter is accepted as "not measured")."""
    start = time.monotonic()
    counted: list[Traffic] = []

    async def traffic() -> str:
        counted.append(await _counted_traffic(server))
        return ""

    sent = _run("counters", traffic)
    if sent.status == "fail":
        failed = CheckResult("shutdown", "fail", f"traffic before SIGTERM: {sent.reason}")
        return [failed, sent]
    t = counted[0]
    stopped = server.stop()
    lines = stopped.stdout.splitlines()
    if stopped.returncode is None:
        shutdown = f"still running {SHUTDOWN_LIMIT_S:.0f} s after SIGTERM"
    elif stopped.returncode != 0:
        shutdown = f"exit code {stopped.returncode} after SIGTERM: {server.log_tail()}"
    elif stopped.seconds >= SHUTDOWN_LIMIT_S:
        shutdown = f"exited {stopped.seconds:.2f} s after SIGTERM"
    elif server.design.counters and len(lines) != 1:
        shutdown = f"expected one counters line on stdout, got {stopped.stdout[:120]!r}"
    elif not server.design.counters and stopped.stdout:
        shutdown = f"unexpected stdout {stopped.stdout[:120]!r}"
    else:
        shutdown = None
    elapsed = time.monotonic() - start
    results = [
        CheckResult(
            "shutdown",
            "fail" if shutdown else "pass",
            shutdown or f"exit 0 {stopped.seconds:.2f} s after SIGTERM",
            elapsed,
        )
    ]
    if not server.design.counters:
        reason = f"{server.design.name} prints no counters (registry: counters = false)"
        results.append(CheckResult("counters", "skip", reason, 0.0))
    elif not lines:
        results.append(CheckResult("counters", "fail", "no counters line after SIGTERM", 0.0))
    else:
        problem = _counters_problem(server, lines[-1], t)
        status, reason = ("fail", problem) if problem else ("pass", f"match {t}")
        results.append(CheckResult("counters", status, reason, 0.0))
    return results


# --- the preflight --------------------------------------------------------------------------

QUICK: dict[str, list[tuple[str, Callable[[RunningServer], Awaitable[str]]]]] = {
    "echo": [
        ("echo_sizes", functools.partial(echo.echo_sizes, sizes=(1, 64 * 1024, 1024 * 1024))),
        ("echo_split_writes", functools.partial(echo.echo_split_writes, size=20)),
        ("echo_concurrent", functools.partial(echo.echo_concurrent, connections=100)),
        ("echo_half_close", echo.echo_half_close),
    ],
    "http": [
        ("http_response", http.http_response),
        ("http_pipelining", http.http_pipelining),
        ("http_connection_close", http.http_connection_close),
        ("http_malformed", http.http_malformed),
    ],
}


def quick_check(
    design: Design,
    protocol: str,
    bin_dir: Path,
    cpus: str | Sequence[int],
) -> list[CheckResult]:
    """The preflight of `harness run`, about 1-2 s: one worker per CPU of `cpus`, the lean
    checks of QUICK on one server, then shutdown and counters on a fresh one. A server that
    cannot start gives a failed "start" result with the reason."""
    cpu_list = parse_cpus(cpus)
    results: list[CheckResult] = []
    try:
        with start_server(design, protocol, len(cpu_list), cpu_list, bin_dir) as server:
            for name, body in QUICK[protocol]:
                results.append(_run(name, functools.partial(body, server)))
        with start_server(design, protocol, len(cpu_list), cpu_list, bin_dir) as server:
            results += check_shutdown(server)
    except ServerStartError as exc:
        results.append(CheckResult("start", "fail", exc.reason))
    return results
