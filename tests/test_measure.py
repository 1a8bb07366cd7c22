"""What a run measures (issue 9): calibration caps the rate, common absolute rates for every
design, the chosen mode and its reason in the manifest and the report, and the factor chain."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import build_sysfs, require_binaries
from fake_run import CHAIN, build_chain_run, build_client_bound_run
from helpers import run_harness

from harness.analysis.analyse import analyse
from harness.errors import HarnessError
from harness.plan.calibrate import CLIENT_RATE_CAP_SHARE, DesignCapacity, RampPoint
from harness.plan.designs import DEFAULT_REGISTRY, load_registry
from harness.plan.measure import capacity_config, decide, needs_calibration, ramp_config
from harness.plan.plan import RunConfig, make_plan
from harness.plan.topology import read_topology
from harness.report.html import render
from harness.store import load_run

GROUP = ("echo", 1, 64, 64, 1, "none")


def config(**changes: object) -> RunConfig:
    base = RunConfig(
        servers=("tokio-ws", "tokio-tpc", "epoll-tpc"),
        protocols=("echo",),
        cores=(1,),
        connections=(64,),
        sizes=(64,),
        duration_s=5.0,
        warmup_s=1.0,
        repeat=3,
        oversubscribe=False,
        client_cpus=None,
        seed=None,
        measure="auto",
    )
    return RunConfig(**{**vars(base), **changes})


@pytest.fixture
def topology(tmp_path):
    return read_topology(build_sysfs(tmp_path / "cpu", [(0, 0, 0, 0), (1, 0, 1, 0)]))


DESIGNS = load_registry(DEFAULT_REGISTRY)
# A 2-CPU machine: every closed-loop calibration trial saturated the one client core.
BOUND = [
    DesignCapacity("tokio-ws", 39_000.0, True),
    DesignCapacity("tokio-tpc", 41_000.0, True),
    DesignCapacity("epoll-tpc", 45_000.0, True),
]
RAMP = [RampPoint(20_000, 20_000), RampPoint(40_000, 39_900), RampPoint(60_000, 50_000, True)]


def test_calibration_plans_every_design_then_a_ramp_against_the_fastest(topology):
    cfg = config(works=("exp:50",))
    assert needs_calibration(cfg)
    phase1 = make_plan(capacity_config(cfg), topology, DESIGNS)
    # One short closed-loop trial per design at every work and at none.
    assert {(t.server, t.work, t.mode, t.repetition) for t in phase1.trials} == {
        (s, w, "closed", 0) for s in cfg.servers for w in ("none", "exp:50")
    }
    ramp = ramp_config(cfg, {GROUP: ("epoll-tpc", 45_000.0)})
    assert ramp is not None
    phase2 = make_plan(ramp, topology, DESIGNS)
    assert {t.server for t in phase2.trials} == {"epoll-tpc"}
    rates = [t.rate for t in phase2.trials]
    assert all(t.mode == "open" and t.work == "none" for t in phase2.trials)
    assert min(rates) < 45_000 < max(rates)  # the ramp crosses the fastest design's capacity


def test_client_bound_calibration_chooses_fixed_rate_at_common_capped_rates(topology):
    main, decision = decide(config(), {GROUP: BOUND}, {GROUP: RAMP}, work_supported=True)
    assert decision.mode == "fixed-rate" and decision.chosen_by == "calibration"
    assert decision.ranked_measure == "server_cpu_us_per_request"
    assert not decision.higher_is_better
    assert "client-bound" in decision.reason and "same rates" in decision.reason
    cap = CLIENT_RATE_CAP_SHARE * 50_000  # the most the client achieved on its ramp
    plan = make_plan(main, topology, DESIGNS)
    by_design: dict[str, set[float]] = {}
    for t in plan.trials:
        assert t.mode == "open" and t.rate is not None
        assert t.rate <= cap  # never above 70% of the client's calibrated capacity
        assert t.rate <= 0.5 * 39_000  # half the smallest closed-loop capacity (tokio-ws)
        by_design.setdefault(t.server, set()).add(t.rate)
    # The same absolute rates for every design, every repetition.
    assert len({frozenset(r) for r in by_design.values()}) == 1
    assert set(by_design) == set(main.servers)
    assert len(plan.trials) == 3 * 3  # designs x repetitions x one rate
    manifest_part = json.loads(json.dumps(decision.to_dict()))
    assert manifest_part["groups"][0]["choice"]["cap"]["rate"] <= cap


def test_a_client_cap_lowers_every_rate(topology):
    # Two fractions; the client is the limit: both rates are capped, never above 70%.
    small_client = [RampPoint(10_000, 10_000), RampPoint(20_000, 15_000, True)]
    main, decision = decide(
        config(rate_fractions=(0.25, 0.9)),
        {GROUP: BOUND},
        {GROUP: small_client},
        work_supported=True,
    )
    rates = {r for _, rs, _ in main.group_rates for r in rs}
    assert rates and max(rates) <= CLIENT_RATE_CAP_SHARE * 15_000
    assert "capped" in decision.reason


def test_explicit_rates_are_lowered_to_the_cap_and_said():
    cfg = config(measure="as-given", mode="open", rates=(5_000.0, 90_000.0))
    main, decision = decide(cfg, {GROUP: BOUND}, {GROUP: RAMP}, work_supported=True)
    assert max(main.rates) <= CLIENT_RATE_CAP_SHARE * 50_000
    assert decision.mode == "as-given" and "lowered" in decision.reason


def test_unbound_calibration_ranks_peak_throughput():
    free = [DesignCapacity(d.design, d.rate, False) for d in BOUND]
    main, decision = decide(config(), {GROUP: free}, {GROUP: RAMP}, work_supported=True)
    assert decision.mode == "closed-loop" and main.mode == "closed"
    assert decision.ranked_measure == "throughput_rps" and decision.higher_is_better


def test_no_common_rate_means_server_bound_work():
    tiny = [DesignCapacity("tokio-ws", 150.0, True), DesignCapacity("tokio-tpc", 160.0, True)]
    main, decision = decide(
        config(servers=("tokio-ws", "tokio-tpc")), {GROUP: tiny}, {GROUP: RAMP}, work_supported=True
    )
    assert decision.mode == "server-bound" and main.mode == "closed"
    (work,) = main.works
    assert work.startswith("fixed:") and "bottleneck" in decision.reason


def test_nothing_measured_is_one_line_error():
    failed = [DesignCapacity("tokio-ws", None), DesignCapacity("tokio-tpc", None)]
    with pytest.raises(HarnessError, match="calibration trial succeeded"):
        decide(config(), {GROUP: failed}, {GROUP: []}, work_supported=True)


# Calibrated runs: a calibration and a ramp before the trials.
harness = functools.partial(run_harness, timeout=240)


def test_measure_conflicting_with_mode_is_refused():
    proc = harness("run", "--dry-run", "--measure", "fixed-rate", "--mode", "open")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--measure as-given" in lines[0]
    proc = harness("run", "--dry-run", "--measure", "fastest")
    assert proc.returncode == 2 and "--measure must be one of" in proc.stderr


def test_calibrated_run_records_mode_reason_and_calibration(tmp_path):
    """A real run on loopback: calibration first, then the chosen measurement; the manifest and
    the report say which and why."""
    require_binaries("loadgen", "epoll-tpc", "tokio-ws", "hiccup")
    out, reports = tmp_path / "results", tmp_path / "reports"
    proc = harness(
        "run", "--servers", "tokio-ws,epoll-tpc", "--cores", "1", "--duration", "1",
        "--warmup", "0.2", "--repeat", "3", "--no-preflight", "--out", str(out),
        "--reports", str(reports),
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    manifest = json.loads((run / "manifest.json").read_text())
    m = manifest["measurement"]
    assert m["measure"] == "auto" and m["chosen_by"] == "calibration"
    assert m["mode"] in ("fixed-rate", "server-bound", "closed-loop") and m["reason"]
    assert manifest["calibration"]["calibrated"] and manifest["calibration"]["trials"] >= 2
    floor = manifest["calibration"]["server_floor"]
    assert floor is None or floor["max_us"] >= floor["p99_us"] >= 0
    cal = pd.read_parquet(run / "calibration" / "trials.parquet")
    closed = cal[cal["mode"] == "closed"]
    assert set(closed["server"]) == {"tokio-ws", "epoll-tpc"}
    group = m["groups"][0]
    client = group["client"]
    trials = pd.read_parquet(run / "trials.parquet")
    if m["mode"] == "fixed-rate":
        rates = trials.groupby("server")["target_rate"].apply(frozenset)
        assert len(set(rates)) == 1, rates  # the same absolute rates for both designs
        if client["rate"]:
            assert trials["target_rate"].max() <= CLIENT_RATE_CAP_SHARE * client["rate"] + 1e-6
    html = (reports / run.name / "index.html").read_text()
    assert 'id="answer-measurement"' in html and 'id="calibration"' in html
    text = re.sub(r"<[^>]+>", " ", html)
    assert "chosen by the calibration" in text
    first = html.index('id="answer"')
    if 'id="answer-verdict"' in html:
        assert html.index('id="answer-verdict"') < html.index('id="answer-measurement"')
        assert html.index('id="answer-verdict"') > first


def test_report_opens_with_the_verdict_and_draws_the_chain_first(tmp_path):
    fake = build_chain_run(tmp_path / "run")
    html = render(analyse(load_run(fake.directory)))
    answer = html.index('id="answer"')
    verdict = html.index('id="answer-verdict"')
    # The first thing under the answer's heading is the ranked verdict with its interval.
    assert answer < verdict < html.index('id="answer-sentences"')
    sentence = re.sub(r"<[^>]+>", "", html[verdict : html.index("</p>", verdict)])
    assert "Thread-per-core (tokio-tpc) against work-stealing (tokio-ws)" in sentence
    assert re.search(r"(faster|slower|within noise|no change) at 1 core", sentence)
    assert re.search(r"\d\.\d\dx \[\d\.\d\d, \d\.\d\d\]", sentence)
    assert "min..max of 3, 75% coverage" in sentence
    # The chain chart is the report's first chart, and its table names each step's factor.
    charts = [m.start() for m in re.finditer(r'<figure class="chart" id="chart-', html)]
    assert html.index('<figure class="chart" id="chart-chain"') == charts[0]
    chain = html[html.index('id="chart-chain"') : html.index("</figure>", charts[0])]
    assert "<img" in chain
    table = html[html.index('id="chain-steps"') :]
    table = table[: table.index("</table>")]
    for factor in (
        "accept: shared-listener → reuseport",
        "scheduler: work-stealing → per-core",
        "runtime: tokio → monoio",
        "io: epoll → uring-oneshot",
    ):
        assert factor in table
    assert "whole chain" in table and table.count("<tr") >= 1 + 2 * (len(CHAIN) - 1 + 1)


def test_a_run_without_a_chain_says_why(tmp_path):
    fake = build_client_bound_run(tmp_path / "run")  # tokio-ws and tokio-tpc only
    html = render(analyse(load_run(fake.directory)))
    chain = html[html.index('id="chart-chain"') :]
    assert "Not drawn: no chain of controlled pairs" in chain[: chain.index("</figure>")]


def test_compare_of_a_slower_work_stealing_design_fails_the_gate(tmp_path):
    """Run B's tokio-ws burns 30 µs more per request (its registry entry adds --work), at the
    same fixed rate: compare says slower and --fail-above 5 exits 1."""
    require_binaries("loadgen", "tokio-ws")
    registry = Path(DEFAULT_REGISTRY).read_text()
    slow = registry.replace(
        "{bin_dir}/tokio-ws --protocol {protocol} --host {host} --port {port} --threads {threads} "
        '--cpus {cpus}"',
        "{bin_dir}/tokio-ws --protocol {protocol} --host {host} --port {port} --threads {threads} "
        '--cpus {cpus} --work fixed:30"',
        1,
    )
    assert slow != registry
    (tmp_path / "slow.toml").write_text(slow)
    runs = []
    for name, reg in (("a", DEFAULT_REGISTRY), ("b", tmp_path / "slow.toml")):
        out = tmp_path / name
        proc = harness(
            "run", "--servers", "tokio-ws", "--cores", "1", "--mode", "open", "--rates", "2000",
            "--duration", "2", "--warmup", "0.5", "--repeat", "3", "--no-preflight",
            "--no-calibrate", "--registry", str(reg), "--out", str(out), "--reports",
            str(tmp_path / f"{name}-reports"),
        )  # fmt: skip
        assert proc.returncode in (0, 1), proc.stdout + proc.stderr
        (run,) = [p for p in out.iterdir() if p.is_dir()]
        runs.append(run)
    ranked = []
    for run in runs:
        t = pd.read_parquet(run / "trials.parquet")
        ok = t[(t["status"] == "ok")]
        instrument = ok[["oversubscribed", "client_bound", "contended"]].fillna(False).any(axis=1)
        ranked.append(int((~instrument).sum()))
    if min(ranked) < 3:
        pytest.skip(f"the machine was too busy: ranked trials A {ranked[0]}, B {ranked[1]} of 3")
    out = tmp_path / "compare.json"
    proc = harness("compare", str(runs[0]), str(runs[1]), "--fail-above", "5", "--json", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "slower" in proc.stdout
    data = json.loads(out.read_text())
    (config,) = data["configurations"]
    assert config["judged_on"] == "cpu per request"
    assert config["cpu_per_request"]["label"] == "slower"  # verdict: "worse" (lower is better)
    assert data["gate"]["failed"] and data["gate"]["triggered"][0]["metric"] == "cpu per request"


def test_a_manifest_plan_repeats_the_calibrated_rates(tmp_path):
    """CI's candidate runs its baseline's manifest: the same absolute rates, no recalibration."""
    main, _ = decide(
        config(servers=("tokio-ws", "tokio-tpc")),
        {GROUP: BOUND[:2]},
        {GROUP: RAMP},
        work_supported=True,
    )
    (rate,) = {r for _, rs, _ in main.group_rates for r in rs}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"plan": {"config": json.loads(json.dumps(vars(main)))}}))
    proc = harness("run", "--dry-run", "--plan", str(manifest))
    assert proc.returncode == 0, proc.stderr
    assert "calibration first" not in proc.stdout
    ids = [line.split(":")[0] for line in proc.stdout.splitlines() if "-echo-" in line]
    assert len(ids) == 2 * 3 and all(i.endswith(f"open{rate:g}-r{i[-1]}") for i in ids)


def test_the_cap_keeps_the_client_below_the_busy_limit():
    """Measurement rule 2: a client core >= 90% busy marks a trial client-bound, so the cap is
    70% of the highest rate the load generator held below that, when its capacity is busier."""
    ramp = [
        RampPoint(20_000, 20_000, False, 0.55),
        RampPoint(40_000, 40_000, False, 0.86),
        RampPoint(60_000, 60_000, False, 0.94),
        RampPoint(80_000, 70_000, True, 0.97),
    ]
    main, decision = decide(config(), {GROUP: BOUND}, {GROUP: ramp}, work_supported=True)
    cap = decision.groups[0].choice.cap
    assert cap.rate == CLIENT_RATE_CAP_SHARE * 40_000
    assert "90% busy" in cap.reason
    assert max(r for _, rs, _ in main.group_rates for r in rs) <= cap.rate
