"""Starting and stopping one server design (docs/server-contract.md), for trials and for the
conformance checks alike: its own process group (pinned whole with taskset when the design does
not pin itself), READY on stdout (or the port accepting, for ready = "port"), SIGTERM, then
whatever it printed (the counters line) and its exit status.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.plan.designs import Design
from harness.plan.topology import format_cpu_list
from harness.run import procs

HOST = "127.0.0.1"
READY_TIMEOUT_S = 10.0
SHUTDOWN_LIMIT_S = 2.0  # SIGTERM to exit, per the contract
SETTINGS_SCHEMA = "server-settings/1"  # the optional line before READY (docs/server-contract.md)
PORT_ATTEMPTS = 3  # a port taken between picking it and the server binding it: a fresh one
IO_TIMEOUT_S = 3.0


class ServerStartError(Exception):
    """The server could not be started. `kind`: "spawn" (the exec failed), "exited" (it exited
    before READY, with `exit_code`), "timeout" (no READY in time), "ready" (its first line was
    not READY), "missing" (not built or installed). `refused`: it exited 2 at once, i.e. it
    rejects these flags (a protocol it lists in the registry but does not speak yet, say)."""

    def __init__(
        self, reason: str, kind: str, *, exit_code: int | None = None, detail: str = ""
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.exit_code = exit_code
        self.detail = detail  # "spawn": the operating system's error, without the binary

    @property
    def refused(self) -> bool:
        return self.kind == "exited" and self.exit_code == 2

    @property
    def missing(self) -> bool:
        return self.kind == "missing"


@dataclass
class Stopped:
    returncode: int | None  # None: still running SHUTDOWN_LIMIT_S after SIGTERM
    seconds: float
    stdout: str  # everything printed after READY


@dataclass
class Server:
    design: Design
    protocol: str
    host: str
    port: int
    cpus: tuple[int, ...]  # worker i -> cpus[i]
    proc: subprocess.Popen[bytes]
    log: Path  # the server's stderr
    stopped: Stopped | None = field(default=None, repr=False)
    # Its `server-settings/1` line (docs/server-contract.md), None when it printed none.
    settings: dict[str, Any] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 3) -> str:
        """The last lines of its log for a reason; never empty (says when the log is)."""
        return procs.log_lines(self.log, lines)

    def stop(self) -> Stopped:
        """SIGTERM to the server's main process; waits up to SHUTDOWN_LIMIT_S for it to exit,
        then collects what it printed."""
        if self.stopped is not None:
            return self.stopped
        start = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(timeout=SHUTDOWN_LIMIT_S)
        except subprocess.TimeoutExpired:
            code = None
        seconds = time.monotonic() - start
        out = b""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while select.select([fd], [], [], 0.05 if code is None else 0.5)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
        self.stopped = Stopped(code, seconds, out.decode(errors="replace"))
        return self.stopped

    def kill(self) -> None:
        """SIGKILL the whole process group, whatever state it is in."""
        procs.kill_group(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start(
    design: Design,
    argv: list[str],
    *,
    protocol: str,
    cpus: tuple[int, ...],
    port: int,
    log: Path,
    host: str = HOST,
    strict_ready: bool = True,
) -> Server:
    """Start argv (the design's command line) and return it once ready; on any failure its
    process group is killed and ServerStartError says why. strict_ready: the first line on
    stdout must be READY, or the settings line then READY (the contract); otherwise other lines
    before READY are skipped. The settings line, if any, is kept in `Server.settings`."""
    with open(log, "wb") as stderr:
        try:
            whole = None if design.pins_itself else format_cpu_list(cpus)
            proc = procs.spawn(argv, stdout=subprocess.PIPE, stderr=stderr, cpus=whole)
        except OSError as exc:
            raise ServerStartError(
                f"cannot start {argv[0]}: {exc}", "spawn", detail=str(exc)
            ) from None
    server = Server(design, protocol, host, port, cpus, proc, log)
    try:
        _wait_ready(server, strict_ready)
    except BaseException:
        server.kill()
        raise
    return server


@contextlib.contextmanager
def running(design: Design, argv: list[str], **options: Any) -> Iterator[Server]:
    """`start` as a context manager (the same options): the whole process group is killed on
    exit."""
    server = start(design, argv, **options)
    try:
        yield server
    finally:
        server.kill()


def _exited(server: Server, code: int) -> ServerStartError:
    """How it ended first (exit code or signal), then the last lines of its log."""
    detail = procs.log_lines(server.log)
    if code == 2:
        return ServerStartError(
            f"{server.design.name} exits 2 (bad flags) for --protocol {server.protocol}: {detail}",
            "exited",
            exit_code=code,
        )
    return ServerStartError(
        f"server {procs.exit_text(code)} before it was ready: {detail}", "exited", exit_code=code
    )


def parse_settings(line: bytes | str) -> dict[str, Any] | None:
    """The `server-settings/1` line's object (schema, design, profile, settings), or None when
    the line is not one."""
    text = line.decode(errors="replace") if isinstance(line, bytes) else line
    if SETTINGS_SCHEMA not in text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not (isinstance(value, dict) and value.get("schema") == SETTINGS_SCHEMA):
        return None
    if not isinstance(value.get("settings"), dict):
        return None
    return value


def _wait_ready(server: Server, strict: bool) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    proc = server.proc
    if server.design.ready == "port":
        while time.monotonic() < deadline:
            if (code := proc.poll()) is not None:
                raise _exited(server, code)
            try:
                with socket.create_connection((server.host, server.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise ServerStartError(
            f"port {server.port} not accepting after {READY_TIMEOUT_S:.0f} s", "timeout"
        )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    while True:
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerStartError(f"no READY line after {READY_TIMEOUT_S:.0f} s", "timeout")
            if not select.select([fd], [], [], min(left, 0.1))[0]:
                if (code := proc.poll()) is not None:
                    raise _exited(server, code)
                continue
            chunk = os.read(fd, 1)  # byte by byte: nothing after the line is consumed
            if not chunk:
                raise _exited(server, proc.wait(timeout=IO_TIMEOUT_S))
            line += chunk
        if line == b"READY\n" or (not strict and line.strip() == b"READY"):
            return
        if server.settings is None and (settings := parse_settings(line)) is not None:
            server.settings = settings
            continue
        if strict:
            raise ServerStartError(
                f"first line on stdout is {line!r}, expected b'READY\\n'", "ready"
            )
