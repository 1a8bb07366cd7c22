"""Calibration: what the load generator can offer here, and which measurement can rank designs.

Where one client core faces one server core (a laptop, a CI runner, this project's 2-CPU VM),
closed-loop peak throughput measures the client as often as the server: every trial comes back
client-bound and nothing ranks. So a run calibrates first, and these pure functions turn the
calibration trials into a plan:

1. **The client's capacity** (`client_capacity`): a short open-loop ramp against the fastest
   conformant design at no work; the most the load generator achieved is what it can offer on
   its CPUs (a lower bound when the server, not the client, stopped the ramp: said so).
2. **The open-loop cap** (`open_loop_cap`): no open-loop rate above ~70% of that capacity. Near
   its limit an open-loop generator falls behind its schedule, and the lateness is charged to
   the server as latency (coordinated omission in reverse); 30% headroom keeps the schedule
   lag of a Poisson schedule well under the server's service times.
3. **Common absolute rates** (`common_rates`): the same offered rates for every compared design,
   fractions of the smallest closed-loop capacity among them (so every design can carry every
   rate), each capped by the client. At one rate for all, server CPU-µs per request and latency
   percentiles compare like with like (monoio's own fixed-QPS CPU table, measured honestly).
4. **The mode** (`choose_mode`): closed-loop throughput where the client outran every design;
   otherwise fixed-rate efficiency at the common rates; otherwise server-bound throughput with
   enough per-request `--work` that the server, not the client, is the bottleneck.

Every result carries its reason string, for the manifest and the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial

from harness.errors import HarnessError

# A ramp point "keeps up" when it achieves this share of what it offered (flags.RATE_MISSED_LIMIT).
KEEP_UP_SHARE = 0.99
# A load-generator thread this busy may be the limit (flags.CLIENT_BUSY_LIMIT, measurement rule 2).
CLIENT_BUSY_LIMIT = 0.90
# Never plan an open-loop rate above this share of the client's calibrated capacity.
CLIENT_RATE_CAP_SHARE = 0.70
# Fixed-rate efficiency: rates as fractions of the smallest closed-loop capacity compared.
DEFAULT_RATE_FRACTIONS = (0.25, 0.5)
# Server-bound throughput: per-request work that holds every design's closed-loop capacity at or
# below this share of the client's capacity, so the client has 2x headroom.
SERVER_BOUND_CLIENT_SHARE = 0.5
# Below this many requests per second a fixed-rate trial holds too few requests to rank on
# (a 3 s window at 100 req/s is 300 requests: a p99 from 3 values).
MIN_USEFUL_RATE = 100.0
# Rates are rounded down to this many significant figures (12,345 -> 12,300): readable in the
# report, and never above the cap or the smallest capacity they came from.
RATE_SIGNIFICANT_FIGURES = 3


class Mode(StrEnum):
    """What a run measures and ranks on."""

    FIXED_RATE = "fixed-rate"  # open loop at common absolute rates: server CPU-µs/request, latency
    SERVER_BOUND = "server-bound"  # closed loop with per-request --work: throughput
    CLOSED_LOOP = "closed-loop"  # closed loop at no work: peak throughput


# The ranked measure of each mode and whether higher is better.
RANKED_MEASURE: dict[Mode, tuple[str, bool]] = {
    Mode.FIXED_RATE: ("server_cpu_us_per_request", False),
    Mode.SERVER_BOUND: ("throughput_rps", True),
    Mode.CLOSED_LOOP: ("throughput_rps", True),
}


@dataclass(frozen=True)
class RampPoint:
    """One open-loop calibration trial: the rate offered, the rate achieved, and the load
    generator's own client-bound verdict (None: not given)."""

    offered: float
    achieved: float
    client_bound: bool | None = None
    client_busy: float | None = None  # the busiest load-generator thread's share of the window

    @property
    def kept_up(self) -> bool:
        return self.achieved >= KEEP_UP_SHARE * self.offered and not self.client_bound


