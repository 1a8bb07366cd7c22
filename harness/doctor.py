"""Platform checks before a run: is this machine fit to produce numbers people can trust?

Like pyperf's `system show`, the checks are a list of small objects, each reading one thing from
/proc or /sys (or probing one capability) and saying what it saw, whether that is a problem, and
the command that fixes it. The results go into the run's manifest (`to_dicts`) beside the
platform metadata, so a surprising result can be traced to a powersave governor or a crowded
TIME_WAIT table months later.

Every path is under `Context.proc` / `Context.sys` and every probe that is not a file read
(io_uring_setup, `perf stat`, getrlimit) is an injectable callable, so tests run the checks on
fake trees. Nothing here raises on an odd machine: a file that is absent means "not exposed"
(INFO), and any other failure of a check becomes a WARNING that carries the reason.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

from harness.topology import parse_cpu_list

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

# io_uring_setup's number: the generic syscall table gives new syscalls the same number on these.
_IO_URING_SETUP_NR = {"x86_64": 425, "aarch64": 425, "arm64": 425, "riscv64": 425, "s390x": 425}
# sizeof(struct io_uring_params), unchanged since Linux 5.1.
_IO_URING_PARAMS_SIZE = 120

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


def probe_io_uring() -> int | None:
    """Try io_uring_setup(4 entries) and close the ring: 0 when it works, else the errno.

    None when this architecture's syscall number is unknown or ctypes cannot reach libc. A real
    setup is the only reliable test: the kernel config, the io_uring_disabled sysctl, a
    container's seccomp profile and (before 5.12) RLIMIT_MEMLOCK can each refuse it.
    """
    nr = _IO_URING_SETUP_NR.get(platform.machine())
    if nr is None:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        params = ctypes.create_string_buffer(_IO_URING_PARAMS_SIZE)
        fd = libc.syscall(ctypes.c_long(nr), ctypes.c_uint(4), params)
    except (OSError, AttributeError):
        return None
    if fd < 0:
        return ctypes.get_errno() or errno.EINVAL
    os.close(fd)
    return 0


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


@dataclass(frozen=True)
class Check:
    """One platform check: a name and the function that inspects the machine."""

    name: str
    inspect: Callable[[Context], Finding]

    def run(self, ctx: Context) -> CheckResult:
        """The check's result; never raises (a failing check is a WARNING with the reason)."""
        try:
            f = self.inspect(ctx)
        except Exception as exc:  # an odd machine must not stop the other checks or the run
            return CheckResult(
                self.name,
                Status.WARNING,
                "unknown",
                f"the check could not run: {type(exc).__name__}: {exc}",
                "",
            )
        return CheckResult(self.name, f.status, f.value, f.explanation, f.fix)


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


# ---------------------------------------------------------------------------------------------
# pyperf-like checks


def check_governor(ctx: Context) -> Finding:
    by_governor: dict[str, list[int]] = {}
    for cpu, path in _cpu_dirs(ctx):
        gov = _read(path / "cpufreq" / "scaling_governor")
        if gov is not None:
            by_governor.setdefault(gov, []).append(cpu)
    if not by_governor:
        return _not_exposed("CPU frequency scaling (cpufreq)")
    value = "; ".join(f"{g} on {_ranges(c)}" for g, c in sorted(by_governor.items()))
    if set(by_governor) == {"performance"}:
        return Finding(Status.OK, value, "every CPU runs the performance governor")
    return Finding(
        Status.WARNING,
        value,
        "a non-performance governor changes the clock with load, so throughput depends on how "
        "busy each core was a moment ago",
        "sudo cpupower frequency-set -g performance  (or: python -m pyperf system tune)",
    )


