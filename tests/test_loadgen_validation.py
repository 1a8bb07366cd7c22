"""Validation of the load generator as a measuring instrument (docs/loadgen.md): known delays are
measured as such, a stall shows in open-loop latency and not in the uncorrected one, the rate is
what was asked, histograms read back in HdrHistogram's own tools, HTTP responses are validated,
skew and churn do what they say, and the client says when it is the bottleneck.

Servers run on 127.0.0.1 in threads of this process (or as subprocesses: nginx, tokio-tpc), every
loadgen run is a subprocess with a hard time limit, and everything is stopped at the end of its
test. Skipped when the binary is not built (`cargo build --release -p loadgen`).

Timing bounds, stated once: the delay server answers a message no earlier than `delay` after it
read it (select() with microsecond timeouts, 1 us timer slack), so a measured latency is never
below the delay; above it are loopback (tens of us), the Python server's own work and its wake-up
(tens of us), and the histogram's bucket width (< 0.1%). We allow 400 us: p50 in [d, d + 0.4 ms].
A message's delay runs from its arrival in the server's socket (the kernel's SO_TIMESTAMPNS), so a
late wake-up of the Python server counts as the server's lateness, in what it "actually" did. The
one wake-up the instrument cannot avoid, its own on the answer's arrival, costs what the platform
charges any thread on the client CPU; the load generator's hiccup meter measures that during the
run (its p50), and the bound adds it: p50 in [served, served + 0.4 ms + hiccup p50].
"""

import contextlib
import ctypes
import math
import os
import select
import socket
import statistics
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import BIN_DIR, LOADGEN, ServerThread, free_port, run_loadgen, server_process
from test_loadgen import bucket_of, echo, percentile_us

pytestmark = [
    pytest.mark.skipif(
        not LOADGEN.exists(), reason="loadgen not built: cargo build --release -p loadgen"
    ),
    pytest.mark.usefixtures("no_leftover_threads"),
]

MS = 1000.0  # us per ms
SLACK_US = 400.0  # see the module docstring
CPUS = sorted(os.sched_getaffinity(0))
CLIENT_CPU = CPUS[0]
# The I/O paths (`--io`): the timing, pipelining, error and churn tests run on both.
IO_PATHS = ["epoll", "uring"]
SERVER_CPU = CPUS[1] if len(CPUS) > 1 else CPUS[0]
PR_SET_TIMERSLACK = 29
_libc = ctypes.CDLL(None, use_errno=True)
# Linux's kernel receive timestamp as a struct timespec of CLOCK_REALTIME (asm-generic/socket.h;
# the Python socket module does not export it).
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
TIMESPEC = struct.Struct("@qq")


