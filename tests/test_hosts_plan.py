"""Planning and merging across hosts, the pure parts (issue 10; docs/multi-host.md): CPUs from
each host's topology, connections and rate shared by client CPUs, the options and plan keys,
and the trial's document merged from the hosts' (counts added, never percentiles averaged)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness.analysis import histogram
from harness.errors import HarnessError
from harness.plan import hosts_plan
from harness.plan.config import RUN_HELP, run_config
from harness.plan.designs import DEFAULT_REGISTRY, load_registry
from harness.plan.plan import make_plan
from harness.plan.topology import Cpu, Topology
from harness.run.host_merge import merge_reports

A, B, S = "bench@10.0.0.3", "bench@10.0.0.4", "bench@10.0.0.2"


def topo(cores: int, smt: bool = False) -> Topology:
    """cores physical cores; with smt, CPU i and i + cores are siblings."""
    cpus = [Cpu(i, 0, i, 0) for i in range(cores)]
    if smt:
        cpus += [Cpu(i + cores, 0, i, 0) for i in range(cores)]
    return Topology(tuple(cpus))


def test_hosts_are_checked_and_spelled_canonically() -> None:
    assert hosts_plan.check_hosts("local", ()) == ("local", ("local",))
    assert hosts_plan.check_hosts(S, (A, B)) == (S, (A, B))
    assert hosts_plan.check_hosts("bench@10.0.0.2:22", (A,)) == (S, (A,))
    assert hosts_plan.check_hosts(S, ()) == (S, ("local",))  # load from this machine
    assert hosts_plan.check_hosts("local", (A, B)) == ("local", (A, B))
    for server, clients, words in [
        (S, (A, A), "twice"),
        (S, (S, A), "both the server host and a client host"),
        ("local", ("local", A), "both the server host and a client host"),
        (S, ("bad host",), r"user@name\[:port\]"),
    ]:
        with pytest.raises(HarnessError, match=words) as err:
            hosts_plan.check_hosts(server, clients)
        assert "\n" not in str(err.value)


def test_server_cores_come_from_the_server_host_not_this_machine() -> None:
    big = topo(16, smt=True)
    assert hosts_plan.server_assignment(big, S, 16) == tuple(range(16))
    assert hosts_plan.server_assignment(big, S, 2) == (14, 15)  # the high end, one per core
    with pytest.raises(HarnessError, match=f"server host {S}.*--cores 16 or fewer"):
        hosts_plan.server_assignment(big, S, 17)
    assert len(hosts_plan.server_assignment(topo(2), S, 4, oversubscribe=True)) == 4


def test_client_cpus_whole_cores_first_and_capped() -> None:
    assert hosts_plan.client_cpus(topo(4, smt=True), None) == (0, 1, 2, 3, 4, 5, 6, 7)
    assert hosts_plan.client_cpus(topo(4, smt=True), 5) == (0, 1, 2, 3, 4)


def test_connections_and_rate_shared_by_client_cpus() -> None:
    layout = hosts_plan.layout(S, topo(16), {A: topo(4), B: topo(2)}, None)
    shares = layout.shares(64, 90_000.0)
    assert [(s.host, len(s.cpus), s.connections) for s in shares] == [(A, 4, 43), (B, 2, 21)]
    assert sum(s.rate or 0 for s in shares) == pytest.approx(90_000.0)
    assert shares[0].rate == pytest.approx(60_000.0)
    # Fewer connections than CPUs: a thread per connection, the rate follows the threads used.
    few = layout.shares(3, 300.0)
    assert [(s.connections, s.threads) for s in few] == [(2, 2), (1, 1)]
    assert [s.rate for s in few] == pytest.approx([200.0, 100.0])
    assert layout.shares(8, None)[0].rate is None
    with pytest.raises(HarnessError, match="fewer than the 2 client hosts"):
        layout.shares(1, None)
    assert hosts_plan.split_counts(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}


def _args(**given: object) -> argparse.Namespace:
    values = {flag.replace("-", "_"): None for flag in RUN_HELP}
    values.update({"profile": None, "plan": None, "oversubscribe": None, **given})
    return argparse.Namespace(**values)


def test_options_and_plan_keys(tmp_path: Path) -> None:
    designs = load_registry(DEFAULT_REGISTRY)
    config, _ = run_config(
        _args(server_host=S, client_host=[A, f"{B}"], servers="epoll-tpc", cores="16"),
        designs,
        topo(2),
    )
    assert (config.server_host, config.client_hosts) == (S, (A, B))
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(
        f'server_host = "{S}"\nclient_hosts = ["{A}", "{B}"]\nremote_bin = "/opt/loadgen"\n'
        'servers = ["epoll-tpc"]\ncores = [16]\n'
    )
    config, source = run_config(_args(plan=plan_file), designs, topo(2))
    assert (config.server_host, config.client_hosts, config.remote_bin) == (
        S,
        (A, B),
        "/opt/loadgen",
    )
    assert source == str(plan_file)
    # --cores 16 is planned on the server host's 16 cores, whatever this machine has (2).
    layout = hosts_plan.layout(S, topo(16), {A: topo(4), B: topo(4)}, 2)
    plan = make_plan(config, topo(2), designs, assign=hosts_plan.assigner(layout, topo(16), False))
    (t, *_) = plan.trials
    assert t.cpus.server == tuple(range(16))
    assert t.cpus.client == (0, 1, 0, 1) and not t.cpus.oversubscribed
    assert f"{A} 0,1" in t.cpus.note and f"{B} 0,1" in t.cpus.note


def _two_client_spec():
    """One open-loop trial of epoll-tpc with a client thread on each of two hosts (CPU 0)."""
    from harness.plan.cpus import CpuAssignment
    from harness.plan.plan import TrialSpec

    return TrialSpec(
        index=0, trial_id="t", server="epoll-tpc", design_family="thread-per-core",
        io_model="epoll", protocol="echo", server_cores=1, connections=8, size_bytes=64,
        repetition=0, warmup_s=0.5, duration_s=2.0, timeout_s=2.0,
        cpus=CpuAssignment((1,), (0, 0), False), mode="open", rate=200.0,
    )  # fmt: skip


def _doc(values_ns: list[int], requests: int, interval_requests: list[int]) -> dict:
    hist = histogram.record(values_ns)
    buckets = [{"lower_ns": lo, "upper_ns": hi, "count": n} for lo, hi, n in hist]
    lat = {"min": min(values_ns) / 1e3, "mean": sum(values_ns) / len(values_ns) / 1e3,
           "max": max(values_ns) / 1e3}  # fmt: skip
    return {
        "schema": "loadgen/1",
        "config": {"connections": 4, "threads": 1, "rate": 100.0, "cpus": [0], "interval_ms": 1000},
        "latency_kind": "open-loop-corrected",
        "summary": {
            "requests": requests,
            "errors_total": 0,
            "errors": {"timeout": 0},
            "window_s": 2.0,
            "throughput_rps": requests / 2,
            "latency_us": lat,
            "service_latency_us": lat,
            "target_rate": 100.0,
            "scheduled_rate": 100.0,
            "sent_rate": 100.0,
            "schedule_lag_us": {"p50": 1.0, "p99": 2.0, "max": 3.0},
            "client_bound": False,
            "client_limits": [],
            "failed": 0,
            "censored": 0,
            "censored_latency_us": None,
            "scheduled": {"scheduled": requests, "answered": requests, "failed": 0, "censored": 0},
        },
        "histogram": {"buckets": buckets},
        "service_histogram": {"buckets": buckets},
        "censored_histogram": {"buckets": []},
        "series": [
            {"interval": i, "start_s": float(i), "requests": n, "errors": 0}
            for i, n in enumerate(interval_requests)
        ],
        "client_cpu": {"user_s": 0.1, "system_s": 0.2, "threads": [{"thread": 0}]},
        "hiccup": None,
    }


def test_merged_document_adds_counts_and_reads_percentiles_from_the_sum() -> None:
    fast = _doc([100_000] * 99 + [200_000], 100, [50, 50])
    slow = _doc([5_000_000] * 20, 20, [10, 10])
    s = 1_000_000_000
    merged = merge_reports({A: fast, B: slow}, {A: 0, B: 0})
    m = merged["summary"]
    assert m["requests"] == 120 and m["target_rate"] == 200.0
    total = sum(b["count"] for b in merged["histogram"]["buckets"])
    assert total == 120
    # 20 of 120 requests took 5 ms: the merged p99 is 5 ms; an average of the hosts' p99s
    # (about 2.6 ms) is what neither host saw.
    assert m["latency_us"]["p99"] == pytest.approx(5000, rel=0.001)
    assert m["latency_us"]["max"] == pytest.approx(5000)
    assert m["latency_us"]["mean"] == pytest.approx((99 * 100 + 200 + 20 * 5000) / 120)
    assert m["throughput_rps"] == pytest.approx(60.0)  # 50 + 10 per second, both windows alike
    assert [r["requests"] for r in merged["series"]] == [60, 60]
    assert merged["config"]["connections"] == 8 and merged["config"]["threads"] == 2
    assert set(merged["hosts"]["per_host"]) == {A, B}
    # A host that started one interval later: only the common window counts.
    late = merge_reports({A: fast, B: slow}, {A: 0, B: s})
    assert late["hosts"]["common_window_ns"] == [s, 2 * s]
    assert late["summary"]["throughput_rps"] == pytest.approx(50 + 10)


def test_rows_keep_each_hosts_histogram_and_series_apart() -> None:
    from harness.run.multihost import HostsTrialResult
    from harness.run.trial import TrialResult
    from harness.store.rows import trial_rows

    spec = _two_client_spec()
    fast = _doc([100_000] * 100, 100, [50, 50])
    slow = _doc([5_000_000] * 20, 20, [10, 10])
    merged = merge_reports({A: fast, B: slow}, {A: 0, B: 0})
    result = HostsTrialResult(spec, "ok", "", "s", "e", loadgen=merged, server_host=S,
                              per_host={A: fast, B: slow})  # fmt: skip
    rows = trial_rows("run", result)
    (trial,) = rows["trials"]
    assert (trial["server_host"], trial["client_hosts"]) == (S, f"{A},{B}")
    assert trial["client_cpus"] == f"{A}=0;{B}=0"
    assert trial["requests"] == 120
    primary = [r for r in rows["latency"] if r["kind"] == "primary"]
    assert {r["client_host"] for r in primary} == {A, B}
    assert sum(r["count"] for r in primary) == 120  # the rows add up to the merged histogram
    assert [(r["client_host"], r["requests"]) for r in rows["timeseries"]] == [
        (A, 50), (A, 50), (B, 10), (B, 10)
    ]  # fmt: skip
    # One machine: the same columns, every row "local".
    alone = trial_rows("run", TrialResult(spec, "ok", "", "s", "e", loadgen=fast))
    assert alone["trials"][0]["server_host"] == alone["trials"][0]["client_hosts"] == "local"
    assert alone["trials"][0]["client_cpus"] == "0,0"
    assert {r["client_host"] for r in alone["latency"] + alone["timeseries"]} == {"local"}


def test_runs_across_hosts_do_not_calibrate_on_this_machine() -> None:
    import io
    from dataclasses import replace

    from rich.console import Console

    from harness.session.hosts import without_calibration

    designs = load_registry(DEFAULT_REGISTRY)
    config, _ = run_config(_args(server_host=S, servers="epoll-tpc"), designs, topo(2))
    assert config.measure == "auto"
    quiet = Console(file=io.StringIO())
    plain = without_calibration(config, quiet)
    assert (plain.measure, plain.calibrate) == ("closed-loop", False)
    opened = without_calibration(replace(config, mode="open", rates=(1000.0,)), quiet)
    assert (opened.measure, opened.calibrate) == ("as-given", False)
    with pytest.raises(HarnessError, match="--measure fixed-rate needs a calibration"):
        without_calibration(replace(config, measure="fixed-rate"), quiet)


def test_a_trial_across_hosts_is_rebuilt_from_its_raw_record(tmp_path: Path) -> None:
    """harness repair / --resume rebuild rows from raw/: per-host rows come back the same."""
    from harness.run.multihost import HostsTrialResult
    from harness.store.raw import from_record, to_record
    from harness.store.rows import trial_rows

    spec = _two_client_spec()
    per_host = {A: _doc([100_000] * 10, 10, [5, 5]), B: _doc([200_000] * 4, 4, [2, 2])}
    merged = merge_reports(per_host, {A: 0, B: 0})
    result = HostsTrialResult(spec, "ok", "", "s", "e", loadgen=merged, server_host=S,
                              per_host=per_host)  # fmt: skip
    import json

    record = json.loads(json.dumps(to_record("run", result, 0, tmp_path)))
    back = from_record(tmp_path, record)
    assert isinstance(back, HostsTrialResult) and back.server_host == S
    assert trial_rows("run", back) == trial_rows("run", result)
