"""pyperf-like checks of the CPUs and the kernel (governor, turbo, isolation, ASLR, SMT, load,
memory) and of what the designs need (io_uring, perf counters, built binaries)."""

from __future__ import annotations

import errno
import os
import platform

from harness.checks.machine import (
    LOAD_WARN_FRACTION,
    LOAD_WARN_MIN,
    MEM_AVAILABLE_WARN_BYTES,
    Context,
    Finding,
    Status,
    _cpu_count,
    _cpu_dirs,
    _not_exposed,
    _ranges,
    _read,
)
from harness.plan.topology import parse_cpu_list


def check_governor(ctx: Context) -> Finding:
    by_governor: dict[str, list[int]] = {}
    for cpu, path in _cpu_dirs(ctx):
        gov = _read(path / "cpufreq" / "scaling_governor")
        if gov is not None:
            by_governor.setdefault(gov, []).append(cpu)
    if not by_governor:
        return _not_exposed("CPU frequency scaling (cpufreq)")
    value = "; ".join(f"{g} on {_ranges(c)}" for g, c in sorted(by_governor.items()))
    if set(by_governor) == {"performance"}:
        return Finding(Status.OK, value, "every CPU runs the performance governor")
    return Finding(
        Status.WARNING,
        value,
        "a non-performance governor changes the clock with load, so throughput depends on how "
        "busy each core was a moment ago",
        "sudo cpupower frequency-set -g performance  (or: python -m pyperf system tune)",
    )


def check_turbo(ctx: Context) -> Finding:
    explanation = (
        "turbo makes the clock depend on how many cores are busy and on temperature, so 1-core "
        "and 16-core trials run at different frequencies and scaling curves bend for reasons "
        "that are not the executor"
    )
    # (file under the cpu directory, its value when turbo is off, the driver's name)
    controls = (
        ("intel_pstate/no_turbo", "1", "intel_pstate"),
        ("cpufreq/boost", "0", "cpufreq boost"),
    )
    for name, off, driver in controls:
        value = _read(ctx.cpu_dir / name)
        if value is None:
            continue
        if value == off:
            what = "turbo" if driver == "intel_pstate" else "boost"
            return Finding(Status.OK, f"disabled ({driver})", f"{what} is off")
        return Finding(
            Status.WARNING,
            f"enabled ({driver})",
            explanation,
            f"echo {off} | sudo tee /sys/devices/system/cpu/{name}",
        )
    return _not_exposed("turbo/boost control")


def check_isolated(ctx: Context) -> Finding:
    text = _read(ctx.cpu_dir / "isolated")
    if text is None:
        return _not_exposed("the isolated CPU list")
    return _cpu_list(
        text,
        (
            "none",
            "no CPU is isolated: the scheduler may run other tasks on benchmark CPUs",
            "boot with isolcpus=<cpus> (and pass those CPUs to the harness) for the quietest runs",
        ),
        "these CPUs are kept free of other tasks",
    )


def _cpu_list(text: str, empty: tuple[str, str, str], ok: str) -> Finding:
    """A kernel CPU list (isolcpus, nohz_full): INFO (value, why, fix) when it is empty, else
    OK with the CPUs."""
    if not text or text == "(null)":
        return Finding(Status.INFO, *empty)
    return Finding(Status.OK, _ranges(parse_cpu_list(text)), ok)


def check_nohz_full(ctx: Context) -> Finding:
    text = _read(ctx.cpu_dir / "nohz_full")
    if text is None:
        return Finding(Status.INFO, "not supported", "this kernel has no nohz_full support")
    return _cpu_list(
        text,
        (
            "off",
            "the scheduler tick interrupts every busy CPU (about 1-4 us each, 100-1000 Hz)",
            "boot with nohz_full=<isolated cpus> to remove it on isolated CPUs",
        ),
        "no scheduler tick on these CPUs when busy",
    )


_ASLR = {"0": "disabled", "1": "conservative", "2": "full"}


