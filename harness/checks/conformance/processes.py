"""The checks on the server's processes: pinning of its workers and no descriptor leak."""

from __future__ import annotations

import asyncio
import time

from harness.checks.conformance.client import (
    CheckFailed,
    _close,
    _connect,
    _io,
    _payload,
    _read_response,
    _request,
)
from harness.checks.conformance.proctree import _tasks, fd_count, worker_affinities
from harness.checks.conformance.server import RunningServer


async def pinning(server: RunningServer) -> str:
    """Each worker is pinned to its CPU (pins_itself), or the whole process tree is confined to
    the CPUs (pinned by the harness with taskset)."""
    if not server.design.pins_itself:
        wrong = [
            (tid, sorted(allowed))
            for p in server.processes()
            for tid, _, allowed in _tasks(p)
            if allowed != set(server.cpus)
        ]
        if wrong:
            raise CheckFailed(f"threads not confined to {list(server.cpus)}: {wrong[:4]}")
        return f"whole process on {list(server.cpus)} (taskset)"
    how, workers = worker_affinities(server.pid)
    got = sorted(sorted(allowed) for _, allowed in workers)
    expected = sorted([cpu] for cpu in server.cpus)
    if got != expected:
        raise CheckFailed(f"workers ({how}) allowed on {got}, expected {expected}")
    return f"{len(workers)} workers ({how}) on {list(server.cpus)}"


async def no_fd_leak(server: RunningServer, connections: int = 50) -> str:
    """Descriptors of the process tree return to the baseline once clients close."""

    async def settled() -> int:
        last = fd_count(server.pid)
        for _ in range(20):
            await asyncio.sleep(0.05)
            now = fd_count(server.pid)
            if now == last:
                return now
            last = now
        return last

    baseline = await settled()
    conns = [await _connect(server) for _ in range(connections)]
    try:
        for i, (reader, writer) in enumerate(conns):
            if server.protocol == "http":
                writer.write(_request(server.host))
                await _read_response(reader)
            else:
                writer.write(_payload(16, i))
                await _io(reader.readexactly(16), "for an echo")
        peak = fd_count(server.pid)
    finally:
        await asyncio.gather(*(_close(w) for _, w in conns))
    if peak - baseline < connections // 2:
        raise CheckFailed(
            f"{connections} open connections show as {peak - baseline} more descriptors: "
            "the server's connections are not visible in /proc/<pid>/fd of its process tree"
        )
    deadline = time.monotonic() + 3.0
    now = fd_count(server.pid)
    while now > baseline and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        now = fd_count(server.pid)
    if now > baseline:
        raise CheckFailed(
            f"{now} descriptors 3 s after {connections} clients closed, {baseline} before"
        )
    return f"{baseline} -> {peak} -> {now} descriptors"
