"""Per-server-CPU figures: requests per worker (load balance), requests per server CPU-second
and context switches per request."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, FuncFormatter

from harness.report.charts.base import (
    MAX_TRIALS_DRAWN,
    Chart,
    Data,
    _capped,
    _chart,
    _design_label,
    _from_zero,
    _hollow,
    _legend,
    _missing,
    _panels,
    key,
)
from harness.report.charts.flagged import flag_handle, flagged_note, why_none


def worker_balance(data: Data) -> Chart:
    id_, title = "chart-worker-balance", "Requests per worker (load balance across cores)"
    closed_t = data.closed_trials()
    multi = [s for s in data.closed() if s.server_cores > 1]
    if closed_t.empty or not (closed_t["status"] == "ok").any():
        return _missing(id_, title, why_none(closed_t, "closed-loop", "per-worker counters", ""))
    if not multi:
        return _missing(
            id_,
            title,
            "every closed-loop configuration ran one worker (1 server core): there is nothing "
            "to balance",
        )
    # (label, cores, server) -> median shares of the ranked trials, or, for a configuration
    # with no ranked trial, each flagged trial's shares (drawn as hollow markers): from
    # analysis/workers.py.
    shares: dict[tuple[str, int, str], tuple[np.ndarray, np.ndarray]] = {}
    flagged_shares: dict[tuple[str, int, str], tuple[tuple[np.ndarray, np.ndarray], ...]] = {}
    flagged_drawn: list[pd.DataFrame] = []
    for s in multi:
        found = data.analysis.worker_shares.get(key(s))
        if found is None:
            continue
        if found.ranked is not None:
            shares[(s.label, s.server_cores, s.server)] = found.ranked
        else:
            flagged_shares[(s.label, s.server_cores, s.server)] = found.flagged
            f = data.flagged_of(s)
            flagged_drawn.append(f[f["trial_id"].astype(str).isin(set(found.flagged_ids))])
    keys = sorted({(label, k) for label, k, _ in [*shares, *flagged_shares]})
    keys, note = _capped(keys, "workload and core-count panels")
    fig, axes = _panels(len(keys))
    for ax, (label, k) in zip(axes, keys, strict=True):
        servers = sorted(
            {srv for lab, kk, srv in [*shares, *flagged_shares] if (lab, kk) == (label, k)}
        )
        width = 0.8 / len(servers)
        panel_ranked = False
        for i, server in enumerate(servers):
            st = data.style(server)
            xs = np.arange(1, k + 1) + (i - (len(servers) - 1) / 2) * width
            if (label, k, server) in shares:
                panel_ranked = True
                req, conn = shares[(label, k, server)]
                ax.bar(
                    xs,
                    req,
                    width=width * 0.95,
                    color=st.colour,
                    alpha=0.85,
                    label=_design_label(server, st),
                    hatch=None if st.line == "-" else "//",
                    edgecolor="white",
                )
                ax.scatter(xs, conn, marker="_", s=120, color="black", linewidths=1.6, zorder=3)
                continue
            # One line per flagged trial, up to a bound (the caption says how many are drawn).
            drawn = flagged_shares[(label, k, server)][:MAX_TRIALS_DRAWN]
            for j, (req, conn) in enumerate(drawn):
                ax.plot(xs, req, color=st.colour, linestyle=":", linewidth=1.2)
                _hollow(ax, list(xs), req, st, _design_label(server, st) if j == 0 else "_", 40)
                ax.scatter(xs, conn, marker="_", s=120, color="black", linewidths=1.6, zorder=3)
        ax.axhline(1.0, color="#333", linewidth=0.8, linestyle=":")
        ax.set_xticks(range(1, k + 1))
        ax.set_xlabel("worker, busiest first")
        ax.set_ylabel("share / even share")
        _from_zero(ax)
        ax.set_title(f"{label} · {k} cores" + ("" if panel_ranked else " (flagged only)"))
    extra = [
        Line2D(
            [],
            [],
            marker="_",
            markersize=10,
            linestyle="none",
            color="black",
            label="connections held (same scale)",
        ),
        Line2D([], [], color="#333", linestyle=":", label="even share (1.0)"),
    ]
    flagged_rows = pd.concat(flagged_drawn) if flagged_drawn else data.trials.iloc[:0]
    if flagged_drawn:
        extra.append(flag_handle(flagged_rows))
    _legend(fig, axes, extra)
    caption = (
        "How evenly each design spread the work over its workers: requests served by each "
        "worker divided by the mean per worker (1.0 = perfectly even), workers sorted from "
        "busiest to idlest within each ranked repetition, then the median over repetitions "
        "(bars). Black dashes: the connections each worker held, on the same scale. "
        "Thread-per-core designs keep a connection on the worker the kernel's SO_REUSEPORT "
        "hash gave it; work-stealing moves work to idle workers. The median max/mean ratio of "
        "each configuration is in the table of every configuration."
    )
    caption += flagged_note(
        flagged_rows,
        "Hollow markers joined by dotted lines are the single flagged trials of "
        "configurations with no ranked trial",
    )
    alt = "Grouped bar chart of requests per worker relative to an even share, per design"
    return _chart(id_, title, alt, caption + note, fig)


def _plain(value: float, _pos: object = None) -> str:
    return f"{value:g}"


def _bars_by_cores(
    data: Data,
    id_: str,
    title: str,
    attr: str,
    column: str,
    ylabel: str,
    caption: str,
    ranked_caption: str,
    alt: str,
    what: str,
    absent: str,
) -> Chart:
    """Bars of a configuration's ranked median with each ranked trial as a dot; for a
    configuration with no ranked trial, each flagged trial's value as a hollow marker."""
    closed = [s for s in data.closed() if getattr(s, attr) is not None]
    flagged_only: dict[tuple[str, int, str], pd.DataFrame] = {}
    for s in data.closed():
        if s.trials_ok > s.trials_flagged or not s.trials_flagged:
            continue
        f = data.flagged_of(s)
        f = f[f[column].notna()]
        if not f.empty:
            flagged_only[key(s)] = f
    if not closed and not flagged_only:
        return _missing(id_, title, why_none(data.closed_trials(), "closed-loop", what, absent))
    labels = {s.label for s in closed} | {label for _s, _k, label in flagged_only}
    workloads, note = _capped(sorted(labels), "workloads")
    values = [getattr(s, attr) for s in closed] + [
        float(v) for f in flagged_only.values() for v in f[column]
    ]
    big_numbers = max(values) >= 1000
    fig, axes = _panels(len(workloads))
    for ax, label in zip(axes, workloads, strict=True):
        mine = [s for s in data.closed() if s.label == label]
        drawn = [s for s in mine if getattr(s, attr) is not None or key(s) in flagged_only]
        cores = sorted({s.server_cores for s in drawn})
        servers = sorted({s.server for s in drawn})
        width = 0.8 / len(servers)
        panel_ranked = False
        for i, server in enumerate(servers):
            st = data.style(server)
            for j, k in enumerate(cores):
                s = data.by_key.get((server, k, label))
                if s is None:
                    continue
                x = j + (i - (len(servers) - 1) / 2) * width
                if getattr(s, attr) is not None:
                    panel_ranked = True
                    ax.bar(
                        [x],
                        [getattr(s, attr)],
                        width=width * 0.95,
                        color=st.colour,
                        alpha=0.85,
                        hatch=None if st.line == "-" else "//",
                        edgecolor="white",
                        label=_design_label(server, st),
                    )
                    t = data.trials_of(s)
                    vals = t.loc[t["ranked"], column].dropna()
                    ax.scatter([x] * len(vals), vals, s=9, color="black", zorder=3, linewidths=0)
                elif key(s) in flagged_only:
                    vals = flagged_only[key(s)][column]
                    _hollow(ax, [x] * len(vals), vals, st, _design_label(server, st), 40)
        ax.set_xticks(range(len(cores)), [str(k) for k in cores])
        ax.set_xlim(-0.6, len(cores) - 0.4)
        ax.set_xlabel("server cores")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(
            EngFormatter(sep=" ") if big_numbers else FuncFormatter(_plain)
        )
        _from_zero(ax)
        ax.set_title(label + ("" if panel_ranked else " (flagged only)"))
    flagged_rows = pd.concat(flagged_only.values()) if flagged_only else data.trials.iloc[:0]
    _legend(fig, axes, [flag_handle(flagged_rows)] if flagged_only else None)
    if closed:
        caption += " " + ranked_caption
    caption += flagged_note(
        flagged_rows,
        "Hollow markers, without a bar, are the single flagged trials of configurations that "
        "have no ranked trial",
    )
    return _chart(id_, title, alt, caption + note, fig)


