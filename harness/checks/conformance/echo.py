"""The echo checks: exact bytes back whatever the size, split or concurrency, half-close, and
back-pressure on a client that never reads."""

from __future__ import annotations

import asyncio
import select
import socket
import struct
import time
from collections.abc import Sequence

from harness.checks.conformance.client import (
    IO_TIMEOUT_S,
    CheckFailed,
    _close,
    _connect,
    _echo,
    _first_difference,
    _io,
    _payload,
)
from harness.checks.conformance.server import RunningServer

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
