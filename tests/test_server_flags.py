"""Lost and censored requests flag a trial without taking it out of ranking (they are the
server's own result), and a p99 difference below the client's hiccup floor is called not
resolvable on this machine (issue 14)."""

from __future__ import annotations

import copy
import html
import re

import pandas as pd
import pytest
from test_store import COUNTERS, LOADGEN, spec

from harness.analysis import analyse
from harness.analysis.flagged import causes_of
from harness.report.flag_words import reason_of
from harness.report.html import render
from harness.run import flags
from harness.run.trial import TrialResult
from harness.store import load_run, trial_rows

CENSORING = {
    "failed": 40,
    "censored": 960,
    "censored_tail": True,
    "latency_upper_us": {"p50": 19.9, "p99": None},
    "scheduled": {"scheduled": 1300, "answered": 300, "failed": 40, "censored": 960},
    "errors_total": 40,
    "errors": {"timeout": 40, "reset": 0},
}
HICCUP = {
    "interval_us": 1000,
    "per_cpu": [
        {"cpu": 0, "count": 1990, "p99_us": 150.0, "max_us": 900.0},
        {"cpu": 2, "count": 1990, "p99_us": 420.0, "max_us": 11000.0},
    ],
}


def _trial(loadgen: dict) -> dict:
    result = TrialResult(spec(0), "ok", "", "t0", "t1", loadgen=loadgen, counters=COUNTERS)
    result.flags = flags.judge(result)  # the run judges; the store keeps what it judged
    return trial_rows("r1", result)["trials"][0]


def test_lost_and_censored_requests_are_stored_and_flagged_with_their_counts():
    report = copy.deepcopy(LOADGEN)
    report["summary"].update(CENSORING)
    report["hiccup"] = HICCUP
    row = _trial(report)
    assert (row["scheduled"], row["failed"], row["censored"]) == (1300, 40, 960)
    assert row["censored_tail"] is True
    # The floor is the worst of the client CPUs.
    assert (row["hiccup_p99_us"], row["hiccup_max_us"]) == (420.0, 11000.0)
    assert row["errors_flag"] is True
    # Stored as typed causes; the words are made from them (report/flag_words.py).
    errors = {(c["kind"], c["detail"]): c["value"] for c in causes_of(row, "errors_flag")}
    assert errors == {("errors_total", None): 40, ("error", "timeout"): 40, ("lost", None): 40}
    assert "40 errors (timeout 40)" in reason_of(row, "errors_flag")
    assert "40 requests lost" in reason_of(row, "errors_flag")
    assert row["censored_flag"] is True
    assert "960 requests of 1,300 scheduled" in reason_of(row, "censored_flag")
    assert "no upper bound" in reason_of(row, "censored_flag")


def test_a_complete_tail_carries_no_flag_and_no_floor_without_a_meter():
    report = copy.deepcopy(LOADGEN)
    report["summary"].update(errors_total=0, errors={}, censored=2, censored_tail=False)
    row = _trial(report)
    assert row["errors_flag"] is False and row["censored_flag"] is False
    assert row["hiccup_p99_us"] is None and row["hiccup_max_us"] is None


@pytest.mark.parametrize("server_flag", ["errors_flag", "censored_flag"])
def test_server_flags_keep_a_trial_ranked_instrument_flags_do_not(server_flag):
    columns = ("oversubscribed", "client_bound", "contended", "unsteady", "rate_missed")
    trials = pd.DataFrame(
        {
            "status": ["ok", "ok", "ok"],
            "rate_fraction": [None, None, None],
            "target_rate": [None, None, None],
            **{c: [False, False, c == "client_bound"] for c in columns},
            "errors_flag": [False, server_flag == "errors_flag", False],
            "censored_flag": [False, server_flag == "censored_flag", False],
        }
    )
    t = analyse.prepare(trials)
    assert t["ranked"].tolist() == [True, True, False]
    assert t["flagged"].tolist() == [False, False, True]


@pytest.fixture(scope="module")
def fake(fake_run):
    return fake_run


def _page(fake, floor_p99_us: float | None) -> str:
    run = load_run(fake.directory)
    run.trials["hiccup_p99_us"] = floor_p99_us
    run.trials["hiccup_max_us"] = None if floor_p99_us is None else 3 * floor_p99_us
    return render(analyse.analyse(run))


def _visible(page: str) -> str:
    page = re.sub(r'src="data:[^"]*"', "", page)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def test_a_p99_difference_below_the_floor_is_not_resolvable(fake):
    # A floor far above every p99 of the fake run: no p99 difference can be resolved.
    page = _visible(_page(fake, 1e7))
    assert "not resolvable on this machine (the p99s differ by" in page
    assert "less than the client's hiccup p99 of 10,000,000 µs" in page
    assert "client noise floor" in page and "hiccup p99 10,000,000 µs, max 30,000,000 µs" in page


def test_a_p99_difference_above_the_floor_keeps_its_verdict(fake):
    page = _visible(_page(fake, 0.001))
    assert "the p99s differ by" not in page
    assert "hiccup p99 0 µs" in page  # the floor is still stated
    unmeasured = _visible(_page(fake, None))
    assert "not measured (no trial has a client hiccup meter)" in unmeasured
    assert "the p99s differ by" not in unmeasured
