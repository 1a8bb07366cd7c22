"""harness/checks/runtime_needs.py: the real probes on this machine (io_uring_setup, the
RLIMIT_MEMLOCK of a child whose limit was really lowered, the kernel release), and each failure's
one-line text and fix with an injected probe."""

from __future__ import annotations

import errno
import json
import platform
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from harness.checks.runtime_needs import (
    GLOMMIO_MEMLOCK_BYTES,
    IoUringSetup,
    KernelVersion,
    MemlockLimit,
    NeedStatus,
    Probes,
    design_needs,
    machine_needs,
    parse_kernel_release,
    probe_io_uring_setup,
    why_not_runnable,
)
from harness.plan.designs import load_registry

REGISTRY = load_registry()
REPO = Path(__file__).resolve().parent.parent


def io_uring_here() -> bool:
    return probe_io_uring_setup() == 0


def test_the_real_io_uring_probe_answers_and_closes_its_ring():
    import os

    before = len(os.listdir("/proc/self/fd"))
    err = probe_io_uring_setup()
    after = len(os.listdir("/proc/self/fd"))
    assert after == before  # the ring's descriptor is closed at once
    if platform.machine() in ("x86_64", "aarch64"):
        assert err is not None
    result = IoUringSetup().check()
    assert result.status is (NeedStatus.OK if err == 0 else NeedStatus.PROBLEM), result
    assert result.seen


def test_the_real_memlock_and_kernel_checks():
    soft = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
    memlock = MemlockLimit().check()
    ok = soft == resource.RLIM_INFINITY or soft >= GLOMMIO_MEMLOCK_BYTES
    assert memlock.ok is ok
    assert "RLIMIT_MEMLOCK" in memlock.seen
    kernel = KernelVersion().check()
    assert platform.release() in kernel.seen
    assert kernel.status is not NeedStatus.UNKNOWN  # Linux releases parse


def test_on_this_machine_every_registry_design_is_judged_without_raising():
    for d in REGISTRY.values():
        why = why_not_runnable(d)
        assert why is None or ("\n" not in why and "fix:" in why), (d.name, why)
    epoll_only = [d for d in REGISTRY.values() if not d.requires]
    assert epoll_only and all(why_not_runnable(d) is None for d in epoll_only)
    if io_uring_here() and MemlockLimit().check().ok:
        assert why_not_runnable(REGISTRY["glommio-tpc"]) is None
        assert why_not_runnable(REGISTRY["monoio-tpc"]) is None


CHILD = """
import json, resource, sys
sys.path.insert(0, sys.argv[1])
hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
resource.setrlimit(resource.RLIMIT_MEMLOCK, (64 * 1024, hard))
from harness.plan.designs import load_registry
from harness.checks.runtime_needs import why_not_runnable
r = load_registry()
print(json.dumps({n: why_not_runnable(r[n]) for n in ("glommio-tpc", "monoio-epoll-tpc")}))
"""


def test_a_process_with_a_really_lowered_memlock_limit_refuses_glommio():
    hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    if hard != resource.RLIM_INFINITY and hard < 64 * 1024:
        pytest.skip("the hard RLIMIT_MEMLOCK is below 64 KiB already")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    why = json.loads(out.stdout)
    assert why["monoio-epoll-tpc"] is None
    glommio = why["glommio-tpc"]
    if not io_uring_here():
        assert glommio is not None
        return
    assert glommio is not None and "RLIMIT_MEMLOCK is 64 KiB" in glommio
    assert "512 KiB" in glommio and "ulimit -l 512" in glommio


@pytest.mark.parametrize(
    ("err", "sysctl", "words", "fix"),
    [
        (errno.ENOSYS, "0", "no io_uring", "CONFIG_IO_URING"),
        (errno.EPERM, "2", "sysctl forbids it", "sysctl kernel.io_uring_disabled=0"),
        (errno.EPERM, "0", "seccomp", "seccomp profile"),
        (errno.ENOMEM, None, "ENOMEM", "ulimit -l"),
        (errno.EINVAL, "0", "EINVAL", ""),
    ],
)
def test_each_io_uring_refusal_says_why_and_the_fix(tmp_path, err, sysctl, words, fix):
    path = tmp_path / "io_uring_disabled"
    if sysctl is not None:
        path.write_text(sysctl + "\n")
    result = IoUringSetup(probe=lambda: err, sysctl=path).check()
    assert result.status is NeedStatus.PROBLEM and not result.ok
    assert words in result.problem and "\n" not in result.problem
    assert fix in result.fix
    why = why_not_runnable(
        REGISTRY["monoio-tpc"], Probes(io_uring=lambda: err, io_uring_sysctl=path)
    )
    assert why is not None and why.startswith(result.problem)


def test_an_unprobed_architecture_is_unknown_not_refused():
    result = IoUringSetup(probe=lambda: None).check()
    assert result.status is NeedStatus.UNKNOWN and result.ok
    assert why_not_runnable(REGISTRY["monoio-tpc"], Probes(io_uring=lambda: None)) is None


def test_memlock_limits():
    assert MemlockLimit(soft_limit=lambda: resource.RLIM_INFINITY).check().ok
    assert MemlockLimit(soft_limit=lambda: 512 * 1024).check().ok
    low = MemlockLimit(soft_limit=lambda: 8 * 1024).check()
    assert low.status is NeedStatus.PROBLEM
    assert "8 KiB" in low.problem and "ulimit -l 512" in low.fix


def test_kernel_versions_per_runtime():
    assert parse_kernel_release("6.18.44-fc-v1045") == (6, 18)
    assert parse_kernel_release("5.4.0-100-generic") == (5, 4)
    assert parse_kernel_release("weird") is None
    old = Probes(release=lambda: "5.7.0")
    assert (
        why_not_runnable(
            REGISTRY["monoio-tpc"], Probes(release=lambda: "5.7.0", io_uring=lambda: 0)
        )
        is None
    )
    glommio = why_not_runnable(REGISTRY["glommio-tpc"], old)
    assert glommio is not None and "older than 5.8" in glommio and "glommio" in glommio
    tokio_uring = why_not_runnable(REGISTRY["tokio-uring-tpc"], old)
    assert tokio_uring is not None and "older than 5.11" in tokio_uring
    assert why_not_runnable(REGISTRY["tokio-tpc"], old) is None  # epoll needs no new kernel


def test_the_first_unmet_need_is_the_reason():
    bad = Probes(release=lambda: "5.4.0", io_uring=lambda: errno.EPERM, memlock=lambda: 0)
    results = design_needs(REGISTRY["glommio-tpc"], bad)
    assert [r.need for r in results] == ["kernel", "io_uring", "memlock"]
    assert all(not r.ok for r in results)
    why = why_not_runnable(REGISTRY["glommio-tpc"], bad)
    assert why is not None and why.startswith("kernel 5.4.0 is older than 5.8")


def test_machine_needs_runs_each_check_once_and_names_who_needs_it():
    calls: list[int] = []

    def probe() -> int:
        calls.append(1)
        return 0

    needs = machine_needs(list(REGISTRY.values()), Probes(io_uring=probe))
    assert len(calls) == 1
    io_uring = [m for m in needs if m.result.need == "io_uring"]
    assert len(io_uring) == 1
    assert {"monoio-tpc", "glommio-tpc", "compio-tpc", "tokio-uring-tpc", "uring-tpc"} <= set(
        io_uring[0].designs
    )
    memlock = [m for m in needs if m.result.need == "memlock"]
    assert [m.designs for m in memlock] == [("glommio-tpc",)]
    assert machine_needs([REGISTRY["tokio-ws"]]) == []
