"""Stage 5: one self-contained HTML file (images inline, no external URL) from a stored run."""

from __future__ import annotations

import base64
import io
import shlex
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt
from jinja2 import Environment, PackageLoader, select_autoescape

from harness.analyse import ConfigSummary, FamilyRatio, family_ratios, summarise
from harness.store import RunData

FAMILY_STYLE = {"work-stealing": "-", "thread-per-core": "--"}


def _png(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _workloads(summaries: list[ConfigSummary]) -> list[tuple[str, int, int]]:
    return sorted({(s.protocol, s.connections, s.size_bytes) for s in summaries})


def throughput_chart(summaries: list[ConfigSummary], workload: tuple[str, int, int]) -> str:
    protocol, conns, size = workload
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for server in sorted({s.server for s in summaries}):
        pts = sorted(
            (
                s
                for s in summaries
                if s.server == server
                and (s.protocol, s.connections, s.size_bytes) == workload
                and s.throughput_median is not None
            ),
            key=lambda s: s.server_cores,
        )
        if not pts:
            continue
        xs = [p.server_cores for p in pts]
        ys = [p.throughput_median for p in pts]
        err = [
            [y - p.throughput_min for y, p in zip(ys, pts, strict=True)],
            [p.throughput_max - y for y, p in zip(ys, pts, strict=True)],
        ]
        ax.errorbar(
            xs,
            ys,
            yerr=err,
            marker="o",
            capsize=4,
            label=server,
            linestyle=FAMILY_STYLE.get(pts[0].design_family, ":"),
        )
    ax.set_xlabel("server cores")
    ax.set_ylabel("requests / s (median, bars: min-max)")
    ax.set_title(f"Throughput vs cores: {protocol} {size} B, {conns} connections")
    ax.set_xticks(sorted({s.server_cores for s in summaries}))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def ratio_chart(ratios: list[FamilyRatio]) -> str | None:
    pts = [r for r in ratios if r.throughput_ratio is not None]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    labels = [
        f"{r.server_cores}c {r.protocol} {r.size_bytes}B {r.connections}conn\n"
        f"{r.thread_per_core} / {r.work_stealing}"
        for r in pts
    ]
    ax.bar(range(len(pts)), [r.throughput_ratio for r in pts], color="#4c72b0")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(pts)), labels, fontsize=7)
    ax.set_ylabel("throughput ratio")
    ax.set_title("Thread-per-core / work-stealing throughput (1.0 = equal)")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def series_chart(run: RunData) -> str | None:
    ts = run.timeseries
    if ts.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    trials = run.trials.set_index("trial_id")
    for tid, group in ts.groupby("trial_id"):
        if tid not in trials.index:
            continue
        t = trials.loc[tid]
        width = group["second"].diff().median() if len(group) > 1 else 1.0
        width = width if width and width > 0 else 1.0
        ax.plot(
            group["second"],
            group["requests"] / width,
            linewidth=0.9,
            linestyle=FAMILY_STYLE.get(t["design_family"], ":"),
            label=f"{t['server']} {t['server_cores']}c r{t['repetition']}",
        )
    ax.set_xlabel("seconds into the measured window")
    ax.set_ylabel("requests / s")
    ax.set_title("Per-interval throughput of every trial (steady state check)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if ts["trial_id"].nunique() <= 12:
        ax.legend(fontsize=7)
    return _png(fig)


def render(run: RunData) -> str:
    summaries = summarise(run)
    ratios = family_ratios(summaries)
    env = Environment(
        loader=PackageLoader("harness", "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    env.filters["num"] = lambda v, fmt="{:,.0f}": "n/a" if v is None else fmt.format(v)
    trials = run.trials
    problems = trials[trials["status"] != "ok"].to_dict("records") if not trials.empty else []
    manifest = run.manifest
    return env.get_template("report.html.j2").render(
        manifest=manifest,
        command=shlex.join(manifest.get("command", [])),
        summaries=[asdict(s) for s in summaries],
        ratios=[asdict(r) for r in ratios],
        throughput_charts=[(w, throughput_chart(summaries, w)) for w in _workloads(summaries)],
        ratio_chart=ratio_chart(ratios),
        series_chart=series_chart(run),
        problems=problems,
        oversubscribed=int(trials["oversubscribed"].sum()) if not trials.empty else 0,
        n_trials=len(trials),
    )


def write_report(run: RunData, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(run))
    return path
