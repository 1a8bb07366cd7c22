"""A trial's flags in words, made from the typed causes the run judged (run.flags.Cause, stored in
the trials table's `flag_causes`, docs/data.md) and carried by the analysis as data
(analysis.flagged.TrialFlag). Words from data: nothing here reads text back. A run stored before
schema_version 2 has only its `*_reason` text, shown as it was written."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from harness.analysis.analyse import ConfigSummary
from harness.analysis.flagged import FLAG_KINDS, Cause, TrialFlag, trial_flag, trial_flags

# Each flag's name at the head of its reason ("client bound: ..."); an oversubscribed trial has
# no cause to tell beyond its name.
FLAG_NAMES: dict[str, str] = {
    **{column: kind.replace("-", " ") for column, kind in FLAG_KINDS},
    "oversubscribed": "oversubscribed CPUs",
}
# The order a trial's reasons are told in: the instrument's first, then the server's.
REASON_ORDER = (
    "oversubscribed",
    "client_bound",
    "unsteady",
    "rate_missed",
    "contended",
    "errors_flag",
    "censored_flag",
)


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


def why(flag: TrialFlag) -> str:
    """Why one flag of one trial is set: words from its causes, or the text a run stored before
    schema_version 2 wrote, as it was written."""
    if flag.legacy_reason is not None:
        return flag.legacy_reason
    return flag_words(flag.column, flag.causes)


def reason_of(row: Mapping[str, Any] | pd.Series, column: str) -> str:
    """why() of the flag `column` of one stored trial row."""
    return why(trial_flag(row, column))


def reason(flag: TrialFlag) -> str:
    """One flag with its reason: "client bound: client thread 0 ... busy 96% ..."."""
    if flag.column == "oversubscribed":
        return FLAG_NAMES["oversubscribed"]
    return f"{FLAG_NAMES[flag.column]}: {why(flag)}".rstrip(": ")


def _told_order(flags: Iterable[TrialFlag]) -> list[TrialFlag]:
    return sorted(flags, key=lambda f: REASON_ORDER.index(f.column))


def flag_reasons(of: ConfigSummary | Mapping[str, Any] | pd.Series) -> list[str]:
    """A trial's flags with their reasons (a stored trial row), or a configuration summary's:
    every distinct reason its flagged trials carry, in alphabetical order."""
    if isinstance(of, ConfigSummary):
        return sorted({reason(f) for f in of.flags})
    return [reason(f) for f in _told_order(trial_flags(of))]


def flag_names(s: ConfigSummary) -> list[str]:
    """The names of the flags a configuration's flagged trials carry (as flag_reasons orders
    them: alphabetically)."""
    return sorted({FLAG_NAMES[f.column] for f in s.flags})


def trial_reasons(row: Mapping[str, Any] | pd.Series) -> str:
    """A listed flagged trial's reasons in one line; one with server flags only is still
    ranked, and says so."""
    ranked = "" if row.get("flagged") else " (server flag: still ranked)"
    return "; ".join(flag_reasons(row)) + ranked


# A failed trial's kind of failure (run.trial.FailureKind), in words.
FAILURE_WORDS = {
    "server_start": "the server did not start",
    "port_shared": "another process listened on the trial's port",
    "server_died": "the server exited during the trial",
    "server_stop": "the server stopped badly",
    "loadgen_overran": "the load generator ran past its limit",
    "loadgen_failed": "the load generator ended without a report",
    "no_requests": "no request succeeded",
    "host_lost": "a host was lost",
    "hosts_unmergeable": "the client hosts' results could not be merged",
    "rate_unresolved": "its capacity trial measured nothing",
    "interrupted": "interrupted",
}


def failure_words(kind: str | None, reason: str | None) -> str:
    """A kind of failure in words; a trial stored before kinds were recorded shows its reason
    as it was written."""
    if kind is None:
        return reason or "unknown"
    return FAILURE_WORDS.get(kind, kind)
