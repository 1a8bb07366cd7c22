"""Other hosts over SSH (asyncssh): parse a host, run commands there, end what was started.

Every remote command runs as the leader of its own session (setsid) under a small POSIX-sh
"leash": the leash waits for the command and, when the SSH channel's stdin reaches end of file
(the harness closed it, died, or lost the connection), SIGKILLs the command's process group. So
a remote process ends on every outcome even when no kill can be sent; while the connection is
up, `RemoteProcess.kill` also SIGKILLs the group over a second channel. Everything started goes
into a registry that `close_all()` ends (registered with atexit, so Ctrl-C ends it too).

asyncssh is asynchronous and the harness is not: one daemon thread runs the event loop and the
synchronous methods here wait on it with timeouts. The local host (`local`) is not handled
here: the harness runs local processes itself (harness.procs).
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import queue
import re
import shlex
import threading
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    # asyncssh 2.24 names the DSA and finite-field DH types that cryptography 50 and 51
    # deprecate (asyncssh issue 826, open): a note for its maintainers that no user of the
    # harness can act on, printed at import. Only this import is silenced.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    import asyncssh

from harness.errors import HarnessError
from harness.run.hosts import Host, SshOptions, parse_host

# How long a command's first line (its process group id) may take to come back.
START_TIMEOUT_S = 15.0
# After SIGKILL, how long to wait for the channel to report the exit.
KILL_WAIT_S = 5.0

T = TypeVar("T")


class RemoteError(HarnessError):
    """A host failed, hung or could not be reached; the message starts with the host."""


# ---------------------------------------------------------------------------------------------
# The event loop thread


class _Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ssh", daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float | None) -> T:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout_s)
        except TimeoutError:
            fut.cancel()
            raise


_loop_lock = threading.Lock()
_loop_instance: _Loop | None = None


def _loop() -> _Loop:
    global _loop_instance
    with _loop_lock:
        if _loop_instance is None:
            _loop_instance = _Loop()
        return _loop_instance


# ---------------------------------------------------------------------------------------------
# Commands and processes

# $1.. is the command. The leash keeps the channel's stdin on fd 3 for a watcher that SIGKILLs
# the command's group at end of file; the command itself gets /dev/null as stdin. Its first
# stdout line is its process group id (the session leader's pid, printed before exec).
_LEASH = (
    # fd 3: the channel's stdin, for the watcher; fd 4: the channel's stderr, for the command
    # (the leash's own stderr goes to /dev/null, so the shell's "Killed" notices stay out).
    "exec 3<&0 4>&2 2>/dev/null; "
    'setsid sh -c \'printf "pgid %s\\n" "$$"; exec "$@"\' sh "$@" '
    "</dev/null 2>&4 3<&- 4>&- & child=$!; "
    '( read -r _ <&3; kill -KILL -"$child" ) 4>&- & watcher=$!; '
    "exec 3<&- 4>&-; "
    'wait "$child"; status=$?; '
    'kill "$watcher"; exit "$status"'
)


def leash_command(argv: Sequence[str]) -> str:
    """The remote command line that runs argv under the leash (for the login shell to parse)."""
    return shlex.join(["sh", "-c", _LEASH, "sh", *argv])


@dataclass(frozen=True)
class CommandResult:
    """A finished remote command. `returncode` is the leash's exit status, 128+N when the
    command died of signal N."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class RemoteProcess:
    """One command running on a host in its own process group. Methods are synchronous."""

    def __init__(
        self, conn: Connection, argv: Sequence[str], stdout: Path | None, stderr: Path | None
    ) -> None:
        self.conn = conn
        self.argv = tuple(argv)
        self.stdout_path = stdout
        self.stderr_path = stderr
        self.pgid: int | None = None
        self.returncode: int | None = None
        self.error: str | None = None  # why the command ended without an exit status
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout_bytes = bytearray()  # kept only when there is no stdout file
        self.stderr_bytes = bytearray()
        self._proc: asyncssh.SSHClientProcess[bytes] | None = None
        self._done: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"RemoteProcess({self.conn.host}, {shlex.join(self.argv)!r}, pgid={self.pgid})"

    # -- on the loop ---------------------------------------------------------------------------
    async def _start(self) -> None:
        assert self.conn.ssh is not None
        self._proc = await self.conn.ssh.create_process(
            leash_command(self.argv), encoding=None, stderr=asyncssh.PIPE
        )
        first = await asyncio.wait_for(self._proc.stdout.readline(), START_TIMEOUT_S)
        m = re.fullmatch(rb"pgid (\d+)\n", first)
        if m is None:
            self._proc.close()
            err = (await self._proc.stderr.read(4096)).decode(errors="replace").strip()
            raise RemoteError(
                f"{self.conn.host}: `{shlex.join(self.argv)}` did not start"
                f" ({err or 'no process group id came back'})"
            )
        self.pgid = int(m.group(1))
        self._done = asyncio.ensure_future(self._follow())

    async def _follow(self) -> None:
        assert self._proc is not None
        proc = self._proc

        async def pump(
            reader: asyncssh.SSHReader[bytes], path: Path | None, keep: bytearray, lines: bool
        ) -> None:
            partial = b""
            with open(path, "wb") if path else contextlib.nullcontext() as f:
                while chunk := await reader.read(65536):
                    if f is not None:
                        f.write(chunk)
                        f.flush()
                    else:
                        keep += chunk
                    if lines:
                        *done, partial = (partial + chunk).split(b"\n")
                        for line in done:
                            self.lines.put(line.decode(errors="replace"))

        try:
            await asyncio.gather(
                pump(proc.stdout, self.stdout_path, self.stdout_bytes, True),
                pump(proc.stderr, self.stderr_path, self.stderr_bytes, False),
            )
            await proc.wait_closed()
        except (OSError, asyncssh.Error) as exc:
            self.error = str(exc) or type(exc).__name__
        finally:
            self.lines.put(None)
        if proc.returncode is not None:
            self.returncode = proc.returncode
        elif self.error is None:
            lost = self.conn.lost
            self.error = f"connection lost ({lost})" if lost else "no exit status came back"

    # -- synchronous API -----------------------------------------------------------------------
    def poll(self) -> int | None:
        """The exit status once the command ended; raises RemoteError if it ended without one
        (the host died or the connection dropped)."""
        if self._done is None or not self._done.done():
            return None
        if self.returncode is None:
            raise RemoteError(f"{self.conn.host}: `{shlex.join(self.argv)}` failed: {self.error}")
        return self.returncode

    def wait(self, timeout_s: float) -> int:
        """Wait for the exit status; RemoteError on timeout (the group is then killed)."""
        assert self._done is not None
        done = self._done

        async def waiter() -> None:
            await asyncio.shield(done)

        try:
            _loop().call(waiter(), timeout_s)
        except TimeoutError:
            self.kill()
            raise RemoteError(
                f"{self.conn.host}: `{shlex.join(self.argv)}` still running after "
                f"{timeout_s:g} s; killed"
            ) from None
        code = self.poll()
        assert code is not None
        return code

    def read_line(self, timeout_s: float) -> str | None:
        """The next stdout line, or None at the timeout or at end of output."""
        try:
            return self.lines.get(timeout=max(0.0, timeout_s))
        except queue.Empty:
            return None

    def send_signal(self, signal_name: str, *, group: bool = False) -> None:
        """`kill -SIGNAL` the leader (or the whole group) on the host, e.g. TERM to stop."""
        if self.pgid is None or self.pgid <= 1 or not re.fullmatch(r"[A-Z]+", signal_name):
            raise ValueError(f"bad signal {signal_name!r} or process not started")
        # Always the shell's builtin kill with a validated number: procps' /usr/bin/kill reads
        # "-KILL -PGID" differently, and a misread negative target can mean every process.
        script = f'kill -{signal_name} {"-" if group else ""}"$1"'
        self.conn.run(["sh", "-c", script, "sh", str(self.pgid)], timeout_s=10, check=False)

    def kill(self) -> None:
        """SIGKILL the process group and reap the channel; never raises."""
        if self._done is None or self._done.done():
            return
        with contextlib.suppress(RemoteError, OSError):
            self.send_signal("KILL", group=True)
        proc, done = self._proc, self._done

        async def release() -> None:
            # End of file on stdin: the leash kills the group even if the kill above failed.
            if proc is not None:
                with contextlib.suppress(OSError, asyncssh.Error):
                    proc.stdin.write_eof()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(done), KILL_WAIT_S)
            if not done.done() and proc is not None:
                proc.close()

        with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
            _loop().call(release(), KILL_WAIT_S + 2)

    @property
    def running(self) -> bool:
        return self._done is not None and not self._done.done()


