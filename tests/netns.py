"""A small test network of "hosts": network namespaces, each running Debian's sshd.

Every namespace has one end of a veth pair (renamed eth0 inside) whose other end is joined to a
bridge in the test's own namespace; the bridge holds the gateway address, so the test process
reaches every host and the hosts reach each other through the bridge. Addresses come from one
/24 of 198.18.0.0/15 (RFC 2544's range for benchmark tests) that this machine does not use.
Names carry a random tag, so parallel runs do not clash.

Before anything is sent, every address is checked to route through its own veth (inside each
namespace) and through the bridge (from the test). `network()` tears everything down on every
outcome: sshd and anything else left in a namespace is killed, then the namespaces (with their
veths) and the bridge are deleted. It needs root; `unavailable()` says why it cannot run.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.run.hosts import SshOptions
from harness.run.remote import asyncssh  # imported there without its import-time warning

SSHD = Path("/usr/sbin/sshd")
TEST_RANGE = ipaddress.ip_network("198.18.0.0/15")
SSH_PORT = 22
SSHD_READY_S = 10.0
CMD_TIMEOUT_S = 10.0


class NetworkError(Exception):
    """The test network could not be built (the message says which step failed)."""


def _ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    argv = ["ip", *args] if ns is None else ["ip", "netns", "exec", ns, "ip", *args]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=CMD_TIMEOUT_S, check=False)
    if check and out.returncode != 0:
        raise NetworkError(f"`{' '.join(argv)}` failed: {out.stderr.strip()}")
    return out.stdout


def unavailable() -> str | None:
    """Why namespaces with sshd cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces (CI runs it as root)"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip` (scripts/apt-packages.txt)"
    if not SSHD.is_file():
        return f"needs Debian's openssh-server ({SSHD}; scripts/apt-packages.txt)"
    probe = f"ebprobe-{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", probe)
    except (NetworkError, OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot create a network namespace: {exc}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass
class NsHost:
    """One namespace playing a host: its name, address and sshd."""

    ns: str
    addr: str
    veth: str  # the bridge-side end, in the test's namespace
    sshd: subprocess.Popen[bytes] | None = None

    @property
    def spec(self) -> str:
        return f"root@{self.addr}"

    def pids(self) -> list[int]:
        """Every process whose network namespace is this one."""
        out = _ip("netns", "pids", self.ns, check=False)
        return [int(p) for p in out.split()]

    def pids_besides_sshd(self) -> list[int]:
        """Processes left in the namespace other than the listening sshd."""
        keep = {self.sshd.pid} if self.sshd is not None else set()
        return [p for p in self.pids() if p not in keep]

    def kill_everything(self) -> None:
        """SIGKILL every process in the namespace, sshd included: what a host crash looks like
        to the harness."""
        for _ in range(5):  # a dying parent may still fork: repeat until nothing is left
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)


@dataclass
class TestNetwork:
    tag: str
    bridge: str
    gateway: str
    hosts: list[NsHost]
    known_hosts: Path
    client_key: Path
    notes: list[str] = field(default_factory=list)

    def ssh_options(self) -> SshOptions:
        return SshOptions(
            known_hosts=self.known_hosts,
            client_keys=(self.client_key,),
            connect_timeout_s=5.0,
            keepalive_interval_s=1.0,
            keepalive_count_max=3,
        )


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of the test range that no address or route of this machine touches."""
    used = []
    for line in (_ip("-4", "-o", "addr") + _ip("-4", "route", "show", "table", "all")).splitlines():
        for word in line.split():
            with contextlib.suppress(ValueError):
                used.append(ipaddress.ip_network(word, strict=False))
    subnets = list(TEST_RANGE.subnets(new_prefix=24))
    random.shuffle(subnets)
    for net in subnets:
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return net
    raise NetworkError("no free /24 left in 198.18.0.0/15 on this machine")


def _write_key(path: Path) -> str:
    """A fresh ed25519 private key at path; returns its public key line."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(path))
    path.chmod(0o600)
    return key.export_public_key().decode().strip()


