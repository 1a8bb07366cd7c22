"""Machine-readable exports beside the HTML report (docs/data.md, "Exports").

- summary.csv / summary.md: one row per configuration summary (hyperfine-style Markdown);
- comparisons.csv: one row per thread-per-core / work-stealing pair (the answer's table);
- pyperf.json: a pyperf BenchmarkSuite, so that `python -m pyperf compare_to a/pyperf.json
  b/pyperf.json` compares two runs with pyperf's own statistics. pyperf's unit is the second and
  lower is better, so a closed-loop configuration's values are seconds per request
  (1 / throughput of each ranked trial): pyperf's "faster" means more throughput. An open-loop
  configuration's throughput is the offered rate, not a result, so it is exported as its p99
  latency in seconds instead, under a name ending in `/p99`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyperf

from harness.analysis.analyse import Analysis, ConfigSummary
from harness.atomic import write_atomic, write_text_atomic
from harness.plan.settings import CONFIG_KEYS
from harness.report.answer import why_not
from harness.report.flag_words import flag_reasons
from harness.report.format import cores_text, coverage, fmt, fmt_us

# pyperf metadata describing the machine, taken from the run's platform record. Per-process
# figures of the harness itself (its date, load, memory) would describe the wrong process.
_PLATFORM_KEYS = (
    "platform",
    "hostname",
    "cpu_model_name",
    "cpu_count",
    "cpu_freq",
    "cpu_config",
    "aslr",
    "boot_time",
    "perf_version",
)


SUMMARY_COLUMNS = (
    "run_id",
    "server",
    "design_family",
    "io_model",
    "workload",
    *CONFIG_KEYS,  # the trial settings (plan/settings.py) and the load
    "trials_ok",
    "trials_failed",
    "trials_flagged",
    "trials_ranked",
    "throughput_rps",
    "throughput_ci_low",
    "throughput_ci_high",
    "throughput_ci_level",
    "throughput_ci_method",
    "p50_us",
    "p99_us",
    "p999_us",
    "uncorrected_p99_us",
    "latency_kind",
    "achieved_rate",
    "server_cpu_util",
    "requests_per_server_cpu_s",
    "ctxt_per_request",
    "worker_imbalance",
    "flag_reasons",
    "warnings",
    "flagged_throughput_rps",
    "flagged_p99_us",
)
COMPARISON_COLUMNS = (
    "run_id",
    "protocol",
    "server_cores",
    "workload",
    "mode",
    "thread_per_core",
    "work_stealing",
    "headline",
    "throughput_ratio",
    "throughput_ratio_low",
    "throughput_ratio_high",
    "throughput_verdict",
    "throughput_p_value",
    "p99_ratio",
    "p99_ratio_low",
    "p99_ratio_high",
    "p99_verdict",
    "n_thread_per_core",
    "n_work_stealing",
    "interval_level",
    "noise_threshold",
)


def summary_rows(analysis: Analysis) -> list[dict[str, Any]]:
    run_id = analysis.run_id
    rows = []
    for s in analysis.summaries:
        t = s.throughput
        rows.append(
            {
                "run_id": run_id,
                "server": s.server,
                "design_family": s.design_family,
                "io_model": s.io_model,
                "workload": s.label,
                **{key: getattr(s, key) for key in CONFIG_KEYS},
                "trials_ok": s.trials_ok,
                "trials_failed": s.trials_failed,
                "trials_flagged": s.trials_flagged,
                "trials_ranked": s.trials_ok - s.trials_flagged,
                "throughput_rps": t.estimate if t else None,
                "throughput_ci_low": t.low if t else None,
                "throughput_ci_high": t.high if t else None,
                "throughput_ci_level": t.level if t else None,
                "throughput_ci_method": str(t.method) if t else None,
                "p50_us": s.p50_us,
                "p99_us": s.p99_us,
                "p999_us": s.p999_us,
                "uncorrected_p99_us": s.uncorrected_p99_us,
                "latency_kind": s.latency_kind,
                "achieved_rate": s.achieved_rate,
                "server_cpu_util": s.server_cpu_util,
                "requests_per_server_cpu_s": s.requests_per_server_cpu_s,
                "ctxt_per_request": s.ctxt_per_request,
                "worker_imbalance": s.worker_imbalance,
                "flag_reasons": "; ".join(flag_reasons(s)),
                "warnings": "; ".join(s.warnings),
                "flagged_throughput_rps": s.flagged_throughput_median,
                "flagged_p99_us": s.flagged_p99_us,
            }
        )
    return rows


def comparison_rows(analysis: Analysis) -> list[dict[str, Any]]:
    run_id = analysis.run_id
    by_key = {(s.server, s.server_cores, s.label): s for s in analysis.summaries}
    rows = []
    for c in analysis.comparisons:
        a = by_key.get((c.thread_per_core, c.server_cores, c.workload))
        b = by_key.get((c.work_stealing, c.server_cores, c.workload))
        p99c = c.p99_verdict
        tr, pr, v = c.throughput_ratio, c.p99_ratio, c.verdict
        rows.append(
            {
                "run_id": run_id,
                "protocol": c.protocol,
                "server_cores": c.server_cores,
                "workload": c.workload,
                "mode": a.mode if a else None,
                "thread_per_core": c.thread_per_core,
                "work_stealing": c.work_stealing,
                "headline": c.headline,
                "throughput_ratio": tr.estimate if tr else None,
                "throughput_ratio_low": tr.low if tr else None,
                "throughput_ratio_high": tr.high if tr else None,
                "throughput_verdict": v.label("faster", "slower") if v else "insufficient data",
                "throughput_p_value": v.p_value if v else None,
                "p99_ratio": pr.estimate if pr else None,
                "p99_ratio_low": pr.low if pr else None,
                "p99_ratio_high": pr.high if pr else None,
                "p99_verdict": p99c.label("lower", "higher") if p99c else "insufficient data",
                "n_thread_per_core": v.n_a if v else (len(a.throughput_samples) if a else 0),
                "n_work_stealing": v.n_b if v else (len(b.throughput_samples) if b else 0),
                "interval_level": tr.level if tr else None,
                "noise_threshold": v.threshold if v else None,
            }
        )
    return rows


def benchmark_name(s: ConfigSummary, trial: dict[str, Any]) -> str:
    """`tokio-ws/echo-64B-c64/k1`; options beyond the defaults are appended to the workload."""
    what = f"echo-{s.size_bytes}B" if s.protocol == "echo" else f"{s.protocol}-get"
    parts = [f"{what}-c{s.connections}"]
    if s.pipeline != 1:
        parts.append(f"p{s.pipeline}")
    if s.work != "none":
        parts.append("w" + s.work.replace(":", "_"))
    if s.requests_per_connection is not None:  # churn: a new connection every N requests
        parts.append(f"n{s.requests_per_connection}")
    if s.mode == "open":
        fraction = trial.get("rate_fraction")
        if fraction is not None and not pd.isna(fraction):
            parts.append(f"open{fraction:g}x")
        else:
            parts.append(f"open{trial.get('target_rate') or s.load or 0:.0f}")
    name = f"{s.server}/{'-'.join(parts)}/k{s.server_cores}"
    return name + "/p99" if s.mode == "open" else name


_PYPERF_COLUMNS = (
    "trial_id",
    "repetition",
    "p99_us",
    "throughput_rps",
    "started_at",
    "window_s",
    "rate_fraction",
    "target_rate",
)


def _platform_metadata(manifest: dict[str, Any]) -> dict[str, Any]:
    """The run's pyperf platform metadata that pyperf accepts (checked by pyperf itself)."""
    py = ((manifest.get("platform") or {}).get("pyperf")) or {}
    out = {}
    for key in _PLATFORM_KEYS:
        if key not in py:
            continue
        try:
            pyperf.Run([1.0], metadata={"name": "probe", key: py[key]}, collect_metadata=False)
        except (TypeError, ValueError):
            continue
        out[key] = py[key]
    return out


