"""`harness compare A B`: what changed from run A to run B, configuration by configuration.

The question a pull request asks ("did my change make anything slower?") answered the way
criterion answers it (docs/compare.md):

- configurations are matched on the server and analyse.CONFIG_KEYS; configurations present in
  only one run are listed, never compared;
- only ranked trials count (status ok and not flagged, analyse.prepare), exactly as in the report;
- the change is B relative to A (median(B) / median(A) - 1) with a bootstrap 95% interval, and
  a change is claimed only when the interval excludes 0 AND lies wholly beyond the noise
  threshold (stats.compare). Throughput: higher is better; p99 latency: lower is better;
- `--fail-above PCT` is the CI gate: exit 1 when a configuration is significantly slower and
  its whole interval lies more than PCT percent below A (`--latency`: p99 likewise, above A);
- platform differences between the runs (CPU, kernel, rustc, topology, commit, ...) are printed
  as warnings: comparing machines is legitimate, doing it unknowingly is not.

Exit codes: 0 no gated regression, 1 a gated regression, 2 bad input (HarnessError, one line).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness import analyse, stats
from harness.analyse import ConfigSummary
from harness.errors import HarnessError
from harness.store import RunData, load_run, write_json

HELP = "compare two runs configuration by configuration (criterion's rule; a CI gate)"
JSON_SCHEMA = "compare/1"
EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_USAGE = 2

# (server, protocol, server_cores, connections, size_bytes, pipeline, work, mode, load)
ConfigKey = tuple[str, str, int, int, int, int, str, str, float | None]


# --------------------------------------------------------------------------------------------
# Command line


def _percent(flag: str, *, maximum: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text.rstrip("%"))
        except ValueError:
            raise HarnessError(f"{flag} takes a percentage, got {text!r}; e.g. {flag} 5") from None
        if not value >= 0 or (maximum is not None and value >= maximum):
            bound = f" and below {maximum:g}" if maximum is not None else ""
            raise HarnessError(f"{flag} must be 0 or more{bound}, got {text!r}; e.g. {flag} 5")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `harness compare` (the caller dispatches to `run`)."""
    parser.description = __doc__.split("\n\n")[0] if __doc__ else None
    parser.add_argument(
        "run_a",
        type=Path,
        metavar="A",
        help="baseline: a results directory results/<run-id>/ (or a results root: newest run)",
    )
    parser.add_argument(
        "run_b", type=Path, metavar="B", help="candidate, compared relative to A (B/A - 1)"
    )
    parser.add_argument(
        "--threshold",
        type=_percent("--threshold", maximum=100),
        default=stats.DEFAULT_NOISE_THRESHOLD * 100,
        metavar="PCT",
        help="noise threshold in percent: a change must lie wholly beyond it "
        f"(default {stats.DEFAULT_NOISE_THRESHOLD * 100:g})",
    )
    parser.add_argument(
        "--fail-above",
        type=_percent("--fail-above"),
        default=None,
        metavar="PCT",
        help="exit 1 when a configuration is significantly slower and its whole 95%% interval "
        "lies more than PCT percent below A (the CI gate)",
    )
    parser.add_argument(
        "--latency",
        action="store_true",
        help="--fail-above also gates on p99 latency (whole interval more than PCT percent "
        "above A); meant for open-loop runs",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write JSON")
    parser.add_argument(
        "--markdown", type=Path, default=None, metavar="FILE", help="write a Markdown summary"
    )
    return parser


# --------------------------------------------------------------------------------------------
# Loading


def resolve_run_dir(path: Path, side: str) -> tuple[Path, str | None]:
    """A run directory, or the newest run (run ids sort by time) under a results root.

    Returns the directory and a note saying which run was picked, if one was.
    """
    if not path.exists():
        raise HarnessError(
            f"{side} {path} does not exist; pass a results directory such as results/<run-id>/"
        )
    if not path.is_dir():
        raise HarnessError(
            f"{side} {path} is not a directory; pass a results directory such as results/<run-id>/"
        )
    if (path / "manifest.json").is_file():
        return path, None
    runs = sorted(p.parent for p in path.glob("*/manifest.json"))
    if not runs:
        raise HarnessError(
            f"{side} {path} is not a results directory (no manifest.json); "
            "pass one of results/<run-id>/ written by `harness run`"
        )
    note = f"{side}: {path} holds {len(runs)} run(s); using the newest, {runs[-1].name}"
    return runs[-1], note


def config_key(s: ConfigSummary) -> ConfigKey:
    load = None if s.load is None else round(float(s.load), 9)
    return (s.server, s.protocol, s.server_cores, s.connections, s.size_bytes, s.pipeline,
            s.work, s.mode, load)  # fmt: skip


def _sort_key(key: ConfigKey) -> tuple:
    return (*key[:-1], -1.0 if key[-1] is None else key[-1])


def summaries_by_config(run: RunData) -> dict[ConfigKey, ConfigSummary]:
    return {config_key(s): s for s in analyse.summarise(run.trials, run.latency, run.workers)}


# --------------------------------------------------------------------------------------------
# Comparing


@dataclass(frozen=True)
class ConfigChange:
    """One configuration in both runs: B relative to A."""

    a: ConfigSummary
    b: ConfigSummary
    throughput: stats.Comparison | None  # median throughput B/A - 1; None: a side has no data
    p99: stats.Comparison | None  # median per-trial p99 B/A - 1 (lower is better)

    @property
    def key(self) -> ConfigKey:
        return config_key(self.a)

    @property
    def name(self) -> str:
        return describe_config(self.a)

    @property
    def throughput_label(self) -> str:
        return verdict_label(self.throughput, "faster", "slower")

    @property
    def p99_label(self) -> str:
        return verdict_label(self.p99, "better", "worse")


@dataclass(frozen=True)
class GateHit:
    """A configuration that trips `--fail-above`."""

    change: ConfigChange
    metric: str  # "throughput" or "p99"
    comparison: stats.Comparison
    limit: float  # fraction, e.g. 0.05

    def describe(self) -> str:
        c = self.comparison
        direction = "below" if self.metric == "throughput" else "above"
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
            out[c.throughput_label] = out.get(c.throughput_label, 0) + 1
        return out

    def geometric_mean_ratio(self) -> float | None:
        """Geometric mean of the throughput ratios B/A (pyperf's summary over benchmarks)."""
        ratios = [c.throughput.ratio for c in self.changes if c.throughput is not None]
        return stats.geometric_mean(ratios)


def verdict_label(c: stats.Comparison | None, better: str, worse: str) -> str:
    return str(stats.Verdict.INSUFFICIENT) if c is None else c.label(better, worse)


def describe_config(s: ConfigSummary) -> str:
    return f"{s.server} {s.server_cores} core(s), {s.label}"


def _ranked(s: ConfigSummary) -> int:
    return s.trials_ok - s.trials_flagged


def compare_runs(run_a: RunData, run_b: RunData, *, threshold: float) -> CompareResult:
    """Match configurations and compare each; `threshold` is a fraction (0.02 = 2%)."""
    sa, sb = summaries_by_config(run_a), summaries_by_config(run_b)
    if not sa:
        raise HarnessError(
            f"A {run_a.directory} has no trials; compare runs that measured something"
        )
    if not sb:
        raise HarnessError(
            f"B {run_b.directory} has no trials; compare runs that measured something"
        )
    common = sorted(set(sa) & set(sb), key=_sort_key)
    if not common:
        raise HarnessError(
            f"no configuration is in both runs (A has {len(sa)}, B has {len(sb)}); run B with the "
            "same servers, cores, connections and sizes as A (e.g. the same --profile)"
        )
    changes, notes = [], []
    for key in common:
        a, b = sa[key], sb[key]
        # B relative to A: stats.compare(x, y) is median(x) / median(y) - 1.
        tput = stats.compare(b.throughput_samples, a.throughput_samples, threshold=threshold)
        p99 = stats.compare(
            b.p99_samples, a.p99_samples, threshold=threshold, higher_is_better=False
        )
        changes.append(ConfigChange(a, b, tput, p99))
        for side, s in (("A", a), ("B", b)):
            n = _ranked(s)
            if n < stats.MIN_REPETITIONS:
                notes.append(
                    f"{describe_config(s)}: {side} has {n} ranked trial(s) "
                    f"({s.trials_flagged} flagged, {s.trials_failed} failed); "
                    f"no verdict below {stats.MIN_REPETITIONS}"
                )
    return CompareResult(
        dir_a=run_a.directory,
        dir_b=run_b.directory,
        run_id_a=run_a.manifest.get("run_id"),
        run_id_b=run_b.manifest.get("run_id"),
        threshold=threshold,
        changes=changes,
        only_a=[sa[k] for k in sorted(set(sa) - set(sb), key=_sort_key)],
        only_b=[sb[k] for k in sorted(set(sb) - set(sa), key=_sort_key)],
        platform=platform_differences(run_a.manifest, run_b.manifest),
        notes=notes,
    )


def gate(changes: Iterable[ConfigChange], fail_above: float, *, latency: bool) -> list[GateHit]:
    """Configurations significantly worse by more than `fail_above` percent.

    Throughput: verdict WORSE and ci_high < -fail_above/100 (the whole interval beyond the
    limit). p99 (only with latency=True): verdict WORSE and ci_low > +fail_above/100.
    """
    limit = fail_above / 100.0
    hits = []
    for c in changes:
        t = c.throughput
        if t is not None and t.verdict is stats.Verdict.WORSE and t.ci_high < -limit:
            hits.append(GateHit(c, "throughput", t, limit))
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


# --------------------------------------------------------------------------------------------
# Rendering


def _fmt_change(c: stats.Comparison | None) -> str:
    if c is None:
        return "-"
    return f"{c.estimate:+.1%} [{c.ci_low:+.1%}, {c.ci_high:+.1%}]"


def _fmt_num(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _median(values: tuple[float, ...]) -> float | None:
    return stats.median(list(values))


def _trials(s: ConfigSummary) -> str:
    return f"{_ranked(s)}/{s.trials_flagged}/{s.trials_failed}"


COLUMNS = [  # (header, right-aligned)
    ("server", False),
    ("cores", True),
    ("workload", False),
    ("A req/s", True),
    ("B req/s", True),
    ("throughput B/A-1 [95% CI]", False),
    ("verdict", False),
    ("A p99 us", True),
    ("B p99 us", True),
    ("p99 B/A-1 [95% CI]", False),
    ("p99 verdict", False),
    ("trials A -> B (ranked/flagged/failed)", False),
]


def table_rows(result: CompareResult) -> list[list[str]]:
    rows = []
    for c in result.changes:
        a, b = c.a, c.b
        rows.append([
            a.server, str(a.server_cores), a.label,
            _fmt_num(_median(a.throughput_samples)), _fmt_num(_median(b.throughput_samples)),
            _fmt_change(c.throughput), c.throughput_label,
            _fmt_num(_median(a.p99_samples), 1), _fmt_num(_median(b.p99_samples), 1),
            _fmt_change(c.p99), c.p99_label,
            f"{_trials(a)} -> {_trials(b)}",
        ])  # fmt: skip
    return rows


def plain_table(rows: list[list[str]]) -> str:
    headers = [h for h, _ in COLUMNS]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for r in [headers, *rows]:
        cells = [
            cell.rjust(w) if right else cell.ljust(w)
            for cell, w, (_, right) in zip(r, widths, COLUMNS, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


_STYLES = {"faster": "green", "better": "green", "slower": "red", "worse": "red"}


def rich_table(rows: list[list[str]]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for header, right in COLUMNS:
        table.add_column(header, justify="right" if right else "left")
    for r in rows:
        cells = [Text(cell, style=_STYLES.get(cell, "")) for cell in r]
        table.add_row(*cells)
    return table


def summary_line(result: CompareResult) -> str:
    counts = result.counts()
    order = ["faster", "slower", "within noise", "no change", "insufficient data"]
    parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    line = f"{len(result.changes)} configuration(s) compared: {', '.join(parts)}"
    gm = result.geometric_mean_ratio()
    if gm is not None:
        line += f"; geometric mean of throughput B/A {gm:.3f} ({gm - 1:+.1%})"
    return line


def gate_line(hits: list[GateHit], fail_above: float, latency: bool) -> str:
    what = "throughput or p99" if latency else "throughput"
    if not hits:
        return (
            f"gate passed: no configuration's {what} is significantly worse by more than "
            f"{fail_above:g}%"
        )
    configs = len({h.change.key for h in hits})
    return (
        f"gate FAILED: {configs} configuration(s) significantly worse by more than "
        f"{fail_above:g}% in {what}:"
    )


def _config_dict(s: ConfigSummary) -> dict[str, Any]:
    return {
        "server": s.server, "design_family": s.design_family, "io_model": s.io_model,
        "protocol": s.protocol, "server_cores": s.server_cores, "connections": s.connections,
        "size_bytes": s.size_bytes, "pipeline": s.pipeline, "work": s.work, "mode": s.mode,
        "load": s.load, "workload": s.label,
    }  # fmt: skip


def _side_dict(s: ConfigSummary) -> dict[str, Any]:
    ci = s.throughput
    return {
        "throughput_rps": _median(s.throughput_samples),
        "throughput_ci": None if ci is None else [ci.low, ci.high],
        "throughput_ci_method": None if ci is None else str(ci.method),
        "throughput_samples": list(s.throughput_samples),
        "p99_us": _median(s.p99_samples),  # median of per-trial p99 (what the change uses)
        "p99_merged_us": s.p99_us,  # p99 of the merged histograms (what the report shows)
        "p99_samples": list(s.p99_samples),
        "trials_ranked": _ranked(s),
        "trials_flagged": s.trials_flagged,
        "trials_failed": s.trials_failed,
        "flag_reasons": list(s.flag_reasons),
    }


def _comparison_dict(c: stats.Comparison | None, better: str, worse: str) -> dict[str, Any]:
    if c is None:
        return {"verdict": str(stats.Verdict.INSUFFICIENT), "label": "insufficient data",
                "change": None, "ci_low": None, "ci_high": None}  # fmt: skip
    return {
        "change": c.estimate,
        "ci_low": c.ci_low,
        "ci_high": c.ci_high,
        "level": c.level,
        "verdict": str(c.verdict),
        "label": c.label(better, worse),
        "p_value": c.p_value,
        "n_a": c.n_b,  # stats.compare(B, A): its "a" is our B
        "n_b": c.n_a,
    }


def to_json(
    result: CompareResult, fail_above: float | None, latency: bool, hits: list[GateHit]
) -> dict[str, Any]:
    hit_keys: dict[ConfigKey, list[str]] = {}
    for h in hits:
        hit_keys.setdefault(h.change.key, []).append(h.metric)
    gate_dict = None
    if fail_above is not None:
        triggered = [
            {**_config_dict(h.change.a), "metric": h.metric, "description": h.describe()}
            for h in hits
        ]
        gate_dict = {"failed": bool(hits), "triggered": triggered}
    return {
        "schema": JSON_SCHEMA,
        "a": {"directory": str(result.dir_a), "run_id": result.run_id_a},
        "b": {"directory": str(result.dir_b), "run_id": result.run_id_b},
        "change": "B / A - 1",
        "threshold": result.threshold,
        "fail_above": None if fail_above is None else fail_above / 100.0,
        "gate_latency": latency,
        "platform_differences": [vars(d) for d in result.platform],
        "configurations": [
            {
                **_config_dict(c.a),
                "a": _side_dict(c.a),
                "b": _side_dict(c.b),
                "throughput": _comparison_dict(c.throughput, "faster", "slower"),
                "p99": _comparison_dict(c.p99, "better", "worse"),
                "gate": hit_keys.get(c.key, []),
            }
            for c in result.changes
        ],
        "only_in_a": [_config_dict(s) for s in result.only_a],
        "only_in_b": [_config_dict(s) for s in result.only_b],
        "notes": result.notes,
        "summary": {
            "counts": result.counts(),
            "geometric_mean_throughput_ratio": result.geometric_mean_ratio(),
        },
        "gate": gate_dict,
    }


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(
    result: CompareResult, fail_above: float | None, latency: bool, hits: list[GateHit]
) -> str:
    lines = [
        "## Benchmark comparison",
        "",
        f"A (baseline): `{result.dir_a}`  ",
        f"B (candidate): `{result.dir_b}`  ",
        f"Change = B/A - 1, 95% bootstrap interval; a change is claimed only when the whole "
        f"interval lies beyond the {result.threshold:.1%} noise threshold (criterion's rule). "
        "Only ranked trials count (ok and not flagged).",
        "",
    ]
    if fail_above is not None:
        mark = "**FAILED**" if hits else "passed"
        lines += [f"Gate ({'throughput and p99' if latency else 'throughput'}, "
                  f"--fail-above {fail_above:g}%): {mark}", ""]  # fmt: skip
        lines += [f"- {_md_cell(h.describe())}" for h in hits]
        if hits:
            lines.append("")
    if result.platform:
        lines += ["Platform differences (the runs did not measure the same thing alike):", ""]
        lines += [f"- {_md_cell(d.describe())}" for d in result.platform]
        lines.append("")
    headers = [h for h, _ in COLUMNS]
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("| " + " | ".join("---:" if right else "---" for _, right in COLUMNS) + " |")
    for r in table_rows(result):
        cells = [_md_cell(c) for c in r]
        cells[6] = f"**{cells[6]}**" if cells[6] in ("faster", "slower") else cells[6]
        cells[10] = f"**{cells[10]}**" if cells[10] in ("better", "worse") else cells[10]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", summary_line(result) + ".", ""]
    for title, only in (("Only in A", result.only_a), ("Only in B", result.only_b)):
        if only:
            lines += [f"{title} (not compared):", ""]
            lines += [f"- {_md_cell(describe_config(s))}" for s in only]
            lines.append("")
    if result.notes:
        lines += ["Notes:", ""] + [f"- {_md_cell(n)}" for n in result.notes] + [""]
    return "\n".join(lines)


def _write(path: Path, flag: str, write: Callable[[Path], None]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
    except OSError as exc:
        raise HarnessError(
            f"cannot write {flag} {path}: {exc.strerror or exc}; choose a writable path"
        ) from exc


# --------------------------------------------------------------------------------------------
# The command


def run(args: argparse.Namespace, console: Console) -> int:
    """`harness compare`: 0 no gated regression, 1 gated regression; HarnessError on bad input."""
    dir_a, note_a = resolve_run_dir(args.run_a, "A")
    dir_b, note_b = resolve_run_dir(args.run_b, "B")
    run_a, run_b = load_run(dir_a), load_run(dir_b)
    result = compare_runs(run_a, run_b, threshold=args.threshold / 100.0)
    fail_above, latency = args.fail_above, args.latency
    hits = gate(result.changes, fail_above, latency=latency) if fail_above is not None else []

    out = console.print
    for note in (note_a, note_b):
        if note:
            out(note, highlight=False, markup=False)
    out(f"A: {dir_a}  ({result.run_id_a})", highlight=False, markup=False)
    out(f"B: {dir_b}  ({result.run_id_b})", highlight=False, markup=False)
    for d in result.platform:
        out(Text(f"warning: {d.describe()}", style="yellow"))
    rows = table_rows(result)
    if console.is_terminal:
        out(rich_table(rows))
    else:
        out(plain_table(rows), highlight=False, markup=False)
    out(summary_line(result), highlight=False, markup=False)
    for title, only in (("only in A", result.only_a), ("only in B", result.only_b)):
        for s in only:
            out(f"{title} (not compared): {describe_config(s)}", highlight=False, markup=False)
    for n in result.notes:
        out(Text(f"note: {n}", style="yellow"))
    if fail_above is not None:
        style = "red" if hits else "green"
        out(Text(gate_line(hits, fail_above, latency), style=style))
        for h in hits:
            out(Text(f"  {h.describe()}", style="red"))

    if args.json is not None:
        data = to_json(result, fail_above, latency, hits)
        _write(args.json, "--json", lambda p: write_json(p, data))
    if args.markdown is not None:
        text = to_markdown(result, fail_above, latency, hits)
        _write(args.markdown, "--markdown", lambda p: p.write_text(text))
    return EXIT_REGRESSION if hits else EXIT_OK


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like the harness front end
        raise HarnessError(f"{message} (see `{self.prog} --help`)")


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.compare A B ...`: the same command without the harness front end."""
    parser = _Parser(prog="harness compare")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
        return run(args, Console(soft_wrap=True))
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
