"""Child processes in their own process groups, so that nothing outlives a trial, whatever
happens (failure, timeout, Ctrl-C)."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO


def spawn(
    argv: list[str], *, stdout: int | IO[bytes], stderr: IO[bytes] | int, cpus: str | None = None
) -> subprocess.Popen[bytes]:
    """Start argv as the leader of a new session; with cpus, pin the whole process (taskset)
    before it starts any thread."""
    if cpus is not None:
        argv = ["taskset", "-c", cpus, *argv]
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, start_new_session=True
    )


def kill_group(proc: subprocess.Popen[bytes], grace_s: float = 0.0) -> None:
    """SIGKILL the process group (after grace_s for a voluntary exit) and reap the leader."""
    if grace_s > 0:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def read_line(stream: IO[bytes], deadline: float, proc: subprocess.Popen[bytes]) -> str | None:
    """One line from a child's stdout, or None at the deadline or when the child exits."""
    fd = stream.fileno()
    buf = bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if not sel.select(timeout=min(left, 0.1)):
                if proc.poll() is not None:
                    return None
                continue
            chunk = os.read(fd, 1)  # byte by byte: nothing after the line is consumed
            if not chunk:
                return None
            if chunk == b"\n":
                return buf.decode(errors="replace")
            buf += chunk


def wait_port(host: str, port: int, deadline: float, proc: subprocess.Popen[bytes]) -> bool:
    """For servers without a READY line: true once the port accepts a connection."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])