def check_aslr(ctx: Context) -> Finding:
    text = _read(ctx.proc / "sys" / "kernel" / "randomize_va_space")
    if text is None:
        return _not_exposed("ASLR (randomize_va_space)")
    return Finding(
        Status.INFO,
        f"{text} ({_ASLR.get(text, 'unknown')})",
        "each repetition is a new process, so layout effects show as spread between "
        "repetitions rather than as a bias; recorded for reference",
    )


def check_smt(ctx: Context) -> Finding:
    control = _read(ctx.cpu_dir / "smt" / "control")
    explanation_on = (
        "SMT siblings share one core's execution units; the harness never splits siblings "
        "between server and client, and server_cores counts hardware threads"
    )
    if control is not None:
        if control == "on":
            return Finding(Status.INFO, "on", explanation_on, "")
        return Finding(Status.OK, control, "one hardware thread per core")
    siblings = _read(ctx.cpu_dir / "cpu0" / "topology" / "thread_siblings_list")
    if siblings is None:
        return _not_exposed("SMT state")
    if len(parse_cpu_list(siblings)) > 1:
        return Finding(Status.INFO, "on (from cpu0's siblings)", explanation_on)
    return Finding(Status.OK, "off (from cpu0's siblings)", "one hardware thread per core")


def check_client_idle(ctx: Context) -> Finding:
    """Whether the harness can make the load generator's CPUs poll when idle (run.client_idle:
    a halted client CPU costs the server an interrupt per wake-up on one machine)."""
    state0 = _read(ctx.cpu_dir / "cpu0" / "cpuidle" / "state0" / "name")
    qos = ctx.cpu_dir / "cpu0" / "power" / "pm_qos_resume_latency_us"
    if state0 != "POLL" or not qos.exists():
        return _not_exposed("a cpuidle polling state with a per-CPU resume-latency limit")
    if os.access(qos, os.W_OK):
        return Finding(
            Status.OK,
            "can poll",
            "during each trial the load generator's CPUs poll when idle, so that waking the "
            "client costs the server no inter-processor interrupt (docs/fairness.md)",
        )
    return Finding(
        Status.WARNING,
        "cannot set",
        "the load generator's CPUs will halt when idle: on one machine the server's CPU then "
        "pays an interrupt to wake the client for most responses (12-14% of a server-bound "
        "design's throughput on a 2-CPU VM, docs/fairness.md)",
        "run the harness as root (it writes /sys/devices/system/cpu/cpuN/power/"
        "pm_qos_resume_latency_us for the client CPUs during each trial and restores it)",
    )


def check_load(ctx: Context) -> Finding:
    text = _read(ctx.proc / "loadavg")
    if text is None:
        return _not_exposed("the load average")
    load1 = float(text.split()[0])
    cpus = _cpu_count(ctx)
    limit = max(LOAD_WARN_MIN, LOAD_WARN_FRACTION * cpus)
    value = f"{load1:.2f} on {cpus} CPUs"
    if load1 > limit:
        return Finding(
            Status.WARNING,
            value,
            f"1-minute load is above {limit:.1f}: other tasks compete for the benchmark's CPUs "
            "(or a previous run ended less than a minute ago)",
            "stop other workloads (top -o %CPU), or wait a minute after a previous run",
        )
    return Finding(Status.OK, value, f"1-minute load is at most {limit:.1f}")


def check_memory(ctx: Context) -> Finding:
    text = _read(ctx.proc / "meminfo")
    if text is None:
        return _not_exposed("/proc/meminfo")
    fields = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[key] = int(parts[0]) * 1024  # the kernel reports kB
    if "MemAvailable" not in fields:
        return Finding(Status.INFO, "unknown", "MemAvailable is not reported by this kernel")
    avail = fields["MemAvailable"]
    value = f"{avail / 2**30:.1f} GiB available"
    if "MemTotal" in fields:
        value += f" of {fields['MemTotal'] / 2**30:.1f} GiB"
    if avail < MEM_AVAILABLE_WARN_BYTES:
        return Finding(
            Status.WARNING,
            value,
            "below 1 GiB available, reclaim or swap can stall the server or the load generator",
            "close memory-hungry programs before the run",
        )
    return Finding(Status.OK, value, "enough memory available")


