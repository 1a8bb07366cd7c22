"""What changed from run A to run B, configuration by configuration (`harness compare`).

The question a pull request asks ("did my change make anything slower?") answered the way
criterion answers it (docs/compare.md):

- configurations are matched on the server and analyse.CONFIG_KEYS; configurations present in
  only one run are listed, never compared;
- only ranked trials count (status ok and not flagged, analyse.prepare), exactly as in the report;
- the change is B relative to A (median(B) / median(A) - 1) with a bootstrap 95% interval, and
  a change is claimed only when the interval excludes 0 AND lies wholly beyond the noise
  threshold (stats.compare). Throughput: higher is better; p99 latency: lower is better;
- `gate` is the CI gate of `--fail-above PCT`: a configuration significantly slower whose whole
  interval lies more than PCT percent below A (`--latency`: p99 likewise, above A);
- platform differences between the runs (CPU, kernel, rustc, topology, commit, ...) are listed:
  comparing machines is legitimate, doing it unknowingly is not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.analysis import stats
from harness.analysis.analyse import Analysis, ConfigSummary
from harness.analysis.settings_diff import settings_differences
from harness.errors import HarnessError

# (server, protocol, server_cores, connections, size_bytes, pipeline, work,
#  requests_per_connection, mode, load)
ConfigKey = tuple[str, str, int, int, int, int, str, int, str, float | None]


def config_key(s: ConfigSummary) -> ConfigKey:
    load = None if s.load is None else round(float(s.load), 9)
    churn = 0 if s.requests_per_connection is None else s.requests_per_connection  # 0: keep-alive
    return (s.server, s.protocol, s.server_cores, s.connections, s.size_bytes, s.pipeline,
            s.work, churn, s.mode, load)  # fmt: skip


def _sort_key(key: ConfigKey) -> tuple:
    return (*key[:-1], -1.0 if key[-1] is None else key[-1])


def summaries_by_config(analysis: Analysis) -> dict[ConfigKey, ConfigSummary]:
    return {config_key(s): s for s in analysis.summaries}


# --------------------------------------------------------------------------------------------
# Comparing


@dataclass(frozen=True)
class ConfigChange:
    """One configuration in both runs: B relative to A."""

    a: ConfigSummary
    b: ConfigSummary
    throughput: stats.Comparison | None  # median throughput B/A - 1; None: a side has no data
    p99: stats.Comparison | None  # median per-trial p99 B/A - 1 (lower is better)
    # median server CPU-µs per request B/A - 1 (lower is better): what fixed-rate runs rank on
    cpu: stats.Comparison | None = None
    # B's open-loop rate when it is not A's: the two runs each calibrated their rate from the
    # same plan (the same fraction of capacity), and the rates lie within RATE_TOLERANCE.
    # Throughput then follows the rate, so only CPU per request and latency are compared.
    load_b: float | None = None

    @property
    def key(self) -> ConfigKey:
        return config_key(self.a)

    @property
    def name(self) -> str:
        return describe_config(self.a)

    @property
    def throughput_label(self) -> str:
        if self.load_b is not None:
            return "not compared (rates differ)"
        return verdict_label(self.throughput, "faster", "slower")

    @property
    def p99_label(self) -> str:
        return verdict_label(self.p99, "better", "worse")

    @property
    def cpu_label(self) -> str:
        """Less server CPU per request is faster: the server does the same work in less time."""
        return verdict_label(self.cpu, "faster", "slower")

    @property
    def primary(self) -> tuple[str, stats.Comparison | None, str]:
        """The measure this configuration is judged on: open loop offers both runs the same
        rate, so throughput is the input there and CPU per request the result."""
        if self.a.mode == "open":
            return "cpu per request", self.cpu, self.cpu_label
        return "throughput", self.throughput, self.throughput_label


@dataclass(frozen=True)
class GateHit:
    """A configuration that trips `--fail-above`."""

    change: ConfigChange
    metric: str  # "throughput" or "p99"
    comparison: stats.Comparison
    limit: float  # fraction, e.g. 0.05

    def describe(self) -> str:
        c = self.comparison
        direction = "below" if self.metric == "throughput" else "above"  # p99, CPU per request
        return (
            f"{self.change.name}: {self.metric} {c.estimate:+.1%} "
            f"[{c.ci_low:+.1%}, {c.ci_high:+.1%}], wholly more than {self.limit:.0%} {direction} A"
        )


@dataclass(frozen=True)
class PlatformDifference:
    what: str
    a: str
    b: str

    def describe(self) -> str:
        return f"{self.what} differs: A {self.a} | B {self.b}"


@dataclass
class CompareResult:
    dir_a: Path
    dir_b: Path
    run_id_a: str | None
    run_id_b: str | None
    threshold: float  # fraction
    changes: list[ConfigChange]
    only_a: list[ConfigSummary]
    only_b: list[ConfigSummary]
    platform: list[PlatformDifference]
    notes: list[str] = field(default_factory=list)  # warnings about the data itself

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.changes:
            label = c.primary[2]
            out[label] = out.get(label, 0) + 1
        return out

    def geometric_mean_ratio(self) -> float | None:
        """Geometric mean of the throughput ratios B/A (pyperf's summary over benchmarks)."""
        ratios = [c.throughput.ratio for c in self.changes if c.throughput is not None]
        return stats.geometric_mean(ratios)


def verdict_label(c: stats.Comparison | None, better: str, worse: str) -> str:
    return str(stats.Verdict.INSUFFICIENT) if c is None else c.label(better, worse)


def describe_config(s: ConfigSummary) -> str:
    return f"{s.server} {s.server_cores} core(s), {s.label}"


def ranked_count(s: ConfigSummary) -> int:
    return s.trials_ok - s.trials_flagged


def compare_runs(run_a: Analysis, run_b: Analysis, *, threshold: float) -> CompareResult:
    """Match configurations of two analysed runs and compare each; `threshold` is a fraction
    (0.02 = 2%)."""
    sa, sb = summaries_by_config(run_a), summaries_by_config(run_b)
    if not sa:
        raise HarnessError(
            f"A {run_a.run.directory} has no trials; compare runs that measured something"
        )
    if not sb:
        raise HarnessError(
            f"B {run_b.run.directory} has no trials; compare runs that measured something"
        )
    common = sorted(set(sa) & set(sb), key=_sort_key)
    same_plan = _same_planned_fractions(run_a.run.manifest, run_b.run.manifest)
    by_plan = match_by_plan(set(sa) - set(sb), set(sb) - set(sa)) if same_plan else {}
    rates = rate_mismatch(
        set(sa) - set(sb) - set(by_plan),
        set(sb) - set(sa) - set(by_plan.values()),
        run_a.run.directory,
    )
    if not common and not by_plan:
        if rates:
            raise HarnessError(f"no configuration is in both runs: {rates}")
        raise HarnessError(
            f"no configuration is in both runs (A has {len(sa)}, B has {len(sb)}); run B with the "
            "same servers, cores, connections and sizes as A (e.g. the same --profile)"
        )
    changes, notes = [], []
    if rates:
        notes.append(rates)
    if by_plan:
        notes.append(
            f"{len(by_plan)} open-loop configuration(s) were matched by their plan, not their "
            f"rate: each run calibrated its own rate from the same fraction of capacity, and "
            f"the rates lie within {RATE_TOLERANCE:.0%} of each other; they are compared on "
            "CPU per request and latency, which do not scale with the rate (throughput does)"
        )
    pairs = [(k, k) for k in common] + sorted(by_plan.items(), key=lambda kv: _sort_key(kv[0]))
    for key_a, key_b in pairs:
        a, b = sa[key_a], sb[key_b]
        load_b = None if key_a == key_b else b.load
        # B relative to A: stats.compare(x, y) is median(x) / median(y) - 1.
        tput = (
            None
            if load_b is not None
            else stats.compare(b.throughput_samples, a.throughput_samples, threshold=threshold)
        )
        p99 = stats.compare(
            b.p99_samples, a.p99_samples, threshold=threshold, higher_is_better=False
        )
        cpu = stats.compare(
            b.cpu_us_samples, a.cpu_us_samples, threshold=threshold, higher_is_better=False
        )
        changes.append(ConfigChange(a, b, tput, p99, cpu, load_b))
        for side, s in (("A", a), ("B", b)):
            n = ranked_count(s)
            if n < stats.MIN_REPETITIONS:
                notes.append(
                    f"{describe_config(s)}: {side} has {n} ranked trial(s) "
                    f"({s.trials_flagged} flagged, {s.trials_failed} failed); "
                    f"no verdict below {stats.MIN_REPETITIONS}"
                )
    # The runtime set-up each server reported (docs/server-contract.md), design by design.
    notes += settings_differences(run_a.run.trials, run_b.run.trials)
    return CompareResult(
        dir_a=run_a.run.directory,
        dir_b=run_b.run.directory,
        run_id_a=run_a.run.manifest.get("run_id"),
        run_id_b=run_b.run.manifest.get("run_id"),
        threshold=threshold,
        changes=changes,
        only_a=[sa[k] for k in sorted(set(sa) - set(sb) - set(by_plan), key=_sort_key)],
        only_b=[sb[k] for k in sorted(set(sb) - set(sa) - set(by_plan.values()), key=_sort_key)],
        platform=platform_differences(run_a.run.manifest, run_b.run.manifest),
        notes=notes,
    )


# How far apart two runs' calibrated rates may lie and still be compared on CPU per request and
# latency. Measured (docs/compare.md): between 0.9x and 1.1x of a 30k req/s rate, tokio-ws's and
# tokio-tpc's median CPU per request showed no trend beside the repetitions' own spread.
RATE_TOLERANCE = 0.10


def _planned_fractions(manifest: dict[str, Any]) -> tuple[str, tuple[float, ...]] | None:
    """What a run's open-loop rates were planned as, when they came from its own calibration:
    ("fixed-rate", the fractions of capacity) or ("sweep", the fractions); None otherwise."""
    config = _get(manifest, "plan", "config") or {}
    if config.get("rate_sweep"):
        return "sweep", tuple(float(f) for f in config["rate_sweep"])
    if config.get("measure") == "fixed-rate" and config.get("group_rates"):
        return "fixed-rate", tuple(float(f) for f in config.get("rate_fractions") or ())
    return None


def _same_planned_fractions(ma: dict[str, Any], mb: dict[str, Any]) -> bool:
    pa = _planned_fractions(ma)
    return pa is not None and pa == _planned_fractions(mb)


def match_by_plan(only_a: set[ConfigKey], only_b: set[ConfigKey]) -> dict[ConfigKey, ConfigKey]:
    """Configurations alike in all but their open-loop rate, paired A -> B in rate order (the
    same fraction of capacity in both plans), when every pair of a configuration lies within
    RATE_TOLERANCE; the others stay unmatched (and rate_mismatch names them)."""
    loads_a: dict[ConfigKey, list[ConfigKey]] = {}
    loads_b: dict[ConfigKey, list[ConfigKey]] = {}
    for keys, loads in ((only_a, loads_a), (only_b, loads_b)):
        for key in keys:
            if key[-1] is not None and key[-2] == "open":
                loads.setdefault((*key[:-1], None), []).append(key)
    matched: dict[ConfigKey, ConfigKey] = {}
    for base in set(loads_a) & set(loads_b):
        ka = sorted(loads_a[base], key=_sort_key)
        kb = sorted(loads_b[base], key=_sort_key)
        if len(ka) != len(kb):
            continue
        pairs = list(zip(ka, kb, strict=True))
        if all(abs(b[-1] / a[-1] - 1) <= RATE_TOLERANCE for a, b in pairs if a[-1] and b[-1]):
            matched.update(pairs)
    return matched


def rate_mismatch(only_a: set[ConfigKey], only_b: set[ConfigKey], dir_a: Path) -> str | None:
    """Why configurations alike in all but their load did not match: each run chose its own
    open-loop load (a rate from its calibration, or a fraction of capacity in a sweep), so the
    loads differ. None when no such pair."""
    loads_a: dict[ConfigKey, set[float]] = {}
    loads_b: dict[ConfigKey, set[float]] = {}
    for keys, loads in ((only_a, loads_a), (only_b, loads_b)):
        for key in keys:
            if key[-1] is not None:
                loads.setdefault((*key[:-1], None), set()).add(key[-1])
    alike = sorted(set(loads_a) & set(loads_b), key=_sort_key)
    if not alike:
        return None

    def shown(loads: set[float]) -> str:
        return ", ".join(f"{x:,.6g}" for x in sorted(loads))

    first = alike[0]
    return (
        f"{len(alike)} configuration(s) differ only in their open-loop load (e.g. {first[0]}: "
        f"A at {shown(loads_a[first])}, B at {shown(loads_b[first])}), because each run "
        f"calibrated its own rates (from different fractions, or more than "
        f"{RATE_TOLERANCE:.0%} apart); run B with --plan {dir_a / 'manifest.json'} to measure "
        "at A's"
    )


def gate(changes: Iterable[ConfigChange], fail_above: float, *, latency: bool) -> list[GateHit]:
    """Configurations significantly worse by more than `fail_above` percent.

    Throughput (closed loop): verdict WORSE and ci_high < -fail_above/100 (the whole interval
    beyond the limit). CPU per request (open loop, where the rate is the input): verdict WORSE
    and ci_low > +fail_above/100. p99 (only with latency=True): verdict WORSE and ci_low >
    +fail_above/100.
    """
    limit = fail_above / 100.0
    hits = []
    for c in changes:
        metric, m, _ = c.primary
        if m is not None and m.verdict is stats.Verdict.WORSE:
            beyond = m.ci_high < -limit if metric == "throughput" else m.ci_low > limit
            if beyond:
                hits.append(GateHit(c, metric, m, limit))
        p = c.p99
        if latency and p is not None and p.verdict is stats.Verdict.WORSE and p.ci_low > limit:
            hits.append(GateHit(c, "p99", p, limit))
    return hits


# --------------------------------------------------------------------------------------------
# Platforms


def _get(d: Any, *path: str) -> Any:
    for k in path:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _topology(p: dict[str, Any]) -> str | None:
    t = p.get("topology")
    if not isinstance(t, dict):
        return None
    smt = {True: "SMT on", False: "SMT off"}.get(t.get("smt"), "SMT unknown")
    return (
        f"{t.get('cpus')} CPUs, {t.get('physical_cores')} physical cores, "
        f"{t.get('numa_nodes')} NUMA node(s), {smt}"
    )


def _core_layout(p: dict[str, Any]) -> str | None:
    cores = _get(p, "topology", "cores")
    return None if cores is None else " ".join(",".join(map(str, g)) for g in cores)


def _commit(p: dict[str, Any]) -> str | None:
    commit = _get(p, "git", "commit")
    if commit is None:
        return None
    return f"{commit[:12]}{' (dirty)' if _get(p, 'git', 'dirty') else ''}"


def _affinity(p: dict[str, Any]) -> str | None:
    cpus = p.get("cpu_affinity")
    return None if cpus is None else ",".join(map(str, cpus))


# What a reader must know differs between the two runs. Each: (what, getter over the manifest).
_PLATFORM_FIELDS: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("CPU model", lambda m: _get(m, "platform", "pyperf", "cpu_model_name")),
    ("topology", lambda m: _topology(m.get("platform") or {})),
    ("core layout", lambda m: _core_layout(m.get("platform") or {})),
    ("CPU affinity", lambda m: _affinity(m.get("platform") or {})),
    ("CPU frequency/idle config", lambda m: _get(m, "platform", "pyperf", "cpu_config")),
    ("host", lambda m: _get(m, "platform", "hostname")),
    ("kernel", lambda m: _get(m, "platform", "kernel")),
    ("machine", lambda m: _get(m, "platform", "machine")),
    ("rustc", lambda m: _get(m, "platform", "rustc")),
    ("git commit", lambda m: _commit(m.get("platform") or {})),
    ("measured seconds per trial", lambda m: _get(m, "plan", "config", "duration_s")),
    ("warm-up seconds per trial", lambda m: _get(m, "plan", "config", "warmup_s")),
]


def platform_differences(ma: dict[str, Any], mb: dict[str, Any]) -> list[PlatformDifference]:
    out = []
    topology_differs = False
    for what, get in _PLATFORM_FIELDS:
        va, vb = get(ma), get(mb)
        if va == vb:
            continue
        if what == "topology":
            topology_differs = True
        if what == "core layout" and topology_differs:
            continue  # already said; the full list would only repeat it at length
        out.append(PlatformDifference(what, _show(va), _show(vb)))
    return out


def _show(v: Any) -> str:
    return "unknown" if v is None else str(v)
