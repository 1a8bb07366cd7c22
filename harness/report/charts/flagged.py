"""How flagged trials are told apart in the charts: their legend entry, and the caption's
sentence saying why each kind of flag is not the server's own number."""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from harness.analysis.flagged import (
    FLAG_KINDS,
    SERVER_FLAGS,
    causes_of,
    flag_counts,
    is_set,
    short_reason,
)
from harness.run import flags
from harness.run.steady import STEADY_DRIFT_LIMIT

FLAG_GREY = "#6b6b6b"
MAX_NAMED_MARKS = 3  # marked trials named on a chart, at most (charts.base.MAX_NAMED)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _percent_range(values: pd.Series) -> str:
    v = values.dropna()
    if v.empty:
        return ""
    lo, hi = round(float(v.min()) * 100), round(float(v.max()) * 100)
    return f"{lo}%" if lo == hi else f"{lo}-{hi}%"


def _figures(
    rows: pd.DataFrame, column: str, kind: str, scale: float = 1.0
) -> tuple[list[float], int]:
    """Each figure of the causes of `kind` these trials carry for the flag `column` (times
    `scale`), and how many trials carry one (run.flags.Cause, stored as `flag_causes`)."""
    values, trials = [], 0
    for row in rows.to_dict("records"):
        mine = [c for c in causes_of(row, column) if c.get("kind") == kind]
        trials += bool(mine)
        values += [float(c["value"]) * scale for c in mine if c.get("value") is not None]
    return values, trials


def _span(values: list[float], unit: str = "%", spec: str = ".0f") -> str:
    if not values:
        return ""
    lo, hi = format(min(values), spec), format(max(values), spec)
    return f"{lo}{unit}" if lo == hi else f"{lo}-{hi}{unit}"


def _of(n: int, total: int) -> str:
    return "" if n == total else f" ({n} of {total} trials)"


# What each kind of cause did, per flag: (kind, scale of its figures, unit, format, words). The
# words take the span of the trials' own figures ({span}) and, for a busy client, who was busy
# beside which server ({who}, {beside}); each is followed by how many of the trials it covers.
_CAUSE_WORDS: dict[str, tuple[tuple[str, float, str, str, str], ...]] = {
    "client_bound": (
        ("busy", 100.0, "%", ".0f",
         "{who} was {span} busy (>= {busy_limit} of the window){beside}, so the load generator, "
         "not the server alone, may have set the pace"),
        ("schedule_lag_p99", 1.0, " µs", ",.0f",
         "the load generator noticed due requests late (schedule lag p99 {span}), so their "
         "latency includes its own delay"),
        ("sent_share", 100.0, "%", ".1f",
         "it sent only {span} of the requests scheduled, the rest waited in its connection "
         "queues"),
        ("no_report", 1.0, "", "", "a load-generator thread did not report (it failed or hung)"),
        ("queue_overflow", 1.0, "", "",
         "due requests were dropped from a full connection backlog"),
        ("reported", 1.0, "", "", "the load generator reported itself client-bound"),
    ),
    "contended": (
        ("runqueue_wait", 100.0, "%", ".1f",
         "a load-generator thread waited for its CPU {span} of the window (run-queue wait) while "
         "other processes ran there, so its sends and timestamps were late by that much: "
         "contention, not a busy client"),
        ("other_processes", 100.0, "%", ".0f",
         "other processes used {span} of a trial CPU, so part of the time measured was theirs"),
        ("steal", 100.0, "%", ".0f", "the hypervisor took {span} of a trial CPU (steal)"),
    ),
}  # fmt: skip
_NO_FIGURES = {
    "client_bound": "the load generator may have set the pace, not the server alone",
    "contended": "other processes (or the hypervisor) used the trial's CPUs, so part of the "
    "time measured was theirs",
}


