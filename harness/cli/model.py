"""`harness model`: the queueing model of a stored run (issue 11), written as model.parquet
beside it and printed as the thread-per-core / work-stealing ratio table with its assumptions."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.errors import HarnessError

HELP = "predict 1-16 cores with a queueing model fed by a run; writes model.parquet beside it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from harness.analysis.model import CUSTOMERS, REPLICATIONS

    parser.add_argument("results_dir", type=Path)
    parser.add_argument(
        "--customers",
        type=int,
        default=CUSTOMERS,
        help=f"requests simulated per replication (default {CUSTOMERS:,})",
    )
    parser.add_argument(
        "--replications",
        type=int,
        default=REPLICATIONS,
        help=f"independent replications per point (default {REPLICATIONS})",
    )
    parser.add_argument(
        "--cores", default=None, help="comma-separated N to simulate (default 1,2,4,8,16)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--p99-target-us",
        type=float,
        default=None,
        help="p99 target of the throughput ratio (default 10x the tpc mean service time)",
    )


def _records(frame: Any) -> list[dict[str, Any]]:
    """Plain rows; json writes NaN and infinities as NaN/Infinity, which json.loads reads back
    (an unstable queue's +inf p99 stays +inf)."""
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def write_model(results_dir: Path, result: Any) -> Path:
    """model.parquet: the predictions as rows; assumptions, notes, ratios and the comparison
    with measured points in the schema metadata, so the report reads one stored file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from harness.report.model_section import METADATA_KEY, MODEL_FILE
    from harness.store.files import _write_atomic

    table = pa.Table.from_pandas(result.predictions, preserve_index=False)
    extra = {
        "source": "model",
        "assumptions": list(result.assumptions),
        "notes": list(result.notes),
        "ratios": _records(result.ratios),
        "comparison": _records(result.comparison),
    }
    meta = dict(table.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps(extra).encode()
    table = table.replace_schema_metadata(meta)
    path = results_dir / MODEL_FILE
    _write_atomic(path, lambda p: pq.write_table(table, p))
    return path


def _num(x: Any, spec: str = ",.0f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return format(float(x), spec)


def _print(console: Console, result: Any, path: Path) -> None:
    console.print("[bold]Model (not a measurement)[/bold]; assumptions:")
    for a in result.assumptions:
        console.print(f"  - {a}", highlight=False)
    for n in result.notes:
        console.print(f"  note: {n}", highlight=False)
    if not result.ratios.empty:
        table = Table(title="thread-per-core / work-stealing, model")
        for col in ("pair", "work", "conns", "N", "p99 target µs", "tpc req/s", "ws req/s",
                    "throughput ratio", "p99 ratio at rho 0.7"):  # fmt: skip
            table.add_column(col)
        p = result.predictions
        for r in result.ratios.itertuples():
            at = p[
                (p["thread_per_core"] == r.thread_per_core)
                & (p["work"] == r.work)
                & (p["connections"] == r.connections)
                & (p["cores"] == r.cores)
                & ((p["rho"] - 0.7).abs() < 1e-9)
            ]
            table.add_row(
                f"{r.thread_per_core} / {r.work_stealing}",
                str(r.work),
                str(r.connections),
                str(r.cores),
                _num(r.p99_target_us, ",.1f"),
                _num(r.tpc_rps_at_target) + ("+" if r.tpc_censored else ""),
                _num(r.ws_rps_at_target) + ("+" if r.ws_censored else ""),
                _num(r.throughput_ratio, ".2f"),
                _num(at["p99_ratio"].iloc[0], ".2f") if len(at) else "-",
            )
        console.print(table)
    for c in result.comparison.itertuples():
        console.print(
            f"measured {c.design} N={c.cores} {c.work} rho {c.rho:.2f}: p99 "
            f"{c.measured_p99_us:,.1f} µs, model {c.model_p99_us:,.1f} µs "
            f"({c.model_p99_low:,.1f}-{c.model_p99_high:,.1f}), error {c.error:+.0%}"
            + (" (flagged trial)" if c.flagged else ""),
            highlight=False,
        )
    console.print(str(path), highlight=False)


def run(args: argparse.Namespace, console: Console) -> int:
    from harness.analysis.model import CORES, run_model

    results_dir: Path = args.results_dir
    if not (results_dir / "trials.parquet").is_file():
        raise HarnessError(
            f"{results_dir} has no trials.parquet: pass a run directory under results/ "
            "(`harness run` writes one)"
        )
    if args.customers < 100 or args.replications < 1:
        raise HarnessError("--customers must be >= 100 and --replications >= 1")
    try:
        cores = tuple(int(c) for c in args.cores.split(",")) if args.cores is not None else CORES
    except ValueError:
        raise HarnessError(
            f"--cores {args.cores!r}: give comma-separated integers, e.g. 1,2,4"
        ) from None
    try:
        result = run_model(
            results_dir,
            cores=cores,
            customers=args.customers,
            replications=args.replications,
            seed=args.seed,
            p99_target_us=args.p99_target_us,
        )
    except ValueError as exc:
        raise HarnessError(str(exc)) from exc
    if result.predictions.empty:
        raise HarnessError(
            f"{results_dir}: nothing to model ({'; '.join(result.notes) or 'no pair'}); "
            "measure a thread-per-core and a work-stealing design at the same --work"
        )
    _print(console, result, write_model(results_dir, result))
    return 0
