"""The queueing model against queueing theory, and its inputs against a tiny synthetic run.

No server or machine is needed. Customer counts are chosen so that each estimate's own spread
(checked over seeds while writing these tests) is well inside the 3% asked: autocorrelated
queues need far more customers than independent samples would.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.analysis.model import (
    ASSUMPTIONS,
    ServiceTime,
    run_model,
    service_time,
    simulate,
    simulate_queues,
    throughput_ratios,
)
from harness.analysis.model_inputs import model_inputs, parse_work


def _pooled(shared: bool, cores: int, rho: float, customers: int, reps: int, **kw) -> tuple:
    service = service_time("exp:1")
    samples = [
        simulate_queues(
            shared=shared,
            cores=cores,
            offered_rps=rho * cores * 1e6,
            service=service,
            customers=customers,
            seed=(99, rep),
            **kw,
        )
        for rep in range(reps)
    ]
    response = np.concatenate([s.response_us for s in samples])
    wait = np.concatenate([s.wait_us for s in samples])
    return response, wait


@pytest.mark.parametrize(("rho", "customers", "reps"), [(0.5, 200_000, 2), (0.8, 500_000, 4)])
def test_mm1_p99_matches_theory(rho: float, customers: int, reps: int) -> None:
    # mu = 1 per us: response time is exponential with rate mu - lambda.
    response, _ = _pooled(False, 1, rho, customers, reps, connections=1)
    theory = math.log(100) / (1.0 - rho)
    assert np.percentile(response, 99) == pytest.approx(theory, rel=0.03)


def erlang_c(c: int, rho: float) -> float:
    a = rho * c
    head = sum(a**k / math.factorial(k) for k in range(c))
    tail = a**c / math.factorial(c) / (1.0 - rho)
    return tail / (head + tail)


@pytest.mark.parametrize(
    ("c", "rho", "customers", "reps"), [(4, 0.75, 300_000, 3), (16, 0.8, 300_000, 5)]
)
def test_mmc_waiting_matches_erlang_c(c: int, rho: float, customers: int, reps: int) -> None:
    _, wait = _pooled(True, c, rho, customers, reps)
    p_wait = erlang_c(c, rho)
    assert float((wait > 0).mean()) == pytest.approx(p_wait, rel=0.03)
    assert float(wait.mean()) == pytest.approx(p_wait / (c * (1.0 - rho)), rel=0.03)


def _ratio(work: str, **kw) -> float:
    """Predicted tpc/ws p99 ratio at 8 cores, rho 0.7, no extra cost."""
    frame = simulate(
        service_time(work), 0.0, cores=(8,), rhos=(0.7,), customers=40_000, replications=3, **kw
    )
    tpc = frame[frame["family"] == "thread-per-core"].iloc[0]
    ws = frame[frame["family"] == "work-stealing"].iloc[0]
    assert tpc["p99_us"] > ws["p99_us"]
    return float(tpc["p99_ratio"])


def test_per_core_queues_have_the_higher_tail_and_the_gap_grows() -> None:
    even = _ratio("exp:100", connections=4096)
    # lognormal with sigma 1.5 and the same mean of 100 us
    dispersed = _ratio(f"lognormal:{100 / math.exp(1.5**2 / 2):.6f}:1.5", connections=4096)
    skewed = _ratio("exp:100", connections=64, hot_fraction=0.1, hot_share=0.5)
    assert even > 1.0
    assert dispersed > even
    assert skewed > even


def test_one_core_without_extra_cost_is_the_same_queue() -> None:
    frame = simulate(service_time("exp:100"), 0.0, cores=(1,), rhos=(0.7,), customers=2000)
    assert frame["p99_ratio"].tolist() == [1.0, 1.0]
    assert set(frame["source"]) == {"model"}
    assert ASSUMPTIONS and all(isinstance(a, str) for a in ASSUMPTIONS)


def test_unstable_core_is_infinite_not_a_number() -> None:
    # 2 connections on 2 cores, both hashed to one core half the time: rho 0.7 overall is 1.4
    # on that core in those replications.
    frame = simulate(
        service_time("exp:10"), 0.0, cores=(2,), rhos=(0.7,), connections=2, customers=2000,
        replications=6,
    )  # fmt: skip
    tpc = frame[frame["family"] == "thread-per-core"].iloc[0]
    assert tpc["unstable_replications"] >= 1
    assert math.isinf(tpc["p99_high"])
    ratios = throughput_ratios(frame)
    assert set(ratios.columns) >= {"throughput_ratio", "p99_target_us", "tpc_censored"}


def test_work_specs_follow_the_server() -> None:
    assert parse_work("exp:100").mean_us == 100.0
    assert parse_work("fixed:50").mean_us == 50.0
    assert parse_work("lognormal:50:1").mean_us == pytest.approx(50 * math.exp(0.5))
    assert parse_work("bimodal:10:100:0.1").mean_us == pytest.approx(19.0)
    assert parse_work(None).mean_us == 0.0
    assert ServiceTime(parse_work("exp:100"), 0.0).scv() == pytest.approx(1.0)
    assert ServiceTime(parse_work("fixed:50"), 10.0).scv() == 0.0
    with pytest.raises(ValueError, match="exp:MEAN_US"):
        parse_work("exponential:100")


# --------------------------------------------------------------------------------------------
# Inputs from a tiny synthetic run


def _trial(tid: str, server: str, family: str, **kw) -> dict:
    row = {
        "trial_id": tid, "server": server, "design_family": family, "status": "ok",
        "server_cores": 1, "connections": 4, "work": "exp:100", "mode": "closed",
        "requests": 10_000, "server_cpu_s": 9.9, "target_rate": None, "achieved_rate": None,
        "p99_us": None, "hot_fraction": None, "hot_share": None, "client_bound": False,
        "rate_missed": False, "unsteady": False, "contended": False, "oversubscribed": False,
    }  # fmt: skip
    row.update(kw)
    return row


def _tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    trials = pd.DataFrame(
        [
            # thread-per-core: 1.05 s over 10k requests = 105 us per request (threads table)
            _trial("t1", "tokio-tpc", "thread-per-core"),
            # work-stealing: 1.155 s = 115.5 us, 10% more
            _trial("w1", "tokio-ws", "work-stealing"),
            # a flagged trial with an absurd figure must not move the median
            _trial("w2", "tokio-ws", "work-stealing", client_bound=True),
            # 2 cores, open loop at rho 0.5 on the tpc scale: 2 x 0.5 / 105 us
            _trial(
                "t2",
                "tokio-tpc",
                "thread-per-core",
                server_cores=2,
                mode="open",
                target_rate=2 * 0.5 * 1e6 / 105.0,
                p99_us=900.0,
                requests=20_000,
            ),
            _trial("f1", "tokio-tpc", "thread-per-core", status="failed", requests=None),
        ]
    )
    threads = pd.DataFrame(
        [
            {"trial_id": "t1", "role": "server", "cpu_s": 1.0},
            {"trial_id": "t1", "role": "server", "cpu_s": 0.05},  # the runtime's other thread
            {"trial_id": "t1", "role": "client", "cpu_s": 5.0},  # not the server's
            {"trial_id": "w1", "role": "server", "cpu_s": 1.155},
            {"trial_id": "w2", "role": "server", "cpu_s": 50.0},
            {"trial_id": "t2", "role": "server", "cpu_s": 1.1},
            {"trial_id": "t2", "role": "server", "cpu_s": 1.1},
        ]
    )
    workers = pd.DataFrame(
        [
            {"trial_id": "t2", "worker": 0, "connections": 3, "requests": 15_000},
            {"trial_id": "t2", "worker": 1, "connections": 1, "requests": 5_000},
        ]
    )
    return trials, threads, workers


def test_inputs_from_a_small_run() -> None:
    trials, threads, workers = _tables()
    inputs = model_inputs(trials, threads, workers)
    tpc = inputs.cost("tokio-tpc", "exp:100", 1)
    ws = inputs.cost("tokio-ws", "exp:100", 1)
    assert tpc is not None and ws is not None
    assert tpc.cpu_us_per_request == pytest.approx(105.0)
    assert tpc.overhead_us == pytest.approx(5.0)
    assert ws.cpu_us_per_request == pytest.approx(115.5)  # the flagged trial is left out
    assert ws.trials == 1 and not ws.flagged_only
    (extra,) = inputs.extra_costs
    assert (extra.work_stealing, extra.thread_per_core) == ("tokio-ws", "tokio-tpc")
    assert extra.extra_us == pytest.approx(10.5)
    assert extra.extra_fraction == pytest.approx(0.10)
    (skew,) = [s for s in inputs.skews if s.server_cores == 2]
    assert skew.worker_shares == pytest.approx((0.75, 0.25))
    assert skew.worker_imbalance == pytest.approx(1.5)


def test_run_model_reads_a_run_and_joins_measurements(tmp_path: Path) -> None:
    trials, threads, workers = _tables()
    trials.to_parquet(tmp_path / "trials.parquet")
    threads.to_parquet(tmp_path / "threads.parquet")
    workers.to_parquet(tmp_path / "workers.parquet")
    result = run_model(tmp_path, cores=(1, 2), rhos=(0.7,), customers=1000, replications=2)
    p = result.predictions
    assert set(p["source"]) == {"model"}
    assert set(p["design"]) == {"tokio-tpc", "tokio-ws"}
    ws = p[p["family"] == "work-stealing"]
    assert ws["extra_us"].unique().tolist() == pytest.approx([10.5])
    assert sorted(p[p["cores"] == 2]["rho"].unique()) == pytest.approx([0.5, 0.7])
    (row,) = result.comparison.itertuples()
    assert row.trial_id == "t2" and row.rho == pytest.approx(0.5)
    assert row.error == pytest.approx(row.model_p99_us / 900.0 - 1.0)
    assert len(result.ratios) == 2
    with pytest.raises(ValueError, match=r"trials\.parquet"):
        run_model(tmp_path / "missing")