def arrival_monotonic(ancdata, fallback):
    """When the kernel queued the data (SO_TIMESTAMPNS), on the time.monotonic() clock; the
    read time `fallback` when the kernel gave no timestamp."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            sec, nsec = TIMESPEC.unpack_from(data)
            real_minus_mono = time.clock_gettime(time.CLOCK_REALTIME) - time.monotonic()
            return min(fallback, sec + nsec / 1e9 - real_minus_mono)
    return fallback


# --- a precise threaded server ---------------------------------------------------------------


class TcpServer:
    """A TCP server on 127.0.0.1 (ephemeral port), one thread per connection running
    `handler(sock, index, server)`. Stopping closes every socket and joins every thread."""

    def __init__(self, handler):
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.sockets = []
        self.threads = []
        self.accepted = 0
        self.start = time.monotonic()
        self.acceptor = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        self.listener.settimeout(0.05)
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                index = self.accepted
                self.accepted += 1
                self.sockets.append(sock)
                t = threading.Thread(target=self._serve, args=(sock, index), daemon=True)
                self.threads.append(t)
            t.start()

    def _serve(self, sock, index):
        _libc.prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0)  # 1 us: wake when asked
        try:
            self.handler(sock, index, self)
        except (OSError, ValueError):
            pass  # the client went away, or the server is stopping
        finally:
            sock.close()

    def __enter__(self):
        self.acceptor.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.acceptor.join(5)
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            threads = list(self.threads)
        for t in threads:
            t.join(5)
        assert not any(t.is_alive() for t in [self.acceptor, *threads]), "server threads left"


class Stall:
    """One global stall: the first message read `after_s` or more after the server started
    freezes every answer of every connection for `length_s`."""

    def __init__(self, after_s, length_s=0.5):
        self.after_s, self.length_s = after_s, length_s
        self.start = self.end = None
        self.lock = threading.Lock()

    def on_message(self, now, server_start):
        with self.lock:
            if self.start is None and now - server_start >= self.after_s:
                self.start, self.end = now, now + self.length_s

    def hold_until(self, now):
        """When an answer due at `now` may go out."""
        if self.start is not None and self.start <= now < self.end:
            return self.end
        return now


class DelayServer:
    """Echo of `size`-byte messages, each answered `delay(conn, n)` seconds after it was read
    (in order: never before the previous answer of its connection), optionally frozen by a
    `Stall`. One thread runs one select() loop for every connection (microsecond timeouts, no
    hand-offs between server threads), pinned off the client's CPU. `counts[conn]` counts the
    messages of each connection, `accepted` the connections."""

    def __init__(self, delay=lambda conn, n: 0.002, size=64, stall=None):
        self.delay, self.size, self.stall = delay, size, stall
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.counts = {}
        self.accepted = 0
        # How late each answer really went out (seconds after its message was read): a Python
        # server on a shared machine is not punctual, and the instrument is judged against
        # what the server actually did, not against what it was asked to do.
        self.actual_delays: list[float] = []
        self.asked_delays: list[float] = []  # the delay each of those answers was asked for
        self.start = time.monotonic()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        _libc.prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0)  # 1 us: wake when asked
        os.sched_setaffinity(0, {SERVER_CPU})  # this thread only: off the client's CPU
        conns = {}  # socket -> [index, buffer, pending [(due, message)]]
        try:
            while not self.stopping.is_set():
                self._send_due(conns)
                now = time.monotonic()
                dues = [st[2][0][0] for st in conns.values() if st[2]]
                wait = min([0.05, *(d - now for d in dues)])
                if dues and self.stall:
                    wait = max(wait, self.stall.hold_until(now) - now)
                readable, _, _ = select.select([self.listener, *conns], [], [], max(0.0, wait))
                now = time.monotonic()
                for sock in readable:
                    if sock is self.listener:
                        self._accept(conns)
                    else:
                        self._read(sock, conns, now)
        finally:
            for sock in conns:
                sock.close()

    def _accept(self, conns):
        with contextlib.suppress(BlockingIOError):
            sock, _ = self.listener.accept()
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            conns[sock] = [self.accepted, b"", []]
            self.accepted += 1

    def _read(self, sock, conns, now):
        index, buf, pending = conns[sock]
        try:
            data, ancdata, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(TIMESPEC.size))
        except OSError:
            data, ancdata = b"", []
        # A message counts from its arrival (of the data's last segment read here), not from
        # this thread's wake-up: a late wake-up is the server's lateness, not the instrument's.
        now = arrival_monotonic(ancdata, now)
        if not data:
            del conns[sock]
            sock.close()
            return
        buf += data
        while len(buf) >= self.size:
            message, buf = buf[: self.size], buf[self.size :]
            n = self.counts.get(index, 0)
            self.counts[index] = n + 1
            if self.stall:
                self.stall.on_message(now, self.start)
            due = now + self.delay(index, n)
            if pending:
                due = max(due, pending[-1][0])
            pending.append((due, message, now))
        conns[sock][1] = buf

    def _send_due(self, conns):
        now = time.monotonic()
        if self.stall and self.stall.hold_until(now) > now:
            return
        for sock, (_, _, pending) in list(conns.items()):
            out = b""
            while pending and pending[0][0] <= now:
                due, message, read_at = pending.pop(0)
                out += message
                self.actual_delays.append(now - read_at)
                self.asked_delays.append(due - read_at)
            if out:
                try:
                    sock.sendall(out)
                except OSError:
                    del conns[sock]
                    sock.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()
        assert not self.thread.is_alive(), "delay server did not stop"


def http_server(response, close_every=None, byte_by_byte=False, batch=None, stats=None):
    """HTTP/1.1: answers every request (ending in a blank line) with `response`. Options: close
    the connection after every `close_every`-th response (with `Connection: close`); write
    responses one byte at a time; or hold answers until `batch` requests are waiting, then
    answer them all (stats["max_waiting"] records the most ever waiting)."""

    closing = response.replace(b"\r\n", b"\r\nConnection: close\r\n", 1)

    def handler(sock, index, server):
        buf = b""
        served = 0
        waiting = 0
        while not server.stopping.is_set():
            readable, _, _ = select.select([sock], [], [], 0.05)
            if not readable:
                continue
            data = sock.recv(65536)
            if not data:
                return
            buf += data
            while b"\r\n\r\n" in buf:
                _, buf = buf.split(b"\r\n\r\n", 1)
                waiting += 1
            if stats is not None:
                stats["max_waiting"] = max(stats.get("max_waiting", 0), waiting)
            if batch is not None and waiting < batch:
                continue
            while waiting:
                waiting -= 1
                served += 1
                last = close_every is not None and served % close_every == 0
                out = closing if last else response
                if byte_by_byte:
                    for i in range(len(out)):
                        sock.sendall(out[i : i + 1])
                        time.sleep(0.00002)
                else:
                    sock.sendall(out)
                if last:
                    return lingering_close(sock)

    return handler


def lingering_close(sock, limit_s=1.0):
    """Closes like a careful HTTP server: FIN first, then reads (and drops) what the client
    still sends until it closes too, so that closing with unread data does not turn into a
    reset that destroys answers still on their way."""
    sock.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable and not sock.recv(65536):
            return


OK_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
)


# --- helpers ---------------------------------------------------------------------------------


def loadgen(flags, limit=30, expect_rc=0):
    rc, doc, err, _ = run_loadgen(flags, limit=limit)
    if expect_rc is not None:
        assert rc == expect_rc, err
    return doc


def starved(doc):
    """Whether a client thread waited for a CPU (the kernel's run-queue time, which loadgen
    reports): on a busy machine other processes delay the client, which then says so."""
    return any(r["kind"] == "runqueue_wait" for r in doc["summary"]["client_limits"])


def loadgen_unstarved(flags, attempts=3):
    """A run in which the client got its CPU; timing claims are checked only on such runs (the
    others are honest about why they are late). Skips when the machine stays too busy."""
    for _ in range(attempts):
        doc = loadgen(flags)
        if not starved(doc):
            return doc
    pytest.skip(f"machine too busy: client starved of CPU in {attempts} runs: {flags}")


def client_wakeup_p50_us(doc):
    """What the platform charged a wake-up on the client CPU during the run: the median
    overshoot of the load generator's hiccup meter (module docstring)."""
    return max(c["p50_us"] or 0.0 for c in doc["hiccup"]["per_cpu"])


