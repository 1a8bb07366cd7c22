"""What a run measures, decided from its calibration (issue 9): pure planning, no I/O.

`harness run` without --mode/--rates/--rate-sweep (`--measure auto`, what `make run` does)
calibrates first, in two short phases stored under the run's `calibration/` directory:

1. **capacity**: one closed-loop trial per design and configuration group (protocol, cores,
   connections, size, pipeline, work; always also at no work), so each design's closed-loop
   capacity and the load generator's client-bound verdict are known;
2. **ramp**: per group, a short open-loop ramp against the fastest design at no work, so the
   load generator's own capacity on its CPUs is known (plan/calibrate.py `client_capacity`).

`decide` then turns them into the measured plan with plan/calibrate.py `choose_mode`, one mode for
the whole run (fixed-rate when any group needs it, else server-bound, else closed-loop), and the
reason, for the manifest and the report. `--measure as-given` (implied by --mode, --rates or
--rate-sweep) plans exactly what the flags say; its open-loop rates are still checked against a
calibrated client cap unless --no-calibrate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any

from harness.errors import HarnessError
from harness.plan.calibrate import (
    CLIENT_RATE_CAP_SHARE,
    ClientCapacity,
    DesignCapacity,
    Mode,
    ModeChoice,
    RampPoint,
    choose_mode,
    client_capacity,
    open_loop_cap,
    ramp_rates,
    rates_within_cap,
)
from harness.plan.plan import RunConfig, TrialSpec

AUTO = "auto"
AS_GIVEN = "as-given"
MEASURES = (AUTO, *(m.value for m in Mode), AS_GIVEN)
# Calibration trials are short: they find capacities, they are not ranked.
CAPACITY_WARMUP_S = 0.5
CAPACITY_DURATION_S = 2.0
RAMP_WARMUP_S = 0.5
RAMP_DURATION_S = 2.0
# Preference when groups disagree: fixed-rate answers wherever a client-bound group exists.
_MODE_ORDER = (Mode.FIXED_RATE, Mode.SERVER_BOUND, Mode.CLOSED_LOOP)

# (protocol, server_cores, connections, size_bytes, pipeline, work)
GroupKey = tuple[str, int, int, int, int, str]


def group_of(spec: TrialSpec) -> GroupKey:
    return (
        spec.protocol,
        spec.server_cores,
        spec.connections,
        spec.size_bytes,
        spec.pipeline,
        spec.work,
    )


def without_work(group: GroupKey) -> GroupKey:
    return (*group[:5], "none")  # type: ignore[return-value]


def group_text(group: GroupKey) -> str:
    proto, cores, conns, size, depth, work = group
    what = f"echo {size} B" if proto == "echo" else "HTTP GET"
    text = f"{what}, {cores} core(s), {conns} conns"
    text += f", pipeline {depth}" if depth != 1 else ""
    return text + (f", work {work}" if work != "none" else "")


def needs_calibration(config: RunConfig) -> bool:
    """Auto and the named measures calibrate; as-given only to cap explicit open-loop rates."""
    if not config.calibrate:
        return False
    if config.measure == Mode.CLOSED_LOOP.value:
        return False  # peak closed-loop throughput needs no rate
    if config.measure == AS_GIVEN:
        return config.mode == "open" and bool(config.rates)
    return True


def capacity_config(config: RunConfig) -> RunConfig:
    """Phase 1: one short closed-loop trial per design and group, at every work and at none."""
    works = tuple(dict.fromkeys(("none", *config.works)))
    return replace(
        config,
        mode="closed",
        rates=(),
        rate_sweep=(),
        group_rates=(),
        works=works,
        repeat=1,
        warmup_s=CAPACITY_WARMUP_S,
        duration_s=CAPACITY_DURATION_S,
        measure=AS_GIVEN,
        hot_fraction=None,
        hot_share=None,
        requests_per_connection=(None,),
    )


def ramp_config(
    config: RunConfig, groups: Mapping[GroupKey, tuple[str, float]]
) -> RunConfig | None:
    """Phase 2: an open-loop ramp per group (at no work) against its fastest design.

    `groups`: {group at no work: (fastest design, its closed-loop throughput)}. The ramp rates of
    each group go in `group_rates`; the plan is made with the fastest designs only (make_plan
    plans a group only for the designs named in its rates' entry, see `group_servers`)."""
    entries = []
    for group, (design, rate) in sorted(groups.items()):
        if rate and rate > 0:
            entries.append((group, tuple(ramp_rates(rate)), design))
    if not entries:
        return None
    return replace(
        capacity_config(config),
        servers=tuple(dict.fromkeys(d for _, _, d in entries)),
        works=("none",),
        mode="open",
        group_rates=tuple((g, r, (d,)) for g, r, d in entries),
        warmup_s=RAMP_WARMUP_S,
        duration_s=RAMP_DURATION_S,
    )


@dataclass(frozen=True)
class GroupDecision:
    """One group's calibration and what it planned."""

    group: GroupKey
    client: ClientCapacity
    choice: ModeChoice | None
    left_out: str = ""  # why this group is not measured ("" when it is)

    def to_dict(self) -> dict[str, Any]:
        choice = asdict(self.choice) if self.choice else None
        return {
            "group": list(self.group),
            "label": group_text(self.group),
            "client": asdict(self.client),
            "choice": choice,
            "left_out": self.left_out,
        }


@dataclass(frozen=True)
class Decision:
    """The run's measurement: its mode, what it ranks on, who chose it and why."""

    measure: str  # the --measure asked for (auto, a mode, as-given)
    mode: str  # a Mode value, or "as-given"
    ranked_measure: str
    higher_is_better: bool
    chosen_by: str  # "user" | "calibration"
    reason: str
    groups: tuple[GroupDecision, ...] = field(default_factory=tuple)
    lowered: tuple[str, ...] = ()  # explicit rates lowered to the client's cap

    def to_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure,
            "mode": self.mode,
            "ranked_measure": self.ranked_measure,
            "higher_is_better": self.higher_is_better,
            "chosen_by": self.chosen_by,
            "reason": self.reason,
            "cap_share": CLIENT_RATE_CAP_SHARE,
            "groups": [g.to_dict() for g in self.groups],
            "lowered": list(self.lowered),
        }


