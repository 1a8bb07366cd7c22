"""Why a trial's numbers may not be the server's: each flag is a column with its reason.

Pure functions over the load generator's report and the trial's series, so the rules are
unit-testable and stated in one place (docs/measurement rules 2, 3, 6).
"""

from __future__ import annotations

import re
from typing import Any

from harness.run import steady

CLIENT_BUSY_LIMIT = 0.90  # a client thread busier than this may be what limits throughput
RATE_MISSED_LIMIT = 0.99  # open loop: achieved below 99% of target is not a point on a curve


RUNQUEUE_WAIT_LIMIT = 0.02  # the load generator's own limit (docs/loadgen.md): 2% of the window
# The load generator's reason for a run-queue wait ("thread 0 waited for a CPU 2.0% of the
# window (>= 2%): other processes ran on its CPU"): contention, not a busy client.
_WAIT_REASON = re.compile(r"^thread (\d+) waited for a CPU ")
# Its reasons that say the client was itself the limit (busy, or a thread that did not report).
_BUSY_REASON = re.compile(r"^thread \d+ (busy |did not report)")


def _client_threads(report: dict[str, Any]) -> list[dict[str, Any]]:
    return list((report.get("client_cpu") or {}).get("threads") or [])


def client_waits(report: dict[str, Any]) -> list[str]:
    """Each client thread that waited for its CPU (run queue, /proc/thread-self/schedstat) at
    least RUNQUEUE_WAIT_LIMIT of the window, in words with its own figures: other processes ran
    on the load generator's CPU, so its schedule and timestamps were late by that much."""
    out = []
    threads = _client_threads(report)
    for t in threads:
        wait = t.get("runqueue_wait_fraction")
        if wait is not None and wait >= RUNQUEUE_WAIT_LIMIT:
            busy = t.get("busy_fraction")
            also = f", busy {busy:.0%}" if busy is not None else ""
            cpu = f" on CPU {t['cpu']}" if t.get("cpu") is not None else ""
            out.append(
                f"client thread {t.get('thread')}{cpu} waited for its CPU {wait:.1%} of the "
                f"window (run-queue wait >= {RUNQUEUE_WAIT_LIMIT:.0%}{also}): other processes "
                "ran there"
            )
    reasons = (report.get("summary") or {}).get("client_bound_reasons") or []
    if not threads:  # an output without per-thread figures: the load generator's own words
        out = [f"client {r}" for r in reasons if _WAIT_REASON.match(r)]
    if out and not any(_BUSY_REASON.match(r) for r in reasons):
        # What followed from the wait (no thread was busy): the schedule fell behind with it.
        out += [f"with it, {r}" for r in reasons if not _WAIT_REASON.match(r)]
    return out


def client_bound(report: dict[str, Any]) -> tuple[bool | None, str]:
    """Whether the load generator itself was the limit: a thread busy >= 90% of the window or
    one that did not report, or (with neither busy nor waiting threads) its schedule falling
    behind. A thread that only waited for its CPU is contention (`client_waits`, the
    `contended` flag), and so are the lag and missed sends that follow from that wait.

    The load generator's own verdict and reasons (docs/loadgen.md) are used when it gives them;
    for an output without them, judged here from its threads' CPU time."""
    if not report:
        return None, ""
    summary = report.get("summary") or {}
    if "client_bound" in summary:
        reasons = list(summary.get("client_bound_reasons") or [])
        if summary["client_bound"] and not reasons:
            reasons.append("the load generator reported itself client-bound")
        own = [r for r in reasons if not _WAIT_REASON.match(r)]
        busy = [r for r in own if _BUSY_REASON.match(r)]
        waited = len(own) < len(reasons) or bool(client_waits(report))
        # Lag and unsent requests while a thread waited for its CPU and none was busy: the
        # wait explains them (client_waits names them beside it).
        kept = busy if waited and not busy else own
        if not busy:
            kept = [r for r in kept if not _lag_within_floor(r, report)]
        return bool(kept), "; ".join(kept)
    reasons = []
    window = summary.get("window_s")
    for t in _client_threads(report):
        busy_f = t.get("busy_fraction")
        if busy_f is None and window:
            busy_f = ((t.get("user_s") or 0.0) + (t.get("system_s") or 0.0)) / window
        if busy_f is not None and busy_f >= CLIENT_BUSY_LIMIT:
            reasons.append(f"client thread {t.get('thread')} busy {busy_f:.0%} of the window")
    return bool(reasons), "; ".join(reasons)


