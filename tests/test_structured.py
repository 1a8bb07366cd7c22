"""The structured designs (registry `concurrency = "structured"`: a worker's connections polled as
one group inside its one task) against the two ways a group can fail where tasks cannot:

- starvation: one stuck connection (a slowloris that never finishes its request, a client that
  never reads its replies) must not hold up the others polled in the same task;
- leaks: a finished connection's state must leave the group at once, so memory after 10,000
  connections came and went stays bounded (resident set from /proc, against what even one
  receive buffer per past connection would take).

One worker pinned to one CPU, on loopback; every exchange is bounded by TIMEOUT and every server's
process group is killed when its test ends. No wall-clock threshold: the timeouts only keep a
hang from hanging the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from helpers import free_port
from test_server_echo import (
    ALLOWED_CPUS,
    HOST,
    SHUTDOWN_LIMIT,
    TIMEOUT,
    kill_group,
    start,
    wait_ready,
)

from harness.plan.designs import load_registry

STRUCTURED = sorted(d.name for d in load_registry().values() if d.concurrency == "structured")
BUSY_CONNECTIONS = 8
BUSY_ROUNDS = 200  # echo round trips per busy connection while the stuck ones stay stuck
CHURN = 10_000  # connections opened, used once and closed, for the memory check
CHURN_AT_ONCE = 50
BUF_SIZE = 16 * 1024  # bench_core::BUF_SIZE: every connection's receive buffer
# A leak of even the receive buffer of each past connection would add CHURN x 16 KiB = 156 MiB;
# allocator slack and the group's slot tables (sized by the most connections at once) stay far
# below this.
RSS_GROWTH_LIMIT = 16 * 1024 * 1024
# One request and its answer on a connection (reader, writer, round number).
RoundTrip = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@contextlib.contextmanager
def running(design: str, protocol: str) -> Iterator[tuple[int, int]]:
    """(pid, port) of a one-worker server pinned to one CPU, killed on exit."""
    port = free_port()
    cpu = str(ALLOWED_CPUS[-1])
    proc = start(
        design, "--protocol", protocol, "--port", str(port), "--threads", "1", "--cpus", cpu
    )
    try:
        wait_ready(proc)
        yield proc.pid, port
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=SHUTDOWN_LIMIT)
    finally:
        kill_group(proc)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


async def rounds(port: int, round_trip: RoundTrip) -> int:
    """BUSY_ROUNDS round trips on one connection; the rounds done."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        for i in range(BUSY_ROUNDS):
            await round_trip(reader, writer, i)
        return BUSY_ROUNDS
    finally:
        writer.close()


async def busy(port: int, seed: int) -> int:
    """BUSY_ROUNDS echo round trips on one connection; the rounds done."""

    async def echo_round(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int):
        message = f"{seed:04d}:{i:06d}".encode()
        writer.write(message)
        assert await reader.readexactly(len(message)) == message

    return await rounds(port, echo_round)


@pytest.mark.parametrize("design", STRUCTURED)
def test_a_slowloris_and_a_non_reader_do_not_starve_busy_connections(design):
    async def scenario(port: int) -> None:
        # An HTTP request head that never ends, a byte now and then.
        slow_reader, slow = await asyncio.open_connection(HOST, port)
        slow.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        await slow.drain()
        # A client that sends far more than the socket buffers hold and never reads: the
        # server's write to it stays pending for good.
        _, stuck = await asyncio.open_connection(HOST, port)
        stuck.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 200_000)

        async def drip() -> None:
            while True:
                slow.write(b"a")
                await slow.drain()
                await asyncio.sleep(0.05)

        dripping = asyncio.create_task(drip())
        try:
            done = await asyncio.wait_for(
                asyncio.gather(*(busy_http(port, n) for n in range(BUSY_CONNECTIONS))), TIMEOUT
            )
            assert done == [BUSY_ROUNDS] * BUSY_CONNECTIONS
            # The slowloris is still waiting for its response: nothing came back, still open.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(slow_reader.read(1), 0.2)
        finally:
            dripping.cancel()
            slow.close()
            stuck.close()

    with running(design, "http") as (_, port):
        asyncio.run(scenario(port))


async def busy_http(port: int, seed: int) -> int:
    """BUSY_ROUNDS keep-alive GETs on one connection, each answered 200; the rounds done."""
    del seed

    async def get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)

    return await rounds(port, get)


@pytest.mark.parametrize("design", STRUCTURED)
def test_a_stuck_echo_connection_does_not_starve_busy_ones(design):
    async def scenario(port: int) -> None:
        # Writes without reading until the server's echo write to it is stuck.
        _, stuck = await asyncio.open_connection(HOST, port)
        stuck.write(b"x" * (8 * 1024 * 1024))
        await asyncio.sleep(0.2)
        try:
            done = await asyncio.wait_for(
                asyncio.gather(*(busy(port, n) for n in range(BUSY_CONNECTIONS))), TIMEOUT
            )
            assert done == [BUSY_ROUNDS] * BUSY_CONNECTIONS
        finally:
            stuck.close()

    with running(design, "echo") as (_, port):
        asyncio.run(scenario(port))


async def churn(port: int, count: int) -> None:
    """`count` connections, CHURN_AT_ONCE at a time, each one echo then closed."""

    async def one(i: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        message = f"{i:08d}".encode()
        writer.write(message)
        assert await reader.readexactly(len(message)) == message
        writer.close()
        await writer.wait_closed()

    for start_at in range(0, count, CHURN_AT_ONCE):
        batch = range(start_at, min(count, start_at + CHURN_AT_ONCE))
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in batch)), TIMEOUT)


@pytest.mark.parametrize("design", STRUCTURED)
def test_memory_stays_bounded_after_10000_connections_came_and_went(design):
    port_ = free_port()
    cpu = str(ALLOWED_CPUS[-1])
    proc = start(design, "--port", str(port_), "--threads", "1", "--cpus", cpu)
    try:
        wait_ready(proc)
        # Warm up first (allocator arenas, the group's tables at CHURN_AT_ONCE slots).
        asyncio.run(churn(port_, 500))
        before = rss_bytes(proc.pid)
        asyncio.run(churn(port_, CHURN))
        after = rss_bytes(proc.pid)
        assert after - before < RSS_GROWTH_LIMIT, (
            f"{design}: resident set grew {(after - before) / 2**20:.1f} MiB over {CHURN} "
            f"connections ({before} -> {after} bytes)"
        )
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=SHUTDOWN_LIMIT)
        counters = json.loads(proc.stdout.read().splitlines()[0])
        # Every connection was served and counted once, none lost in the group.
        assert sum(w["connections"] for w in counters["workers"]) == 500 + CHURN, counters
    finally:
        kill_group(proc)
