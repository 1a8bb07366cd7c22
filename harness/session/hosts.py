"""A run across hosts (docs/multi-host.md): connect, plan from each host's topology, check each
host as `harness doctor` does, place the binaries, measure clocks and the idle round trip; the
session then runs every trial (harness.run.multihost)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from harness.checks import doctor
from harness.checks.doctor import CheckResult
from harness.errors import HarnessError
from harness.plan import hosts_plan
from harness.plan.designs import Design
from harness.plan.hosts import SshOptions
from harness.plan.plan import Plan, RunConfig, make_plan
from harness.plan.topology import Topology

if TYPE_CHECKING:  # SSH (asyncssh) is imported only where a host is used
    from harness.run.multihost import HostSession


def is_multihost(config: RunConfig) -> bool:
    return hosts_plan.is_multihost(config.server_host, config.client_hosts)


def ssh_options(config: RunConfig) -> SshOptions:
    for path, flag in ((config.ssh_key, "--ssh-key"), (config.known_hosts, "--known-hosts")):
        if path is not None and not Path(path).is_file():
            raise HarnessError(f"{flag} {path} is not a file; give an existing file")
    return SshOptions(
        known_hosts=Path(config.known_hosts) if config.known_hosts else None,
        client_keys=(Path(config.ssh_key),) if config.ssh_key else (),
    )


def without_calibration(config: RunConfig, console: Console) -> RunConfig:
    """Calibration (plan/measure.py) runs on this machine, so not across hosts yet: the plan
    runs as given (closed loop: peak throughput); a measure that needs a calibration to mean
    anything is refused in one line."""
    if config.measure in ("fixed-rate", "server-bound"):
        raise HarnessError(
            f"--measure {config.measure} needs a calibration, which does not run across hosts "
            "yet; give --mode open --rates R1,R2 (or --measure closed-loop)"
        )
    measure = config.measure
    if measure == "auto":
        measure = "closed-loop" if config.mode == "closed" else "as-given"
        console.print(
            f"across hosts: no calibration (it runs on this machine); --measure {measure}",
            style="yellow",
            highlight=False,
        )
    return RunConfig(**{**vars(config), "measure": measure, "calibrate": False})


def canonical(config: RunConfig) -> RunConfig:
    """The config with its hosts checked and spelled canonically."""
    server, clients = hosts_plan.check_hosts(config.server_host, config.client_hosts)
    return RunConfig(**{**vars(config), "server_host": server, "client_hosts": clients})


def _topologies(session: HostSession) -> tuple[Topology, dict[str, Topology]]:
    from harness.checks import remote_host as hostinfo

    layout = session.layout
    server = hostinfo.remote_topology(session.conns[layout.server_host])
    clients = {h: hostinfo.remote_topology(session.conns[h]) for h in layout.client_hosts}
    return server, clients


def open_hosts(
    config: RunConfig,
    designs: dict[str, Design],
    bin_dir: Path,
    console: Console,
    *,
    plan: Plan | None = None,
    dry_run: bool = False,
) -> tuple[HostSession | None, Plan, dict[str, Any]]:
    """Connect and plan (or take the stored plan, on --resume); with dry_run, only plan. On
    --resume (a stored plan given) the hosts are checked again but their platforms and idle
    round trips are not measured: the stored manifest keeps the first session's."""
    from harness.run import placement
    from harness.run.multihost import HostSession

    placeholder = hosts_plan.HostLayout(config.server_host, config.client_hosts, (), {}, ())
    session = HostSession(
        placeholder,
        ssh_options(config),
        bin_dir=bin_dir,
        remote_bin=config.remote_bin,
        remote_dir=os.environ.get("HARNESS_REMOTE_DIR", placement.DEFAULT_REMOTE_DIR),
    )
    resuming = plan is not None
    try:
        plan = _plan_on_hosts(session, config, designs, plan)
        if dry_run:
            session.close()
            return None, plan, {"layout": session.layout.as_dict()}
        checks = _check_hosts(session, config, console)
        info = session.open([designs[n] for n in config.servers])
        if not resuming:
            info.update(_host_facts(session, config))
        info["doctor"] = {h: doctor.to_dicts(r) for h, r in checks.items()}
    except BaseException:
        session.close()
        raise
    return session, plan, info


def _plan_on_hosts(
    session: HostSession, config: RunConfig, designs: dict[str, Design], plan: Plan | None
) -> Plan:
    """Every host connected, the CPUs laid out from their topologies; the plan made on them
    (or the stored one), every trial's connections checked to share out."""
    for h in [config.server_host, *config.client_hosts]:
        session.conn(h)
    server_topo, client_topos = _topologies(session)
    session.layout = hosts_plan.layout(
        config.server_host, server_topo, client_topos, config.client_cpus
    )
    assign = hosts_plan.assigner(session.layout, server_topo, config.oversubscribe)
    session.assign = assign  # for a plan made again (designs refused by the preflight)
    if plan is None:
        plan = make_plan(config, server_topo, designs, assign=assign)
    for t in plan.trials:
        session.layout.shares(t.connections, t.rate)  # too few connections: one line now
    return plan


def _check_hosts(
    session: HostSession, config: RunConfig, console: Console
) -> dict[str, list[CheckResult]]:
    """`harness doctor`'s checks on every host: an error stops the run, a warning is shown."""
    from harness.checks.remote_doctor import check_hosts

    checks = check_hosts(
        [session.conns[h] for h in session.hosts], connections=max(config.connections)
    )
    for host, results in checks.items():
        for c in results:
            if c.status == doctor.Status.ERROR:
                raise HarnessError(
                    f"{host}: the platform check failed ({c.name}: {c.value}); fix: {c.fix}"
                )
            if c.status == doctor.Status.WARNING:
                console.print(
                    f"warning: {host}: {c.name}: {c.value} ({c.fix})",
                    style="yellow",
                    highlight=False,
                )
    return checks


def _host_facts(session: HostSession, config: RunConfig) -> dict[str, Any]:
    """Each host's platform (with its route to the other side) and the idle round trip from
    each client host to the server."""
    from harness.checks import remote_host as hostinfo

    addr, _ = session.server_addr()
    client_addr = session.address(config.client_hosts[0])
    platforms = {
        h: hostinfo.platform_of(
            session.conns[h], peer_addr=addr if h != config.server_host else client_addr
        )
        for h in session.hosts
    }
    rtt = [hostinfo.idle_rtt(session.conns[h], addr).as_dict() for h in config.client_hosts]
    return {"platforms": platforms, "idle_rtt": rtt}
