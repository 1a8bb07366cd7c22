"""What many test modules do, written once: run the harness or the load generator as a bounded
subprocess, read its one-line error, find a free port, start a server process and stop it (its
whole process group) whatever happens.

Fixtures built on these (a session-built run, module-scoped servers) are in tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN_DIR = REPO / "target" / "release"
LOADGEN = BIN_DIR / "loadgen"
SETTINGS_LINE = '{"schema":"server-settings/1"'  # optional, before READY (server contract)


# Bad command lines every server of the contract refuses with one `error:` line and exit 2.
BAD_SERVER_FLAGS = [
    ["--bogus", "1"],
    ["--port"],
    ["--port", "x"],
    ["--port", "0"],
    ["--threads", "0"],
    ["--host", "nowhere"],
    ["--cpus", "0-"],
    ["--cpus", "1023"],  # valid syntax, but not a CPU this process may use
    ["--threads", "3", "--cpus", "0,0"],
    ["--protocol", "gopher"],
]


def environment(overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """This process's environment with `overrides` applied; a None value removes the name."""
    env = dict(os.environ)
    for name, value in (overrides or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def harness_argv(*args: str) -> list[str]:
    """The harness's command line as the tests start it: this interpreter, `-m harness`."""
    return [sys.executable, "-m", "harness", *args]


def run_harness(
    *args: str,
    timeout: float = 120,
    env: Mapping[str, str | None] | None = None,
    cwd: Path = REPO,
) -> subprocess.CompletedProcess[str]:
    """`python -m harness ARGS` from the checkout, its output captured, killed after
    `timeout` seconds (subprocess.TimeoutExpired); `env` as for `environment`."""
    return subprocess.run(
        harness_argv(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=environment(env),
    )


def only_run(root: Path) -> Path:
    """The one run directory a `harness run --out root` made."""
    runs = [p for p in root.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The harness refused its input: exit 2 and exactly one `harness: error:` line on stderr."""
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: "), proc.stderr
    return lines[0]


def design_entry(
    name: str, command: str, *, protocols: str = '["echo"]', **fields: str | bool
) -> str:
    """A `[[design]]` of registry.toml running a shell command (language sh, no factors);
    `fields` add keys (ready="line", counters=True, ...)."""
    lines = [
        "[[design]]",
        f'name = "{name}"',
        'family = "thread-per-core"',
        'io_model = "epoll"',
        'language = "sh"',
        f"protocols = {protocols}",
        f'command = "{command}"',
    ]
    for key, value in fields.items():
        lines.append(f"{key} = {json.dumps(value)}")  # TOML reads JSON's strings and booleans
    return "\n" + "\n".join(lines) + "\n"


def registry_with(tmp_path: Path, entry: str) -> Path:
    """The real registry plus one design."""
    registry = tmp_path / "registry.toml"
    registry.write_text((REPO / "servers" / "registry.toml").read_text() + "\n" + entry)
    return registry


def spawn(argv: Sequence[str]) -> subprocess.Popen[str]:
    """`argv` started in its own process group (so that all of it can be killed), its output
    piped as text."""
    return subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_bounded(argv: Sequence[str], limit: float) -> subprocess.CompletedProcess[str]:
    """`argv` in its own process group, output captured; after `limit` seconds the whole group
    is killed and subprocess.TimeoutExpired raised."""
    proc = spawn(argv)
    try:
        out, err = proc.communicate(timeout=limit)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def run_loadgen(
    flags: str | Sequence[str], limit: float = 20
) -> tuple[int, dict | None, str, float]:
    """The load generator with `flags` (a string or a list): (exit code, its JSON document or
    None when it printed none, stderr, seconds taken); killed after `limit` seconds."""
    args = flags.split() if isinstance(flags, str) else list(flags)
    start = time.monotonic()
    proc = run_bounded([str(LOADGEN), *args], limit)
    elapsed = time.monotonic() - start
    doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, doc, proc.stderr, elapsed


def free_port() -> int:
    """A port nothing listens on (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen, grace_s: float = 5) -> None:
    """SIGTERM to the process's group, SIGKILL after `grace_s` seconds; reaped."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(grace_s)


@contextlib.contextmanager
def server_process(
    argv: Sequence[str], ready_port: int | None = None, ready_timeout: float = 10
) -> Iterator[subprocess.Popen[str]]:
    """A server subprocess in its own process group, stopped (SIGTERM, then SIGKILL) at exit.
    Ready when it prints READY (after the optional settings line), or, with `ready_port`, when
    that port accepts connections."""
    proc = spawn(argv)
    try:
        if ready_port is None:
            assert proc.stdout is not None and proc.stderr is not None
            line = proc.stdout.readline()
            if line.startswith(SETTINGS_LINE):
                line = proc.stdout.readline()
            assert line.strip() == "READY", f"{argv[0]}: {line!r} {proc.stderr.read()}"
        else:
            wait_listening(proc, ready_port, ready_timeout)
        yield proc
    finally:
        stop_group(proc)


def wait_listening(proc: subprocess.Popen, port: int, timeout: float = 10) -> None:
    """Until 127.0.0.1:`port` accepts a connection; fails if `proc` exits first or it takes
    longer than `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"exited {proc.returncode} before listening on {port}: " + (
            proc.stderr.read() if proc.stderr else ""
        )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        assert time.monotonic() < deadline, f"nothing listened on port {port} in {timeout} s"
        time.sleep(0.05)


class ServerThread:
    """An asyncio TCP server on 127.0.0.1 (ephemeral port) running `handler` in a thread."""

    def __init__(self, handler, backlog: int = 1024):
        self.handler = handler
        self.backlog = backlog
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _serve(self, reader, writer):
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the load generator drops its connections at the end of a run
        finally:
            writer.close()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=self.backlog)
        )
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(self.loop)
        for t in tasks:
            t.cancel()
        self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(5), "test server did not start"
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        assert not self.thread.is_alive(), "test server did not stop"
