"""One self-contained HTML report of a stored run (charts inline, no external URL): the
analysis formatted and drawn, in the report's order.

The report answers the question first (thread-per-core / work-stealing ratios with intervals and
criterion's verdicts, in a sentence and a table), then shows the charts that explain it, every
configuration, every flagged or failed trial with its reason, and how each number was measured
on which machine, generated from the run's manifest.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from harness.analysis import stats
from harness.analysis.analyse import Analysis, ConfigSummary
from harness.analysis.decompose import chains
from harness.analysis.flagged import kinds_text
from harness.analysis.scaling import stealing_note
from harness.analysis.tasks import concurrency_pairs
from harness.analysis.trial_figures import (
    ClientIdleCounts,
    client_idle_counts,
    hiccup_floor,
    trial_counts,
)
from harness.atomic import write_text_atomic
from harness.report.answer import answer
from harness.report.chart_pool import draw_charts
from harness.report.flag_words import trial_reasons
from harness.report.format import coverage_short, fmt, fmt_us, interval_text, plural
from harness.report.model_section import model_section
from harness.report.published_section import published_section
from harness.report.scaling_section import scaling_section
from harness.report.tasks import CLAIM as TASKS_CLAIM
from harness.report.tasks import rows as tasks_rows
from harness.report.verdict import chain_rows, first_sentence, measurement
from harness.run import flags
from harness.run.steady import STEADY_DRIFT_LIMIT

# --------------------------------------------------------------------------------------------
# Tables


def flagged_row(s: ConfigSummary, analysis: Analysis | None) -> dict[str, Any] | None:
    """What a configuration's flagged trials measured, as a row of its own beside the ranked
    one (analysis.flagged_figures)."""
    f = analysis.flagged_figures(s) if analysis is not None else None
    if f is None:
        return None
    tput, util = f.throughput, f.server_cpu_util
    return {
        "label": f"flagged, not ranked: median over {plural(f.trials, 'trial')} "
        f"({kinds_text(f.kinds)})",
        "throughput": fmt(f.throughput_median),
        "range": f"{min(tput):,.0f}-{max(tput):,.0f}" if len(tput) > 1 else "",
        "coverage": "flagged range" if len(tput) > 1 else "",
        "p50": fmt_us(f.p50_us),
        "p99": fmt_us(f.p99_us),
        "p999": fmt_us(f.p999_us),
        "uncorrected_p99": fmt_us(f.uncorrected_p99_us),
        "cpu_util": fmt(util * 100 if util is not None else None, ".0f")
        + ("%" if util is not None else ""),
        "efficiency": fmt(f.requests_per_server_cpu_s),
        "ctxt": fmt(f.ctxt_per_request, ".3g"),
        "imbalance": fmt(f.worker_imbalance, ".2f", ""),
    }


def config_groups(analysis: Analysis, with_flagged: bool = True) -> list[dict[str, Any]]:
    """The summaries grouped by workload (closed loop first), rows by cores then server; each
    row with flagged trials carries their medians (`flagged_row`)."""
    groups: dict[str, dict[str, Any]] = {}
    for s in sorted(
        analysis.summaries, key=lambda s: (s.mode != "closed", s.label, s.server_cores, s.server)
    ):
        group = groups.setdefault(
            s.label,
            {"workload": s.label, "mode": s.mode, "latency_kind": s.latency_kind, "rows": []},
        )
        group["latency_kind"] = group["latency_kind"] or s.latency_kind
        group["rows"].append(
            {
                "server": s.server,
                "family": s.design_family,
                "io": s.io_model,
                "cores": s.server_cores,
                "ok": s.trials_ok - s.trials_flagged,
                "failed": s.trials_failed,
                "flagged": s.trials_flagged,
                "throughput": fmt(s.throughput.estimate if s.throughput else None),
                "ci": interval_text(s.throughput),
                "coverage": coverage_short(s.throughput),
                "p50": fmt_us(s.p50_us),
                "p99": fmt_us(s.p99_us),
                "p999": fmt_us(s.p999_us),
                "uncorrected_p99": fmt_us(s.uncorrected_p99_us),
                "cpu_util": fmt(
                    s.server_cpu_util * 100 if s.server_cpu_util is not None else None, ".0f"
                )
                + ("%" if s.server_cpu_util is not None else ""),
                "efficiency": fmt(s.requests_per_server_cpu_s),
                "ctxt": fmt(s.ctxt_per_request, ".3g"),
                "imbalance": fmt(s.worker_imbalance, ".2f", ""),
                "warnings": len(s.warnings),
                "flagged_row": flagged_row(s, analysis) if with_flagged else None,
            }
        )
    return list(groups.values())


def problem_rows(analysis: Analysis) -> list[dict[str, Any]]:
    """Every failed and every flagged trial with its reason, in run order."""
    trials = analysis.trials
    if trials.empty:
        return []
    label = dict(zip(trials["trial_id"], trials["label"], strict=True))
    rows = [
        {
            "index": int(r["trial_index"]),
            "trial_id": r["trial_id"],
            "status": status,
            "server": r["server"],
            "cores": int(r["server_cores"]),
            "workload": label.get(r["trial_id"], ""),
            "reason": reason,
        }
        for status, frame in (("failed", analysis.failed), ("flagged", analysis.flagged))
        for r in frame.to_dict("records")
        for reason in [
            (r["reason"] or "(no reason recorded)")
            if status == "failed"
            else (trial_reasons(r) or "flagged")
        ]
    ]
    return sorted(rows, key=lambda r: r["index"])


# --------------------------------------------------------------------------------------------
# Methods, platform, reproduction (all from the manifest)


def _value(v: Any) -> str:
    if isinstance(v, list | tuple):
        return ", ".join(_value(x) for x in v) if v else "(none)"
    if v is None:
        return "(not set)"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def cpu_rows(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The CPU assignment of each core count (docs/measurement rule 1)."""
    seen: dict[int, dict[str, Any]] = {}
    for t in plan.get("trials", []):
        k = t.get("server_cores")
        cpus = t.get("cpus") or {}
        if k in seen or not cpus:
            continue
        client = list(cpus.get("client", []))[
            : max(1, min(len(cpus.get("client", [])), t.get("connections") or 1))
        ]
        seen[k] = {
            "cores": k,
            "server": _value(cpus.get("server", [])),
            "client": _value(client),
            "oversubscribed": bool(cpus.get("oversubscribed")),
            "note": cpus.get("note", ""),
        }
    return [seen[k] for k in sorted(seen)]


