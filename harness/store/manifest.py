"""A run's identity and its manifest.json: what was planned, on which machine, what came of it;
and, for --resume, what a stored run already holds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.plan.designs import Design
from harness.plan.plan import Plan
from harness.run.execute import INTERRUPTED
from harness.store.files import RunStore
from harness.store.schema import SCHEMA_VERSION


def new_run_id(out_root: Path) -> str:
    base = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id, n = base, 1
    while (out_root / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def new_manifest(
    run_id: str,
    plan: Plan,
    designs: dict[str, Design],
    command: list[str],
    platform: dict[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ended_at": None,
        "command": command,
        "plan": plan.to_dict(),
        "designs": {n: vars(designs[n]) for n in plan.config.servers if n in designs},
        "platform": platform,
        **extra,
    }


def resume_state(store: RunStore) -> tuple[set[str], dict[str, float | None]]:
    """Trials already done (any stored outcome but an interruption) and their throughputs."""
    done = {r["trial_id"] for r in store.rows["trials"] if r["reason"] != INTERRUPTED}
    capacities = {
        r["trial_id"]: r["throughput_rps"] for r in store.rows["trials"] if r["status"] == "ok"
    }
    return done, capacities
