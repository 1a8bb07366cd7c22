"""Split load across client hosts and merge what they measured back into one trial (pure).

Latency distributions combine by adding bucket counts (harness.buckets.merge), never by
averaging percentiles; throughput is the sum of each host's requests over the window that every
host measured (the common window), counted in whole intervals of each host's series.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from harness import buckets
from harness.buckets import Bucket


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
    return buckets.merge(per_host.values())


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


# ---------------------------------------------------------------------------------------------
# One trial's document from several hosts' documents

_PERCENTILES = {"p50": 50, "p90": 90, "p99": 99, "p999": 99.9, "p9999": 99.99}


def _hist(hist: Sequence[Bucket]) -> dict[str, Any]:
    return {
        "unit": "ns",
        "sub_buckets": buckets.SUB_BUCKETS,
        "buckets": [{"lower_ns": lo, "upper_ns": hi, "count": n} for lo, hi, n in hist],
    }


def _figures(docs: Sequence[Mapping[str, Any]], key: str, summary_key: str) -> dict | None:
    """min/mean/max exact from the hosts' own figures; percentiles from the summed buckets."""
    hists = [buckets_of(d.get(key)) for d in docs]
    merged = buckets.merge(hists)
    n = buckets.total(merged)
    if n == 0:
        return None
    parts = [
        (d["summary"].get(summary_key) or {}, buckets.total(h))
        for d, h in zip(docs, hists, strict=True)
    ]
    present = [(f, c) for f, c in parts if c and f.get("mean") is not None]
    out: dict[str, Any] = {
        "min": min((f["min"] for f, _ in present), default=None),
        "mean": sum(f["mean"] * c for f, c in present) / sum(c for _, c in present)
        if present
        else None,
    }
    for name, p in _PERCENTILES.items():
        out[name] = buckets.percentile_us(merged, p)
    out["max"] = max((f["max"] for f, _ in present), default=None)
    return out


def _upper_bounds(latency: Sequence[Bucket], censored: Sequence[Bucket]) -> dict[str, Any]:
    """Percentiles with every censored request taken as unbounded (docs/loadgen.md): None where
    the rank falls among the censored ones."""
    counts = {(lo, hi): n for lo, hi, n in latency}
    for lo, hi, n in censored:
        counts[(lo, hi)] = counts.get((lo, hi), 0) - n
    answered = [(lo, hi, n) for (lo, hi), n in sorted(counts.items()) if n > 0]
    total, known = buckets.total(latency), buckets.total(answered)
    out: dict[str, Any] = {}
    for name, p in _PERCENTILES.items():
        rank = max(1, math.ceil(Fraction(str(p)) / 100 * total)) if total else 0
        out[name] = _at_rank(answered, rank) if 0 < rank <= known else None
    return out


def _at_rank(hist: Sequence[Bucket], rank: int) -> float:
    seen = 0
    for _, hi, n in hist:
        seen += n
        if seen >= rank:
            return (hi - 1) / 1000
    raise ValueError("rank beyond the histogram")


def _sum(values: Sequence[Any]) -> Any:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def merge_reports(
    per_host: Mapping[str, Mapping[str, Any]], window_start_ns: Mapping[str, int]
) -> dict[str, Any]:
    """The trial's load-generator document from each client host's (same keys, so the store
    and the flags read it as one host's): counts and histograms summed, percentiles read from
    the sums, throughput over the common window (window_start_ns: each host's window start in
    the harness's clock). Per-host figures stay in `hosts`."""
    hosts = list(per_host)
    docs = [per_host[h] for h in hosts]
    first = docs[0]
    through = merge_throughput([series_of(h, per_host[h], window_start_ns[h]) for h in hosts])
    open_loop = first.get("latency_kind") == "open-loop-corrected"
    latency = buckets.merge(buckets_of(d.get("histogram")) for d in docs)
    censored = buckets.merge(buckets_of(d.get("censored_histogram")) for d in docs)
    service = buckets.merge(buckets_of(d.get("service_histogram")) for d in docs)
    hiccups = [
        {**c, "host": h} for h, d in zip(hosts, docs, strict=True)
        for c in (d.get("hiccup") or {}).get("per_cpu", [])
    ]  # fmt: skip
    return {
        "schema": first["schema"],
        "config": _merged_config(docs),
        "latency_kind": first.get("latency_kind"),
        "summary": _merged_summary(hosts, docs, through, (latency, censored), open_loop),
        "histogram": _hist(latency),
        "service_histogram": _hist(service) if open_loop else None,
        "series": _merged_series(docs),
        "client_cpu": _merged_client_cpu(hosts, docs),
        "censored_histogram": _hist(censored) if open_loop else None,
        "hiccup": {"interval_us": 1000, "per_cpu": hiccups} if hiccups else None,
        "hosts": {
            "common_window_ns": [through.window_start_ns, through.window_end_ns],
            "per_host": {
                h: {
                    "window_start_ns": window_start_ns[h],
                    "rate_rps": through.per_host_rps[h],
                    "covered_s": through.per_host_covered_s[h],
                    "requests": per_host[h]["summary"]["requests"],
                    "target_rate": per_host[h]["summary"].get("target_rate"),
                }
                for h in hosts
            },
        },
    }


