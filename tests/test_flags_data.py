"""Flags are data end to end (issue 23): the load generator writes records, not sentences; the run
judges them once, by a pure function; the store keeps the typed causes (and rebuilds them from
raw/); only the report makes words, from the data. A run stored before (schema_version 1, the
`*_reason` text) is still shown, its text as it was written."""

from __future__ import annotations

import copy
import json
import os

import pandas as pd
import pytest
from test_hosts_plan import A as HOST_A
from test_hosts_plan import B as HOST_B
from test_hosts_plan import _doc as _hosts_doc
from test_loadgen import LOADGEN as LOADGEN_BIN
from test_loadgen import ServerThread, echo, run_loadgen
from test_store import COUNTERS, LOADGEN, spec

from harness.report.charts.flagged import flag_explanation
from harness.report.flag_words import flag_reasons, flag_words, reason_of
from harness.run import flags
from harness.run.host_merge import merge_reports
from harness.run.trial import TrialResult
from harness.store import SCHEMA_VERSION, RunStore, load_run
from harness.store.repair import repair_run

CPU = min(os.sched_getaffinity(0))


def _open_loop_v1(**summary: object) -> dict:
    """A loadgen/1 document of an open-loop run, with its figures and the sentences it wrote."""
    report = copy.deepcopy(LOADGEN)
    report["config"] = {"threads": 2}
    report["summary"].update(
        target_rate=1000.0,
        scheduled_rate=1000.0,
        sent_rate=900.0,
        achieved_rate=900.0,
        schedule_lag_us={"p50": 10.0, "p99": 2500.0, "max": 9000.0},
        errors={"queue_overflow": 3},
        errors_total=3,
        client_bound=True,
        client_bound_reasons=["thread 0 busy 95.0% of the window (user+sys >= 90%)"],
        **summary,
    )
    report["client_cpu"] = {
        "threads": [{"thread": 0, "cpu": 5, "busy_fraction": 0.95, "runqueue_wait_fraction": 0.001}]
    }
    return report


def _v2_of(report: dict) -> dict:
    """The same run as loadgen/2 writes it: the records instead of the sentences."""
    v2 = copy.deepcopy(report)
    v2["schema"] = "loadgen/2"
    del v2["summary"]["client_bound_reasons"]
    v2["summary"]["client_limits"] = [
        {"kind": "busy", "thread": 0, "value": 0.95, "limit": 0.9, "unit": "fraction"},
        {"kind": "no_report", "thread": 1, "value": None, "limit": None, "unit": None},
        {"kind": "schedule_lag_p99", "thread": None, "value": 2500.0, "limit": 1000.0,
         "unit": "us"},
        {"kind": "sent_share", "thread": None, "value": 0.9, "limit": 0.99, "unit": "fraction"},
        {"kind": "queue_overflow", "thread": None, "value": 3.0, "limit": 0.0,
         "unit": "requests"},
    ]  # fmt: skip
    return v2


def _result(report: dict, index: int = 0) -> TrialResult:
    return TrialResult(spec(index), "ok", "", "t0", "t1", loadgen=report, counters=COUNTERS)


# --- the load generator writes records ------------------------------------------------------


@pytest.mark.skipif(not LOADGEN_BIN.exists(), reason="loadgen not built")
def test_the_load_generator_writes_records_the_run_judges():
    """A rate one connection cannot send: the real load generator, against a real server on
    127.0.0.1, says so as records, and the run's judgement carries them."""
    with ServerThread(echo) as srv:
        rc, doc, err, _ = run_loadgen(
            f"--port {srv.port} --connections 1 --rate 2000000 --warmup 0.2 --duration 1"
            f" --cpus {CPU}"
        )
    assert rc == 0, err
    assert doc["schema"] == "loadgen/2" and "client_bound_reasons" not in doc["summary"]
    limits = doc["summary"]["client_limits"]
    assert doc["summary"]["client_bound"] is True and limits
    for record in limits:
        assert set(record) == {"kind", "thread", "value", "limit", "unit"}
        assert isinstance(record["kind"], str) and " " not in record["kind"]  # a name, no words
    assert "sent_share" in [r["kind"] for r in limits]
    judged = flags.judge(_result(doc))
    # Client-bound, or (when a thread also waited for its CPU on this busy machine and none was
    # busy) contention with the unsent requests that followed from it: either way, the record.
    flag = judged.client_bound if judged.client_bound.set else judged.contended
    assert flag.set is True
    sent = [c for c in flag.causes if c.kind == "sent_share"]
    share = doc["summary"]["sent_rate"] / doc["summary"]["scheduled_rate"]
    assert sent and sent[0].value == pytest.approx(share, rel=1e-3)