# The load generator's lag reason ("schedule lag p99 3260.4 us > 1000 us: ...").
_LAG_REASON = re.compile(r"^schedule lag p99 ")
# A lag at most this many times the client CPUs' own hiccup p99 is the platform's stalls (the
# meter on the same CPUs saw them while nothing held the CPU), not a client that fell behind.
FLOOR_EXPLAINS_LAG = 2.0


def _lag_within_floor(reason: str, report: dict[str, Any]) -> bool:
    """Whether a schedule-lag reason is explained by the platform's noise floor, measured by the
    load generator's hiccup meter on its own CPUs in the same window: then the late requests are
    the machine's stalls (stated as the floor beside every latency, and a tail difference below
    it is 'not resolvable'), not the client's limit."""
    if not _LAG_REASON.match(reason):
        return False
    lag = ((report.get("summary") or {}).get("schedule_lag_us") or {}).get("p99")
    floors = [h.get("p99_us") for h in (report.get("hiccup") or {}).get("per_cpu") or []]
    floor = max((float(f) for f in floors if f is not None), default=None)
    return lag is not None and floor is not None and float(lag) <= FLOOR_EXPLAINS_LAG * floor


def rate_missed(report: dict[str, Any]) -> tuple[bool | None, str]:
    summary = report.get("summary") or {}
    target, achieved = summary.get("target_rate"), summary.get("achieved_rate")
    if not target or achieved is None:
        return None, ""  # closed loop: no target to miss
    # Poisson arrivals put about 1/sqrt(R*D) of noise on how many requests were due in the
    # window; the load generator counts them (scheduled_rate), so judge against that when known.
    due = summary.get("scheduled_rate") or target
    if achieved < RATE_MISSED_LIMIT * due:
        share = achieved / due
        return True, f"achieved {achieved:,.0f} req/s of {due:,.0f} due ({share:.1%})"
    return False, ""


def unsteady(series: list[dict[str, Any]], window_s: float | None) -> tuple[bool | None, str]:
    """Throughput drifting or stepping inside the window (steady.steady_state)."""
    if not series:
        return None, ""
    starts = [float(s.get("start_s") or 0.0) for s in series]
    ends = [*starts[1:], float(window_s) if window_s else starts[-1] + 1.0]
    rates = [
        (s.get("requests") or 0) / (e - b) if e > b else 0.0
        for s, b, e in zip(series, starts, ends, strict=True)
    ]
    verdict = steady.steady_state(rates)
    if verdict.steady is None:
        return None, verdict.reason
    return (not verdict.steady), ("" if verdict.steady else verdict.reason)


CONTENDED_LIMIT = 0.10  # other processes used more than 10% of one of our CPUs


LAG_LIMIT_US = 1000.0  # the load generator's own schedule-lag limit (docs/loadgen.md)


