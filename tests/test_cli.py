"""Bad input: one clear line on stderr and exit code 2, before anything runs."""

from __future__ import annotations

import pytest
from conftest import build_sysfs
from helpers import one_error_line, run_harness


@pytest.mark.parametrize("value", ["0", "1,0", "-1", "x"])
def test_bad_cores(value):
    line = one_error_line(run_harness("run", "--cores", value, "--dry-run"))
    assert "--cores" in line


def test_too_many_cores_names_the_fix(tmp_path):
    two = build_sysfs(tmp_path / "cpu", [(0, 0, 0, 0), (1, 0, 1, 0)])
    line = one_error_line(
        run_harness("run", "--cores", "4,16", "--dry-run", env={"HARNESS_SYSFS_CPU": str(two)})
    )
    assert "--cores 16 needs 17 CPUs" in line and "has 2 CPUs" in line
    assert "--oversubscribe" in line and "--cores 1" in line


def test_oversubscribe_plans_and_marks(tmp_path):
    two = build_sysfs(tmp_path / "cpu", [(0, 0, 0, 0), (1, 0, 1, 0)])
    proc = run_harness(
        "run",
        "--servers",
        "tokio-ws,tokio-tpc",
        "--cores",
        "4",
        "--repeat",
        "1",
        "--oversubscribe",
        "--dry-run",
        env={"HARNESS_SYSFS_CPU": str(two)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("OVERSUBSCRIBED") == 2


def test_unknown_server():
    line = one_error_line(run_harness("run", "--servers", "tokio-ws,nope", "--dry-run"))
    assert "'nope'" in line and "tokio-ws" in line


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = one_error_line(run_harness("run", "--cores", "1", "--out", str(blocker / "results")))
    assert "--out" in line and "writable" in line


def test_report_on_non_results_dir(tmp_path):
    line = one_error_line(run_harness("report", str(tmp_path)))
    assert "manifest.json" in line


def test_unknown_flag():
    line = one_error_line(run_harness("run", "--frobnicate"))
    assert "--frobnicate" in line


def test_default_plan_is_interleaved():
    proc = run_harness("run", "--dry-run", "--cores", "1")
    assert proc.returncode == 0, proc.stderr
    servers = [
        line.split("-echo-")[0].split("-", 1)[1]
        for line in proc.stdout.splitlines()
        if "-echo-" in line
    ]
    # Every default design once per repetition, in the same order each time (A B C A B C ...);
    # the defaults are the monoio chain, tokio-ws and tokio-tpc among them.
    first = list(dict.fromkeys(servers))
    assert {"tokio-ws", "tokio-tpc"} <= set(first)
    assert servers[: 2 * len(first)] == first + first


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--profile", "nope"], "unknown profile 'nope'"),
        (["--mode", "open"], "--rates"),
        (["--rates", "1000"], "--mode open"),
        (["--work", "gauss:3"], "--work 'gauss:3'"),
        (["--hot-fraction", "0.2"], "--hot-share"),
        (["--protocols", "smtp"], "unknown protocol"),
        (["--arrival", "burst", "--mode", "open", "--rates", "10"], "--arrival"),
    ],
)
def test_bad_run_options(args, needle):
    line = one_error_line(run_harness("run", "--dry-run", *args))
    assert needle in line


def test_plan_file_and_profiles(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('servers = ["tokio-ws"]\ncores = [1]\nrepeat = 2\nduration = 1\n')
    proc = run_harness("run", "--dry-run", "--plan", str(plan))
    assert proc.returncode == 0, proc.stderr
    assert "2 trials" in proc.stdout
    # The command line wins over the file.
    proc = run_harness("run", "--dry-run", "--plan", str(plan), "--repeat", "3")
    assert "3 trials" in proc.stdout
    plan.write_text("bogus = 1\n")
    assert "unknown option(s) bogus" in one_error_line(
        run_harness("run", "--dry-run", "--plan", str(plan))
    )
    for profile in ("quick", "ci", "full"):
        proc = run_harness("run", "--dry-run", "--profile", profile)
        assert proc.returncode == 0, (profile, proc.stderr)


def test_doctor_runs():
    proc = run_harness("doctor", "--json")
    assert proc.returncode in (0, 2), proc.stderr
    import json

    checks = json.loads(proc.stdout)
    names = {c["name"] for c in checks}
    assert {"aslr", "io_uring", "fd_limit", "designs_built"} <= names
