"""Tasks against structured concurrency (pure: no server is started): the churn workloads are
configurations of their own (plan, labels), harness/analysis/tasks.py pairs each
task-per-connection design with its structured twin per workload, sets the paired ratios against
the post's 2-3x claim and says why a ratio is not resolvable; harness/report/tasks.py words it."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from harness.analysis.analyse import Analysis, ConfigSummary
from harness.analysis.decompose import chains
from harness.analysis.labels import workload_label
from harness.analysis.pairs import CPU_MEASURE
from harness.analysis.stats import CIMethod, Interval
from harness.analysis.tasks import concurrency_pairs, gain_against_claim
from harness.errors import HarnessError
from harness.plan.config import PROFILES, plan_file_options
from harness.plan.designs import load_registry
from harness.report.tasks import rows

REGISTRY = load_registry()
WORKLOAD = dict(protocol="echo", server_cores=1, connections=64, size_bytes=64, pipeline=1)


def summary(
    server: str,
    cpu: list[float],
    p99: list[float],
    churn: int | None = None,
    flagged: int = 0,
) -> ConfigSummary:
    reps = range(len(cpu))
    return ConfigSummary(
        server=server,
        design_family="thread-per-core",
        io_model=REGISTRY[server].io_model,
        work="none",
        mode="open",
        load=4000.0,
        trials_ok=len(cpu) + flagged,
        trials_failed=0,
        trials_flagged=flagged,
        throughput=None,
        throughput_samples=(),
        p50_us=None,
        p99_us=sorted(p99)[len(p99) // 2] if p99 else None,
        p999_us=None,
        p99_samples=tuple(p99),
        uncorrected_p99_us=None,
        latency_kind="corrected",
        achieved_rate=4000.0,
        server_cpu_util=None,
        requests_per_server_cpu_s=None,
        ctxt_per_request=None,
        worker_imbalance=None,
        by_rep={
            CPU_MEASURE: {i: cpu[i] for i in reps},
            "p99_us": {i: p99[i] for i in reps},
            "throughput_rps": {},
        },
        requests_per_connection=churn,
        **WORKLOAD,
    )


def manifest(*names: str) -> dict:
    return {"designs": {n: vars(REGISTRY[n]) for n in names}}


def analysis(*summaries: ConfigSummary, trials: pd.DataFrame | None = None) -> Analysis:
    return Analysis(
        summaries=list(summaries),
        flagged=pd.DataFrame(),
        failed=pd.DataFrame(),
        trials=pd.DataFrame() if trials is None else trials,
    )


BASE_CPU = [10.0, 10.5, 9.8, 10.9, 10.1, 10.3]
BASE_P99 = [900.0, 950.0, 880.0, 990.0, 910.0, 930.0]


def test_churn_is_part_of_the_workload_label():
    assert workload_label("echo", 64, 64, 1, "none", "open", 4000.0, 1).endswith(
        "a new connection per request, open loop 4,000/s"
    )
    assert "every 16 requests" in workload_label("echo", 64, 64, 1, "none", "closed", None, 16)
    assert "connection" not in workload_label("echo", 64, 64, 1, "none", "closed", None)


def test_the_tasks_profile_runs_three_churns_and_idle_connections():
    options, _ = plan_file_options(argparse.Namespace(profile="tasks", plan=None))
    assert options["requests-per-connection"] == ["keep-alive", 16, 1]
    assert 2048 in options["connections"] and 64 in options["connections"]
    pairs = {("tokio-tpc", "tokio-tpc-structured"), ("monoio-tpc", "monoio-tpc-structured")}
    assert {tuple(sorted(p)) for p in pairs} <= {
        tuple(sorted((a, b))) for a in options["servers"] for b in options["servers"] if a != b
    }
    assert (PROFILES / "tasks.toml").is_file()


def test_requests_per_connection_takes_several_values_and_keep_alive():
    from harness.plan.config import RUN_OPTIONS

    parse = RUN_OPTIONS["requests-per-connection"][1]
    assert parse("keep-alive,16,1") == (None, 16, 1)
    assert parse(["keep-alive", 16]) == (None, 16)
    assert parse(3) == (3,)  # a manifest written before the list
    with pytest.raises(HarnessError, match="--requests-per-connection takes counts"):
        parse("0")


def test_a_structured_design_twice_as_cheap_reaches_the_claim_and_is_resolved():
    a = analysis(
        summary("tokio-tpc", BASE_CPU, BASE_P99),
        summary("tokio-tpc-structured", [x / 2.2 for x in BASE_CPU], BASE_P99),
    )
    (pair,) = concurrency_pairs(a, manifest("tokio-tpc", "tokio-tpc-structured"))
    assert (pair.tasks, pair.structured) == ("tokio-tpc", "tokio-tpc-structured")
    assert pair.cpu.ratio is not None and pair.cpu.ratio.estimate == pytest.approx(1 / 2.2)
    assert pair.cpu.verdict is not None and pair.cpu.verdict.label("lower", "higher") == "lower"
    assert pair.cpu.against_claim == "reaches" and pair.cpu.unresolved == ()
    # Same p99 in every repetition: no difference, so not resolvable as one.
    assert pair.p99.ratio is not None and pair.p99.ratio.estimate == pytest.approx(1.0)
    assert "noise" in pair.p99.unresolved
    (row,) = rows([pair], None, a)
    assert "reaches the claim's 2x" in row.sentence and row.cpu_verdict == "lower"
    assert "96.87% (min-max of 6" in row.cpu_coverage  # 6 pairs: the min..max covers 96.9%


def test_a_small_gain_is_below_the_claim_and_few_repetitions_say_their_coverage():
    a = analysis(
        summary("monoio-tpc", BASE_CPU[:3], BASE_P99[:3], churn=1),
        summary(
            "monoio-tpc-structured",
            [x * 0.9 for x in BASE_CPU[:3]],
            [x * 0.99 for x in BASE_P99[:3]],
            churn=1,
        ),
    )
    (pair,) = concurrency_pairs(a, manifest("monoio-tpc", "monoio-tpc-structured"))
    assert "a new connection per request" in pair.workload
    assert pair.cpu.against_claim == "below"
    assert "coverage" in pair.cpu.unresolved  # 3 pairs: min..max covers 75%
    (row,) = rows([pair], None, a)
    assert "below the claim's 2x" in row.cpu_claim
    assert "too few paired repetitions" in row.unresolved


def test_p99s_closer_than_the_hiccup_floor_are_not_resolvable():
    a = analysis(
        summary("tokio-tpc", BASE_CPU, BASE_P99),
        summary("tokio-tpc-structured", BASE_CPU, [x * 0.9 for x in BASE_P99]),
        trials=pd.DataFrame(
            {"status": ["ok"], "hiccup_p99_us": [2000.0], "hiccup_max_us": [5000.0]}
        ),
    )
    (pair,) = concurrency_pairs(a, manifest("tokio-tpc", "tokio-tpc-structured"))
    assert "floor" in pair.p99.unresolved and pair.p99.gap_us == pytest.approx(93.0)
    (row,) = rows([pair], 2000.0, a)
    assert "less than the client's own hiccup p99 (93 µs against 2,000 µs)" in row.unresolved


def test_an_unranked_side_is_said_with_its_flags():
    a = analysis(
        summary("tokio-tpc", BASE_CPU, BASE_P99),
        summary("tokio-tpc-structured", [], [], flagged=6),
    )
    (pair,) = concurrency_pairs(a, manifest("tokio-tpc", "tokio-tpc-structured"))
    assert pair.cpu.ratio is None and pair.cpu.unresolved == ("unranked",)
    (row,) = rows([pair], None, a)
    assert "cannot be ranked" in row.sentence and "6 flagged" in row.sentence


def test_no_concurrency_pair_without_both_designs():
    a = analysis(summary("tokio-tpc", BASE_CPU, BASE_P99))
    assert concurrency_pairs(a, manifest("tokio-tpc", "tokio-tpc-structured")) == []


def test_gain_against_claim_reads_the_inverse_interval():
    def ratio(low: float, high: float) -> Interval:
        return Interval((low + high) / 2, low, high, 0.969, CIMethod.ORDER_STATISTIC, 6)

    assert gain_against_claim(ratio(0.30, 0.45)) == "reaches"  # gain 2.2x..3.3x
    assert gain_against_claim(ratio(0.45, 0.6)) == "straddles"  # gain 1.7x..2.2x
    assert gain_against_claim(ratio(0.8, 1.1)) == "below"
    assert gain_against_claim(None) is None


def test_a_lone_concurrency_pair_runs_from_tasks_to_structured():
    a = analysis(
        summary("tokio-tpc", BASE_CPU, BASE_P99),
        summary("tokio-tpc-structured", [x * 0.8 for x in BASE_CPU], BASE_P99),
    )
    m = {**manifest("tokio-tpc", "tokio-tpc-structured"), "measurement": {}}
    (view,) = chains(a, m)
    (step,) = view.result.steps
    assert (step.step.before, step.step.after, step.step.factor) == (
        "tokio-tpc",
        "tokio-tpc-structured",
        "concurrency",
    )


def test_a_flagged_pair_shows_its_unranked_ratios_without_a_verdict():
    label = "echo 64 B, 64 conns, open loop 4,000/s"
    trials = pd.DataFrame(
        [
            {
                "status": "ok",
                "server_cores": 1,
                "label": label,
                "server": server,
                "repetition": rep,
                "requests_per_server_cpu_s": 1e6 / (cpu * scale),
                "p99_us": 1000.0,
            }
            for rep, cpu in enumerate(BASE_CPU)
            for server, scale in (("tokio-tpc", 1.0), ("tokio-tpc-structured", 1.2))
        ]
    )
    a = analysis(
        summary("tokio-tpc", [], [], flagged=6),
        summary("tokio-tpc-structured", [], [], flagged=6),
        trials=trials,
    )
    (pair,) = concurrency_pairs(a, manifest("tokio-tpc", "tokio-tpc-structured"))
    assert pair.cpu.ratio is None and pair.cpu.verdict is None
    assert pair.flagged_cpu is not None and pair.flagged_cpu.estimate == pytest.approx(1.2)
    assert pair.flagged_p99 is not None and pair.flagged_p99.estimate == pytest.approx(1.0)
    (row,) = rows([pair], None, a)
    assert "cannot be ranked" in row.sentence and "never ranked, no verdict" in row.sentence
    assert "1.20x" in row.sentence


def test_exported_benchmark_names_tell_churns_apart():
    from harness.report.exports import benchmark_name

    names = {
        benchmark_name(summary("tokio-tpc", BASE_CPU, BASE_P99, churn=n), {"target_rate": 4000.0})
        for n in (None, 16, 1)
    }
    assert len(names) == 3 and "tokio-tpc/echo-64B-c64-n1-open4000/k1/p99" in names
