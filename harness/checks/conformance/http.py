"""The HTTP checks: the contract's response (exact or semantic), keep-alive, pipelining,
Connection: close, malformed and oversized requests, random bytes."""

from __future__ import annotations

import asyncio
import contextlib
import random

from harness.checks.conformance.client import (
    HELLO,
    MAX_HEADER_BYTES,
    CheckFailed,
    _close,
    _connect,
    _expect_eof,
    _expect_status_then_close,
    _get,
    _read_response,
    _request,
    response_problem,
)
from harness.checks.conformance.server import RunningServer


async def _expect_response(reader: asyncio.StreamReader, server: RunningServer, where: str) -> None:
    """The next response is the contract's (per the design's tolerance), or CheckFailed."""
    problem = response_problem(await _read_response(reader), server.tolerance)
    if problem:
        raise CheckFailed(f"{where}: {problem}")


async def http_response(server: RunningServer) -> str:
    """One GET: the contract's response (exact or semantic per the design's tolerance), twice on
    one keep-alive connection."""
    reader, writer = await _connect(server)
    try:
        for i in range(2):
            writer.write(_request(server.host))
            await _expect_response(reader, server, f"request {i + 1} on a keep-alive connection")
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
            await _expect_response(reader, server, f"pipelined response {i + 1} of {depth}")
        writer.write(_request(server.host))
        await _expect_response(reader, server, f"request after a pipeline of {depth}")
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