def buckets_of(doc, key="histogram"):
    return doc[key]["buckets"]


def count_between(buckets, lo_us, hi_us):
    """Requests whose bucket lies within [lo_us, hi_us]."""
    return sum(
        b["count"]
        for b in buckets
        if b["lower_ns"] >= lo_us * 1000 and b["upper_ns"] <= hi_us * 1000
    )


NGINX = Path("/usr/sbin/nginx")


@contextlib.contextmanager
def nginx(tmp_path, keepalive_requests=1_000_000):
    """Debian's nginx (one worker, pinned to the server CPU) answering `200 Hello, World!`."""
    if not NGINX.exists():
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"""
        {"user root;" if os.geteuid() == 0 else ""}
        worker_processes 1;
        worker_cpu_affinity {"1" + "0" * SERVER_CPU};
        pid {tmp_path}/nginx.pid;
        error_log stderr warn;
        events {{ worker_connections 1024; }}
        http {{
            access_log off;
            tcp_nodelay on;
            keepalive_requests {keepalive_requests};
            client_body_temp_path {tmp_path}/body;
            server {{
                listen 127.0.0.1:{port} backlog=1024;
                location / {{ default_type text/plain; return 200 "Hello, World!"; }}
            }}
        }}
        """
    )
    argv = [str(NGINX), "-c", str(conf), "-p", str(tmp_path), "-e", "stderr", "-g", "daemon off;"]
    with server_process(argv, ready_port=port):
        yield port


