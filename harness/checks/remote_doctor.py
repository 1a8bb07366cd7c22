"""`harness doctor --host HOST`: the platform checks of harness.checks.doctor, on another host.

The host's /proc and /sys files that the checks read are copied into a local tree of the same
layout (harness.run.remote.mirror) and the same checks run on it, so a remote host is judged
exactly as this machine is. The probes that are not file reads run there over SSH: the file
descriptor limit (`ulimit -n` of a command started over SSH, what the load generator and server
get) and `perf stat`; io_uring_setup cannot be called without a program of ours there, so it is
reported "not probed" beside the io_uring_disabled sysctl.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness.checks import doctor
from harness.checks.machine import CheckResult, CommandOutcome, Context
from harness.run.remote import Connection, RemoteError, mirror

_CPU = "/sys/devices/system/cpu"
DOCTOR_FILES = (
    "/proc/loadavg",
    "/proc/meminfo",
    "/proc/net/tcp",
    "/proc/net/tcp6",
    "/proc/sys/kernel/io_uring_disabled",
    "/proc/sys/kernel/perf_event_paranoid",
    "/proc/sys/kernel/randomize_va_space",
    "/proc/sys/net/core/somaxconn",
    "/proc/sys/net/ipv4/ip_local_port_range",
    "/sys/class/net/lo/mtu",
    f"{_CPU}/online",
    f"{_CPU}/isolated",
    f"{_CPU}/nohz_full",
    f"{_CPU}/smt/control",
    f"{_CPU}/cpufreq/boost",
    f"{_CPU}/intel_pstate/no_turbo",
    f"{_CPU}/cpu[0-9]*",
    f"{_CPU}/cpu[0-9]*/topology/*",
    f"{_CPU}/cpu[0-9]*/cpufreq/scaling_governor",
)
# Every check but "designs_built": the designs' binaries are this machine's, placed on a host
# when a run needs them.
REMOTE_CHECKS = tuple(c for c in doctor.CHECKS if c.name != "designs_built")


def _nofile(conn: Connection) -> tuple[int, int]:
    out = conn.run(["sh", "-c", "ulimit -Sn; ulimit -Hn"], timeout_s=10).stdout.split()

    def number(word: str) -> int:
        return 1 << 62 if word == "unlimited" else int(word)

    if len(out) != 2:
        raise RemoteError(f"{conn.host}: `ulimit -n` answered {out!r}")
    return number(out[0]), number(out[1])


def _perf(conn: Connection) -> CommandOutcome:
    script = "command -v perf >/dev/null 2>&1 || exit 127; perf stat -e instructions -x, true 2>&1"
    done = conn.run(["sh", "-c", script], timeout_s=20, check=False)
    if done.returncode == 127:
        return CommandOutcome(False, None, "")
    return CommandOutcome(True, done.returncode, (done.stdout + done.stderr).strip())


def run_remote_checks(
    conn: Connection, *, connections: int | None = None, needed_fds: int | None = None
) -> list[CheckResult]:
    """The platform checks of the host behind conn (never raises for what they find)."""
    with tempfile.TemporaryDirectory(prefix="host-doctor-") as tmp:
        root = mirror(conn, DOCTOR_FILES, Path(tmp))
        limits = _nofile(conn)
        perf = _perf(conn)
        ctx = Context(
            proc=root / "proc",
            sys=root / "sys",
            needed_fds=needed_fds,
            connections=connections,
            nofile_limit=lambda: limits,
            io_uring_probe=lambda: None,
            perf_probe=lambda: perf,
        )
        return doctor.run_checks(ctx, REMOTE_CHECKS)


def check_hosts(
    conns: Sequence[Connection], *, connections: int | None = None
) -> dict[str, list[CheckResult]]:
    """Each host's checks, by host."""
    fds = connections + 64 if connections is not None else None
    return {
        str(c.host): run_remote_checks(c, connections=connections, needed_fds=fds) for c in conns
    }
