"""Split load across client hosts and merge what they measured back into one trial (pure).

Latency distributions combine by adding bucket counts (harness.histogram.merge), never by
averaging percentiles; throughput is the sum of each host's requests over the window that every
host measured (the common window), counted in whole intervals of each host's series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.analysis import histogram
from harness.analysis.histogram import Bucket


def split_rate(total_rps: float, client_cpus: Mapping[str, int]) -> dict[str, float]:
    """The target rate shared out in proportion to each host's client CPUs."""
    cpus = sum(client_cpus.values())
    if total_rps < 0 or cpus <= 0 or any(n < 0 for n in client_cpus.values()):
        raise ValueError("a non-negative rate and at least one client CPU are needed")
    return {host: total_rps * n / cpus for host, n in client_cpus.items()}


def buckets_of(report_histogram: Mapping[str, Any] | None) -> list[Bucket]:
    """The (lower_ns, upper_ns, count) buckets of a loadgen JSON `histogram` object."""
    if not report_histogram:
        return []
    return [(b["lower_ns"], b["upper_ns"], b["count"]) for b in report_histogram["buckets"]]


def merge_histograms(per_host: Mapping[str, Sequence[Bucket]]) -> list[Bucket]:
    """The trial's histogram: every host's counts added bucket by bucket."""
    return histogram.merge(per_host.values())


@dataclass(frozen=True)
class HostSeries:
    """One host's per-interval request counts; start_ns is its measured window's start in the
    common (harness) clock, i.e. the host's own time minus its clock offset."""

    host: str
    start_ns: int
    interval_ns: int
    requests: tuple[int, ...]

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.interval_ns * len(self.requests)


@dataclass(frozen=True)
class MergedThroughput:
    window_start_ns: int
    window_end_ns: int
    per_host_rps: dict[str, float]
    per_host_covered_s: dict[str, float]  # whole intervals of each host inside the window
    total_rps: float


def common_window(series: Sequence[HostSeries]) -> tuple[int, int]:
    """The span every host measured: the latest start to the earliest end."""
    if not series:
        raise ValueError("no host series")
    start, end = max(s.start_ns for s in series), min(s.end_ns for s in series)
    if end <= start:
        names = ", ".join(s.host for s in series)
        raise ValueError(f"the hosts' measured windows do not overlap ({names})")
    return start, end


def merge_throughput(series: Sequence[HostSeries]) -> MergedThroughput:
    """Sum of the hosts' rates over the common window. Each host counts only its intervals that
    lie wholly inside the window, divided by the time those intervals cover."""
    start, end = common_window(series)
    rates: dict[str, float] = {}
    covered: dict[str, float] = {}
    for s in series:
        inside = [
            n
            for i, n in enumerate(s.requests)
            if s.start_ns + i * s.interval_ns >= start
            and s.start_ns + (i + 1) * s.interval_ns <= end
        ]
        if not inside:
            raise ValueError(f"{s.host} has no whole interval inside the common window")
        seconds = len(inside) * s.interval_ns / 1e9
        rates[s.host] = sum(inside) / seconds
        covered[s.host] = seconds
    return MergedThroughput(start, end, rates, covered, sum(rates.values()))


def series_of(host: str, report: Mapping[str, Any], window_start_ns: int) -> HostSeries:
    """A HostSeries from a loadgen JSON document and its window start in the common clock."""
    interval_ns = int(report["config"]["interval_ms"]) * 1_000_000
    rows = sorted(report["series"], key=lambda r: r["interval"])
    return HostSeries(host, window_start_ns, interval_ns, tuple(int(r["requests"]) for r in rows))
