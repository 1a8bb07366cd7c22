"""Put the load generator on a host: copy it when missing or different (sha256), if it can run.

A binary built here runs there when the architecture (`uname -m`) matches and, for a
dynamically linked binary, the C library is the same family and at least as new as this
machine's (a binary asks for the symbol versions of the glibc it was linked against). Otherwise
the user builds it there and names it (`--remote-bin PATH`); a mismatch is one line naming the
host and that fix.
"""

from __future__ import annotations

import hashlib
import platform
import re
import shlex
import struct
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.run.remote import Connection, RemoteError

DEFAULT_REMOTE_DIR = ".cache/executor-bench/bin"  # relative to the remote user's home
_PT_INTERP = 3


@dataclass(frozen=True)
class Libc:
    family: str  # "glibc", "musl" or "unknown"
    version: tuple[int, ...] | None

    def __str__(self) -> str:
        v = ".".join(map(str, self.version)) if self.version else "?"
        return f"{self.family} {v}"


def parse_libc(ldd_version_output: str) -> Libc:
    """The C library from `ldd --version` (glibc prints its version on the first line, musl's
    loader prints `musl libc` and `Version X`)."""
    text = ldd_version_output
    if "musl" in text:
        m = re.search(r"Version\s+(\d+(?:\.\d+)+)", text)
        return Libc("musl", tuple(map(int, m.group(1).split("."))) if m else None)
    first = text.strip().splitlines()[0] if text.strip() else ""
    if re.search(r"GLIBC|GNU libc|glibc", first, re.I):
        m = re.search(r"(\d+\.\d+)\s*$", first)
        return Libc("glibc", tuple(map(int, m.group(1).split("."))) if m else None)
    return Libc("unknown", None)


def is_static(binary: Path) -> bool:
    """True for an ELF file without a program interpreter (statically linked)."""
    data = binary.read_bytes()[:65536]
    if data[:4] != b"\x7fELF":
        return False
    is64, little = data[4] == 2, data[5] == 1
    e = "<" if little else ">"
    if is64:
        phoff, phentsize, phnum = (
            struct.unpack_from(e + "Q", data, 32)[0],
            *struct.unpack_from(e + "HH", data, 54),
        )
    else:
        phoff, phentsize, phnum = (
            struct.unpack_from(e + "I", data, 28)[0],
            *struct.unpack_from(e + "HH", data, 42),
        )
    for i in range(phnum):
        off = phoff + i * phentsize
        if off + 4 > len(data):
            return False  # headers beyond what was read: assume dynamic (the safe answer)
        if struct.unpack_from(e + "I", data, off)[0] == _PT_INTERP:
            return False
    return True


@dataclass(frozen=True)
class Target:
    """Where a binary runs: architecture and C library."""

    machine: str
    libc: Libc

    def __str__(self) -> str:
        return f"{self.machine}/{self.libc}"


def local_target() -> Target:
    try:
        out = subprocess.run(
            ["ldd", "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        text = out.stdout + out.stderr
    except (OSError, subprocess.TimeoutExpired):
        text = ""
    return Target(platform.machine(), parse_libc(text))


def remote_target(conn: Connection) -> Target:
    out = conn.run(["sh", "-c", "uname -m; ldd --version 2>&1 | head -n 3"], timeout_s=10).stdout
    machine, _, rest = out.partition("\n")
    return Target(machine.strip(), parse_libc(rest))


def mismatch(binary_target: Target, host_target: Target, static: bool) -> str | None:
    """Why a binary built for binary_target cannot run on host_target, or None."""
    if binary_target.machine != host_target.machine:
        return "architecture differs"
    if static:
        return None
    b, h = binary_target.libc, host_target.libc
    if b.family != h.family or b.family == "unknown":
        return "C library differs"
    if b.family == "glibc" and (b.version is None or h.version is None or h.version < b.version):
        return "its glibc is older"
    return None


@dataclass(frozen=True)
class Placement:
    host: str
    path: str  # absolute, on the host
    sha256: str | None
    source: str  # "copied", "present" (same checksum already there) or "user" (--remote-bin)

    @property
    def copied(self) -> bool:
        return self.source == "copied"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _remote_sha256(conn: Connection, path: str) -> str | None:
    out = conn.run(["sh", "-c", 'sha256sum "$1" 2>/dev/null || true', "sh", path], timeout_s=60)
    word = out.stdout.split()[:1]
    return word[0] if word and re.fullmatch(r"[0-9a-f]{64}", word[0]) else None


def place_binary(
    conn: Connection,
    local: Path,
    *,
    remote_bin: str | None = None,
    remote_dir: str = DEFAULT_REMOTE_DIR,
) -> Placement:
    """The path on the host to run `local`'s program from, copying it there when needed."""
    host = str(conn.host)
    if remote_bin is not None:
        done = conn.run(["test", "-x", remote_bin], timeout_s=10, check=False)
        if done.returncode != 0:
            raise RemoteError(
                f"{host}: --remote-bin {remote_bin} is not an executable file there; "
                "build the load generator there (`make build`) and pass its path"
            )
        return Placement(host, remote_bin, _remote_sha256(conn, remote_bin), "user")
    built, there = local_target(), remote_target(conn)
    why = mismatch(built, there, is_static(local))
    if why is not None:
        raise RemoteError(
            f"{host}: cannot run this machine's {local.name} ({why}: host is {there}, "
            f"binary is {built}); build it there and pass --remote-bin PATH"
        )
    made = conn.run(["sh", "-c", 'mkdir -p "$1" && cd "$1" && pwd', "sh", remote_dir], timeout_s=10)
    path = f"{made.stdout.strip()}/{local.name}"
    want = sha256_file(local)
    if _remote_sha256(conn, path) == want:
        return Placement(host, path, want, "present")
    conn.put(local, path)
    got = _remote_sha256(conn, path)
    if got != want:
        raise RemoteError(
            f"{host}: the copy of {local.name} at {shlex.quote(path)} has checksum {got}, "
            f"not {want}; check the disk there"
        )
    return Placement(host, path, want, "copied")
