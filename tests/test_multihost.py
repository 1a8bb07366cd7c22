"""Several hosts over SSH: the building blocks, for real, over a network of namespaces.

The pure parts (host specs, clock arithmetic, merging, parsers) run everywhere. The rest needs
root: tests/netns.py builds namespaces joined by a bridge, each running sshd, and every remote
call here goes over SSH to one of them. Every call has a timeout; the fixture tears the network
down on every outcome.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.analysis import histogram
from harness.checks import remote_host as hostinfo
from harness.errors import HarnessError
from harness.plan.topology import read_topology, restrict
from harness.run import clock, placement, remote
from harness.run import host_merge as merge
from harness.run.hosts import Host, parse_host

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netns  # the fixture module beside this file

REPO = Path(__file__).resolve().parent.parent
LOADGEN = REPO / "target" / "release" / "loadgen"
WAIT_S = 10.0


# ---------------------------------------------------------------------------------------------
# Pure parts


@pytest.mark.parametrize(
    ("spec", "host"),
    [
        ("local", Host("local")),
        ("server-1", Host("server-1")),
        ("bench@10.0.0.2", Host("10.0.0.2", "bench")),
        ("bench@server-1:2222", Host("server-1", "bench", 2222)),
        ("root@[fd00::2]:2200", Host("fd00::2", "root", 2200)),
    ],
)
def test_host_specs_parse_and_print_back(spec: str, host: Host) -> None:
    assert parse_host(spec) == host
    assert str(host) == spec


@pytest.mark.parametrize("spec", ["", "bench@", "a b", "u@h:0", "u@h:70000", "local:22", "@h"])
def test_bad_host_spec_is_one_line_naming_it_and_the_fix(spec: str) -> None:
    with pytest.raises(HarnessError) as err:
        parse_host(spec)
    message = str(err.value)
    assert "\n" not in message
    assert repr(spec) in message
    assert "user@name[:port]" in message


def test_clock_keeps_the_round_with_the_smallest_round_trip() -> None:
    # Host clock 5 ms ahead; the second round is the fastest and symmetric.
    ahead = 5_000_000
    rounds = [
        clock.ClockRound(0, 0 + 900_000 + ahead, 1_000_000, 1),  # slow, asymmetric
        clock.ClockRound(2_000_000, 2_000_050 + ahead, 2_000_100, 1),  # fast
        clock.ClockRound(3_000_000, 3_000_100 + ahead, 3_000_400, 1),
    ]
    off = clock.offset_from_rounds("h", rounds)
    assert off.rtt_ns == 100
    assert off.offset_ns == ahead
    assert off.uncertainty_ns >= 50
    assert off.to_host(10) == 10 + ahead
    assert clock.start_times(1_000, {"h": off}) == {"h": 1_000 + ahead}
    # Whatever the asymmetry, the true offset is within the bound of the kept round.
    lopsided = clock.offset_from_rounds("h", [clock.ClockRound(0, 990 + ahead, 1_000, 1)])
    assert abs(lopsided.offset_ns - ahead) <= lopsided.uncertainty_ns


def test_clock_answers_parse() -> None:
    assert clock.parse_answer("us 1700000000.123456\n") == (1_700_000_000_123_456_000, 1000)
    assert clock.parse_answer("us 1700000000,5") == (1_700_000_000_500_000_000, 100_000_000)
    assert clock.parse_answer("ns 1700000000123456789") == (1_700_000_000_123_456_789, 1)
    with pytest.raises(ValueError):
        clock.parse_answer("ns 1700000000%N")


def test_merged_histogram_is_the_sum_of_counts_not_an_average_of_percentiles() -> None:
    fast = histogram.record([100] * 990 + [200] * 10)  # p99 100 ns
    slow = histogram.record([5_000] * 100)  # p99 about 5 us
    merged = merge.merge_histograms({"c1": fast, "c2": slow})
    assert histogram.total(merged) == 1_100
    counts = {(lo, hi): n for lo, hi, n in merged}
    for lo, hi, n in fast + slow:
        assert counts[(lo, hi)] == sum(c for a, b, c in fast + slow if (a, b) == (lo, hi))
        assert n > 0
    p99 = histogram.percentile_ns(merged, 99)
    averaged = (histogram.percentile_ns(fast, 99) + histogram.percentile_ns(slow, 99)) / 2
    assert p99 is not None and p99 >= 4_999  # 100 of 1100 requests took 5 us
    assert p99 != averaged


def test_buckets_of_reads_the_loadgen_histogram() -> None:
    doc = {"buckets": [{"lower_ns": 10, "upper_ns": 11, "count": 3}]}
    assert merge.buckets_of(doc) == [(10, 11, 3)]
    assert merge.buckets_of(None) == []


def test_rate_split_in_proportion_to_client_cpus() -> None:
    split = merge.split_rate(90_000, {"a": 2, "b": 1})
    assert split == {"a": 60_000, "b": 30_000}
    assert sum(split.values()) == pytest.approx(90_000)
    with pytest.raises(ValueError):
        merge.split_rate(1, {"a": 0})


def test_throughput_is_summed_over_the_common_window() -> None:
    s = 1_000_000_000
    a = merge.HostSeries("a", 0, s, (100, 100, 100, 100))  # 0..4 s
    b = merge.HostSeries("b", s, s, (50, 50, 50, 50))  # 1..5 s
    start, end = merge.common_window([a, b])
    assert (start, end) == (s, 4 * s)
    merged = merge.merge_throughput([a, b])
    assert merged.per_host_rps == {"a": 100.0, "b": 50.0}
    assert merged.per_host_covered_s == {"a": 3.0, "b": 3.0}
    assert merged.total_rps == 150.0
    with pytest.raises(ValueError, match="do not overlap"):
        merge.common_window([a, merge.HostSeries("c", 10 * s, s, (1,))])


def test_series_of_reads_a_loadgen_document() -> None:
    doc = {
        "config": {"interval_ms": 500},
        "series": [{"interval": 1, "requests": 7}, {"interval": 0, "requests": 5}],
    }
    series = merge.series_of("a", doc, 42)
    assert series == merge.HostSeries("a", 42, 500_000_000, (5, 7))


def test_parsers_of_host_facts() -> None:
    ping = (
        "--- 198.18.0.2 ping statistics ---\n"
        "10 packets transmitted, 10 received, 0% packet loss, time 1806ms\n"
        "rtt min/avg/max/mdev = 0.031/0.045/0.070/0.012 ms\n"
    )
    rtt = hostinfo.parse_ping(ping, "c", "198.18.0.2")
    assert (rtt.sent, rtt.received) == (10, 10)
    assert rtt.min_us == pytest.approx(31) and rtt.max_us == pytest.approx(70)
    with pytest.raises(ValueError, match="no ping reply"):
        hostinfo.parse_ping("3 packets transmitted, 0 received, 100% packet loss", "c", "x")
    route = "198.18.0.3 via 198.18.0.1 dev eth0 src 198.18.0.2 uid 0 \\    cache "
    assert hostinfo.parse_route_get(route) == ("eth0", "198.18.0.2", "198.18.0.1")
    assert hostinfo.cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"
    glibc = placement.parse_libc("ldd (Debian GLIBC 2.36-9+deb12u14) 2.36\nCopyright")
    assert glibc == placement.Libc("glibc", (2, 36))
    musl = placement.parse_libc("musl libc (x86_64)\nVersion 1.2.4\nDynamic Program Loader")
    assert musl == placement.Libc("musl", (1, 2, 4))


def test_binary_compatibility_rule() -> None:
    built = placement.Target("x86_64", placement.Libc("glibc", (2, 36)))
    same = placement.Target("x86_64", placement.Libc("glibc", (2, 38)))
    older = placement.Target("x86_64", placement.Libc("glibc", (2, 31)))
    arm = placement.Target("aarch64", placement.Libc("glibc", (2, 36)))
    musl = placement.Target("x86_64", placement.Libc("musl", (1, 2, 4)))
    assert placement.mismatch(built, same, static=False) is None
    assert placement.mismatch(built, older, static=False) == "its glibc is older"
    assert placement.mismatch(built, older, static=True) is None
    assert placement.mismatch(built, arm, static=True) == "architecture differs"
    assert placement.mismatch(built, musl, static=False) == "C library differs"
    assert placement.is_static(Path(sys.executable).resolve()) is False


def _leashed(argv: list[str]) -> subprocess.Popen[str]:
    """argv under the leash, run by this machine's sh with stdin held open (as sshd does)."""
    line = remote.leash_command(argv)
    return subprocess.Popen(
        ["sh", "-c", line],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_leash_reports_its_group_and_passes_the_exit_status() -> None:
    """The wrapper every remote command runs in, here under this machine's sh."""
    proc = _leashed(["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    try:
        first, *rest = proc.stdout.read().splitlines()  # end of output: the leash exited
        assert proc.wait(timeout=10) == 7
        assert first.startswith("pgid ") and int(first.split()[1]) > 1
        assert rest == ["out"]
        assert proc.stderr.read().strip() == "err"
    finally:
        proc.stdin.close()
        proc.kill()
        proc.wait(timeout=10)


def test_leash_kills_the_group_at_end_of_stdin() -> None:
    proc = _leashed(["sh", "-c", "sleep 65 & sleep 66; wait"])
    assert proc.stdout is not None and proc.stdin is not None
    try:
        pgid = int(proc.stdout.readline().split()[1])
        assert os.getpgid(pgid) == pgid
        proc.stdin.close()  # what the SSH channel does when the harness goes away
        assert proc.wait(timeout=10) == 128 + 9
        assert _until(lambda: not _group_alive(pgid))
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Over SSH, in namespaces


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[netns.TestNetwork]:
    with netns.network_or_skip(tmp_path_factory.mktemp("net"), 4) as network:
        try:
            yield network
        finally:
            remote.close_all()
    assert not network.notes, network.notes


@pytest.fixture(scope="module")
def conns(net: netns.TestNetwork) -> Iterator[list[remote.Connection]]:
    """One connection to each of the first three hosts (the fourth is crashed by a test)."""
    out = [remote.connect(h.spec, net.ssh_options()) for h in net.hosts[:3]]
    yield out
    for c in out:
        c.close()


def _foreign(h: netns.NsHost) -> list[str]:
    """Commands running in the namespace other than sshd's (what the harness left behind)."""
    out = []
    for pid in h.pids_besides_sshd():
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm != "sshd":
            out.append(f"{pid}:{comm}")
    return out


def _until(predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_bad_key_fails_naming_the_host(net: netns.TestNetwork, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    netns._write_key(stranger)
    options = netns.SshOptions(known_hosts=net.known_hosts, client_keys=(stranger,))
    with pytest.raises(remote.RemoteError) as err:
        remote.connect(net.hosts[0].spec, options)
    assert str(err.value).startswith(net.hosts[0].spec)
    assert "\n" not in str(err.value)


def test_command_runs_on_the_host(net: netns.TestNetwork, conns: list[remote.Connection]) -> None:
    for h, c in zip(net.hosts, conns, strict=False):
        done = c.run(["sh", "-c", "echo $((6 * 7)); ip -o -4 addr show dev eth0"])
        assert done.stdout.splitlines()[0] == "42"
        assert f"inet {h.addr}/" in done.stdout  # it ran inside that namespace
    failed = conns[0].run(["sh", "-c", "echo nope >&2; exit 3"], check=False)
    assert (failed.returncode, failed.stderr.strip()) == (3, "nope")
    with pytest.raises(remote.RemoteError, match=f"^{net.hosts[0].spec}: .*nope"):
        conns[0].run(["sh", "-c", "echo nope >&2; exit 3"])


def test_output_streams_to_files_and_the_group_is_killed(
    net: netns.TestNetwork, conns: list[remote.Connection], tmp_path: Path
) -> None:
    h, c = net.hosts[1], conns[1]
    out, err = tmp_path / "out", tmp_path / "err"
    script = "sleep 60 & sleep 61 & echo READY; echo to-stderr >&2; wait"
    proc = c.start(["sh", "-c", script], stdout=out, stderr=err)
    assert proc.read_line(WAIT_S) == "READY"
    assert proc.poll() is None
    assert len(_foreign(h)) >= 3  # sh and both sleeps
    proc.kill()
    assert _until(lambda: not _foreign(h)), _foreign(h)
    assert proc.poll() == 128 + 9
    assert out.read_text() == "READY\n"
    assert err.read_text() == "to-stderr\n"
    assert proc not in remote.running_processes()


def test_timeout_kills_and_names_the_host(
    net: netns.TestNetwork, conns: list[remote.Connection]
) -> None:
    started = time.monotonic()
    with pytest.raises(remote.RemoteError, match=f"^{net.hosts[2].spec}: .*still running"):
        conns[2].run(["sleep", "30"], timeout_s=1)
    assert time.monotonic() - started < 20  # bounded by the timeout and the kill, not by sleep
    assert _until(lambda: not _foreign(net.hosts[2])), _foreign(net.hosts[2])


def test_a_dropped_connection_ends_the_remote_group(net: netns.TestNetwork) -> None:
    """The leash: without any kill sent, losing the SSH connection ends the command."""
    h = net.hosts[0]
    c = remote.connect(h.spec, net.ssh_options())
    proc = c.start(["sh", "-c", "sleep 62 & echo READY; wait"])
    assert proc.read_line(WAIT_S) == "READY"
    assert any(f.endswith(":sleep") for f in _foreign(h))
    assert c.ssh is not None
    remote._loop().loop.call_soon_threadsafe(c.ssh.abort)  # as if the harness had died
    assert _until(lambda: not _foreign(h)), _foreign(h)
    with pytest.raises(remote.RemoteError, match=f"^{h.spec}: "):
        proc.wait(WAIT_S)
    c.close()


def test_clock_offset_on_one_machine_is_within_its_uncertainty(
    conns: list[remote.Connection],
) -> None:
    for c in conns:
        off = clock.measure_offset(c, rounds=16)
        assert off.rounds == 16
        assert off.host == str(c.host)
        # Namespaces share this machine's clock: the true offset is 0.
        assert abs(off.offset_ns) <= off.uncertainty_ns, off
    local, per_host = clock.common_start({"h": off}, lead_s=1.0)
    assert per_host["h"] == local + off.offset_ns


def test_binary_copied_by_checksum(
    net: netns.TestNetwork, conns: list[remote.Connection], tmp_path: Path
) -> None:
    if LOADGEN.is_file():
        binary = LOADGEN
    else:  # any binary of this machine shows the mechanism
        binary = tmp_path / "true"
        shutil.copy2(shutil.which("true") or "/bin/true", binary)
    c = conns[1]
    where = str(tmp_path / "host1-bin")  # the namespaces share this file system
    first = placement.place_binary(c, binary, remote_dir=where)
    assert first.source == "copied" and first.copied
    assert first.path == f"{where}/{binary.name}"
    assert first.sha256 == placement.sha256_file(binary)
    second = placement.place_binary(c, binary, remote_dir=where)
    assert second.source == "present" and second.path == first.path
    assert c.run([first.path, "--help"], check=False).returncode == 0
    with open(first.path, "ab") as f:  # differs now: copied again
        f.write(b"\0")
    assert placement.place_binary(c, binary, remote_dir=where).source == "copied"
    assert placement.sha256_file(Path(first.path)) == first.sha256
    user = placement.place_binary(c, binary, remote_bin=first.path)
    assert (user.source, user.sha256) == ("user", first.sha256)
    with pytest.raises(remote.RemoteError) as err:
        placement.place_binary(c, binary, remote_bin=str(tmp_path / "missing"))
    assert str(err.value).startswith(net.hosts[1].spec) and "--remote-bin" in str(err.value)


def test_remote_topology_and_platform(
    net: netns.TestNetwork, conns: list[remote.Connection]
) -> None:
    c = conns[0]
    topo = hostinfo.remote_topology(c)
    # Same machine: sshd inherited this process's CPUs.
    here = restrict(read_topology(), os.sched_getaffinity(0))
    assert topo.describe() == here.describe()
    info = hostinfo.platform_of(c, peer_addr=net.hosts[1].addr)
    assert info["kernel"] == f"{os.uname().sysname} {os.uname().release}"
    assert info["machine"] == os.uname().machine
    assert info["topology"] == here.describe()
    assert info["cpu_affinity"] == sorted(os.sched_getaffinity(0))
    assert info["route"]["dev"] == "eth0"
    assert info["route"]["src"] == net.hosts[0].addr
    link = subprocess.run(
        ["ip", "netns", "exec", net.hosts[0].ns, "cat", "/sys/class/net/eth0/mtu"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert info["route"]["mtu"] == int(link.stdout)


def test_idle_round_trip_between_hosts(
    net: netns.TestNetwork, conns: list[remote.Connection]
) -> None:
    rtt = hostinfo.idle_rtt(conns[1], net.hosts[0].addr, count=5)
    assert (rtt.source, rtt.to) == (net.hosts[1].spec, net.hosts[0].addr)
    assert rtt.sent == rtt.received == 5
    assert 0 < rtt.min_us <= rtt.avg_us <= rtt.max_us


def test_a_crashed_host_fails_the_call_naming_it(net: netns.TestNetwork) -> None:
    h = net.hosts[3]
    c = remote.connect(h.spec, net.ssh_options())
    c.run(["true"])
    crash = threading.Timer(0.5, h.kill_everything)
    crash.start()
    started = time.monotonic()
    try:
        with pytest.raises(remote.RemoteError) as err:
            c.run(["sleep", "30"], timeout_s=20)
    finally:
        crash.cancel()
    assert time.monotonic() - started < 15  # the loss is noticed, not waited out
    assert str(err.value).startswith(f"{h.spec}: ")
    assert "\n" not in str(err.value)
    assert _until(lambda: h.pids() == []), h.pids()
    with pytest.raises(remote.RemoteError, match=f"^{h.spec}: "):
        c.run(["true"])
    c.close()


def test_close_all_ends_everything(net: netns.TestNetwork, conns: list[remote.Connection]) -> None:
    procs = [c.start(["sh", "-c", "sleep 63 & sleep 64 & wait"]) for c in conns]
    assert all(p.running for p in procs)
    remote.close_all()
    assert remote.running_processes() == []
    for h in net.hosts:
        assert _until(lambda h=h: h.pids_besides_sshd() == []), (h.ns, h.pids_besides_sshd())


def test_ctrl_c_ends_the_remote_processes(net: netns.TestNetwork, tmp_path: Path) -> None:
    """A harness process interrupted with SIGINT ends what it started (atexit close_all)."""
    h = net.hosts[2]
    o = net.ssh_options()
    script = tmp_path / "interrupted.py"
    script.write_text(
        "import time\n"
        "from pathlib import Path\n"
        "from harness.run import remote\n"
        "from harness.run.hosts import SshOptions\n"
        f"o = SshOptions(known_hosts=Path({str(o.known_hosts)!r}),"
        f" client_keys=(Path({str(o.client_keys[0])!r}),))\n"
        f"c = remote.connect({h.spec!r}, o)\n"
        "p = c.start(['sh', '-c', 'sleep 67 & echo READY; wait'])\n"
        "print(p.read_line(10), flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY"
        assert any(f.endswith(":sleep") for f in _foreign(h))
        child.send_signal(signal.SIGINT)
        child.wait(timeout=20)
        assert _until(lambda: not _foreign(h)), _foreign(h)
    finally:
        child.kill()
        child.wait(timeout=10)
