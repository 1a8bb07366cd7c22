"""`harness model`: the queueing model of a stored run (issue 11), written as model.parquet
beside it and printed as the thread-per-core / work-stealing ratio table with its assumptions."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.errors import HarnessError

HELP = "predict 1-16 cores with a queueing model fed by a run; writes model.parquet beside it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Defaults are the model's own (analysis/queues.py), resolved when the command runs: importing
    # the simulation here would cost every other command its start-up.
    parser.add_argument("results_dir", type=Path)
    parser.add_argument(
        "--customers",
        type=int,
        default=None,
        help="requests simulated per replication (default: analysis/queues.py CUSTOMERS)",
    )
    parser.add_argument(
        "--replications",
        type=int,
        default=None,
        help="independent replications per point (default: analysis/queues.py REPLICATIONS)",
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
    # Plain text, no markup or emoji: "exp:100:" must print as itself, and narrow terminals
    # must not truncate the figures.
    from harness.report.model_section import FIXED_RHO

    def say(line: str) -> None:
        console.print(line, markup=False, emoji=False, highlight=False)

    say("Model (not a measurement); assumptions:")
    for a in result.assumptions:
        say(f"  - {a}")
    for n in result.notes:
        say(f"  note: {n}")
    p = result.predictions
    if not result.ratios.empty:
        say(
            "thread-per-core / work-stealing ratios, model "
            "('+': a lower bound, the target is met at every modelled load):"
        )
        for r in result.ratios.itertuples():
            at = p[
                (p["thread_per_core"] == r.thread_per_core)
                & (p["work"] == r.work)
                & (p["connections"] == r.connections)
                & (p["cores"] == r.cores)
                & ((p["rho"] - FIXED_RHO).abs() < 1e-9)
            ]
            say(
                f"  {r.thread_per_core} / {r.work_stealing}  {r.work}  {r.connections} conns  "
                f"N={r.cores}: req/s at p99 <= {_num(r.p99_target_us, ',.1f')} us: tpc "
                f"{_num(r.tpc_rps_at_target)}{'+' if r.tpc_censored else ''}, ws "
                f"{_num(r.ws_rps_at_target)}{'+' if r.ws_censored else ''}, throughput ratio "
                f"{_num(r.throughput_ratio, '.2f')}; p99 ratio at rho {FIXED_RHO} "
                + (_num(at["p99_ratio"].iloc[0], ".2f") if len(at) else "-")
            )
    for c in result.comparison.itertuples():
        say(
            f"measured {c.design} (pair {c.thread_per_core} / {c.work_stealing}) N={c.cores} "
            f"{c.work} rho {c.rho:.2f}: p99 {c.measured_p99_us:,.1f} us, model "
            f"{c.model_p99_us:,.1f} us ({c.model_p99_low:,.1f}-{c.model_p99_high:,.1f}), "
            f"error {c.error:+.0%}" + (" (flagged trial)" if c.flagged else "")
        )
    say(str(path))


def run(args: argparse.Namespace, console: Console) -> int:
    from harness.analysis.model import CORES, run_model

    results_dir: Path = args.results_dir
    if not (results_dir / "trials.parquet").is_file():
        raise HarnessError(
            f"{results_dir} has no trials.parquet: pass a run directory under results/ "
            "(`harness run` writes one)"
        )
    from harness.analysis.queues import CUSTOMERS, REPLICATIONS

    args.customers = CUSTOMERS if args.customers is None else args.customers
    args.replications = REPLICATIONS if args.replications is None else args.replications
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
