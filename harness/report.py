"""Stage 5: one self-contained HTML report of a stored run (charts inline, no external URL), and
the machine-readable exports beside it (harness/export.py).

The report answers the question first (thread-per-core / work-stealing ratios with intervals and
criterion's verdicts, in a sentence and a table), then shows the charts that explain it, every
configuration, every flagged or failed trial with its reason, and how each number was measured
on which machine, generated from the run's manifest.
"""

from __future__ import annotations

import math
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from harness import analyse, charts, cpus, flags, histogram, stats
from harness.analyse import Analysis, ConfigSummary, DesignComparison
from harness.store import RunData

# --------------------------------------------------------------------------------------------
# Number formatting (shared with the exports)


def fmt(value: float | None, spec: str = ",.0f", none: str = "n/a") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return none
    return format(value, spec)


def fmt_us(value: float | None) -> str:
    """Latency in µs with three significant figures (the histogram's own precision)."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"


def fmt_ratio(i: stats.Interval | None) -> str:
    if i is None:
        return "n/a"
    return f"{i.estimate:.2f}x ({i.low:.2f}-{i.high:.2f})"


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


def coverage(i: stats.Interval | None) -> str:
    """What an interval promises, in words (a 3-repetition range is not a 95% interval)."""
    if i is None:
        return ""
    if i.method is stats.CIMethod.RANGE:
        if i.n < 2:
            return "one repetition: no interval"
        return f"min-max of {i.n}: covers the median with {i.level * 100:.3g}% probability, not 95%"
    if i.method is stats.CIMethod.ORDER_STATISTIC:
        return f"{i.level * 100:.3g}% order-statistic interval of the median (n={i.n})"
    text = f"{i.level:.0%} bootstrap interval (n={i.n} a side)"
    if i.n < 6:
        text += "; with fewer than 6 repetitions a side it covers less than its nominal level"
    return text


def cores_text(k: int) -> str:
    return plural(k, "core")


# --------------------------------------------------------------------------------------------
# The answer


@dataclass
class PairRow:
    """One thread-per-core / work-stealing comparison, formatted."""

    headline: bool
    cores: int
    workload: str
    mode: str
    tpc: str
    ws: str
    throughput: str
    throughput_verdict: str
    throughput_change: str
    p99: str
    p99_verdict: str
    n: str
    p_value: str
    sentence: str
    note: str = ""
    css: str = ""


def _verdict_css(label: str) -> str:
    return {"faster": "better", "lower": "better", "slower": "worse", "higher": "worse"}.get(
        label, "neutral"
    )


def _kinds_text(kinds: Counter[str]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in kinds.most_common())


def _why_not(s: ConfigSummary | None, server: str, kinds: Counter[str] | None = None) -> str:
    """Why a design has no ranked trial in a configuration (kinds: how many of its trials
    carry each flag, when the caller has the trials)."""
    if s is None:
        return f"{server} did not run this configuration"
    total = s.trials_ok + s.trials_failed
    ranked = s.trials_ok - s.trials_flagged
    parts = [f"{server}: {ranked} ranked of {plural(total, 'trial')}"]
    if s.trials_failed:
        parts.append(f"{s.trials_failed} failed")
    if s.trials_flagged:
        what = (
            _kinds_text(kinds)
            if kinds
            else "; ".join(dict.fromkeys(r.split(":")[0] for r in s.flag_reasons))
        )
        parts.append(f"{s.trials_flagged} flagged ({what})")
    return ", ".join(parts)


def p99_comparison(a: ConfigSummary | None, b: ConfigSummary | None) -> stats.Comparison | None:
    """criterion's rule on per-trial p99 (lower is better); the interval equals p99_ratio's."""
    if a is None or b is None:
        return None
    return stats.compare(a.p99_samples, b.p99_samples, higher_is_better=False)


def pair_row(
    c: DesignComparison,
    a: ConfigSummary | None,
    b: ConfigSummary | None,
    kinds: dict[tuple[str, int, str], Counter[str]] | None = None,
) -> PairRow:
    mode = a.mode if a else (b.mode if b else "closed")
    kind = (a.latency_kind if a else None) or "closed-loop"
    verdict = c.verdict.label("faster", "slower") if c.verdict else "insufficient data"
    change = ""
    if c.verdict:
        change = f"{c.verdict.estimate:+.1%} [{c.verdict.ci_low:+.1%}, {c.verdict.ci_high:+.1%}]"
    p99c = p99_comparison(a, b)
    p99_verdict = p99c.label("lower", "higher") if p99c else "insufficient data"
    n_a = len(a.throughput_samples) if a else 0
    n_b = len(b.throughput_samples) if b else 0
    p_value = fmt(c.verdict.p_value, ".2g") if c.verdict and c.verdict.p_value is not None else ""
    kinds = kinds or {}
    at = f"At {cores_text(c.server_cores)} on {c.workload}"
    why = "; ".join(
        w
        for w in (
            _why_not(
                a, c.thread_per_core, kinds.get((c.thread_per_core, c.server_cores, c.workload))
            )
            if n_a == 0
            else "",
            _why_not(b, c.work_stealing, kinds.get((c.work_stealing, c.server_cores, c.workload)))
            if n_b == 0
            else "",
        )
        if w
    )
    why = why or "a median is not positive, so no ratio exists"
    if mode == "open":
        throughput, verdict, change = "offered load", "not compared", ""
        if c.p99_ratio is None:
            sentence = f"{at}, {c.thread_per_core} and {c.work_stealing} cannot be compared: {why}."
        else:
            rates = ""
            if a and b and a.achieved_rate and b.achieved_rate:
                rates = (
                    f" ({c.thread_per_core} at {a.achieved_rate:,.0f} req/s, "
                    f"{c.work_stealing} at {b.achieved_rate:,.0f} req/s)"
                )
            sentence = (
                f"{at}{rates}, the p99 latency of thread-per-core ({c.thread_per_core}), measured "
                f"from the intended send time, was {fmt_ratio(c.p99_ratio)} that of "
                f"work-stealing ({c.work_stealing}): {p99_verdict}."
            )
    elif c.throughput_ratio is None:
        throughput = "n/a"
        sentence = f"{at}, {c.thread_per_core} and {c.work_stealing} cannot be compared: {why}."
    else:
        throughput = fmt_ratio(c.throughput_ratio)
        sentence = (
            f"{at}, thread-per-core ({c.thread_per_core}) served {throughput} the requests per "
            f"second of work-stealing ({c.work_stealing}): {verdict}"
        )
        if c.p99_ratio is not None:
            sentence += f"; its {kind} p99 latency was {fmt_ratio(c.p99_ratio)}: {p99_verdict}"
        sentence += "."
    note = "†" if (c.throughput_ratio or c.p99_ratio) and min(n_a, n_b) < 6 else ""
    if mode == "open":
        p_value = ""
    return PairRow(
        headline=c.headline,
        cores=c.server_cores,
        workload=c.workload,
        mode=mode,
        tpc=c.thread_per_core,
        ws=c.work_stealing,
        throughput=throughput,
        throughput_verdict=verdict,
        throughput_change=change,
        p99=fmt_ratio(c.p99_ratio),
        p99_verdict=p99_verdict,
        n=f"{n_a} vs {n_b}",
        p_value=p_value,
        sentence=sentence,
        note=note,
        css=_verdict_css(verdict if mode == "closed" else p99_verdict),
    )


# What to do about a run whose trials were all flagged, by the flag most of them carry.
ADVICE = {
    "client_bound": (
        "the load generator could not outrun the server: give it more CPUs (a machine with "
        f"more cores: the harness gives {cpus.CLIENT_PER_SERVER_CORE} client CPUs per server "
        "core when it can; --client-cpus), or measure below capacity in open loop (--mode open "
        "--rate-sweep 0.5,0.8), or make the server do more per request (--work fixed:20)."
    ),
    "contended": (
        "other processes used the trial's CPUs: stop them (see harness doctor) and run again."
    ),
    "oversubscribed": "use --cores within the machine.",
    "unsteady": "throughput drifted inside the window: lengthen --duration / --warmup.",
    "rate_missed": "the servers fell behind the schedule: lower the offered rates.",
}


def dominant_flag(trials: pd.DataFrame) -> str | None:
    """The flag most flagged trials carry (ties go to the one that best explains a trial)."""
    if trials.empty or "flagged" not in trials:
        return None
    flagged = trials[trials["flagged"]]
    counts = charts.flag_counts(flagged)
    if not counts:
        return None
    order = [column for column, _kind in charts.FLAG_KINDS]
    kind_to_column = {kind: column for column, kind in charts.FLAG_KINDS}
    best = max(counts.items(), key=lambda kv: (kv[1], -order.index(kind_to_column[kv[0]])))
    return kind_to_column[best[0]]


def advice(trials: pd.DataFrame) -> str | None:
    flag = dominant_flag(trials)
    return ADVICE.get(flag) if flag else None


def unrankable(trials: pd.DataFrame, analysis: Analysis, manifest: dict[str, Any]) -> str | None:
    """Why no pair of designs could be ranked in this run, or None when one could."""
    if any(c.throughput_ratio or c.p99_ratio for c in analysis.comparisons):
        return None
    if trials.empty:
        outcome = manifest.get("outcome") or {}
        if outcome.get("interrupted"):
            return "the run was interrupted before its first trial finished: it has no trials."
        return "this run has no trials."
    n = len(trials)
    ok = trials["status"] == "ok"
    if not ok.any():
        reasons = Counter(str(r).split(":")[0] for r in trials["reason"].fillna("unknown"))
        top = "; ".join(f"{why} ({k})" for why, k in reasons.most_common(3))
        return f"all {n} trials failed, so nothing was measured ({top}). See the failed trials."
    if not trials["ranked"].any():
        flagged = trials[trials["flagged"]]
        kinds = _kinds_text(charts.flag_counts(flagged))
        return (
            f"every successful trial was flagged ({kinds}): their numbers may not be the "
            "server's, so none is ranked. They are drawn below, marked as flagged, and their "
            "medians are in the table of every configuration."
        )
    ranked = trials[trials["ranked"]]
    families = set(ranked["design_family"])
    if "thread-per-core" not in families:
        return "no thread-per-core design has a ranked trial in this run."
    if "work-stealing" not in families:
        return "no work-stealing design has a ranked trial in this run."
    return (
        "no configuration has ranked trials of both a thread-per-core and a work-stealing "
        "design (they ran, or succeeded, in different configurations)."
    )


@dataclass
class Answer:
    headline: list[PairRow] = field(default_factory=list)
    others: list[PairRow] = field(default_factory=list)
    summary: str = ""
    unrankable: str | None = None
    advice: str | None = None  # what to do when flags made the run unrankable
    any_dagger: bool = False
    p99_verdicts: dict[tuple, str] = field(default_factory=dict)


def answer(analysis: Analysis, trials: pd.DataFrame, manifest: dict[str, Any]) -> Answer:
    by_key = {(s.server, s.server_cores, s.label): s for s in analysis.summaries}
    out = Answer(unrankable=unrankable(trials, analysis, manifest))
    if out.unrankable and not trials.empty:
        out.advice = advice(trials)
    kinds = {
        (str(server), int(cores), str(label)): charts.flag_counts(group)
        for (server, cores, label), group in (
            trials[trials["flagged"]].groupby(["server", "server_cores", "label"])
            if not trials.empty
            else []
        )
    }
    for c in analysis.comparisons:
        a = by_key.get((c.thread_per_core, c.server_cores, c.workload))
        b = by_key.get((c.work_stealing, c.server_cores, c.workload))
        row = pair_row(c, a, b, kinds)
        out.p99_verdicts[charts.pair_key(c)] = row.p99_verdict
        (out.headline if c.headline else out.others).append(row)
        out.any_dagger |= bool(row.note)
    # Closed-loop rows first: they answer "who serves more"; open-loop rows answer "whose tail".
    for rows in (out.headline, out.others):
        rows.sort(key=lambda r: (r.mode != "closed", r.workload, r.cores, r.tpc, r.ws))
    closed = [
        c
        for c in analysis.comparisons
        if c.headline
        and c.throughput_ratio is not None
        and (s := by_key.get((c.thread_per_core, c.server_cores, c.workload)))
        and s.mode == "closed"
    ]
    if closed:
        counts = Counter(
            c.verdict.label("faster", "slower") if c.verdict else "insufficient data"
            for c in closed
        )
        words = ", ".join(
            f"\u201c{w}\u201d in {counts[w]}"
            for w in ("faster", "slower", "within noise", "no change", "insufficient data")
            if counts[w]
        )
        gm = stats.geometric_mean(
            [c.throughput_ratio.estimate for c in closed if c.throughput_ratio is not None]
        )
        out.summary = (
            f"Headline pair, {closed[0].thread_per_core} against {closed[0].work_stealing} (the "
            "same tokio runtime and I/O code; only the scheduler differs): criterion's verdict on "
            f"thread-per-core's throughput was {words} of "
            f"{plural(len(closed), 'closed-loop configuration')}"
            + (f"; geometric mean of the throughput ratios {gm:.2f}x." if gm else ".")
        )
    elif analysis.comparisons and not out.headline:
        out.summary = (
            "The headline pair (tokio-tpc against tokio-ws, where only the scheduler differs) was "
            "not run; the pairs below compare designs that also differ in runtime or I/O code, "
            "so a difference is not the scheduler's alone."
        )
    return out


# --------------------------------------------------------------------------------------------
# Tables


def interval_text(i: stats.Interval | None) -> str:
    if i is None:
        return ""
    return f"{i.low:,.0f}-{i.high:,.0f}"


def coverage_short(i: stats.Interval | None) -> str:
    if i is None:
        return ""
    if i.method is stats.CIMethod.RANGE:
        return "1 trial" if i.n < 2 else f"{i.level * 100:.3g}% (min-max of {i.n})"
    if i.method is stats.CIMethod.ORDER_STATISTIC:
        return f"{i.level * 100:.3g}% (order statistics, n={i.n})"
    return f"{i.level:.0%} bootstrap (n={i.n})"


def flagged_row(s: ConfigSummary, data: charts.Data | None) -> dict[str, Any] | None:
    """What a configuration's flagged trials measured, for a row of its own beside the ranked
    one: never ranked, but never hidden either (medians over the flagged trials, latency
    percentiles from their merged histograms)."""
    if data is None or not s.trials_flagged:
        return None
    f = data.flagged_of(s)
    if f.empty:
        return None

    def median(column: str) -> float | None:
        return stats.median([float(x) for x in f[column].dropna()])

    tput = [float(x) for x in f["throughput_rps"].dropna()]
    merged = data.merged_flagged(s)
    util = median("server_cpu_util")
    n = len(f)
    return {
        "label": f"flagged, not ranked: median over {plural(n, 'trial')} "
        f"({_kinds_text(charts.flag_counts(f))})",
        "throughput": fmt(stats.median(tput)),
        "range": f"{min(tput):,.0f}-{max(tput):,.0f}" if len(tput) > 1 else "",
        "coverage": "flagged range" if len(tput) > 1 else "",
        "p50": fmt_us(histogram.percentile_us(merged, 50)),
        "p99": fmt_us(histogram.percentile_us(merged, 99)),
        "p999": fmt_us(histogram.percentile_us(merged, 99.9)),
        "uncorrected_p99": fmt_us(median("uncorrected_p99_us")),
        "cpu_util": fmt(util * 100 if util is not None else None, ".0f")
        + ("%" if util is not None else ""),
        "efficiency": fmt(median("requests_per_server_cpu_s")),
        "ctxt": fmt(median("ctxt_per_request"), ".3g"),
        "imbalance": fmt(analyse.imbalance_of(data.workers, list(f["trial_id"])), ".2f", ""),
    }


def config_groups(analysis: Analysis, data: charts.Data | None = None) -> list[dict[str, Any]]:
    """The summaries grouped by workload (closed loop first), rows by cores then server; with
    `data`, each row with flagged trials carries their medians (`flagged_row`)."""
    groups: dict[str, dict[str, Any]] = {}
    for s in sorted(
        analysis.summaries, key=lambda s: (s.mode != "closed", s.label, s.server_cores, s.server)
    ):
        group = groups.setdefault(
            s.label,
            {"workload": s.label, "mode": s.mode, "latency_kind": s.latency_kind, "rows": []},
        )
        group["latency_kind"] = group["latency_kind"] or s.latency_kind
        group["rows"].append(
            {
                "server": s.server,
                "family": s.design_family,
                "io": s.io_model,
                "cores": s.server_cores,
                "ok": s.trials_ok - s.trials_flagged,
                "failed": s.trials_failed,
                "flagged": s.trials_flagged,
                "throughput": fmt(s.throughput.estimate if s.throughput else None),
                "ci": interval_text(s.throughput),
                "coverage": coverage_short(s.throughput),
                "p50": fmt_us(s.p50_us),
                "p99": fmt_us(s.p99_us),
                "p999": fmt_us(s.p999_us),
                "uncorrected_p99": fmt_us(s.uncorrected_p99_us),
                "cpu_util": fmt(
                    s.server_cpu_util * 100 if s.server_cpu_util is not None else None, ".0f"
                )
                + ("%" if s.server_cpu_util is not None else ""),
                "efficiency": fmt(s.requests_per_server_cpu_s),
                "ctxt": fmt(s.ctxt_per_request, ".3g"),
                "imbalance": fmt(s.worker_imbalance, ".2f", ""),
                "warnings": len(s.warnings),
                "flagged_row": flagged_row(s, data),
            }
        )
    return list(groups.values())


def problem_rows(analysis: Analysis, trials: pd.DataFrame) -> list[dict[str, Any]]:
    """Every failed and every flagged trial with its reason, in run order."""
    if trials.empty:
        return []
    label = dict(zip(trials["trial_id"], trials["label"], strict=True))
    rows = []
    for _, r in analysis.failed.iterrows():
        rows.append(
            {
                "index": int(r["trial_index"]),
                "trial_id": r["trial_id"],
                "status": "failed",
                "server": r["server"],
                "cores": int(r["server_cores"]),
                "workload": label.get(r["trial_id"], ""),
                "reason": r["reason"] or "(no reason recorded)",
            }
        )
    for _, r in analysis.flagged.iterrows():
        rows.append(
            {
                "index": int(r["trial_index"]),
                "trial_id": r["trial_id"],
                "status": "flagged",
                "server": r["server"],
                "cores": int(r["server_cores"]),
                "workload": label.get(r["trial_id"], ""),
                "reason": r.get("reasons") or "flagged",
            }
        )
    return sorted(rows, key=lambda r: r["index"])


# --------------------------------------------------------------------------------------------
# Methods, platform, reproduction (all from the manifest)


def _value(v: Any) -> str:
    if isinstance(v, list | tuple):
        return ", ".join(_value(x) for x in v) if v else "(none)"
    if v is None:
        return "(not set)"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def cpu_rows(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The CPU assignment of each core count (docs/measurement rule 1)."""
    seen: dict[int, dict[str, Any]] = {}
    for t in plan.get("trials", []):
        k = t.get("server_cores")
        cpus = t.get("cpus") or {}
        if k in seen or not cpus:
            continue
        client = list(cpus.get("client", []))[
            : max(1, min(len(cpus.get("client", [])), t.get("connections") or 1))
        ]
        seen[k] = {
            "cores": k,
            "server": _value(cpus.get("server", [])),
            "client": _value(client),
            "oversubscribed": bool(cpus.get("oversubscribed")),
            "note": cpus.get("note", ""),
        }
    return [seen[k] for k in sorted(seen)]


