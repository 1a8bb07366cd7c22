"""How flagged trials are told apart in the charts: their legend entry, and the caption's
sentence saying why each kind of flag is not the server's own number."""

from __future__ import annotations

import pandas as pd
from matplotlib.lines import Line2D

from harness.analysis.flagged import FLAG_KINDS, flag_counts, is_set
from harness.run import flags
from harness.run.steady import STEADY_DRIFT_LIMIT

FLAG_GREY = "#6b6b6b"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _percent_range(values: pd.Series) -> str:
    v = values.dropna()
    if v.empty:
        return ""
    lo, hi = round(float(v.min()) * 100), round(float(v.max()) * 100)
    return f"{lo}%" if lo == hi else f"{lo}-{hi}%"


def flag_explanation(kind: str, rows: pd.DataFrame) -> str:
    """Why trials with this flag do not measure the server alone, from their own numbers."""
    if kind == "client-bound":
        single = "client_threads" in rows and bool(
            (rows["client_threads"].dropna() == 1).all() and rows["client_threads"].notna().any()
        )
        client = _percent_range(rows["client_cpu_util"]) if "client_cpu_util" in rows else ""
        server = _percent_range(rows["server_cpu_util"]) if "server_cpu_util" in rows else ""
        if single and client:
            who = f"the single load-generator core was {client} busy"
        else:
            who = (
                f"a load-generator thread was busy {flags.CLIENT_BUSY_LIMIT:.0%} of the window "
                "or more"
            )
        if server:
            who += f" while the server's CPUs were {server} busy"
        return (
            f"{who}, so the pace was set by server and load generator together, not by the "
            "server alone"
        )
    return {
        "oversubscribed": "server and load generator shared CPUs, so these numbers measure the "
        "sharing, not the executor",
        "contended": "other processes (or the hypervisor) used the trial's CPUs, so part of the "
        "time measured was theirs",
        "rate missed": f"the achieved rate fell below {flags.RATE_MISSED_LIMIT:.0%} of the "
        "target, so these are not points of the server's latency curve",
        "unsteady": f"throughput drifted or stepped by more than {STEADY_DRIFT_LIMIT:.0%} "
        "inside the measured window, so no single number describes it",
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
