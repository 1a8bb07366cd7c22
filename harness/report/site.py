"""`harness publish`: one static, self-contained site over runs from many machines.

SITE/index.html: a fingerprint per machine (CPU model and topology, kernel, virtualisation,
runtime and compiler versions, from each run's manifest), each machine's runs with their own
verdict and chain of controlled pairs, and the thread-per-core / work-stealing ratios measured
within each run side by side (harness/analysis/across.py; never absolute figures across
machines), as a table and a chart. SITE/runs/<machine>-<run-id>/index.html: each run's full
report. No file loads anything from outside the site.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.across import Fingerprint, fingerprint, hosts_text
from harness.analysis.analyse import Analysis
from harness.analysis.decompose import chains
from harness.analysis.flagged import flag_counts, kinds_text
from harness.analysis.scaling import STEALING_CAVEAT
from harness.atomic import write_text_atomic
from harness.report import html as report_html
from harness.report.verdict import chain_rows, first_sentence


@dataclass(frozen=True)
class SiteRun:
    key: str  # <machine>-<run-id>: unique across machines
    run_id: str
    directory: Path
    fingerprint: Fingerprint
    started: str
    cores: list[int]
    trials: int
    oversubscribed: int
    flagged: str  # flagged trials by kind, e.g. "contended 9, client-bound 2"
    verdict: str | None
    chain: list[dict[str, Any]]
    command: str
    hosts: str


def _count(trials: pd.DataFrame, column: str) -> int:
    if trials.empty or column not in trials:
        return 0
    return int(trials[column].fillna(False).astype(bool).sum())


def _site_run(analysis: Analysis, out: Path) -> SiteRun:
    manifest = analysis.manifest
    fp = fingerprint(manifest)
    run_id = analysis.run_id
    key = f"{fp.machine_id}-{run_id}"
    report_html.write_report(analysis, out / "runs" / key / "index.html")
    trials = analysis.trials
    return SiteRun(
        key=key,
        run_id=run_id,
        directory=analysis.directory or Path(run_id),
        fingerprint=fp,
        started=str(manifest.get("started_at") or "unknown"),
        cores=sorted({int(k) for k in trials["server_cores"]}) if not trials.empty else [],
        trials=len(trials),
        oversubscribed=_count(trials, "oversubscribed"),
        flagged=kinds_text(flag_counts(analysis.flagged)),
        verdict=first_sentence(analysis, manifest),
        chain=chain_rows(chains(analysis, manifest)),
        command=" ".join(manifest.get("command") or []),
        hosts=hosts_text(manifest),
    )


def _ratio_table(frame: pd.DataFrame, runs: list[SiteRun]) -> dict[str, Any]:
    """Rows: pair and configuration; columns: runs (grouped by machine); cells: the median
    per-repetition ratio with its min..max and how many repetitions, flagged ones labelled."""
    columns = [r.key for r in runs]
    rows: dict[tuple, dict[str, Any]] = {}
    key_of = {str(r.directory / "trials.parquet"): r.key for r in runs}
    for rec in frame.to_dict("records"):
        what = "echo {} B".format(rec["size_bytes"]) if rec["protocol"] == "echo" else "HTTP GET"
        label = (rec["tpc"], rec["ws"], what, int(rec["connections"]), int(rec["server_cores"]))
        row = rows.setdefault(
            label,
            {
                "pair": f"{rec['tpc']} / {rec['ws']}",
                "workload": f"{what}, {int(rec['connections']):,} conns"
                + (f", pipeline {rec['pipeline']}" if rec["pipeline"] != 1 else "")
                + (f", work {rec['work']}" if rec["work"] != "none" else ""),
                "cores": int(rec["server_cores"]),
                "cells": {},
            },
        )
        key = key_of.get(str(rec["source"]))
        if key is None:
            continue
        n, flagged = int(rec["repetitions"]), int(rec["flagged"])
        row["cells"][key] = {
            "ratio": f"{rec['ratio']:.3g}x",
            "range": f"{rec['ratio_min']:.3g}-{rec['ratio_max']:.3g}" if n > 1 else "one pair",
            "n": n,
            "flagged": flagged,
            "value": float(rec["ratio"]),
        }
    ordered = [rows[k] for k in sorted(rows)]
    return {"columns": columns, "rows": ordered}


def _chart(table: dict[str, Any], runs: list[SiteRun]) -> str | None:
    """A dot per run and row: the median ratio, its min..max as a bar; hollow when flagged."""
    rows = [r for r in table["rows"] if r["cells"]][:30]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 0.45 * len(rows) + 1.4), dpi=100)
    colours = plt.get_cmap("tab10")
    for j, run in enumerate(runs):
        for i, row in enumerate(rows):
            cell = row["cells"].get(run.key)
            if cell is None:
                continue
            y = i + (j - (len(runs) - 1) / 2) * 0.8 / max(1, len(runs))
            lo, hi = (float(x) for x in cell["range"].split("-")) if cell["n"] > 1 else (0, 0)
            if cell["n"] > 1:
                ax.plot([lo, hi], [y, y], color=colours(j % 10), lw=1.5)
            ax.plot(
                cell["value"], y, "o", color=colours(j % 10),
                markerfacecolor="none" if cell["flagged"] else colours(j % 10),
                label=run.key if i == 0 or run.key not in ax.get_legend_handles_labels()[1]
                else None,
            )  # fmt: skip
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r['pair']} | {r['workload']} | {r['cores']} core(s)" for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("thread-per-core / work-stealing throughput, median per-repetition ratio")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), loc="best", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def render_site(runs: list[SiteRun], frame: pd.DataFrame) -> str:
    env = report_html.environment()
    machines: dict[str, dict[str, Any]] = {}
    for r in runs:
        m = machines.setdefault(r.fingerprint.machine_id, {"runs": []})
        m["fingerprint"] = r.fingerprint  # the newest run's (runs are sorted by start)
        m["runs"].append(r)
    table = _ratio_table(frame, runs)
    return env.get_template("site.html.j2").render(
        machines=machines,
        runs=runs,
        table=table,
        chart=_chart(table, runs),
        stealing_note=STEALING_CAVEAT
        + " Stealing can act from 2 worker threads up: read the 1-core rows as that price."
        if any(r["cores"] == 1 for r in table["rows"])
        else None,
        escape=html.escape,
    )


def write_site(analyses: Iterable[Analysis], ratio_frame: pd.DataFrame, out: Path) -> Path:
    """The site of the analysed runs (an iterable: each run's report is written as it comes, so
    one run at a time need be held) and their ratios (analysis/across.py's `ratios`)."""
    out.mkdir(parents=True, exist_ok=True)
    runs = [_site_run(a, out) for a in analyses]
    runs.sort(key=lambda r: (r.fingerprint.machine_id, r.started))
    index = out / "index.html"
    write_text_atomic(index, render_site(runs, ratio_frame))
    return index