def efficiency(data: Data) -> Chart:
    return _bars_by_cores(
        data,
        "chart-efficiency",
        "Requests per server CPU-second (efficiency)",
        "requests_per_server_cpu_s",
        "requests_per_server_cpu_s",
        "requests / server CPU-s",
        "Requests served per second of server CPU time (user + system, all server threads, "
        "read from /proc over the measured window): how much work each design spends per "
        "request, whatever it reached. A design that spins or polls spends CPU without "
        "serving more.",
        "Bars: median of the ranked repetitions; dots: each ranked repetition.",
        "Bar chart of requests per server CPU-second per design and core count",
        "a server CPU time",
        "the server CPU column is empty: no CPU time of the server's threads was recorded "
        "from /proc",
    )


def context_switches(data: Data) -> Chart:
    return _bars_by_cores(
        data,
        "chart-ctxt",
        "Context switches per request",
        "ctxt_per_request",
        "ctxt_per_request",
        "context switches / request",
        "Voluntary plus involuntary context switches of all server threads over the measured "
        "window (from /proc), per request served. Work-stealing runtimes park and wake worker "
        "threads as work appears and disappears; a thread-per-core loop that is always busy "
        "should hardly switch.",
        "Bars: median of the ranked repetitions; dots: each ranked repetition.",
        "Bar chart of context switches per request per design and core count",
        "context-switch counts",
        "the context-switch column is empty: no switch counts of the server's threads were "
        "recorded from /proc",
    )