def check_turbo(ctx: Context) -> Finding:
    explanation = (
        "turbo makes the clock depend on how many cores are busy and on temperature, so 1-core "
        "and 16-core trials run at different frequencies and scaling curves bend for reasons "
        "that are not the executor"
    )
    no_turbo = _read(ctx.cpu_dir / "intel_pstate" / "no_turbo")
    if no_turbo is not None:
        if no_turbo == "1":
            return Finding(Status.OK, "disabled (intel_pstate)", "turbo is off")
        return Finding(
            Status.WARNING,
            "enabled (intel_pstate)",
            explanation,
            "echo 1 | sudo tee /sys/devices/system/cpu/intel_pstate/no_turbo",
        )
    boost = _read(ctx.cpu_dir / "cpufreq" / "boost")
    if boost is not None:
        if boost == "0":
            return Finding(Status.OK, "disabled (cpufreq boost)", "boost is off")
        return Finding(
            Status.WARNING,
            "enabled (cpufreq boost)",
            explanation,
            "echo 0 | sudo tee /sys/devices/system/cpu/cpufreq/boost",
        )
    return _not_exposed("turbo/boost control")


def check_isolated(ctx: Context) -> Finding:
    text = _read(ctx.cpu_dir / "isolated")
    if text is None:
        return _not_exposed("the isolated CPU list")
    if not text:
        return Finding(
            Status.INFO,
            "none",
            "no CPU is isolated: the scheduler may run other tasks on benchmark CPUs",
            "boot with isolcpus=<cpus> (and pass those CPUs to the harness) for the quietest runs",
        )
    return Finding(
        Status.OK, _ranges(parse_cpu_list(text)), "these CPUs are kept free of other tasks"
    )


def check_nohz_full(ctx: Context) -> Finding:
    text = _read(ctx.cpu_dir / "nohz_full")
    if text is None:
        return Finding(Status.INFO, "not supported", "this kernel has no nohz_full support")
    if not text or text == "(null)":
        return Finding(
            Status.INFO,
            "off",
            "the scheduler tick interrupts every busy CPU (about 1-4 us each, 100-1000 Hz)",
            "boot with nohz_full=<isolated cpus> to remove it on isolated CPUs",
        )
    return Finding(
        Status.OK, _ranges(parse_cpu_list(text)), "no scheduler tick on these CPUs when busy"
    )


_ASLR = {"0": "disabled", "1": "conservative", "2": "full"}


def check_aslr(ctx: Context) -> Finding:
    text = _read(ctx.proc / "sys" / "kernel" / "randomize_va_space")
    if text is None:
        return _not_exposed("ASLR (randomize_va_space)")
    return Finding(
        Status.INFO,
        f"{text} ({_ASLR.get(text, 'unknown')})",
        "each repetition is a new process, so layout effects show as spread between "
        "repetitions rather than as a bias; recorded for reference",
    )


def check_smt(ctx: Context) -> Finding:
    control = _read(ctx.cpu_dir / "smt" / "control")
    explanation_on = (
        "SMT siblings share one core's execution units; the harness never splits siblings "
        "between server and client, and server_cores counts hardware threads"
    )
    if control is not None:
        if control == "on":
            return Finding(Status.INFO, "on", explanation_on, "")
        return Finding(Status.OK, control, "one hardware thread per core")
    siblings = _read(ctx.cpu_dir / "cpu0" / "topology" / "thread_siblings_list")
    if siblings is None:
        return _not_exposed("SMT state")
    if len(parse_cpu_list(siblings)) > 1:
        return Finding(Status.INFO, "on (from cpu0's siblings)", explanation_on)
    return Finding(Status.OK, "off (from cpu0's siblings)", "one hardware thread per core")


def check_load(ctx: Context) -> Finding:
    text = _read(ctx.proc / "loadavg")
    if text is None:
        return _not_exposed("the load average")
    load1 = float(text.split()[0])
    cpus = _cpu_count(ctx)
    limit = max(LOAD_WARN_MIN, LOAD_WARN_FRACTION * cpus)
    value = f"{load1:.2f} on {cpus} CPUs"
    if load1 > limit:
        return Finding(
            Status.WARNING,
            value,
            f"1-minute load is above {limit:.1f}: other tasks compete for the benchmark's CPUs "
            "(or a previous run ended less than a minute ago)",
            "stop other workloads (top -o %CPU), or wait a minute after a previous run",
        )
    return Finding(Status.OK, value, f"1-minute load is at most {limit:.1f}")