# --- known delay -----------------------------------------------------------------------------


@pytest.mark.parametrize("io", IO_PATHS)
@pytest.mark.parametrize("mode", ["closed", "open"])
def test_a_2ms_server_measures_2ms(mode, io):
    rate = " --rate 200 --arrival uniform" if mode == "open" else ""
    with DelayServer(delay=lambda c, n: 0.002) as srv:
        doc = loadgen_unstarved(
            f"--port {srv.port} --connections 2 --cpus {CLIENT_CPU} --warmup 0.3 --duration 2{rate}"
            f" --io {io}"
        )
    lat = doc["summary"]["latency_us"]
    assert doc["summary"]["errors_total"] == 0
    assert doc["summary"]["requests"] > 300
    # Never below the delay; the median within the stated slack above what the server did
    # (its answers go out at 2 ms, or later when the shared machine delays the Python thread).
    served_p50 = statistics.median(srv.actual_delays) * 1e6
    wake_p50 = client_wakeup_p50_us(doc)
    assert lat["min"] >= 2 * MS
    assert served_p50 >= 2 * MS
    assert served_p50 <= lat["p50"] <= served_p50 + SLACK_US + wake_p50, (lat, served_p50, wake_p50)
    if mode == "open":
        service = doc["summary"]["service_latency_us"]
        assert 2 * MS <= service["p50"] <= lat["p50"]


# --- coordinated omission: a 500 ms stall ----------------------------------------------------


@pytest.mark.parametrize("io", IO_PATHS)
def test_a_stall_shows_in_corrected_latency_only(io):
    stall = Stall(after_s=1.5)  # ~1 s into the measured window (0.5 s warm-up)
    with DelayServer(delay=lambda c, n: 0.0, stall=stall) as srv:
        doc = loadgen(
            f"--port {srv.port} --connections 2 --cpus {CLIENT_CPU} --warmup 0.5 --duration 3"
            f" --rate 2000 --seed 3 --io {io}"
        )
    assert stall.start is not None, "the server never stalled"
    s = doc["summary"]
    assert doc["latency_kind"] == "open-loop-corrected"
    assert s["errors_total"] == 0
    assert s["requests"] > 5000
    # ~1000 requests were due during the stall: the top 0.1% waited most of its 500 ms ...
    assert s["latency_us"]["p999"] >= 400 * MS
    assert s["latency_us"]["max"] >= 450 * MS
    # ... while only the 2 requests on the wire when it began saw it from their actual send.
    assert s["service_latency_us"]["p999"] < 50 * MS
    assert s["service_latency_us"]["max"] >= 400 * MS
    # The series shows the interval with the stall.
    assert max(r["p999_us"] for r in doc["series"]) >= 400 * MS


def test_closed_loop_labels_its_latency_and_hides_the_stall():
    stall = Stall(after_s=1.0)
    with DelayServer(delay=lambda c, n: 0.0, stall=stall) as srv:
        doc = loadgen(
            f"--port {srv.port} --connections 2 --cpus {CLIENT_CPU} --warmup 0.5 --duration 2"
        )
    assert stall.start is not None
    s = doc["summary"]
    assert doc["latency_kind"] == "closed-loop"
    assert doc["config"]["mode"] == "closed"
    assert s["service_latency_us"] is None and doc["service_histogram"] is None
    assert s["schedule_lag_us"] is None and s["target_rate"] is None
    # Coordinated omission: the stall is one sample per connection.
    assert s["latency_us"]["max"] >= 400 * MS
    assert s["latency_us"]["p99"] < 50 * MS


# --- rate accuracy -----------------------------------------------------------------------------


