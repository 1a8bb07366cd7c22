"""Conformance: does a running server follow docs/server-contract.md? One suite for every design
in the registry, used by tests/test_conformance.py and, through `quick_check`, by `harness run`
as a preflight (a design that does different work than the others cannot be compared).

Every check talks to a server at (host, port) over loopback, some also look at its processes in
/proc; each returns a CheckResult (pass, fail or skip, with the reason) instead of raising, and
each is bounded in time (CHECK_TIMEOUT_S, and IO_TIMEOUT_S per exchange).

- `start_server(design, protocol, threads, cpus, bin_dir)`: a context manager that starts a
  registry design in its own process group (pinned with taskset when the design does not pin
  itself), waits for READY (or for the port to accept, for ready = "port"), and kills the whole
  group on exit, whatever happens.
- `run_check(name, server)`: one check of CHECKS; `check_shutdown(server)`: SIGTERM, then the
  "shutdown" (exit 0 within 2 s, nothing but the counters line on stdout) and "counters" (they
  equal what the client counted) results. It stops the server, so it wants a fresh one.
- `quick_check(design, protocol, bin_dir, cpus)`: the preflight, about 1-2 s per design.

HTTP responses are checked byte for byte (but for Date's value) against bench-core's response
for the designs written here, and for meaning (status, body, Content-Length, Content-Type
text/plain, Server and Date present) for servers with their own header set (aiohttp, nginx).
Which one applies, and other per-design limits, comes from the design's `conformance` table in
servers/registry.toml (see `Tolerance`).

How workers are found (pinning, liveness): threads or processes of the server's process tree
whose name (/proc/.../comm) starts with "worker" (the Rust designs name their threads so, the
Python designs their forked processes `worker<i>`); failing that, the child processes of the
server's main process (nginx's worker processes, forked by its master).
"""

from harness.checks.conformance.client import response_problem
from harness.checks.conformance.server import (
    RunningServer,
    ServerStartError,
    Stopped,
    Tolerance,
    raise_nofile_limit,
    start_server,
    tolerance,
)
from harness.checks.conformance.suite import (
    CHECK_TIMEOUT_S,
    CHECKS,
    QUICK,
    Check,
    CheckResult,
    check_shutdown,
    checks_for,
    quick_check,
    run_check,
)

__all__ = [
    "CHECKS",
    "CHECK_TIMEOUT_S",
    "QUICK",
    "Check",
    "CheckResult",
    "RunningServer",
    "ServerStartError",
    "Stopped",
    "Tolerance",
    "check_shutdown",
    "checks_for",
    "quick_check",
    "raise_nofile_limit",
    "response_problem",
    "run_check",
    "start_server",
    "tolerance",
]
