"""Helpers of tests/test_faults.py: `harness run` in its own process group, watched (every
process below it, with its process group, is recorded while it runs), bounded in time, and
checks that no process group it started outlives it."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import helpers
import pandas as pd
from conftest import BIN_DIR, REPO
from helpers import environment, harness_argv, registry_with

# The fastest real servers, the shortest trials; --mode closed explicitly (the default changes).
FAST = ["--mode", "closed", "--cores", "1", "--duration", "1", "--warmup", "0", "--repeat", "1"]
TWO = ["--servers", "epoll-tpc,tokio-tpc"]


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a process, None when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[2])


def descendants(root: int) -> dict[int, int]:
    """{pid: pgid} of every live process below root."""
    parent: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := proc_stat(int(entry.name))) and st[0] != "Z":
            parent[int(entry.name)] = (st[1], st[2])
    out: dict[int, int] = {}
    todo = [root]
    while todo:
        p = todo.pop()
        for pid, (ppid, pgid) in parent.items():
            if ppid == p and pid not in out:
                out[pid] = pgid
                todo.append(pid)
    return out


class Watch:
    """Records every process below root (and its group) every 100 ms until stopped."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.before = set(descendants(root).values())  # groups already there: not ours
        self.seen: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.seen.update(descendants(self.root))
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def by_name(self, name: str) -> list[int]:
        out = []
        for pid in list(self.seen):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == name:
                    out.append(pid)
        return out

    def assert_none_left(self, grace_s: float = 3.0) -> None:
        """No process of any group seen (the harness's children lead their own groups) is
        alive: by process group (os.killpg(pgid, 0)), zombies aside."""
        groups = {g for g in self.seen.values() if g != os.getpgrp()} - self.before
        deadline = time.monotonic() + grace_s
        while True:
            alive = {g for g in groups if _group_alive(g)}
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for g in alive:  # never leave them behind, even when failing
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(g, signal.SIGKILL)
        assert not alive, f"process groups left: {sorted(alive)}"


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        st = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if st and st[2] == pgid and st[0] != "Z":
            return True
    return False


class Harness:
    """`python -m harness ARGS` in its own session, stdout read line by line."""

    def __init__(self, *args: str, user: list[str] | None = None, env: dict | None = None):
        self.proc = subprocess.Popen(
            [*(user or []), *harness_argv(*args)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=environment(env),
        )
        self.watch = Watch(self.proc.pid)
        self.out: list[str] = []
        self._sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        self._buf = b""

    def wait_line(self, pred: Callable[[str], bool], timeout: float = 60) -> str:
        """The first stdout line for which pred holds (read as it comes)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for line in self.out[seen:]:
                if pred(line):
                    return line
            seen = len(self.out)
            if self._sel.select(timeout=0.1):
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self._buf += chunk
                *lines, rest = self._buf.split(b"\n")
                self._buf = rest
                self.out += [ln.decode(errors="replace") for ln in lines]
        raise AssertionError(f"no such line in time; stdout so far: {self.out}")

    def wait_descendant(self, name: str, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pid in self.watch.by_name(name):
                if proc_stat(pid) is not None:
                    return pid
            time.sleep(0.05)
        raise AssertionError(f"no {name} process started")

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        """Exit code, stdout, stderr; the group is killed if it overruns; nothing may be left."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, err = self.proc.communicate()
        finally:
            self.watch.stop()
        self.watch.assert_none_left()
        stdout = "\n".join(self.out) + "\n" + (self._buf + out).decode(errors="replace")
        return self.proc.returncode, stdout, err.decode(errors="replace")


def run_harness(*args: str, timeout: float = 120, **kw) -> tuple[int, str, str]:
    return Harness(*args, **kw).finish(timeout)


def one_error_line(stderr: str) -> str:
    """stderr is one `harness: error:` line (warnings of libraries aside), never a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("harness: error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def trials_of(run: Path) -> pd.DataFrame:
    return pd.read_parquet(run / "trials.parquet")


def manifest_of(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def assert_reportable(run: Path, out: Path) -> None:
    """The run directory reads back: `harness report` writes its report. Called in this
    process (harness.cli.main, what `python -m harness` runs): a report starts no process, and
    a new interpreter would cost a second of imports each time."""
    from harness.cli import main

    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()) as err,
    ):
        code = main(["report", str(run), "-o", str(out)])
    assert code == 0, err.getvalue()
    assert out.is_file()


# The failing designs of test_faults: ready by a line, pinned by themselves, no counters.
design_entry = functools.partial(
    helpers.design_entry, ready="line", pins_itself=True, counters=False
)

__all__ = ["BIN_DIR", "registry_with"]
