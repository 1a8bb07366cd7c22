"""What the processes did during a trial, read from /proc (and perf when it works).

Active benchmarking: besides throughput and latency, record per-thread CPU time, voluntary and
involuntary context switches and RSS of the server (all its processes: some designs fork one
per core) and of the load generator, as deltas over the measured window.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
PERF_EVENTS = ("instructions", "cycles", "context-switches", "cache-misses")


@dataclass(frozen=True)
class ThreadSample:
    pid: int
    tid: int
    name: str
    user_s: float
    system_s: float
    last_cpu: int
    voluntary: int
    involuntary: int


@dataclass(frozen=True)
class TreeSample:
    threads: dict[int, ThreadSample]  # by tid
    rss_bytes: int


def _stat_fields(path: Path) -> tuple[str, list[str]] | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    name = text[text.find("(") + 1 : text.rfind(")")]
    return name, text[text.rfind(")") + 2 :].split()


def descendants(pid: int, proc: Path = PROC) -> list[int]:
    """pid and every process below it (process-per-core designs fork workers)."""
    children: dict[int, list[int]] = {}
    for stat in proc.glob("[0-9]*/stat"):
        parsed = _stat_fields(stat)
        if parsed:
            children.setdefault(int(parsed[1][1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _ctxt(status: Path) -> tuple[int, int]:
    vol = invol = 0
    try:
        for line in status.read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                vol = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                invol = int(line.split()[1])
    except OSError:
        pass
    return vol, invol


def sample(pids: list[int], proc: Path = PROC) -> TreeSample:
    threads: dict[int, ThreadSample] = {}
    rss = 0
    for pid in pids:
        parsed = _stat_fields(proc / str(pid) / "stat")
        if parsed:
            rss += int(parsed[1][21]) * _PAGE  # field 24: rss in pages
        for task in (proc / str(pid) / "task").glob("[0-9]*"):
            parsed = _stat_fields(task / "stat")
            if parsed is None:
                continue
            name, f = parsed
            vol, invol = _ctxt(task / "status")
            threads[int(task.name)] = ThreadSample(
                pid=pid,
                tid=int(task.name),
                name=name,
                user_s=int(f[11]) / _TICK,
                system_s=int(f[12]) / _TICK,
                last_cpu=int(f[36]),
                voluntary=vol,
                involuntary=invol,
            )
    return TreeSample(threads=threads, rss_bytes=rss)


def thread_rows(trial_id: str, role: str, before: TreeSample, after: TreeSample) -> list[dict]:
    """Per-thread deltas over the window; a thread born during the window counts from zero."""
    rows = []
    for tid, end in sorted(after.threads.items()):
        start = before.threads.get(tid)
        user = end.user_s - (start.user_s if start else 0.0)
        system = end.system_s - (start.system_s if start else 0.0)
        rows.append(
            {
                "trial_id": trial_id,
                "role": role,
                "pid": end.pid,
                "tid": tid,
                "name": end.name,
                "cpu": end.last_cpu,
                "user_s": user,
                "system_s": system,
                "cpu_s": user + system,
                "voluntary_ctxt_switches": end.voluntary - (start.voluntary if start else 0),
                "involuntary_ctxt_switches": end.involuntary - (start.involuntary if start else 0),
            }
        )
    return rows


class PerfStat:
    """`perf stat` attached to the server's processes for the window. Events the machine cannot
    count (VMs often expose no hardware counters) come back as None, never as zero."""

    def __init__(self, pids: list[int], out: Path) -> None:
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None
        perf = shutil.which("perf")
        if perf is None:
            return
        argv = [
            perf,
            "stat",
            "-x",
            ",",
            "-e",
            ",".join(PERF_EVENTS),
            "-o",
            str(out),
            "-p",
            ",".join(map(str, pids)),
        ]
        with contextlib.suppress(OSError):
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )

    def stop(self) -> dict[str, int | None]:
        counts: dict[str, int | None] = dict.fromkeys(PERF_EVENTS)
        if self.proc is None:
            return counts
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return counts
        with contextlib.suppress(OSError):
            for line in self.out.read_text().splitlines():
                fields = line.split(",")
                if len(fields) >= 3 and fields[2] in counts and fields[0].strip().isdigit():
                    counts[fields[2]] = int(fields[0])
        return counts

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def cpu_times(proc: Path = PROC) -> dict[int, tuple[float, float]]:
    """Per CPU: seconds of user+nice+system time (anyone's) and of steal time, since boot.

    irq and softirq are left out on purpose: loopback packet processing lands there, on our
    own CPUs, and is part of what the trial measures."""
    out: dict[int, tuple[float, float]] = {}
    try:
        lines = (proc / "stat").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *ticks = line.split()
            values = [int(t) for t in ticks]
            steal = values[7] if len(values) > 7 else 0
            out[int(name[3:])] = ((values[0] + values[1] + values[2]) / _TICK, steal / _TICK)
    return out


def cpu_deltas(
    before: dict[int, tuple[float, float]], after: dict[int, tuple[float, float]], cpus: set[int]
) -> dict[int, tuple[float, float]]:
    return {
        c: (after[c][0] - before[c][0], after[c][1] - before[c][1])
        for c in sorted(cpus)
        if c in before and c in after
    }
