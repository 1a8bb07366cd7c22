"""The hiccup meter (docs/loadgen.md, "Hiccup meter"; issue 14): the standalone `hiccup` binary
and the `hiccup` section of the load generator's document.

The contract: each sample sleeps 1 ms and records (elapsed - 1 ms). A deliberate stall of the
meter's own thread is a further sleep of S ms inside one sample, so that sample's overshoot is
at least S ms minus nothing (both sleeps last at least what was asked): the bound below is
49 ms for S = 50, which the contract guarantees on any machine. Sample counts are bounded only
by the contract (no sample is shorter than 1 ms, so at most duration / 1 ms of them). Every
process is started in its own process group with a hard timeout and killed on the way out.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import time

import pytest
from helpers import BIN_DIR, LOADGEN, run_bounded

HICCUP = BIN_DIR / "hiccup"

pytestmark = pytest.mark.skipif(
    not HICCUP.exists(), reason="hiccup not built: cargo build --release -p loadgen"
)

SUMMARY_KEYS = ["cpu", "count", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "histogram"]


def cpu() -> int:
    return max(os.sched_getaffinity(0))


def check_summary(entry: dict, duration_s: float) -> None:
    assert list(entry) == SUMMARY_KEYS
    n = entry["count"]
    # No sample lasts less than its 1 ms sleep: at most duration / 1 ms of them (+1 for the
    # last one, which may end after the duration).
    assert 0 < n <= duration_s * 1000 + 1
    h = entry["histogram"]
    assert (h["unit"], h["sub_buckets"]) == ("ns", 2048)
    assert sum(b["count"] for b in h["buckets"]) == n
    assert all(a["upper_ns"] <= b["lower_ns"] for a, b in itertools.pairwise(h["buckets"]))
    assert 0 <= entry["p50_us"] <= entry["p90_us"] <= entry["p99_us"] <= entry["p999_us"]
    assert entry["p999_us"] <= (h["buckets"][-1]["upper_ns"] - 1) / 1000
    assert h["buckets"][-1]["lower_ns"] <= entry["max_us"] * 1000 < h["buckets"][-1]["upper_ns"]


def test_a_deliberate_50ms_stall_is_seen(tmp_path):
    out = tmp_path / "hiccup.json"
    argv = [str(HICCUP), "--cpus", str(cpu()), "--duration", "2", "--json", str(out)]
    r = run_bounded([*argv, "--stall-ms", "50", "--stall-at", "1.0"], limit=20)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert json.loads(out.read_text()) == doc
    assert doc["schema"] == "hiccup/1"
    assert (doc["interrupted"], doc["stall_ms"], doc["stall_at_s"]) == (False, 50.0, 1.0)
    assert doc["interval_us"] == 1000
    [entry] = doc["per_cpu"]
    assert entry["cpu"] == cpu()
    check_summary(entry, 2.0)
    assert entry["max_us"] >= 49_000


def test_without_a_stall_the_document_is_well_formed():
    r = run_bounded([str(HICCUP), "--cpus", str(cpu()), "--duration", "1"], limit=20)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["stall_ms"] is None and doc["interrupted"] is False
    assert doc["measured_s"] == pytest.approx(1.0, abs=0.01)
    [entry] = doc["per_cpu"]
    check_summary(entry, 1.0)
    # Generous: even a busy shared machine completes a tenth of the 1000 possible samples.
    assert entry["count"] >= 100


def test_sigterm_ends_it_cleanly_with_what_it_measured():
    proc = subprocess.Popen(
        [str(HICCUP), "--cpus", str(cpu()), "--duration", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert doc["interrupted"] is True
    assert 0 < doc["measured_s"] < 30
    check_summary(doc["per_cpu"][0], doc["measured_s"])


@pytest.mark.parametrize(
    "args",
    [[], ["--cpus", "x"], ["--cpus", "0", "--duration", "0"], ["--cpus", "100000"]],
    ids=["no-cpus", "bad-cpus", "zero-duration", "cpu-out-of-range"],
)
def test_bad_arguments_exit_2_with_one_line(args):
    r = run_bounded([str(HICCUP), *args], limit=10)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr


@pytest.mark.skipif(not LOADGEN.exists(), reason="loadgen not built")
def test_the_load_generator_meters_its_cpus_unless_told_not_to():
    # Nothing needs to answer: the meter runs whatever the load does.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = cpu()
    base = [str(LOADGEN), "--port", str(port), "--connections", "2", "--threads", "2"]
    base += ["--cpus", f"{c},{c}", "--warmup", "0.2", "--duration", "1", "--timeout", "0.5"]
    r = run_bounded(base, limit=20)
    doc = json.loads(r.stdout)
    hiccup = doc["hiccup"]
    assert hiccup["interval_us"] == 1000
    [entry] = hiccup["per_cpu"]  # one meter per distinct client CPU
    assert entry["cpu"] == c
    check_summary(entry, 1.0)
    r = run_bounded([*base, "--no-hiccup"], limit=20)
    assert json.loads(r.stdout)["hiccup"] is None
