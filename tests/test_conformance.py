"""Every design of servers/registry.toml, for every protocol it lists, against the server
contract (docs/server-contract.md) through harness.conformance.

Per design x protocol: one server (1 worker, pinned to CPU 1 when this process may use it) runs
every traffic check in turn; fresh servers check SIGTERM (shutdown, counters) and pinning with 2
workers on CPUs 0,1. A design that is not built or installed here is skipped with the reason
(Design.missing); so is one whose binary exits 2 at start-up for a protocol the registry lists
(it does not speak it yet), unless CONFORMANCE_STRICT=1, which makes that a failure.

BENCH_BIN_DIR overrides where the Rust binaries are looked for (default target/release).
Every check is bounded (harness.conformance.CHECK_TIMEOUT_S) and every server's process group
is killed when its fixture ends.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from harness.checks import conformance
from harness.checks.conformance.client import IO_TIMEOUT_S
from harness.plan.designs import DEFAULT_BIN_DIR, Design, load_registry

BIN_DIR = Path(os.environ.get("BENCH_BIN_DIR", DEFAULT_BIN_DIR))
STRICT = os.environ.get("CONFORMANCE_STRICT") == "1"
REGISTRY = load_registry()
CASES = [(d, p) for d in REGISTRY.values() for p in d.protocols]
ALLOWED = sorted(os.sched_getaffinity(0))
ONE_CPU = [1] if 1 in ALLOWED else ALLOWED[:1]
TWO_CPUS = [0, 1] if {0, 1} <= set(ALLOWED) else ALLOWED[:2]

conformance.raise_nofile_limit()


def case_id(case: tuple[Design, str]) -> str:
    return f"{case[0].name}-{case[1]}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """test_check runs per (design x protocol, check); the server fixture is per design x
    protocol (module scope), so all checks of one case share one server."""
    if metafunc.function.__name__ == "test_check":
        pairs = [(case, name) for case in CASES for name in conformance.checks_for(case[1])]
        metafunc.parametrize(
            ("case", "check"),
            pairs,
            indirect=["case"],
            scope="module",
            ids=[f"{case_id(c)}-{n}" for c, n in pairs],
        )
    elif "case" in metafunc.fixturenames:
        metafunc.parametrize("case", CASES, indirect=True, scope="module", ids=case_id)


@pytest.fixture(scope="module")
def case(request) -> tuple[Design, str]:
    return request.param


@contextlib.contextmanager
def running(case: tuple[Design, str], cpus: list[int]):
    """A started server, or a skip/failure that says why there is none."""
    design, protocol = case
    try:
        with conformance.start_server(design, protocol, len(cpus), cpus, BIN_DIR) as server:
            yield server
    except conformance.ServerStartError as exc:
        if exc.missing:
            pytest.skip(f"{design.name}: {exc.reason}")
        if exc.refused and not STRICT:
            pytest.skip(f"not implemented yet? {exc.reason}")
        pytest.fail(f"{design.name} --protocol {protocol} did not start: {exc.reason}")


@pytest.fixture(scope="module")
def server(case):
    with running(case, ONE_CPU) as server:
        yield server


def report(result: conformance.CheckResult) -> None:
    if result.status == "skip":
        pytest.skip(result.reason)
    assert result.status == "pass", f"{result.name}: {result.reason}"


def test_check(server, check):
    report(conformance.run_check(check, server))


def test_sigterm_exits_cleanly(case):
    with running(case, ONE_CPU) as server:
        shutdown, _ = conformance.check_shutdown(server)
    report(shutdown)


def test_counters_match_the_client(case):
    design, _ = case
    if not design.counters:
        pytest.skip(f"{design.name} prints no counters (registry: counters = false)")
    with running(case, ONE_CPU) as server:
        _, counters = conformance.check_shutdown(server)
    report(counters)


def test_two_workers_are_pinned(case):
    if len(TWO_CPUS) < 2:
        pytest.skip(f"needs 2 CPUs, this process may use {ALLOWED}")
    with running(case, TWO_CPUS) as server:
        report(conformance.run_check("pinning", server))


def test_quick_check_passes_for_a_python_design():
    """The preflight API as `harness run` calls it (one CPU as a string)."""
    results = conformance.quick_check(REGISTRY["py-asyncio-tpc"], "http", BIN_DIR, str(ONE_CPU[0]))
    assert [r.name for r in results] == [
        "http_response",
        "http_pipelining",
        "http_connection_close",
        "http_malformed",
        "shutdown",
        "counters",
    ]
    assert all(r.passed for r in results), [str(r) for r in results]
    # What "quick" means, not a wall-clock total of a noisy machine: no exchange waited out its
    # timeout (nothing blocked); the shutdown check itself fails a server slower than the
    # contract's 2 s, so its pass above is that bound.
    exchanges = [r for r in results if r.name != "shutdown"]
    assert all(r.seconds < IO_TIMEOUT_S for r in exchanges), [(r.name, r.seconds) for r in results]


def test_quick_check_reports_a_server_that_cannot_start(tmp_path):
    design = REGISTRY["tokio-ws"]
    results = conformance.quick_check(design, "echo", tmp_path, "0")
    assert [(r.name, r.passed) for r in results] == [("start", False)]
    assert "not built" in results[0].reason
