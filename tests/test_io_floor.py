"""io-floor (docs/loadgen.md, "Cost"): the load generator's io_uring I/O with everything else
taken out, run by `scripts/bench-loadgen --floor` to show what the kernel charges any client per
request. Its contract: a count of answered requests and the window they were answered in, on
one line of JSON; a first response that is not an HTTP 200, a server that closes, or responses
that do not arrive one per receive fail the run (exit 1, one line) rather than give a count.
Bounded: one-second runs against one real server on loopback, stopped at the end.
"""

from __future__ import annotations

import json
import os

import pytest
from conftest import BIN_DIR, require_binaries
from helpers import free_port, run_bounded, server_process

IO_FLOOR = BIN_DIR / "io-floor"
CPU = max(os.sched_getaffinity(0))


@pytest.fixture
def http_port():
    require_binaries("io-floor", "epoll-tpc")
    port = free_port()
    argv = [str(BIN_DIR / "epoll-tpc"), "--protocol", "http", "--port", str(port)]
    with server_process([*argv, "--threads", "1", "--cpus", str(CPU)], ready_port=port):
        yield port


def test_it_counts_answers_in_its_window(http_port):
    argv = [str(IO_FLOOR), "--port", str(http_port), "--connections", "8", "--duration", "1"]
    r = run_bounded([*argv, "--cpu", str(CPU)], limit=20)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    doc = json.loads(r.stdout)
    assert doc["schema"] == "io-floor/1"
    s = doc["summary"]
    assert s["requests"] > 0
    assert s["window_s"] == pytest.approx(1.0, abs=0.1)
    assert s["requests_per_s"] == pytest.approx(s["requests"] / s["window_s"])
    assert s["response_bytes"] > len("HTTP/1.1 200 OK\r\n\r\n")
    assert "recv_multishot=on" in s["ring"]


def test_an_echo_server_is_not_counted(tmp_path):
    """Echoed requests are not HTTP 200 responses: the run fails saying so, with no count."""
    require_binaries("io-floor", "epoll-tpc")
    port = free_port()
    argv = [str(BIN_DIR / "epoll-tpc"), "--protocol", "echo", "--port", str(port)]
    with server_process([*argv, "--threads", "1", "--cpus", str(CPU)], ready_port=port):
        r = run_bounded([str(IO_FLOOR), "--port", str(port), "--duration", "1"], limit=20)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.strip() == "error: the first response is not an HTTP/1.1 200"


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--duration", "0"], 2, "--duration"),
        (["--connections", "0"], 2, "--connections"),
        (["--port", "1", "--duration", "1"], 1, "connect 127.0.0.1:1"),
    ],
)
def test_bad_input_is_one_line(args, code, words):
    require_binaries("io-floor")
    argv = [str(IO_FLOOR), *(["--port", "9"] if "--port" not in args else []), *args]
    r = run_bounded(argv, limit=20)
    assert r.returncode == code
    assert r.stdout == ""
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("error: ") and words in line