def pyperf_suite(
    analysis: Analysis,
) -> tuple[pyperf.BenchmarkSuite | None, list[str]]:
    """One pyperf Benchmark per configuration with ranked trials (one Run per trial, one value,
    loops=1); and a sentence for every configuration left out."""
    run_id = analysis.run_id
    common = _platform_metadata(analysis.manifest)
    benchmarks, skipped = [], []
    for s in analysis.summaries:
        mine = analysis.trials_of(s)
        ranked = mine[mine["ranked"]] if not mine.empty else mine
        what = f"{s.server}, {s.label}, {cores_text(s.server_cores)}"
        if ranked.empty:
            skipped.append(f"{what}: no ranked trial ({why_not(s, s.server)})")
            continue
        # Only the columns used: the trials table has a hundred, and to_dict boxes every cell.
        records = ranked[[c for c in _PYPERF_COLUMNS if c in ranked.columns]].to_dict("records")
        name = benchmark_name(s, records[0])
        runs = []
        for trial in records:
            if s.mode == "open":
                value = trial["p99_us"] / 1e6 if not pd.isna(trial["p99_us"]) else None
            else:
                tput = trial["throughput_rps"]
                value = 1.0 / tput if not pd.isna(tput) and tput > 0 else None
            if value is None or value <= 0:
                continue
            metadata = {
                **common,
                "name": name,
                "loops": 1,
                "unit": "second",
                "description": (
                    f"{s.label}: p99 latency in seconds (open loop)"
                    if s.mode == "open"
                    else f"{s.label}: seconds per request = 1 / throughput (closed loop)"
                ),
                "run_id": run_id,
                "trial_id": str(trial["trial_id"]),
                "server": s.server,
                "design_family": s.design_family,
                "io_model": s.io_model,
                "server_cores": int(s.server_cores),
                "repetition": int(trial["repetition"]),
            }
            if isinstance(trial.get("started_at"), str):
                metadata["date"] = trial["started_at"]
            if not pd.isna(trial.get("window_s")):
                metadata["duration"] = float(trial["window_s"])
            runs.append(pyperf.Run([value], metadata=metadata, collect_metadata=False))
        if not runs:
            skipped.append(f"{what}: its ranked trials have no value to export")
            continue
        benchmarks.append(pyperf.Benchmark(runs))
    suite = pyperf.BenchmarkSuite(benchmarks) if benchmarks else None
    return suite, skipped


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def summary_markdown(analysis: Analysis, skipped: list[str], pyperf_written: bool) -> str:
    """hyperfine-style Markdown: a table per run, then what the numbers mean."""
    run_id = analysis.run_id
    best: dict[tuple, float] = {}
    for s in analysis.summaries:
        if s.throughput and s.mode == "closed":
            key = (s.label, s.server_cores)
            best[key] = max(best.get(key, 0.0), s.throughput.estimate)
    head = [
        "Server",
        "Family",
        "Workload",
        "Cores",
        "Ranked / failed / flagged",
        "Throughput [req/s]",
        "Interval [req/s]",
        "Relative",
        "p50 [µs]",
        "p99 [µs]",
        "p99.9 [µs]",
        "Req / CPU-s",
        "Warnings",
    ]
    align = [
        ":---",
        ":---",
        ":---",
        "---:",
        "---:",
        "---:",
        "---:",
        "---:",
        "---:",
        "---:",
        "---:",
        "---:",
        ":---",
    ]
    lines = [f"# Run {run_id}: per-configuration summary", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for s in sorted(
        analysis.summaries, key=lambda s: (s.mode != "closed", s.label, s.server_cores, s.server)
    ):
        t = s.throughput
        rel = ""
        if t and s.mode == "closed" and best.get((s.label, s.server_cores)):
            rel = f"{t.estimate / best[(s.label, s.server_cores)]:.2f}"
        interval = f"{t.low:,.0f} - {t.high:,.0f} ({coverage(t)})" if t else ""
        notes = [f"flagged: {r}" for r in flag_reasons(s)] + list(s.warnings)
        cells = [
            s.server,
            s.design_family,
            s.label,
            s.server_cores,
            f"{s.trials_ok - s.trials_flagged} / {s.trials_failed} / {s.trials_flagged}",
            fmt(t.estimate if t else None),
            interval,
            rel,
            fmt_us(s.p50_us),
            fmt_us(s.p99_us),
            fmt_us(s.p999_us),
            fmt(s.requests_per_server_cpu_s),
            "; ".join(notes),
        ]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    if not analysis.summaries:
        lines.append("| " + " | ".join(["(no trials)"] + [""] * (len(head) - 1)) + " |")
    lines += [
        "",
        "Throughput: median of the ranked repetitions (successful and not flagged); open-loop "
        "throughput is the achieved offered rate. Relative: throughput divided by the best "
        "closed-loop design of the same workload and core count. Latency: from the merged "
        "histograms of the ranked repetitions (closed-loop latency in closed-loop rows).",
        "",
        "## pyperf.json",
        "",
    ]
    if pyperf_written:
        lines.append(
            "One pyperf benchmark per configuration, one run per ranked trial (loops = 1). "
            "pyperf's unit is the second: closed-loop values are seconds per request "
            '(1 / throughput), so pyperf\'s "faster" means more requests per second; open-loop '
            "configurations (names ending in `/p99`) hold the p99 latency in seconds. Compare "
            "two runs with `python -m pyperf compare_to a/pyperf.json b/pyperf.json`."
        )
    else:
        lines.append("Not written: no configuration has a ranked trial.")
    if skipped:
        lines += ["", "Configurations left out of pyperf.json:", ""]
        lines += [f"- {_md_cell(s)}" for s in skipped]
    return "\n".join(lines) + "\n"


def write_exports(analysis: Analysis, directory: Path) -> list[Path]:
    """Write summary.csv, summary.md, comparisons.csv and (when anything was ranked)
    pyperf.json into `directory`; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []

    for name, rows, columns in (
        ("summary.csv", summary_rows(analysis), SUMMARY_COLUMNS),
        ("comparisons.csv", comparison_rows(analysis), COMPARISON_COLUMNS),
    ):
        path = directory / name
        write_text_atomic(path, pd.DataFrame(rows, columns=list(columns)).to_csv(index=False))
        written.append(path)

    suite, skipped = pyperf_suite(analysis)
    pyperf_path = directory / "pyperf.json"
    if suite is not None:
        write_atomic(pyperf_path, lambda tmp: suite.dump(str(tmp), replace=True))
    elif pyperf_path.exists():
        pyperf_path.unlink()  # a stale file from an earlier report would lie

    path = directory / "summary.md"
    write_text_atomic(path, summary_markdown(analysis, skipped, suite is not None))
    written.append(path)
    if suite is not None:
        written.append(pyperf_path)
    return written
