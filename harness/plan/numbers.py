"""The numbers of a plan are real: durations, timeouts, rates and counts finite and in range,
seeds in 0..2^64-1. Checked where they are read (flags, plan files) and where a stored plan is
read back (a manifest's plan.config and plan.trials), so NaN, infinities and negatives never
reach a trial."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from harness.errors import HarnessError

SEED_MAX = 2**64 - 1

# RunConfig / TrialSpec field -> (flag, lowest allowed, lowest excluded?). None: no lower bound.
_NUMBERS: dict[str, tuple[str, float | None, bool]] = {
    "duration_s": ("--duration", 0, True),
    "warmup_s": ("--warmup", 0, False),
    "timeout_s": ("--timeout", 0, True),
    "repeat": ("--repeat", 1, False),
    "client_cpus": ("--client-cpus", 1, False),
    "cores": ("--cores", 1, False),
    "server_cores": ("--cores", 1, False),
    "connections": ("--connections", 1, False),
    "sizes": ("--size", 1, False),
    "size_bytes": ("--size", 1, False),
    "pipeline": ("--pipeline", 1, False),
    "rates": ("--rates", 0, True),
    "rate": ("--rates", 0, True),
    "rate_sweep": ("--rate-sweep", 0, True),
    "rate_fraction": ("--rate-sweep", 0, True),
    "hot_fraction": ("--hot-fraction", 0, True),
    "hot_share": ("--hot-share", 0, True),
    "requests_per_connection": ("--requests-per-connection", 1, False),
}


def finite(value: Any, flag: str) -> Any:
    """value itself, or one line when it is a float that is NaN or infinite."""
    if isinstance(value, float) and not math.isfinite(value):
        raise HarnessError(f"{flag} must be a finite number, got {value!r}")
    return value


def check_seed(seed: Any, flag: str = "--seed") -> None:
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise HarnessError(f"{flag} must be an integer in 0..2^64-1 ({SEED_MAX}), got {seed!r}")


def _one(value: Any, name: str, flag: str, low: float | None, strict: bool, where: str) -> None:
    if value is None:
        return
    label = f"{where}{name}" if where else flag
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HarnessError(f"{label} must be a number, got {value!r}")
    finite(value, label)
    if low is not None and (value <= low if strict else value < low):
        bound = f"more than {low:g}" if strict else f"{low:g} or more"
        raise HarnessError(f"{label} must be {bound}, got {value!r}")


def check_numbers(values: Mapping[str, Any], where: str = "") -> None:
    """Every known duration, timeout, rate and count in values (a RunConfig's or TrialSpec's
    fields) finite and in range, and the seed in 0..2^64-1. where prefixes the message (a
    stored manifest names itself and the field instead of the flag)."""
    for name, (flag, low, strict) in _NUMBERS.items():
        value = values.get(name)
        items: Iterable[Any] = value if isinstance(value, list | tuple) else (value,)
        for item in items:
            _one(item, name, flag, low, strict, where)
    if "seed" in values:
        check_seed(values["seed"], f"{where}seed" if where else "--seed")


def check_stored_plan(plan: Any, source: str) -> None:
    """A manifest's plan read back: whatever of plan.config and plan.trials it holds has real
    numbers."""
    if plan is None:
        return
    pre = f"{source}: " if source else ""
    if not isinstance(plan, Mapping):
        raise HarnessError(f"{pre}plan is not a mapping")
    config = plan.get("config", {})
    if not isinstance(config, Mapping):
        raise HarnessError(f"{pre}plan.config is not a mapping")
    check_numbers(config, f"{pre}plan.config.")
    trials = plan.get("trials", [])
    if not isinstance(trials, list) or not all(isinstance(t, Mapping) for t in trials):
        raise HarnessError(f"{pre}plan.trials is not a list of trials")
    for t in trials:
        check_numbers(t, f"{pre}plan.trials[{t.get('trial_id', '?')}].")