def as_given(config: RunConfig, reason: str) -> Decision:
    """The plan as the flags say, uncalibrated."""
    measure, higher = (
        ("server_cpu_us_per_request", False) if config.mode == "open" else ("throughput_rps", True)
    )
    return Decision(config.measure, AS_GIVEN, measure, higher, "user", reason)


def decide(
    config: RunConfig,
    capacities: Mapping[GroupKey, Sequence[DesignCapacity]],
    ramps: Mapping[GroupKey, Sequence[RampPoint]],
    *,
    work_supported: bool,
) -> tuple[RunConfig, Decision]:
    """The measured plan's configuration and the decision, from the calibration.

    `capacities[group]`: each design's closed-loop calibration trial in that group (every work);
    `ramps[group at no work]`: the client's ramp points there.
    """
    clients = {g: client_capacity(ramps.get(without_work(g), ())) for g in capacities}
    if config.measure == AS_GIVEN:
        return _capped_as_given(config, clients)
    groups = [g for g in capacities if g[5] in config.works]
    if not groups:
        raise HarnessError("the calibration measured no configuration; see its failed trials")
    choose = partial(
        _choose, clients, capacities, work_supported=work_supported, fractions=config.rate_fractions
    )
    first: dict[GroupKey, ModeChoice] = {}
    if config.measure == AUTO:
        first = _own_choices(groups, choose)
        mode, by = _one_mode(groups, choose, first), "calibration"
    else:
        mode, by = Mode(config.measure), "user"
    decisions = [_group_decision(g, clients[g], choose, mode, first, by) for g in groups]
    planned = [d for d in decisions if d.choice is not None]
    if not planned:
        raise HarnessError(
            f"no configuration can be measured in {mode.value} mode: {decisions[0].left_out}"
        )
    chosen = planned[0].choice
    assert chosen is not None
    reason = chosen.reason
    if by == "calibration" and len(planned) > 1:
        reason = f"{reason} (and likewise for the other {len(planned) - 1} configurations)"
    if left := [d for d in decisions if d.choice is None]:
        reason += "; not measured: " + "; ".join(
            f"{group_text(d.group)} ({d.left_out})" for d in left
        )
    decision = Decision(
        config.measure, mode.value, chosen.measure, chosen.higher_is_better, by, reason,
        tuple(decisions),
    )  # fmt: skip
    return _measured_config(config, mode, planned), decision


def _choose(
    clients: Mapping[GroupKey, ClientCapacity | None],
    capacities: Mapping[GroupKey, Sequence[DesignCapacity]],
    group: GroupKey,
    **options: Any,
) -> ModeChoice:
    """choose_mode for one configuration group."""
    return choose_mode(clients[group], capacities[group], cores=group[1], **options)


def _own_choices(
    groups: list[GroupKey], choose: Callable[..., ModeChoice]
) -> dict[GroupKey, ModeChoice]:
    """Each group's own choice of mode (a group that can choose none is left out)."""
    first: dict[GroupKey, ModeChoice] = {}
    for g in groups:
        with contextlib.suppress(HarnessError):
            first[g] = choose(g)
    return first