def _cause_words(rows: pd.DataFrame, column: str) -> str:
    """Each kind of cause these trials carry for the flag `column`, with their own figures."""
    single = "client_threads" in rows and bool(
        rows["client_threads"].notna().any() and (rows["client_threads"].dropna() == 1).all()
    )
    server = _percent_range(rows["server_cpu_util"]) if "server_cpu_util" in rows else ""
    context = {
        "who": "the single load-generator core" if single else "a load-generator thread",
        "beside": f" while the server's CPUs were {server} busy" if server else "",
        "busy_limit": f"{flags.CLIENT_BUSY_LIMIT:.0%}",
    }
    parts = []
    for kind, scale, unit, spec, words in _CAUSE_WORDS[column]:
        values, n = _figures(rows, column, kind, scale)
        if n:
            span = _span(values, unit, spec)
            parts.append(words.format(span=span, **context) + _of(n, len(rows)))
    return "; ".join(parts) or _NO_FIGURES[column]


def _answered_shares(rows: pd.DataFrame) -> list[float]:
    """The share of the requests due each rate-missed trial answered, in percent."""
    return [
        100.0 * float(c["value"]) / float(c["of"])
        for row in rows.to_dict("records")
        for c in causes_of(row, "rate_missed")
        if c.get("kind") == "achieved_rate" and c.get("value") is not None and c.get("of")
    ]


def flag_explanation(kind: str, rows: pd.DataFrame) -> str:
    """What happened in trials with this flag, from their own reasons and figures."""
    if kind == "client-bound":
        return _cause_words(rows, "client_bound")
    if kind == "contended":
        return _cause_words(rows, "contended")
    if kind == "rate missed":
        share = _span(_answered_shares(rows), "%", ".1f")
        held = f" (it answered {share} of the requests due)" if share else ""
        return (
            f"the server fell behind the offered rate{held}, below "
            f"{flags.RATE_MISSED_LIMIT:.0%}: that counts against the design"
        )
    return {
        "oversubscribed": "server and load generator shared CPUs, so these numbers measure the "
        "sharing, not the executor",
        "unsteady": f"throughput drifted or stepped by more than {STEADY_DRIFT_LIMIT:.0%} "
        "inside the measured window: the server's own behaviour, which no single number "
        "describes",
        "errors": "requests were lost (timed out or dropped with their connection); each is in "
        "the histogram at its time so far, so the tail is a lower bound",
        "censored": "requests were still unanswered at the window's end; each is in the "
        "histogram at its time so far, so the p99 shown is at least the true one",
    }.get(kind, "something other than the server may have set their numbers")


def flagged_note(rows: pd.DataFrame, subject: str) -> str:
    """The caption's sentence about the flagged trials a chart draws: that they are not ranked,
    and why each kind is not the server's own number."""
    if rows.empty:
        return ""
    rows = rows.drop_duplicates("trial_id")
    counts = flag_counts(rows)
    why = "; ".join(
        f"{kind} ({_count(n, 'trial')}): " + flag_explanation(kind, rows[rows[column].map(is_set)])
        for column, kind in FLAG_KINDS
        if (n := counts.get(kind, 0))
    )
    return (
        f" {subject} ({_count(len(rows), 'trial')}): drawn so that no measured number is "
        "hidden, but never ranked (left out of every median, interval, ratio and verdict). "
        f"{why[:1].upper()}{why[1:]}."
    )


def flag_handle(rows: pd.DataFrame, *, line: bool = False) -> Line2D:
    """The legend entry of the flagged trials drawn: "flagged: <kinds> (not ranked)"."""
    kinds = [kind for _c, kind in FLAG_KINDS if kind in flag_counts(rows)] or ["flagged"]
    label = f"flagged: {', '.join(kinds)} (not ranked)"
    if line:
        return Line2D([], [], color=FLAG_GREY, linestyle=":", linewidth=1.6, label=label)
    return Line2D(
        [],
        [],
        marker="o",
        linestyle="none",
        markerfacecolor="none",
        markeredgecolor=FLAG_GREY,
        markeredgewidth=1.4,
        label=label,
    )


# Ranked trials with a server flag (analysis.flagged.SERVER_FLAGS: the server could not hold the
# rate, drifted, lost or left requests unanswered): in every median and verdict, counted against
# the design, and marked where single trials are drawn so that a reader sees why they are worse.
SERVER_FLAG_MARKER = "X"


