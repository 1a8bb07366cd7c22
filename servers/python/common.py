"""What the Python server designs share: the counterpart of `servers/core` (bench-core) for the
designs in this folder. A design file adds only how its worker processes get a listening socket
and what runs in them.

- `parse_config`: the command line of docs/server-contract.md, with bench-core's error messages
  (`error: ...` on stderr, exit 2), plus `--work DIST` and `--seed N`;
- `listen`: listeners with the contract's options (SO_REUSEADDR, optional SO_REUSEPORT,
  backlog 1024, nonblocking);
- `Work`: the simulated per-request work, a busy loop on `time.perf_counter_ns` (never a sleep);
- `EchoSession` / `HttpSession`: the sans-IO protocols, the same state machines as bench-core's
  `Session` (bytes in, bytes to write back, messages answered, close or not);
- `Connection`: the asyncio `BufferedProtocol` that drives a session from a 16 KiB buffer;
- `run_workers`: the parent process of every design here: forks one pinned worker process per
  `--threads`, prints READY once all of them accept, and on SIGTERM/SIGINT gathers their
  counters over pipes and prints the JSON counters line.

Python needs processes rather than threads to use several cores, so a "worker" here is a forked
process whose command name is `worker<i>` (what `harness.conformance` looks for when it checks
pinning), pinned with `os.sched_setaffinity` before it creates its event loop.
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import json
import math
import os
import random
import re
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import NoReturn

BUF_SIZE = 16 * 1024  # bench_core::BUF_SIZE: every read is into a buffer of this size
BACKLOG = 1024  # bench_core::BACKLOG
MAX_HEADER_BYTES = 8 * 1024  # a request line + header section larger than this gets 400
SERVER_NAME = "bench"  # the Server header of the contract's HTTP response (as bench-core's)
READY_TIMEOUT_S = 10.0  # parent: how long workers may take to listen
REPORT_TIMEOUT_S = 1.5  # parent: how long workers may take to send their counters after SIGTERM
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

FLAGS = "--protocol, --host, --port, --threads, --cpus, --work, --seed"
WORK_SYNTAX = "none, fixed:US, exp:MEAN_US, bimodal:US1:US2:P2 or lognormal:MEDIAN_US:SIGMA"


class UsageError(Exception):
    """A bad flag or value: one line on stderr, exit 2."""


def fail_usage(msg: str) -> NoReturn:
    print(f"error: {msg}", file=sys.stderr, flush=True)
    os._exit(2)


def fatal(msg: str) -> NoReturn:
    """A failure after the command line was accepted (bind, fork): exit 1, as bench-core."""
    print(f"error: {msg}", file=sys.stderr, flush=True)
    os._exit(1)


# --- command line ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Work:
    """`--work DIST`: microseconds of CPU burnt per echo read or per HTTP request."""

    kind: str = "none"  # none | fixed | exp | bimodal | lognormal
    params: tuple[float, ...] = ()

    @staticmethod
    def parse(text: str) -> Work:
        kind, *fields = text.split(":")
        arity = {"none": 0, "fixed": 1, "exp": 1, "bimodal": 3, "lognormal": 2}
        if kind not in arity or len(fields) != arity[kind]:
            raise UsageError(f"--work: expected {WORK_SYNTAX}, got '{text}'")
        try:
            params = tuple(float(f) for f in fields)
        except ValueError:
            raise UsageError(f"--work: expected numbers in '{text}'") from None
        if any(not math.isfinite(p) or p < 0 for p in params):
            raise UsageError(f"--work: values must be finite and >= 0, got '{text}'")
        if kind == "bimodal" and params[2] > 1:
            raise UsageError(f"--work: bimodal P2 must be in 0..1, got '{text}'")
        return Work(kind, params)

    def draw(self, rng: random.Random) -> float:
        """One service time in microseconds."""
        p = self.params
        if self.kind == "fixed":
            return p[0]
        if self.kind == "exp":
            return rng.expovariate(1.0 / p[0]) if p[0] > 0 else 0.0
        if self.kind == "bimodal":
            return p[1] if rng.random() < p[2] else p[0]
        if self.kind == "lognormal":
            return p[0] * math.exp(p[1] * rng.gauss(0.0, 1.0))
        return 0.0


def burn(us: float) -> None:
    """Keeps the CPU busy for `us` microseconds: simulated request processing, never a sleep."""
    deadline = time.perf_counter_ns() + int(us * 1000)
    while time.perf_counter_ns() < deadline:
        pass


class Burner:
    """One worker's `--work`: a seeded generator (seed * 1000003 + worker, as bench-core) and the
    burn. Called once per echo read or per HTTP request."""

    __slots__ = ("rng", "work")

    def __init__(self, work: Work, seed: int, worker: int) -> None:
        self.work = work
        self.rng = random.Random(seed * 1000003 + worker)

    def __call__(self) -> None:
        burn(self.work.draw(self.rng))


@dataclass(frozen=True)
class Config:
    protocol: str = "echo"
    host: str = "127.0.0.1"
    port: int = 7878
    threads: int = 1
    cpus: tuple[int, ...] | None = None  # worker i -> cpus[i]; None: unpinned
    work: Work = Work()
    seed: int = 0

    def cpu(self, worker: int) -> int | None:
        return None if self.cpus is None else self.cpus[worker]

    def burner(self, worker: int) -> Burner | None:
        return None if self.work.kind == "none" else Burner(self.work, self.seed, worker)


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """`1,3,5` or ranges `0-3` (a CPU may repeat), as bench-core's cpu::parse_list."""
    cpus: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise UsageError(f"--cpus: expected a CPU list such as 0,2 or 0-3, got '{text}'")
        lo = int(m[1])
        hi = int(m[2]) if m[2] is not None else lo
        if hi < lo:
            raise UsageError(f"--cpus: descending range '{part}'")
        cpus.extend(range(lo, hi + 1))
    return tuple(cpus)