# ---------------------------------------------------------------------------------------------
# Connections


class _Client(asyncssh.SSHClient):
    def __init__(self, owner: Connection) -> None:
        self.owner = owner

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.lost = str(exc) if exc else "closed by the host"


class Connection:
    """One SSH connection to one host. Use `connect()`; methods are synchronous."""

    def __init__(self, host: Host, options: SshOptions) -> None:
        self.host = host
        self.options = options
        self.ssh: asyncssh.SSHClientConnection | None = None
        self.lost: str | None = None

    def _fail(self, what: str, exc: BaseException) -> RemoteError:
        why = str(exc) or type(exc).__name__
        return RemoteError(f"{self.host}: {what}: {why}")

    async def _connect(self) -> None:
        o = self.options
        kwargs: dict[str, Any] = {
            "port": self.host.port,
            "connect_timeout": o.connect_timeout_s,
            "keepalive_interval": o.keepalive_interval_s,
            "keepalive_count_max": o.keepalive_count_max,
        }
        if self.host.user:
            kwargs["username"] = self.host.user
        if o.known_hosts is not None:
            kwargs["known_hosts"] = str(o.known_hosts)
        if o.client_keys:
            kwargs["client_keys"] = [str(k) for k in o.client_keys]
        self.ssh, _ = await asyncssh.create_connection(
            lambda: _Client(self), self.host.name, **kwargs
        )

    def start(
        self, argv: Sequence[str], *, stdout: Path | None = None, stderr: Path | None = None
    ) -> RemoteProcess:
        """Start argv in its own process group; stdout/stderr stream to the local files given
        (kept in memory otherwise) and stdout lines are readable with `read_line`."""
        if self.ssh is None or self.lost:
            raise RemoteError(f"{self.host}: not connected ({self.lost or 'closed'})")
        proc = RemoteProcess(self, argv, stdout, stderr)
        try:
            _loop().call(proc._start(), START_TIMEOUT_S + 5)
        except RemoteError:
            raise
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise self._fail(f"cannot start `{shlex.join(argv)}`", exc) from None
        _registry.processes.add(proc)
        return proc

    def run(
        self, argv: Sequence[str], *, timeout_s: float = 30.0, check: bool = True
    ) -> CommandResult:
        """Run argv to completion (killed at the timeout). With check, a non-zero exit is a
        RemoteError naming the host, the command and its stderr."""
        proc = self.start(argv)
        try:
            code = proc.wait(timeout_s)
        finally:
            proc.kill()
            _registry.processes.discard(proc)
        result = CommandResult(
            tuple(argv),
            code,
            proc.stdout_bytes.decode(errors="replace"),
            proc.stderr_bytes.decode(errors="replace"),
        )
        if check and code != 0:
            tail = result.stderr.strip().splitlines()[-1:] or [f"exit {code}"]
            raise RemoteError(f"{self.host}: `{shlex.join(argv)}` failed: {tail[0]}")
        return result

    def call(
        self, fn: Callable[[asyncssh.SSHClientConnection], Awaitable[T]], timeout_s: float
    ) -> T:
        """Run fn(the asyncssh connection) on the SSH event loop, for exchanges that need the
        channel itself (the clock exchange); RemoteError naming the host when it fails."""
        if self.ssh is None or self.lost:
            raise RemoteError(f"{self.host}: not connected ({self.lost or 'closed'})")
        ssh = self.ssh

        async def go() -> T:
            return await fn(ssh)

        try:
            return _loop().call(go(), timeout_s)
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise self._fail("SSH exchange failed", exc) from None

    def put(self, local: Path, remote: str, mode: int = 0o755) -> None:
        """Copy a file to the host (SFTP), atomically: a temporary name, then a rename."""

        async def go() -> None:
            assert self.ssh is not None
            async with self.ssh.start_sftp_client() as sftp:
                tmp = f"{remote}.part"
                await sftp.put(str(local), tmp)
                await sftp.chmod(tmp, mode)
                await sftp.posix_rename(tmp, remote)

        try:
            _loop().call(go(), 600)
        except (OSError, asyncssh.Error) as exc:
            raise self._fail(f"cannot copy {local} to {remote}", exc) from None

    def get(self, remote: str, local: Path) -> None:
        """Copy a file from the host (SFTP), e.g. a load generator's JSON or .hlog."""

        async def go() -> None:
            assert self.ssh is not None
            async with self.ssh.start_sftp_client() as sftp:
                await sftp.get(remote, str(local))

        try:
            _loop().call(go(), 600)
        except (OSError, asyncssh.Error) as exc:
            raise self._fail(f"cannot fetch {remote}", exc) from None

    def close(self) -> None:
        """End this connection's processes, then the connection; never raises."""
        for proc in [p for p in _registry.processes if p.conn is self]:
            proc.kill()
            _registry.processes.discard(proc)
        ssh, self.ssh = self.ssh, None
        if ssh is not None:

            async def go() -> None:
                ssh.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ssh.wait_closed(), 5)

            with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
                _loop().call(go(), 10)
        _registry.connections.discard(self)


