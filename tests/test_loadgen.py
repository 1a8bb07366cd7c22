"""End-to-end tests of the load generator binary (docs/loadgen.md) against small asyncio servers.

Each server runs on 127.0.0.1 in a thread of this process; every loadgen run is a subprocess with
a hard timeout, so no test can hang and nothing outlives its test. Skipped when the binary is not
built (`cargo build --release -p loadgen`).
"""

import itertools
import json
import math
import os
import subprocess
from fractions import Fraction

import pytest
from helpers import LOADGEN, ServerThread, free_port, run_loadgen

pytestmark = [
    pytest.mark.skipif(
        not LOADGEN.exists(), reason="loadgen not built: cargo build --release -p loadgen"
    ),
    pytest.mark.usefixtures("no_leftover_threads"),
]

DOC_KEYS = [
    *["schema", "config", "latency_kind", "summary", "histogram", "service_histogram"],
    *["series", "client_cpu"],
    *["censored_histogram", "hiccup"],  # added by issue 14 (no censored tail, hiccup meter)
    "clock",  # added by issue 10 (several hosts: --start-at, the window in wall-clock time)
]
SUMMARY_KEYS = [
    *["requests", "errors_total", "errors", "bytes_sent", "bytes_received"],
    *["window_s", "throughput_rps", "clamped", "latency_us", "service_latency_us"],
    *["target_rate", "scheduled_rate", "achieved_rate", "sent_rate", "schedule_lag_us"],
    *["client_bound", "client_limits"],  # records since loadgen/2 (docs/loadgen.md)
    # Added by issue 14 (docs/loadgen.md, "Lost and censored requests").
    *["failed", "censored", "censored_latency_us", "latency_upper_us", "censored_tail"],
    "scheduled",
]
ERROR_KINDS = ["connect", "reset", "eof", "mismatch", "timeout"]
ERROR_KINDS += ["http_status", "http_parse", "queue_overflow"]
NO_ERRORS = dict.fromkeys(ERROR_KINDS, 0)
SUMMARY_PERCENTILES = {"p50": "50", "p90": "90", "p99": "99", "p999": "99.9", "p9999": "99.99"}
# The I/O paths (`--io`, docs/loadgen.md "I/O paths"): the behaviour tests run on both.
IO_PATHS = ["epoll", "uring"]


# --- servers ---------------------------------------------------------------------------------


async def echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


async def echo_corrupting_byte_100(reader, writer):
    """Echoes, but flips byte 100 (0-based) of every connection's stream."""
    seen = 0
    while data := await reader.read(65536):
        if seen <= 100 < seen + len(data):
            data = bytearray(data)
            data[100 - seen] ^= 0xFF
        seen += len(data)
        writer.write(bytes(data))
        await writer.drain()


async def silent(reader, writer):
    """Reads and never answers."""
    while await reader.read(65536):
        pass


async def close_after_first_message(reader, writer):
    """Reads one 64-byte message, then closes without answering."""
    await reader.readexactly(64)


# --- the histogram definition, independently ---------------------------------------------------


def bucket_of(v):
    """[lower, upper) of the bucket holding v ns (docs/loadgen.md)."""
    if v < 2048:
        return v, v + 1
    shift = v.bit_length() - 1 - 10
    sub = v >> shift
    return sub << shift, (sub + 1) << shift


def percentile_us(buckets, p):
    """Highest value of the bucket holding the nearest-rank p-th percentile, in us."""
    n = sum(b["count"] for b in buckets)
    rank = max(1, math.ceil(Fraction(p) / 100 * n))
    seen = 0
    for b in buckets:
        seen += b["count"]
        if seen >= rank:
            return (b["upper_ns"] - 1) / 1000
    raise AssertionError("rank beyond the histogram")


