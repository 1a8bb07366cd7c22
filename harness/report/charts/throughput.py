"""Throughput against server cores: medians with intervals per design, every ranked repetition as
a dot, flagged trials hollow and, when few, named."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from matplotlib.ticker import EngFormatter

from harness.analysis.flagged import short_reason
from harness.report.charts.base import (
    MAX_NAMED,
    Chart,
    Data,
    _capped,
    _chart,
    _cores_axis,
    _design_label,
    _dodge,
    _from_zero,
    _hollow,
    _legend,
    _log_cores,
    _missing,
    _panels,
)
from harness.report.charts.flagged import (
    flag_handle,
    flagged_note,
    mark_server_flagged,
    server_flag_handle,
    server_flagged_note,
    why_none,
)


def throughput_cores(data: Data) -> Chart:
    id_, title = "chart-throughput-cores", "Throughput against server cores"
    closed_t = data.closed_trials()
    ok = closed_t[closed_t["status"] == "ok"] if not closed_t.empty else closed_t
    ranked_any = any(s.throughput is not None for s in data.closed())
    drawable = ok[ok["ranked"] | ok["flagged"]] if not ok.empty else ok
    drawable = drawable[drawable["throughput_rps"].notna()] if not drawable.empty else drawable
    if not ranked_any and drawable.empty:
        if closed_t.empty and data.open():
            why = (
                "no closed-loop trials in this run: throughput is only measured closed loop "
                "(open-loop throughput is the offered rate)"
            )
        else:
            why = why_none(
                closed_t, "closed-loop", "a throughput", "the throughput column is empty"
            )
        return _missing(id_, title, why)
    labels = {str(x) for x in drawable["label"]} | {
        s.label for s in data.closed() if s.throughput is not None
    }
    workloads, note = _capped(sorted(labels), "workloads")
    fig, axes = _panels(len(workloads))
    t = data.trials
    flagged_drawn: list[pd.DataFrame] = []
    marked: list[pd.DataFrame] = []  # ranked trials with a server flag, drawn as crosses
    with_bands = False
    for ax, label in zip(axes, workloads, strict=True):
        mine = [s for s in data.closed() if s.label == label]
        cores = [s.server_cores for s in mine]
        servers = sorted({s.server for s in mine})
        log = _log_cores(cores)
        panel_ranked = any(s.throughput is not None for s in mine)
        for i, server in enumerate(servers):
            st = data.style(server)

            def dodge(
                xs: Iterable[float], i: int = i, n: int = len(servers), log: bool = log
            ) -> list[float]:
                return _dodge(xs, i, n, log)

            pts = sorted((s for s in mine if s.server == server), key=lambda s: s.server_cores)
            good = [s for s in pts if s.throughput is not None]
            if good:
                xs = dodge(s.server_cores for s in good)
                ys = [s.throughput.estimate for s in good]  # type: ignore[union-attr]
                lo = [s.throughput.low for s in good]  # type: ignore[union-attr]
                hi = [s.throughput.high for s in good]  # type: ignore[union-attr]
                ax.plot(
                    xs,
                    ys,
                    marker=st.marker,
                    linestyle=st.line,
                    color=st.colour,
                    label=_design_label(server, st),
                    zorder=3,
                )
                if len(xs) > 1:
                    ax.fill_between(xs, lo, hi, color=st.colour, alpha=0.18, linewidth=0)
                    with_bands = True
                ax.errorbar(
                    xs,
                    ys,
                    yerr=[np.subtract(ys, lo), np.subtract(hi, ys)],
                    fmt="none",
                    ecolor=st.colour,
                    capsize=3,
                    linewidth=1,
                )
            rows = t[(t["server"] == server) & (t["label"] == label) & (t["status"] == "ok")]
            r = rows[rows["ranked"]]
            ax.scatter(
                dodge(r["server_cores"]),
                r["throughput_rps"],
                s=10,
                color=st.colour,
                alpha=0.55,
                zorder=2,
                linewidths=0,
            )
            at = list(dodge(r["server_cores"]))
            marked.append(
                mark_server_flagged(ax, r, "server_cores", "throughput_rps", st.colour, xs=at)
            )
            f = rows[rows["flagged"] & rows["throughput_rps"].notna()]
            if f.empty:
                continue
            flagged_drawn.append(f)
            _hollow(
                ax,
                dodge(f["server_cores"]),
                f["throughput_rps"],
                st,
                "_" if good else _design_label(server, st),
            )
            # Among ranked points a few flagged ones are exceptions worth naming; when every
            # point is flagged the legend and caption say it once.
            if panel_ranked and len(f) <= MAX_NAMED:
                for row in f.to_dict("records"):
                    ax.annotate(
                        f"{short_reason(row)} ({server})",
                        (dodge([row["server_cores"]])[0], row["throughput_rps"]),
                        textcoords="offset points",
                        xytext=(6, -10),
                        fontsize=7.5,
                        color=st.colour,
                    )
        _cores_axis(ax, cores)
        _from_zero(ax)
        ax.yaxis.set_major_formatter(EngFormatter(sep=" "))
        ax.set_ylabel("requests / s")
        ax.set_title(label + ("" if panel_ranked else " (flagged only)"))
    flagged_rows = pd.concat(flagged_drawn) if flagged_drawn else t.iloc[:0]
    marked_rows = pd.concat(marked) if marked else t.iloc[:0]
    handles = [flag_handle(flagged_rows)] if flagged_drawn else []
    handles += [server_flag_handle(marked_rows)] if not marked_rows.empty else []
    _legend(fig, axes, handles or None)
    if ranked_any:
        caption = (
            "Median throughput of the ranked repetitions of each design (line), the median's "
            "confidence interval (error bars" + (" and band" if with_bands else "") + "), and "
            "every ranked repetition (small dots). Closed loop: the server's speed sets the rate."
        )
    else:
        caption = (
            "No closed-loop trial could be ranked, so no median, interval or line is drawn: "
            "each point is the throughput of one flagged trial, in its design's colour and "
            "shape."
        )
    caption += flagged_note(flagged_rows, "Hollow markers are flagged trials")
    caption += server_flagged_note(marked_rows)
    alt = (
        "Line chart of median requests per second against server cores, one line per design"
        if ranked_any
        else "Scatter of the requests per second of each flagged trial against server cores"
    )
    return _chart(id_, title, alt, caption + note, fig)