def _natural(flag: str, value: str, expected: str, lo: int, hi: int) -> int:
    if not re.fullmatch(r"\+?\d+", value) or not lo <= int(value) <= hi:
        raise UsageError(f"{flag}: expected {expected}, got '{value}'")
    return int(value)


def parse_config(args: Sequence[str], protocols: Sequence[str] = ("echo", "http")) -> Config:
    """The contract's flags (pure; raises UsageError). `protocols`: what this design speaks."""
    fields: dict = {}
    it = iter(args)
    for flag in it:
        value = next(it, None)
        if flag not in (
            "--protocol", "--host", "--port", "--threads", "--cpus", "--work", "--seed",
        ):  # fmt: skip
            raise UsageError(f"unknown argument '{flag}' (flags: {FLAGS})")
        if value is None:
            raise UsageError(f"{flag} needs a value")
        if flag == "--protocol":
            if value not in ("echo", "http"):
                raise UsageError(f"--protocol: unknown protocol '{value}' (expected echo or http)")
            if value not in protocols:
                raise UsageError(f"--protocol: this design speaks only {', '.join(protocols)}")
            fields["protocol"] = value
        elif flag == "--host":
            try:
                fields["host"] = str(ipaddress.ip_address(value))
            except ValueError:
                raise UsageError(f"--host: expected an IP address, got '{value}'") from None
        elif flag == "--port":
            fields["port"] = _natural(flag, value, "a port 1..65535", 1, 65535)
        elif flag == "--threads":
            fields["threads"] = _natural(flag, value, "a positive integer", 1, 1 << 16)
        elif flag == "--cpus":
            fields["cpus"] = parse_cpu_list(value)
        elif flag == "--work":
            fields["work"] = Work.parse(value)
        else:
            fields["seed"] = _natural(flag, value, "an integer 0..2^64-1", 0, (1 << 64) - 1)
    cfg = Config(**fields)
    if "protocol" not in fields and cfg.protocol not in protocols:
        raise UsageError(f"--protocol: this design speaks only {', '.join(protocols)}")
    if cfg.cpus is not None:
        if len(cfg.cpus) < cfg.threads:
            raise UsageError(f"--cpus names {len(cfg.cpus)} CPUs but --threads is {cfg.threads}")
        allowed = os.sched_getaffinity(0)
        bad = next((c for c in cfg.cpus if c not in allowed), None)
        if bad is not None:
            raise UsageError(f"--cpus: CPU {bad} is not available (allowed: {sorted(allowed)})")
    return cfg


def config_from_argv(protocols: Sequence[str] = ("echo", "http")) -> Config:
    try:
        return parse_config(sys.argv[1:], protocols)
    except UsageError as exc:
        fail_usage(str(exc))


# --- sockets --------------------------------------------------------------------------------