def design_order(plan: dict[str, Any]) -> str:
    trials = plan.get("trials", [])
    if not trials:
        return ""
    first = trials[0]
    key = (first.get("repetition"), first.get("server_cores"))
    order: list[str] = []
    for t in trials:
        if (t.get("repetition"), t.get("server_cores")) != key:
            break
        if t.get("server") not in order:
            order.append(t.get("server"))
    return ", ".join(order)


def methods(manifest: dict[str, Any]) -> dict[str, Any]:
    plan = manifest.get("plan") or {}
    config = plan.get("config") or {}
    mode = config.get("mode", "closed")
    seed = config.get("seed")
    order = design_order(plan)
    interleave = (
        f"Designs are interleaved inside every repetition (first group: {order}), so that drift "
        "of the machine (heat, other tenants) hits every design alike"
        + (
            f"; the order inside each group is shuffled with seed {seed} (recorded, so the same "
            "order comes back)."
            if seed is not None
            else "; the order is the order of --servers."
        )
    )
    if mode == "open":
        rates = config.get("rates") or []
        sweep = config.get("rate_sweep") or []
        offered = []
        if rates:
            offered.append("fixed rates of " + ", ".join(f"{r:,.0f}" for r in rates) + " req/s")
        if sweep:
            offered.append(
                "fractions " + ", ".join(f"{f:g}x" for f in sweep) + " of each design's own "
                "capacity, measured by a closed-loop trial run just before them in the same "
                "repetition (so every design is offered the same share of what it can do, and "
                "the absolute rates differ)"
            )
        arrival = config.get("arrival", "poisson")
        schedule = " and ".join(offered)
        load = (
            "Open loop, wrk2's model: the load generator sends on a schedule "
            f"({arrival} arrivals) at {schedule}, whether or not answers have come back. "
            "Latency is measured from each request's intended send time, so a server that "
            "stalls is charged for every request queued behind the stall (no coordinated "
            "omission); the "
            "uncorrected latency from the actual send is kept beside it. A trial whose achieved "
            f"rate falls below {flags.RATE_MISSED_LIMIT:.0%} of the target is flagged "
            "'rate missed': it is not a point on the server's latency curve."
        )
    else:
        load = (
            "Closed loop: each connection sends one message, waits for the complete answer, "
            "checks every byte, and sends the next. The server's speed sets the rate, so these "
            "are throughput experiments; their latency is 'closed-loop latency', what a "
            "connection waited for each answer while all connections were kept busy, which is "
            "not the latency of a server offered a given rate."
        )
    return {
        "config": [(k, _value(v)) for k, v in config.items()],
        "mode": mode,
        "load": load,
        "interleave": interleave,
        "warmup": config.get("warmup_s"),
        "duration": config.get("duration_s"),
        "repeat": config.get("repeat"),
        "cpus": cpu_rows(plan),
        "client_busy": f"{flags.CLIENT_BUSY_LIMIT:.0%}",
        "rate_missed": f"{flags.RATE_MISSED_LIMIT:.0%}",
        "steady_limit": f"{stats.STEADY_DRIFT_LIMIT:.0%}",
        "level": f"{stats.DEFAULT_LEVEL:.0%}",
        "threshold": f"{stats.DEFAULT_NOISE_THRESHOLD:.0%}",
        "resamples": f"{stats.DEFAULT_RESAMPLES:,}",
        "min_reps": stats.MIN_REPETITIONS,
        "spread": f"{stats.SPREAD_WARN_FRACTION:.0%}",
        "left_out": manifest.get("left_out") or {},
        "plan_source": manifest.get("plan_source"),
    }


