"""Checks of what many loopback connections need: MTU, descriptors, ephemeral ports, TIME_WAIT
sockets, the listen backlog."""

from __future__ import annotations

import resource

from harness.checks.machine import (
    _TCP_STATE_TIME_WAIT,
    FD_LIMIT_WARN,
    LOOPBACK_MTU_DEFAULT,
    PORT_RANGE_WARN,
    SERVER_BACKLOG,
    TIME_WAIT_WARN,
    Context,
    Finding,
    Status,
    _not_exposed,
    _read,
)


def check_loopback_mtu(ctx: Context) -> Finding:
    text = _read(ctx.sys / "class" / "net" / "lo" / "mtu")
    if text is None:
        return _not_exposed("the loopback interface")
    mtu = int(text)
    if mtu == LOOPBACK_MTU_DEFAULT:
        return Finding(Status.OK, str(mtu), "Linux's default loopback MTU")
    return Finding(
        Status.WARNING,
        str(mtu),
        f"not the default {LOOPBACK_MTU_DEFAULT}: large messages are segmented differently "
        "than on other machines, so results do not compare",
        f"sudo ip link set lo mtu {LOOPBACK_MTU_DEFAULT}",
    )


def check_fd_limit(ctx: Context) -> Finding:
    soft, hard = ctx.nofile_limit()
    inf = resource.RLIM_INFINITY

    def show(n: int) -> str:
        return "unlimited" if n == inf else str(n)

    value = f"{show(soft)} (hard {show(hard)})"
    target = max(FD_LIMIT_WARN, ctx.needed_fds or 0)
    fix = f"ulimit -n {target}"
    if hard != inf and hard < target:
        fix += f"  (needs the hard limit raised: nofile {target} in /etc/security/limits.conf)"
    limited = soft != inf
    return _enough(
        value,
        fix,
        short=limited and ctx.needed_fds is not None and soft < ctx.needed_fds,
        why_short=f"the planned connections need {ctx.needed_fds} descriptors per process",
        low=limited and soft < FD_LIMIT_WARN,
        why_low=f"below {FD_LIMIT_WARN}: trials with more than ~{soft} connections will fail "
        "with EMFILE",
        ok="enough file descriptors",
    )


def _enough(
    value: str, fix: str, *, short: bool, why_short: str, low: bool, why_low: str, ok: str
) -> Finding:
    """A resource the run needs: an error when short of the plan's need, a warning when below
    what large runs need, else fine."""
    if short:
        return Finding(Status.ERROR, value, why_short, fix)
    if low:
        return Finding(Status.WARNING, value, why_low, fix)
    return Finding(Status.OK, value, ok)


def check_port_range(ctx: Context) -> Finding:
    text = _read(ctx.proc / "sys" / "net" / "ipv4" / "ip_local_port_range")
    if text is None:
        return _not_exposed("the ephemeral port range")
    low, high = (int(x) for x in text.split()[:2])
    size = high - low + 1
    value = f"{low}-{high} ({size} ports)"
    fix = "sudo sysctl net.ipv4.ip_local_port_range='1024 65535'"
    return _enough(
        value,
        fix,
        short=ctx.connections is not None and size < ctx.connections,
        why_short=f"{ctx.connections} connections to one server port need as many ephemeral ports",
        low=size < PORT_RANGE_WARN,
        why_low=f"fewer than {PORT_RANGE_WARN} ephemeral ports: large connection counts will "
        "fail with EADDRNOTAVAIL",
        ok="enough ephemeral ports",
    )


def check_time_wait(ctx: Context) -> Finding:
    count = 0
    seen = False
    for name in ("tcp", "tcp6"):
        path = ctx.proc / "net" / name
        if not path.exists():
            continue
        seen = True
        with path.open() as f:
            next(f, None)  # header
            for line in f:
                fields = line.split()
                if len(fields) > 3 and fields[3] == _TCP_STATE_TIME_WAIT:
                    count += 1
    if not seen:
        return _not_exposed("/proc/net/tcp")
    if count > TIME_WAIT_WARN:
        return Finding(
            Status.WARNING,
            str(count),
            f"more than {TIME_WAIT_WARN} sockets in TIME_WAIT from earlier runs: they hold "
            "kernel memory and ports while the new run sets up connections",
            "wait 60 s for them to expire",
        )
    return Finding(Status.OK, str(count), "few sockets in TIME_WAIT")


def check_somaxconn(ctx: Context) -> Finding:
    text = _read(ctx.proc / "sys" / "net" / "core" / "somaxconn")
    if text is None:
        return _not_exposed("net.core.somaxconn")
    value = int(text)
    if value < SERVER_BACKLOG:
        return Finding(
            Status.WARNING,
            str(value),
            f"the servers ask for a backlog of {SERVER_BACKLOG} but the kernel caps it at "
            f"{value}: a burst of connects at trial start can overflow it (SYN retries add 1 s)",
            f"sudo sysctl net.core.somaxconn={SERVER_BACKLOG * 4}",
        )
    return Finding(Status.OK, str(value), f"at least the servers' backlog of {SERVER_BACKLOG}")
