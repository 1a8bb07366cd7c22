"""What the Python server designs share: the counterpart of `servers/core` (bench-core) for the
designs in this folder. A design file adds only how its worker processes get a listening socket
and what runs in them.

- `parse_config`: the command line of docs/server-contract.md, with bench-core's error messages
  (`error: ...` on stderr, exit 2), plus `--work DIST` and `--seed N`;
- `listen`: listeners with the contract's options (SO_REUSEADDR, optional SO_REUSEPORT,
  backlog 1024, nonblocking);
- `Work`, `Rng`, `burn`: `--work`, drawn exactly as bench-core draws it (its SplitMix64 and
  formulas) and burnt in a busy loop on `time.perf_counter_ns` (never a sleep);
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
import contextlib
import ctypes
import ipaddress
import json
import math
import os
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
MAX_HEAD_BYTES = 8 * 1024  # bench-core's http::MAX_HEAD: a longer request head gets a 400
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


# --- command line and --work ----------------------------------------------------------------

DEFAULT_SEED = 1  # bench_core::work::DEFAULT_SEED
MAX_US = 1e6  # largest microsecond parameter of --work (bench-core's MAX_US)
MAX_DRAW_NS = 10_000_000_000  # a single draw is clamped to 10 s (bench-core's MAX_DRAW)
_M64 = (1 << 64) - 1
_GOLDEN_GAMMA = 0x9E37_79B9_7F4A_7C15
_FLOAT = re.compile(r"[+-]?(inf|infinity|nan|(\d+\.?\d*|\.\d+)(e[+-]?\d+)?)", re.IGNORECASE)


def _mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB) & _M64
    return z ^ (z >> 31)


class Rng:
    """bench-core's SplitMix64 (work::Rng), bit for bit: the same --seed gives a Python worker
    the same draws as the Rust worker with the same index."""

    __slots__ = ("state",)

    def __init__(self, seed: int, stream: int) -> None:
        self.state = _mix64(_mix64(seed) ^ ((stream * _GOLDEN_GAMMA) & _M64))

    def next_u64(self) -> int:
        self.state = (self.state + _GOLDEN_GAMMA) & _M64
        return _mix64(self.state)

    def unit(self) -> float:
        """Uniform in [0, 1), 53 bits."""
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def open01(self) -> float:
        """Uniform in (0, 1): never 0, so its logarithm is finite."""
        return ((self.next_u64() >> 11) + 0.5) * (1.0 / (1 << 53))


@dataclass(frozen=True)
class Work:
    """`--work DIST`: CPU time burnt before answering each echo read or HTTP request."""

    kind: str = "none"  # none | fixed | exp | bimodal | lognormal
    params: tuple[float, ...] = ()

    @staticmethod
    def parse(text: str) -> Work:
        """bench-core's syntax, limits and messages (work.rs, `WorkDist::from_str`)."""
        kind, *fields = text.split(":")
        arity = {"none": 0, "fixed": 1, "exp": 1, "lognormal": 2, "bimodal": 3}
        if kind not in arity or len(fields) != arity[kind]:
            raise UsageError(f"--work: expected {WORK_SYNTAX}, got '{text}'")
        params = []
        for field in fields:
            value = float(field) if _FLOAT.fullmatch(field) else math.nan
            if not (math.isfinite(value) and value >= 0):
                raise UsageError(f"--work: '{field}' in '{text}' is not a number >= 0")
            params.append(value)
        micros = {"bimodal": params[:2], "lognormal": params[:1]}.get(kind, params)
        if any(us > MAX_US for us in micros):
            raise UsageError(f"--work: '{text}': durations are at most {MAX_US:.0f} us")
        if kind == "bimodal" and params[2] > 1:
            raise UsageError(f"--work: '{text}': P2 is a probability, 0..1")
        return Work(kind, tuple(params))

    def sample_ns(self, rng: Rng) -> int:
        """One draw in nanoseconds, with bench-core's formulas (so the same draws)."""
        p = self.params
        if self.kind == "fixed":
            us = p[0]
        elif self.kind == "exp":
            us = -p[0] * math.log(rng.open01())
        elif self.kind == "bimodal":
            us = p[1] if rng.unit() < p[2] else p[0]
        elif self.kind == "lognormal":  # Box-Muller, the cosine half
            radius = math.sqrt(-2.0 * math.log(rng.open01()))
            z = radius * math.cos(math.tau * rng.unit())
            try:
                us = p[0] * math.exp(p[1] * z)
            except OverflowError:
                us = math.inf
        else:
            return 0
        ns = us * 1e3
        if ns != ns or ns > MAX_DRAW_NS:  # Rust's f64::min returns the non-NaN operand
            return MAX_DRAW_NS
        return math.floor(ns + 0.5)  # Rust rounds half away from zero; ns >= 0


