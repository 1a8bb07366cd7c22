"""harness.doctor on fake /proc and /sys trees (every OK and warning path of the file-based
checks, with injected probes), and once on the real machine, which must never raise."""

from __future__ import annotations

import errno
import json
from dataclasses import replace
from pathlib import Path

import pytest

from harness.checks import doctor
from harness.checks.doctor import CheckResult, CommandOutcome, Context, Status

PERF_OK = CommandOutcome(True, 0, "1234567,,instructions:u,401234,100.00,,")


class Fake:
    """A fake machine: /proc and /sys under tmp_path, probes that report a healthy machine."""

    def __init__(self, root: Path) -> None:
        self.proc = root / "proc"
        self.sys = root / "sys"
        self.proc.mkdir()
        self.sys.mkdir()

    def write(self, path: str, text: str) -> None:
        """Write a file under the fake root: path starts with "proc/" or "sys/"."""
        top, _, rest = path.partition("/")
        target = (self.proc if top == "proc" else self.sys) / rest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def ctx(self, **kw: object) -> Context:
        base = Context(
            proc=self.proc,
            sys=self.sys,
            nofile_limit=lambda: (1_048_576, 1_048_576),
            io_uring_probe=lambda: 0,
            perf_probe=lambda: PERF_OK,
        )
        return replace(base, **kw)


@pytest.fixture
def fake(tmp_path: Path) -> Fake:
    return Fake(tmp_path)


def run(name: str, ctx: Context) -> CheckResult:
    """Run the one check called `name`."""
    (check,) = [c for c in doctor.CHECKS if c.name == name]
    return check.run(ctx)


CPU = "sys/devices/system/cpu"


# ---------------------------------------------------------------------------------------------
# pyperf-like checks


def test_governor_ok_warning_and_absent(fake: Fake) -> None:
    assert run("cpu_governor", fake.ctx()).status is Status.INFO  # no cpufreq: a VM
    for cpu in range(4):
        fake.write(f"{CPU}/cpu{cpu}/cpufreq/scaling_governor", "performance\n")
    r = run("cpu_governor", fake.ctx())
    assert (r.status, r.value) == (Status.OK, "performance on 0-3")
    fake.write(f"{CPU}/cpu1/cpufreq/scaling_governor", "powersave\n")
    r = run("cpu_governor", fake.ctx())
    assert r.status is Status.WARNING
    assert r.value == "performance on 0,2-3; powersave on 1"
    assert "performance" in r.fix


def test_turbo_unknown_is_info(fake: Fake) -> None:
    assert run("turbo", fake.ctx()).status is Status.INFO


# The knob's file, its value with turbo off and on (intel_pstate says "no turbo", cpufreq "boost").
@pytest.mark.parametrize(
    ("knob", "off", "on"), [("intel_pstate/no_turbo", "1", "0"), ("cpufreq/boost", "0", "1")]
)
def test_turbo_off_is_ok_and_on_is_a_warning(fake: Fake, knob: str, off: str, on: str) -> None:
    fake.write(f"{CPU}/{knob}", f"{off}\n")
    assert run("turbo", fake.ctx()).status is Status.OK
    fake.write(f"{CPU}/{knob}", f"{on}\n")
    r = run("turbo", fake.ctx())
    assert r.status is Status.WARNING
    assert knob.rsplit("/", 1)[1] in r.fix


def test_isolated_cpus(fake: Fake) -> None:
    assert run("isolated_cpus", fake.ctx()).value == "not exposed"
    fake.write(f"{CPU}/isolated", "\n")
    r = run("isolated_cpus", fake.ctx())
    assert (r.status, r.value) == (Status.INFO, "none")
    assert "isolcpus" in r.fix
    fake.write(f"{CPU}/isolated", "2-3,6\n")
    r = run("isolated_cpus", fake.ctx())
    assert (r.status, r.value) == (Status.OK, "2-3,6")


def test_nohz_full(fake: Fake) -> None:
    assert run("nohz_full", fake.ctx()).value == "not supported"
    fake.write(f"{CPU}/nohz_full", "(null)\n")
    assert run("nohz_full", fake.ctx()).value == "off"
    fake.write(f"{CPU}/nohz_full", "2-3\n")
    r = run("nohz_full", fake.ctx())
    assert (r.status, r.value) == (Status.OK, "2-3")


def test_aslr_is_recorded(fake: Fake) -> None:
    fake.write("proc/sys/kernel/randomize_va_space", "2\n")
    r = run("aslr", fake.ctx())
    assert (r.status, r.value) == (Status.INFO, "2 (full)")
    fake.write("proc/sys/kernel/randomize_va_space", "0\n")
    assert run("aslr", fake.ctx()).value == "0 (disabled)"