@contextlib.contextmanager
def fast_echo_server():
    """tokio-tpc pinned to the server CPU when built, else a Python asyncio echo server."""
    binary = BIN_DIR / "tokio-tpc"
    if binary.exists():
        port = free_port()
        argv = [str(binary), "--port", str(port), "--threads", "1", "--cpus", str(SERVER_CPU)]
        with server_process(argv):
            yield port
    else:
        with ServerThread(echo) as srv:
            yield srv.port


@pytest.mark.parametrize("arrival", ["uniform", "poisson"])
def test_achieved_rate_at_half_capacity_is_within_1_percent(arrival):
    with fast_echo_server() as port:
        base = f"--port {port} --cpus {CLIENT_CPU} --connections 16 --warmup 0.5"
        capacity = loadgen(f"{base} --duration 1.5")["summary"]["throughput_rps"]
        target = round(capacity / 2)
        doc = loadgen_unstarved(f"{base} --duration 3 --rate {target} --arrival {arrival} --seed 5")
    s = doc["summary"]
    assert s["target_rate"] == target
    assert s["errors_total"] == 0
    assert s["achieved_rate"] == pytest.approx(target, rel=0.01), s
    assert s["sent_rate"] == pytest.approx(target, rel=0.01), s
    if arrival == "uniform":  # evenly spaced: exactly rate * window scheduled, give or take one
        assert abs(s["scheduled_rate"] * s["window_s"] - target * 3) <= 16


# --- histogram: several magnitudes, HdrHistogram log -------------------------------------------

DELAYS_MS = [0.5, 4, 16, 64]  # 2^19 .. 2^26 ns: several magnitudes of the bucket layout
JITTER_US = 2000.0  # the Python server's worst wake-up on a busy machine, far below the gaps