# --- judging is a pure function over the records --------------------------------------------


def test_judging_is_a_pure_function_of_the_records():
    report = _v2_of(_open_loop_v1())
    before = copy.deepcopy(report)
    first, second = flags.judge(_result(report)), flags.judge(_result(report))
    assert first == second and report == before  # same answer, input untouched
    bound = first.client_bound
    assert bound.set is True
    assert [(c.kind, c.thread, c.cpu) for c in bound.causes] == [
        ("busy", 0, 5), ("no_report", 1, None), ("schedule_lag_p99", None, None),
        ("sent_share", None, None), ("queue_overflow", None, None),
    ]  # fmt: skip
    assert first.rate_missed.causes == (
        flags.Cause("achieved_rate", 900.0, flags.RATE_MISSED_LIMIT, 1000.0, "req/s"),
    )


def test_a_loadgen_1_document_is_judged_from_its_figures_not_its_sentences():
    old = _open_loop_v1()
    assert flags.judge(_result(old)) == flags.judge(_result(_v2_of(old)))
    # Its sentences are never read: other words, the same judgement.
    reworded = copy.deepcopy(old)
    reworded["summary"]["client_bound_reasons"] = ["anything at all"]
    assert flags.judge(_result(reworded)) == flags.judge(_result(old))


def test_the_flags_round_trip_as_plain_data():
    judged = flags.judge(_result(_v2_of(_open_loop_v1())))
    assert flags.TrialFlags.from_dict(json.loads(json.dumps(judged.to_dict()))) == judged


# --- the store keeps the typed causes ------------------------------------------------------


def _store(tmp_path, reports: list[dict]) -> RunStore:
    store = RunStore(tmp_path / "run")
    store.write_manifest({"run_id": "r1", "schema_version": SCHEMA_VERSION})
    for i, report in enumerate(reports):
        result = _result(report, i)
        result.flags = flags.judge(result)
        store.record("r1", result)
    store.flush()
    return store


def _causes(trials: pd.DataFrame) -> list[list[dict]]:
    return [list(c) for c in trials["flag_causes"]]


def test_the_store_round_trips_the_typed_flags_and_repair_rebuilds_them(tmp_path):
    store = _store(tmp_path, [_v2_of(_open_loop_v1()), copy.deepcopy(LOADGEN)])
    trials = load_run(store.directory).trials
    assert trials["client_bound"].tolist() == [True, False]
    first = _causes(trials)[0]
    bound = [c for c in first if c["flag"] == "client_bound"]
    assert [(c["kind"], c["thread"], c["cpu"], c["value"]) for c in bound[:1]] == [(
        "busy", 0, 5, 0.95
    )]  # fmt: skip
    assert {c["flag"] for c in first} >= {"client_bound", "rate_missed", "errors_flag"}
    # Every table gone: rebuilt from raw/ with the same causes.
    (store.directory / "trials.parquet").unlink()
    repair_run(store.directory)
    again = load_run(store.directory).trials
    assert _causes(again) == _causes(trials)
    assert again["client_bound"].tolist() == trials["client_bound"].tolist()


def test_a_raw_record_from_before_the_flags_is_judged_as_read(tmp_path):
    store = _store(tmp_path, [_open_loop_v1()])
    (record,) = (store.directory / "raw").glob("*.trial.json")
    data = json.loads(record.read_text())
    del data["flags"]  # as the harness wrote records before schema_version 2
    record.write_text(json.dumps(data))
    (store.directory / "trials.parquet").unlink()
    repair_run(store.directory)
    trials = load_run(store.directory).trials
    assert trials["client_bound"].tolist() == [True]
    assert "busy" in [c["kind"] for c in _causes(trials)[0]]