def burn(ns: int) -> None:
    """Spins until `ns` nanoseconds have passed: simulated request processing, never a sleep."""
    if ns <= 0:
        return
    deadline = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < deadline:
        pass


class Burner:
    """One worker's `--work`: its generator (stream `worker` of `--seed`, as bench-core's
    `Config::pin_worker` seeds each worker thread) and the burn. Called once per non-empty echo
    read or per HTTP request."""

    __slots__ = ("rng", "work")

    def __init__(self, work: Work, seed: int, worker: int) -> None:
        self.work = work
        self.rng = Rng(seed, worker)

    def __call__(self) -> None:
        burn(self.work.sample_ns(self.rng))


@dataclass(frozen=True)
class Config:
    protocol: str = "echo"
    host: str = "127.0.0.1"
    port: int = 7878
    threads: int = 1
    cpus: tuple[int, ...] | None = None  # worker i -> cpus[i]; None: unpinned
    work: Work = Work()
    seed: int = DEFAULT_SEED

    def cpu(self, worker: int) -> int | None:
        return None if self.cpus is None else self.cpus[worker]

    def burner(self, worker: int) -> Burner | None:
        return None if self.work.kind == "none" else Burner(self.work, self.seed, worker)


MAX_CPUS = 1024  # CPU_SETSIZE, as bench-core


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """`1,3,5` or ranges `0-3` (a CPU may repeat), as bench-core's cpu::parse_list."""
    if not text.strip():
        raise UsageError("--cpus: empty CPU list")

    def cpu(s: str) -> int:
        s = s.strip()
        if not re.fullmatch(r"\+?\d+", s):
            raise UsageError(f"--cpus: '{s}' is not a CPU number")
        if int(s) >= MAX_CPUS:
            raise UsageError(f"--cpus: CPU {int(s)} is out of range (at most {MAX_CPUS - 1})")
        return int(s)

    cpus: list[int] = []
    for item in text.split(","):
        first, dash, last = item.partition("-")
        lo, hi = (cpu(first), cpu(last)) if dash else (cpu(item), cpu(item))
        if lo > hi:
            raise UsageError(f"--cpus: descending range '{item}'")
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


# What a response says about the connection (bench-core's http::Persist).
KEEP_ALIVE, KEEP_ALIVE_10, CLOSE = 0, 1, 2
GET, HEAD, OTHER = 0, 1, 2


class HttpResponses:
    """bench-core's responses (http.rs), byte for byte: status line, Content-Length,
    Content-Type, Server, Date, then Connection when it is not the default. The Date value is
    reformatted when the second changes, checked once per read (`now`)."""

    __slots__ = ("bad", "second", "table")

    def __init__(self) -> None:
        self.second = -1
        self.now()

    def now(self) -> HttpResponses:
        second = int(time.time())
        if second != self.second:
            self.second = second
            self._build(formatdate(second, usegmt=True).encode())  # IMF-fixdate
        return self

    def _build(self, date: bytes) -> None:
        ok = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n"
        not_allowed = (
            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nAllow: GET, HEAD\r\n"
        )
        tail = b"Server: " + SERVER_NAME.encode() + b"\r\nDate: " + date
        ends = {
            KEEP_ALIVE: b"\r\n\r\n",
            KEEP_ALIVE_10: b"\r\nConnection: keep-alive\r\n\r\n",
            CLOSE: b"\r\nConnection: close\r\n\r\n",
        }
        self.table = {
            (method, persist): start + tail + end + body
            for persist, end in ends.items()
            for method, start, body in (
                (GET, ok, BODY),
                (HEAD, ok, b""),
                (OTHER, not_allowed, b""),
            )
        }
        self.bad = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n" + tail + ends[CLOSE]