def server_flagged(rows: pd.DataFrame) -> pd.DataFrame:
    """The ranked trials among `rows` that carry a server flag."""
    if rows.empty or "ranked" not in rows:
        return rows.iloc[:0]
    mask = pd.Series(False, index=rows.index)
    for column in SERVER_FLAGS:
        if column in rows:
            mask |= rows[column].map(is_set)
    return rows[rows["ranked"].fillna(False).astype(bool) & mask]


def mark_server_flagged(
    ax: Axes,
    rows: pd.DataFrame,
    x: str,
    y: str,
    colour: str,
    *,
    name: bool = True,
    xs: list[float] | None = None,
) -> pd.DataFrame:
    """Draw the ranked, server-flagged trials among `rows` as a cross in the design's colour
    over their point (at column x, or at `xs` given for every row of `rows`), named by their
    flags when `name`; returns the trials marked."""
    marked = server_flagged(rows[rows[x].notna() & rows[y].notna()])
    if marked.empty:
        return marked
    where = [xs[rows.index.get_loc(i)] for i in marked.index] if xs is not None else list(marked[x])
    ax.scatter(
        where,
        list(marked[y]),
        s=70,
        marker=SERVER_FLAG_MARKER,
        color=colour,
        edgecolors="black",
        linewidths=0.6,
        zorder=5,
    )
    if name and len(marked) <= MAX_NAMED_MARKS:
        for px, row in zip(where, marked.to_dict("records"), strict=True):
            ax.annotate(
                f"{short_reason(row)}, ranked ({row.get('server', '')})",
                (px, row[y]),
                textcoords="offset points",
                xytext=(6, 6),
                fontsize=7.5,
                color=colour,
            )
    return marked


def server_flag_handle(rows: pd.DataFrame) -> Line2D:
    """The legend entry of the marked trials: "server flag: <kinds> (ranked, counts against
    the design)"."""
    counts = flag_counts(rows)
    kinds = [kind for _c, kind in FLAG_KINDS if kind in counts] or ["server flag"]
    return Line2D(
        [],
        [],
        marker=SERVER_FLAG_MARKER,
        linestyle="none",
        color=FLAG_GREY,
        markeredgecolor="black",
        markeredgewidth=0.6,
        markersize=8,
        label=f"server flag: {', '.join(kinds)} (ranked, counts against the design)",
    )


def server_flagged_note(rows: pd.DataFrame) -> str:
    """The caption's sentence about the marked trials: ranked, counted against the design, and
    what happened in each kind, from their own figures."""
    if rows.empty:
        return ""
    rows = rows.drop_duplicates("trial_id")
    counts = flag_counts(rows)
    server_kinds = {dict(FLAG_KINDS)[c] for c in SERVER_FLAGS}
    why = "; ".join(
        f"{kind} ({_count(n, 'trial')}): " + flag_explanation(kind, rows[rows[column].map(is_set)])
        for column, kind in FLAG_KINDS
        if kind in server_kinds and (n := counts.get(kind, 0))
    )
    return (
        f" Crosses are ranked trials with a server flag ({_count(len(rows), 'trial')}): what "
        "the server did is its own result, so they stay in every median, interval, ratio and "
        f"verdict and count against the design. {why[:1].upper()}{why[1:]}."
    )


def why_none(rows: pd.DataFrame, scope: str, what: str, absent: str) -> str:
    """A true reason for drawing nothing: no trial at all, every trial failed, or the data is
    absent from the successful ones (flagged trials are drawn, so they are never the reason)."""
    if rows.empty:
        return f"no {scope} trials in this run"
    ok = rows[rows["status"] == "ok"]
    if ok.empty:
        every = "the only" if len(rows) == 1 else f"all {len(rows)}"
        return (
            f"{every} {scope} trial{'s' if len(rows) != 1 else ''} failed, so nothing was "
            f"measured; see the list of failed trials"
        )
    return f"no successful {scope} trial has {what} ({absent})"