def test_histogram_holds_known_delays_and_hdrh_reads_the_log(tmp_path):
    hdrh_histogram = pytest.importorskip("hdrh.histogram")
    hdrh_log = pytest.importorskip("hdrh.log")
    hlog = tmp_path / "run.hlog"
    cycle = lambda conn, n: DELAYS_MS[(n + conn) % len(DELAYS_MS)] / 1000  # noqa: E731
    with DelayServer(delay=cycle) as srv:
        doc = loadgen(
            f"--port {srv.port} --connections 8 --threads 2 --cpus {CLIENT_CPU},{CLIENT_CPU}"
            f" --warmup 0.2 --duration 2.5 --interval-ms 500 --hlog {hlog}"
        )
    s = doc["summary"]
    buckets = buckets_of(doc)
    n = s["requests"]
    assert s["errors_total"] == 0 and n > 400
    # Nothing is faster than the shortest delay. Each delay d has its cluster in [d, d + jitter]
    # holding (nearly) its share of the requests (connections cycle through the delays, so the
    # window's edges cut at most one cycle per connection; the server guarantees "not before d",
    # a busy machine may delay a few answers more), and each cluster's median is within the
    # stated slack of its delay, at every magnitude.
    assert buckets[0]["lower_ns"] >= bucket_of(int(DELAYS_MS[0] * 1e6))[0]
    clusters = [
        [
            b
            for b in buckets
            if d * MS <= b["lower_ns"] / 1000 and b["upper_ns"] / 1000 <= d * MS + JITTER_US
        ]
        for d in DELAYS_MS
    ]
    counts = [sum(b["count"] for b in c) for c in clusters]
    # A platform stall longer than the clusters' jitter moves answers out of their cluster: that
    # is the machine, not the load generator. Its own hiccup meter says when that happened.
    stall_us = max(c["max_us"] for c in doc["hiccup"]["per_cpu"])
    short = [c for c in counts if c < 0.96 * n / len(DELAYS_MS) - 8]
    if short and stall_us > JITTER_US:
        pytest.skip(
            f"machine too busy: the client CPU stalled {stall_us / 1e3:.1f} ms (hiccup meter), "
            f"more than the clusters' {JITTER_US / 1e3:.0f} ms jitter; cluster counts {counts}"
        )
    for d, c, cluster in zip(DELAYS_MS, counts, clusters, strict=True):
        assert 0.96 * n / len(DELAYS_MS) - 8 <= c <= n / len(DELAYS_MS) + 8, counts
        median = percentile_us(cluster, "50")
        served = (
            statistics.median(
                a
                for a, asked in zip(srv.actual_delays, srv.asked_delays, strict=True)
                if abs(asked * 1e3 - d) < 1e-6
            )
            * 1e6
        )  # what the server really did for this delay (a busy machine makes it late)
        bound = served * (1 + 1 / 1024) + SLACK_US + client_wakeup_p50_us(doc)
        assert d * MS <= served <= median <= bound, (d, median, bound)

    # The HdrHistogram log: one line per interval, read back by hdrh with the same counts.
    assert doc["config"]["hlog"] == str(hlog)
    reader = hdrh_log.HistogramLogReader(str(hlog), hdrh_histogram.HdrHistogram(1, 60 * 10**9, 3))
    total = hdrh_histogram.HdrHistogram(1, 60 * 10**9, 3)
    intervals = []
    while (h := reader.get_next_interval_histogram()) is not None:
        intervals.append(h.get_total_count())
        total.add(h)
    reader.close()
    assert intervals == [r["requests"] for r in doc["series"]]
    assert total.get_total_count() == n
    for b in buckets:
        assert total.get_count_at_value(b["lower_ns"]) == b["count"]
        lo, hi = bucket_of(b["lower_ns"])
        assert total.get_lowest_equivalent_value(b["lower_ns"]) == lo
        assert total.get_highest_equivalent_value(b["lower_ns"]) == hi - 1
    assert total.get_min_value() == buckets[0]["lower_ns"]
    assert total.get_max_value() == buckets[-1]["upper_ns"] - 1
    # Percentiles: hdrh rounds the rank (count * p + 0.5), we take the ceiling; where the ranks
    # agree the answers are the same value, the bucket's highest equivalent.
    for key, p in [("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)]:
        if math.ceil(p / 100 * n) == max(1, int(p * n / 100 + 0.5)):
            assert total.get_value_at_percentile(p) == round(s["latency_us"][key] * 1000), key
    # numpy on the values the buckets stand for (highest equivalent) agrees with the summary.
    values = np.repeat([b["upper_ns"] - 1 for b in buckets], [b["count"] for b in buckets])
    for key, p in [("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)]:
        expected = np.percentile(values, p, method="inverted_cdf") / 1000
        assert s["latency_us"][key] == pytest.approx(expected), key
        assert s["latency_us"][key] == percentile_us(buckets, str(p))


# --- HTTP ------------------------------------------------------------------------------------


@pytest.mark.parametrize("io", IO_PATHS)
def test_http_pipelined_16_against_nginx(tmp_path, io):
    # keepalive_requests 100: nginx closes every connection after 100 responses, with some of
    # our 16 pipelined requests unanswered; they are sent again on a new connection.
    with nginx(tmp_path, keepalive_requests=100) as port:
        doc = loadgen(
            f"--protocol http --port {port} --path /hello --connections 4 --pipeline 16"
            f" --cpus {CLIENT_CPU} --warmup 0.3 --duration 1.5 --io {io}"
        )
        opened = loadgen(
            f"--protocol http --port {port} --connections 4 --pipeline 4 --rate 2000"
            f" --cpus {CLIENT_CPU} --warmup 0.3 --duration 1.5 --io {io}"
        )
    s = doc["summary"]
    assert s["errors_total"] == 0, s["errors"]
    assert s["requests"] > 1000
    assert s["bytes_received"] > s["requests"] * 13
    assert doc["config"]["path"] == "/hello" and doc["config"]["size"] is None
    o = opened["summary"]
    assert o["errors_total"] == 0
    assert o["achieved_rate"] == pytest.approx(2000, rel=0.05)


@pytest.mark.parametrize("io", IO_PATHS)
def test_http_keeps_exactly_the_pipeline_depth_outstanding(io):
    stats = {}
    with TcpServer(http_server(OK_RESPONSE, batch=16, stats=stats)) as srv:
        doc = loadgen(
            f"--protocol http --port {srv.port} --connections 2 --pipeline 16 --warmup 0.2"
            f" --duration 1 --timeout 1 --io {io}"
        )
    assert doc["summary"]["errors_total"] == 0, doc["summary"]["errors"]
    assert doc["summary"]["requests"] >= 16
    assert stats["max_waiting"] == 16  # never fewer (it would time out), never more


@pytest.mark.parametrize(
    ("response", "kind", "all_bad"),
    [
        (b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\noops", "http_status", True),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "http_parse", True),
        (b"garbage\r\n\r\n", "http_parse", True),
        # A wrong Content-Length frames the first response wrongly but plausibly; the bytes
        # after it are then not a status line.
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHello, World!", "http_parse", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nHello, World!", "http_parse", False),
    ],
    ids=["status-500", "chunked", "garbage", "body-longer", "body-shorter"],
)
@pytest.mark.parametrize("io", IO_PATHS)
def test_bad_http_responses_are_errors_never_a_hang(response, kind, all_bad, io):
    with TcpServer(http_server(response)) as srv:
        rc, doc, err, elapsed = run_loadgen(
            f"--protocol http --port {srv.port} --connections 2 --pipeline 4 --warmup 0"
            f" --duration 1 --timeout 0.5 --io {io}"
        )
    s = doc["summary"]
    assert s["errors"][kind] > 0, (s["errors"], err)
    assert s["errors_total"] == s["errors"][kind]
    if all_bad:
        assert s["requests"] == 0 and rc == 1
    assert elapsed < 1 + 0.5 + 2


@pytest.mark.parametrize("io", IO_PATHS)
def test_http_responses_split_byte_by_byte_and_server_closes(io):
    with TcpServer(http_server(OK_RESPONSE, close_every=5, byte_by_byte=True)) as srv:
        doc = loadgen(
            f"--protocol http --port {srv.port} --connections 2 --pipeline 3 --warmup 0.2"
            f" --duration 1 --io {io}"
        )
        accepted = srv.accepted
    s = doc["summary"]
    assert s["errors_total"] == 0, s["errors"]
    assert s["requests"] > 20
    assert accepted > s["requests"] / 5  # reconnected after every `Connection: close`


# --- churn and skew ----------------------------------------------------------------------------


@pytest.mark.parametrize("io", IO_PATHS)
@pytest.mark.parametrize("mode", ["closed", "open"])
def test_one_request_per_connection(mode, io):
    rate = " --rate 500" if mode == "open" else ""
    with DelayServer(delay=lambda c, n: 0.0) as srv:
        doc = loadgen(
            f"--port {srv.port} --connections 4 --requests-per-connection 1 --warmup 0.2"
            f" --duration 1 --cpus {CLIENT_CPU}{rate} --io {io}"
        )
        accepted, counts = srv.accepted, srv.counts
    s = doc["summary"]
    assert doc["config"]["requests_per_connection"] == 1
    assert s["errors_total"] == 0, s["errors"]
    assert s["requests"] > 100
    assert max(counts.values()) == 1  # one message per TCP connection
    assert accepted >= s["requests"]
    if mode == "open":  # the connect is in the corrected latency, not in the service time
        assert s["latency_us"]["p50"] > s["service_latency_us"]["p50"]


def test_open_loop_skew_sends_the_hot_share_on_the_hot_connection():
    with DelayServer(delay=lambda c, n: 0.0) as srv:
        doc = loadgen(
            f"--port {srv.port} --connections 4 --rate 1000 --arrival uniform --warmup 0"
            f" --duration 1.5 --hot-fraction 0.25 --hot-share 0.7 --cpus {CLIENT_CPU}"
        )
        counts = srv.counts
    assert doc["config"]["hot_fraction"] == 0.25 and doc["config"]["hot_share"] == 0.7
    total = sum(counts.values())
    shares = sorted(c / total for c in counts.values())
    assert shares[-1] == pytest.approx(0.7, abs=0.02)
    assert shares[0] == pytest.approx(0.1, abs=0.02)


def test_closed_loop_skew_splits_the_depth():
    # Depths: total 4 * 2 = 8; hot round(0.5 * 8 / 1) = 4, cold round(0.5 * 8 / 3) = 1. With a
    # server that answers every message 2 ms after it arrived, throughput follows depth: 4 / 7.
    with DelayServer(delay=lambda c, n: 0.002) as srv:
        doc = loadgen(
            f"--port {srv.port} --connections 4 --pipeline 2 --warmup 0 --duration 1.5"
            f" --hot-fraction 0.25 --hot-share 0.5 --cpus {CLIENT_CPU}"
        )
        counts = srv.counts
    assert doc["summary"]["errors_total"] == 0
    total = sum(counts.values())
    assert max(counts.values()) / total == pytest.approx(4 / 7, abs=0.04)


# --- honesty about itself ------------------------------------------------------------------------


def test_an_impossible_rate_is_client_bound():
    with ServerThread(echo) as srv:
        doc = loadgen(
            f"--port {srv.port} --connections 1 --rate 2000000 --warmup 0.2 --duration 1"
            f" --cpus {CLIENT_CPU}"
        )
    s = doc["summary"]
    assert s["client_bound"] is True
    (sent,) = [r for r in s["client_limits"] if r["kind"] == "sent_share"]
    assert sent["thread"] is None and (sent["limit"], sent["unit"]) == (0.99, "fraction")
    assert sent["value"] < 0.99
    assert s["sent_rate"] < 0.99 * s["scheduled_rate"]


def test_a_backlog_beyond_its_bound_is_queue_overflow():
    async def silent(reader, writer):
        while await reader.read(65536):
            pass

    with ServerThread(silent) as srv:
        doc = loadgen(
            f"--port {srv.port} --connections 1 --rate 200000 --warmup 0 --duration 1"
            f" --timeout 5 --cpus {CLIENT_CPU}",
            expect_rc=1,
        )
    s = doc["summary"]
    assert s["errors"]["queue_overflow"] > 100_000  # ~200k due, 65536 kept
    assert s["client_bound"] is True
    (overflow,) = [r for r in s["client_limits"] if r["kind"] == "queue_overflow"]
    assert (overflow["value"], overflow["limit"], overflow["unit"]) == (
        s["errors"]["queue_overflow"], 0.0, "requests"
    )  # fmt: skip


def test_open_loop_document_shape():
    with ServerThread(echo) as srv:
        doc = loadgen(
            f"--port {srv.port} --connections 2 --rate 500 --warmup 0.2 --duration 1"
            " --interval-ms 250 --seed 11"
        )
    assert doc["latency_kind"] == "open-loop-corrected"
    c = doc["config"]
    assert (c["mode"], c["rate"], c["arrival"], c["seed"], c["pipeline"]) == (
        "open", 500.0, "poisson", 11, 1
    )  # fmt: skip
    assert (c["path"], c["hot_fraction"], c["requests_per_connection"], c["hlog"]) == (
        None, None, None, None
    )  # fmt: skip
    s = doc["summary"]
    assert set(s["service_latency_us"]) == set(s["latency_us"])
    assert set(s["schedule_lag_us"]) == {"p50", "p99", "max"}
    assert s["target_rate"] == 500.0
    assert s["achieved_rate"] == pytest.approx(s["requests"] / s["window_s"])
    assert isinstance(s["client_bound"], bool) and isinstance(s["client_limits"], list)
    assert s["client_bound"] == bool(s["client_limits"])
    service = doc["service_histogram"]["buckets"]
    assert sum(b["count"] for b in service) == s["requests"]
    assert s["service_latency_us"]["p50"] <= s["latency_us"]["p50"]
    assert len(doc["series"]) == 4
    assert all("p999_us" in r for r in doc["series"])
    for t in doc["client_cpu"]["threads"]:
        assert 0 <= t["busy_fraction"] <= 1.5
        assert t["runqueue_wait_fraction"] is None or 0 <= t["runqueue_wait_fraction"] <= 1.5
