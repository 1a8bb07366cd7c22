"""The run session's pure steps (harness/session/run.py) and the trial settings declared once
(harness/plan/settings.py): no server is started."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest
from rich.console import Console

from harness.analysis.analyse import ConfigSummary
from harness.analysis.labels import CONFIG_KEYS
from harness.checks.doctor import CheckResult, Status
from harness.errors import EXIT_INTERRUPTED, EXIT_TRIALS_FAILED, HarnessError
from harness.plan import settings
from harness.plan.designs import DEFAULT_BIN_DIR, DEFAULT_REGISTRY, load_registry
from harness.plan.plan import TrialSpec
from harness.report.exports import SUMMARY_COLUMNS
from harness.session import run as session
from harness.store.schema import TRIALS

DESIGNS = load_registry(DEFAULT_REGISTRY)


def _console() -> Console:
    return Console(record=True, width=200, force_terminal=False)


def _request(**options: object) -> session.RunRequest:
    args = argparse.Namespace(servers=None, profile=None, **options)
    return session.RunRequest(args, DEFAULT_REGISTRY, DEFAULT_BIN_DIR, Path("results"))


def test_explicit_designs_are_named_ones_without_a_profile() -> None:
    assert not _request().explicit
    named = session.RunRequest(
        argparse.Namespace(servers="tokio-ws", profile=None), DEFAULT_REGISTRY, Path(), Path()
    )
    assert named.explicit
    profiled = dataclasses.replace(
        named, options=argparse.Namespace(servers="tokio-ws", profile="quick")
    )
    assert not profiled.explicit
    assert not dataclasses.replace(
        named, options=argparse.Namespace(servers="all", profile=None)
    ).explicit


def _any_config(servers: tuple[str, ...]):
    from harness.plan.plan import RunConfig

    return RunConfig(
        servers=servers, protocols=("echo",), cores=(1,), connections=(4,), sizes=(64,),
        duration_s=1.0, warmup_s=0.5, repeat=1, client_cpus=1, seed=None, oversubscribe=False,
    )  # fmt: skip


def test_without_servers_leaves_out_only_the_named() -> None:
    names = tuple(sorted(DESIGNS))[:3]
    config = _any_config(names)
    kept = session.without_servers(config, {names[1]: "refused"})
    assert kept.servers == (names[0], names[2])
    assert dataclasses.replace(kept, servers=names) == config
    assert session.without_servers(config, {}) == config


def _outcome(interrupted: bool = False, failed: tuple[str, ...] = ()) -> SimpleNamespace:
    results = [SimpleNamespace(spec=SimpleNamespace(trial_id=t)) for t in ("a", "b", "c")]
    return SimpleNamespace(
        interrupted=interrupted,
        failed=[r for r in results if r.spec.trial_id in failed],
        results=results,
        directory=Path("results/RUN"),
    )


def test_exit_code_says_what_happened() -> None:
    console = _console()
    assert session.exit_code(_outcome(), console) == 0
    assert session.exit_code(_outcome(failed=("b", "c")), console) == EXIT_TRIALS_FAILED
    assert "2 of 3 trials failed: b, c" in console.export_text()
    console = _console()
    assert session.exit_code(_outcome(interrupted=True, failed=("a",)), console) == EXIT_INTERRUPTED
    assert "harness run --resume results/RUN" in console.export_text()


def _check(status: Status, name: str = "fd limit") -> CheckResult:
    return CheckResult(name=name, status=status, value="1024", explanation="why", fix="ulimit -n")


def test_a_failed_platform_check_stops_the_run_a_warning_does_not() -> None:
    console = _console()
    session.stop_on_failed_checks([_check(Status.OK), _check(Status.WARNING, "turbo")], console)
    assert "warning: turbo: 1024 (ulimit -n)" in console.export_text()
    with pytest.raises(
        HarnessError, match=r"platform check failed \(fd limit: 1024\); fix: ulimit"
    ):
        session.stop_on_failed_checks([_check(Status.ERROR)], _console())


def test_trial_settings_are_declared_once() -> None:
    workload = [f.name for f in dataclasses.fields(settings.Workload)]
    assert list(settings.SETTING_NAMES) == workload
    # The plan's spec and the analysis's summary carry them; tables, keys and exports are built
    # from them.
    for cls in (TrialSpec, ConfigSummary):
        assert issubclass(cls, settings.Workload)
        assert workload == [f.name for f in dataclasses.fields(cls)][: len(workload)]
    assert [*workload, "load"] == CONFIG_KEYS
    assert list(SUMMARY_COLUMNS[5 : 5 + len(CONFIG_KEYS)]) == CONFIG_KEYS
    for s in settings.SETTINGS:
        assert TRIALS.field(s.name).type == pa.type_for_alias(s.column)
        assert s.label


def test_a_stored_row_reads_back_as_its_settings_with_defaults_for_old_runs() -> None:
    row = {"protocol": "echo", "server_cores": 2.0, "connections": 8, "size_bytes": 64}
    assert settings.workload_of({**row, "pipeline": float("nan"), "mode": None}) == {
        "protocol": "echo",
        "server_cores": 2,
        "connections": 8,
        "size_bytes": 64,
        "pipeline": 1,
        "work": "none",
        "requests_per_connection": None,
        "mode": "closed",
    }
    assert (
        settings.workload_of({**row, "requests_per_connection": 4.0})["requests_per_connection"]
        == 4
    )