BODY = b"Hello, World!"
MAX_HEADERS = 64  # bench-core's http::MAX_HEADERS (httparse's header array)
RESPONSES = HttpResponses()  # one per process, so one per worker
# The byte classes of httparse 1.10, which bench-core uses: a method is an RFC 9110 token, a
# target any visible ASCII or byte >= 0x80, a header name a token, a value HTAB, visible ASCII,
# space or obs-text.
_METHOD_CHARS = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_TARGET_CHARS = rb"[\x21-\x7e\x80-\xff]"
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(rb"(" + _METHOD_CHARS + rb"+) " + _TARGET_CHARS + rb"+ HTTP/1\.([01])")
# A request line not complete yet, but still possibly valid (httparse refuses early).
_REQUEST_PREFIX = re.compile(
    _METHOD_CHARS
    + rb"*|"
    + _METHOD_CHARS
    + rb"+ "
    + _TARGET_CHARS
    + rb"*|"
    + _METHOD_CHARS
    + rb"+ "
    + _TARGET_CHARS
    + rb"+ (H|HT|HTT|HTTP|HTTP/|HTTP/1|HTTP/1\.)?"
    + rb"|"
    + _METHOD_CHARS
    + rb"+ "
    + _TARGET_CHARS
    + rb"+ HTTP/1\.[01]\r?"
)
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_LONE_CR = re.compile(rb"\r[^\n]")
_PARTIAL, _BAD = "partial", "bad"


def _head_end(buf: bytes, pos: int) -> int:
    """End of the request head starting at pos (just past its blank line), or -1. Lines end
    with CRLF or, as httparse accepts, a bare LF."""
    crlf = buf.find(b"\n\r\n", pos)
    lf = buf.find(b"\n\n", pos)
    if crlf < 0:
        return -1 if lf < 0 else lf + 2
    return crlf + 3 if lf < 0 or crlf < lf else lf + 2


def _lines(head: bytes) -> list[bytes]:
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in head.split(b"\n")]


def _bad_lines(lines: list[bytes]) -> bool:
    """True if a complete request line or header line is malformed (as httparse rejects it)."""
    if lines and not _REQUEST_LINE.fullmatch(lines[0]):
        return True
    for line in lines[1:]:
        colon = line.find(b":")
        if colon <= 0 or not _TOKEN.fullmatch(line, 0, colon):
            return True  # no name, whitespace before the colon, obs-fold
        if not _FIELD_VALUE.fullmatch(line, colon + 1):
            return True  # a control character (a bare CR, NUL, ...)
    return False


def _content_length(value: bytes) -> int | None:
    digits = value.strip(b" \t")
    if not digits.isdigit() or int(digits) > _M64:
        return None
    return int(digits)


