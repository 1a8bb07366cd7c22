"""A trial's record in raw/: everything its rows are made of, written (and fsynced) before the
rows, so that the tables can always be rebuilt from raw/ (`harness repair`, `--resume`).

`raw/<trial_id>.trial.json` holds the TrialResult as plain JSON: the (resolved) spec, status,
reason, times, /proc samples, perf counters, the server's counters, and the name of the raw file
holding the load generator's output (raw/<trial_id>.loadgen.json, not copied). `seq` orders the
records as they were stored, which is the order of the rows in the tables.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from harness.atomic import fsync_path, write_atomic
from harness.plan.cpus import CpuAssignment
from harness.plan.plan import TrialSpec
from harness.run import flags
from harness.run.flags import TrialFlags
from harness.run.trial import HostsTrialResult, TrialResult

RECORD_FORMAT = "trial-record/1"
RECORD_SUFFIX = ".trial.json"
MANIFEST_COPY = "manifest.json"  # raw/manifest.json: the manifest as last written


def record_path(raw: Path, trial_id: str) -> Path:
    return raw / f"{trial_id}{RECORD_SUFFIX}"


def to_record(run_id: str, result: TrialResult, seq: int, raw: Path) -> dict[str, Any]:
    data: dict[str, Any] = {"format": RECORD_FORMAT, "seq": seq, "run_id": run_id}
    for f in dataclasses.fields(result):
        data[f.name] = getattr(result, f.name)
    trial_id = result.spec.trial_id
    data["spec"] = result.spec.to_dict()
    data["cpu_busy"] = {str(k): list(v) for k, v in (result.cpu_busy or {}).items()}
    data["flags"] = result.flags.to_dict() if result.flags is not None else None
    loadgen_file = raw / f"{trial_id}.loadgen.json"
    data["loadgen_file"] = None
    if result.loadgen is not None and _same_json(loadgen_file, result.loadgen):
        data["loadgen_file"], data["loadgen"] = loadgen_file.name, None
    return data


def _same_json(path: Path, value: Any) -> bool:
    """path holds exactly value (then the record names the file instead of copying it)."""
    try:
        return json.loads(path.read_text()) == value
    except (OSError, ValueError):
        return False


def write_record(raw: Path, record: dict[str, Any]) -> Path:
    """The record on disk, and every raw file of its trial fsynced, before any row is written."""
    trial_id = record["spec"]["trial_id"]
    for path in raw.glob(f"{trial_id}.*"):
        if path.is_file() and not path.name.endswith(".tmp"):
            fsync_path(path)
    path = record_path(raw, trial_id)
    text = json.dumps(record, default=str) + "\n"
    write_atomic(path, lambda p: p.write_text(text))
    return path


def spec_from_dict(data: dict[str, Any]) -> TrialSpec:
    cpus = data["cpus"]
    known = {f.name for f in dataclasses.fields(TrialSpec)}
    assignment = CpuAssignment(
        server=tuple(cpus["server"]),
        client=tuple(cpus["client"]),
        oversubscribed=cpus["oversubscribed"],
        note=cpus.get("note", ""),
    )
    return TrialSpec(**{**{k: v for k, v in data.items() if k in known}, "cpus": assignment})


def from_record(raw: Path, data: dict[str, Any]) -> TrialResult:
    """The TrialResult a record was written from. Raises ValueError (or KeyError/TypeError) when
    the record or the load-generator file it names is damaged."""
    if data.get("format") != RECORD_FORMAT:
        raise ValueError(f"not a {RECORD_FORMAT} record")
    # A trial across hosts (docs/multi-host.md) keeps each client host's document.
    kind = HostsTrialResult if "per_host" in data else TrialResult
    known = {f.name for f in dataclasses.fields(kind)}
    values = {k: v for k, v in data.items() if k in known}
    values["spec"] = spec_from_dict(data["spec"])
    values["cpu_busy"] = {int(k): tuple(v) for k, v in (data.get("cpu_busy") or {}).items()}
    if data.get("loadgen_file"):
        values["loadgen"] = json.loads((raw / data["loadgen_file"]).read_text())
    values["flags"] = TrialFlags.from_dict(data["flags"]) if data.get("flags") else None
    result = kind(**values)
    if "flags" not in data:  # a record from before the run judged its flags: judged as read
        result.flags = flags.judge(result)
    return result


def read_records(raw: Path) -> tuple[list[tuple[int, str, TrialResult]], list[str]]:
    """Every readable record in raw/ as (seq, run_id, result), in stored order; and the names of
    the damaged ones."""
    good: list[tuple[int, str, TrialResult]] = []
    damaged: list[str] = []
    for path in sorted(raw.glob(f"*{RECORD_SUFFIX}")) if raw.is_dir() else []:
        try:
            data = json.loads(path.read_text())
            good.append((int(data["seq"]), str(data["run_id"]), from_record(raw, data)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            damaged.append(f"{path.name} ({str(exc).splitlines()[0] if str(exc) else exc!r})")
    good.sort(key=lambda item: item[0])
    return good, damaged


def next_seq(raw: Path) -> int:
    """One more than the highest seq of the records in raw/ (0 for none)."""
    seqs = []
    for path in raw.glob(f"*{RECORD_SUFFIX}") if raw.is_dir() else []:
        try:
            seqs.append(int(json.loads(path.read_text())["seq"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return max(seqs, default=-1) + 1
