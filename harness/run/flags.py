"""Why a trial's numbers may not be the server's: each flag judged once, as the trial is run, into
typed data (a `Flag`: set or not, and the measured `Cause`s that set it). Nothing here is words:
the store keeps the causes as columns (docs/data.md) and only the report says them.

Pure functions over the load generator's document (its `summary.client_limits` records,
docs/loadgen.md) and the trial's own figures, so the rules are unit-testable and stated in one
place (docs/measurement rules 2, 3, 6).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from harness.run import steady

CLIENT_BUSY_LIMIT = 0.90  # a client thread busier than this may be what limits throughput
RATE_MISSED_LIMIT = 0.99  # open loop: achieved below 99% of target is not a point on a curve
RUNQUEUE_WAIT_LIMIT = 0.02  # the load generator's own limit (docs/loadgen.md): 2% of the window
LAG_LIMIT_US = 1000.0  # the load generator's own schedule-lag limit (docs/loadgen.md)
SENT_SHARE_LIMIT = 0.99  # the load generator's: sent below 99% of scheduled fell behind
CONTENDED_LIMIT = 0.10  # other processes used more than 10% of one of our CPUs
# A lag at most this many times the client CPUs' own hiccup p99 is the platform's stalls (the
# meter on the same CPUs saw them while nothing held the CPU), not a client that fell behind.
FLOOR_EXPLAINS_LAG = 2.0

# The load generator's record kinds (docs/loadgen.md, `client_limits`): a thread's own limits
# say the client was the limit; a wait is contention; the schedule's follow from either.
BUSY_KINDS = ("busy", "no_report")
WAIT = "runqueue_wait"
LAG = "schedule_lag_p99"
FLAG_NAMES = ("client_bound", "rate_missed", "unsteady", "contended", "errors", "censored")


@dataclass(frozen=True)
class Cause:
    """One measured figure behind a flag and the limit it crossed (docs/data.md, "Flags").

    kind: what was measured (a load-generator record kind, or the harness's own: other_processes,
    steal, achieved_rate, drift, step, no_throughput, errors_total, error, lost, censored,
    p99_upper_bound, reported). value/limit/of in unit; `of` is what value is compared with
    (the requests due, the requests scheduled); detail an enum name (an error kind)."""

    kind: str
    value: float | None = None
    limit: float | None = None
    of: float | None = None
    unit: str | None = None
    thread: int | None = None
    cpu: int | None = None
    host: str | None = None
    interval: int | None = None  # a step: the first interval after it
    detail: str | None = None


@dataclass(frozen=True)
class Flag:
    """set: True/False, or None when nothing could be judged (no output, too short a series)."""

    set: bool | None
    causes: tuple[Cause, ...] = ()


def _unset() -> Flag:
    return Flag(None)


@dataclass(frozen=True)
class TrialFlags:
    """Every flag of one trial, as the run judged it."""

    client_bound: Flag = field(default_factory=_unset)
    rate_missed: Flag = field(default_factory=_unset)
    unsteady: Flag = field(default_factory=_unset)
    contended: Flag = field(default_factory=_unset)
    errors: Flag = field(default_factory=_unset)
    censored: Flag = field(default_factory=_unset)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (the trial's raw record, store/raw.py)."""
        return {
            name: {"set": f.set, "causes": [asdict(c) for c in f.causes]}
            for name in FLAG_NAMES
            for f in [getattr(self, name)]
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialFlags:
        known = {f.name for f in fields(Cause)}
        return cls(
            **{
                name: Flag(
                    data[name]["set"],
                    tuple(
                        Cause(**{k: v for k, v in c.items() if k in known})
                        for c in data[name].get("causes") or []
                    ),
                )
                for name in FLAG_NAMES
                if name in data
            }
        )


def _client_threads(report: dict[str, Any]) -> list[dict[str, Any]]:
    return list((report.get("client_cpu") or {}).get("threads") or [])


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _thread_cause(kind: str, value: float, limit: float, thread: dict[str, Any]) -> Cause:
    return Cause(
        kind, value, limit, unit="fraction", thread=thread["thread"], host=thread.get("host")
    )


def _derived_limits(report: dict[str, Any]) -> list[Cause]:
    """A `loadgen/1` document's limits (it wrote sentences, not records), derived from its own
    figures by the load generator's rules (docs/loadgen.md, "Honesty about itself"). An output
    with no verdict of its own at all (no `client_bound`) is judged from its threads' CPU time
    alone."""
    summary = report.get("summary") or {}
    verdict = "client_bound" in summary
    window = summary.get("window_s")
    threads = _client_threads(report)
    out: list[Cause] = []
    for t in threads:
        busy = t.get("busy_fraction")
        if busy is None and window:
            busy = ((t.get("user_s") or 0.0) + (t.get("system_s") or 0.0)) / window
        if busy is not None and busy >= CLIENT_BUSY_LIMIT:
            out.append(_thread_cause("busy", busy, CLIENT_BUSY_LIMIT, t))
        wait = t.get("runqueue_wait_fraction")
        if verdict and wait is not None and wait >= RUNQUEUE_WAIT_LIMIT:
            out.append(_thread_cause(WAIT, wait, RUNQUEUE_WAIT_LIMIT, t))
    reported = {t.get("thread") for t in threads}
    expected = (report.get("config") or {}).get("threads")
    merged = any(t.get("host") for t in threads)  # hosts' threads each count from 0
    if verdict and threads and expected and not merged:
        out += [Cause("no_report", thread=i) for i in range(expected) if i not in reported]
    if not verdict or not summary.get("target_rate"):
        return out
    lag = (summary.get("schedule_lag_us") or {}).get("p99")
    if lag is not None and lag > LAG_LIMIT_US:
        out.append(Cause(LAG, lag, LAG_LIMIT_US, unit="us"))
    due, sent = summary.get("scheduled_rate"), summary.get("sent_rate")
    if due and sent is not None and sent < SENT_SHARE_LIMIT * due:
        out.append(Cause("sent_share", sent / due, SENT_SHARE_LIMIT, unit="fraction"))
    overflow = (summary.get("errors") or {}).get("queue_overflow")
    if overflow:
        out.append(Cause("queue_overflow", overflow, 0.0, unit="requests"))
    return out


def client_limits(report: dict[str, Any]) -> list[Cause]:
    """The load generator's limits, each with the CPU its thread ran on (and the host of a
    trial across hosts): its `client_limits` records, or a `loadgen/1` document's derived."""
    summary = report.get("summary") or {}
    if "client_limits" not in summary:
        records = _derived_limits(report)
    else:
        records = [
            Cause(
                str(r["kind"]),
                _float(r.get("value")),
                _float(r.get("limit")),
                unit=r.get("unit"),
                thread=r.get("thread"),
                host=r.get("host"),
            )
            for r in summary["client_limits"] or []
        ]
    cpus = {(t.get("host"), t.get("thread")): t.get("cpu") for t in _client_threads(report)}
    return [
        Cause(**{**asdict(c), "cpu": cpus.get((c.host, c.thread))}) if c.thread is not None else c
        for c in records
    ]


def _floor_us(report: dict[str, Any]) -> float | None:
    """The client CPUs' noise floor: the worst hiccup p99 its meters saw in the window."""
    floors = [h.get("p99_us") for h in (report.get("hiccup") or {}).get("per_cpu") or []]
    return max((float(f) for f in floors if f is not None), default=None)


def _lag_within_floor(cause: Cause, report: dict[str, Any]) -> bool:
    """Whether a schedule lag is explained by the platform's noise floor, measured by the load
    generator's hiccup meter on its own CPUs in the same window: then the late requests are the
    machine's stalls (stated as the floor beside every latency), not the client's limit."""
    floor = _floor_us(report)
    if cause.kind != LAG or floor is None:
        return False
    lag = ((report.get("summary") or {}).get("schedule_lag_us") or {}).get("p99")
    return lag is not None and float(lag) <= FLOOR_EXPLAINS_LAG * floor


def client_bound(report: dict[str, Any]) -> Flag:
    """Whether the load generator itself was the limit: a thread busy >= 90% of the window or
    one that did not report, or (with neither busy nor waiting threads) its schedule falling
    behind. A thread that only waited for its CPU is contention (the `contended` flag), and so
    are the lag and missed sends that follow from that wait."""
    if not report:
        return Flag(None)
    limits = client_limits(report)
    own = [c for c in limits if c.kind != WAIT]
    busy = [c for c in own if c.kind in BUSY_KINDS]
    waited = len(own) < len(limits)
    # Lag and unsent requests while a thread waited for its CPU and none was busy: the wait
    # explains them (`contended` names them beside it).
    kept = busy if waited and not busy else own
    if not busy:
        kept = [c for c in kept if not _lag_within_floor(c, report)]
    if not limits and (report.get("summary") or {}).get("client_bound"):
        kept = [Cause("reported")]  # its verdict without a record: still the client's word
    return Flag(bool(kept), tuple(kept))


def rate_missed(report: dict[str, Any]) -> Flag:
    summary = report.get("summary") or {}
    target, achieved = summary.get("target_rate"), summary.get("achieved_rate")
    if not target or achieved is None:
        return Flag(None)  # closed loop: no target to miss
    # Poisson arrivals put about 1/sqrt(R*D) of noise on how many requests were due in the
    # window; the load generator counts them (scheduled_rate), so judge against that when known.
    due = summary.get("scheduled_rate") or target
    if achieved < RATE_MISSED_LIMIT * due:
        return Flag(True, (Cause("achieved_rate", achieved, RATE_MISSED_LIMIT, due, "req/s"),))
    return Flag(False)


def unsteady(series: list[dict[str, Any]], window_s: float | None) -> Flag:
    """Throughput drifting or stepping inside the window (steady.steady_state)."""
    if not series:
        return Flag(None)
    starts = [float(s.get("start_s") or 0.0) for s in series]
    ends = [*starts[1:], float(window_s) if window_s else starts[-1] + 1.0]
    rates = [
        (s.get("requests") or 0) / (e - b) if e > b else 0.0
        for s, b, e in zip(series, starts, ends, strict=True)
    ]
    verdict = steady.steady_state(rates)
    if verdict.steady is None:
        return Flag(None)  # too short a series to judge
    if verdict.steady:
        return Flag(False)
    if verdict.kind == "step":
        step = Cause("step", verdict.step, verdict.limit, unit="fraction", interval=verdict.step_at)
        return Flag(True, (step,))
    return Flag(
        True, (Cause(verdict.kind or "drift", verdict.drift, verdict.limit, unit="fraction"),)
    )


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
    return float(lag) <= max(LAG_LIMIT_US, FLOOR_EXPLAINS_LAG * (_floor_us(report) or 0.0))


def client_waits(report: dict[str, Any]) -> list[Cause]:
    """Each client thread that waited for its CPU at least RUNQUEUE_WAIT_LIMIT of the window
    (other processes ran on the load generator's CPU, so its schedule and timestamps were late
    by that much); with no busy thread, also the lag and unsent requests that followed."""
    limits = client_limits(report)
    waits = [c for c in limits if c.kind == WAIT]
    if waits and not any(c.kind in BUSY_KINDS for c in limits):
        waits += [c for c in limits if c.kind != WAIT]  # what followed from the wait
    return waits


def contended(
    busy: dict[int, tuple[float, float]],
    threads: list[dict[str, Any]],
    window_s: float | None,
    report: dict[str, Any] | None = None,
) -> Flag:
    """Another process (or the hypervisor: steal) took CPU time on the trial's CPUs, or a
    load-generator thread waited for its CPU (run-queue wait, `client_waits`).

    busy: per CPU, (user+nice+system seconds of everyone, steal seconds) over the window;
    threads: the trial's own threads with the CPU each last ran on and its CPU seconds. What
    the CPU did beyond our threads was somebody else's work: a noisy neighbour. report: the
    load generator's output, whose threads' run-queue waits say the same of the client CPUs.
    """
    report = report or {}
    waits = [] if _wait_left_no_mark(report) else client_waits(report)
    measured_waits = any(
        t.get("runqueue_wait_fraction") is not None for t in _client_threads(report)
    )
    if not busy or not window_s:
        if waits:
            return Flag(True, tuple(waits))
        return Flag(False) if measured_waits else Flag(None)
    ours: dict[int, float] = {}
    for t in threads:
        ours[t["cpu"]] = ours.get(t["cpu"], 0.0) + t["cpu_s"]
    causes = []
    for cpu, (used, steal) in sorted(busy.items()):
        other = max(0.0, used - ours.get(cpu, 0.0))
        if other > CONTENDED_LIMIT * window_s:
            causes.append(
                Cause(
                    "other_processes", other / window_s, CONTENDED_LIMIT, unit="fraction", cpu=cpu
                )
            )
        if steal > CONTENDED_LIMIT * window_s:
            causes.append(
                Cause("steal", steal / window_s, CONTENDED_LIMIT, unit="fraction", cpu=cpu)
            )
    causes += waits
    return Flag(bool(causes), tuple(causes))


def errors(report: dict[str, Any]) -> Flag:
    """Requests lost (timed out, reset, ...): each is in the histogram at its time so far, so the
    tail is a lower bound (docs/loadgen.md "Lost and censored requests"). A server flag."""
    summary = report.get("summary") or {}
    total = summary.get("errors_total")
    if total is None:
        return Flag(None)
    if not total:
        return Flag(False)
    causes = [Cause("errors_total", total, 0.0, unit="requests")]
    causes += [
        Cause("error", n, unit="requests", detail=kind)
        for kind, n in (summary.get("errors") or {}).items()
        if n
    ]
    if summary.get("failed") is not None:
        causes.append(Cause("lost", summary["failed"], unit="requests"))
    return Flag(True, tuple(causes))


def censored(report: dict[str, Any]) -> Flag:
    """Requests unanswered at the window's end that leave the p99 uncertain (the load
    generator's censored_tail): the p99 shown is at least the true one. A server flag."""
    summary = report.get("summary") or {}
    if "censored_tail" not in summary:
        return Flag(None)
    if not summary["censored_tail"]:
        return Flag(False)
    scheduled = (summary.get("scheduled") or {}).get("scheduled")
    upper = (summary.get("latency_upper_us") or {}).get("p99")
    return Flag(
        True,
        (
            Cause("censored", summary.get("censored") or 0, of=scheduled, unit="requests"),
            Cause("p99_upper_bound", upper, unit="us"),  # value None: no upper bound
        ),
    )


def judge(result: Any) -> TrialFlags:
    """Every flag of a finished trial (a run.trial.TrialResult), judged once."""
    report = result.loadgen or {}
    window = (report.get("summary") or {}).get("window_s")
    busy = getattr(result, "cpu_busy", None) or {}
    return TrialFlags(
        client_bound=client_bound(report),
        rate_missed=rate_missed(report),
        unsteady=unsteady(report.get("series", []), window),
        contended=contended(busy, result.threads, window, report),
        errors=errors(report),
        censored=censored(report),
    )