def platform_rows(manifest: dict[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    p = manifest.get("platform") or {}
    py = p.get("pyperf") or {}
    topo = p.get("topology") or {}
    git = p.get("git") or {}
    rows = [
        ("kernel", f"{p.get('kernel', 'unknown')} ({p.get('machine', '?')})"),
        ("host", _value(p.get("hostname", py.get("hostname")))),
        ("CPU model", _value(py.get("cpu_model_name"))),
        (
            "topology",
            (
                f"{topo.get('cpus', '?')} CPUs on {topo.get('physical_cores', '?')} "
                f"physical cores, {topo.get('numa_nodes', '?')} NUMA node(s), SMT "
                f"{'on' if topo.get('smt') else 'off'}"
            )
            if topo
            else "unknown",
        ),
        ("CPU frequency", _value(py.get("cpu_freq"))),
        ("CPU config (governor, idle)", _value(py.get("cpu_config"))),
        ("CPUs the harness could use", _value(p.get("cpu_affinity"))),
        ("ASLR", _value(py.get("aslr"))),
        ("load average (1 min) at start", _value(py.get("load_avg_1min"))),
        ("rustc / cargo", f"{_value(p.get('rustc'))} / {_value(p.get('cargo'))}"),
        ("Python", _value(p.get("python"))),
        (
            "git commit",
            f"{git.get('commit') or 'unknown'}"
            + (" (with uncommitted changes)" if git.get("dirty") else ""),
        ),
    ]
    return rows, [(k, _value(v)) for k, v in sorted(py.items())]


def reproduce(manifest: dict[str, Any], run: RunData) -> dict[str, Any]:
    git = (manifest.get("platform") or {}).get("git") or {}
    run_id = manifest.get("run_id", run.directory.name)
    return {
        "command": shlex.join(manifest.get("command") or []) or "(not recorded)",
        "commit": git.get("commit") or "unknown",
        "dirty": git.get("dirty"),
        "plan_command": f"harness run --plan results/{run_id}/manifest.json",
        "directory": str(run.directory),
    }


# --------------------------------------------------------------------------------------------
# Rendering


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("harness", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def render(run: RunData) -> str:
    manifest = run.manifest
    analysis = analyse.analyse(run.trials, run.latency, run.workers)
    trials = analyse.label_trials(run.trials)
    the_answer = answer(analysis, trials, manifest)
    data = charts.Data(analysis, trials, run.latency, run.workers, run.timeseries)
    figures = charts.all_charts(data, the_answer.p99_verdicts)
    n = len(trials)
    counts = {
        "trials": n,
        "ranked": int(trials["ranked"].sum()) if n else 0,
        "flagged": int(trials["flagged"].sum()) if n else 0,
        "failed": int((trials["status"] != "ok").sum()) if n else 0,
        "oversubscribed": int(trials["oversubscribed"].fillna(False).astype(bool).sum())
        if n
        else 0,
    }
    outcome = manifest.get("outcome") or {}
    plat, pyperf_meta = platform_rows(manifest)
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            run_id=manifest.get("run_id", run.directory.name),
            started=manifest.get("started_at") or "unknown",
            ended=manifest.get("ended_at"),
            outcome=outcome,
            planned=outcome.get(
                "trials_planned", len((manifest.get("plan") or {}).get("trials", []))
            ),
            counts=counts,
            cpu_model=((manifest.get("platform") or {}).get("pyperf") or {}).get("cpu_model_name"),
            kernel=(manifest.get("platform") or {}).get("kernel"),
            answer=the_answer,
            charts=figures,
            configs=config_groups(analysis, data),
            warnings=[s for s in analysis.summaries if s.warnings],
            problems=problem_rows(analysis, trials),
            methods=methods(manifest),
            platform=plat,
            pyperf_meta=pyperf_meta,
            doctor=manifest.get("doctor"),
            designs=manifest.get("designs") or {},
            reproduce=reproduce(manifest, run),
            notes=analysis.notes,
        )
    )


def write_report(run: RunData, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render(run), encoding="utf-8")
    tmp.replace(path)
    return path


def write_exports(run: RunData, directory: Path) -> list[Path]:
    """summary.csv, summary.md, comparisons.csv and pyperf.json beside the report."""
    from harness import export

    return export.write_exports(run, directory)
