"""The parent process of every Python design and its workers' end of the pipe: `run_workers`
forks one pinned worker process per `--threads`, prints READY once all of them accept, and on
SIGTERM/SIGINT gathers their counters over pipes and prints the JSON counters line.

Python needs processes rather than threads to use several cores, so a "worker" here is a forked
process whose command name is `worker<i>` (what `harness.conformance` looks for when it checks
pinning), pinned with `os.sched_setaffinity` before it creates its event loop."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from typing import NoReturn

from core.cli import Config
from core.counters import Counters
from core.exits import fatal

READY_TIMEOUT_S = 10.0  # parent: how long workers may take to listen
REPORT_TIMEOUT_S = 1.5  # parent: how long workers may take to send their counters after SIGTERM
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_PR_SET_NAME = 15
_PR_SET_PDEATHSIG = 1


def _prctl(option: int, arg: int | bytes) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, arg, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option})")


class WorkerLink:
    """A worker process's end of its pipe to the parent: `R` when it listens, `C{json}` with its
    counters after SIGTERM, `E{message}` when it cannot start."""

    def __init__(self, fd: int, worker: int, cpu: int | None) -> None:
        self.fd = fd
        self.worker = worker
        self.cpu = cpu

    def _send(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")  # < PIPE_BUF: one atomic write

    def ready(self) -> None:
        self._send("R")

    def report(self, counters: Counters) -> None:
        self._send("C" + json.dumps(counters.as_json(self.worker, self.cpu)))

    def fail(self, msg: str) -> NoReturn:
        self._send("E" + msg.replace("\n", " "))
        os._exit(1)

    def serve_until_stopped(self, loop: asyncio.AbstractEventLoop, c: Counters) -> NoReturn:
        """Says ready, runs the loop; on SIGTERM/SIGINT reports and exits at once. The handler
        runs on the worker's only thread, so nothing is accepted or served between the report
        and the exit; the kernel then closes the listener and any open connection, as when a
        Rust design's process exits."""

        def stop() -> None:
            self.report(c)
            os._exit(0)

        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        self.ready()
        loop.run_forever()
        os._exit(1)  # run_forever only returns if the loop was stopped, which nothing does


def _start_worker(worker: int, cpu: int | None, fd: int, parent: int, main: WorkerMain) -> NoReturn:
    """In the forked child: die with the parent, take the name and CPU, run the design."""
    link = WorkerLink(fd, worker, cpu)
    try:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl
            os._exit(1)
        _prctl(_PR_SET_NAME, f"worker{worker}".encode())
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        main(worker, link)
    except BaseException as exc:  # a child never unwinds into the parent's code: report, exit
        link.fail(str(exc) or type(exc).__name__)
    finally:
        os._exit(1)


WorkerMain = Callable[[int, WorkerLink], NoReturn]


class _Child:
    def __init__(self, worker: int, pid: int, fd: int) -> None:
        self.worker, self.pid, self.fd = worker, pid, fd
        self.buf = b""
        self.lines: list[str] = []
        self.eof = False

    def read(self) -> None:
        chunk = os.read(self.fd, 65536)
        if not chunk:
            self.eof = True
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        self.lines += [ln.decode(errors="replace") for ln in lines]


def _pump(children: list[_Child], deadline: float, done: Callable[[_Child], bool]) -> None:
    """Reads the children's pipes until done(child) for every child, or the deadline."""
    while True:
        waiting = [c for c in children if not done(c) and not c.eof]
        left = deadline - time.monotonic()
        if not waiting or left <= 0:
            return
        readable, _, _ = select.select([c.fd for c in waiting], [], [], left)
        for c in waiting:
            if c.fd in readable:
                c.read()


def _kill_all(children: list[_Child]) -> None:
    for c in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(c.pid, signal.SIGKILL)
    for c in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(c.pid, 0)


def run_workers(
    design: str, cfg: Config, main: WorkerMain, after_fork: Callable[[], None] | None = None
) -> NoReturn:
    """The parent process of a Python design: forks cfg.threads workers running main(i, link),
    prints READY once every one listens, waits for SIGTERM/SIGINT, prints the counters line,
    exits 0. A worker that fails to start or dies makes the server exit 1 with `error: ...`."""
    # Signals stay pending until sigwait: none is lost during start-up, and forked workers
    # inherit the mask until their event loop handles them.
    signal.pthread_sigmask(signal.SIG_BLOCK, (*STOP_SIGNALS, signal.SIGCHLD))
    parent = os.getpid()
    children: list[_Child] = []
    for worker in range(cfg.threads):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            for c in children:
                os.close(c.fd)
            _start_worker(worker, cfg.cpu(worker), w, parent, main)
        os.close(w)
        children.append(_Child(worker, pid, r))
    if after_fork is not None:
        after_fork()

    def started(c: _Child) -> bool:
        return bool(c.lines)

    _pump(children, time.monotonic() + READY_TIMEOUT_S, started)
    for c in children:
        first = c.lines[0] if c.lines else ""
        if first != "R":
            _kill_all(children)
            why = first[1:] if first.startswith("E") else "exited or hung before it listened"
            fatal(f"worker {c.worker}: {why}")
    sys.stdout.write("READY\n")
    sys.stdout.flush()

    while True:
        sig = signal.sigwait((*STOP_SIGNALS, signal.SIGCHLD))
        if sig != signal.SIGCHLD:
            break
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            dead = next((c for c in children if c.pid == pid), None)
            _kill_all(children)
            name = f"worker {dead.worker}" if dead else f"process {pid}"
            fatal(f"{name} died ({_status(status)})")

    for c in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(c.pid, signal.SIGTERM)

    def reported(c: _Child) -> bool:
        return any(ln.startswith("C") for ln in c.lines)

    _pump(children, time.monotonic() + REPORT_TIMEOUT_S, reported)
    workers = [json.loads(ln[1:]) for c in children for ln in c.lines if ln.startswith("C")]
    if len(workers) < cfg.threads:
        print(
            f"warning: only {len(workers)} of {cfg.threads} workers reported counters",
            file=sys.stderr,
        )
    line = {"schema": "server-counters/1", "design": design, "protocol": cfg.protocol}
    line["workers"] = workers
    _kill_all(children)  # they have reported (or missed the deadline): none outlives the parent
    try:
        sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        pass  # no one is left to read it
    os._exit(0)


def _status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
