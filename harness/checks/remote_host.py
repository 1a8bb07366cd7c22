"""What a remote host is: CPU topology, platform, the route to a peer, the idle round trip.

The host's /sys and /proc files are copied into a local directory of the same layout
(`mirror`), and the harness's own readers run on that copy: harness.topology.read_topology for
the topology, harness.doctor's checks (which take their roots from a Context) for the governor,
so a remote host is described exactly as the local one is.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.checks import system_checks
from harness.checks.machine import Context
from harness.plan.topology import Topology, parse_cpu_list, read_topology, restrict
from harness.run.remote import Connection, RemoteError, mirror

_CPU = "/sys/devices/system/cpu"
TOPOLOGY_FILES = (
    f"{_CPU}/online",
    f"{_CPU}/cpu[0-9]*/topology/physical_package_id",
    f"{_CPU}/cpu[0-9]*/topology/core_id",
    f"{_CPU}/cpu[0-9]*/topology/thread_siblings_list",
    f"{_CPU}/cpu[0-9]*/node[0-9]*",
    "/proc/self/status",  # Cpus_allowed_list: the CPUs a process started over SSH may use
)
PLATFORM_FILES = (
    *TOPOLOGY_FILES,
    f"{_CPU}/cpu[0-9]*/cpufreq/scaling_governor",
    "/proc/cpuinfo",
)


def _allowed_cpus(root: Path) -> set[int] | None:
    status = root / "proc" / "self" / "status"
    if not status.is_file():
        return None
    m = re.search(r"^Cpus_allowed_list:\s*(\S+)", status.read_text(), re.M)
    return set(parse_cpu_list(m.group(1))) if m else None


def topology_from_mirror(root: Path) -> tuple[Topology, list[int]]:
    """(the CPUs a process may use there, their ids) from a mirrored tree."""
    topo = read_topology(root / _CPU.lstrip("/"))
    allowed = _allowed_cpus(root)
    if allowed is not None:
        topo = restrict(topo, allowed)
    return topo, topo.cpu_ids


def remote_topology(conn: Connection) -> Topology:
    """The host's CPUs that a process started over SSH may run on, with cores and nodes."""
    with tempfile.TemporaryDirectory(prefix="host-topology-") as tmp:
        topo, _ = topology_from_mirror(mirror(conn, TOPOLOGY_FILES, Path(tmp)))
    if not topo.cpus:
        raise RemoteError(f"{conn.host}: no CPU topology under {_CPU}")
    return topo


def cpu_model(cpuinfo: str) -> str | None:
    """The CPU's model name from /proc/cpuinfo (x86 `model name`; other architectures' keys)."""
    for key in ("model name", "Model", "cpu model", "uarch", "Hardware"):
        m = re.search(rf"^{re.escape(key)}\s*:\s*(.+?)\s*$", cpuinfo, re.M)
        if m:
            return m.group(1)
    return None


@dataclass(frozen=True)
class Route:
    """The interface packets to `to` leave by, as `ip route get` and sysfs tell."""

    to: str
    dev: str
    src: str | None
    via: str | None
    mtu: int | None
    speed_mbps: int | None  # None where the driver does not say (veth, many VMs)
    driver: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_route_get(text: str) -> tuple[str, str | None, str | None]:
    """(dev, src, via) from `ip -o route get ADDR` output."""
    words = text.split()

    def after(key: str) -> str | None:
        return words[words.index(key) + 1] if key in words[:-1] else None

    dev = after("dev")
    if dev is None:
        raise ValueError(f"no device in route {text.strip()!r}")
    return dev, after("src"), after("via")


