"""Conformance: does a running server follow docs/server-contract.md? One suite for every design
in the registry, used by tests/test_conformance.py and, through `quick_check`, by `harness run`
as a preflight (a design that does different work than the others cannot be compared).

Every check talks to a server at (host, port) over loopback, some also look at its processes in
/proc; each returns a CheckResult (pass, fail or skip, with the reason) instead of raising, and
each is bounded in time (CHECK_TIMEOUT_S, and IO_TIMEOUT_S per exchange).

- `start_server(design, protocol, threads, cpus, bin_dir)`: a context manager that starts a
  registry design in its own process group (pinned with taskset when the design does not pin
  itself), waits for READY (or for the port to accept, for ready = "port"), and kills the whole
  group on exit, whatever happens.
- `run_check(name, server)`: one check of CHECKS; `check_shutdown(server)`: SIGTERM, then the
  "shutdown" (exit 0 within 2 s, nothing but the counters line on stdout) and "counters" (they
  equal what the client counted) results. It stops the server, so it wants a fresh one.
- `quick_check(design, protocol, bin_dir, cpus)`: the preflight, about 1-2 s per design.

HTTP responses are checked byte for byte (but for Date's value) against bench-core's response
for the designs written here, and for meaning (status, body, Content-Length, Content-Type
text/plain, Server and Date present) for servers with their own header set (aiohttp, nginx).
Which one applies, and other per-design limits, comes from the design's `conformance` table in
servers/registry.toml (see `Tolerance`).

How workers are found (pinning, liveness): threads or processes of the server's process tree
whose name (/proc/.../comm) starts with "worker" (the Rust designs name their threads so, the
Python designs their forked processes `worker<i>`); failing that, the child processes of the
server's main process (nginx's worker processes, forked by its master).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import re
import resource
import select
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from harness import procs, sampler
from harness.designs import Design
from harness.topology import parse_cpu_list

HOST = "127.0.0.1"
READY_TIMEOUT_S = 10.0
SHUTDOWN_LIMIT_S = 2.0  # SIGTERM to exit, per the contract
CHECK_TIMEOUT_S = 10.0  # hard bound on any one check
IO_TIMEOUT_S = 3.0  # any one exchange with the server
HELLO = b"Hello, World!"
# bench-core's response: these headers, exactly, in any order (Date's value is checked apart).
EXACT_HEADERS = {"Server": "bench", "Content-Type": "text/plain", "Content-Length": "13"}
MAX_HEADER_BYTES = 8 * 1024
DATE_SKEW_S = 5.0  # a Date header may be this far from the client's clock
_IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d\d:\d\d:\d\d GMT"
)


# --- results and tolerances -----------------------------------------------------------------


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
class Tolerance:
    """What a design may do differently, from the `conformance` table of its registry entry:

    conformance = { http_response = "semantic", header_limit = "line" }

    http_response  "exact" (default): bench-core's response byte for byte, but for Date's value;
                   "semantic": status 200, body, Content-Length 13, Content-Type text/plain...,
                   Server and Date present (a server with its own header set).
    header_limit   "section" (default): a request line + header section over 8 KiB gets a 400;
                   "line": only a single header line over 8 KiB does (nginx and aiohttp limit
                   each line, not the section).
    oversized_status, malformed_status: the status codes accepted for those requests
                   (default [400]; e.g. 431 for a server that uses it).
    """

    http_response: str = "exact"
    header_limit: str = "section"
    oversized_status: tuple[int, ...] = (400,)
    malformed_status: tuple[int, ...] = (400,)


def tolerance(design: Design) -> Tolerance:
    table = design.conformance
    t = Tolerance()
    return Tolerance(
        http_response=table.get("http_response", t.http_response),
        header_limit=table.get("header_limit", t.header_limit),
        oversized_status=tuple(table.get("oversized_status", t.oversized_status)),
        malformed_status=tuple(table.get("malformed_status", t.malformed_status)),
    )


# --- starting and stopping a server ---------------------------------------------------------


class ServerStartError(Exception):
    """The server could not be started. `refused`: it exited 2 at once, i.e. it rejects these
    flags (a protocol it lists in the registry but does not speak yet, say); `missing`: it is
    not built or installed here."""

    def __init__(self, reason: str, *, refused: bool = False, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refused = refused
        self.missing = missing


@dataclass
class Stopped:
    returncode: int | None  # None: still running SHUTDOWN_LIMIT_S after SIGTERM
    seconds: float
    stdout: str  # everything printed after READY


@dataclass
class RunningServer:
    design: Design
    protocol: str
    host: str
    port: int
    cpus: tuple[int, ...]  # worker i -> cpus[i]
    proc: subprocess.Popen[bytes]
    log: Path  # the server's stderr
    tolerance: Tolerance
    workers_at_start: tuple[int, ...] = ()
    stopped: Stopped | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def processes(self) -> list[int]:
        return process_tree(self.pid)

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def dead(self) -> str | None:
        """Why the server is no longer whole (process gone, a worker process gone), or None."""
        code = self.proc.poll()
        if code is not None:
            tail = self.log_tail()
            return f"server exited with code {code}" + (f": {tail}" if tail else "")
        gone = [p for p in self.workers_at_start if not _alive(p)]
        if gone:
            return f"worker processes {gone} died"
        return None

    def stop(self) -> Stopped:
        """SIGTERM to the server's main process; waits up to SHUTDOWN_LIMIT_S for it to exit."""
        if self.stopped is not None:
            return self.stopped
        start = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(timeout=SHUTDOWN_LIMIT_S)
        except subprocess.TimeoutExpired:
            code = None
        seconds = time.monotonic() - start
        out = b""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while select.select([fd], [], [], 0.05 if code is None else 0.5)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
        self.stopped = Stopped(code, seconds, out.decode(errors="replace"))
        return self.stopped


