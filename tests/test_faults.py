"""Faults lose nothing and explain themselves (issue 12): each scenario a hostile user can
cause, against the real servers and load generator on 127.0.0.1, asserting the trials stored
against those planned, the failed trial's status and reason, the exit code, that no process
group is left behind, and that the run directory still reads back with `harness report`."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import require_binaries
from faults_support import (
    FAST,
    TWO,
    Harness,
    Watch,
    assert_reportable,
    design_entry,
    manifest_of,
    one_error_line,
    proc_stat,
    registry_with,
    run_harness,
    trials_of,
)
from helpers import only_run

from harness.cli import main
from harness.store.repair import same_tables


def out_args(tmp: Path) -> list[str]:
    return ["--out", str(tmp / "results"), "--reports", str(tmp / "reports")]


@pytest.fixture(scope="module")
def stored_run(real_run) -> Path:
    """One real two-trial run (the session's), copied by each test that damages it."""
    assert real_run.proc.returncode == 0, real_run.proc.stdout + real_run.proc.stderr
    return only_run(real_run.out)


def copy_run(run: Path, tmp: Path) -> Path:
    dest = tmp / "results" / run.name
    shutil.copytree(run, dest)
    return dest


# 1. Results directory unwritable mid-run, and a full disk.


def test_unwritable_directory_mid_run_keeps_the_trial_in_raw_and_repairs(tmp_path):
    require_binaries("loadgen", "epoll-tpc", "tokio-tpc")
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run the harness as nobody (root ignores modes)")
    base = Path(tempfile.mkdtemp(prefix="faults-", dir="/tmp"))
    try:
        base.chmod(0o777)
        env = {"HOME": str(base), "MPLCONFIGDIR": str(base / "mpl")}
        nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        h = Harness("run", *FAST, *TWO, "--no-preflight", *out_args(base), user=nobody, env=env)
        h.wait_line(lambda ln: ln.startswith("[2/2]"))  # trial 1 is stored
        run = only_run(base / "results")
        run.chmod(0o555)  # the tables can no longer be replaced; raw/ still can
        code, _, err = h.finish()
        run.chmod(0o755)
        assert code == 3, err
        line = one_error_line(err)
        second = manifest_of(run)["plan"]["trials"][1]["trial_id"]
        assert "could not store results" in line and "Permission denied" in line
        assert f"trial(s) {second} exist only as raw files" in line
        assert f"harness repair {run}" in line
        assert len(trials_of(run)) == 1  # on disk: the first trial only
        assert (run / "raw" / f"{second}.trial.json").is_file()
        code, out, err = run_harness("repair", str(run))
        assert code == 0, err
        assert "1 trial(s) recovered, 2 stored" in out
        trials = trials_of(run)
        assert len(trials) == 2 and (trials["status"] == "ok").all()
        outcome = manifest_of(run)["outcome"]
        assert outcome["result"].startswith("failed to store: could not store results")
        assert outcome["trials_stored"] == 2 and outcome["trials_planned"] == 2
        assert_reportable(run, base / "report.html")
    finally:
        with contextlib.suppress(OSError):
            for p in base.rglob("*"):
                if p.is_dir():
                    p.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    with contextlib.suppress(OSError), open(directory / "filler2", "wb") as f:
        while True:  # the last pages too
            f.write(b"\0" * 4096)
            f.flush()
    return filler


def test_full_disk_mid_run_stops_with_exit_3_and_resume_finishes(tmp_path):
    require_binaries("loadgen", "epoll-tpc", "tokio-tpc")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        args = ["--out", str(disk / "results"), "--reports", str(tmp_path / "reports")]
        h = Harness("run", *FAST, *TWO, "--no-preflight", *args)
        h.wait_line(lambda ln: ln.startswith("[2/2]"))
        filler = _fill(disk)
        code, _, err = h.finish()
        assert code == 3, err
        line = one_error_line(err)
        assert "could not store results" in line and "No space left on device" in line
        run = only_run(disk / "results")
        assert "--resume" in line and str(run) in line
        assert len(trials_of(run)) == 1
        filler.unlink()
        (disk / "filler2").unlink()
        code, out, err = run_harness("run", "--resume", str(run), "--reports", str(tmp_path / "r"))
        assert code == 0, out + err
        trials = trials_of(run)
        assert len(trials) == 2 and (trials["status"] == "ok").all()
        outcome = manifest_of(run)["outcome"]
        assert outcome["result"] == "complete" and outcome["trials_stored"] == 2
        assert_reportable(run, tmp_path / "report.html")
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


# 2. Damaged runs: repair, --resume, report and compare.


def test_rebuild_from_raw_gives_the_same_tables(stored_run, tmp_path):
    run = copy_run(stored_run, tmp_path)
    (run / "trials.parquet").unlink()
    code, out, err = run_harness("report", str(run), "-o", str(tmp_path / "x.html"))
    assert code == 2 and "trials.parquet is damaged (missing)" in one_error_line(err)
    code, out, err = run_harness("repair", str(run))
    assert code == 0, err
    assert "2 trial(s) recovered, 2 stored" in out
    assert same_tables(stored_run, run)
    code, out, _ = run_harness("repair", str(run))
    assert code == 0 and "nothing to rebuild" in out
    assert_reportable(run, tmp_path / "report.html")


def test_truncated_parquet_and_garbage_manifest_are_one_line_and_resume_rebuilds(
    stored_run, tmp_path
):
    run = copy_run(stored_run, tmp_path)
    other = copy_run(stored_run, tmp_path / "b")
    data = (run / "trials.parquet").read_bytes()
    (run / "trials.parquet").write_bytes(data[: len(data) // 2])
    for cmd in (["report", str(run)], ["compare", str(other), str(run)]):
        code, _, err = run_harness(*cmd)
        line = one_error_line(err)
        assert code == 2 and f"{run}/trials.parquet is damaged" in line
        assert f"harness repair {run}" in line
    (run / "manifest.json").write_text("{garbage")
    code, _, err = run_harness("report", str(run))
    assert code == 2 and f"{run}/manifest.json is damaged" in one_error_line(err)
    code, out, err = run_harness("run", "--resume", str(run), "--reports", str(tmp_path / "r"))
    assert code == 0, out + err
    assert "manifest.json was damaged or stale: restored from raw/manifest.json" in out
    assert "2 trial(s) recovered, 2 stored" in out and "0 of 2 trials left" in out
    assert same_tables(stored_run, run)
    assert manifest_of(run)["outcome"]["result"] == "complete"
    # A run without raw/ copies cannot be repaired: one line saying so, no traceback.
    (run / "manifest.json").write_text("{garbage")
    (run / "raw" / "manifest.json").unlink()
    code, _, err = run_harness("run", "--resume", str(run))
    assert code == 2 and "raw/ holds no readable copy" in one_error_line(err)
    assert_reportable(other, tmp_path / "report.html")


# 3. and the seven that behaved: processes killed, never ready, Ctrl-C.


def test_load_generator_killed_names_the_signal(tmp_path):
    require_binaries("loadgen", "tokio-tpc")
    args = ["run", *FAST, "--duration", "3", "--servers", "tokio-tpc", "--no-preflight"]
    h = Harness(*args, *out_args(tmp_path))
    pid = h.wait_descendant("loadgen")
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    code, out, err = h.finish()
    assert code == 1, out + err
    run = only_run(tmp_path / "results")
    trial = trials_of(run).iloc[0]
    assert trial["status"] == "failed"
    assert trial["reason"].startswith("load generator killed by signal 9 (SIGKILL): ")
    assert "invalid JSON" not in trial["reason"] and not trial["reason"].endswith(": ")
    assert manifest_of(run)["outcome"]["trials_stored"] == 1
    assert_reportable(run, tmp_path / "report.html")


def test_server_killed_mid_trial_names_the_signal(tmp_path):
    require_binaries("loadgen", "epoll-tpc", "tokio-tpc")
    h = Harness("run", *FAST, *TWO, "--duration", "2", "--no-preflight", *out_args(tmp_path))
    h.wait_descendant("loadgen")
    time.sleep(0.3)
    os.kill(h.wait_descendant("epoll-tpc"), signal.SIGKILL)
    code, out, err = h.finish()
    assert code == 1, out + err
    run = only_run(tmp_path / "results")
    trials = trials_of(run).set_index("server")
    assert len(trials) == 2 and trials.loc["tokio-tpc", "status"] == "ok"
    reason = trials.loc["epoll-tpc", "reason"]
    assert reason.startswith("server killed by signal 9 (SIGKILL) during the trial: "), reason
    assert_reportable(run, tmp_path / "report.html")


def test_server_dying_with_an_empty_log_says_so(tmp_path):
    """A server that exits before READY fails its trial, stored with the exit code and the
    end of its log, or that its log is empty; the run goes on (exit 1, the failures named).
    (test_e2e's failed-trial test, merged here: its design `broken` is one more trial.)"""
    require_binaries("loadgen", "tokio-tpc")
    broken = "/bin/sh -c 'echo cannot bind >&2; exit 3' --port {port}"
    mute = "/bin/sh -c 'exit 3' --port {port}"
    registry = registry_with(tmp_path, design_entry("broken", broken) + design_entry("mute", mute))
    args = ["run", *FAST, "--servers", "broken,mute,tokio-tpc", "--no-preflight"]
    code, out, err = run_harness(*args, "--registry", str(registry), *out_args(tmp_path))
    assert code == 1, out + err
    assert "2 of 3 trials failed" in out and "broken" in out and "mute" in out, out
    run = only_run(tmp_path / "results")
    trials = trials_of(run).set_index("server")
    assert trials.loc["broken", "status"] == "failed"
    reason = trials.loc["broken", "reason"]
    assert "exited with code 3" in reason and "cannot bind" in reason, reason
    assert trials.loc["mute", "status"] == "failed"
    reason = trials.loc["mute", "reason"]
    assert reason.startswith("server exited with code 3 before it was ready: ")
    assert reason.endswith(".server.log is empty") and trials.loc["tokio-tpc", "status"] == "ok"
    assert_reportable(run, tmp_path / "report.html")


def _in_process(argv: list[str]) -> int:
    """`harness ...` in this process (to patch its ports or timeouts), watched for children."""
    watch = Watch(os.getpid())
    try:
        return main(argv)
    finally:
        watch.stop()
        watch.assert_none_left()


def test_never_ready_server_fails_its_trial_with_its_log(tmp_path, monkeypatch):
    require_binaries("loadgen", "tokio-tpc")
    monkeypatch.setattr("harness.run.server.READY_TIMEOUT_S", 1.0)
    cmd = "/bin/sh -c 'echo warming up >&2; exec sleep 30' --port {port}"
    registry = registry_with(tmp_path, design_entry("sleepy", cmd))
    args = ["run", *FAST, "--servers", "sleepy,tokio-tpc", "--no-preflight"]
    code = _in_process([*args, "--registry", str(registry), *out_args(tmp_path)])
    assert code == 1
    run = only_run(tmp_path / "results")
    trials = trials_of(run).set_index("server")
    assert trials.loc["sleepy", "reason"] == "server not ready after 1 s: warming up"
    assert trials.loc["tokio-tpc", "status"] == "ok"
    assert_reportable(run, tmp_path / "report.html")


def _squatter(port: int | None, reuseport: bool) -> tuple[subprocess.Popen, int]:
    """Another process listening on a port (with SO_REUSEPORT if asked); its port."""
    code = (
        "import socket,sys,time\n"
        "s=socket.socket()\n"
        f"s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, {int(reuseport)})\n"
        f"s.bind(('127.0.0.1', {port or 0})); s.listen()\n"
        "print(s.getsockname()[1], flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)


def test_port_taken_before_the_server_binds_is_retried_and_recorded(tmp_path, monkeypatch):
    require_binaries("loadgen", "tokio-tpc")
    squatter, taken = _squatter(None, reuseport=False)
    from harness.run import procs

    real = procs.free_port
    picks = iter([taken])
    monkeypatch.setattr(procs, "free_port", lambda host="127.0.0.1": next(picks, None) or real())
    try:
        code = _in_process(
            ["run", *FAST, "--servers", "tokio-tpc", "--no-preflight", *out_args(tmp_path)]
        )
    finally:
        _kill(squatter)
    assert code == 0
    run = only_run(tmp_path / "results")
    trial = trials_of(run).iloc[0]
    assert trial["status"] == "ok" and trial["port_attempts"] == 2 and trial["port"] != taken
    assert manifest_of(run)["outcome"]["trials_stored"] == 1
    assert_reportable(run, tmp_path / "report.html")


def test_conformance_preflight_retries_a_port_taken_before_the_server_binds(monkeypatch):
    require_binaries("tokio-tpc")
    from conftest import BIN_DIR

    from harness.checks import conformance
    from harness.plan.designs import load_registry
    from harness.run import procs

    squatter, taken = _squatter(None, reuseport=False)
    real = procs.free_port
    picks = iter([taken])
    monkeypatch.setattr(procs, "free_port", lambda host="127.0.0.1": next(picks, None) or real())
    design = load_registry()["tokio-tpc"]
    try:
        with conformance.start_server(design, "echo", 1, [0], BIN_DIR) as server:
            assert server.port != taken
            assert server.dead() is None
    finally:
        _kill(squatter)
    assert server.proc.poll() is not None  # stopped with its context


def test_a_foreign_reuseport_listener_fails_the_trial_naming_it(tmp_path, monkeypatch):
    require_binaries("loadgen", "tokio-tpc", "epoll-tpc")
    squatter, port = _squatter(None, reuseport=True)
    from harness.run import procs

    real = procs.free_port
    picks = iter([port])  # the first trial's server shares its port with the squatter
    monkeypatch.setattr(procs, "free_port", lambda host="127.0.0.1": next(picks, None) or real())
    try:
        code = _in_process(["run", *FAST, *TWO, "--no-preflight", *out_args(tmp_path)])
    finally:
        _kill(squatter)
    assert code == 1
    run = only_run(tmp_path / "results")
    trials = trials_of(run)
    assert len(trials) == 2
    first, second = trials.iloc[0], trials.iloc[1]
    assert first["status"] == "failed" and first["port"] == port
    assert f"port {port} is also listened on by pid {squatter.pid} (python" in first["reason"]
    assert second["status"] == "ok"
    assert_reportable(run, tmp_path / "report.html")


def test_a_reuseport_listener_arriving_after_the_server_fails_the_trial_naming_it(
    tmp_path, monkeypatch
):
    """The squatter binds the port once the server is ready (just before the load generator
    starts): the check after the load finds it, and the trial fails naming it. (The squatter is
    stopped as soon as it was found, so that the run leaves no process behind.)"""
    require_binaries("loadgen", "tokio-tpc", "epoll-tpc")
    from harness.run import procs, trial

    squatters: list[tuple[subprocess.Popen, int]] = []
    real_spawn, real_foreign = procs.spawn, procs.foreign_listeners

    def spawn_after_a_squatter(argv, **kw):
        if not squatters and Path(argv[0]).name == "loadgen":
            squatters.append(_squatter(int(argv[argv.index("--port") + 1]), reuseport=True))
        return real_spawn(argv, **kw)

    def found_then_stopped(port, tree, **kw):
        found = real_foreign(port, tree, **kw)
        if found and squatters:
            _kill(squatters[0][0])
        return found

    monkeypatch.setattr(trial.procs, "spawn", spawn_after_a_squatter)
    monkeypatch.setattr(trial.procs, "foreign_listeners", found_then_stopped)
    try:
        code = _in_process(["run", *FAST, *TWO, "--no-preflight", *out_args(tmp_path)])
    finally:
        for squatter, _ in squatters:
            _kill(squatter)
    assert code == 1 and len(squatters) == 1
    squatter, port = squatters[0]
    first, second = trials_of(only_run(tmp_path / "results")).iloc[:2].itertuples()
    assert first.status == "failed" and first.port == port
    assert f"port {port} is also listened on by pid {squatter.pid} (python" in first.reason
    assert second.status == "ok"


def test_ctrl_c_then_resume(tmp_path):
    """Ctrl-C mid-trial: exit 130, no process left behind (every process group the run started
    is gone: its server and load generator), the interrupted trial stored as such; --resume
    runs the rest from the stored plan. (test_e2e's Ctrl-C test, merged here: the same run.)"""
    require_binaries("loadgen", "epoll-tpc", "tokio-tpc")
    h = Harness("run", *FAST, *TWO, "--duration", "3", "--no-preflight", *out_args(tmp_path))
    # The first trial runs (its server: epoll-tpc, the plan's order without --seed).
    kids = [h.wait_descendant("loadgen"), h.wait_descendant("epoll-tpc")]
    time.sleep(0.5)
    os.kill(h.proc.pid, signal.SIGINT)
    code, out, err = h.finish(timeout=30)  # and checks that no process group is left
    assert code == 130, out + err
    assert not [k for k in kids if (st := proc_stat(k)) is not None and st[0] != "Z"], kids
    run = only_run(tmp_path / "results")
    trials = trials_of(run)
    assert len(trials) == 1 and trials.iloc[0]["reason"] == "interrupted by the user"
    assert manifest_of(run)["outcome"]["result"] == "interrupted"
    code, out, err = run_harness("run", "--resume", str(run), "--reports", str(tmp_path / "r"))
    assert code == 0, out + err
    trials = trials_of(run)
    assert sorted(trials["server"]) == ["epoll-tpc", "tokio-tpc"]
    assert len(trials) == 2 and (trials["status"] == "ok").all()
    assert manifest_of(run)["outcome"]["result"] == "complete"
    assert_reportable(run, tmp_path / "report.html")


WRONG = """
import asyncio, sys
port, mode = int(sys.argv[sys.argv.index('--port') + 1]), sys.argv[1]
async def serve(reader, writer):
    while data := await reader.read(65536):
        if mode == 'http':
            writer.write(b'HTTP/1.1 500 Internal Server Error\\r\\ncontent-length: 0\\r\\n\\r\\n')
        else:
            writer.write(bytes(b ^ 1 for b in data))
        await writer.drain()
async def main():
    server = await asyncio.start_server(serve, '127.0.0.1', port, reuse_port=True)
    print('READY', flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


@pytest.mark.parametrize("mode", ["echo", "http"])
def test_wrong_bytes_and_http_500_are_refused_before_measuring(tmp_path, mode):
    require_binaries("loadgen", "tokio-tpc")
    script = tmp_path / "wrong.py"
    script.write_text(WRONG)
    cmd = f"{sys.executable} {script} {mode} --port {{port}}"
    entry = design_entry("wrong", cmd, protocols=f'["{mode}"]')
    registry = registry_with(tmp_path, entry)
    args = ["run", *FAST, "--servers", "wrong,tokio-tpc", "--protocols", mode]
    code, out, err = run_harness(*args, "--registry", str(registry), *out_args(tmp_path))
    assert code == 2, out + err
    assert "design wrong failed conformance" in one_error_line(err)
    results = tmp_path / "results"
    assert not results.exists() or not any(results.iterdir())  # planned 2, stored none


# 4. Values that passed validation, and bad plans.


@pytest.mark.parametrize(
    "flags",
    [
        ["--duration", "nan"],
        ["--duration", "inf"],
        ["--warmup", "nan"],
        ["--timeout", "-1"],
        ["--seed", "-1"],
        ["--seed", str(2**64)],
        ["--mode", "open", "--rates", "inf"],
        ["--mode", "open", "--rate-sweep", "nan"],
        ["--work", "fixed:nan"],
        ["--hot-fraction", "nan", "--hot-share", "0.5"],
        ["--connections", "-1"],
    ],
)
def test_bad_numbers_are_refused(flags, tmp_path):
    args = ["run", "--cores", "1", "--dry-run", *out_args(tmp_path)]
    if "--mode" not in flags:
        args += ["--mode", "closed"]
    code = main([*args, *flags])
    assert code == 2


def test_bad_numbers_in_plan_files_and_manifests_are_refused(stored_run, tmp_path, capsys):
    plan = tmp_path / "plan.toml"
    plan.write_text("duration = nan\n")
    assert main(["run", "--mode", "closed", "--plan", str(plan), "--dry-run"]) == 2
    assert "--duration must be a finite number, got nan" in capsys.readouterr().err
    plan.write_text("duration = [1\n")
    assert main(["run", "--plan", str(plan), "--dry-run"]) == 2
    assert "is not valid TOML" in capsys.readouterr().err
    run = copy_run(stored_run, tmp_path)
    manifest = manifest_of(run)
    manifest["plan"]["trials"][0]["timeout_s"] = -1.0
    manifest["plan"]["config"]["seed"] = -5
    text = json.dumps(manifest)
    (run / "manifest.json").write_text(text)
    (run / "raw" / "manifest.json").write_text(text)
    assert main(["run", "--plan", str(run / "manifest.json"), "--dry-run"]) == 2
    assert "--seed must be an integer in 0..2^64-1" in capsys.readouterr().err
    assert main(["run", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "manifest.json is damaged" in err and "seed must be an integer" in err
    assert main(["report", str(run)]) == 2


def test_an_os_error_is_one_line_naming_the_path(stored_run, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    code, _, err = run_harness("report", str(stored_run), "-o", str(blocker / "r" / "index.html"))
    line = one_error_line(err)
    assert code == 2 and str(blocker) in line and "Not a directory" in line