# --- only the report makes words, from the data ---------------------------------------------


def test_the_words_come_from_the_causes():
    judged = flags.judge(_result(_v2_of(_open_loop_v1())))
    causes = [{"flag": "client_bound", **vars(c)} for c in judged.client_bound.causes]
    words = flag_words("client_bound", causes)
    assert words.startswith("client thread 0 on CPU 5 busy 95% of the window (>= 90%)")
    assert "client thread 1 did not report" in words
    assert "schedule lag p99 2,500 µs > 1,000 µs" in words
    assert "sent 90.00% of the requests scheduled (< 99%)" in words
    assert "3 due requests dropped from a full connection backlog" in words
    # Other figures, other words: nothing is fixed text.
    causes[0]["value"] = 0.97
    assert "busy 97%" in flag_words("client_bound", causes)
    row = {"client_bound": True, "flag_causes": causes, "client_threads": 2}
    explained = flag_explanation("client-bound", pd.DataFrame([row]))
    assert "a load-generator thread was 97% busy" in explained
    assert "it sent only 90.0% of the requests scheduled" in explained


def test_a_run_stored_before_schema_2_shows_its_text_as_written():
    row = {
        "client_bound": True,
        "flag_causes": None,
        "client_bound_reason": "thread 0 busy 96.3% of the window (user+sys >= 90%)",
    }
    assert reason_of(row, "client_bound") == row["client_bound_reason"]
    assert flag_reasons(row) == [f"client bound: {row['client_bound_reason']}"]
    # No figure is read out of the text: the chart's sentence stays general.
    explained = flag_explanation("client-bound", pd.DataFrame([row]))
    assert explained == "the load generator may have set the pace, not the server alone"


def test_a_hosts_records_keep_their_host_through_the_merge():
    """Across hosts (docs/multi-host.md): each host's records are named by their host, the CPU
    is that host's thread's, and no thread of another host is taken as missing."""
    fast = _hosts_doc([100_000] * 100, 100, [50, 50])
    busy = _hosts_doc([100_000] * 100, 100, [50, 50])
    for doc, cpu in ((fast, 2), (busy, 7)):
        doc["schema"] = "loadgen/2"
        doc["summary"]["client_limits"] = []
        doc["client_cpu"]["threads"] = [{"thread": 0, "cpu": cpu, "busy_fraction": 0.5}]
    busy["summary"].update(client_bound=True)
    busy["summary"]["client_limits"] = [
        {"kind": "busy", "thread": 0, "value": 0.93, "limit": 0.9, "unit": "fraction"}
    ]
    merged = merge_reports({HOST_A: fast, HOST_B: busy}, {HOST_A: 0, HOST_B: 0})
    bound = flags.client_bound(merged)
    assert bound.set is True
    assert [(c.kind, c.thread, c.cpu, c.host) for c in bound.causes] == [("busy", 0, 7, HOST_B)]
    words = flag_words("client_bound", [{"flag": "client_bound", **vars(c)} for c in bound.causes])
    assert (
        words == f"client thread 0 on CPU 7 (client host {HOST_B}) busy 93% of the window (>= 90%)"
    )
    # The same hosts as loadgen/1 wrote them: judged from the figures, per host.
    for doc in (fast, busy):
        doc["schema"] = "loadgen/1"
        del doc["summary"]["client_limits"]
        doc["summary"]["client_bound_reasons"] = ["(never read)"]
    busy["client_cpu"]["threads"][0]["busy_fraction"] = 0.93
    old = flags.client_bound(merge_reports({HOST_A: fast, HOST_B: busy}, {HOST_A: 0, HOST_B: 0}))
    assert [(c.kind, c.cpu, c.host) for c in old.causes] == [("busy", 7, HOST_B)]