@dataclass(frozen=True)
class ClientCapacity:
    """What the load generator can offer on its CPUs (req/s), from the ramp."""

    rate: float | None  # None: no usable ramp point
    lower_bound: bool  # True: the client may offer more (it kept up, or the server stopped it)
    points: tuple[RampPoint, ...]
    reason: str
    # The highest offered rate it kept up with while no thread was CLIENT_BUSY_LIMIT busy
    # (measurement rule 2: a client core >= ~90% busy marks a trial client-bound); None: the
    # ramp gave no thread figures.
    unbusy_rate: float | None = None


@dataclass(frozen=True)
class RateCap:
    """The highest open-loop rate a plan may offer, and why."""

    rate: float | None  # None: no calibrated capacity, so no cap can be stated
    share: float
    reason: str

    def apply(self, rate: float) -> float:
        return rate if self.rate is None else min(rate, self.rate)


@dataclass(frozen=True)
class DesignCapacity:
    """One design's closed-loop calibration trial: its throughput (None: the trial failed) and
    whether the load generator said it set the pace."""

    design: str
    rate: float | None
    client_bound: bool | None = None


@dataclass(frozen=True)
class CommonRates:
    """Offered rates, the same for every compared design."""

    rates: tuple[float, ...]
    fractions: tuple[float, ...]
    basis_design: str | None  # the design with the smallest closed-loop capacity
    basis_rate: float | None
    capped: tuple[bool, ...]  # per rate: lowered to the client's cap
    left_out: tuple[str, ...]  # designs without a closed-loop capacity (failed calibration)
    reason: str


@dataclass(frozen=True)
class ModeChoice:
    """The measurement a run makes, why, and what it ranks on."""

    mode: Mode
    reason: str
    measure: str
    higher_is_better: bool
    chosen_by: str  # "user" | "calibration"
    rates: CommonRates | None = None  # fixed-rate only
    work: str | None = None  # server-bound only: the --work DIST every design runs
    cap: RateCap | None = None
    capacities: tuple[DesignCapacity, ...] = field(default_factory=tuple)


def _fmt(rate: float) -> str:
    return f"{rate:,.0f} req/s"


def round_down(value: float, figures: int = RATE_SIGNIFICANT_FIGURES) -> float:
    """`value` rounded down to `figures` significant figures (0 stays 0)."""
    if value <= 0:
        return 0.0
    scale = 10 ** (math.floor(math.log10(value)) - figures + 1)
    return float(math.floor(value / scale + 1e-9) * scale)


# The ramp's offered rates as shares of the fastest design's closed-loop throughput: below it,
# at it, and beyond it, so the ramp crosses whichever of client and server gives out first.
RAMP_SHARES = (0.2, 0.35, 0.5, 0.8, 1.0, 1.3)


def ramp_rates(fastest_closed_loop: float, shares: Sequence[float] = RAMP_SHARES) -> list[float]:
    """Offered rates for the client's open-loop ramp against the fastest conformant design."""
    if fastest_closed_loop <= 0:
        raise HarnessError(
            "the client's ramp needs the fastest design's closed-loop throughput (> 0); "
            "its calibration trial failed: see its reason"
        )
    return sorted({round_down(s * fastest_closed_loop) for s in shares if s > 0})


def client_capacity(points: Sequence[RampPoint]) -> ClientCapacity:
    """The client's capacity from an open-loop ramp (offered vs achieved rates).

    The capacity is the most the load generator achieved at any point. When some point fell
    behind (below 99% of its offered rate, or reported client-bound) the ramp found a limit: the
    client's if the load generator said it was client-bound there, otherwise possibly the
    server's, and then the capacity is a lower bound. When every point kept up, it is a lower
    bound too: the client can offer at least the highest rate tried.
    """
    usable = tuple(sorted((p for p in points if p.offered > 0), key=lambda p: p.offered))
    if not usable:
        return ClientCapacity(None, True, (), "no open-loop calibration point was measured")
    return replace(_capacity(usable), unbusy_rate=_unbusy_rate(usable))


