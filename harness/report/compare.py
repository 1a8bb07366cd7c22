"""The comparison of two runs (analysis.compare.CompareResult) as a terminal table (rich, or
plain text when not a terminal), JSON (schema compare/1) and Markdown."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from harness.analysis import stats
from harness.analysis.analyse import ConfigSummary
from harness.analysis.compare import (
    CompareResult,
    ConfigKey,
    GateHit,
    describe_config,
    ranked_count,
)
from harness.report.flag_words import flag_reasons

JSON_SCHEMA = "compare/1"


def _fmt_change(c: stats.Comparison | None) -> str:
    if c is None:
        return "-"
    return f"{c.estimate:+.1%} [{c.ci_low:+.1%}, {c.ci_high:+.1%}]"


def _fmt_num(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _trials(s: ConfigSummary) -> str:
    return f"{ranked_count(s)}/{s.trials_flagged}/{s.trials_failed}"


COLUMNS = [  # (header, right-aligned)
    ("server", False),
    ("cores", True),
    ("workload", False),
    ("A req/s", True),
    ("B req/s", True),
    ("throughput B/A-1 [95% CI]", False),
    ("verdict", False),
    ("A p99 us", True),
    ("B p99 us", True),
    ("p99 B/A-1 [95% CI]", False),
    ("p99 verdict", False),
    ("A CPU us/req", True),
    ("B CPU us/req", True),
    ("CPU/req B/A-1 [95% CI]", False),
    ("CPU verdict", False),
    ("trials A -> B (ranked/flagged/failed)", False),
]


def table_rows(result: CompareResult) -> list[list[str]]:
    rows = []
    for c in result.changes:
        a, b = c.a, c.b
        workload = a.label if c.load_b is None else f"{a.label} (B at {c.load_b:,.6g}/s)"
        rows.append([
            a.server, str(a.server_cores), workload,
            _fmt_num(a.throughput_median), _fmt_num(b.throughput_median),
            _fmt_change(c.throughput), c.throughput_label,
            _fmt_num(a.p99_trial_median, 1), _fmt_num(b.p99_trial_median, 1),
            _fmt_change(c.p99), c.p99_label,
            _fmt_num(a.cpu_us_median, 2), _fmt_num(b.cpu_us_median, 2),
            _fmt_change(c.cpu), c.cpu_label,
            f"{_trials(a)} -> {_trials(b)}",
        ])  # fmt: skip
    return rows


def plain_table(rows: list[list[str]]) -> str:
    headers = [h for h, _ in COLUMNS]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for r in [headers, *rows]:
        cells = [
            cell.rjust(w) if right else cell.ljust(w)
            for cell, w, (_, right) in zip(r, widths, COLUMNS, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


_STYLES = {"faster": "green", "better": "green", "slower": "red", "worse": "red"}


def rich_table(rows: list[list[str]]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for header, right in COLUMNS:
        table.add_column(header, justify="right" if right else "left")
    for r in rows:
        cells = [Text(cell, style=_STYLES.get(cell, "")) for cell in r]
        table.add_row(*cells)
    return table


def summary_line(result: CompareResult) -> str:
    counts = result.counts()
    order = ["faster", "slower", "within noise", "no change", "insufficient data"]
    parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    line = f"{len(result.changes)} configuration(s) compared: {', '.join(parts)}"
    gm = result.geometric_mean_ratio()
    if gm is not None:
        line += f"; geometric mean of throughput B/A {gm:.3f} ({gm - 1:+.1%})"
    return line


def gate_line(hits: list[GateHit], fail_above: float, latency: bool) -> str:
    what = (
        "throughput (closed loop), CPU per request (open loop) or p99"
        if latency
        else "throughput (closed loop) or CPU per request (open loop)"
    )
    if not hits:
        return (
            f"gate passed: no configuration's {what} is significantly worse by more than "
            f"{fail_above:g}%"
        )
    configs = len({h.change.key for h in hits})
    return (
        f"gate FAILED: {configs} configuration(s) significantly worse by more than "
        f"{fail_above:g}% in {what}:"
    )


def _config_dict(s: ConfigSummary) -> dict[str, Any]:
    return {
        "server": s.server, "design_family": s.design_family, "io_model": s.io_model,
        "protocol": s.protocol, "server_cores": s.server_cores, "connections": s.connections,
        "size_bytes": s.size_bytes, "pipeline": s.pipeline, "work": s.work, "mode": s.mode,
        "load": s.load, "workload": s.label,
    }  # fmt: skip


def _side_dict(s: ConfigSummary) -> dict[str, Any]:
    ci = s.throughput
    return {
        "throughput_rps": s.throughput_median,
        "throughput_ci": None if ci is None else [ci.low, ci.high],
        "throughput_ci_method": None if ci is None else str(ci.method),
        "throughput_samples": list(s.throughput_samples),
        "p99_us": s.p99_trial_median,  # median of per-trial p99 (what the change uses)
        "p99_merged_us": s.p99_us,  # p99 of the merged histograms (what the report shows)
        "p99_samples": list(s.p99_samples),
        "trials_ranked": ranked_count(s),
        "trials_flagged": s.trials_flagged,
        "trials_failed": s.trials_failed,
        "flag_reasons": flag_reasons(s),
    }


def _comparison_dict(c: stats.Comparison | None, better: str, worse: str) -> dict[str, Any]:
    if c is None:
        return {"verdict": str(stats.Verdict.INSUFFICIENT), "label": "insufficient data",
                "change": None, "ci_low": None, "ci_high": None}  # fmt: skip
    return {
        "change": c.estimate,
        "ci_low": c.ci_low,
        "ci_high": c.ci_high,
        "level": c.level,
        "verdict": str(c.verdict),
        "label": c.label(better, worse),
        "p_value": c.p_value,
        "n_a": c.n_b,  # stats.compare(B, A): its "a" is our B
        "n_b": c.n_a,
    }


def to_json(
    result: CompareResult, fail_above: float | None, latency: bool, hits: list[GateHit]
) -> dict[str, Any]:
    hit_keys: dict[ConfigKey, list[str]] = {}
    for h in hits:
        hit_keys.setdefault(h.change.key, []).append(h.metric)
    gate_dict = None
    if fail_above is not None:
        triggered = [
            {**_config_dict(h.change.a), "metric": h.metric, "description": h.describe()}
            for h in hits
        ]
        gate_dict = {"failed": bool(hits), "triggered": triggered}
    return {
        "schema": JSON_SCHEMA,
        "a": {"directory": str(result.dir_a), "run_id": result.run_id_a},
        "b": {"directory": str(result.dir_b), "run_id": result.run_id_b},
        "change": "B / A - 1",
        "threshold": result.threshold,
        "fail_above": None if fail_above is None else fail_above / 100.0,
        "gate_latency": latency,
        "platform_differences": [vars(d) for d in result.platform],
        "configurations": [
            {
                **_config_dict(c.a),
                # B's own open-loop rate when the runs were matched by plan, not rate
                "load_b": c.load_b,
                "a": _side_dict(c.a),
                "b": _side_dict(c.b),
                "throughput": _comparison_dict(c.throughput, "faster", "slower"),
                "p99": _comparison_dict(c.p99, "better", "worse"),
                "cpu_per_request": _comparison_dict(c.cpu, "faster", "slower"),
                "judged_on": c.primary[0],
                "gate": hit_keys.get(c.key, []),
            }
            for c in result.changes
        ],
        "only_in_a": [_config_dict(s) for s in result.only_a],
        "only_in_b": [_config_dict(s) for s in result.only_b],
        "notes": result.notes,
        "summary": {
            "counts": result.counts(),
            "geometric_mean_throughput_ratio": result.geometric_mean_ratio(),
        },
        "gate": gate_dict,
    }


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(
    result: CompareResult, fail_above: float | None, latency: bool, hits: list[GateHit]
) -> str:
    lines = [
        "## Benchmark comparison",
        "",
        f"A (baseline): `{result.dir_a}`  ",
        f"B (candidate): `{result.dir_b}`  ",
        f"Change = B/A - 1, 95% bootstrap interval; a change is claimed only when the whole "
        f"interval lies beyond the {result.threshold:.1%} noise threshold (criterion's rule). "
        "Only ranked trials count (ok and not flagged).",
        "",
    ]
    if fail_above is not None:
        mark = "**FAILED**" if hits else "passed"
        what = "throughput or CPU per request" + (", and p99" if latency else "")
        lines += [f"Gate ({what}, --fail-above {fail_above:g}%): {mark}", ""]
        lines += [f"- {_md_cell(h.describe())}" for h in hits]
        if hits:
            lines.append("")
    if result.platform:
        lines += ["Platform differences (the runs did not measure the same thing alike):", ""]
        lines += [f"- {_md_cell(d.describe())}" for d in result.platform]
        lines.append("")
    headers = [h for h, _ in COLUMNS]
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("| " + " | ".join("---:" if right else "---" for _, right in COLUMNS) + " |")
    for r in table_rows(result):
        cells = [_md_cell(c) for c in r]
        cells[6] = f"**{cells[6]}**" if cells[6] in ("faster", "slower") else cells[6]
        cells[10] = f"**{cells[10]}**" if cells[10] in ("better", "worse") else cells[10]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", summary_line(result) + ".", ""]
    for title, only in (("Only in A", result.only_a), ("Only in B", result.only_b)):
        if only:
            lines += [f"{title} (not compared):", ""]
            lines += [f"- {_md_cell(describe_config(s))}" for s in only]
            lines.append("")
    if result.notes:
        lines += ["Notes:", ""] + [f"- {_md_cell(n)}" for n in result.notes] + [""]
    return "\n".join(lines)