def listen(host: str, port: int, *, reuseport: bool) -> socket.socket:
    """A nonblocking listener with the contract's options; OSError says 'listen on ADDR: ...'."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        addr = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        raise OSError(exc.errno, f"listen on {addr}: {exc.strerror}") from None
    return sock


# --- counters -------------------------------------------------------------------------------


class Counters:
    """One worker's counters, written only by that worker's process (no sharing at all).
    A counter a design cannot measure is None, and is reported as null (absent), never 0."""

    __slots__ = ("bytes_in", "bytes_out", "connections", "messages")

    def __init__(self, *, bytes_measured: bool = True) -> None:
        self.connections = 0
        self.messages = 0
        self.bytes_in: int | None = 0 if bytes_measured else None
        self.bytes_out: int | None = 0 if bytes_measured else None

    def as_json(self, worker: int, cpu: int | None) -> dict:
        return {
            "worker": worker,
            "cpu": cpu,
            "connections": self.connections,
            "messages": self.messages,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
        }


# --- protocols (sans-IO) --------------------------------------------------------------------


class EchoSession:
    """Every byte read goes back: one message per non-empty read."""

    __slots__ = ("burner",)

    def __init__(self, burner: Burner | None = None) -> None:
        self.burner = burner

    def on_read(self, data: memoryview) -> tuple[bytes, int, bool]:
        if self.burner is not None:
            self.burner()
        # A copy: the transport may keep what it could not write yet, and the read buffer is
        # reused (bench-core's designs write straight from their read buffer).
        return bytes(data), 1, False


class HttpResponses:
    """The fixed responses, rebuilt with a new Date at most once a second (`refresh`)."""

    __slots__ = ("bad", "date", "not_allowed", "ok", "ok_close", "ok_keep_alive")

    def __init__(self) -> None:
        self.date = ""
        self.refresh()

    def refresh(self) -> None:
        date = formatdate(usegmt=True)  # IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        if date == self.date:
            return
        self.date = date
        head = f"Server: {SERVER_NAME}\r\nDate: {date}\r\nContent-Type: text/plain\r\n"

        def response(status: str, body: str, extra: str = "") -> bytes:
            return (
                f"HTTP/1.1 {status}\r\n{head}Content-Length: {len(body)}\r\n{extra}\r\n{body}"
            ).encode()

        self.ok = response("200 OK", "Hello, World!")
        self.ok_close = response("200 OK", "Hello, World!", "Connection: close\r\n")
        self.ok_keep_alive = response("200 OK", "Hello, World!", "Connection: keep-alive\r\n")
        self.bad = response("400 Bad Request", "Bad Request", "Connection: close\r\n")
        self.not_allowed = response(
            "405 Method Not Allowed", "Method Not Allowed", "Allow: GET\r\nConnection: close\r\n"
        )


RESPONSES = HttpResponses()  # one per process: each worker process refreshes its own copy

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e\x80-\xff]+) HTTP/1\.([01])")
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")


class HttpSession:
    """HTTP/1.1 as bench-core speaks it: any GET gets `200 Hello, World!`; keep-alive unless
    `Connection: close` (HTTP/1.0: unless no `Connection: keep-alive`); pipelined requests are
    answered in order, all answers to one read in one write; a malformed request, a request
    line + header section over 8 KiB, a body (unsupported) -> 400 and close; a method other
    than GET -> 405 and close."""

    __slots__ = ("burner", "pending", "responses")

    def __init__(self, burner: Burner | None = None, responses: HttpResponses = RESPONSES):
        self.burner = burner
        self.responses = responses
        self.pending = bytearray()

    def on_read(self, data: memoryview) -> tuple[bytes, int, bool]:
        buf = self.pending
        buf += data
        out: list[bytes] = []
        start = 0
        close = False
        while True:
            while buf.startswith(b"\r\n", start):  # RFC 9112 2.2: ignore CRLF before a request
                start += 2
            end = buf.find(b"\r\n\r\n", start)
            if end < 0 or end + 4 - start > MAX_HEADER_BYTES:
                if end >= 0 or len(buf) - start > MAX_HEADER_BYTES:
                    out.append(self.responses.bad)
                    close = True
                break
            reply, close = self._answer(bytes(buf[start:end]))
            out.append(reply)
            start = end + 4
            if close:
                break
        if close:
            buf.clear()
        else:
            del buf[:start]
        return b"".join(out), len(out), close

    def _answer(self, head: bytes) -> tuple[bytes, bool]:
        """The response to one request (its head without the final CRLFCRLF), and close?"""
        r = self.responses
        lines = head.split(b"\r\n")
        m = _REQUEST_LINE.fullmatch(lines[0])
        if m is None:
            return r.bad, True
        connection = b""
        for line in lines[1:]:
            colon = line.find(b":")
            if colon <= 0 or not _TOKEN.fullmatch(line, 0, colon):
                return r.bad, True  # no name, whitespace before the colon, obs-fold, bare LF
            value = line[colon + 1 :].strip(b" \t")
            if not _FIELD_VALUE.fullmatch(value):
                return r.bad, True
            name = line[:colon].lower()
            if name == b"connection":
                connection += b"," + value.lower()
            elif name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                return r.bad, True  # request bodies are not part of the benchmark
        if m[1] != b"GET":
            return r.not_allowed, True
        if self.burner is not None:
            self.burner()
        tokens = {t.strip() for t in connection.split(b",")}
        if m[3] == b"1":
            return (r.ok_close, True) if b"close" in tokens else (r.ok, False)
        if b"keep-alive" in tokens and b"close" not in tokens:
            return r.ok_keep_alive, False
        return r.ok_close, True


# --- the asyncio driver ---------------------------------------------------------------------


class Connection(asyncio.BufferedProtocol):
    """Drives a session as bench-core's designs do: read into a BUF_SIZE buffer, hand the bytes
    to the session, write its reply, close if it says so. The transport's high-water mark is 0,
    so any reply the kernel does not take at once pauses reading until it is written (the
    contract's "writes back what it read before it reads again"): no unbounded buffering."""

    __slots__ = ("buf", "counters", "session", "transport")

    def __init__(self, session: EchoSession | HttpSession, counters: Counters) -> None:
        self.session = session
        self.counters = counters
        self.buf = memoryview(bytearray(BUF_SIZE))
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport  # uvloop's TCPTransport (not an asyncio.Transport subclass)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=0, low=0)
        self.counters.connections += 1

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        reply, messages, close = self.session.on_read(self.buf[:nbytes])
        c = self.counters
        c.bytes_in += nbytes
        c.messages += messages
        transport = self.transport
        if reply:
            transport.write(reply)
            c.bytes_out += len(reply)
        if close:
            transport.close()  # after the reply is written

    def eof_received(self) -> bool:
        return False  # nothing is ever left unanswered: the transport closes once written

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        if not self.transport.is_closing():
            self.transport.resume_reading()


def refresh_date_every_second(loop: asyncio.AbstractEventLoop) -> None:
    RESPONSES.refresh()
    loop.call_later(1.0, refresh_date_every_second, loop)


def serve_asyncio(cfg: Config, worker: int, sock: socket.socket, link: WorkerLink) -> NoReturn:
    """A worker process of the asyncio designs: one uvloop event loop serving `sock`."""
    import uvloop  # imported here so that a parent that fails early never pays for it

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    counters = Counters()
    burner = cfg.burner(worker)
    if cfg.protocol == "http":
        refresh_date_every_second(loop)

        def factory() -> Connection:
            return Connection(HttpSession(burner), counters)
    else:

        def factory() -> Connection:
            return Connection(EchoSession(burner), counters)

    loop.run_until_complete(loop.create_server(factory, sock=sock, backlog=BACKLOG))
    link.serve_until_stopped(loop, counters)


# --- processes ------------------------------------------------------------------------------

_PR_SET_NAME = 15
_PR_SET_PDEATHSIG = 1


def _prctl(option: int, arg: int | bytes) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, arg, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option})")