def check_memory(ctx: Context) -> Finding:
    text = _read(ctx.proc / "meminfo")
    if text is None:
        return _not_exposed("/proc/meminfo")
    fields = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[key] = int(parts[0]) * 1024  # the kernel reports kB
    if "MemAvailable" not in fields:
        return Finding(Status.INFO, "unknown", "MemAvailable is not reported by this kernel")
    avail = fields["MemAvailable"]
    value = f"{avail / 2**30:.1f} GiB available"
    if "MemTotal" in fields:
        value += f" of {fields['MemTotal'] / 2**30:.1f} GiB"
    if avail < MEM_AVAILABLE_WARN_BYTES:
        return Finding(
            Status.WARNING,
            value,
            "below 1 GiB available, reclaim or swap can stall the server or the load generator",
            "close memory-hungry programs before the run",
        )
    return Finding(Status.OK, value, "enough memory available")


# ---------------------------------------------------------------------------------------------
# What the harness itself needs


def check_io_uring(ctx: Context) -> Finding:
    disabled = _read(ctx.proc / "sys" / "kernel" / "io_uring_disabled")
    sysctl_note = f" (io_uring_disabled={disabled})" if disabled is not None else ""
    err = ctx.io_uring_probe()
    if err is None:
        if disabled == "2":
            return Finding(
                Status.WARNING,
                f"disabled{sysctl_note}",
                "io_uring is disabled for everyone: uring designs will be refused",
                "sudo sysctl kernel.io_uring_disabled=0",
            )
        return Finding(
            Status.INFO,
            f"not probed on {platform.machine()}{sysctl_note}",
            "cannot call io_uring_setup on this architecture; uring designs may fail",
        )
    if err == 0:
        return Finding(Status.OK, f"available{sysctl_note}", "io_uring_setup works for this user")
    name = errno.errorcode.get(err, str(err))
    if err == errno.ENOSYS:
        why, fix = "this kernel has no io_uring", "use a kernel >= 5.10 built with CONFIG_IO_URING"
    elif err == errno.EPERM and disabled in ("1", "2"):
        why, fix = (
            "the io_uring_disabled sysctl forbids it",
            "sudo sysctl kernel.io_uring_disabled=0",
        )
    elif err == errno.EPERM:
        why = "refused (a container's seccomp profile or an LSM)"
        fix = "allow io_uring_setup/enter/register in the container's seccomp profile"
    elif err == errno.ENOMEM:
        why, fix = "no locked memory for the ring (kernels < 5.12)", "ulimit -l unlimited"
    else:
        why, fix = os.strerror(err), ""
    return Finding(
        Status.WARNING,
        f"{name}{sysctl_note}",
        f"io_uring_setup failed: {why}; uring designs will be refused",
        fix,
    )


def check_perf(ctx: Context) -> Finding:
    out = ctx.perf_probe()
    if not out.found:
        return Finding(
            Status.WARNING,
            "perf not installed",
            "no hardware counters (instructions, cache misses) to explain results",
            "sudo apt-get install linux-perf  (Ubuntu: linux-tools-$(uname -r))",
        )
    last = out.output.splitlines()[-1] if out.output else ""
    if out.returncode is None:
        return Finding(Status.WARNING, "perf did not finish", f"perf stat: {last}")
    if out.returncode != 0:
        paranoid = _read(ctx.proc / "sys" / "kernel" / "perf_event_paranoid")
        return Finding(
            Status.WARNING,
            f"perf stat failed (exit {out.returncode}; perf_event_paranoid={paranoid})",
            f"perf stat: {last[:120]}",
            "sudo sysctl kernel.perf_event_paranoid=1",
        )
    for line in out.output.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("instructions"):
            count = fields[0]
            if count.isdigit():
                return Finding(Status.OK, "instructions counted", "hardware counters usable")
            return Finding(
                Status.WARNING,
                f"instructions: {count}",
                "the CPU's counters are not exposed (typical of VMs): no instruction counts",
                "on a VM, expose the PMU (e.g. KVM -cpu host); otherwise nothing to do",
            )
    return Finding(Status.WARNING, "unrecognised output", f"perf stat printed: {last[:120]}")


