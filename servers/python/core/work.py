"""`--work DIST`: drawn exactly as bench-core draws it (its SplitMix64 and formulas, work.rs) and
burnt in a busy loop on `time.perf_counter_ns` (never a sleep)."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from core.exits import UsageError

WORK_SYNTAX = "none, fixed:US, exp:MEAN_US, bimodal:US1:US2:P2 or lognormal:MEDIAN_US:SIGMA"
DEFAULT_SEED = 1  # bench_core::work::DEFAULT_SEED
MAX_US = 1e6  # largest microsecond parameter of --work (bench-core's MAX_US)
MAX_DRAW_NS = 10_000_000_000  # a single draw is clamped to 10 s (bench-core's MAX_DRAW)
_M64 = (1 << 64) - 1
_GOLDEN_GAMMA = 0x9E37_79B9_7F4A_7C15
_FLOAT = re.compile(r"[+-]?(inf|infinity|nan|(\d+\.?\d*|\.\d+)(e[+-]?\d+)?)", re.IGNORECASE)


def _mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB) & _M64
    return z ^ (z >> 31)


class Rng:
    """bench-core's SplitMix64 (work::Rng), bit for bit: the same --seed gives a Python worker
    the same draws as the Rust worker with the same index."""

    __slots__ = ("state",)

    def __init__(self, seed: int, stream: int) -> None:
        self.state = _mix64(_mix64(seed) ^ ((stream * _GOLDEN_GAMMA) & _M64))

    def next_u64(self) -> int:
        self.state = (self.state + _GOLDEN_GAMMA) & _M64
        return _mix64(self.state)

    def unit(self) -> float:
        """Uniform in [0, 1), 53 bits."""
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def open01(self) -> float:
        """Uniform in (0, 1): never 0, so its logarithm is finite."""
        return ((self.next_u64() >> 11) + 0.5) * (1.0 / (1 << 53))


@dataclass(frozen=True)
class Work:
    """`--work DIST`: CPU time burnt before answering each echo read or HTTP request."""

    kind: str = "none"  # none | fixed | exp | bimodal | lognormal
    params: tuple[float, ...] = ()

    @staticmethod
    def parse(text: str) -> Work:
        """bench-core's syntax, limits and messages (work.rs, `WorkDist::from_str`)."""
        kind, *fields = text.split(":")
        arity = {"none": 0, "fixed": 1, "exp": 1, "lognormal": 2, "bimodal": 3}
        if kind not in arity or len(fields) != arity[kind]:
            raise UsageError(f"--work: expected {WORK_SYNTAX}, got '{text}'")
        params = []
        for field in fields:
            value = float(field) if _FLOAT.fullmatch(field) else math.nan
            if not (math.isfinite(value) and value >= 0):
                raise UsageError(f"--work: '{field}' in '{text}' is not a number >= 0")
            params.append(value)
        micros = {"bimodal": params[:2], "lognormal": params[:1]}.get(kind, params)
        if any(us > MAX_US for us in micros):
            raise UsageError(f"--work: '{text}': durations are at most {MAX_US:.0f} us")
        if kind == "bimodal" and params[2] > 1:
            raise UsageError(f"--work: '{text}': P2 is a probability, 0..1")
        return Work(kind, tuple(params))

    def sample_ns(self, rng: Rng) -> int:
        """One draw in nanoseconds, with bench-core's formulas (so the same draws)."""
        p = self.params
        if self.kind == "fixed":
            us = p[0]
        elif self.kind == "exp":
            us = -p[0] * math.log(rng.open01())
        elif self.kind == "bimodal":
            us = p[1] if rng.unit() < p[2] else p[0]
        elif self.kind == "lognormal":  # Box-Muller, the cosine half
            radius = math.sqrt(-2.0 * math.log(rng.open01()))
            z = radius * math.cos(math.tau * rng.unit())
            try:
                us = p[0] * math.exp(p[1] * z)
            except OverflowError:
                us = math.inf
        else:
            return 0
        ns = us * 1e3
        if ns != ns or ns > MAX_DRAW_NS:  # Rust's f64::min returns the non-NaN operand
            return MAX_DRAW_NS
        return math.floor(ns + 0.5)  # Rust rounds half away from zero; ns >= 0


def burn(ns: int) -> None:
    """Spins until `ns` nanoseconds have passed: simulated request processing, never a sleep."""
    if ns <= 0:
        return
    deadline = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < deadline:
        pass


class Burner:
    """One worker's `--work`: its generator (stream `worker` of `--seed`, as bench-core's
    `Config::pin_worker` seeds each worker thread) and the burn. Called once per non-empty echo
    read or per HTTP request."""

    __slots__ = ("rng", "work")

    def __init__(self, work: Work, seed: int, worker: int) -> None:
        self.work = work
        self.rng = Rng(seed, worker)

    def __call__(self) -> None:
        burn(self.work.sample_ns(self.rng))
