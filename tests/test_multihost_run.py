"""`harness run` across hosts, end to end (issue 10; docs/multi-host.md): a server host and two
client hosts, each a network namespace running sshd (tests/netns.py), driven by the real
`harness run` command over SSH.

Checked: the merged histogram is the sum of the hosts' histograms, the per-host rates add up to
the target within 1%, per-host rows are stored, clock offsets are recorded; then killing every
process of one client host mid-trial (a host crash) fails that trial naming the host, the run
goes on, and nothing of the harness is left in any namespace. Needs root (skips otherwise), the
release build of loadgen and epoll-tpc; 2 to 4 minutes on the 2-CPU VM (seven short runs, each
with its report; a run's set-up over SSH, 4-20 s, costs more than its trial).

One run is shared (`interrupted_run`, module scope): interrupted by Ctrl-C then finished with
--resume, it is what the Ctrl-C test checks and the run the merge test reads (on a copy). Every
other test needs its own run: another layout of hosts, or a host stopped or killed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netns  # the fixture module beside this file

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / "target" / "release"
HARNESS = REPO / ".venv" / "bin" / "harness"
RATE = 2000.0
RUN_LIMIT_S = 180.0

pytestmark = pytest.mark.skipif(
    not (BIN / "loadgen").is_file() or not (BIN / "epoll-tpc").is_file(),
    reason="needs the release build: cargo build --release -p loadgen -p server-designs",
)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[netns.TestNetwork]:
    with netns.network_or_skip(tmp_path_factory.mktemp("net"), 3) as network:
        yield network
    assert not network.notes, network.notes


def _argv(net: netns.TestNetwork, out: Path, *extra: str) -> list[str]:
    server, *clients = (h.spec for h in net.hosts[:3])
    return [
        str(HARNESS), "run", "--server-host", server,
        *(arg for c in clients for arg in ("--client-host", c)),
        "--ssh-key", str(net.client_key), "--known-hosts", str(net.known_hosts),
        "--servers", "epoll-tpc", "--protocols", "echo", "--cores", "1", "--client-cpus", "1",
        "--connections", "8", "--mode", "open", "--rates", f"{RATE:g}", "--arrival", "uniform",
        "--warmup", "0.5", "--no-preflight", "--bin-dir", str(BIN),
        "--out", str(out / "results"), "--reports", str(out / "reports"), *extra,
    ]  # fmt: skip


@contextlib.contextmanager
def _harness(argv: list[str], tmp: Path) -> Iterator[subprocess.Popen[str]]:
    """The harness in its own process group, killed whatever happens."""
    env = {**os.environ, "HARNESS_REMOTE_DIR": str(tmp / "remote-bin")}
    proc = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _run_dir(out: Path) -> Path:
    (run,) = [p.parent for p in (out / "results").glob("*/manifest.json")]
    return run


def _leftovers(net: netns.TestNetwork) -> dict[str, list[str]]:
    """Processes other than sshd in each namespace."""
    left = {}
    for h in net.hosts:
        names = []
        for pid in h.pids_besides_sshd():
            with contextlib.suppress(OSError):
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                if comm != "sshd":
                    names.append(f"{pid}:{comm}")
        if names:
            left[h.ns] = names
    return left


def _wait_no_leftovers(net: netns.TestNetwork, timeout_s: float = 10.0) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout_s
    while (left := _leftovers(net)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@dataclasses.dataclass(frozen=True)
class InterruptedRun:
    """A three-host run stopped by Ctrl-C mid-trial, then finished with --resume: what each of
    the two commands left behind."""

    root: Path  # --out/--reports of the run: results/ and reports/ under it
    interrupted: tuple[int | None, str]  # exit code and output of the run Ctrl-C stopped
    left_after_interrupt: dict[str, list[str]]
    reasons_after_interrupt: list[str]
    resumed: tuple[int | None, str]  # exit code and output of --resume
    left_after_resume: dict[str, list[str]]


@pytest.fixture(scope="module")
def interrupted_run(
    net: netns.TestNetwork, tmp_path_factory: pytest.TempPathFactory
) -> InterruptedRun:
    """Once for the module (one multi-host run costs 10-20 s here): `harness run` across the
    three hosts, Ctrl-C once a load generator runs, then `--resume`. Its tests only read it;
    the one that repairs a table works on a copy."""
    root = tmp_path_factory.mktemp("interrupted")
    with _harness(_argv(net, root, "--duration", "3", "--repeat", "1"), root) as proc:
        deadline = time.monotonic() + RUN_LIMIT_S
        while not any(n.endswith(":loadgen") for n in _leftovers(net).get(net.hosts[1].ns, [])):
            assert proc.poll() is None and time.monotonic() < deadline, "no load generator ran"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        interrupted = proc.communicate(timeout=RUN_LIMIT_S)[0]
    left = _wait_no_leftovers(net)
    run = _run_dir(root)
    reasons = list(pd.read_parquet(run / "trials.parquet")["reason"])
    # --resume reconnects to the hosts from the stored plan and runs the trial again.
    with _harness([str(HARNESS), "run", "--resume", str(run)], root) as resume:
        resumed = resume.communicate(timeout=RUN_LIMIT_S)[0]
    return InterruptedRun(
        root, (proc.returncode, interrupted), left, reasons, (resume.returncode, resumed),
        _wait_no_leftovers(net),
    )  # fmt: skip


def test_a_run_across_three_hosts_merges_by_adding_counts(
    net: netns.TestNetwork, interrupted_run: InterruptedRun, tmp_path: Path
) -> None:
    """The three-host run (the module's, finished by --resume): hosts, clocks, per-host rows
    and their sum."""
    code, output = interrupted_run.resumed
    assert code == 0, output
    shared = _run_dir(interrupted_run.root)
    run = tmp_path / "results" / shared.name  # a copy: its latency table is deleted below
    shutil.copytree(shared, run)
    server, c1, c2 = (h.spec for h in net.hosts)
    manifest = json.loads((run / "manifest.json").read_text())
    hosts = manifest["hosts"]
    assert hosts["layout"]["server_host"] == server
    assert hosts["layout"]["client_hosts"] == [c1, c2]
    for h in (server, c1, c2):
        off = hosts["clock_offsets"][h]
        assert off["rounds"] >= 8 and off["uncertainty_ns"] > 0
        assert abs(off["offset_ns"]) <= off["uncertainty_ns"]  # one machine: the true offset is 0
        assert hosts["platforms"][h]["route"]["dev"] == "eth0"
    assert {r["source"] for r in hosts["idle_rtt"]} == {c1, c2}
    assert all(r["received"] > 0 for r in hosts["idle_rtt"])
    assert set(hosts["doctor"]) == {server, c1, c2}
    placed = {(b["host"], b["program"]): b for b in hosts["binaries"]}
    assert set(placed) == {(c1, "loadgen"), (c2, "loadgen"), (server, "epoll-tpc")}
    for b in placed.values():  # by checksum, where HARNESS_REMOTE_DIR says (one file system)
        assert b["path"].startswith(str(interrupted_run.root / "remote-bin") + "/")
        assert b["source"] in ("copied", "present") and len(b["sha256"]) == 64

    trials = pd.read_parquet(run / "trials.parquet")
    (t,) = trials.itertuples()
    assert t.status == "ok", t.reason
    assert (t.server_host, t.client_hosts) == (server, f"{c1},{c2}")
    # The server's settings line, read over SSH before READY as on one machine.
    assert t.settings_profile == "authors" and "epoll" in t.server_settings
    # The server's threads, sampled from its host's /proc over the window; the contended flag
    # judged on its CPUs.
    threads = pd.read_parquet(run / "threads.parquet")
    assert set(threads["role"]) == {"server"} and len(threads) >= 1
    assert t.server_cpu_s is not None and t.server_cpu_s > 0
    assert t.contended is not None
    # Per-host rows, and the trial's histogram is their sum.
    latency = pd.read_parquet(run / "latency.parquet")
    primary = latency[latency["kind"] == "primary"]
    assert set(primary["client_host"]) == {c1, c2}
    merged = json.loads((run / "raw" / f"{t.trial_id}.loadgen.json").read_text())
    summed = primary.groupby(["lower_ns", "upper_ns"])["count"].sum()
    assert {(b["lower_ns"], b["upper_ns"]): b["count"] for b in merged["histogram"]["buckets"]} == (
        summed.to_dict()
    )
    per_host = {}
    for h in (c1, c2):
        tag = h.replace("@", "_")
        per_host[h] = json.loads((run / "raw" / f"{t.trial_id}.{tag}.loadgen.json").read_text())
        mine = primary[primary["client_host"] == h]
        assert mine["count"].sum() == sum(b["count"] for b in per_host[h]["histogram"]["buckets"])
        assert (run / "raw" / f"{t.trial_id}.{tag}.hlog").is_file()
    series = pd.read_parquet(run / "timeseries.parquet")
    assert set(series["client_host"]) == {c1, c2}
    # The target is shared by client CPUs (1 each): half each; the achieved per-host rates
    # over the common window add up to the target within 1%.
    assert [per_host[h]["summary"]["target_rate"] for h in (c1, c2)] == [RATE / 2, RATE / 2]
    rates = merged["hosts"]["per_host"]
    assert sum(r["rate_rps"] for r in rates.values()) == pytest.approx(RATE, rel=0.01)
    assert t.throughput_rps == pytest.approx(RATE, rel=0.01)
    assert t.requests == sum(d["summary"]["requests"] for d in per_host.values())
    # Both started at the common instant (their windows line up within the clocks' bounds).
    starts = [rates[h]["window_start_ns"] for h in (c1, c2)]
    bound = sum(hosts["clock_offsets"][h]["uncertainty_ns"] for h in (c1, c2))
    assert abs(starts[0] - starts[1]) <= bound + 50_000_000  # + the start's own scheduling
    # harness repair rebuilds the per-host rows from raw/ (a lost latency table).
    (run / "latency.parquet").unlink()
    with _harness([str(HARNESS), "repair", str(run)], tmp_path) as proc:
        output, _ = proc.communicate(timeout=RUN_LIMIT_S)
    assert proc.returncode == 0, output
    rebuilt = pd.read_parquet(run / "latency.parquet")
    pd.testing.assert_frame_equal(rebuilt.astype(str), latency.astype(str))
    # The report draws the idle round trip as the floor of the latency chart.
    (report,) = (interrupted_run.root / "reports").glob("*/index.html")
    assert "idle network round trip between the client hosts and the server host" in (
        report.read_text()
    )
    assert _wait_no_leftovers(net) == {}


def test_server_on_a_host_load_from_this_machine(net: netns.TestNetwork, tmp_path: Path) -> None:
    """`local` beside an SSH destination: the default client host is this machine."""
    server = net.hosts[0].spec
    argv = [a for a in _argv(net, tmp_path, "--duration", "2", "--repeat", "1")]
    cut = argv.index("--client-host")
    del argv[cut : cut + 4]  # both --client-host options
    with _harness(argv, tmp_path) as proc:
        output, _ = proc.communicate(timeout=RUN_LIMIT_S)
    assert proc.returncode == 0, output
    run = _run_dir(tmp_path)
    hosts = json.loads((run / "manifest.json").read_text())["hosts"]
    assert hosts["layout"]["client_hosts"] == ["local"]
    assert hosts["clock_offsets"]["local"]["offset_ns"] == 0
    assert [r["source"] for r in hosts["idle_rtt"]] == ["local"]
    (t,) = pd.read_parquet(run / "trials.parquet").itertuples()
    assert t.status == "ok", t.reason
    assert (t.server_host, t.client_hosts) == (server, "local")
    assert t.throughput_rps == pytest.approx(RATE, rel=0.01)
    assert set(pd.read_parquet(run / "latency.parquet")["client_host"]) == {"local"}
    assert _wait_no_leftovers(net) == {}


def test_server_on_this_machine_load_from_two_hosts(net: netns.TestNetwork, tmp_path: Path) -> None:
    c1, c2 = net.hosts[1].spec, net.hosts[2].spec
    argv = _argv(net, tmp_path, "--duration", "2", "--repeat", "1")
    argv[argv.index("--server-host") + 1] = "local"
    with _harness(argv, tmp_path) as proc:
        output, _ = proc.communicate(timeout=RUN_LIMIT_S)
    assert proc.returncode == 0, output
    run = _run_dir(tmp_path)
    hosts = json.loads((run / "manifest.json").read_text())["hosts"]
    (t,) = pd.read_parquet(run / "trials.parquet").itertuples()
    assert t.status == "ok", t.reason
    assert (t.server_host, t.client_hosts) == ("local", f"{c1},{c2}")
    # The server listened on this machine's address towards the hosts (the bridge's).
    shares = json.loads((run / "raw" / f"{t.trial_id}.hosts.json").read_text())
    assert shares["server"]["addr"] == net.gateway
    assert {r["to"] for r in hosts["idle_rtt"]} == {net.gateway}
    assert t.throughput_rps == pytest.approx(RATE, rel=0.01)
    assert _wait_no_leftovers(net) == {}


def test_dry_run_plans_on_the_hosts_topologies(net: netns.TestNetwork, tmp_path: Path) -> None:
    argv = _argv(net, tmp_path, "--duration", "2", "--repeat", "1", "--dry-run")
    with _harness(argv, tmp_path) as proc:
        output, _ = proc.communicate(timeout=RUN_LIMIT_S)
    assert proc.returncode == 0, output
    assert "server cpus [1] client cpus [0, 0]" in output  # CPU 0 on each client host
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
    assert _wait_no_leftovers(net) == {}


def test_doctor_checks_a_host(net: netns.TestNetwork, tmp_path: Path) -> None:
    h = net.hosts[1]
    argv = [str(HARNESS), "doctor", "--host", h.spec, "--ssh-key", str(net.client_key),
            "--known-hosts", str(net.known_hosts), "--json"]  # fmt: skip
    with _harness(argv, tmp_path) as proc:
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode in (0, 2), output
    doc = json.loads(output)
    assert doc["host"] == h.spec
    names = {c["name"] for c in doc["checks"]}
    assert {"cpu_governor", "aslr", "fd_limit", "loopback_mtu", "load_average"} <= names
    assert "designs_built" not in names
    assert doc["platform"]["cpu_affinity"] == sorted(os.sched_getaffinity(0))
    with _harness([*argv[:3], "root@198.18.255.254", *argv[4:]], tmp_path) as proc:
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert output.startswith("harness: error: root@198.18.255.254: cannot connect over SSH")
    assert output.count("\n") == 1


def test_a_design_that_cannot_be_copied_is_refused_in_one_line(
    net: netns.TestNetwork, tmp_path: Path
) -> None:
    argv = _argv(net, tmp_path, "--duration", "2", "--repeat", "1")
    argv[argv.index("--servers") + 1] = "py-asyncio-tpc"
    with _harness(argv, tmp_path) as proc:
        output, _ = proc.communicate(timeout=RUN_LIMIT_S)
    assert proc.returncode == 2, output
    (line,) = [ln for ln in output.splitlines() if ln.startswith("harness: error:")]
    assert f"{net.hosts[0].spec}: design py-asyncio-tpc runs" in line
    assert "cannot be copied to the server host" in line
    assert _wait_no_leftovers(net) == {}


def test_ctrl_c_mid_trial_ends_every_remote_process(interrupted_run: InterruptedRun) -> None:
    """Ctrl-C mid-trial (the module's run): exit 130, nothing left on any host, the trial
    stored as interrupted; --resume runs it again from the stored plan."""
    code, output = interrupted_run.interrupted
    assert code == 130, output
    assert interrupted_run.left_after_interrupt == {}
    assert interrupted_run.reasons_after_interrupt == ["interrupted by the user"]
    code, output = interrupted_run.resumed
    assert code == 0, output
    trials = pd.read_parquet(_run_dir(interrupted_run.root) / "trials.parquet")
    assert list(trials["status"]) == ["ok"], list(trials["reason"])
    assert interrupted_run.left_after_resume == {}


def test_a_hung_client_host_fails_its_trial_naming_the_host(
    net: netns.TestNetwork, tmp_path: Path
) -> None:
    """Every process of the host stopped (SIGSTOP, sshd too): the SSH keepalives notice, the
    trial fails naming the host; once the host runs again, the leash ends what was left."""
    hung = net.hosts[1]
    scratch_before = set(Path("/tmp").glob("executor-bench.*"))
    argv = _argv(net, tmp_path, "--duration", "4", "--repeat", "1")
    stopped: list[int] = []
    try:
        with _harness(argv, tmp_path) as proc:
            deadline = time.monotonic() + RUN_LIMIT_S
            while not any(n.endswith(":loadgen") for n in _leftovers(net).get(hung.ns, [])):
                assert proc.poll() is None and time.monotonic() < deadline, "no load generator"
                time.sleep(0.1)
            for pid in hung.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
            output, _ = proc.communicate(timeout=RUN_LIMIT_S)
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    assert proc.returncode == 1, output
    (reason,) = pd.read_parquet(_run_dir(tmp_path) / "trials.parquet")["reason"]
    assert hung.spec in reason and "\n" not in reason, reason
    assert _wait_no_leftovers(net, timeout_s=20) == {}
    _remove_unreachable_scratch(scratch_before)


def _remove_unreachable_scratch(before: set[Path]) -> None:
    """A host the harness could not reach at the end keeps its scratch directory (the hosts
    share this machine's /tmp here): at most that one is left, and the test removes it."""
    left = set(Path("/tmp").glob("executor-bench.*")) - before
    assert len(left) <= 1, left
    for d in left:
        shutil.rmtree(d)


def _until_loadgen_runs(net: netns.TestNetwork, ns: str, proc: subprocess.Popen[str]) -> None:
    """Until a load generator runs in namespace `ns` (the harness still running)."""
    deadline = time.monotonic() + RUN_LIMIT_S
    while not any(n.endswith(":loadgen") for n in _leftovers(net).get(ns, [])):
        assert proc.poll() is None and time.monotonic() < deadline, "no load generator ran"
        time.sleep(0.1)


def test_a_client_host_crash_fails_its_trial_naming_the_host(
    net: netns.TestNetwork, tmp_path: Path
) -> None:
    """Runs last: it kills the third host's sshd too."""
    crashed = net.hosts[2]
    scratch_before = set(Path("/tmp").glob("executor-bench.*"))
    argv = _argv(net, tmp_path, "--duration", "4", "--repeat", "2")
    with _harness(argv, tmp_path) as proc:
        _until_loadgen_runs(net, crashed.ns, proc)
        time.sleep(1.0)  # mid-trial
        crashed.kill_everything()
        output, _ = proc.communicate(timeout=RUN_LIMIT_S)
    assert proc.returncode == 1, output  # trials failed, the run finished
    trials = pd.read_parquet(_run_dir(tmp_path) / "trials.parquet")
    assert list(trials["status"]) == ["failed", "failed"]
    for reason in trials["reason"]:
        assert crashed.spec in reason, reason
        assert "\n" not in reason
    assert crashed.spec in output
    assert _wait_no_leftovers(net) == {}
    _remove_unreachable_scratch(scratch_before)


def test_a_server_host_crash_fails_its_trial_naming_the_host(tmp_path: Path) -> None:
    """On a network of its own (the crash takes that host's sshd down too)."""
    (tmp_path / "net").mkdir()
    with netns.network_or_skip(tmp_path / "net", 2) as net:
        server, client = net.hosts
        argv = _argv(net, tmp_path, "--duration", "4", "--repeat", "1")
        with _harness(argv, tmp_path) as proc:
            _until_loadgen_runs(net, client.ns, proc)
            server.kill_everything()
            output, _ = proc.communicate(timeout=RUN_LIMIT_S)
        assert proc.returncode == 1, output
        (reason,) = pd.read_parquet(_run_dir(tmp_path) / "trials.parquet")["reason"]
        # Lost with its connection, or (when the kill reached the server before sshd) its exit
        # status came back first: either way the server's host is named.
        assert reason.startswith(
            (f"server host {server.spec} failed during the trial", f"server on {server.spec} died")
        ), reason
        assert _wait_no_leftovers(net) == {}
    assert not net.notes, net.notes