# --- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("io", IO_PATHS)
def test_echo_run_is_complete_and_consistent(io):
    cpu = min(os.sched_getaffinity(0))
    with ServerThread(echo) as srv:
        rc, doc, err, _ = run_loadgen(
            f"--port {srv.port} --size 100 --connections 4 --threads 2 --cpus {cpu},{cpu}"
            f" --warmup 0.3 --duration 2 --interval-ms 500 --timeout 1 --io {io}"
        )
    assert rc == 0, err
    assert list(doc) == DOC_KEYS
    assert doc["schema"] == "loadgen/2"
    assert doc["latency_kind"] == "closed-loop"
    assert doc["config"] == dict(
        host="127.0.0.1", port=srv.port, protocol="echo", mode="closed", size=100, path=None,
        connections=4, pipeline=1, rate=None, arrival=None, seed=None, hot_fraction=None,
        hot_share=None, requests_per_connection=None, threads=2, cpus=[cpu, cpu], warmup_s=0.3,
        duration_s=2.0, timeout_s=1.0, interval_ms=500, hlog=None, io=io,
    )  # fmt: skip

    s = doc["summary"]
    assert list(s) == SUMMARY_KEYS
    n = s["requests"]
    assert n > 0
    assert s["errors"] == NO_ERRORS
    assert s["errors_total"] == 0
    assert s["bytes_sent"] == s["bytes_received"] == 100 * n
    assert s["window_s"] == 2.0
    assert s["throughput_rps"] == pytest.approx(n / 2.0)
    assert s["clamped"] == 0
    # Closed loop: no open-loop figures; rates are counted all the same.
    assert s["service_latency_us"] is s["target_rate"] is s["scheduled_rate"] is None
    assert s["schedule_lag_us"] is None and doc["service_histogram"] is None
    assert s["achieved_rate"] == s["throughput_rps"]
    assert s["sent_rate"] == pytest.approx(s["achieved_rate"], rel=0.01)
    assert s["client_bound"] == bool(s["client_limits"])
    for record in s["client_limits"]:  # each limit crossed is a record, never a sentence
        assert set(record) == {"kind", "thread", "value", "limit", "unit"}

    h = doc["histogram"]
    assert (h["unit"], h["sub_buckets"]) == ("ns", 2048)
    buckets = h["buckets"]
    assert sum(b["count"] for b in buckets) == n
    assert all(b["count"] > 0 for b in buckets)
    assert all(a["upper_ns"] <= b["lower_ns"] for a, b in itertools.pairwise(buckets))
    for b in buckets:
        assert bucket_of(b["lower_ns"]) == (b["lower_ns"], b["upper_ns"])

    lat = s["latency_us"]
    for key, p in SUMMARY_PERCENTILES.items():
        assert lat[key] == percentile_us(buckets, p), key
    assert lat["min"] <= lat["mean"] <= lat["max"]
    assert buckets[0]["lower_ns"] <= round(lat["min"] * 1000) < buckets[0]["upper_ns"]
    assert buckets[-1]["lower_ns"] <= round(lat["max"] * 1000) < buckets[-1]["upper_ns"]
    assert lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["p9999"]

    series = doc["series"]
    assert len(series) == 4  # duration / interval
    assert [r["interval"] for r in series] == [0, 1, 2, 3]
    assert [r["start_s"] for r in series] == [0.0, 0.5, 1.0, 1.5]
    assert sum(r["requests"] for r in series) == n
    assert all(r["errors"] == 0 for r in series)
    for r in series:
        assert (r["p50_us"] is None) == (r["requests"] == 0)
        if r["requests"]:
            assert r["p50_us"] <= r["p99_us"] <= r["p999_us"]

    cpu_doc = doc["client_cpu"]
    assert [t["thread"] for t in cpu_doc["threads"]] == [0, 1]
    assert [t["cpu"] for t in cpu_doc["threads"]] == [cpu, cpu]
    assert cpu_doc["total_s"] == pytest.approx(cpu_doc["user_s"] + cpu_doc["system_s"])
    assert 0 < cpu_doc["total_s"] < 2 * 2.0 + 0.5
    for t in cpu_doc["threads"]:
        assert t["busy_fraction"] == pytest.approx((t["user_s"] + t["system_s"]) / 2.0, rel=0.05)