def parse_head(buf: bytes, pos: int) -> tuple[int, int, int, int] | str:
    """The request head at buf[pos:], as bench-core's http::parse: (length, method, persist,
    body length), or _PARTIAL (a valid prefix shorter than MAX_HEAD) or _BAD."""
    start = pos
    while buf.startswith(b"\r\n", pos) or buf.startswith(b"\n", pos):  # empty lines first
        pos += 2 if buf[pos] == 13 else 1
    end = _head_end(buf, pos)
    if end < 0:
        if len(buf) - start >= MAX_HEAD_BYTES:
            return _BAD
        lines = _lines(buf[pos:])
        if len(lines) == 1:
            return _PARTIAL if _REQUEST_PREFIX.fullmatch(lines[0]) else _BAD
        if _LONE_CR.search(buf, pos) or _bad_lines(lines[:-1]):  # the last may be incomplete
            return _BAD
        return _PARTIAL
    if end - start > MAX_HEAD_BYTES:
        return _BAD
    lines = _lines(buf[pos:end])[:-2]  # the blank line
    if len(lines) - 1 > MAX_HEADERS or _bad_lines(lines):
        return _BAD
    close = keep_alive = False
    body = None
    for line in lines[1:]:
        colon = line.find(b":")
        name = line[:colon].lower()
        if name == b"connection":
            for option in line[colon + 1 :].split(b","):
                option = option.strip(b" \t").lower()
                close |= option == b"close"
                keep_alive |= option == b"keep-alive"
        elif name == b"content-length":
            n = _content_length(line[colon + 1 :])
            if n is None or (body is not None and n != body):
                return _BAD
            body = n
        elif name == b"transfer-encoding":
            return _BAD  # chunked bodies are not supported
    m = _REQUEST_LINE.match(lines[0])
    method = {b"GET": GET, b"HEAD": HEAD}.get(m[1], OTHER)
    http10 = m[2] == b"0"
    if close or (http10 and not keep_alive):
        persist = CLOSE
    else:
        persist = KEEP_ALIVE_10 if http10 else KEEP_ALIVE
    return end - start, method, persist, body or 0


class HttpSession:
    """HTTP/1.1 as bench-core speaks it (http.rs): GET -> `200 Hello, World!`, HEAD -> the same
    head, any other method -> 405; keep-alive unless `Connection: close` (HTTP/1.0: unless
    `Connection: keep-alive`); pipelined requests answered in order, all the answers to one
    read in one write; request bodies (Content-Length) skipped; a malformed request, more than
    64 headers, a head over 8 KiB or Transfer-Encoding -> 400 and close."""

    __slots__ = ("body_left", "burner", "closed", "partial", "responses")

    def __init__(self, burner: Burner | None = None, responses: HttpResponses = RESPONSES):
        self.burner = burner
        self.responses = responses
        self.partial = b""  # an incomplete request head from earlier reads
        self.body_left = 0  # body bytes of an answered request still to skip
        self.closed = False

    def on_read(self, data: memoryview) -> tuple[bytes, int, bool]:
        if self.closed or not data:
            return b"", 0, self.closed
        skip = min(self.body_left, len(data))
        self.body_left -= skip
        buf = self.partial + data[skip:] if self.partial else bytes(data[skip:])
        self.partial = b""
        table = self.responses.now().table
        out: list[bytes] = []
        pos = 0
        while pos < len(buf):
            head = parse_head(buf, pos)
            if head is _PARTIAL:
                self.partial = buf[pos:]
                break
            if head is _BAD:
                out.append(self.responses.bad)
                self.closed = True
                break
            length, method, persist, body = head
            if self.burner is not None:
                self.burner()
            out.append(table[method, persist])
            if persist == CLOSE:
                self.closed = True
                break
            pos += length
            skip = min(body, len(buf) - pos)
            pos += skip
            self.body_left = body - skip
        return b"".join(out), len(out), self.closed


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


def serve_asyncio(cfg: Config, worker: int, sock: socket.socket, link: WorkerLink) -> NoReturn:
    """A worker process of the asyncio designs: one uvloop event loop serving `sock`."""
    import uvloop  # imported here so that a parent that fails early never pays for it

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    counters = Counters()
    burner = cfg.burner(worker)
    if cfg.protocol == "http":

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
        with contextlib.suppress(ProcessLookupError):
            os.kill(c.pid, signal.SIGKILL)
    for c in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(c.pid, 0)


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
        with contextlib.suppress(ProcessLookupError):
            os.kill(c.pid, signal.SIGTERM)

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