def _unbusy_rate(usable: tuple[RampPoint, ...]) -> float | None:
    """The highest offered rate kept up with below the busy limit; when even the lowest point
    was that busy, its rate scaled down to the limit (a linear estimate, said as such)."""
    timed = [p for p in usable if p.client_busy is not None]
    if not timed:
        return None
    calm = [p.offered for p in timed if p.kept_up and (p.client_busy or 0.0) < CLIENT_BUSY_LIMIT]
    if calm:
        return max(calm)
    low = timed[0]
    return low.offered * CLIENT_BUSY_LIMIT / max(low.client_busy or 1.0, 1e-9)


def _capacity(usable: tuple[RampPoint, ...]) -> ClientCapacity:
    best = max(p.achieved for p in usable)
    missed = [p for p in usable if not p.kept_up]
    if not missed:
        top = usable[-1].offered
        return ClientCapacity(
            best,
            True,
            usable,
            f"the load generator kept up with every offered rate up to {_fmt(top)}: "
            f"it can offer at least {_fmt(best)}",
        )
    first = missed[0]
    if first.client_bound:
        why = "reported itself client-bound"
        lower = False
    else:
        why = (
            "fell behind without reporting itself client-bound (the server may have been the limit)"
        )
        lower = True
    return ClientCapacity(
        best,
        lower,
        usable,
        f"offered {_fmt(first.offered)}, the load generator achieved {_fmt(first.achieved)} and "
        f"{why}; its capacity is {'at least ' if lower else ''}{_fmt(best)} (the most it achieved)",
    )


def open_loop_cap(client: ClientCapacity, share: float = CLIENT_RATE_CAP_SHARE) -> RateCap:
    """No open-loop rate above `share` (~70%) of the client's calibrated capacity."""
    if client.rate is None or client.rate <= 0:
        return RateCap(None, share, f"no cap: {client.reason}")
    cap = round_down(share * client.rate)
    reason = (
        f"open-loop rates are capped at {_fmt(cap)}, {share:.0%} of the load generator's "
        f"calibrated {_fmt(client.rate)}, so that its schedule, not the server, never sets the "
        "latency"
    )
    unbusy = client.unbusy_rate
    if unbusy is not None and round_down(share * unbusy) < cap:
        cap = round_down(share * unbusy)
        reason = (
            f"open-loop rates are capped at {_fmt(cap)}, {share:.0%} of {_fmt(unbusy)}, the "
            f"highest rate the load generator held with no thread {CLIENT_BUSY_LIMIT:.0%} busy "
            f"(its capacity, {_fmt(client.rate)}, keeps it busier than that; a client core "
            f">= {CLIENT_BUSY_LIMIT:.0%} busy marks a trial client-bound)"
        )
    return RateCap(cap, share, reason)


def common_rates(
    capacities: Sequence[DesignCapacity],
    cap: RateCap,
    fractions: Sequence[float] = DEFAULT_RATE_FRACTIONS,
) -> CommonRates:
    """The same absolute offered rates for every design: `fractions` of the smallest closed-loop
    capacity among the compared designs, each capped by the client and rounded down.

    A design whose calibration failed has no capacity and is named in `left_out`; the rates come
    from the others. Rates that round to the same value are given once; none below
    MIN_USEFUL_RATE.
    """
    measured = [c for c in capacities if c.rate is not None and c.rate > 0]
    left_out = tuple(c.design for c in capacities if c.rate is None or c.rate <= 0)
    if not measured:
        return CommonRates(
            (), tuple(fractions), None, None, (), left_out, "no design has a closed-loop capacity"
        )
    basis = min(measured, key=lambda c: (c.rate, c.design))
    assert basis.rate is not None
    rates: list[float] = []
    capped: list[bool] = []
    for f in sorted(fractions):
        wanted = f * basis.rate
        rate = round_down(cap.apply(wanted))
        if rate < MIN_USEFUL_RATE or rate in rates:
            continue
        rates.append(rate)
        capped.append(cap.rate is not None and wanted > cap.rate)
    shares = ", ".join(f"{f:.0%}" for f in sorted(fractions))
    offered = " and ".join(_fmt(r) for r in rates) or "none"
    reason = (
        f"every design is offered the same rates ({offered}): {shares} of the smallest "
        f"closed-loop capacity among them ({basis.design}, {_fmt(basis.rate)})"
    )
    if any(capped):
        reason += f", capped at {_fmt(cap.rate or 0)} (the client's cap)"
    if left_out:
        reason += f"; left out (no capacity measured): {', '.join(left_out)}"
    if not rates:
        reason += f"; no rate reaches {_fmt(MIN_USEFUL_RATE)}, so none is planned"
    return CommonRates(
        tuple(rates),
        tuple(sorted(fractions)),
        basis.design,
        basis.rate,
        tuple(capped),
        left_out,
        reason,
    )