def check_designs(ctx: Context) -> Finding:
    if ctx.designs is None:
        return Finding(Status.INFO, "not checked", "no design list was given to the doctor")
    designs = list(ctx.designs)
    missing = [(name, why) for name, why in designs if why is not None]
    if not missing:
        return Finding(Status.OK, f"{len(designs)} built", "every design can run")
    names = ", ".join(name for name, _ in missing)
    reasons = "; ".join(f"{name}: {why}" for name, why in missing)
    status = Status.ERROR if len(missing) == len(designs) else Status.WARNING
    return Finding(
        status,
        f"{len(missing)} of {len(designs)} missing: {names}",
        reasons,
        "make build",
    )


def check_loopback_mtu(ctx: Context) -> Finding:
    text = _read(ctx.sys / "class" / "net" / "lo" / "mtu")
    if text is None:
        return _not_exposed("the loopback interface")
    mtu = int(text)
    if mtu == LOOPBACK_MTU_DEFAULT:
        return Finding(Status.OK, str(mtu), "Linux's default loopback MTU")
    return Finding(
        Status.WARNING,
        str(mtu),
        f"not the default {LOOPBACK_MTU_DEFAULT}: large messages are segmented differently "
        "than on other machines, so results do not compare",
        f"sudo ip link set lo mtu {LOOPBACK_MTU_DEFAULT}",
    )


def check_fd_limit(ctx: Context) -> Finding:
    soft, hard = ctx.nofile_limit()
    inf = resource.RLIM_INFINITY

    def show(n: int) -> str:
        return "unlimited" if n == inf else str(n)

    value = f"{show(soft)} (hard {show(hard)})"
    target = max(FD_LIMIT_WARN, ctx.needed_fds or 0)
    fix = f"ulimit -n {target}"
    if hard != inf and hard < target:
        fix += f"  (needs the hard limit raised: nofile {target} in /etc/security/limits.conf)"
    if soft != inf and ctx.needed_fds is not None and soft < ctx.needed_fds:
        return Finding(
            Status.ERROR,
            value,
            f"the planned connections need {ctx.needed_fds} descriptors per process",
            fix,
        )
    if soft != inf and soft < FD_LIMIT_WARN:
        return Finding(
            Status.WARNING,
            value,
            f"below {FD_LIMIT_WARN}: trials with more than ~{soft} connections will fail "
            "with EMFILE",
            fix,
        )
    return Finding(Status.OK, value, "enough file descriptors")


def check_port_range(ctx: Context) -> Finding:
    text = _read(ctx.proc / "sys" / "net" / "ipv4" / "ip_local_port_range")
    if text is None:
        return _not_exposed("the ephemeral port range")
    low, high = (int(x) for x in text.split()[:2])
    size = high - low + 1
    value = f"{low}-{high} ({size} ports)"
    fix = "sudo sysctl net.ipv4.ip_local_port_range='1024 65535'"
    if ctx.connections is not None and size < ctx.connections:
        return Finding(
            Status.ERROR,
            value,
            f"{ctx.connections} connections to one server port need as many ephemeral ports",
            fix,
        )
    if size < PORT_RANGE_WARN:
        return Finding(
            Status.WARNING,
            value,
            f"fewer than {PORT_RANGE_WARN} ephemeral ports: large connection counts will fail "
            "with EADDRNOTAVAIL",
            fix,
        )
    return Finding(Status.OK, value, "enough ephemeral ports")


