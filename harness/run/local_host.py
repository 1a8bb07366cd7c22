"""This machine as one of the hosts of a run across hosts (`local` beside SSH destinations).

`LocalConnection` is a harness.run.remote.Connection whose commands run here, under the same
leash as on a remote host (their own session, SIGKILLed as a group when the harness closes
their stdin or dies), so a trial treats `local` exactly as any other host: the same process
handling, kills, file names and clock (an offset of exactly 0: it is the harness's own clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path
from typing import Any

from harness.atomic import write_atomic
from harness.plan.hosts import LOCAL, Host, SshOptions
from harness.run import remote
from harness.run.clock import ClockOffset
from harness.run.remote import Connection, RemoteError


class _Stdin:
    def __init__(self, writer: asyncio.StreamWriter | None) -> None:
        self.writer = writer

    def write_eof(self) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.close()  # end of file for the leash's watcher


class _LocalProcess:
    """The subset of asyncssh's SSHClientProcess that RemoteProcess uses."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.stdin = _Stdin(proc.stdin)

    @property
    def returncode(self) -> int | None:
        code = self.proc.returncode
        return 128 - code if code is not None and code < 0 else code  # as a shell reports it

    async def wait_closed(self) -> None:
        await self.proc.wait()

    def close(self) -> None:
        self.stdin.write_eof()
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


class _LocalShell:
    """Stands in for the asyncssh connection: commands go to this machine's sh."""

    async def create_process(self, command: str, **_: Any) -> _LocalProcess:
        proc = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, like every child of the harness
        )
        return _LocalProcess(proc)

    def close(self) -> None:
        pass

    async def wait_closed(self) -> None:
        pass


class LocalConnection(Connection):
    def __init__(self) -> None:
        super().__init__(Host(LOCAL), SshOptions())
        self.ssh = _LocalShell()  # type: ignore[assignment]
        remote._registry.connections.add(self)

    def put(self, local: Path, remote_path: str, mode: int = 0o755) -> None:
        try:
            write_atomic(
                Path(remote_path), lambda tmp: (shutil.copyfile(local, tmp), tmp.chmod(mode))
            )
        except OSError as exc:
            raise RemoteError(f"local: cannot copy {local} to {remote_path}: {exc}") from None

    def get(self, remote_path: str, local: Path) -> None:
        try:
            shutil.copyfile(remote_path, local)
        except OSError as exc:
            raise RemoteError(f"local: cannot fetch {remote_path}: {exc}") from None


def local_offset() -> ClockOffset:
    """This machine's clock against itself: exactly 0."""
    return ClockOffset(LOCAL, 0, 0, 0, 0)