def _merged_summary(
    hosts: list[str],
    docs: list[Mapping[str, Any]],
    through: MergedThroughput,
    hists: tuple[list[Bucket], list[Bucket]],
    open_loop: bool,
) -> dict[str, Any]:
    """The hosts' summaries as one: counts summed, percentiles from the summed histograms
    (hists: latency and censored), rates over the common window."""
    latency, censored = hists
    sums = [d["summary"] for d in docs]
    errors: dict[str, int] = {}
    for s in sums:
        for kind, n in (s.get("errors") or {}).items():
            errors[kind] = errors.get(kind, 0) + n
    limits = [  # each host's records (docs/loadgen.md, client_limits), named by their host
        {**r, "host": h}
        for h, s in zip(hosts, sums, strict=True)
        for r in s.get("client_limits") or []
    ]
    lag = [s.get("schedule_lag_us") for s in sums if s.get("schedule_lag_us")]
    scheduled = [s.get("scheduled") for s in sums if s.get("scheduled")]
    summary: dict[str, Any] = {
        "requests": sum(s["requests"] for s in sums),
        "errors_total": sum(s["errors_total"] for s in sums),
        "errors": errors,
        "bytes_sent": _sum([s.get("bytes_sent") for s in sums]),
        "bytes_received": _sum([s.get("bytes_received") for s in sums]),
        "window_s": sums[0].get("window_s"),
        "throughput_rps": through.total_rps,
        "clamped": _sum([s.get("clamped") for s in sums]),
        "latency_us": _figures(docs, "histogram", "latency_us"),
        "service_latency_us": _figures(docs, "service_histogram", "service_latency_us")
        if open_loop
        else None,
        "target_rate": _sum([s.get("target_rate") for s in sums]),
        "scheduled_rate": _sum([s.get("scheduled_rate") for s in sums]),
        "achieved_rate": through.total_rps,
        "sent_rate": _sum([s.get("sent_rate") for s in sums]),
        # No per-host histogram of the lag: the worst host's figures, an upper bound of the
        # merged ones (a mixture's percentile is at most its largest component's).
        "schedule_lag_us": {k: max(x[k] for x in lag) for k in ("p50", "p99", "max")}
        if lag
        else None,
        "client_bound": any(s.get("client_bound") for s in sums),
        # loadgen/1 hosts wrote no records: the flags then derive them from the figures
        **({"client_limits": limits} if any("client_limits" in s for s in sums) else {}),
        "failed": sum(s.get("failed") or 0 for s in sums),
        "censored": _sum([s.get("censored") for s in sums]),
        "censored_latency_us": _figures(docs, "censored_histogram", "censored_latency_us")
        if open_loop
        else None,
        "latency_upper_us": _upper_bounds(latency, censored) if open_loop else None,
        "censored_tail": False,
        "scheduled": {k: sum(x[k] for x in scheduled) for k in scheduled[0]} if scheduled else None,
    }
    if open_loop and summary["latency_us"] and summary["latency_upper_us"]:
        upper, p99 = summary["latency_upper_us"]["p99"], summary["latency_us"]["p99"]
        summary["censored_tail"] = upper is None or upper > 1.01 * p99
    return summary


def _merged_series(docs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Requests and errors per interval summed over the hosts (no per-interval percentile:
    the hosts' cannot be combined)."""
    by_interval: dict[int, dict[str, Any]] = {}
    for d in docs:
        for row in d.get("series") or []:
            acc = by_interval.setdefault(
                row["interval"], {"interval": row["interval"], "start_s": row["start_s"],
                                  "requests": 0, "errors": 0, "p50_us": None, "p99_us": None,
                                  "p999_us": None},
            )  # fmt: skip
            acc["requests"] += row["requests"]
            acc["errors"] += row["errors"]
    return [by_interval[i] for i in sorted(by_interval)]


def _merged_client_cpu(hosts: list[str], docs: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The load generators' CPU time summed, each thread kept with its host."""
    cpu_threads = [
        {**t, "host": h} for h, d in zip(hosts, docs, strict=True)
        for t in (d.get("client_cpu") or {}).get("threads", [])
    ]  # fmt: skip
    user = _sum([(d.get("client_cpu") or {}).get("user_s") for d in docs])
    system = _sum([(d.get("client_cpu") or {}).get("system_s") for d in docs])
    return {"user_s": user, "system_s": system, "total_s": _sum([user, system]),
            "threads": cpu_threads}  # fmt: skip


def _merged_config(docs: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The first host's options, with the connections, threads and rate of all of them."""
    config = dict(docs[0]["config"])
    config.update(
        connections=sum(d["config"]["connections"] for d in docs),
        threads=sum(d["config"]["threads"] for d in docs),
        rate=_sum([d["config"].get("rate") for d in docs]),
        cpus=None,
        hlog=None,
    )
    return config
