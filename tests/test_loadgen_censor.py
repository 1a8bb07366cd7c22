"""No censored tail (docs/loadgen.md, "Lost and censored requests"; issue 14).

A server on 127.0.0.1 answers echo for 3 s and then never again, keeping its connections open.
Open loop at 500 req/s with `--timeout 1` and 6 s measured: two-thirds of what is scheduled in
the window never gets an answer. Every one of those must be in the corrected histogram, either
as a timed-out request (one `timeout` error each, not one per connection) or as censored at the
window's end, and the accounting must close exactly on the load generator's own count of what
was scheduled. The load generator is a subprocess in its own process group with a hard timeout;
the server is a thread of this process; nothing outlives the test.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from helpers import LOADGEN, ServerThread, run_loadgen

pytestmark = pytest.mark.skipif(
    not LOADGEN.exists(), reason="loadgen not built: cargo build --release -p loadgen"
)

ANSWER_FOR_S = 3.0
SIZE = 64  # loadgen's default echo message size
CONNECTIONS, PIPELINE = 4, 4
RATE, TIMEOUT_S, WARMUP_S, DURATION_S = 500, 1.0, 0.5, 6.0
IO_PATHS = ["epoll", "uring"]  # `--io`: both I/O paths keep the same model


class HangingEcho(ServerThread):
    """Echoes for ANSWER_FOR_S seconds after start, then reads and discards forever; counts
    accepted connections."""

    def __init__(self) -> None:
        super().__init__(self._handle, backlog=128)
        self.accepted = 0
        self._deadline = 0.0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        while data := await reader.read(65536):
            if time.monotonic() < self._deadline:
                writer.write(data)
                await writer.drain()

    def __enter__(self) -> HangingEcho:
        super().__enter__()
        self._deadline = time.monotonic() + ANSWER_FOR_S
        return self


@pytest.mark.parametrize("io", IO_PATHS)
def test_a_server_that_stops_answering_leaves_no_request_out(io: str) -> None:
    cpu = min(os.sched_getaffinity(0))
    with HangingEcho() as srv:
        started = time.monotonic()
        rc, doc, err, _ = run_loadgen(
            [
                *["--port", str(srv.port), "--rate", str(RATE), "--timeout", str(TIMEOUT_S)],
                *["--connections", str(CONNECTIONS), "--pipeline", str(PIPELINE)],
                *["--warmup", str(WARMUP_S), "--duration", str(DURATION_S), "--cpus", str(cpu)],
                *["--seed", "7", "--io", io],
            ],
            limit=WARMUP_S + DURATION_S + TIMEOUT_S + 10,
        )
        elapsed = time.monotonic() - started
    assert rc == 0, err  # requests succeeded in the first seconds
    assert elapsed < WARMUP_S + DURATION_S + TIMEOUT_S + 5  # the contract's bound, plus start-up
    s = doc["summary"]
    window = s["window_s"]

    # Exact accounting of what was scheduled in the window, on the JSON's own count.
    o = s["scheduled"]
    assert o["scheduled"] == round(s["scheduled_rate"] * window)
    assert o["scheduled"] == o["answered"] + o["failed"] + o["censored"]
    # Censored == scheduled and not answered (nor lost); nothing from the warm-up is left over,
    # as the server still answered then.
    assert s["censored"] == o["censored"] == o["scheduled"] - o["answered"] - o["failed"]
    # The server answered about 2.5 s of the 6 s window: most of the rest is censored or lost.
    assert o["censored"] + o["failed"] > o["scheduled"] / 3

    # Every lost request is one timeout error: one per request, not one per connection. Each
    # timeout costs the connection its PIPELINE requests and a reconnect (a new accept).
    e = s["errors"]
    assert e["timeout"] == s["failed"] == s["errors_total"] > 0
    reconnects = srv.accepted - CONNECTIONS
    assert reconnects > 0
    assert e["timeout"] > reconnects
    assert PIPELINE * (reconnects - 1) <= e["timeout"] <= PIPELINE * reconnects, (
        e["timeout"],
        srv.accepted,
    )

    # The histogram holds answered, lost and censored requests alike.
    buckets = doc["histogram"]["buckets"]
    assert sum(b["count"] for b in buckets) == s["requests"] + s["failed"] + s["censored"]
    censored_buckets = doc["censored_histogram"]["buckets"]
    assert sum(b["count"] for b in censored_buckets) == s["censored"]
    # The tail is the lost and censored requests: p99 is at least the timeout, and it is only a
    # lower bound (its upper bound does not exist), which the document says.
    assert s["latency_us"]["p99"] >= TIMEOUT_S * 1e6
    assert s["latency_upper_us"]["p99"] is None
    assert s["censored_tail"] is True
    # A timed-out request waited at least the timeout; a censored one at most the window (plus
    # the warm-up for one intended then).
    assert s["censored_latency_us"]["max"] <= (window + WARMUP_S) * 1e6
    # Service time holds only answered requests.
    service = doc["service_histogram"]["buckets"]
    assert sum(b["count"] for b in service) == s["requests"]


@pytest.mark.parametrize("io", IO_PATHS)
def test_a_healthy_open_loop_run_has_no_censored_tail(io: str) -> None:
    cpu = min(os.sched_getaffinity(0))
    with HangingEcho() as srv:
        srv._deadline = float("inf")  # always answers
        rc, doc, err, _ = run_loadgen(
            [
                *["--port", str(srv.port), "--rate", "400", "--connections", "4"],
                *["--warmup", "0.3", "--duration", "1.5", "--cpus", str(cpu), "--io", io],
            ],
            limit=15,
        )
    assert rc == 0, err
    s = doc["summary"]
    o = s["scheduled"]
    assert o["scheduled"] == o["answered"] + o["failed"] + o["censored"]
    assert s["errors_total"] == s["failed"] == 0
    buckets = doc["histogram"]["buckets"]
    assert sum(b["count"] for b in buckets) == s["requests"] + s["censored"]
    # Only what was in flight or queued at the end is censored: each had waited less than the
    # default 2 s timeout (a server answering all along keeps no request longer).
    if s["censored"]:
        assert s["censored_latency_us"]["max"] < 2e6
        assert s["latency_upper_us"]["p50"] >= s["latency_us"]["p50"]
