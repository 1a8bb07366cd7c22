"""The trial settings, declared once: the workload of a trial, which with the server and the
offered load makes trials repetitions of one configuration.

`Workload` is the one declaration (name, type, default for a run stored before the setting
existed, a label in words, the column's type in the tables). The plan's TrialSpec and the
analysis's ConfigSummary are Workloads; the trials table's columns (store/schema.py), the
configuration keys and labels (analysis/labels.py) and the exports' columns are built from
SETTINGS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any


def _setting(label: str, column: str, **default: Any) -> Any:
    return field(metadata={"label": label, "column": column}, **default)


@dataclass(frozen=True, kw_only=True)
class Workload:
    protocol: str = _setting("protocol", "string")
    server_cores: int = _setting("server cores", "int32")
    connections: int = _setting("connections", "int32")
    size_bytes: int = _setting("message size (bytes)", "int64")
    pipeline: int = _setting("pipeline depth", "int32", default=1)
    work: str = _setting("work per request", "string", default="none")
    # Churn: a new connection every K requests; None keeps connections open.
    requests_per_connection: int | None = _setting("requests per connection", "int64", default=None)
    mode: str = _setting("loop (closed or open)", "string", default="closed")


@dataclass(frozen=True)
class Setting:
    name: str
    kind: type  # int or str: what a stored value is turned back into
    label: str
    column: str  # the column's type in the tables: a pyarrow type alias
    default: Any  # a run stored before the setting existed (None: required)


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(
        f.name,
        int if "int" in str(f.type) else str,
        f.metadata["label"],
        f.metadata["column"],
        None if f.default is MISSING else f.default,
    )
    for f in fields(Workload)
)
SETTING_NAMES: tuple[str, ...] = tuple(s.name for s in SETTINGS)
# What makes trials repetitions of one configuration, besides the server: the workload and the
# offered load (open loop: a rate, or a fraction of the capacity).
CONFIG_KEYS: tuple[str, ...] = (*SETTING_NAMES, "load")


def workload_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a stored row (a table's, or a group key's) as their types; a missing or
    null value is the setting's default (a run stored before the setting existed)."""
    out: dict[str, Any] = {}
    for s in SETTINGS:
        v = values.get(s.name)
        missing = v is None or (isinstance(v, float) and math.isnan(v))
        out[s.name] = s.default if missing else s.kind(v)
    return out
