"""The load generator's `--start-at` (docs/loadgen.md, "Starting together"; issue 10): it waits
for a wall-clock instant, reports its run's instants in wall-clock time, and changes nothing
without the flag."""

from __future__ import annotations

import time

import pytest
from helpers import LOADGEN, ServerThread, free_port, run_loadgen
from test_loadgen import echo

pytestmark = pytest.mark.skipif(
    not LOADGEN.exists(), reason="loadgen not built: cargo build --release -p loadgen"
)


def test_start_at_waits_for_the_instant_and_reports_the_window() -> None:
    lead_ns = 1_500_000_000
    with ServerThread(echo) as srv:
        before = time.time_ns()
        at = before + lead_ns
        rc, doc, err, _ = run_loadgen(
            f"--port {srv.port} --connections 2 --warmup 0.2 --duration 0.5 --no-hiccup "
            f"--start-at {at // 1_000_000_000}.{at % 1_000_000_000:09d}"
        )
    assert rc == 0, err
    clock = doc["clock"]
    assert clock["start_at_ns"] == at
    assert clock["start_late_ns"] == 0
    # t0 is at or after the instant asked for (same machine, same clock); how soon after is
    # the scheduler's business, so only the order and the arithmetic are asserted.
    assert clock["t0_unix_ns"] >= at
    assert clock["window_start_unix_ns"] == clock["t0_unix_ns"] + 200_000_000
    assert clock["window_end_unix_ns"] == clock["window_start_unix_ns"] + 500_000_000


def test_a_start_time_in_the_past_starts_at_once_and_says_how_late() -> None:
    at = time.time_ns() - 3_000_000_000
    _, doc, err, _ = run_loadgen(
        f"--port {free_port()} --connections 1 --warmup 0 --duration 0.3 --no-hiccup "
        f"--start-at {at / 1e9:.6f}"
    )
    assert doc is not None, err  # nothing listens: exit 1 (no request succeeded), still a doc
    assert doc["clock"]["start_late_ns"] >= 3_000_000_000 - 1_000


def test_without_the_flag_it_starts_at_once() -> None:
    _, doc, err, _ = run_loadgen(
        f"--port {free_port()} --connections 1 --warmup 0 --duration 0.2 --no-hiccup"
    )
    assert doc is not None, err
    assert doc["clock"]["start_at_ns"] is None and doc["clock"]["start_late_ns"] is None
    assert doc["clock"]["window_start_unix_ns"] == doc["clock"]["t0_unix_ns"]


@pytest.mark.parametrize("bad", ["soon", "-5", "1.", "1.0000000001"])
def test_a_bad_start_time_is_one_line_and_exit_2(bad: str) -> None:
    rc, doc, err, _ = run_loadgen(["--start-at", bad])
    assert rc == 2 and doc is None
    assert err.count("\n") == 1 and "--start-at" in err
