"""Which designs two runs set up differently: the runtime settings each server reported at start
(trials.parquet `settings_profile`, `server_settings`; docs/server-contract.md), compared design
by design, for a note in `harness compare`."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

Reported = tuple[str | None, str]  # (profile, settings JSON with sorted keys)


def _reported(trials: pd.DataFrame) -> dict[str, set[Reported]]:
    """Per design, the distinct (profile, settings) its trials reported; a design whose trials
    reported none is absent."""
    if trials is None or trials.empty or "server_settings" not in trials.columns:
        return {}
    out: dict[str, set[Reported]] = {}
    for server, profile, settings in zip(
        trials["server"],
        trials.get("settings_profile", pd.Series([None] * len(trials))),
        trials["server_settings"],
        strict=True,
    ):
        if isinstance(settings, str):
            out.setdefault(str(server), set()).add((_text(profile), settings))
    return out


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _describe(reported: set[Reported]) -> str:
    return " or ".join(f"{profile or '?'} {settings}" for profile, settings in sorted(reported))


def _changed_keys(a: set[Reported], b: set[Reported]) -> str:
    """`key a -> b` for each setting that differs, when each side reported one set-up."""
    if len(a) != 1 or len(b) != 1:
        return ""
    (pa, sa), (pb, sb) = next(iter(a)), next(iter(b))
    da, db = json.loads(sa), json.loads(sb)
    parts = [f"profile {pa} -> {pb}"] if pa != pb else []
    for key in sorted(set(da) | set(db)):
        if da.get(key) != db.get(key):
            parts.append(f"{key} {_value(da, key)} -> {_value(db, key)}")
    return ", ".join(parts)


def _value(settings: dict[str, Any], key: str) -> str:
    """A setting as the server wrote it (JSON: true, 32768, "multishot"), or (none)."""
    return json.dumps(settings[key]) if key in settings else "(none)"


def settings_differences(trials_a: pd.DataFrame, trials_b: pd.DataFrame) -> list[str]:
    """One note per design measured in both runs whose reported runtime settings differ (or
    were reported by one run only); a profile name alone differing is no difference."""
    ra, rb = _reported(trials_a), _reported(trials_b)
    designs_a = set(trials_a["server"]) if trials_a is not None and not trials_a.empty else set()
    designs_b = set(trials_b["server"]) if trials_b is not None and not trials_b.empty else set()
    notes = []
    for design in sorted(designs_a & designs_b):
        a, b = ra.get(design, set()), rb.get(design, set())
        # The same settings under another profile name (a runtime whose authors' set-up is its
        # defaults) are the same set-up.
        if {s for _, s in a} == {s for _, s in b}:
            continue
        if not a or not b:
            which = "B" if not a else "A"
            notes.append(
                f"{design}: runtime settings recorded in {which} only "
                f"({_describe(a or b)}); the other run predates them or its server printed none"
            )
            continue
        keys = _changed_keys(a, b)
        notes.append(
            f"{design}: runtime settings differ between the runs"
            + (f" ({keys})" if keys else f": A {_describe(a)}; B {_describe(b)}")
            + "; its figures compare two set-ups, not two measurements of one"
        )
    return notes