def server_bound_work(
    client: ClientCapacity, cores: int, share: float = SERVER_BOUND_CLIENT_SHARE
) -> str | None:
    """`--work fixed:US` that holds any design's closed-loop capacity at or below `share` of the
    client's: `cores` workers each burning US µs per request serve at most cores x 1e6 / US req/s
    whatever their overhead, so US = cores x 1e6 / (share x client). None without a capacity."""
    if client.rate is None or client.rate <= 0 or cores < 1:
        return None
    us = math.ceil(cores * 1e6 / (share * client.rate))
    return f"fixed:{max(us, 1)}"


def _client_bound_summary(measured: Sequence[DesignCapacity]) -> str:
    bound = [c.design for c in measured if c.client_bound]
    unknown = [c.design for c in measured if c.client_bound is None]
    text = f"{len(bound)} of {len(measured)} designs' closed-loop calibration trials were "
    text += f"client-bound ({', '.join(bound)})" if bound else "client-bound"
    if unknown:
        text += f" and {len(unknown)} did not say ({', '.join(unknown)})"
    return text


def choose_mode(
    client: ClientCapacity,
    capacities: Sequence[DesignCapacity],
    *,
    cores: int,
    requested: Mode | str | None = None,
    fractions: Sequence[float] = DEFAULT_RATE_FRACTIONS,
    work_supported: bool = True,
    cap_share: float = CLIENT_RATE_CAP_SHARE,
) -> ModeChoice:
    """The measurement for this run, from the calibration, with its reason.

    The user's `requested` mode is kept (its plan still computed from the calibration). Without
    one: closed-loop peak throughput when no design's calibration trial was client-bound (the
    load generator outran every design, so throughput is the server's); otherwise fixed-rate
    efficiency at common rates, ranking server CPU-µs per request; and when no common rate can
    be planned (no client capacity), server-bound throughput with per-request --work, if every
    design accepts --work. A HarnessError (one line) when nothing can rank.
    """
    cap = open_loop_cap(client, cap_share)
    if requested is not None:
        return _as_requested(_mode_of(requested), client, capacities, cores, fractions, cap)
    return _by_calibration(client, capacities, cores, fractions, work_supported, cap)


def _made(
    mode: Mode, reason: str, by: str, *, cap: RateCap, capacities: tuple, **kw: object
) -> ModeChoice:
    measure, higher = RANKED_MEASURE[mode]
    return ModeChoice(mode, reason, measure, higher, by, cap=cap, capacities=capacities, **kw)  # type: ignore[arg-type]


def _mode_of(requested: Mode | str) -> Mode:
    try:
        return Mode(requested)
    except ValueError:
        allowed = ", ".join(m.value for m in Mode)
        raise HarnessError(f"measurement mode {requested!r} is not one of {allowed}") from None


