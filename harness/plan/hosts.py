"""Where the harness runs things: `local` or an SSH destination, and how to reach it.

Plain data for plans and the command line; nothing here opens a connection (harness.run.remote
does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

LOCAL = "local"
DEFAULT_PORT = 22


@dataclass(frozen=True)
class Host:
    """An SSH destination (`user@name[:port]`), or the local machine (`local`)."""

    name: str
    user: str | None = None
    port: int = DEFAULT_PORT

    @property
    def is_local(self) -> bool:
        return self.name == LOCAL

    def __str__(self) -> str:
        if self.is_local:
            return LOCAL
        name = f"[{self.name}]" if ":" in self.name else self.name
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port != DEFAULT_PORT else ""
        return f"{user}{name}{port}"


_HOST_RE = re.compile(
    r"(?:(?P<user>[A-Za-z0-9_][A-Za-z0-9_.-]*)@)?"
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9][A-Za-z0-9.-]*))"
    r"(?::(?P<port>\d{1,5}))?"
)


def parse_host(spec: str) -> Host:
    """`local`, `name`, `user@name`, `user@name:port` or `user@[v6addr]:port`."""
    text = spec.strip()
    if text == LOCAL:
        return Host(LOCAL)
    m = _HOST_RE.fullmatch(text)
    port = int(m.group("port")) if m and m.group("port") else DEFAULT_PORT
    if m is None or not 0 < port < 65536 or (m.group("name") or "") == LOCAL:
        raise HarnessError(
            f"bad host {spec!r}: expected `local` or an SSH destination user@name[:port] "
            "(e.g. bench@10.0.0.2 or bench@server-1:2222)"
        )
    return Host(m.group("v6") or m.group("name"), m.group("user"), port)


@dataclass(frozen=True)
class SshOptions:
    """How to reach hosts. None/empty means the SSH defaults: ~/.ssh/known_hosts, ~/.ssh/config,
    the agent and the usual key files. Host keys are always checked."""

    known_hosts: Path | None = None
    client_keys: tuple[Path, ...] = ()
    connect_timeout_s: float = 10.0
    # A host that stops answering is declared lost after interval * count seconds.
    keepalive_interval_s: float = 2.0
    keepalive_count_max: int = 3