def _one_mode(
    groups: list[GroupKey], choose: Callable[..., ModeChoice], first: Mapping[GroupKey, ModeChoice]
) -> Mode:
    """The one mode of the whole run: the first, in _MODE_ORDER, any group's own choice needs;
    when every group failed to choose, the first group's failure in the choice's own words."""
    if not first:
        choose(groups[0])  # raises: why the first group cannot choose
    modes = {c.mode for c in first.values()}
    return next(m for m in _MODE_ORDER if m in modes)


def _group_decision(
    g: GroupKey,
    client: ClientCapacity | None,
    choose: Callable[..., ModeChoice],
    mode: Mode,
    first: Mapping[GroupKey, ModeChoice],
    by: str,
) -> GroupDecision:
    """One group measured in the run's mode (or left out, and why)."""
    try:
        choice = choose(g, requested=mode)
    except HarnessError as exc:
        return GroupDecision(g, client, None, str(exc))
    if by == "calibration":
        own = first.get(g)
        why = (
            own.reason
            if own is not None and own.mode is mode
            else f"{mode.value} for every configuration, as another one needed it: "
            + choice.reason.partition(": ")[2]
        )
        choice = replace(choice, chosen_by="calibration", reason=why)
    return GroupDecision(g, client, choice)


def _measured_config(config: RunConfig, mode: Mode, planned: list[GroupDecision]) -> RunConfig:
    if mode is Mode.FIXED_RATE:
        rates = tuple(
            (d.group, d.choice.rates.rates, ())
            for d in planned
            if d.choice and d.choice.rates and d.choice.rates.rates
        )
        return replace(config, mode="open", rates=(), rate_sweep=(), group_rates=rates)
    if mode is Mode.SERVER_BOUND:
        # One work for every group: the largest any group needs keeps all of them server-bound.
        works = [d.choice.work for d in planned if d.choice and d.choice.work]
        heaviest = max(works, key=lambda w: float(w.partition(":")[2]))
        return replace(config, mode="closed", rates=(), rate_sweep=(), works=(heaviest,))
    return replace(config, mode="closed", rates=(), rate_sweep=())


def _capped_as_given(
    config: RunConfig, clients: Mapping[GroupKey, ClientCapacity]
) -> tuple[RunConfig, Decision]:
    """Explicit open-loop rates, each lowered to the lowest client cap of the groups."""
    caps = [open_loop_cap(c) for c in clients.values()]
    caps = [c for c in caps if c.rate is not None]
    if not caps:
        return config, as_given(
            config,
            "the plan as given; no client capacity was calibrated, so its rates are unchecked",
        )
    cap = min(caps, key=lambda c: c.rate or 0.0)
    rates, lowered = rates_within_cap(config.rates, cap)
    reason = "the plan as given (--mode/--rates)"
    reason += (
        f"; {lowered}" if lowered else f"; every rate is within the client's cap: {cap.reason}"
    )
    decision = as_given(config, reason)
    groups = tuple(GroupDecision(g, c, None) for g, c in clients.items())
    return replace(config, rates=rates), replace(
        decision, groups=groups, lowered=(lowered,) if lowered else ()
    )


def check_measure(measure: str, explicit_mode: bool) -> None:
    """--measure against the other flags: one line naming the conflict and the fix."""
    if measure not in MEASURES:
        raise HarnessError(f"--measure must be one of {', '.join(MEASURES)}, got {measure!r}")
    if measure != AS_GIVEN and explicit_mode:
        raise HarnessError(
            f"--measure {measure} plans the mode and rates itself; drop --mode/--rates/"
            "--rate-sweep, or give --measure as-given to plan exactly what they say"
        )


def uncalibrated(config: RunConfig, no_calibrate: bool) -> Decision:
    """The decision of a run that did not calibrate, with why."""
    if config.measure == Mode.CLOSED_LOOP.value:
        return Decision(
            config.measure,
            Mode.CLOSED_LOOP.value,
            "throughput_rps",
            True,
            "user",
            "asked for (closed-loop): peak closed-loop throughput at no work; not calibrated "
            "(peak throughput needs no rate), so whether the load generator outran the servers "
            "is judged per trial by its client-bound flag",
        )
    if no_calibrate:
        return as_given(
            config,
            "--no-calibrate: the plan as given, not chosen from a calibration; "
            "open-loop rates are not checked against the client's capacity",
        )
    return as_given(config, "the plan as given (--mode/--rates/--rate-sweep)")


def floor_summary(floor: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The server CPUs' hiccup meter, worst CPU: what the manifest and the report state."""
    if not floor:
        return None
    cpus = floor.get("per_cpu") or []
    if not cpus:
        return None
    return {
        "cpus": [c.get("cpu") for c in cpus],
        "seconds": floor.get("measured_s"),
        "p99_us": max(float(c.get("p99_us") or 0.0) for c in cpus),
        "max_us": max(float(c.get("max_us") or 0.0) for c in cpus),
    }