def raise_nofile_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: 1,000 connections need 1,000 descriptors in the
    client, and as many in a server started afterwards (it inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def parse_cpus(cpus: str | Sequence[int]) -> tuple[int, ...]:
    """A CPU list as the harness writes it ('1', '0,1', '0-3') or a sequence of CPU numbers."""
    return tuple(parse_cpu_list(cpus)) if isinstance(cpus, str) else tuple(cpus)


@contextlib.contextmanager
def start_server(
    design: Design,
    protocol: str,
    threads: int,
    cpus: str | Sequence[int],
    bin_dir: Path,
    *,
    host: str = HOST,
    port: int | None = None,
) -> Iterator[RunningServer]:
    """Starts `design` with `threads` workers on `cpus` and yields it once ready; on exit the
    whole process group is killed. Raises ServerStartError (with the reason) if it cannot."""
    why = design.missing(bin_dir)
    if why is not None:
        raise ServerStartError(why, missing=True)
    if protocol not in design.protocols:
        raise ServerStartError(f"the registry does not list {protocol} for {design.name}")
    cpu_list = parse_cpus(cpus)
    if len(cpu_list) < threads:
        raise ServerStartError(f"{threads} workers need {threads} CPUs, got {cpu_list}")
    raise_nofile_limit()
    port = port or procs.free_port(host)
    cpu_arg = ",".join(map(str, cpu_list))
    argv = design.argv(
        bin_dir=bin_dir, protocol=protocol, host=host, port=port, threads=threads, cpus=cpu_arg
    )
    fd, log_name = tempfile.mkstemp(prefix=f"conformance-{design.name}-", suffix=".log")
    log = Path(log_name)
    try:
        # Its own process group (killed whole on exit), pinned whole when it cannot pin itself.
        proc = procs.spawn(
            argv, stdout=subprocess.PIPE, stderr=fd, cpus=None if design.pins_itself else cpu_arg
        )
    except OSError as exc:
        os.close(fd)
        log.unlink(missing_ok=True)
        raise ServerStartError(f"cannot start {argv[0]}: {exc}") from None
    os.close(fd)
    server = RunningServer(
        design, protocol, host, port, cpu_list[:threads], proc, log, tolerance(design)
    )
    try:
        _wait_ready(server)
        if _process_workers(server.pid):
            server.workers_at_start = tuple(_process_workers(server.pid))
        yield server
    finally:
        procs.kill_group(proc)
        if proc.stdout is not None:
            proc.stdout.close()
        log.unlink(missing_ok=True)


def _wait_ready(server: RunningServer) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    proc = server.proc

    def exited(code: int) -> ServerStartError:
        tail = server.log_tail()
        detail = f": {tail}" if tail else ""
        if code == 2:
            return ServerStartError(
                f"{server.design.name} exits 2 (bad flags) for --protocol {server.protocol}"
                f"{detail}",
                refused=True,
            )
        return ServerStartError(f"server exited with code {code} before it was ready{detail}")

    if server.design.ready == "port":
        while time.monotonic() < deadline:
            if (code := proc.poll()) is not None:
                raise exited(code)
            try:
                with socket.create_connection((server.host, server.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise ServerStartError(f"port {server.port} not accepting after {READY_TIMEOUT_S:.0f} s")
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise ServerStartError(f"no READY line after {READY_TIMEOUT_S:.0f} s")
        if not select.select([fd], [], [], min(left, 0.1))[0]:
            if (code := proc.poll()) is not None:
                raise exited(code)
            continue
        chunk = os.read(fd, 1)  # byte by byte: nothing after the line is consumed
        if not chunk:
            raise exited(proc.wait(timeout=IO_TIMEOUT_S))
        line += chunk
    if line != b"READY\n":
        raise ServerStartError(f"first line on stdout is {line!r}, expected b'READY\\n'")


# --- /proc ----------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def process_tree(pid: int) -> list[int]:
    """pid and all its live descendants."""
    return [p for p in sampler.descendants(pid) if _alive(p)]


def _children(pid: int) -> list[int]:
    """The live processes whose parent is pid."""
    out = []
    for p in process_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{p}/stat").read_text()
            if p != pid and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(p)
    return out


def _tasks(pid: int) -> list[tuple[int, str, set[int]]]:
    """(tid, comm, allowed CPUs) of each thread of pid."""
    out = []
    for task in sorted(Path(f"/proc/{pid}/task").glob("*"), key=lambda p: int(p.name)):
        try:
            comm = (task / "comm").read_text().strip()
            status = (task / "status").read_text()
        except OSError:
            continue
        allowed = next(ln for ln in status.splitlines() if ln.startswith("Cpus_allowed_list:"))
        out.append((int(task.name), comm, set(parse_cpus(allowed.split(":")[1].strip()))))
    return out


def _process_workers(pid: int) -> list[int]:
    """Worker processes: processes of the tree named worker*, else the main process's children
    (empty for a design whose workers are threads)."""
    tree = process_tree(pid)
    named = [p for p in tree if p != pid and _tasks(p) and _tasks(p)[0][1].startswith("worker")]
    if named:
        return named
    return _children(pid)


def worker_affinities(pid: int) -> tuple[str, list[tuple[int, set[int]]]]:
    """How workers were found, and (tid, allowed CPUs) of each. See the module docstring."""
    tasks = [t for p in process_tree(pid) for t in _tasks(p)]
    named = [(tid, cpus) for tid, comm, cpus in tasks if comm.startswith("worker")]
    if named:
        return "threads or processes named worker*", named
    children = _children(pid)
    return "child processes of the main process", [(p, _tasks(p)[0][2]) for p in children]


def fd_count(pid: int) -> int:
    """Open file descriptors of the whole process tree."""
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{p}/fd"))
    return total


# --- client helpers -------------------------------------------------------------------------


class CheckFailed(Exception):
    pass


class CheckSkipped(Exception):
    pass


def _payload(size: int, seed: int) -> bytes:
    """Bytes that differ between connections and positions, so misrouted data is caught."""
    return random.Random(seed).randbytes(size)


async def _io(aw: Awaitable, what: str):
    try:
        return await asyncio.wait_for(aw, IO_TIMEOUT_S)
    except TimeoutError:
        raise CheckFailed(f"timed out after {IO_TIMEOUT_S:.0f} s {what}") from None


async def _connect(server: RunningServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await _io(asyncio.open_connection(server.host, server.port, limit=1 << 20), "connect")


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), IO_TIMEOUT_S)


def _first_difference(a: bytes, b: bytes) -> str:
    if len(a) != len(b):
        return f"{len(b)} bytes back for {len(a)} sent"
    i = next(i for i in range(len(a)) if a[i] != b[i])
    return f"byte {i} differs ({a[i]} sent, {b[i]} back)"


async def _echo(server: RunningServer, payload: bytes, *, half_close: bool = False) -> bytes:
    """Sends payload while reading the echo (a large one cannot sit in socket buffers); with
    half_close, shuts down writing after it and reads until the server closes."""
    reader, writer = await _connect(server)
    try:

        async def send() -> None:
            writer.write(payload)
            await writer.drain()
            if half_close:
                writer.write_eof()

        receive = reader.read() if half_close else reader.readexactly(len(payload))
        _, back = await _io(asyncio.gather(send(), receive), f"echoing {len(payload)} bytes")
        return back
    except asyncio.IncompleteReadError as exc:
        return exc.partial
    finally:
        await _close(writer)


@dataclass
class Response:
    status_line: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    @property
    def status(self) -> int:
        parts = self.status_line.split(" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


async def _read_response(reader: asyncio.StreamReader) -> Response:
    try:
        head = await _io(reader.readuntil(b"\r\n\r\n"), "waiting for a response")
    except asyncio.IncompleteReadError as exc:
        got = f": {exc.partial[:60]!r}" if exc.partial else ""
        raise CheckFailed(f"connection closed before a complete response{got}") from None
    lines = head[:-4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise CheckFailed(f"malformed response header line {line!r}")
        headers.append((name, value.strip(" \t")))
    resp = Response(lines[0], headers, b"", head)
    length = resp.header("Content-Length")
    try:
        if length is not None:
            resp.body = await _io(reader.readexactly(int(length)), "reading a response body")
        else:
            resp.body = await _io(reader.read(), "reading a response body to EOF")
    except asyncio.IncompleteReadError as exc:
        raise CheckFailed(f"connection closed within a response body ({exc.partial!r})") from None
    resp.raw = head + resp.body
    return resp


async def _expect_eof(reader: asyncio.StreamReader, after: str) -> None:
    try:
        extra = await _io(reader.read(1 << 16), f"waiting for the server to close after {after}")
    except ConnectionResetError:
        return  # closed with a reset: closed all the same
    if extra:
        raise CheckFailed(f"bytes after {after} instead of a close: {extra[:60]!r}")


def _request(host: str, extra: str = "") -> bytes:
    return f"GET / HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


def _date_problem(value: str | None) -> str | None:
    if not value:
        return "no Date header"
    if not _IMF_FIXDATE.fullmatch(value):
        return f"Date {value!r} is not an IMF-fixdate"
    skew = abs((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    if skew > DATE_SKEW_S:
        return f"Date {value!r} is {skew:.0f} s away from now"
    return None


def response_problem(resp: Response, tol: Tolerance) -> str | None:
    """Why resp is not the contract's `200 Hello, World!` response, or None."""
    if tol.http_response == "exact":
        if resp.status_line != "HTTP/1.1 200 OK":
            return f"status line {resp.status_line!r}, expected 'HTTP/1.1 200 OK'"
        names = sorted(n for n, _ in resp.headers)
        expected = sorted([*EXACT_HEADERS, "Date"])
        if names != expected:
            return f"headers {names}, expected exactly {expected}"
        for name, value in EXACT_HEADERS.items():
            if resp.header(name) != value:
                return f"{name}: {resp.header(name)!r}, expected {value!r}"
    else:
        if resp.status != 200:
            return f"status line {resp.status_line!r}, expected status 200"
        if resp.header("Content-Length") != str(len(HELLO)):
            return f"Content-Length {resp.header('Content-Length')!r}, expected '13'"
        content_type = resp.header("Content-Type") or ""
        if not content_type.startswith("text/plain"):
            return f"Content-Type {content_type!r}, expected text/plain"
        if not resp.header("Server"):
            return "no Server header"
    if resp.body != HELLO:
        return f"body {resp.body[:40]!r}, expected {HELLO!r}"
    return _date_problem(resp.header("Date"))


async def _get(server: RunningServer) -> None:
    """One request on a new connection: the contract's response, or CheckFailed."""
    reader, writer = await _connect(server)
    try:
        writer.write(_request(server.host))
        problem = response_problem(await _read_response(reader), server.tolerance)
        if problem:
            raise CheckFailed(problem)
    finally:
        await _close(writer)


async def _expect_status_then_close(
    server: RunningServer, request: bytes, statuses: tuple[int, ...], what: str
) -> None:
    reader, writer = await _connect(server)
    try:
        writer.write(request)
        try:
            resp = await _read_response(reader)
        except ConnectionResetError:
            raise CheckFailed(f"{what}: connection reset before any response") from None
        if resp.status not in statuses:
            raise CheckFailed(f"{what}: status line {resp.status_line!r}, expected {statuses}")
        await _expect_eof(reader, f"the {resp.status} response to {what}")
    finally:
        await _close(writer)


# --- echo checks ----------------------------------------------------------------------------

ECHO_SIZES = (1, 1024, 64 * 1024, 1024 * 1024)


async def echo_sizes(server: RunningServer, sizes: Sequence[int] = ECHO_SIZES) -> str:
    """Messages of 1 B to 1 MiB come back exact."""
    for size in sizes:
        payload = _payload(size, size)
        back = await _echo(server, payload)
        if back != payload:
            raise CheckFailed(f"{size}-byte message: {_first_difference(payload, back)}")
    return f"{len(sizes)} sizes, {sizes[0]} B to {sizes[-1]} B"


async def echo_split_writes(server: RunningServer, size: int = 100) -> str:
    """A message written one byte at a time: each byte is echoed before the next is sent (the
    server answers what it has, it does not wait for more)."""
    payload = _payload(size, 7)
    reader, writer = await _connect(server)
    try:
        for i in range(size):
            writer.write(payload[i : i + 1])  # asyncio sets TCP_NODELAY: one segment each
            try:
                got = await _io(reader.readexactly(1), f"for the echo of byte {i}")
            except asyncio.IncompleteReadError:
                raise CheckFailed(f"connection closed at byte {i}") from None
            if got != payload[i : i + 1]:
                raise CheckFailed(f"byte {i}: sent {payload[i]}, got {got[0]}")
    finally:
        await _close(writer)
    return f"{size} one-byte writes"


async def echo_concurrent(server: RunningServer, connections: int = 1000) -> str:
    """`connections` connections open at once, each echoing its own 32 bytes."""
    conns = await asyncio.gather(
        *(_connect(server) for _ in range(connections)), return_exceptions=True
    )
    opened = [c for c in conns if not isinstance(c, BaseException)]
    try:
        if len(opened) < connections:
            err = next(c for c in conns if isinstance(c, BaseException))
            raise CheckFailed(f"{len(opened)} of {connections} connections opened ({err})")

        async def one(i: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
            payload = _payload(32, 1000 + i)
            writer.write(payload)
            try:
                return await reader.readexactly(32) == payload
            except (asyncio.IncompleteReadError, OSError):
                return False

        ok = await _io(
            asyncio.gather(*(one(i, r, w) for i, (r, w) in enumerate(opened))),
            f"echoing on {connections} connections",
        )
        if not all(ok):
            raise CheckFailed(f"{ok.count(False)} of {connections} connections got a wrong echo")
    finally:
        await asyncio.gather(*(_close(w) for _, w in opened))
    return f"{connections} concurrent connections"


async def echo_half_close(server: RunningServer, sizes: Sequence[int] = (0, 1, 200_000)) -> str:
    """The client shuts down its write side after sending: it gets every byte back, then EOF."""
    for size in sizes:
        payload = _payload(size, 3 + size)
        back = await _echo(server, payload, half_close=True)
        if back != payload:
            raise CheckFailed(f"{size} bytes then half-close: {_first_difference(payload, back)}")
    return f"sizes {list(sizes)}"


def _stall(host: str, port: int, limit: int) -> int:
    """Writes to a connection that never reads until nothing drains for 0.5 s (or `limit`
    bytes, or IO_TIMEOUT_S); returns the bytes the kernel and the server took. Blocking: run it
    in a thread."""
    deadline = time.monotonic() + IO_TIMEOUT_S
    with socket.create_connection((host, port), timeout=IO_TIMEOUT_S) as stalled:
        stalled.setblocking(False)
        sent, chunk = 0, bytes(64 * 1024)
        while sent < limit and time.monotonic() < deadline:
            try:
                sent += stalled.send(chunk)
            except BlockingIOError:
                if not select.select([], [stalled], [], 0.5)[1]:
                    break
        # Reset it (SO_LINGER 0) while the server is blocked writing to it.
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return sent


async def echo_back_pressure(server: RunningServer, limit: int = 64 * 1024 * 1024) -> str:
    """A client that sends but never reads is back-pressured (the server stops reading once it
    cannot write: no unbounded buffering), and blocks no one else; its reset is survived."""
    start = time.monotonic()
    sent = await asyncio.to_thread(_stall, server.host, server.port, limit)
    if sent >= limit or time.monotonic() - start >= IO_TIMEOUT_S:
        raise CheckFailed(
            f"the server kept reading from a client that never reads ({sent >> 20} MiB in "
            f"{time.monotonic() - start:.1f} s)"
        )
    payload = _payload(10_000, 5)
    if await _echo(server, payload) != payload:
        raise CheckFailed("after a reset stalled connection, an echo came back wrong")
    return f"stalled after {sent >> 20} MiB in kernel buffers"


# --- HTTP checks ----------------------------------------------------------------------------


async def http_response(server: RunningServer) -> str:
    """One GET: the contract's response (exact or semantic per the design's tolerance), twice on
    one keep-alive connection."""
    reader, writer = await _connect(server)
    try:
        for i in range(2):
            writer.write(_request(server.host))
            problem = response_problem(await _read_response(reader), server.tolerance)
            if problem:
                raise CheckFailed(f"request {i + 1} on a keep-alive connection: {problem}")
    finally:
        await _close(writer)
    return f"{server.tolerance.http_response} response, keep-alive"


async def http_pipelining(server: RunningServer, depth: int = 16) -> str:
    """`depth` requests in one write get `depth` responses (then the connection is still
    usable), and a pipeline of 4 whose last request says `Connection: close` gets 4 responses,
    then EOF. (The responses are identical, so their order cannot be observed. Nothing is sent
    after the `close`: aiohttp's parser answers such a pipeline with a single 400.)"""
    reader, writer = await _connect(server)
    try:
        writer.write(_request(server.host) * depth)
        for i in range(depth):
            problem = response_problem(await _read_response(reader), server.tolerance)
            if problem:
                raise CheckFailed(f"pipelined response {i + 1} of {depth}: {problem}")
        writer.write(_request(server.host))
        problem = response_problem(await _read_response(reader), server.tolerance)
        if problem:
            raise CheckFailed(f"request after a pipeline of {depth}: {problem}")
    finally:
        await _close(writer)
    reader, writer = await _connect(server)
    try:
        plain, close = _request(server.host), _request(server.host, "Connection: close\r\n")
        writer.write(plain * 3 + close)
        for i in range(4):
            resp = await _read_response(reader)
            if resp.status != 200:
                raise CheckFailed(f"pipeline with a close: response {i + 1}: {resp.status_line}")
        await _expect_eof(reader, "the response to a pipelined `Connection: close`")
    finally:
        await _close(writer)
    return f"depth {depth}"


async def http_connection_close(server: RunningServer) -> str:
    """`Connection: close`: the response, then the server closes."""
    reader, writer = await _connect(server)
    try:
        writer.write(_request(server.host, "Connection: close\r\n"))
        resp = await _read_response(reader)
        if resp.status != 200 or resp.body != HELLO:
            raise CheckFailed(f"response {resp.status_line!r} {resp.body[:40]!r}")
        await _expect_eof(reader, "the response to `Connection: close`")
    finally:
        await _close(writer)
    return "response then EOF"


MALFORMED = {
    "a header line without a colon": "GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
    "a request line that is not one": "GARBAGE\r\n\r\n",
}


async def http_malformed(server: RunningServer) -> str:
    """A malformed request gets a 400 (or the design's documented code), then a close."""
    statuses = server.tolerance.malformed_status
    for what, request in MALFORMED.items():
        await _expect_status_then_close(server, request.encode(), statuses, what)
    return f"{len(MALFORMED)} malformed requests answered {statuses} and closed"


def _big_header_request(host: str, size: int, *, one_line: bool) -> bytes:
    """A GET whose request head is about `size` bytes: one big header line, or 200-byte lines
    (fewer than 64 of them: bench-core also refuses more than 64 headers)."""
    base = _request(host)[:-2]  # without the final CRLF
    room = size - len(base) - 2
    if one_line:
        fields = "X-Big: " + "a" * (room - 9) + "\r\n"
    else:
        n = room // 200
        fields = "".join(f"X-Pad-{i:04}: {'b' * 186}\r\n" for i in range(n))
    return base + fields.encode() + b"\r\n"


async def http_oversized(server: RunningServer) -> str:
    """A request whose header section is over 8 KiB gets a 400 (or the design's documented
    code) and a close; one of 7 KiB is answered normally."""
    tol = server.tolerance
    await _expect_status_then_close(
        server,
        _big_header_request(server.host, MAX_HEADER_BYTES + 1024, one_line=True),
        tol.oversized_status,
        "a 9 KiB header line",
    )
    kinds = "a 9 KiB header line"
    if tol.header_limit == "section":
        await _expect_status_then_close(
            server,
            _big_header_request(server.host, MAX_HEADER_BYTES + 1024, one_line=False),
            tol.oversized_status,
            "a 9 KiB header section of 200-byte lines",
        )
        kinds += " and a 9 KiB header section"
    reader, writer = await _connect(server)
    try:
        writer.write(_big_header_request(server.host, 7 * 1024, one_line=False))
        problem = response_problem(await _read_response(reader), tol)
        if problem:
            raise CheckFailed(f"a 7 KiB header section: {problem}")
    finally:
        await _close(writer)
    return f"{kinds} refused, 7 KiB accepted"


async def http_garbage(
    server: RunningServer, connections: int = 200, seed: int = 1, budget_s: float = 2.0
) -> str:
    """Seeded random bytes on `connections` connections (at most budget_s), some after a valid
    request line: afterwards the server (and each of its worker processes) is alive and
    answers a normal request."""
    rng = random.Random(seed)
    blobs = []
    for _ in range(connections):
        blob = rng.randbytes(rng.randint(1, 4096))
        kind = rng.random()
        if kind < 0.25:
            blob = b"GET / HTTP/1.1\r\n" + blob
        elif kind < 0.5:
            blob += b"\r\n\r\n"
        blobs.append(blob)
    limit = asyncio.Semaphore(50)

    async def one(blob: bytes) -> None:
        async with limit:
            try:
                reader, writer = await asyncio.open_connection(server.host, server.port)
            except OSError:
                return
            try:
                writer.write(blob)
                writer.write_eof()
                await asyncio.wait_for(reader.read(), 0.5)
            except (OSError, TimeoutError):
                pass
            finally:
                writer.close()

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(one(b) for b in blobs)), budget_s)
    await asyncio.sleep(0.05)
    dead = server.dead()
    if dead:
        raise CheckFailed(f"after {connections} connections of random bytes: {dead}")
    try:
        await _get(server)
    except CheckFailed as exc:
        raise CheckFailed(f"after random bytes, a normal request: {exc}") from None
    return f"{connections} connections of random bytes (seed {seed}), still serving"


# --- checks on the processes ----------------------------------------------------------------


async def pinning(server: RunningServer) -> str:
    """Each worker is pinned to its CPU (pins_itself), or the whole process tree is confined to
    the CPUs (pinned by the harness with taskset)."""
    if not server.design.pins_itself:
        wrong = [
            (tid, sorted(allowed))
            for p in server.processes()
            for tid, _, allowed in _tasks(p)
            if allowed != set(server.cpus)
        ]
        if wrong:
            raise CheckFailed(f"threads not confined to {list(server.cpus)}: {wrong[:4]}")
        return f"whole process on {list(server.cpus)} (taskset)"
    how, workers = worker_affinities(server.pid)
    got = sorted(sorted(allowed) for _, allowed in workers)
    expected = sorted([cpu] for cpu in server.cpus)
    if got != expected:
        raise CheckFailed(f"workers ({how}) allowed on {got}, expected {expected}")
    return f"{len(workers)} workers ({how}) on {list(server.cpus)}"


async def no_fd_leak(server: RunningServer, connections: int = 50) -> str:
    """Descriptors of the process tree return to the baseline once clients close."""

    async def settled() -> int:
        last = fd_count(server.pid)
        for _ in range(20):
            await asyncio.sleep(0.05)
            now = fd_count(server.pid)
            if now == last:
                return now
            last = now
        return last

    baseline = await settled()
    conns = [await _connect(server) for _ in range(connections)]
    try:
        for i, (reader, writer) in enumerate(conns):
            if server.protocol == "http":
                writer.write(_request(server.host))
                await _read_response(reader)
            else:
                writer.write(_payload(16, i))
                await _io(reader.readexactly(16), "for an echo")
        peak = fd_count(server.pid)
    finally:
        await asyncio.gather(*(_close(w) for _, w in conns))
    if peak - baseline < connections // 2:
        raise CheckFailed(
            f"{connections} open connections show as {peak - baseline} more descriptors: "
            "the server's connections are not visible in /proc/<pid>/fd of its process tree"
        )
    deadline = time.monotonic() + 3.0
    now = fd_count(server.pid)
    while now > baseline and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        now = fd_count(server.pid)
    if now > baseline:
        raise CheckFailed(
            f"{now} descriptors 3 s after {connections} clients closed, {baseline} before"
        )
    return f"{baseline} -> {peak} -> {now} descriptors"


@dataclass(frozen=True)
class Check:
    name: str
    protocols: tuple[str, ...]
    run: Callable[[RunningServer], Awaitable[str]]


# In the order the test suite runs them on one server (garbage last but the /proc checks).
CHECKS: dict[str, Check] = {
    c.name: c
    for c in [
        Check("echo_sizes", ("echo",), echo_sizes),
        Check("echo_split_writes", ("echo",), echo_split_writes),
        Check("echo_concurrent", ("echo",), echo_concurrent),
        Check("echo_half_close", ("echo",), echo_half_close),
        Check("echo_back_pressure", ("echo",), echo_back_pressure),
        Check("http_response", ("http",), http_response),
        Check("http_pipelining", ("http",), http_pipelining),
        Check("http_connection_close", ("http",), http_connection_close),
        Check("http_malformed", ("http",), http_malformed),
        Check("http_oversized", ("http",), http_oversized),
        Check("http_garbage", ("http",), http_garbage),
        Check("no_fd_leak", ("echo", "http"), no_fd_leak),
        Check("pinning", ("echo", "http"), pinning),
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
        ("echo_sizes", functools.partial(echo_sizes, sizes=(1, 64 * 1024, 1024 * 1024))),
        ("echo_split_writes", functools.partial(echo_split_writes, size=20)),
        ("echo_concurrent", functools.partial(echo_concurrent, connections=100)),
        ("echo_half_close", echo_half_close),
    ],
    "http": [
        ("http_response", http_response),
        ("http_pipelining", http_pipelining),
        ("http_connection_close", http_connection_close),
        ("http_malformed", http_malformed),
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