def design_order(plan: dict[str, Any]) -> str:
    trials = plan.get("trials", [])
    if not trials:
        return ""
    first = trials[0]
    key = (first.get("repetition"), first.get("server_cores"))
    order: list[str] = []
    for t in trials:
        if (t.get("repetition"), t.get("server_cores")) != key:
            break
        if t.get("server") not in order:
            order.append(t.get("server"))
    return ", ".join(order)


def methods(manifest: dict[str, Any]) -> dict[str, Any]:
    plan = manifest.get("plan") or {}
    config = plan.get("config") or {}
    mode = config.get("mode", "closed")
    seed = config.get("seed")
    order = design_order(plan)
    interleave = (
        f"Designs are interleaved inside every repetition (first group: {order}), so that drift "
        "of the machine (heat, other tenants) hits every design alike"
        + (
            f"; the order inside each group is shuffled with seed {seed} (recorded, so the same "
            "order comes back)."
            if seed is not None
            else "; the order is the order of --servers."
        )
    )
    if mode == "open":
        rates = config.get("rates") or []
        sweep = config.get("rate_sweep") or []
        offered = []
        if rates:
            offered.append("fixed rates of " + ", ".join(f"{r:,.0f}" for r in rates) + " req/s")
        if sweep:
            offered.append(
                "fractions " + ", ".join(f"{f:g}x" for f in sweep) + " of each design's own "
                "capacity, measured by a closed-loop trial run just before them in the same "
                "repetition (so every design is offered the same share of what it can do, and "
                "the absolute rates differ)"
            )
        arrival = config.get("arrival", "poisson")
        schedule = " and ".join(offered)
        load = (
            "Open loop, wrk2's model: the load generator sends on a schedule "
            f"({arrival} arrivals) at {schedule}, whether or not answers have come back. "
            "Latency is measured from each request's intended send time, so a server that "
            "stalls is charged for every request queued behind the stall (no coordinated "
            "omission); the "
            "uncorrected latency from the actual send is kept beside it. A trial whose achieved "
            f"rate falls below {flags.RATE_MISSED_LIMIT:.0%} of the target is flagged "
            "'rate missed': the design could not hold that rate, which counts against it (the "
            "trial stays ranked, marked where it is drawn)."
        )
    else:
        load = (
            "Closed loop: each connection sends one message, waits for the complete answer, "
            "checks every byte, and sends the next. The server's speed sets the rate, so these "
            "are throughput experiments; their latency is 'closed-loop latency', what a "
            "connection waited for each answer while all connections were kept busy, which is "
            "not the latency of a server offered a given rate."
        )
    return {
        "config": [(k, _value(v)) for k, v in config.items()],
        "mode": mode,
        "load": load,
        "interleave": interleave,
        "warmup": config.get("warmup_s"),
        "duration": config.get("duration_s"),
        "repeat": config.get("repeat"),
        "cpus": cpu_rows(plan),
        "client_busy": f"{flags.CLIENT_BUSY_LIMIT:.0%}",
        "rate_missed": f"{flags.RATE_MISSED_LIMIT:.0%}",
        "steady_limit": f"{STEADY_DRIFT_LIMIT:.0%}",
        "level": f"{stats.DEFAULT_LEVEL:.0%}",
        "threshold": f"{stats.DEFAULT_NOISE_THRESHOLD:.0%}",
        "resamples": f"{stats.DEFAULT_RESAMPLES:,}",
        "min_reps": stats.MIN_REPETITIONS,
        "spread": f"{stats.SPREAD_WARN_FRACTION:.0%}",
        "left_out": manifest.get("left_out") or {},
        "plan_source": manifest.get("plan_source"),
    }


