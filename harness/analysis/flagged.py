"""Flagged trials across a run: which flags they carry (with the causes stored for each), how many
of each, which one dominates (what the report's advice follows). Data only: the rules that set
each flag are harness/run/flags.py, and only the report words them (report/flag_words.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

# Flags about the instrument: the number may not be the server's, so a trial carrying any is
# shown but never ranked.
INSTRUMENT_FLAGS = ("oversubscribed", "client_bound", "contended")
# Flags about the server: it could not hold the rate, drifted, lost or left requests unanswered.
# That is the design's own result (worse, not incomparable): shown with its reason, still ranked.
SERVER_FLAGS = ("unsteady", "rate_missed", "errors_flag", "censored_flag")
FLAGS = INSTRUMENT_FLAGS + SERVER_FLAGS
# The flags that keep a trial out of ranking: only the instrument's (issue 14). A design that
# cannot hold a rate, drifts or loses requests is worse, not incomparable: its trials are ranked
# and the charts mark them (report/charts/flagged.py, mark_server_flagged).
EXCLUDING_FLAGS = INSTRUMENT_FLAGS

# Each flag's column and its short name, in the order that best explains a trial's numbers (a
# trial that shared its CPUs is first of all oversubscribed, whatever else went wrong).
FLAG_KINDS: tuple[tuple[str, str], ...] = (
    ("oversubscribed", "oversubscribed"),
    ("contended", "contended"),
    ("client_bound", "client-bound"),
    ("rate_missed", "rate missed"),
    ("unsteady", "unsteady"),
    ("errors_flag", "errors"),
    ("censored_flag", "censored"),
)


def is_set(value: object) -> bool:
    return value is not None and not pd.isna(value) and bool(value)  # type: ignore[arg-type]


def flag_kinds(row: Mapping[str, Any] | pd.Series) -> list[str]:
    """The short names of a trial's flags (most explanatory first)."""
    return [word for column, word in FLAG_KINDS if is_set(row.get(column))]


def short_reason(row: Mapping[str, Any] | pd.Series) -> str:
    return " + ".join(flag_kinds(row)) or "flagged"


def flag_counts(rows: pd.DataFrame) -> Counter[str]:
    """How many of these trials carry each flag (a trial may carry several)."""
    counts: Counter[str] = Counter()
    for column, word in FLAG_KINDS:
        if not rows.empty and column in rows:
            n = int(rows[column].map(is_set).sum())
            if n:
                counts[word] = n
    return counts


def kinds_text(kinds: Counter[str]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in kinds.most_common())


Cause = Mapping[str, Any]  # one stored cause (run.flags.Cause's fields and its "flag" column)


@dataclass(frozen=True)
class TrialFlag:
    """One flag set on one trial, as the store keeps it: the flag's column, the typed causes the
    run judged for it, and, for a run stored before schema_version 2 (no causes), the
    `*_reason` text it wrote then, as it is (None when the trial has causes)."""

    column: str  # one of FLAGS
    causes: tuple[Cause, ...] = ()
    legacy_reason: str | None = None


def has_causes(row: Mapping[str, Any] | pd.Series) -> bool:
    """Whether the trial was stored with typed causes (schema_version 2 on)."""
    stored = row.get("flag_causes")
    return stored is not None and not (isinstance(stored, float) and pd.isna(stored))


def causes_of(row: Mapping[str, Any] | pd.Series, column: str | None = None) -> list[Cause]:
    """The causes stored with one trial (those of the flag `column` when given)."""
    if not has_causes(row):
        return []
    return [c for c in row["flag_causes"] if column is None or c.get("flag") == column]


def trial_flag(row: Mapping[str, Any] | pd.Series, column: str) -> TrialFlag:
    """What one trial has stored for the flag `column`: its causes, or a schema-1 run's text."""
    if has_causes(row):
        return TrialFlag(column, tuple(dict(c) for c in causes_of(row, column)))
    text = row.get(f"{column}_reason")
    legacy = "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    return TrialFlag(column, legacy_reason=legacy)


def trial_flags(row: Mapping[str, Any] | pd.Series) -> tuple[TrialFlag, ...]:
    """Every flag set on one trial with what was stored for it (in FLAG_KINDS order)."""
    return tuple(trial_flag(row, column) for column, _ in FLAG_KINDS if is_set(row.get(column)))


def dominant_flag(trials: pd.DataFrame) -> str | None:
    """The flag most flagged trials carry (ties go to the one that best explains a trial)."""
    if trials.empty or "flagged" not in trials:
        return None
    flagged = trials[trials["flagged"]]
    counts = flag_counts(flagged)
    if not counts:
        return None
    order = [column for column, _kind in FLAG_KINDS]
    kind_to_column = {kind: column for column, kind in FLAG_KINDS}
    best = max(counts.items(), key=lambda kv: (kv[1], -order.index(kind_to_column[kv[0]])))
    return kind_to_column[best[0]]
