"""A design started for the conformance checks: the run stage's one server start (its own
process group, READY, SIGTERM), plus what the checks need beside it: the design's tolerances
from the registry and its worker processes as they were at start."""

from __future__ import annotations

import contextlib
import os
import resource
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.checks.conformance.proctree import _alive, _process_workers, parse_cpus, process_tree
from harness.plan.designs import Design
from harness.run import procs
from harness.run import server as run_server
from harness.run.server import SHUTDOWN_LIMIT_S, ServerStartError, Stopped

HOST = run_server.HOST

__all__ = ["SHUTDOWN_LIMIT_S", "RunningServer", "ServerStartError", "Stopped", "start_server"]


@dataclass(frozen=True)
class Tolerance:
    """What a design may do differently, from the `conformance` table of its registry entry:

    conformance = { http_response = "semantic", header_limit = "line" }

    http_response  "exact" (default): bench-core's response byte for byte, but for Date's value;
                   "semantic": status 200, body, Content-Length 13, Content-Type text/plain...,
                   Server and Date present (a server with its own header set).
    header_limit   "section" (default): a request line + header section over 8 KiB gets a 400;
                   "line": only a single header line over 8 KiB does (nginx and aiohttp limit
                   each line, not the section).
    oversized_status, malformed_status: the status codes accepted for those requests
                   (default [400]; e.g. 431 for a server that uses it).
    """

    http_response: str = "exact"
    header_limit: str = "section"
    oversized_status: tuple[int, ...] = (400,)
    malformed_status: tuple[int, ...] = (400,)


def tolerance(design: Design) -> Tolerance:
    table = design.conformance
    t = Tolerance()
    return Tolerance(
        http_response=table.get("http_response", t.http_response),
        header_limit=table.get("header_limit", t.header_limit),
        oversized_status=tuple(table.get("oversized_status", t.oversized_status)),
        malformed_status=tuple(table.get("malformed_status", t.malformed_status)),
    )


@dataclass
class RunningServer:
    """A started design (run.server.Server) with what the checks judge it by."""

    server: run_server.Server
    tolerance: Tolerance
    cpus: tuple[int, ...]  # worker i -> cpus[i]
    workers_at_start: tuple[int, ...] = ()

    # design, protocol, host, port, proc, log, stopped, pid, log_tail and stop are the started
    # server's own (run.server.Server).
    def __getattr__(self, name: str) -> Any:
        if name == "server":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.server, name)

    def processes(self) -> list[int]:
        return process_tree(self.pid)

    def dead(self) -> str | None:
        """Why the server is no longer whole (process gone, a worker process gone), or None."""
        code = self.proc.poll()
        if code is not None:
            tail = self.log_tail()
            return f"server exited with code {code}" + (f": {tail}" if tail else "")
        gone = [p for p in self.workers_at_start if not _alive(p)]
        if gone:
            return f"worker processes {gone} died"
        return None


def raise_nofile_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: 1,000 connections need 1,000 descriptors in the
    client, and as many in a server started afterwards (it inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@contextlib.contextmanager
def start_server(
    design: Design,
    protocol: str,
    threads: int,
    cpus: str | Sequence[int],
    bin_dir: Path,
    *,
    host: str = HOST,
    port: int | None = None,
) -> Iterator[RunningServer]:
    """Starts `design` with `threads` workers on `cpus` and yields it once ready; on exit the
    whole process group is killed. Raises ServerStartError (with the reason) if it cannot."""
    why = design.missing(bin_dir)
    if why is not None:
        raise ServerStartError(why, "missing")
    if protocol not in design.protocols:
        raise ServerStartError(f"the registry does not list {protocol} for {design.name}", "config")
    cpu_list = parse_cpus(cpus)
    if len(cpu_list) < threads:
        raise ServerStartError(f"{threads} workers need {threads} CPUs, got {cpu_list}", "config")
    raise_nofile_limit()
    fd, log_name = tempfile.mkstemp(prefix=f"conformance-{design.name}-", suffix=".log")
    os.close(fd)
    log = Path(log_name)
    try:
        started = _start_on_free_port(design, protocol, threads, cpu_list, bin_dir, host, port, log)
        try:
            server = RunningServer(started, tolerance(design), cpu_list[:threads])
            if _process_workers(server.pid):
                server.workers_at_start = tuple(_process_workers(server.pid))
            yield server
        finally:
            started.kill()
    finally:
        log.unlink(missing_ok=True)


def _start_on_free_port(
    design: Design,
    protocol: str,
    threads: int,
    cpu_list: list[int],
    bin_dir: Path,
    host: str,
    port: int | None,
    log: Path,
) -> run_server.Server:
    """The server started on `port`, or on a picked free port; a picked port taken before the
    server bound it (EADDRINUSE in its log) is retried on a fresh one, as a trial does."""
    attempts = 1 if port else run_server.PORT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        chosen = port or procs.free_port(host)
        argv = design.argv(
            bin_dir=bin_dir,
            protocol=protocol,
            host=host,
            port=chosen,
            threads=threads,
            cpus=",".join(map(str, cpu_list)),
        )
        try:
            return run_server.start(
                design,
                argv,
                protocol=protocol,
                cpus=tuple(cpu_list),
                port=chosen,
                log=log,
                host=host,
            )
        except ServerStartError as exc:
            if exc.kind == "exited" and procs.address_in_use(log) and attempt < attempts:
                continue
            raise
    raise AssertionError("unreachable: the last attempt returns or raises")