def platform_rows(manifest: dict[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    p = manifest.get("platform") or {}
    py = p.get("pyperf") or {}
    topo = p.get("topology") or {}
    git = p.get("git") or {}
    rows = [
        ("kernel", f"{p.get('kernel', 'unknown')} ({p.get('machine', '?')})"),
        ("host", _value(p.get("hostname", py.get("hostname")))),
        ("CPU model", _value(py.get("cpu_model_name"))),
        (
            "topology",
            (
                f"{topo.get('cpus', '?')} CPUs on {topo.get('physical_cores', '?')} "
                f"physical cores, {topo.get('numa_nodes', '?')} NUMA node(s), SMT "
                f"{'on' if topo.get('smt') else 'off'}"
            )
            if topo
            else "unknown",
        ),
        ("CPU frequency", _value(py.get("cpu_freq"))),
        ("CPU config (governor, idle)", _value(py.get("cpu_config"))),
        ("CPUs the harness could use", _value(p.get("cpu_affinity"))),
        ("ASLR", _value(py.get("aslr"))),
        ("load average (1 min) at start", _value(py.get("load_avg_1min"))),
        ("rustc / cargo", f"{_value(p.get('rustc'))} / {_value(p.get('cargo'))}"),
        ("Python", _value(p.get("python"))),
        (
            "git commit",
            f"{git.get('commit') or 'unknown'}"
            + (" (with uncommitted changes)" if git.get("dirty") else ""),
        ),
    ]
    return rows, [(k, _value(v)) for k, v in sorted(py.items())]


def reproduce(analysis: Analysis) -> dict[str, Any]:
    manifest = analysis.manifest
    git = (manifest.get("platform") or {}).get("git") or {}
    return {
        "command": shlex.join(manifest.get("command") or []) or "(not recorded)",
        "commit": git.get("commit") or "unknown",
        "dirty": git.get("dirty"),
        "plan_command": f"harness run --plan results/{analysis.run_id}/manifest.json",
        "directory": str(analysis.directory),
    }


# --------------------------------------------------------------------------------------------
# Rendering


def environment() -> Environment:
    """The templates' environment (the report's and the published site's)."""
    return Environment(
        loader=PackageLoader("harness.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def client_idle_words(counts: ClientIdleCounts) -> str:
    """How the load generator's CPUs idled, in words (docs/fairness.md, "Waking the client")."""
    parts = []
    if counts.poll:
        parts.append(
            f"polled in {counts.poll} trial(s) (set by the harness, so that waking the load "
            "generator cost the server no inter-processor interrupt)"
        )
    if counts.system:
        parts.append(
            f"left to the system in {counts.system} trial(s) ({'; '.join(counts.why)}): there "
            "the server's CPU paid an interrupt for each wake-up of a halted client CPU, a cost "
            "of the instrument charged to the server"
        )
    if counts.unrecorded:
        parts.append(f"not recorded in {counts.unrecorded} trial(s) (client hosts, or older runs)")
    return "; ".join(parts) or "no successful trial"


def render(analysis: Analysis) -> str:
    """The report's HTML: the analysis drawn and formatted, nothing computed or read here."""
    manifest = analysis.manifest
    trials = analysis.trials
    the_answer = answer(analysis, manifest)
    figures = draw_charts(analysis)  # on two CPUs for a large run
    counts = trial_counts(trials)
    outcome = manifest.get("outcome") or {}
    plat, pyperf_meta = platform_rows(manifest)
    plat.append(("client noise floor", the_answer.floor))
    plat.append(("client CPUs when idle", client_idle_words(client_idle_counts(trials))))
    tasks = tasks_rows(concurrency_pairs(analysis, manifest), hiccup_floor(trials)[0], analysis)
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            run_id=analysis.run_id,
            started=manifest.get("started_at") or "unknown",
            ended=manifest.get("ended_at"),
            outcome=outcome,
            planned=outcome.get(
                "trials_planned", len((manifest.get("plan") or {}).get("trials", []))
            ),
            counts=counts,
            cpu_model=((manifest.get("platform") or {}).get("pyperf") or {}).get("cpu_model_name"),
            kernel=(manifest.get("platform") or {}).get("kernel"),
            answer=the_answer,
            verdict=first_sentence(analysis, manifest),
            measurement=measurement(manifest),
            chain_rows=chain_rows(chains(analysis, manifest)),
            tasks=tasks,
            tasks_claim=TASKS_CLAIM,
            charts=figures,
            configs=config_groups(analysis),
            warnings=[s for s in analysis.summaries if s.warnings],
            problems=problem_rows(analysis),
            methods=methods(manifest),
            platform=plat,
            pyperf_meta=pyperf_meta,
            doctor=manifest.get("doctor"),
            designs=manifest.get("designs") or {},
            reproduce=reproduce(analysis),
            notes=analysis.notes,
            model=model_section(analysis.model),
            published=published_section(analysis, manifest),
            scaling=scaling_section(analysis, manifest),
            stealing_note=stealing_note(analysis),
        )
    )


def write_report(analysis: Analysis, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, render(analysis))
    return path