def _sshd_config(tmp: Path, host: NsHost, host_key: Path, authorized: Path) -> Path:
    cfg = tmp / f"{host.ns}.sshd_config"
    cfg.write_text(
        "\n".join(
            [
                f"ListenAddress {host.addr}:{SSH_PORT}",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized}",
                "PidFile none",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "UseDNS no",
                "StrictModes no",  # the keys live in pytest's tmp dirs
                "MaxSessions 64",
                "MaxStartups 64",
                "ClientAliveInterval 2",
                "ClientAliveCountMax 3",
                "Subsystem sftp internal-sftp",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    return cfg


def _check_routes(hosts: list[NsHost], bridge: str, gateway: str) -> None:
    """Each address must route through its own veth (eth0) in every namespace, and through the
    bridge from here; anything else could send test traffic onto a real network."""
    for h in hosts:
        for other in [gateway, *(o.addr for o in hosts if o is not h)]:
            route = _ip("route", "get", other, ns=h.ns)
            if " dev eth0 " not in f" {route} ":
                raise NetworkError(f"in {h.ns}, {other} does not route through eth0: {route}")
        route = _ip("route", "get", h.addr)
        if f" dev {bridge} " not in f" {route} ":
            raise NetworkError(f"{h.addr} does not route through {bridge} here: {route}")


def _wait_sshd(h: NsHost, log: Path) -> None:
    deadline = time.monotonic() + SSHD_READY_S
    while time.monotonic() < deadline:
        assert h.sshd is not None
        if h.sshd.poll() is not None:
            raise NetworkError(f"sshd in {h.ns} exited: {log.read_text().strip()[-300:]}")
        with contextlib.suppress(OSError), socket.create_connection((h.addr, SSH_PORT), 0.2):
            return
        time.sleep(0.05)
    raise NetworkError(f"sshd in {h.ns} not listening on {h.addr} after {SSHD_READY_S:.0f} s")


def _teardown(net: TestNetwork, namespaces: list[str]) -> list[str]:
    """Kill every process in every namespace, delete them and the bridge; what went wrong."""
    problems = []
    for h in net.hosts:
        if h.sshd is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(h.sshd.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                h.sshd.wait(timeout=5)
        h.kill_everything()
        if h.pids():
            problems.append(f"processes left in {h.ns}: {h.pids()}")
    for ns in namespaces:
        with contextlib.suppress(NetworkError, subprocess.TimeoutExpired):
            _ip("netns", "del", ns, check=False)
    with contextlib.suppress(NetworkError, subprocess.TimeoutExpired):
        _ip("link", "del", net.bridge, check=False)
    leftover = _ip("netns", "list", check=False)
    problems += [f"namespace {ns} not deleted" for ns in namespaces if ns in leftover]
    return problems


@contextlib.contextmanager
def network_or_skip(tmp: Path, count: int) -> Iterator[TestNetwork]:
    """`network`, or the test skipped saying why this machine cannot make one."""
    import pytest

    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with network(tmp, count) as net:
        yield net


@contextlib.contextmanager
def network(tmp: Path, count: int) -> Iterator[TestNetwork]:
    """`count` hosts, each a namespace with sshd on ADDR:22, accepting root with a test key."""
    tag = secrets.token_hex(3)
    subnet = _free_subnet()
    addrs = [str(a) for a in list(subnet.hosts())[: count + 1]]
    net = TestNetwork(
        tag=tag,
        bridge=f"ebr{tag}",
        gateway=addrs[0],
        hosts=[
            NsHost(ns=f"eb-{tag}-{i}", addr=addrs[i + 1], veth=f"ev{tag}{i}") for i in range(count)
        ],
        known_hosts=tmp / "known_hosts",
        client_key=tmp / "client_ed25519",
    )
    created: list[str] = []
    try:
        _ip("link", "add", net.bridge, "type", "bridge")
        _ip("addr", "add", f"{net.gateway}/{subnet.prefixlen}", "dev", net.bridge)
        _ip("link", "set", net.bridge, "up")
        for i, h in enumerate(net.hosts):
            _ip("netns", "add", h.ns)
            created.append(h.ns)
            peer = f"ep{tag}{i}"
            _ip("link", "add", h.veth, "type", "veth", "peer", "name", peer)
            _ip("link", "set", peer, "netns", h.ns)
            _ip("link", "set", h.veth, "master", net.bridge, "up")
            _ip("link", "set", "lo", "up", ns=h.ns)
            _ip("link", "set", peer, "name", "eth0", ns=h.ns)
            _ip("addr", "add", f"{h.addr}/{subnet.prefixlen}", "dev", "eth0", ns=h.ns)
            _ip("link", "set", "eth0", "up", ns=h.ns)
        _check_routes(net.hosts, net.bridge, net.gateway)

        authorized = tmp / "authorized_keys"
        authorized.write_text(_write_key(net.client_key) + "\n")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        known = []
        for h in net.hosts:
            host_key = tmp / f"{h.ns}.host_ed25519"
            known.append(f"{h.addr} {_write_key(host_key)}")
            cfg = _sshd_config(tmp, h, host_key, authorized)
            log = tmp / f"{h.ns}.sshd.log"
            with open(log, "wb") as err:
                h.sshd = subprocess.Popen(
                    ["ip", "netns", "exec", h.ns, str(SSHD), "-D", "-e", "-f", str(cfg)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    start_new_session=True,
                )
            _wait_sshd(h, log)
        net.known_hosts.write_text("\n".join(known) + "\n")
        yield net
    finally:
        net.notes += _teardown(net, created)
