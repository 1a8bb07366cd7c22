"""A trial's flags in words, made from the typed causes the run judged (run.flags.Cause, stored in
the trials table's `flag_causes`, docs/data.md). Words from data: nothing here reads text back.
A run stored before schema_version 2 has only its `*_reason` text, shown as it was written."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

Cause = Mapping[str, Any]


def causes_of(row: Mapping[str, Any] | pd.Series, column: str | None = None) -> list[Cause]:
    """The causes stored with one trial (those of the flag `column` when given)."""
    stored = row.get("flag_causes")
    if stored is None or (isinstance(stored, float) and pd.isna(stored)):
        return []
    return [c for c in stored if column is None or c.get("flag") == column]


def has_causes(row: Mapping[str, Any] | pd.Series) -> bool:
    """Whether the trial was stored with typed causes (schema_version 2 on)."""
    stored = row.get("flag_causes")
    return stored is not None and not (isinstance(stored, float) and pd.isna(stored))


def _number(value: Any) -> str:
    """An index as stored (a table read back may give a whole number as a float)."""
    return "?" if value is None or pd.isna(value) else str(int(value))


def _where(c: Cause) -> str:
    cpu = f" on CPU {_number(c['cpu'])}" if c.get("cpu") is not None else ""
    host = f" (client host {c['host']})" if c.get("host") else ""
    return f"client thread {_number(c.get('thread'))}{cpu}{host}"


def _host(c: Cause) -> str:
    return f" (client host {c['host']})" if c.get("host") else ""


def client_words(c: Cause) -> str:
    """One load-generator record (docs/loadgen.md, client_limits) in words."""
    kind, value, limit = c.get("kind"), c.get("value"), c.get("limit")
    if kind == "busy":
        return f"{_where(c)} busy {value:.0%} of the window (>= {limit:.0%})"
    if kind == "runqueue_wait":
        return (
            f"{_where(c)} waited for its CPU {value:.1%} of the window (run-queue wait "
            f">= {limit:.0%}): other processes ran there"
        )
    if kind == "no_report":
        return f"{_where(c)} did not report (it failed or hung)"
    if kind == "schedule_lag_p99":
        return (
            f"schedule lag p99 {value:,.0f} µs > {limit:,.0f} µs: requests were noticed "
            f"late{_host(c)}"
        )
    if kind == "sent_share":
        return (
            f"sent {value:.2%} of the requests scheduled (< {limit:.0%}): the rest waited in "
            f"connection queues{_host(c)}"
        )
    if kind == "queue_overflow":
        return f"{value:,.0f} due requests dropped from a full connection backlog{_host(c)}"
    if kind == "reported":
        return "the load generator reported itself client-bound"
    return str(kind)


def _server_words(c: Cause) -> str:
    kind, value, limit = c.get("kind"), c.get("value"), c.get("limit")
    if kind == "other_processes":
        return f"CPU {_number(c.get('cpu'))}: other processes used {value:.0%}"
    if kind == "steal":
        return f"CPU {_number(c.get('cpu'))}: hypervisor steal {value:.0%}"
    if kind == "achieved_rate":
        of = c.get("of")
        return f"achieved {value:,.0f} req/s of {of:,.0f} due ({value / of:.1%})"
    if kind == "step":
        return f"steps {value:+.1%} at interval {_number(c.get('interval'))} (limit {limit:.0%})"
    if kind == "drift":
        return f"drifts {value:+.1%} across the window (linear trend; limit {limit:.0%})"
    if kind == "no_throughput":
        return "no throughput in the window"
    return client_words(c)


def _errors_words(causes: list[Cause]) -> str:
    total = next((c["value"] for c in causes if c.get("kind") == "errors_total"), None)
    kinds = ", ".join(
        f"{c['detail']} {c['value']:,.0f}" for c in causes if c.get("kind") == "error"
    )
    lost = next((c["value"] for c in causes if c.get("kind") == "lost"), None)
    lost_words = f", {lost:,.0f} requests lost" if lost is not None else ""
    total_words = f"{total:,.0f}" if total is not None else "some"
    return f"{total_words} errors ({kinds or 'kind not reported'}){lost_words}"


def _censored_words(causes: list[Cause]) -> str:
    count = next((c for c in causes if c.get("kind") == "censored"), {})
    upper = next((c for c in causes if c.get("kind") == "p99_upper_bound"), {})
    of = f" of {count['of']:,.0f} scheduled" if count.get("of") is not None else ""
    bound = upper.get("value")
    bound_words = "no upper bound" if bound is None else f"upper bound {bound:,.0f} µs"
    n = count.get("value") or 0
    return f"{n:,.0f} requests{of} unanswered at the window's end; p99 {bound_words}"


def flag_words(column: str, causes: Iterable[Cause]) -> str:
    """One flag of one trial in words, from its causes ("" when it has none)."""
    causes = list(causes)
    if column == "errors_flag":
        return _errors_words(causes) if causes else ""
    if column == "censored_flag":
        return _censored_words(causes) if causes else ""
    if column == "contended":
        waited = any(c.get("kind") == "runqueue_wait" for c in causes)
        follows = ("schedule_lag_p99", "sent_share", "queue_overflow")
        return "; ".join(
            f"with it, {client_words(c)}"
            if waited and c.get("kind") in follows
            else _server_words(c)
            for c in causes
        )
    return "; ".join(_server_words(c) for c in causes)


def reason_of(row: Mapping[str, Any] | pd.Series, column: str) -> str:
    """Why one flag of one trial is set: words from its causes, or the text a run stored before
    schema_version 2 wrote, as it was written."""
    if has_causes(row):
        return flag_words(column, causes_of(row, column))
    legacy = row.get(f"{column}_reason")
    return "" if legacy is None or (isinstance(legacy, float) and pd.isna(legacy)) else str(legacy)