# ---------------------------------------------------------------------------------------------
# What the harness itself needs


def check_io_uring(ctx: Context) -> Finding:
    disabled = _read(ctx.proc / "sys" / "kernel" / "io_uring_disabled")
    sysctl_note = f" (io_uring_disabled={disabled})" if disabled is not None else ""
    err = ctx.io_uring_probe()
    if err is None:
        if disabled == "2":
            return Finding(
                Status.WARNING,
                f"disabled{sysctl_note}",
                "io_uring is disabled for everyone: uring designs will be refused",
                "sudo sysctl kernel.io_uring_disabled=0",
            )
        return Finding(
            Status.INFO,
            f"not probed on {platform.machine()}{sysctl_note}",
            "cannot call io_uring_setup on this architecture; uring designs may fail",
        )
    if err == 0:
        return Finding(Status.OK, f"available{sysctl_note}", "io_uring_setup works for this user")
    name = errno.errorcode.get(err, str(err))
    if err == errno.ENOSYS:
        why, fix = "this kernel has no io_uring", "use a kernel >= 5.10 built with CONFIG_IO_URING"
    elif err == errno.EPERM and disabled in ("1", "2"):
        why, fix = (
            "the io_uring_disabled sysctl forbids it",
            "sudo sysctl kernel.io_uring_disabled=0",
        )
    elif err == errno.EPERM:
        why = "refused (a container's seccomp profile or an LSM)"
        fix = "allow io_uring_setup/enter/register in the container's seccomp profile"
    elif err == errno.ENOMEM:
        why, fix = "no locked memory for the ring (kernels < 5.12)", "ulimit -l unlimited"
    else:
        why, fix = os.strerror(err), ""
    return Finding(
        Status.WARNING,
        f"{name}{sysctl_note}",
        f"io_uring_setup failed: {why}; uring designs will be refused",
        fix,
    )


def check_perf(ctx: Context) -> Finding:
    out = ctx.perf_probe()
    if not out.found:
        return Finding(
            Status.WARNING,
            "perf not installed",
            "no hardware counters (instructions, cache misses) to explain results",
            "sudo apt-get install linux-perf  (Ubuntu: linux-tools-$(uname -r))",
        )
    last = out.output.splitlines()[-1] if out.output else ""
    if out.returncode is None:
        return Finding(Status.WARNING, "perf did not finish", f"perf stat: {last}")
    if out.returncode != 0:
        paranoid = _read(ctx.proc / "sys" / "kernel" / "perf_event_paranoid")
        return Finding(
            Status.WARNING,
            f"perf stat failed (exit {out.returncode}; perf_event_paranoid={paranoid})",
            f"perf stat: {last[:120]}",
            "sudo sysctl kernel.perf_event_paranoid=1",
        )
    for line in out.output.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("instructions"):
            count = fields[0]
            if count.isdigit():
                return Finding(Status.OK, "instructions counted", "hardware counters usable")
            return Finding(
                Status.WARNING,
                f"instructions: {count}",
                "the CPU's counters are not exposed (typical of VMs): no instruction counts",
                "on a VM, expose the PMU (e.g. KVM -cpu host); otherwise nothing to do",
            )
    return Finding(Status.WARNING, "unrecognised output", f"perf stat printed: {last[:120]}")


def check_designs(ctx: Context) -> Finding:
    if ctx.designs is None:
        return Finding(Status.INFO, "not checked", "no design list was given to the doctor")
    designs = list(ctx.designs)
    missing = [(name, why) for name, why in designs if why is not None]
    if not missing:
        return Finding(Status.OK, f"{len(designs)} built", "every design can run")
    names = ", ".join(name for name, _ in missing)
    reasons = "; ".join(f"{name}: {why}" for name, why in missing)
    status = Status.ERROR if len(missing) == len(designs) else Status.WARNING
    return Finding(
        status,
        f"{len(missing)} of {len(designs)} missing: {names}",
        reasons,
        "make build",
    )