def test_smt_control_and_siblings_fallback(fake: Fake) -> None:
    assert run("smt", fake.ctx()).value == "not exposed"
    fake.write(f"{CPU}/cpu0/topology/thread_siblings_list", "0,4\n")
    assert run("smt", fake.ctx()).value.startswith("on")
    fake.write(f"{CPU}/cpu0/topology/thread_siblings_list", "0\n")
    assert run("smt", fake.ctx()).status is Status.OK
    fake.write(f"{CPU}/smt/control", "on\n")
    assert run("smt", fake.ctx()).status is Status.INFO
    fake.write(f"{CPU}/smt/control", "off\n")
    r = run("smt", fake.ctx())
    assert (r.status, r.value) == (Status.OK, "off")


def test_load_average(fake: Fake) -> None:
    fake.write(f"{CPU}/online", "0-31\n")
    fake.write("proc/loadavg", "1.50 1.00 0.50 2/300 1234\n")
    r = run("load_average", fake.ctx())
    assert (r.status, r.value) == (Status.OK, "1.50 on 32 CPUs")  # limit 3.2
    fake.write("proc/loadavg", "8.00 4.00 1.00 9/300 1234\n")
    assert run("load_average", fake.ctx()).status is Status.WARNING
    # On a small machine the limit is one busy task, not a tenth of a CPU.
    fake.write(f"{CPU}/online", "0-1\n")
    fake.write("proc/loadavg", "0.90 0.50 0.20 1/100 1234\n")
    assert run("load_average", fake.ctx()).status is Status.OK


def test_memory(fake: Fake) -> None:
    meminfo = "MemTotal:       16384000 kB\nMemFree:  1000 kB\nMemAvailable:   {} kB\n"
    fake.write("proc/meminfo", meminfo.format(8 * 1024 * 1024))
    r = run("memory", fake.ctx())
    assert r.status is Status.OK
    assert r.value.startswith("8.0 GiB available")
    fake.write("proc/meminfo", meminfo.format(512 * 1024))
    assert run("memory", fake.ctx()).status is Status.WARNING
    fake.write("proc/meminfo", "MemTotal: 1000 kB\n")
    assert run("memory", fake.ctx()).status is Status.INFO


# ---------------------------------------------------------------------------------------------
# What the harness needs


def test_io_uring_probe_outcomes(fake: Fake) -> None:
    fake.write("proc/sys/kernel/io_uring_disabled", "0\n")
    r = run("io_uring", fake.ctx())
    assert (r.status, r.value) == (Status.OK, "available (io_uring_disabled=0)")
    r = run("io_uring", fake.ctx(io_uring_probe=lambda: errno.ENOSYS))
    assert r.status is Status.WARNING
    assert "uring designs will be refused" in r.explanation
    fake.write("proc/sys/kernel/io_uring_disabled", "2\n")
    r = run("io_uring", fake.ctx(io_uring_probe=lambda: errno.EPERM))
    assert r.status is Status.WARNING
    assert r.fix == "sudo sysctl kernel.io_uring_disabled=0"
    r = run("io_uring", fake.ctx(io_uring_probe=lambda: None))
    assert r.status is Status.WARNING  # not probed, but the sysctl says disabled


def test_perf_counters(fake: Fake) -> None:
    assert run("perf_counters", fake.ctx()).status is Status.OK
    missing = CommandOutcome(False, None, "")
    assert run("perf_counters", fake.ctx(perf_probe=lambda: missing)).status is Status.WARNING
    vm = CommandOutcome(True, 0, "<not supported>,,instructions,0,100.00,,")
    r = run("perf_counters", fake.ctx(perf_probe=lambda: vm))
    assert (r.status, r.value) == (Status.WARNING, "instructions: <not supported>")
    fake.write("proc/sys/kernel/perf_event_paranoid", "3\n")
    denied = CommandOutcome(True, 255, "Error:\nAccess to performance monitoring denied")
    r = run("perf_counters", fake.ctx(perf_probe=lambda: denied))
    assert r.status is Status.WARNING
    assert "perf_event_paranoid=3" in r.value
    assert "paranoid" in r.fix


def test_designs_built(fake: Fake) -> None:
    assert run("designs_built", fake.ctx()).status is Status.INFO
    both = [("tokio-ws", None), ("monoio-tpc", None)]
    r = run("designs_built", fake.ctx(designs=both))
    assert (r.status, r.value) == (Status.OK, "2 built")
    one = [("tokio-ws", None), ("monoio-tpc", "target/release/monoio-tpc is not built")]
    r = run("designs_built", fake.ctx(designs=one))
    assert r.status is Status.WARNING
    assert "monoio-tpc" in r.value and "not built" in r.explanation
    none = [("monoio-tpc", "not built")]
    assert run("designs_built", fake.ctx(designs=none)).status is Status.ERROR