def _wait_left_no_mark(report: dict[str, Any]) -> bool:
    """Open loop: a client thread waited for its CPU, yet every due request was sent and the
    schedule lag p99 stayed within the load generator's 1 ms limit or the platform's own stalls
    (FLOOR_EXPLAINS_LAG x the client CPUs' hiccup p99). The lag is the direct measure of what
    the wait did to the schedule, and it did nothing the noise floor does not already bound: the
    wait stays in the trial's figures (client_runqueue_wait) but does not mark it contended. On
    a 2-CPU VM the platform's own threads alone wait the client 2-4% of a window."""
    summary = report.get("summary") or {}
    due, sent = summary.get("scheduled_rate"), summary.get("sent_rate")
    lag = (summary.get("schedule_lag_us") or {}).get("p99")
    if not due or sent is None or lag is None or sent < RATE_MISSED_LIMIT * due:
        return False
    floors = [h.get("p99_us") for h in (report.get("hiccup") or {}).get("per_cpu") or []]
    floor = max((float(f) for f in floors if f is not None), default=0.0)
    return float(lag) <= max(LAG_LIMIT_US, FLOOR_EXPLAINS_LAG * floor)


def contended(
    busy: dict[int, tuple[float, float]],
    threads: list[dict[str, Any]],
    window_s: float | None,
    report: dict[str, Any] | None = None,
) -> tuple[bool | None, str]:
    """Another process (or the hypervisor: steal) took CPU time on the trial's CPUs, or a
    load-generator thread waited for its CPU (run-queue wait, `client_waits`).

    busy: per CPU, (user+nice+system seconds of everyone, steal seconds) over the window;
    threads: the trial's own threads with the CPU each last ran on and its CPU seconds. What
    the CPU did beyond our threads was somebody else's work: a noisy neighbour. report: the
    load generator's output, whose threads' run-queue waits say the same of the client CPUs.
    """
    waits = [] if _wait_left_no_mark(report or {}) else client_waits(report or {})
    measured_waits = any(
        t.get("runqueue_wait_fraction") is not None for t in _client_threads(report or {})
    )
    if not busy or not window_s:
        if waits:
            return True, "; ".join(waits)
        return (False, "") if measured_waits else (None, "")
    ours: dict[int, float] = {}
    for t in threads:
        ours[t["cpu"]] = ours.get(t["cpu"], 0.0) + t["cpu_s"]
    reasons = []
    for cpu, (used, steal) in sorted(busy.items()):
        other = max(0.0, used - ours.get(cpu, 0.0))
        if other > CONTENDED_LIMIT * window_s:
            reasons.append(f"CPU {cpu}: other processes used {other / window_s:.0%}")
        if steal > CONTENDED_LIMIT * window_s:
            reasons.append(f"CPU {cpu}: hypervisor steal {steal / window_s:.0%}")
    reasons += waits
    return bool(reasons), "; ".join(reasons)


def errors(report: dict[str, Any]) -> tuple[bool | None, str]:
    """Requests lost (timed out, reset, ...): each is in the histogram at its time so far, so the
    tail is a lower bound (docs/loadgen.md "Lost and censored requests"). A server flag."""
    summary = report.get("summary") or {}
    total = summary.get("errors_total")
    if total is None:
        return None, ""
    if not total:
        return False, ""
    kinds = ", ".join(f"{k} {n:,}" for k, n in (summary.get("errors") or {}).items() if n)
    failed = summary.get("failed")
    lost = f", {failed:,} requests lost" if failed is not None else ""
    return True, f"{total:,} errors ({kinds or 'kind not reported'}){lost}"


def censored(report: dict[str, Any]) -> tuple[bool | None, str]:
    """Requests unanswered at the window's end that leave the p99 uncertain (the load
    generator's censored_tail): the p99 shown is at least the true one. A server flag."""
    summary = report.get("summary") or {}
    if "censored_tail" not in summary:
        return None, ""
    if not summary["censored_tail"]:
        return False, ""
    count = summary.get("censored") or 0
    scheduled = (summary.get("scheduled") or {}).get("scheduled")
    of = f" of {scheduled:,} scheduled" if scheduled is not None else ""
    upper = (summary.get("latency_upper_us") or {}).get("p99")
    bound = "no upper bound" if upper is None else f"upper bound {upper:,.0f} µs"
    return True, f"{count:,} requests{of} unanswered at the window's end; p99 {bound}"
