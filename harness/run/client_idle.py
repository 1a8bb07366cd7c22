"""The load generator's CPUs poll when idle for the length of a trial, so that waking it costs
the server nothing (docs/fairness.md, "Waking the client").

On one machine client and server share a kernel: when a response arrives for a client thread
that sleeps on a halted CPU, the server's CPU sends that CPU an inter-processor interrupt, and in
a virtual machine that IPI is a costly exit charged to the server. Measured on this project's
2-CPU VM (epoll-tpc with `--work fixed:20`, 64 connections): the server sent 0.81 IPIs per
request to our load generator's CPU and 0.48 to wrk's, and served 12-14% fewer requests than
with the client's CPU polling. A client on another machine never costs the server that.

The per-CPU PM QoS resume-latency limit does it: `n/a` ("no latency allowed") makes cpuidle pick
its polling state on that CPU only, and a wake-up then needs no IPI. The previous value is put
back when the last trial holding the CPU ends. Where the file is missing (no cpuidle driver) or
not writable (not root), nothing is changed and the trial records why.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CPU_ROOT = Path("/sys/devices/system/cpu")
POLL = "n/a"  # the sysfs spelling of "no resume latency allowed": cpuidle polls
# Who holds which CPU, and each CPU's value from before (tmpfs: a reboot resets both)
STATE_DIR = Path("/run/harness-client-idle")
_HOLDS = itertools.count()  # one marker per hold, so that holds nest within a process too


@dataclass(frozen=True)
class ClientIdle:
    """How the client CPUs idled during a trial: `poll` (set for the trial), or `system` (left as
    the machine had it: `why` says why not)."""

    mode: str  # "poll" | "system"
    why: str = ""


def qos_file(cpu: int, root: Path = CPU_ROOT) -> Path:
    return root / f"cpu{cpu}" / "power" / "pm_qos_resume_latency_us"


def _has_poll_state(cpu: int, root: Path) -> bool:
    """cpuidle's state0 is POLL wherever a cpuidle driver runs; without one the file does
    nothing (the kernel's default idle halts)."""
    try:
        return (root / f"cpu{cpu}" / "cpuidle" / "state0" / "name").read_text().strip() == "POLL"
    except OSError:
        return False


@contextmanager
def polling_when_idle(
    cpus: Sequence[int], root: Path = CPU_ROOT, state: Path = STATE_DIR
) -> Iterator[ClientIdle]:
    """Makes `cpus` poll when idle inside the block and restores them after it, even on an
    exception or Ctrl-C. Yields what was done.

    Two runs may overlap on a CPU (or one was killed before it could restore): `state` keeps
    each CPU's value from before the first holder and one marker per holding process, under a
    lock; the last live holder to leave puts the value back."""
    release_abandoned(root, state)
    held: list[int] = []
    marker = f"held.{os.getpid()}.{next(_HOLDS)}"
    idle = ClientIdle("poll")
    try:
        for cpu in cpus:
            if not _has_poll_state(cpu, root):
                idle = ClientIdle("system", f"CPU {cpu} has no cpuidle polling state")
                break
            why = _hold(cpu, root, state, marker)
            if why:
                idle = ClientIdle("system", why)
                break
            held.append(cpu)
        if idle.mode != "poll":
            _release(held, root, state, marker)
            held.clear()
        yield idle
    finally:
        _release(held, root, state, marker)


def release_abandoned(root: Path = CPU_ROOT, state: Path = STATE_DIR) -> list[int]:
    """Puts back the value of every CPU whose holders are all gone (a run killed before it could
    restore: SIGKILL, a lost machine session); returns those CPUs."""
    try:
        if not (state / "lock").exists():
            return []
        with _locked(state):
            return _restore_abandoned(root, state)
    except OSError:
        return []  # not ours to put back (not root): a run that can write them will


def _restore_abandoned(root: Path, state: Path) -> list[int]:
    restored = []
    for saved in state.glob("cpu*.before"):
        cpu = int(saved.name[3:].split(".")[0])
        if _live_holders(state, cpu):
            continue
        with contextlib.suppress(OSError):
            qos_file(cpu, root).write_text(saved.read_text())
        saved.unlink()
        restored.append(cpu)
    return sorted(restored)


@contextmanager
def _locked(state: Path) -> Iterator[None]:
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _live_holders(state: Path, cpu: int) -> list[Path]:
    """This CPU's markers of processes still alive (a killed run's marker is removed)."""
    live = []
    for marker in state.glob(f"cpu{cpu}.held.*"):
        pid = int(marker.name.split(".")[2])  # cpuN.held.PID.K
        if pid == os.getpid() or Path(f"/proc/{pid}").exists():
            live.append(marker)
        else:
            marker.unlink(missing_ok=True)
    return live


def _hold(cpu: int, root: Path, state: Path, marker: str) -> str:
    """Takes one hold on `cpu`; returns why not ("" when held)."""
    path = qos_file(cpu, root)
    if not os.access(path, os.W_OK):
        return f"{path} is not writable (run as root)"
    try:
        with _locked(state):
            saved = state / f"cpu{cpu}.before"
            if not _live_holders(state, cpu) and not saved.exists():
                saved.write_text(path.read_text().strip())
            path.write_text(POLL)
            (state / f"cpu{cpu}.{marker}").touch()
    except PermissionError as exc:
        return f"{exc.filename or path} is not writable (run as root)"
    except OSError as exc:
        return f"{exc.filename or path}: {exc.strerror or exc}"
    return ""


def _release(cpus: list[int], root: Path, state: Path, marker: str) -> None:
    if not cpus:
        return
    with contextlib.suppress(OSError), _locked(state):
        for cpu in cpus:
            (state / f"cpu{cpu}.{marker}").unlink(missing_ok=True)
            saved = state / f"cpu{cpu}.before"
            if _live_holders(state, cpu) or not saved.exists():
                continue
            with contextlib.suppress(OSError):  # the CPU went away: nothing to put back
                qos_file(cpu, root).write_text(saved.read_text())
            saved.unlink()
