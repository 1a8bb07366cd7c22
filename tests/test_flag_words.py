"""Flags say what happened (issue 14): a client thread that waited for its CPU is contention, not a
busy client; client_bound only when the client was really busy (or fell behind with no wait to
explain it); each trial's explanation follows from its own figures; and a design that misses its
rate is ranked and shown worse, not left out as incomparable.

Since issue 23 the flags are data: the run judges typed causes (run.flags) from the load
generator's records, and the words come from them (report/flag_words.py, report/charts)."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
from test_store import COUNTERS, LOADGEN, spec

from harness.analysis import analyse
from harness.analysis.stats import Verdict
from harness.report.charts.flagged import flag_explanation, server_flagged, server_flagged_note
from harness.report.flag_words import flag_words, trial_reasons
from harness.run import flags
from harness.run.trial import TrialResult
from harness.store import load_run, trial_rows

WAIT = {"kind": "runqueue_wait", "thread": 0, "value": 0.02, "limit": 0.02, "unit": "fraction"}
LAG = {"kind": "schedule_lag_p99", "thread": None, "value": 1400.0, "limit": 1000.0, "unit": "us"}
BUSY = {"kind": "busy", "thread": 0, "value": 0.963, "limit": 0.9, "unit": "fraction"}


def _report(limits: list[dict], *, busy: float, wait: float | None) -> dict:
    """The load generator's output (loadgen/2) with its records and one thread's figures."""
    report = copy.deepcopy(LOADGEN)
    report["schema"] = "loadgen/2"
    report["summary"].update(client_bound=bool(limits), client_limits=copy.deepcopy(limits))
    report["client_cpu"] = {
        "total_s": busy * 2.0,
        "threads": [
            {
                "thread": 0,
                "cpu": 3,
                "user_s": busy * 0.6,
                "system_s": busy * 1.4,
                "busy_fraction": busy,
                "runqueue_wait_fraction": wait,
            }
        ],
    }
    return report


def _with(record: dict, **figures: float) -> dict:
    return {**record, **figures}


def _words(flag: flags.Flag, column: str) -> str:
    return flag_words(column, [{"flag": column, **vars(c)} for c in flag.causes])


def test_a_thread_that_waited_for_its_cpu_is_contended_not_client_bound():
    # The trial: 2.0% run-queue wait, the client thread 47% busy.
    report = _report([WAIT], busy=0.47, wait=0.020)
    assert flags.client_bound(report) == flags.Flag(False)
    contended = flags.contended({}, [], 2.0, report)
    assert contended.set is True
    (cause,) = contended.causes
    assert (cause.kind, cause.thread, cause.cpu, cause.value) == ("runqueue_wait", 0, 3, 0.02)
    assert _words(contended, "contended") == (
        "client thread 0 on CPU 3 waited for its CPU 2.0% of the window (run-queue wait >= 2%): "
        "other processes ran there"
    )


def test_the_lag_that_follows_a_wait_is_told_with_it():
    report = _report([_with(WAIT, value=0.05), LAG], busy=0.47, wait=0.05)
    assert flags.client_bound(report) == flags.Flag(False)
    why = _words(flags.contended({}, [], 2.0, report), "contended")
    assert "waited for its CPU 5.0%" in why
    assert "with it, schedule lag p99 1,400 µs > 1,000 µs: requests were noticed late" in why


def test_a_busy_client_stays_client_bound_and_its_wait_is_contention_too():
    report = _report([BUSY, _with(WAIT, value=0.03), LAG], busy=0.963, wait=0.03)
    bound = flags.client_bound(report)
    assert bound.set is True and [c.kind for c in bound.causes] == ["busy", "schedule_lag_p99"]
    assert _words(bound, "client_bound") == (
        "client thread 0 on CPU 3 busy 96% of the window (>= 90%); schedule lag p99 1,400 µs > "
        "1,000 µs: requests were noticed late"
    )
    contended = flags.contended({}, [], 2.0, report)
    waited = _words(contended, "contended")
    assert contended.set is True and "waited for its CPU 3.0%" in waited and "with it" not in waited


def test_a_schedule_that_fell_behind_without_any_wait_is_client_bound():
    report = _report([LAG], busy=0.6, wait=0.001)
    assert flags.client_bound(report) == flags.Flag(True, (flags.Cause(**LAG),))
    assert flags.contended({}, [], 2.0, report) == flags.Flag(False)


def test_records_without_thread_figures_keep_the_wait_as_contention():
    report = _report([WAIT], busy=0.5, wait=None)
    del report["client_cpu"]["threads"]
    assert flags.client_bound(report) == flags.Flag(False)
    contended = flags.contended({}, [], 2.0, report)
    assert contended.set is True and contended.causes[0].cpu is None  # no CPU known
    assert flags.contended({}, [], 2.0, {}) == flags.Flag(None)  # nothing known


def test_the_stored_trial_carries_contended_with_its_reason_and_is_not_ranked():
    report = _report([WAIT], busy=0.47, wait=0.02)
    result = TrialResult(spec(0), "ok", "", "t0", "t1", loadgen=report, counters=COUNTERS)
    result.flags = flags.judge(result)
    row = trial_rows("r1", result)["trials"][0]
    assert row["client_bound"] is False and row["contended"] is True
    contended = [c for c in row["flag_causes"] if c["flag"] == "contended"]
    assert [(c["kind"], c["thread"], c["cpu"], c["value"]) for c in contended] == [
        ("runqueue_wait", 0, 3, 0.02)
    ]
    assert "contended_reason" not in row  # the words are made from the causes, not stored
    t = analyse.prepare(pd.DataFrame([row]))
    assert t["flagged"].tolist() == [True] and t["ranked"].tolist() == [False]  # the instrument


def _rows(*causes: list[dict]) -> pd.DataFrame:
    """One trial per list of causes (each a dict with its flag's column)."""
    n = len(causes)
    base = {"client_threads": [1] * n, "client_cpu_util": [0.47] * n, "server_cpu_util": [1.0] * n}
    return pd.DataFrame({**base, "flag_causes": list(causes)})


def _cause(flag: str, record: dict, **figures: float) -> dict:
    return {"flag": flag, **record, **figures}


def test_explanations_follow_each_trials_own_figures():
    waited = flag_explanation("contended", _rows([_cause("contended", WAIT, cpu=3)]))
    assert "waited for its CPU 2.0% of the window (run-queue wait)" in waited
    assert "contention, not a busy client" in waited
    assert "pace" not in waited and "47%" not in waited
    # Client-bound from a lag alone: its figure, no claim that any core was busy.
    lag = flag_explanation("client-bound", _rows([_cause("client_bound", LAG)]))
    assert "schedule lag p99 1,400 µs" in lag and "busy" not in lag and "pace" not in lag
    # Really busy: the busy figure, and only then the pace.
    busy = flag_explanation(
        "client-bound",
        _rows([_cause("client_bound", BUSY)], [_cause("client_bound", BUSY, value=0.92)]),
    )
    assert busy.startswith("the single load-generator core was 92-96% busy (>= 90% of the window)")
    assert "while the server's CPUs were 100% busy" in busy and "may have set the pace" in busy
    # Two kinds among three trials: each counted.
    mixed = flag_explanation(
        "client-bound",
        _rows(
            [_cause("client_bound", BUSY)],
            [_cause("client_bound", LAG)],
            [_cause("client_bound", LAG)],
        ),
    )
    assert "(1 of 3 trials)" in mixed and "(2 of 3 trials)" in mixed
    other = {"kind": "other_processes", "cpu": 1, "value": 0.14, "limit": 0.1}
    other_words = flag_explanation("contended", _rows([_cause("contended", other)]))
    assert other_words.startswith("other processes used 14% of a trial CPU")


# --------------------------------------------------------------------------------------------
# A design that cannot hold the rate is worse, not incomparable


@pytest.fixture(scope="module")
def fake(fake_run):
    return fake_run


def test_a_rate_missed_design_is_ranked_and_shown_worse(fake):
    run = load_run(fake.directory)
    t = run.trials
    # tokio-tpc at 2 cores and 0.95x capacity misses its rate in every repetition, with a p99
    # three times what it was: the server's own result.
    mine = (t.server == "tokio-tpc") & (t.server_cores == 2) & t.trial_id.str.contains("open0.95x")
    assert mine.sum() == 3
    t.loc[mine, "rate_missed"] = True
    missed = {"flag": "rate_missed", "kind": "achieved_rate", "value": 9100.0, "of": 10000.0}
    for i in t.index[mine]:
        kept = [c for c in t.at[i, "flag_causes"] if c["flag"] != "rate_missed"]
        t.at[i, "flag_causes"] = [*kept, missed]
    t.loc[mine, "p99_us"] = t.loc[mine, "p99_us"] * 3
    analysis = analyse.analyse(run)
    marked = analysis.trials[analysis.trials.trial_id.isin(t.loc[mine, "trial_id"])]
    assert marked["ranked"].all() and not marked["flagged"].any()
    (c,) = [
        c
        for c in analysis.comparisons
        if (c.thread_per_core, c.work_stealing, c.server_cores) == ("tokio-tpc", "tokio-ws", 2)
        and "0.95x" in c.workload
    ]
    assert c.p99_verdict is not None and c.p99_verdict.verdict is Verdict.WORSE
    assert c.p99_verdict.n_a == 3  # every repetition counted, none left out
    # Listed with its reason, saying it is still ranked; the charts mark it and say why.
    listed = analysis.flagged.set_index("trial_id").loc[list(marked["trial_id"])].reset_index()
    assert all(
        trial_reasons(r).endswith("(server flag: still ranked)") for r in listed.to_dict("records")
    )
    assert len(server_flagged(analysis.trials)) >= 3
    note = server_flagged_note(server_flagged(marked))
    assert "Crosses are ranked trials with a server flag (3 trials)" in note
    assert "count against the design" in note
    assert (
        "Rate missed (3 trials): the server fell behind the offered rate (it answered 91.0% of "
        "the requests due), below 99%: that counts against the design"
    ) in note


def test_a_lag_within_the_platforms_own_stalls_is_the_floor_not_a_busy_client():
    """A lag with no wait and no busy thread: the client's hiccup meter, on the same CPU in the
    same window, saw stalls as long (a VM's), so the lag is the noise floor, stated beside every
    latency, not a client that fell behind."""
    report = _report([LAG], busy=0.40, wait=0.0)
    report["summary"]["schedule_lag_us"] = {"p99": 1400.0, "max": 9000.0}
    report["hiccup"] = {"per_cpu": [{"cpu": 3, "p99_us": 900.0, "max_us": 8000.0}]}
    assert flags.client_bound(report) == flags.Flag(False)
    # Lag far beyond the platform's stalls: the client did fall behind.
    report["hiccup"] = {"per_cpu": [{"cpu": 3, "p99_us": 300.0, "max_us": 2000.0}]}
    assert flags.client_bound(report) == flags.Flag(True, (flags.Cause(**LAG),))
    # No hiccup meter: nothing explains the lag.
    del report["hiccup"]
    assert flags.client_bound(report).set is True


def test_an_open_loop_wait_that_left_the_schedule_intact_is_no_contention():
    """A client thread waited 2.5% for its CPU, yet every due request went out and the lag p99
    stayed within the platform's stalls: the wait is in the figures, not a flag. Closed loop,
    or a lag beyond the floor, stays contended."""
    report = _report([_with(WAIT, value=0.025)], busy=0.80, wait=0.025)
    report["summary"].update(target_rate=40_000.0, scheduled_rate=40_010.0, sent_rate=40_011.0)
    report["summary"]["schedule_lag_us"] = {"p99": 1500.0, "max": 9000.0}
    report["hiccup"] = {"per_cpu": [{"cpu": 3, "p99_us": 900.0, "max_us": 8000.0}]}
    assert flags.contended({}, [], 2.0, report) == flags.Flag(False)
    report["summary"]["schedule_lag_us"] = {"p99": 4000.0, "max": 9000.0}
    assert flags.contended({}, [], 2.0, report).set is True
    closed = _report([_with(WAIT, value=0.025)], busy=0.80, wait=0.025)
    assert flags.contended({}, [], 2.0, closed).set is True
