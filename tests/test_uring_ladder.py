"""The io_uring ladder (uring-tpc and its one-feature variants, docs/designs.md): each design
runs with the kernel features it claims, read from what the server reports at start (its stderr
line) and, for registered files, from the kernel's own view of the ring (/proc/PID/fdinfo), not
from its source; and each serves HTTP.

Every server runs in its own process group, killed whatever happens; every step is bounded.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from helpers import free_port

from harness.plan.designs import DEFAULT_BIN_DIR, load_registry

BIN_DIR = Path(os.environ.get("BENCH_BIN_DIR", DEFAULT_BIN_DIR))
HOST = "127.0.0.1"
TIMEOUT = 10.0  # seconds, for start-up, any one exchange and shutdown
FLOOR = {
    "recv_multishot": "on",
    "accept_multishot": "on",
    "ring_flags": "on",
    "registered_files": "off",
}
# Each rung: the one feature it changes from uring-tpc's, and its value there.
LADDER = {
    "uring-tpc": {},
    "uring-tpc-single-recv": {"recv_multishot": "off"},
    "uring-tpc-single-accept": {"accept_multishot": "off"},
    "uring-tpc-plain-ring": {"ring_flags": "off"},
    "uring-tpc-fixed-files": {"registered_files": "on"},
}
FEATURES_LINE = re.compile(r"^(?P<design>\S+): io_uring features: (?P<features>.*)$", re.M)
# The size of the sparse file table the loop registers (uring_loop::FIXED_FILES).
FIXED_FILES = 4096


def ring_fdinfo(pid: int) -> str:
    """/proc/PID/fdinfo of the process's one io_uring (its worker's ring)."""
    fd_dir = Path(f"/proc/{pid}/fd")
    rings = [fd.name for fd in fd_dir.iterdir() if "io_uring" in os.readlink(fd)]
    assert len(rings) == 1, f"expected one ring with --threads 1, found {rings}"
    return Path(f"/proc/{pid}/fdinfo/{rings[0]}").read_text()


def http_get(port: int) -> bytes:
    with socket.create_connection((HOST, port), timeout=TIMEOUT) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while not reply.endswith(b"Hello, World!"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


def test_the_ladder_is_in_the_registry_with_uring_tpc_s_factors():
    registry = load_registry()
    floor = registry["uring-tpc"].factors()
    for name in LADDER:
        rung = registry[name].factors()
        differing = {f for f in floor if rung[f] != floor[f]}
        # single-recv gives up the multishot data path: one factor, io, apart (a controlled
        # pair); the other rungs differ in a runtime setting that is no factor yet.
        want = {"io"} if name == "uring-tpc-single-recv" else set()
        assert differing == want, (name, rung)
        assert "io_uring" in registry[name].requires


@pytest.mark.parametrize("design", list(LADDER))
def test_each_rung_reports_the_features_it_claims_and_serves(design):
    path = BIN_DIR / design
    if not path.is_file():
        pytest.skip(f"{path} is not built (run `cargo build --release` or `make`)")
    port = free_port()
    cpu = str(sorted(os.sched_getaffinity(0))[0])
    argv = [str(path), "--protocol", "http", "--port", str(port), "--threads", "1"]
    proc = subprocess.Popen(
        [*argv, "--cpus", cpu],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        readable, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
        ready = proc.stdout.readline() if readable else ""
        if ready.startswith('{"schema":"server-settings/1"'):  # reported before READY
            ready = proc.stdout.readline()
        if ready != "READY\n":
            proc.kill()
            stderr = proc.stderr.read()
            if "io_uring unavailable" in stderr:
                pytest.skip(f"io_uring is not available here: {stderr.strip()}")
            pytest.fail(f"no READY within {TIMEOUT} s: {ready!r}, stderr {stderr!r}")
        assert http_get(port).startswith(b"HTTP/1.1 200 OK\r\n")
        # Read while the connection's socket may still be in the table: the table's size is
        # what registering it made, whatever the connections.
        fdinfo = ring_fdinfo(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 0
        stderr = proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=TIMEOUT)
        proc.stdout.close()
        proc.stderr.close()

    lines = FEATURES_LINE.findall(stderr)
    assert len(lines) == 1, f"expected one features line on stderr: {stderr!r}"
    reported_design, features = lines[0]
    assert reported_design == design
    reported = dict(pair.split("=", 1) for pair in features.split())
    expected = FLOOR | LADDER[design]
    if reported != expected and "io_uring loop:" in stderr:
        pytest.skip(f"this kernel refused a feature: {stderr.strip()}")
    assert reported == expected
    # The kernel's own view: a registered file table only where the design says so.
    user_files = re.search(r"^UserFiles:\s*(\d+)$", fdinfo, re.M)
    assert user_files is not None, fdinfo
    assert int(user_files.group(1)) == (FIXED_FILES if expected["registered_files"] == "on" else 0)