def check_time_wait(ctx: Context) -> Finding:
    count = 0
    seen = False
    for name in ("tcp", "tcp6"):
        path = ctx.proc / "net" / name
        if not path.exists():
            continue
        seen = True
        with path.open() as f:
            next(f, None)  # header
            for line in f:
                fields = line.split()
                if len(fields) > 3 and fields[3] == _TCP_STATE_TIME_WAIT:
                    count += 1
    if not seen:
        return _not_exposed("/proc/net/tcp")
    if count > TIME_WAIT_WARN:
        return Finding(
            Status.WARNING,
            str(count),
            f"more than {TIME_WAIT_WARN} sockets in TIME_WAIT from earlier runs: they hold "
            "kernel memory and ports while the new run sets up connections",
            "wait 60 s for them to expire",
        )
    return Finding(Status.OK, str(count), "few sockets in TIME_WAIT")


def check_somaxconn(ctx: Context) -> Finding:
    text = _read(ctx.proc / "sys" / "net" / "core" / "somaxconn")
    if text is None:
        return _not_exposed("net.core.somaxconn")
    value = int(text)
    if value < SERVER_BACKLOG:
        return Finding(
            Status.WARNING,
            str(value),
            f"the servers ask for a backlog of {SERVER_BACKLOG} but the kernel caps it at "
            f"{value}: a burst of connects at trial start can overflow it (SYN retries add 1 s)",
            f"sudo sysctl net.core.somaxconn={SERVER_BACKLOG * 4}",
        )
    return Finding(Status.OK, str(value), f"at least the servers' backlog of {SERVER_BACKLOG}")


CHECKS: tuple[Check, ...] = (
    Check("cpu_governor", check_governor),
    Check("turbo", check_turbo),
    Check("isolated_cpus", check_isolated),
    Check("nohz_full", check_nohz_full),
    Check("aslr", check_aslr),
    Check("smt", check_smt),
    Check("load_average", check_load),
    Check("memory", check_memory),
    Check("io_uring", check_io_uring),
    Check("perf_counters", check_perf),
    Check("designs_built", check_designs),
    Check("loopback_mtu", check_loopback_mtu),
    Check("fd_limit", check_fd_limit),
    Check("ephemeral_ports", check_port_range),
    Check("time_wait", check_time_wait),
    Check("somaxconn", check_somaxconn),
)


# ---------------------------------------------------------------------------------------------
# Running and presenting


def run_checks(ctx: Context | None = None, checks: Sequence[Check] = CHECKS) -> list[CheckResult]:
    """One result per check, in order; never raises."""
    ctx = ctx if ctx is not None else Context()
    return [check.run(ctx) for check in checks]


def has_errors(results: Sequence[CheckResult]) -> bool:
    """Whether any check says the run cannot work as planned."""
    return any(r.status is Status.ERROR for r in results)


def to_dicts(results: Sequence[CheckResult]) -> list[dict[str, str]]:
    """Plain JSON-ready dicts for the manifest."""
    return [{k: str(v) for k, v in asdict(r).items()} for r in results]


_VALUE_WIDTH = 44


def format_table(results: Sequence[CheckResult]) -> str:
    """A plain-text table (status, check, value, fix), then the why of every warning/error."""
    rows = [("STATUS", "CHECK", "VALUE", "FIX")]
    for r in results:
        value = r.value if len(r.value) <= _VALUE_WIDTH else r.value[: _VALUE_WIDTH - 3] + "..."
        rows.append((r.status.value, r.name, value, r.fix))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    ]
    problems = [r for r in results if r.status in (Status.WARNING, Status.ERROR)]
    if problems:
        lines.append("")
        lines.extend(f"{r.status.value}: {r.name}: {r.explanation}" for r in problems)
    return "\n".join(line.rstrip() for line in lines)
