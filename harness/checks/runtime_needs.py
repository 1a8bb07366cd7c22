"""What each design's runtime needs from this machine, and whether it has it.

A registry entry's `requires` names what the design cannot start without: "io_uring" (the
io_uring_setup syscall allowed, and a kernel with io_uring's socket operations) and "memlock"
(glommio refuses to start an executor below 512 KiB of RLIMIT_MEMLOCK). Like pyperf's
`_system.py`, each need is a small check object that reads one thing (one syscall, one limit, the
kernel release) and says what it saw, whether that is a problem, and the fix. `why_not_runnable`
turns a design's checks into the one line that `harness list` shows ("not runnable here: ..."),
`harness doctor` explains and `harness run` refuses with, so a design that cannot start here is
never started only to crash or hang.

Every probe is an injectable callable, so tests can show each failure's text on a machine that has
everything; the defaults probe this machine for real (this process's limits and seccomp filter
are the ones a server started by the harness inherits).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import re
import resource
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

# io_uring_setup's number: the generic syscall table gives it the same number on these.
_IO_URING_SETUP_NR = {"x86_64": 425, "aarch64": 425, "arm64": 425, "riscv64": 425, "s390x": 425}
# sizeof(struct io_uring_params), unchanged since Linux 5.1.
_IO_URING_PARAMS_SIZE = 120
# The smallest ring the kernel accepts: the probe must cost nothing and hold nothing.
_PROBE_ENTRIES = 1

# glommio's own start-up check (and its README): 512 KiB of locked memory per executor's rings.
GLOMMIO_MEMLOCK_BYTES = 512 * 1024

# io_uring's socket operations (IORING_OP_ACCEPT, _SEND, _RECV) came in Linux 5.6; before that
# no network design on io_uring can work.
IO_URING_SOCKETS_KERNEL = (5, 6)
# Runtimes that say they need more: glommio's README says 5.8 (its discovery probes);
# tokio-uring's says 5.4 does not work and 5.11 does.
RUNTIME_KERNEL: dict[str, tuple[int, int]] = {"glommio": (5, 8), "tokio-uring": (5, 11)}

IO_URING_DISABLED = Path("/proc/sys/kernel/io_uring_disabled")


class NeedStatus(StrEnum):
    """OK: the need is met. PROBLEM: the design cannot start here. UNKNOWN: could not tell
    (then the design is not refused; it says so itself if it fails)."""

    OK = "ok"
    PROBLEM = "problem"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class NeedResult:
    """What one check saw (`seen`), whether that is a `problem` (its one-line text), and the fix."""

    need: str  # "io_uring" | "memlock" | "kernel"
    status: NeedStatus
    seen: str
    problem: str = ""
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not NeedStatus.PROBLEM


class NeedCheck(Protocol):
    need: str

    def check(self) -> NeedResult: ...


def probe_io_uring_setup() -> int | None:
    """io_uring_setup(1 entry), closed at once: 0 when it works, else the errno; None when this
    architecture's syscall number is unknown or libc cannot be reached.

    Only a real setup tells: the kernel's config, the io_uring_disabled sysctl, a container's
    seccomp profile, an LSM and (before 5.12) RLIMIT_MEMLOCK can each refuse it.
    """
    nr = _IO_URING_SETUP_NR.get(platform.machine())
    if nr is None:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        params = ctypes.create_string_buffer(_IO_URING_PARAMS_SIZE)
        fd = libc.syscall(ctypes.c_long(nr), ctypes.c_uint(_PROBE_ENTRIES), params)
    except (OSError, AttributeError):
        return None
    if fd < 0:
        return ctypes.get_errno() or errno.EINVAL
    os.close(fd)
    return 0


def _memlock_soft_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]


def _read_sysctl(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def parse_kernel_release(release: str) -> tuple[int, int] | None:
    """(major, minor) of a release string like "6.18.44-fc-v1045"; None if it is not one."""
    found = re.match(r"(\d+)\.(\d+)", release)
    return (int(found.group(1)), int(found.group(2))) if found else None


@dataclass(frozen=True)
class IoUringSetup:
    """Can this process create an io_uring? (A server started by the harness inherits its
    limits, namespaces and seccomp filter, so the answer is the server's.)"""

    probe: Callable[[], int | None] = probe_io_uring_setup
    sysctl: Path = IO_URING_DISABLED
    need: str = "io_uring"

    def check(self) -> NeedResult:
        disabled = _read_sysctl(self.sysctl)
        note = f" (kernel.io_uring_disabled={disabled})" if disabled is not None else ""
        err = self.probe()
        if err is None:
            return NeedResult(
                self.need,
                NeedStatus.UNKNOWN,
                f"not probed on {platform.machine()}{note}",
                "",
                "",
            )
        if err == 0:
            return NeedResult(self.need, NeedStatus.OK, f"io_uring_setup works{note}")
        name = errno.errorcode.get(err, str(err))
        if err == errno.ENOSYS:
            problem = "this kernel has no io_uring (io_uring_setup: ENOSYS)"
            fix = "boot a kernel >= 5.6 built with CONFIG_IO_URING=y"
        elif err == errno.EPERM and disabled in ("1", "2"):
            problem = f"io_uring_setup refused: EPERM, the sysctl forbids it{note}"
            fix = "sudo sysctl kernel.io_uring_disabled=0"
        elif err == errno.EPERM:
            problem = "io_uring_setup refused: EPERM (a seccomp profile or an LSM forbids it)"
            fix = (
                "allow io_uring_setup, io_uring_enter and io_uring_register in the container's "
                "seccomp profile (e.g. docker run --security-opt seccomp=unconfined)"
            )
        elif err == errno.ENOMEM:
            problem = "io_uring_setup failed: ENOMEM (no locked memory for the ring, kernel < 5.12)"
            fix = "raise the locked-memory limit: ulimit -l unlimited (or memlock in limits.conf)"
        else:
            problem = f"io_uring_setup failed: {name} ({os.strerror(err)})"
            fix = ""
        return NeedResult(self.need, NeedStatus.PROBLEM, f"{name}{note}", problem, fix)


@dataclass(frozen=True)
class MemlockLimit:
    """Is RLIMIT_MEMLOCK (soft, this process's, which servers inherit) at least `minimum`?"""

    minimum: int = GLOMMIO_MEMLOCK_BYTES
    soft_limit: Callable[[], int] = _memlock_soft_limit
    need: str = "memlock"

    def check(self) -> NeedResult:
        limit = self.soft_limit()
        if limit == resource.RLIM_INFINITY:
            return NeedResult(self.need, NeedStatus.OK, "RLIMIT_MEMLOCK unlimited")
        seen = f"RLIMIT_MEMLOCK {limit // 1024} KiB"
        if limit >= self.minimum:
            return NeedResult(self.need, NeedStatus.OK, seen)
        kib = -(-self.minimum // 1024)
        return NeedResult(
            self.need,
            NeedStatus.PROBLEM,
            seen,
            f"RLIMIT_MEMLOCK is {limit // 1024} KiB, below the {kib} KiB glommio needs",
            f"ulimit -l {kib} (or '* soft memlock {kib}' in /etc/security/limits.conf, then log "
            "in again; in a container: --ulimit memlock=-1)",
        )


@dataclass(frozen=True)
class KernelVersion:
    """Is the running kernel at least `minimum` (for `feature`)?"""

    minimum: tuple[int, int] = IO_URING_SOCKETS_KERNEL
    feature: str = "io_uring's socket operations"
    release: Callable[[], str] = platform.release
    need: str = "kernel"

    def check(self) -> NeedResult:
        release = self.release()
        version = parse_kernel_release(release)
        want = f"{self.minimum[0]}.{self.minimum[1]}"
        if version is None:
            return NeedResult(self.need, NeedStatus.UNKNOWN, f"kernel {release!r} (not parsed)")
        seen = f"kernel {release} (>= {want} for {self.feature})"
        if version >= self.minimum:
            return NeedResult(self.need, NeedStatus.OK, seen)
        return NeedResult(
            self.need,
            NeedStatus.PROBLEM,
            seen,
            f"kernel {release} is older than {want}, the minimum for {self.feature}",
            f"boot a kernel >= {want}",
        )


@dataclass(frozen=True)
class Probes:
    """The machine probes every check uses; replace one to test a failure's text."""

    io_uring: Callable[[], int | None] = probe_io_uring_setup
    memlock: Callable[[], int] = _memlock_soft_limit
    release: Callable[[], str] = platform.release
    io_uring_sysctl: Path = IO_URING_DISABLED


def checks_for(
    requires: Iterable[str], runtime: str | None, probes: Probes | None = None
) -> list[NeedCheck]:
    """The checks behind a design's `requires`, in the order a reader should fix them."""
    p = probes or Probes()
    checks: list[NeedCheck] = []
    wanted = set(requires)
    if "io_uring" in wanted:
        minimum = max(IO_URING_SOCKETS_KERNEL, RUNTIME_KERNEL.get(runtime or "", (0, 0)))
        feature = "io_uring's socket operations (accept, recv, send)"
        if runtime in RUNTIME_KERNEL:
            feature = f"{runtime} (its README's minimum)"
        checks.append(KernelVersion(minimum, feature, p.release))
        checks.append(IoUringSetup(p.io_uring, p.io_uring_sysctl))
    if "memlock" in wanted:
        checks.append(MemlockLimit(GLOMMIO_MEMLOCK_BYTES, p.memlock))
    return checks


class _DesignLike(Protocol):
    name: str
    runtime: str | None
    requires: tuple[str, ...]


def design_needs(design: _DesignLike, probes: Probes | None = None) -> list[NeedResult]:
    """Every check of one design, run on this machine."""
    return [c.check() for c in checks_for(design.requires, design.runtime, probes)]


def why_not_runnable(design: _DesignLike, probes: Probes | None = None) -> str | None:
    """One line saying why `design` cannot start on this machine (its first unmet need, with the
    fix), or None when nothing it requires is missing. Shown after "not runnable here: "."""
    for result in design_needs(design, probes):
        if result.status is NeedStatus.PROBLEM:
            fix = f"; fix: {result.fix}" if result.fix else ""
            return f"{result.problem}{fix}"
    return None


@dataclass(frozen=True)
class MachineNeed:
    """One check for `harness doctor`, with the designs that need it."""

    result: NeedResult
    designs: tuple[str, ...] = field(default_factory=tuple)


def machine_needs(
    designs: Sequence[_DesignLike], probes: Probes | None = None
) -> list[MachineNeed]:
    """Each distinct check the given designs require, run once, with who needs it: what
    `harness doctor` prints (a design-free machine needs nothing beyond epoll, so [] then)."""
    by_check: dict[NeedCheck, list[str]] = {}
    for d in designs:
        for c in checks_for(d.requires, d.runtime, probes):
            by_check.setdefault(c, []).append(d.name)
    return [MachineNeed(c.check(), tuple(names)) for c, names in by_check.items()]