# A check of one kernel setting: a good value is OK, a low one a warning naming the value (and
# the fix, when there is one to check).
@pytest.mark.parametrize(
    ("check", "path", "good", "low", "fix"),
    [
        ("loopback_mtu", "sys/class/net/lo/mtu", "65536", "1500", None),
        ("somaxconn", "proc/sys/net/core/somaxconn", "4096", "128", "somaxconn=4096"),
    ],
)
def test_a_low_kernel_setting_is_a_warning(
    fake: Fake, check: str, path: str, good: str, low: str, fix: str | None
) -> None:
    fake.write(path, f"{good}\n")
    assert run(check, fake.ctx()).status is Status.OK
    fake.write(path, f"{low}\n")
    r = run(check, fake.ctx())
    assert (r.status, r.value) == (Status.WARNING, low)
    if fix is not None:
        assert fix in r.fix


def test_fd_limit(fake: Fake) -> None:
    assert run("fd_limit", fake.ctx()).status is Status.OK
    r = run("fd_limit", fake.ctx(nofile_limit=lambda: (1024, 4096)))
    assert (r.status, r.value) == (Status.WARNING, "1024 (hard 4096)")
    assert r.fix.startswith("ulimit -n 65536")
    assert "hard limit" in r.fix
    r = run("fd_limit", fake.ctx(nofile_limit=lambda: (65536, 65536), needed_fds=100_000))
    assert r.status is Status.ERROR
    assert r.fix.startswith("ulimit -n 100000")


def test_ephemeral_ports(fake: Fake) -> None:
    fake.write("proc/sys/net/ipv4/ip_local_port_range", "32768\t60999\n")
    r = run("ephemeral_ports", fake.ctx())
    assert (r.status, r.value) == (Status.OK, "32768-60999 (28232 ports)")
    assert run("ephemeral_ports", fake.ctx(connections=30_000)).status is Status.ERROR
    fake.write("proc/sys/net/ipv4/ip_local_port_range", "60000\t60999\n")
    assert run("ephemeral_ports", fake.ctx()).status is Status.WARNING


def _tcp_table(states: list[str]) -> str:
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt\n"
    row = "   {i}: 0100007F:1F90 0100007F:C350 {st} 00000000:00000000 00:00000000 00000000\n"
    return header + "".join(row.format(i=i, st=st) for i, st in enumerate(states))


def test_time_wait(fake: Fake) -> None:
    assert run("time_wait", fake.ctx()).status is Status.INFO
    fake.write("proc/net/tcp", _tcp_table(["0A", "06", "01", "06"]))
    fake.write("proc/net/tcp6", _tcp_table(["06"]))
    r = run("time_wait", fake.ctx())
    assert (r.status, r.value) == (Status.OK, "3")
    fake.write("proc/net/tcp", _tcp_table(["06"] * (doctor.TIME_WAIT_WARN + 1)))
    r = run("time_wait", fake.ctx())
    assert (r.status, r.value) == (Status.WARNING, str(doctor.TIME_WAIT_WARN + 2))


# ---------------------------------------------------------------------------------------------
# Robustness and presentation


def test_odd_files_become_warnings_not_exceptions(fake: Fake) -> None:
    (fake.proc / "loadavg").mkdir()  # unreadable: a directory where a file should be
    fake.write("sys/class/net/lo/mtu", "garbage\n")
    r = run("load_average", fake.ctx())
    assert r.status is Status.WARNING and "could not run" in r.explanation
    assert run("loopback_mtu", fake.ctx()).status is Status.WARNING

    def boom() -> tuple[int, int]:
        raise OSError("getrlimit failed")

    assert run("fd_limit", fake.ctx(nofile_limit=boom)).status is Status.WARNING


def test_empty_tree_gives_one_result_per_check(fake: Fake) -> None:
    results = doctor.run_checks(fake.ctx())
    assert [r.name for r in results] == [c.name for c in doctor.CHECKS]
    assert not doctor.has_errors(results)


def test_has_errors_to_dicts_and_table(fake: Fake) -> None:
    results = doctor.run_checks(fake.ctx(designs=[("monoio-tpc", "not built")]))
    assert doctor.has_errors(results)
    dicts = doctor.to_dicts(results)
    json.dumps(dicts)  # storable in the manifest
    assert dicts[0].keys() == {"name", "status", "value", "explanation", "fix"}
    assert {d["status"] for d in dicts} <= {s.value for s in Status}
    table = doctor.format_table(results)
    lines = table.splitlines()
    assert lines[0].split() == ["STATUS", "CHECK", "VALUE", "FIX"]
    assert all(c.name in table for c in doctor.CHECKS)
    assert "error: designs_built: monoio-tpc: not built" in table
    assert "make build" in table


def test_real_machine_run_completes() -> None:
    results = doctor.run_checks(Context(designs=[("x", None)], needed_fds=64, connections=16))
    assert [r.name for r in results] == [c.name for c in doctor.CHECKS]
    for r in results:
        assert isinstance(r.status, Status)
        assert r.value
    assert doctor.format_table(results)
