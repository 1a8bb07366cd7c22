"""What the platform checks read and probe: the result types, the machine's limits worth a
warning, and the probes that are not file reads (io_uring_setup, `perf stat`, getrlimit), each
injectable through `Context` so that tests run the checks on fake /proc and /sys trees."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

from harness.checks.runtime_needs import probe_io_uring_setup
from harness.plan.topology import parse_cpu_list

# Load above this fraction of the CPUs (and above 1 runnable task) means something else is
# running: with every CPU of a benchmark pinned, one busy stranger is enough to land on a server
# or client CPU. 10% leaves room for daemons' blips; right after a previous run the 1-minute
# average is still high, so the explanation says to wait.
LOAD_WARN_FRACTION = 0.10
LOAD_WARN_MIN = 1.0

# Below 1 GiB available, page reclaim (and swap) can stall a server holding thousands of
# connections' buffers, or the load generator's histograms.
MEM_AVAILABLE_WARN_BYTES = 1 << 30

# Every connection is a file descriptor on both sides; 65,536 covers the largest connection
# counts that published comparisons use (TechEmpower goes to 16,384) with room for epoll/uring
# descriptors, listeners and logs.
FD_LIMIT_WARN = 65_536

# Each client connection to the one server port takes one ephemeral port. Fewer than 16,384
# ports cannot hold a 16k-connection trial; Linux's default range (32768-60999) has 28,232.
PORT_RANGE_WARN = 16_384

# TIME_WAIT sockets from earlier trials hold kernel memory and (off loopback) ephemeral ports for
# 60 s; above 10,000 a new run's connection setup competes with them.
TIME_WAIT_WARN = 10_000

# The listen backlog every server asks for (servers/core/src/net.rs BACKLOG); the kernel
# silently caps it at net.core.somaxconn.
SERVER_BACKLOG = 1024

# Linux's loopback MTU. A different one changes how large messages are segmented, so results
# would not compare with other machines'.
LOOPBACK_MTU_DEFAULT = 65_536

# One io_uring probe for the doctor and for the designs' needs (runtime_needs), not two.
probe_io_uring = probe_io_uring_setup

_PERF_TIMEOUT_S = 10.0
_TCP_STATE_TIME_WAIT = "06"


class Status(StrEnum):
    """OK: fine. WARNING: results may be distorted. ERROR: the run cannot work as planned.
    INFO: a fact worth recording, or something this machine does not expose."""

    OK = "ok"
    WARNING = "warning"
    ERROR = "error"
    INFO = "info"


@dataclass(frozen=True)
class CheckResult:
    """What one check saw: `value` as read, a one-line `explanation`, and the `fix` (a command)."""

    name: str
    status: Status
    value: str
    explanation: str
    fix: str = ""


class Finding(NamedTuple):
    """A check function's answer; `Check.run` adds the name."""

    status: Status
    value: str
    explanation: str
    fix: str = ""


@dataclass(frozen=True)
class CommandOutcome:
    """How an external command went: not found, timed out (returncode None), or finished."""

    found: bool
    returncode: int | None
    output: str


def _nofile_limit() -> tuple[int, int]:
    """(soft, hard) RLIMIT_NOFILE of this process, which the server and load generator inherit."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def run_perf_stat() -> CommandOutcome:
    """`perf stat -e instructions -x, true`: can this user count hardware events?"""
    exe = shutil.which("perf")
    if exe is None:
        return CommandOutcome(False, None, "")
    try:
        out = subprocess.run(
            [exe, "stat", "-e", "instructions", "-x,", "true"],
            capture_output=True,
            text=True,
            timeout=_PERF_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return CommandOutcome(True, None, f"timed out after {_PERF_TIMEOUT_S:.0f} s")
    except OSError as exc:
        return CommandOutcome(True, None, str(exc))
    return CommandOutcome(True, out.returncode, (out.stderr + out.stdout).strip())


@dataclass(frozen=True)
class Context:
    """Where the checks look and what the run plans.

    `designs`: (name, why it cannot run or None) for every design the run wants, e.g.
    `[(d.name, d.missing(bin_dir)) for d in designs]`; None skips the check (INFO).
    `needed_fds`: descriptors one process needs for the planned connections (an ERROR below it).
    `connections`: the most connections of any planned trial (ephemeral ports needed).
    """

    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    designs: Sequence[tuple[str, str | None]] | None = None
    needed_fds: int | None = None
    connections: int | None = None
    nofile_limit: Callable[[], tuple[int, int]] = _nofile_limit
    io_uring_probe: Callable[[], int | None] = probe_io_uring
    perf_probe: Callable[[], CommandOutcome] = run_perf_stat

    @property
    def cpu_dir(self) -> Path:
        return self.sys / "devices" / "system" / "cpu"


# ---------------------------------------------------------------------------------------------
# Helpers


def _read(path: Path) -> str | None:
    """Stripped content of a small kernel file; None when it does not exist (not exposed).
    Other errors (permission, I/O) propagate to Check.run, which reports them."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def _ranges(cpus: Sequence[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5" (the kernel's list format, compact for a table)."""
    out: list[str] = []
    ordered = sorted(set(cpus))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def _cpu_dirs(ctx: Context) -> list[tuple[int, Path]]:
    """(cpu number, its sysfs directory), in CPU order."""
    if not ctx.cpu_dir.is_dir():
        return []
    out = []
    for p in ctx.cpu_dir.iterdir():
        if p.name.startswith("cpu") and p.name[3:].isdigit():
            out.append((int(p.name[3:]), p))
    return sorted(out)


def _cpu_count(ctx: Context) -> int:
    online = _read(ctx.cpu_dir / "online")
    if online:
        return len(parse_cpu_list(online))
    return os.cpu_count() or 1


def _not_exposed(what: str) -> Finding:
    return Finding(Status.INFO, "not exposed", f"{what} is not exposed here (e.g. a VM)")