def route_to(conn: Connection, addr: str) -> Route:
    """The NIC and MTU the host uses to reach addr."""
    out = conn.run(["ip", "-o", "route", "get", addr], timeout_s=10).stdout
    try:
        dev, src, via = parse_route_get(out)
    except ValueError as exc:
        raise RemoteError(f"{conn.host}: {exc}") from None
    script = (
        'd=/sys/class/net/$1; cat "$d/mtu" 2>/dev/null || echo; '
        'cat "$d/speed" 2>/dev/null || echo; '
        'basename "$(readlink "$d/device/driver" 2>/dev/null)" 2>/dev/null || echo'
    )
    lines = [*conn.run(["sh", "-c", script, "sh", dev], timeout_s=10).stdout.splitlines(), "", ""]
    mtu, speed, driver = (s.strip() for s in lines[:3])
    return Route(
        to=addr,
        dev=dev,
        src=src,
        via=via,
        mtu=int(mtu) if mtu.isdigit() else None,
        speed_mbps=int(speed) if speed.isdigit() and int(speed) > 0 else None,
        driver=driver or None,
    )


def platform_of(conn: Connection, peer_addr: str | None = None) -> dict[str, Any]:
    """The host's platform for the manifest: the keys harness.platform.collect uses for this
    machine where they apply, plus the route to peer_addr (the other side of the benchmark)."""
    uname = conn.run(["sh", "-c", "uname -s; uname -n; uname -r; uname -m"], timeout_s=10)
    system, node, release, machine = [*uname.stdout.split("\n"), "", "", "", ""][:4]
    with tempfile.TemporaryDirectory(prefix="host-platform-") as tmp:
        root = mirror(conn, PLATFORM_FILES, Path(tmp))
        topo, allowed = topology_from_mirror(root)
        governor = system_checks.check_governor(Context(proc=root / "proc", sys=root / "sys"))
        cpuinfo = root / "proc" / "cpuinfo"
        model = cpu_model(cpuinfo.read_text()) if cpuinfo.is_file() else None
    info: dict[str, Any] = {
        "host": str(conn.host),
        "kernel": f"{system} {release}".strip(),
        "machine": machine,
        "hostname": node,
        "cpu_model": model,
        "governor": governor.value,
        "cpu_affinity": allowed,
        "topology": topo.describe(),
    }
    if peer_addr is not None:
        info["route"] = route_to(conn, peer_addr).as_dict()
    return info


# ---------------------------------------------------------------------------------------------
# Idle round trip: the floor under every latency the load generators can measure


@dataclass(frozen=True)
class IdleRtt:
    """`ping` statistics from one host to an address, in microseconds."""

    source: str
    to: str
    sent: int
    received: int
    min_us: float
    avg_us: float
    max_us: float
    mdev_us: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_PING_COUNTS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_PING_RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")


def parse_ping(text: str, source: str, to: str) -> IdleRtt:
    """iputils `ping -q` summary -> IdleRtt; ValueError when no reply came back."""
    counts = _PING_COUNTS.search(text)
    rtt = _PING_RTT.search(text)
    if counts is None or rtt is None or int(counts.group(2)) == 0:
        raise ValueError(f"no ping reply from {to}: {text.strip().splitlines()[-1:] or ['']}")
    lo, avg, hi, mdev = (float(g) * 1000 for g in rtt.groups())
    return IdleRtt(source, to, int(counts.group(1)), int(counts.group(2)), lo, avg, hi, mdev)


def _ping_argv(addr: str, count: int) -> list[str]:
    # 0.2 s is the shortest interval ping allows a user that is not root.
    return ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", "2", addr]


def idle_rtt(conn: Connection | None, addr: str, count: int = 10) -> IdleRtt:
    """The idle round trip from the host (None: this machine) to addr."""
    argv = _ping_argv(addr, count)
    limit = count * 0.2 + 10
    if conn is None:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=limit, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RemoteError(f"local: ping {addr} failed: {exc}") from None
        text, source = done.stdout + done.stderr, "local"
    else:
        result = conn.run(argv, timeout_s=limit, check=False)
        text, source = result.stdout + result.stderr, str(conn.host)
    try:
        return parse_ping(text, source, addr)
    except ValueError as exc:
        raise RemoteError(f"{source}: {exc} (is iputils-ping installed?)") from None
