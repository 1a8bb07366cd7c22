"""The statistics the report draws, computed in analysis (pure functions, no file): the
per-interval series and their quartiles, the worker shares, the percentile spectrum (on
percentile_of's rule) and the model's capacity at rho = 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.analysis import histogram
from harness.analysis.model_results import capacity_rps, ratio_at
from harness.analysis.series import config_series, interval_rates, median_curve
from harness.analysis.trial_figures import idle_floor_us, trial_counts
from harness.analysis.workers import config_shares, trial_shares


def _trials(rows: list[tuple]) -> pd.DataFrame:
    """Labelled trials as analyse makes them: (trial_id, server, cores, ranked, flagged)."""
    return pd.DataFrame(
        [
            {
                "trial_id": t,
                "server": srv,
                "server_cores": k,
                "label": "echo 64 B",
                "mode": "closed",
                "status": "ok",
                "ranked": ranked,
                "flagged": flagged,
                "window_s": 3.0,
            }
            for t, srv, k, ranked, flagged in rows
        ]
    )


def test_interval_rates_divide_each_interval_by_its_width():
    ts = pd.DataFrame({"trial_id": ["a"] * 3, "second": [0.0, 1.0, 2.5], "requests": [10, 30, 5]})
    rates = interval_rates(ts, _trials([("a", "x", 1, True, False)]))
    assert list(rates["interval"]) == [0, 1, 2]
    assert list(rates["end"]) == [1.0, 2.5, 3.0]  # the last interval ends at the window
    assert list(rates["rate"]) == [10.0, 20.0, 10.0]


def test_median_curve_is_the_median_and_quartiles_per_interval():
    rates = pd.DataFrame(
        {
            "trial_id": ["a", "b", "c", "d", "e"],
            "interval": [0] * 5,
            "start": [0.0, 0.0, 0.0, 0.0, 0.2],
            "end": [1.0] * 5,
            "rate": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    curve = median_curve(rates)
    assert curve.median.tolist() == [3.0]
    assert curve.low.tolist() == [2.0] and curve.high.tolist() == [4.0]
    assert curve.start.tolist() == [0.0]


def test_config_series_keeps_flagged_trials_out_of_the_ranked_curve():
    trials = _trials(
        [("a", "x", 1, True, False), ("b", "x", 1, True, False), ("c", "x", 1, False, True)]
    )
    ts = pd.DataFrame(
        {
            "trial_id": ["a", "a", "b", "b", "c", "c"],
            "second": [0.0, 1.0] * 3,
            "requests": [10, 10, 20, 20, 1000, 1000],
        }
    )
    series = config_series(ts, trials)
    c = series[("x", 1, "echo 64 B")]
    assert c.ranked_trials == 2
    assert c.ranked is not None and c.ranked.median.tolist() == [
        15.0,
        7.5,
    ]  # the last interval is 2 s
    assert c.flagged is not None and c.flagged.median.tolist() == [1000.0, 500.0]
    assert set(c.trials) == {"a", "b", "c"} and c.end == 3.0


def test_config_series_is_empty_without_a_timeseries():
    assert (
        config_series(pd.DataFrame(columns=["trial_id"]), _trials([("a", "x", 1, True, False)]))
        == {}
    )


def _workers(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["trial_id", "worker", "requests", "connections"])


def test_trial_shares_are_over_the_mean_busiest_first_and_need_every_worker():
    w = _workers([("a", 0, 10, 1), ("a", 1, 30, 3), ("b", 0, 5, 1)])
    shares = trial_shares(w, {"a": 2, "b": 2})
    assert set(shares) == {"a"}  # b counted one of its two workers
    requests, connections = shares["a"]
    assert requests.tolist() == [1.5, 0.5] and connections.tolist() == [1.5, 0.5]


def test_config_shares_median_of_ranked_else_each_flagged_trial():
    trials = _trials(
        [
            ("a", "x", 2, True, False),
            ("b", "x", 2, True, False),
            ("c", "y", 2, False, True),
            ("d", "z", 1, True, False),  # one worker: nothing to balance
        ]
    )
    w = _workers(
        [
            ("a", 0, 10, 1),
            ("a", 1, 30, 1),
            ("b", 0, 20, 1),
            ("b", 1, 20, 1),
            ("c", 0, 40, 1),
            ("c", 1, 0, 1),
            ("d", 0, 9, 1),
        ]
    )
    shares = config_shares(w, trials)
    assert set(shares) == {("x", 2, "echo 64 B"), ("y", 2, "echo 64 B")}
    x = shares[("x", 2, "echo 64 B")]
    assert x.ranked is not None and x.ranked[0].tolist() == [1.25, 0.75] and not x.flagged
    y = shares[("y", 2, "echo 64 B")]
    assert y.ranked is None and y.flagged_ids == ("c",)
    assert [r.tolist() for r, _c in y.flagged] == [[2.0, 0.0]]


def _merged(values_ns: list[int]) -> histogram.Merged:
    buckets = histogram.record(values_ns)
    return histogram.Merged(*(np.array(c, dtype=np.int64) for c in zip(*buckets, strict=True)))


def test_spectrum_uses_percentile_of_at_every_point():
    merged = _merged(list(range(1_000, 200_000, 13)))
    xs, ys = histogram.spectrum(merged)
    assert xs[0] == 0.0 and ys[0] == merged.percentile_us(1e-9)  # p = 0: the smallest value
    for x, y in list(zip(xs, ys, strict=True))[1::37]:
        p = 100.0 * (1.0 - 10.0**-x)
        assert y == merged.percentile_us(float(p))
    assert np.all(np.diff(ys) >= 0)
    assert ys[-1] <= merged.percentile_us(100)


def test_spectrum_of_an_empty_histogram_is_empty():
    xs, ys = histogram.spectrum(histogram.EMPTY)
    assert len(xs) == len(ys) == 0


def test_capacity_is_the_median_offered_rate_over_rho():
    at = pd.DataFrame({"rho": [0.5, 0.7, 0.0], "offered_rps": [500.0, 770.0, 0.0]})
    assert capacity_rps(at) == pytest.approx(1050.0)
    assert np.isnan(capacity_rps(at.iloc[2:]))


def test_ratio_at_finds_the_prediction_at_the_fixed_load():
    p = pd.DataFrame(
        {
            "thread_per_core": ["t", "t"],
            "work": ["none", "none"],
            "connections": [8, 8],
            "cores": [2, 2],
            "rho": [0.5, 0.7],
            "p99_ratio": [1.1, 1.3],
        }
    )
    r = {"thread_per_core": "t", "work": "none", "connections": 8, "cores": 2}
    row = ratio_at(p, r)
    assert row is not None and row["p99_ratio"] == 1.3
    assert ratio_at(p, {**r, "cores": 4}) is None


def test_trial_counts_and_the_idle_floor():
    trials = pd.DataFrame(
        {
            "ranked": [True, False, False],
            "flagged": [False, True, False],
            "status": ["ok", "ok", "failed"],
            "oversubscribed": [None, True, None],
        }
    )
    assert trial_counts(trials) == {
        "trials": 3,
        "ranked": 1,
        "flagged": 1,
        "failed": 1,
        "oversubscribed": 1,
    }
    assert trial_counts(trials.iloc[:0])["trials"] == 0
    hosts = {"hosts": {"idle_rtt": [{"min_us": 80.0}, {"min_us": None}, {"min_us": 52.5}]}}
    assert idle_floor_us(hosts) == 52.5
    assert idle_floor_us({}) is None


def test_sample_percentile_is_percentile_of_on_raw_values():
    values = np.array([5.0, 1.0, 4.0, 2.0, 3.0] * 200)  # 1000 values, 200 of each
    merged = _merged([int(v) for v in values])  # one-wide buckets: exact values
    for p in (1.0, 20.0, 50.0, 99.0, 99.9, 100.0):
        assert histogram.sample_percentile(values, p) == merged.percentile_ns(p)
    assert histogram.sample_percentile(np.array([]), 50.0) is None
