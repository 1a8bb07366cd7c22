"""Talking to a server under check over loopback: bounded exchanges, echo round trips, HTTP
responses read and judged against the contract's `200 Hello, World!`."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from harness.checks.conformance.server import RunningServer, Tolerance

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
