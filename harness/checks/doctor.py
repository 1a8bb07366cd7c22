"""Platform checks before a run: is this machine fit to produce numbers people can trust?

Like pyperf's `system show`, the checks are a list of small objects, each reading one thing from
/proc or /sys (or probing one capability) and saying what it saw, whether that is a problem, and
the command that fixes it. The results go into the run's manifest (`to_dicts`) beside the
platform metadata, so a surprising result can be traced to a powersave governor or a crowded
TIME_WAIT table months later.

Every path is under `Context.proc` / `Context.sys` and every probe that is not a file read
(io_uring_setup, `perf stat`, getrlimit) is an injectable callable, so tests run the checks on
fake trees. Nothing here raises on an odd machine: a file that is absent means "not exposed"
(INFO), and any other failure of a check becomes a WARNING that carries the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from harness.checks import network_checks as net
from harness.checks import system_checks as system
from harness.checks.machine import (
    FD_LIMIT_WARN,
    LOAD_WARN_FRACTION,
    MEM_AVAILABLE_WARN_BYTES,
    PORT_RANGE_WARN,
    TIME_WAIT_WARN,
    CheckResult,
    CommandOutcome,
    Context,
    Finding,
    Status,
    probe_io_uring,
    run_perf_stat,
)

__all__ = [
    "CHECKS",
    "FD_LIMIT_WARN",
    "LOAD_WARN_FRACTION",
    "MEM_AVAILABLE_WARN_BYTES",
    "PORT_RANGE_WARN",
    "TIME_WAIT_WARN",
    "Check",
    "CheckResult",
    "CommandOutcome",
    "Context",
    "Status",
    "format_table",
    "has_errors",
    "probe_io_uring",
    "run_checks",
    "run_perf_stat",
    "to_dicts",
]


@dataclass(frozen=True)
class Check:
    """One platform check: a name and the function that inspects the machine."""

    name: str
    inspect: Callable[[Context], Finding]

    def run(self, ctx: Context) -> CheckResult:
        """The check's result; never raises (a failing check is a WARNING with the reason)."""
        try:
            f = self.inspect(ctx)
        except Exception as exc:  # an odd machine must not stop the other checks or the run
            return CheckResult(
                self.name,
                Status.WARNING,
                "unknown",
                f"the check could not run: {type(exc).__name__}: {exc}",
                "",
            )
        return CheckResult(self.name, f.status, f.value, f.explanation, f.fix)


CHECKS: tuple[Check, ...] = (
    Check("cpu_governor", system.check_governor),
    Check("turbo", system.check_turbo),
    Check("isolated_cpus", system.check_isolated),
    Check("nohz_full", system.check_nohz_full),
    Check("aslr", system.check_aslr),
    Check("smt", system.check_smt),
    Check("client_idle", system.check_client_idle),
    Check("load_average", system.check_load),
    Check("memory", system.check_memory),
    Check("io_uring", system.check_io_uring),
    Check("perf_counters", system.check_perf),
    Check("designs_built", system.check_designs),
    Check("loopback_mtu", net.check_loopback_mtu),
    Check("fd_limit", net.check_fd_limit),
    Check("ephemeral_ports", net.check_port_range),
    Check("time_wait", net.check_time_wait),
    Check("somaxconn", net.check_somaxconn),
)


# ---------------------------------------------------------------------------------------------
# Running and presenting


def run_checks(ctx: Context | None = None, checks: Sequence[Check] = CHECKS) -> list[CheckResult]:
    """One result per check, in order; never raises."""
    ctx = ctx if ctx is not None else Context()
    return [check.run(ctx) for check in checks]


def has_errors(results: Sequence[CheckResult]) -> bool:
    """Whether any check says the run cannot work as planned."""
    return any(r.status is Status.ERROR for r in results)


def to_dicts(results: Sequence[CheckResult]) -> list[dict[str, str]]:
    """Plain JSON-ready dicts for the manifest."""
    return [{k: str(v) for k, v in asdict(r).items()} for r in results]


_VALUE_WIDTH = 44


def format_table(results: Sequence[CheckResult]) -> str:
    """A plain-text table (status, check, value, fix), then the why of every warning/error."""
    rows = [("STATUS", "CHECK", "VALUE", "FIX")]
    for r in results:
        value = r.value if len(r.value) <= _VALUE_WIDTH else r.value[: _VALUE_WIDTH - 3] + "..."
        rows.append((r.status.value, r.name, value, r.fix))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    ]
    problems = [r for r in results if r.status in (Status.WARNING, Status.ERROR)]
    if problems:
        lines.append("")
        lines.extend(f"{r.status.value}: {r.name}: {r.explanation}" for r in problems)
    return "\n".join(line.rstrip() for line in lines)