class WorkerLink:
    """A worker process's end of its pipe to the parent: `R` when it listens, `C{json}` with its
    counters after SIGTERM, `E{message}` when it cannot start."""

    def __init__(self, fd: int, worker: int, cpu: int | None) -> None:
        self.fd = fd
        self.worker = worker
        self.cpu = cpu

    def _send(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")  # < PIPE_BUF: one atomic write

    def ready(self) -> None:
        self._send("R")

    def report(self, counters: Counters) -> None:
        self._send("C" + json.dumps(counters.as_json(self.worker, self.cpu)))

    def fail(self, msg: str) -> NoReturn:
        self._send("E" + msg.replace("\n", " "))
        os._exit(1)

    def serve_until_stopped(self, loop: asyncio.AbstractEventLoop, c: Counters) -> NoReturn:
        """Says ready, runs the loop; on SIGTERM/SIGINT reports and exits at once. The handler
        runs on the worker's only thread, so nothing is accepted or served between the report
        and the exit; the kernel then closes the listener and any open connection, as when a
        Rust design's process exits."""

        def stop() -> None:
            self.report(c)
            os._exit(0)

        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        self.ready()
        loop.run_forever()
        os._exit(1)  # run_forever only returns if the loop was stopped, which nothing does


def _start_worker(worker: int, cpu: int | None, fd: int, parent: int, main: WorkerMain) -> NoReturn:
    """In the forked child: die with the parent, take the name and CPU, run the design."""
    link = WorkerLink(fd, worker, cpu)
    try:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl
            os._exit(1)
        _prctl(_PR_SET_NAME, f"worker{worker}".encode())
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        main(worker, link)
    except BaseException as exc:  # a child never unwinds into the parent's code: report, exit
        link.fail(str(exc) or type(exc).__name__)
    finally:
        os._exit(1)


WorkerMain = Callable[[int, WorkerLink], NoReturn]


class _Child:
    def __init__(self, worker: int, pid: int, fd: int) -> None:
        self.worker, self.pid, self.fd = worker, pid, fd
        self.buf = b""
        self.lines: list[str] = []
        self.eof = False

    def read(self) -> None:
        chunk = os.read(self.fd, 65536)
        if not chunk:
            self.eof = True
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        self.lines += [ln.decode(errors="replace") for ln in lines]


def _pump(children: list[_Child], deadline: float, done: Callable[[_Child], bool]) -> None:
    """Reads the children's pipes until done(child) for every child, or the deadline."""
    while True:
        waiting = [c for c in children if not done(c) and not c.eof]
        left = deadline - time.monotonic()
        if not waiting or left <= 0:
            return
        readable, _, _ = select.select([c.fd for c in waiting], [], [], left)
        for c in waiting:
            if c.fd in readable:
                c.read()


def _kill_all(children: list[_Child]) -> None:
    for c in children:
        try:
            os.kill(c.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for c in children:
        try:
            os.waitpid(c.pid, 0)
        except ChildProcessError:
            pass


def run_workers(
    design: str, cfg: Config, main: WorkerMain, after_fork: Callable[[], None] | None = None
) -> NoReturn:
    """The parent process of a Python design: forks cfg.threads workers running main(i, link),
    prints READY once every one listens, waits for SIGTERM/SIGINT, prints the counters line,
    exits 0. A worker that fails to start or dies makes the server exit 1 with `error: ...`."""
    # Signals stay pending until sigwait: none is lost during start-up, and forked workers
    # inherit the mask until their event loop handles them.
    signal.pthread_sigmask(signal.SIG_BLOCK, (*STOP_SIGNALS, signal.SIGCHLD))
    parent = os.getpid()
    children: list[_Child] = []
    for worker in range(cfg.threads):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            for c in children:
                os.close(c.fd)
            _start_worker(worker, cfg.cpu(worker), w, parent, main)
        os.close(w)
        children.append(_Child(worker, pid, r))
    if after_fork is not None:
        after_fork()

    def started(c: _Child) -> bool:
        return bool(c.lines)

    _pump(children, time.monotonic() + READY_TIMEOUT_S, started)
    for c in children:
        first = c.lines[0] if c.lines else ""
        if first != "R":
            _kill_all(children)
            why = first[1:] if first.startswith("E") else "exited or hung before it listened"
            fatal(f"worker {c.worker}: {why}")
    sys.stdout.write("READY\n")
    sys.stdout.flush()

    while True:
        sig = signal.sigwait((*STOP_SIGNALS, signal.SIGCHLD))
        if sig != signal.SIGCHLD:
            break
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            dead = next((c for c in children if c.pid == pid), None)
            _kill_all(children)
            name = f"worker {dead.worker}" if dead else f"process {pid}"
            fatal(f"{name} died ({_status(status)})")

    for c in children:
        try:
            os.kill(c.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def reported(c: _Child) -> bool:
        return any(ln.startswith("C") for ln in c.lines)

    _pump(children, time.monotonic() + REPORT_TIMEOUT_S, reported)
    workers = [json.loads(ln[1:]) for c in children for ln in c.lines if ln.startswith("C")]
    if len(workers) < cfg.threads:
        print(
            f"warning: only {len(workers)} of {cfg.threads} workers reported counters",
            file=sys.stderr,
        )
    line = {"schema": "server-counters/1", "design": design, "protocol": cfg.protocol}
    line["workers"] = workers
    _kill_all(children)  # they have reported (or missed the deadline): none outlives the parent
    try:
        sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        pass  # no one is left to read it
    os._exit(0)


def _status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