def test_out_file_gets_the_document(tmp_path):
    out = tmp_path / "result.json"
    with ServerThread(echo) as srv:
        rc, stdout_doc, err, _ = run_loadgen(
            f"--port {srv.port} --connections 2 --warmup 0 --duration 0.5 --interval-ms 250"
            f" --out {out}"
        )
    assert rc == 0, err
    assert stdout_doc is None
    doc = json.loads(out.read_text())
    assert doc["summary"]["requests"] > 0
    assert len(doc["series"]) == 2


@pytest.mark.parametrize("io", IO_PATHS)
def test_nothing_listening_counts_connect_errors_and_exits_1(io):
    rc, doc, _, elapsed = run_loadgen(
        f"--port {free_port()} --connections 3 --warmup 0 --duration 1 --timeout 0.5 --io {io}"
    )
    assert rc == 1
    s = doc["summary"]
    assert s["requests"] == 0
    assert s["errors"]["connect"] > 0
    assert s["errors_total"] == s["errors"]["connect"]
    assert all(v is None for v in s["latency_us"].values())
    assert doc["histogram"]["buckets"] == []
    assert doc["series"][0]["p50_us"] is None
    assert elapsed < 1 + 0.5 + 2  # warmup + duration + timeout + slack


@pytest.mark.parametrize("io", IO_PATHS)
def test_corrupted_byte_is_a_mismatch(io):
    with ServerThread(echo_corrupting_byte_100) as srv:
        rc, doc, err, _ = run_loadgen(
            f"--port {srv.port} --connections 2 --warmup 0 --duration 1 --io {io}"
        )
    s = doc["summary"]
    assert s["errors"]["mismatch"] > 0, err
    # Each connection gets one message (bytes 0..63) right before the corrupted one.
    assert s["requests"] > 0
    assert rc == 0


@pytest.mark.parametrize("io", IO_PATHS)
def test_silent_server_times_out_in_bounded_time(io):
    with ServerThread(silent) as srv:
        rc, doc, _, elapsed = run_loadgen(
            f"--port {srv.port} --connections 2 --warmup 0 --duration 1 --timeout 0.3 --io {io}"
        )
    assert rc == 1
    assert doc["summary"]["errors"]["timeout"] > 0
    assert doc["summary"]["requests"] == 0
    assert elapsed < 1 + 0.3 + 2


@pytest.mark.parametrize("io", IO_PATHS)
def test_server_closing_mid_request_is_eof(io):
    with ServerThread(close_after_first_message) as srv:
        rc, doc, _, _ = run_loadgen(
            f"--port {srv.port} --connections 2 --warmup 0 --duration 0.5 --io {io}"
        )
    assert rc == 1
    assert doc["summary"]["errors"]["eof"] > 0


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["--size", "0"],
        ["--size", "16777217"],
        ["--connections", "1", "--threads", "2"],
        ["--duration", "abc"],
        ["--duration", "0"],
        ["--warmup", "-1"],
        ["--port", "0"],
        ["--protocol", "gopher"],
        ["--cpus", "1-0"],
        ["--interval-ms"],
        ["--interval-ms", "50"],
        ["--pipeline", "0"],
        ["--rate", "0"],
        ["--arrival", "uniform"],
        ["--protocol", "http", "--path", "no-slash"],
        ["--hot-fraction", "0.5"],
        ["--connections", "4", "--hot-fraction", "0.1", "--hot-share", "0.5"],
        ["--requests-per-connection", "0"],
        ["--io", "kqueue"],
        ["--hlog", "/nonexistent/dir/run.hlog"],
        ["stray"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(args):
    rc, doc, err, _ = run_loadgen(args, limit=10)
    assert rc == 2
    assert doc is None
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err


def test_help_exits_0():
    proc = subprocess.run([str(LOADGEN), "--help"], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: loadgen")