def connect(host: Host | str, options: SshOptions | None = None) -> Connection:
    """An open connection to host; RemoteError naming the host when it cannot be reached."""
    host = parse_host(host) if isinstance(host, str) else host
    if host.is_local:
        raise HarnessError("`local` is this machine: run it with harness.procs, not over SSH")
    conn = Connection(host, options or SshOptions())
    timeout = conn.options.connect_timeout_s + 5
    try:
        _loop().call(conn._connect(), timeout)
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        raise RemoteError(
            f"{host}: cannot connect over SSH ({str(exc) or type(exc).__name__}); check that "
            "sshd runs there, its host key is in known_hosts and your key is authorized"
        ) from None
    _registry.connections.add(conn)
    return conn


# ---------------------------------------------------------------------------------------------
# A host's files, copied into a local tree of the same layout (its /proc, /sys)

# Each argument is a glob expanded by the host's sh; every match comes back as `D path` (a
# directory) or `F path base64-content` (sysfs and procfs report sizes that are not the
# content's, so files are read whole, never by size). Missing files are skipped.
_MIRROR_SCRIPT = (
    'for pat in "$@"; do for f in $pat; do '
    'if [ -d "$f" ]; then printf "D %s\\n" "$f"; '
    'elif [ -r "$f" ]; then printf "F %s " "$f"; base64 -w0 < "$f" 2>/dev/null; echo; fi; '
    "done; done"
)


def mirror(conn: Connection, patterns: Sequence[str], into: Path) -> Path:
    """Copy the host's files matching patterns (absolute globs) under `into`; returns into."""
    result = conn.run(["sh", "-c", _MIRROR_SCRIPT, "sh", *patterns], timeout_s=60)
    for line in result.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        path, _, content = rest.partition(" ")
        if not path.startswith("/") or ".." in path.split("/"):
            continue
        local = into / path.lstrip("/")
        if kind == "D":
            local.mkdir(parents=True, exist_ok=True)
        elif kind == "F":
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(base64.b64decode(content))
    return into


# ---------------------------------------------------------------------------------------------
# Everything started, for close_all


class _Registry:
    def __init__(self) -> None:
        self.processes: set[RemoteProcess] = set()
        self.connections: set[Connection] = set()


_registry = _Registry()


def running_processes() -> list[RemoteProcess]:
    return [p for p in _registry.processes if p.running]


def close_all() -> None:
    """End every remote process the harness started and close every connection."""
    for proc in list(_registry.processes):
        proc.kill()
    _registry.processes.clear()
    for conn in list(_registry.connections):
        conn.close()


atexit.register(close_all)