def _as_requested(
    mode: Mode,
    client: ClientCapacity,
    capacities: Sequence[DesignCapacity],
    cores: int,
    fractions: Sequence[float],
    cap: RateCap,
) -> ModeChoice:
    """The user's mode, its plan computed from the calibration."""
    made = partial(_made, cap=cap, capacities=tuple(capacities))
    asked = f"asked for ({mode.value})"
    if mode is Mode.FIXED_RATE:
        rates = common_rates(capacities, cap, fractions)
        if not rates.rates:
            raise HarnessError(
                f"fixed-rate needs at least one common rate: {rates.reason}; "
                "check the calibration trials or choose another mode"
            )
        return made(mode, f"{asked}: {rates.reason}; {cap.reason}", "user", rates=rates)
    if mode is Mode.SERVER_BOUND:
        work = server_bound_work(client, cores)
        if work is None:
            raise HarnessError(
                f"server-bound needs the client's calibrated capacity: {client.reason}"
            )
        return made(mode, f"{asked}: {_work_reason(work, client, cores)}", "user", work=work)
    return made(mode, f"{asked}: peak closed-loop throughput at no work", "user")


def _by_calibration(
    client: ClientCapacity,
    capacities: Sequence[DesignCapacity],
    cores: int,
    fractions: Sequence[float],
    work_supported: bool,
    cap: RateCap,
) -> ModeChoice:
    """The mode the calibration says ranks the designs (choose_mode's docstring)."""
    made = partial(_made, cap=cap, capacities=tuple(capacities))
    measured = [c for c in capacities if c.rate is not None and c.rate > 0]
    if not measured:
        raise HarnessError(
            "no design's closed-loop calibration trial succeeded, so no measurement can rank; "
            "see the failed trials' reasons (harness run stores them)"
        )
    if all(c.client_bound is False for c in measured):
        return made(
            Mode.CLOSED_LOOP,
            "no design's closed-loop calibration trial was client-bound: the load generator "
            "outran every design, so peak throughput is the servers' and ranks them",
            "calibration",
        )
    summary = _client_bound_summary(measured)
    rates = common_rates(capacities, cap, fractions)
    if rates.rates:
        return made(
            Mode.FIXED_RATE,
            f"{summary}, so peak throughput may measure the load generator; "
            f"designs are ranked on server CPU-µs per request and latency at common fixed "
            f"rates instead: {rates.reason}; {cap.reason}",
            "calibration",
            rates=rates,
        )
    work = server_bound_work(client, cores) if work_supported else None
    if work is not None:
        return made(
            Mode.SERVER_BOUND,
            f"{summary} and no common fixed rate can be planned ({rates.reason}); "
            f"{_work_reason(work, client, cores)}",
            "calibration",
            work=work,
        )
    raise HarnessError(
        f"{summary}, no common fixed rate can be planned ({rates.reason}) and "
        f"{'not every design accepts --work' if not work_supported else client.reason}: "
        "give the load generator more CPUs (--client-cpus) or compare fewer designs"
    )


def _work_reason(work: str, client: ClientCapacity, cores: int) -> str:
    us = work.partition(":")[2]
    bound = cores * 1e6 / float(us)
    return (
        f"every design burns --work {work} per request, which holds {cores} core(s) to at most "
        f"{_fmt(bound)} whatever the runtime's overhead, at most {SERVER_BOUND_CLIENT_SHARE:.0%} "
        f"of the load generator's {_fmt(client.rate or 0)}: the server, not the client, is the "
        "bottleneck, so closed-loop throughput ranks"
    )


def rates_within_cap(rates: Sequence[float], cap: RateCap) -> tuple[tuple[float, ...], str]:
    """A user's --rates with every rate above the client's cap lowered to it, and what was
    lowered (empty when nothing was): the cap holds for explicit rates too, and is said."""
    if cap.rate is None:
        return tuple(rates), ""
    lowered = [r for r in rates if r > cap.rate]
    kept = tuple(dict.fromkeys(min(r, cap.rate) for r in rates))
    if not lowered:
        return kept, ""
    listed = ", ".join(_fmt(r) for r in lowered)
    return kept, f"{listed} lowered to {_fmt(cap.rate)}: {cap.reason}"


def capacities_from(rates: Mapping[str, tuple[float | None, bool | None]]) -> list[DesignCapacity]:
    """DesignCapacity per design from {design: (closed-loop throughput, client_bound)}."""
    return [DesignCapacity(d, r, b) for d, (r, b) in sorted(rates.items())]
