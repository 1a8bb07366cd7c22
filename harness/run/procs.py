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


def exit_text(code: int | None) -> str:
    """How a process ended, in words: 'exited with code N', 'killed by signal 9 (SIGKILL)'."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            name = f" ({signal.Signals(-code).name})"
        except ValueError:
            name = ""
        return f"killed by signal {-code}{name}"
    return f"exited with code {code}"


def log_lines(path: Path, lines: int = 3) -> str:
    """The last lines of a process's log for a reason, never empty: says so when there are none."""
    text = tail(path, lines)
    if text:
        return text
    return f"{path.name} is empty" if path.is_file() else f"no {path.name} was written"


def ended(what: str, code: int | None, log: Path, when: str = "") -> str:
    """A reason: how the process ended first, then the last lines of its log."""
    return f"{what} {exit_text(code)}{when}: {log_lines(log)}"


def address_in_use(log: Path) -> bool:
    """The process's log says its port was taken (EADDRINUSE, errno 98)."""
    text = tail(log, 20).lower()
    return "address already in use" in text or "os error 98" in text or "eaddrinuse" in text


# Listeners on a port and who holds them (/proc/net/tcp{,6} and /proc/PID/fd inodes).
_TCP_LISTEN = "0A"


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[int]:
    """Socket inodes of every TCP listener on port (any address, IPv4 and IPv6)."""
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _TCP_LISTEN:
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(fields[9]))
    return inodes


def socket_inodes(pid: int, proc: Path = Path("/proc")) -> set[int]:
    """Inodes of the sockets a process holds open."""
    found: set[int] = set()
    try:
        fds = list((proc / str(pid) / "fd").iterdir())
    except OSError:
        return found
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def holders(inodes: set[int], proc: Path = Path("/proc")) -> dict[int, str]:
    """For each inode, 'pid N (comm)' of a process holding it; unknown ones are left out."""
    out: dict[int, str] = {}
    for entry in proc.iterdir():
        if len(out) == len(inodes):
            break
        if not entry.name.isdigit():
            continue
        held = socket_inodes(int(entry.name), proc) & (inodes - set(out))
        if held:
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                comm = "?"
            for inode in held:
                out[inode] = f"pid {entry.name} ({comm})"
    return out


def foreign_listeners(port: int, tree: list[int], proc: Path = Path("/proc")) -> list[str]:
    """Listeners on port held by no process of tree (the server and its descendants): who holds
    each, or its inode when this user cannot see the holder. Empty: the port is the server's."""
    listeners = listening_inodes(port, proc)
    ours: set[int] = set()
    for pid in tree:
        ours |= socket_inodes(pid, proc)
    foreign = listeners - ours
    if not foreign:
        return []
    named = holders(foreign, proc)
    unseen = "a process this user cannot see (socket inode {})"
    return sorted({named.get(i, unseen.format(i)) for i in foreign})
