"""`harness doctor`: the platform checks (like pyperf's `system show`); exit 2 on an error."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from harness.checks import doctor
from harness.checks.runtime_needs import NeedStatus, machine_needs
from harness.plan.designs import DEFAULT_BIN_DIR, DEFAULT_REGISTRY, Design, load_registry

HELP = "check the platform for benchmarking (like pyperf)"
EXIT_ERRORS = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bin-dir", type=Path, default=DEFAULT_BIN_DIR)
    parser.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument(
        "--host", help="check this SSH destination user@name[:port] instead of this machine"
    )
    parser.add_argument("--ssh-key", help="SSH private key for --host (default: agent, ~/.ssh)")
    parser.add_argument("--known-hosts", help="known_hosts file for --host (~/.ssh/known_hosts)")


def run(args: argparse.Namespace, console: Console) -> int:
    if getattr(args, "host", None):
        return run_remote(args, console)
    designs = load_registry(args.registry)
    checks = doctor.run_checks(
        doctor.Context(designs=[(d.name, d.missing(args.bin_dir)) for d in designs.values()])
    )
    if args.json:
        print(json.dumps(doctor.to_dicts(checks), indent=2))
    else:
        console.print(doctor.format_table(checks), highlight=False)
        console.print(format_needs(list(designs.values())), highlight=False, soft_wrap=True)
    return EXIT_ERRORS if doctor.has_errors(checks) else 0


def format_needs(designs: list[Design]) -> str:
    """What the designs' runtimes need from this machine (io_uring, memlock, kernel): one line
    per distinct check with what it saw and who needs it, then the fix of each unmet one."""
    lines = ["", "what the designs' runtimes need from this machine:"]
    for need in machine_needs(designs):
        r = need.result
        lines.append(f"  {r.status.value:<8} {r.need:<9} {r.seen}  (for {', '.join(need.designs)})")
        if r.status is NeedStatus.PROBLEM:
            lines.append(f"           {r.problem}; fix: {r.fix or 'see the runtime docs'}")
    return "\n".join(lines)


def run_remote(args: argparse.Namespace, console: Console) -> int:
    """`harness doctor --host HOST`: the same checks, on that host over SSH, plus its platform."""
    from harness.checks import remote_host
    from harness.checks.remote_doctor import run_remote_checks
    from harness.errors import HarnessError
    from harness.plan.hosts import SshOptions, parse_host
    from harness.run import remote

    host = parse_host(args.host)
    if host.is_local:
        raise HarnessError("--host local is this machine: run `harness doctor` without --host")
    for path, flag in ((args.ssh_key, "--ssh-key"), (args.known_hosts, "--known-hosts")):
        if path is not None and not Path(path).is_file():
            raise HarnessError(f"{flag} {path} is not a file; give an existing file")
    options = SshOptions(
        known_hosts=Path(args.known_hosts) if args.known_hosts else None,
        client_keys=(Path(args.ssh_key),) if args.ssh_key else (),
    )
    conn = remote.connect(host, options)
    try:
        checks = run_remote_checks(conn)
        info = remote_host.platform_of(conn)
    finally:
        conn.close()
    if args.json:
        print(json.dumps({"host": str(host), "platform": info,
                          "checks": doctor.to_dicts(checks)}, indent=2))  # fmt: skip
    else:
        console.print(f"{host}: {info['cpu_model']}, {info['kernel']}, {info['machine']}, "
                      f"CPUs {info['cpu_affinity']}", highlight=False)  # fmt: skip
        console.print(doctor.format_table(checks), highlight=False)
    return EXIT_ERRORS if doctor.has_errors(checks) else 0
