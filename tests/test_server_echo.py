"""Every echo server design against docs/server-contract.md, on loopback.

Drives the release binaries (built by `make` before pytest) with the standard library only.
Each server runs in its own process group, which the fixture kills whatever happens, and every
network step is bounded by TIMEOUT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import BAD_SERVER_FLAGS, BIN_DIR, free_port

DESIGNS = [
    "tokio-ws",
    "tokio-ws-spawn-accept",
    "tokio-tpc",
    "tokio-tpc-dispatch",
    "async-std-ws",
    "smol-ws",
    "rayon-ws",
    "epoll-tpc",
    "uring-tpc",
    "uring-tpc-single-recv",
    "uring-tpc-single-accept",
    "uring-tpc-plain-ring",
    "uring-tpc-fixed-files",
    "tokio-tpc-structured",
    "monoio-tpc-structured",
]
HOST = "127.0.0.1"
TIMEOUT = 10.0  # seconds, for start-up and for any one exchange
SHUTDOWN_LIMIT = 2.0  # seconds from SIGTERM to exit, per the contract
ALLOWED_CPUS = sorted(os.sched_getaffinity(0))


def binary(design: str) -> Path:
    path = BIN_DIR / design
    if not path.is_file():
        pytest.skip(f"{path} is not built (run `cargo build --release` or `make`)")
    return path


@dataclass
class Server:
    design: str
    proc: subprocess.Popen[str]
    port: int
    cpus: list[int]

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> dict:
        """Signals the server, checks it exits 0 in time, and returns its counters line."""
        self.proc.send_signal(sig)
        # The contract's bound (exit within 2 s of the signal) is this wait's timeout: timing
        # the wait again afterwards would time the machine (a descheduled test process), not
        # the server.
        try:
            rc = self.proc.wait(timeout=SHUTDOWN_LIMIT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.design} still running {SHUTDOWN_LIMIT} s after {sig.name}")
        out, err = self.proc.stdout.read(), self.proc.stderr.read()
        assert rc == 0, err
        lines = out.splitlines()
        assert len(lines) == 1, f"expected only the counters line after READY: {out!r}"
        return json.loads(lines[0])


def start(design: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(binary(design)), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # own process group, so teardown can kill all of it
    )


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line of stdout, or "" after `timeout`. A thread, not select(): the text pipe may hold
    the next line in its buffer already, which select() on the descriptor cannot see."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return got[0] if got else ""


def wait_ready(proc: subprocess.Popen[str]) -> None:
    line = _read_line(proc, TIMEOUT)
    # READY may follow the optional server-settings/1 line (docs/server-contract.md).
    if line.startswith('{"schema":"server-settings/1"'):
        line = _read_line(proc, TIMEOUT)
    if line != "READY\n":
        proc.kill()
        pytest.fail(f"no READY within {TIMEOUT} s: stdout {line!r}, stderr {proc.stderr.read()!r}")


def kill_group(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
    for pipe in (proc.stdout, proc.stderr):
        pipe.close()


@pytest.fixture(scope="module", params=[1, 2], ids=lambda n: f"threads{n}")
def threads(request) -> int:
    if request.param > len(ALLOWED_CPUS):
        pytest.skip(f"needs {request.param} CPUs, this process may use {ALLOWED_CPUS}")
    return request.param


@pytest.fixture(scope="module", params=DESIGNS)
def design(request) -> str:
    return request.param


@contextlib.contextmanager
def started(design: str, threads: int) -> Iterator[Server]:
    cpus = ALLOWED_CPUS[:threads]
    port = free_port()
    cpu_list = ",".join(map(str, cpus))
    proc = start(design, "--port", str(port), "--threads", str(threads), "--cpus", cpu_list)
    try:
        wait_ready(proc)
        yield Server(design, proc, port, cpus)
    finally:
        kill_group(proc)


@pytest.fixture(scope="module")
def server(design: str, threads: int) -> Iterator[Server]:
    """One server per design and worker count, shared by the tests that only exchange bytes
    with it (one start instead of one per test)."""
    with started(design, threads) as shared:
        yield shared


@pytest.fixture
def own_server(design: str, threads: int) -> Iterator[Server]:
    """A fresh server, for a test that stops it or counts everything it served."""
    with started(design, threads) as fresh:
        yield fresh


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def pattern(size: int, seed: int = 0) -> bytes:
    """Bytes that differ between connections and positions, so misrouted data is caught."""
    return bytes((seed * 7 + i * 31 + i // 251) % 256 for i in range(size))


async def connect(server: Server):
    return await asyncio.open_connection(HOST, server.port)


async def echo(server: Server, payload: bytes) -> bytes:
    """Sends payload while reading the echo (a large one cannot sit in socket buffers)."""
    reader, writer = await connect(server)

    async def send():
        writer.write(payload)
        await writer.drain()

    _, received = await asyncio.gather(send(), reader.readexactly(len(payload)))
    writer.close()
    await writer.wait_closed()
    return received


async def echo_and_half_close(server: Server, payload: bytes) -> bytes:
    """Sends payload, shuts down writing, and reads until the server closes."""
    reader, writer = await connect(server)

    async def send():
        writer.write(payload)
        await writer.drain()
        writer.write_eof()

    _, received = await asyncio.gather(send(), reader.read())
    writer.close()
    await writer.wait_closed()
    return received


@pytest.mark.parametrize("size", [1, 1024, 64 * 1024, 1024 * 1024])
def test_echo_is_exact(server, size):
    payload = pattern(size)
    assert run(echo(server, payload)) == payload


def test_many_concurrent_connections(server):
    payloads = [pattern(4096 + i, seed=i) for i in range(100)]

    async def all_at_once():
        return await asyncio.gather(*(echo(server, p) for p in payloads))

    assert run(all_at_once()) == payloads


def test_one_byte_writes_are_echoed_one_by_one(server):
    payload = pattern(200)

    async def byte_by_byte():
        reader, writer = await connect(server)  # asyncio sets TCP_NODELAY: one segment per byte
        received = bytearray()
        for b in payload:
            writer.write(bytes([b]))
            received += await reader.readexactly(1)  # answered without waiting for more
        writer.close()
        await writer.wait_closed()
        return bytes(received)

    assert run(byte_by_byte()) == payload


@pytest.mark.parametrize("size", [0, 1, 256 * 1024])
def test_half_close_gets_every_byte_then_close(server, size):
    payload = pattern(size)
    assert run(echo_and_half_close(server, payload)) == payload


def test_counters_match_the_traffic(own_server):
    payloads = [pattern(size, seed=i) for i, size in enumerate([1, 100, 5000, 70_000] * 5)]

    async def traffic():
        # Half-close and read to EOF: the server has counted everything once it closes.
        return await asyncio.gather(*(echo_and_half_close(own_server, p) for p in payloads))

    assert run(traffic()) == payloads
    counters = own_server.stop()
    assert counters["schema"] == "server-counters/1"
    assert (counters["design"], counters["protocol"]) == (own_server.design, "echo")
    workers = counters["workers"]
    assert [w["worker"] for w in workers] == list(range(len(own_server.cpus)))
    assert [w["cpu"] for w in workers] == own_server.cpus
    total = sum(map(len, payloads))
    assert sum(w["connections"] for w in workers) == len(payloads)
    assert sum(w["bytes_in"] for w in workers) == total
    assert sum(w["bytes_out"] for w in workers) == total
    assert len(payloads) <= sum(w["messages"] for w in workers) <= total


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_shutdown_with_open_connections(own_server, sig):
    async def open_and_use(n):
        conns = [await connect(own_server) for _ in range(n)]
        for reader, writer in conns:
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
        return conns

    async def scenario():
        conns = await open_and_use(10)
        # Stop while the clients are still connected; the event loop is not needed for that.
        counters = await asyncio.to_thread(own_server.stop, sig)
        for _, writer in conns:
            writer.close()
        return counters

    counters = run(scenario())
    assert sum(w["connections"] for w in counters["workers"]) == 10
    assert sum(w["bytes_out"] for w in counters["workers"]) == 40


def test_a_client_that_does_not_read_is_back_pressured(own_server):
    payload = pattern(10_000)
    with socket.create_connection((HOST, own_server.port), timeout=TIMEOUT) as stalled:
        stalled.setblocking(False)
        sent, chunk = 0, bytes(64 * 1024)
        while sent < 256 * 1024 * 1024:
            try:
                sent += stalled.send(chunk)
            except BlockingIOError:
                # Stalled once nothing drains for a while: the server stopped reading.
                if not select.select([], [stalled], [], 0.5)[1]:
                    break
        assert sent < 64 * 1024 * 1024, "the server kept reading from a client that does not read"
        assert run(echo(own_server, payload)) == payload  # the stalled connection blocks no one
        # Reset it (SO_LINGER 0) while the server is blocked writing to it.
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert run(echo(own_server, payload)) == payload
    assert sum(w["connections"] for w in own_server.stop()["workers"]) == 3


def test_workers_are_pinned(server):
    task_dir = Path(f"/proc/{server.proc.pid}/task")
    pinned = []
    for task in task_dir.iterdir():
        if (task / "comm").read_text().startswith("worker"):
            status = (task / "status").read_text()
            allowed = next(ln for ln in status.splitlines() if ln.startswith("Cpus_allowed_list:"))
            pinned.append(allowed.split(":")[1].strip())
    assert sorted(pinned) == sorted(map(str, server.cpus))


@pytest.mark.parametrize("design", DESIGNS)
@pytest.mark.parametrize("args", BAD_SERVER_FLAGS, ids=" ".join)
def test_bad_flags_exit_2_with_one_line(design, args):
    proc = subprocess.run(
        [str(binary(design)), *args], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: ")
    assert proc.stderr.count("\n") == 1


@pytest.mark.parametrize("design", DESIGNS)
def test_port_in_use_is_an_error(design):
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start(design, "--port", str(port))
        try:
            rc = proc.wait(timeout=TIMEOUT)
            out, err = proc.stdout.read(), proc.stderr.read()
        finally:
            kill_group(proc)
    assert rc == 1
    assert out == ""
    assert err.startswith("error: listen on") and err.count("\n") == 1
