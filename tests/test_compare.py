"""`harness compare`: verdicts, the --fail-above gate, exports and bad input, on fabricated runs."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from harness.cli import compare
from harness.errors import HarnessError
from harness.plan.cpus import CpuAssignment
from harness.plan.plan import TrialSpec
from harness.run.trial import TrialResult
from harness.store import RunStore, trial_rows

# Repetition-to-repetition jitter of a quiet machine: +/-0.4%, well inside the 2% threshold.
JITTER = (1.000, 1.003, 0.997, 1.004, 0.996)
SERVERS = (("tokio-ws", "work-stealing"), ("tokio-tpc", "thread-per-core"))


def spec(index: int, server: str, family: str, cores: int, rep: int, *, flagged: bool) -> TrialSpec:
    return TrialSpec(
        index=index,
        trial_id=f"{index:04d}-{server}-echo-k{cores}-c64-b64-r{rep}",
        server=server,
        design_family=family,
        io_model="epoll",
        protocol="echo",
        server_cores=cores,
        connections=64,
        size_bytes=64,
        repetition=rep,
        warmup_s=1.0,
        duration_s=4.0,
        timeout_s=2.0,
        cpus=CpuAssignment(server=tuple(range(cores)), client=(cores,), oversubscribed=flagged),
    )


def loadgen(throughput: float, p99_us: float) -> dict:
    window = 4.0
    requests = round(throughput * window)
    return {
        "schema": "loadgen/1",
        "latency_kind": "closed-loop",
        "summary": {
            "requests": requests,
            "errors_total": 0,
            "window_s": window,
            "throughput_rps": throughput,
            "latency_us": {
                "mean": p99_us / 3,
                "p50": p99_us / 3,
                "p90": p99_us / 2,
                "p99": p99_us,
                "p999": p99_us * 1.2,
                "max": p99_us * 2,
            },
        },
        "histogram": {
            "unit": "ns",
            "buckets": [
                {
                    "lower_ns": int(p99_us * 300),
                    "upper_ns": int(p99_us * 300) + 16,
                    "count": requests - requests // 50,
                },
                {
                    "lower_ns": int(p99_us * 1000),
                    "upper_ns": int(p99_us * 1000) + 512,
                    "count": requests // 50,
                },
            ],
        },
    }


def make_run(
    directory: Path,
    *,
    factor: float = 1.0,
    cores: tuple[int, ...] = (1, 2),
    repeat: int = 5,
    flagged: int = 0,
    failed: int = 0,
    platform: dict | None = None,
) -> Path:
    """A run of every SERVERS x cores configuration, `repeat` ranked trials each, throughput
    scaled by `factor` (0.8 = 20% slower) and p99 by 1/factor; plus `flagged` oversubscribed
    and `failed` failed trials per configuration (neither may count)."""
    store = RunStore(directory)
    store.write_manifest({
        "schema_version": 1,
        "run_id": directory.name,
        "plan": {"config": {"duration_s": 4.0, "warmup_s": 1.0}},
        "platform": platform or PLATFORM,
    })  # fmt: skip
    index = 0
    for k in cores:
        for server, family in SERVERS:
            base = 100_000.0 * k * (1.2 if family == "thread-per-core" else 1.0)
            for rep in range(repeat + flagged + failed):
                is_flagged = repeat <= rep < repeat + flagged
                s = spec(index, server, family, k, rep, flagged=is_flagged)
                if rep >= repeat + flagged:
                    result = TrialResult(s, "failed", "server exited with code 1", "t0", "t1")
                else:
                    j = JITTER[rep % len(JITTER)]
                    # a flagged trial is wildly off: it must not move the medians
                    tput = base * factor * j * (0.1 if is_flagged else 1.0)
                    result = TrialResult(s, "ok", "", "t0", "t1",
                                         loadgen=loadgen(tput, 200.0 / factor * j))  # fmt: skip
                for table, rows in trial_rows(directory.name, result).items():
                    store.add(table, rows)
                index += 1
    store.flush()
    return directory


PLATFORM = {
    "kernel": "Linux 6.1.0-18-amd64",
    "machine": "x86_64",
    "hostname": "bench1",
    "rustc": "rustc 1.63.0",
    "cpu_affinity": [0, 1, 2, 3],
    "topology": {"cpus": 4, "physical_cores": 4, "numa_nodes": 1, "smt": False,
                 "cores": [[0], [1], [2], [3]]},
    "git": {"commit": "a" * 40, "dirty": False},
    "pyperf": {"cpu_model_name": "AMD EPYC 7763", "cpu_config": "idle:haltpoll"},
}  # fmt: skip


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="harness compare")
    compare.add_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


def run(*argv: str) -> tuple[int, str]:
    buf = io.StringIO()
    code = compare.run(parse(*argv), Console(file=buf, width=250, soft_wrap=True))
    return code, buf.getvalue()


@pytest.fixture
def runs(tmp_path):
    a = make_run(tmp_path / "a" / "20260101T000000Z")
    same = make_run(tmp_path / "same" / "20260101T010000Z")
    slower = make_run(tmp_path / "minus20" / "20260101T020000Z", factor=0.8)
    return a, same, slower


def test_identical_runs_show_no_change_and_pass_the_gate(runs, tmp_path):
    a, same, _ = runs
    code, out = run(a, same, "--fail-above", "5", "--json", tmp_path / "c.json")
    assert code == 0, out
    data = json.loads((tmp_path / "c.json").read_text())
    assert len(data["configurations"]) == 4
    for c in data["configurations"]:
        assert c["throughput"]["label"] in ("no change", "within noise")
        assert c["p99"]["label"] in ("no change", "within noise")
        assert abs(c["throughput"]["change"]) < 1e-9
        assert c["gate"] == []
    assert data["gate"] == {"failed": False, "triggered": []}
    assert data["platform_differences"] == []
    assert "gate passed" in out and "warning" not in out
    assert "slower" not in out and "faster" not in out


def test_twenty_percent_slower_fails_at_5_passes_at_30(runs, tmp_path):
    a, _, slower = runs
    code, out = run(a, slower, "--fail-above", "5", "--json", tmp_path / "c.json",
                    "--markdown", tmp_path / "c.md")  # fmt: skip
    assert code == 1, out
    data = json.loads((tmp_path / "c.json").read_text())
    for c in data["configurations"]:
        t = c["throughput"]
        assert t["label"] == "slower" and t["verdict"] == "worse"
        assert t["change"] == pytest.approx(-0.2, abs=0.01)
        assert t["ci_high"] < -0.05
        assert t["n_a"] == 5 and t["n_b"] == 5  # flagged and failed trials never count
        assert c["p99"]["label"] == "worse" and c["p99"]["change"] > 0.2
        assert c["gate"] == ["throughput"]  # p99 gates only with --latency
    assert data["gate"]["failed"] and len(data["gate"]["triggered"]) == 4
    assert "gate FAILED: 4 configuration(s)" in out
    assert "tokio-tpc 2 core(s), echo 64 B, 64 conns: throughput -20.0%" in out
    md = (tmp_path / "c.md").read_text()
    assert "**FAILED**" in md and "| **slower** |" in md

    code, out = run(a, slower, "--fail-above", "30")
    assert code == 0, out
    assert "gate passed" in out and "slower" in out  # still reported, just not gated

    code, _ = run(a, slower, "--fail-above", "30", "--latency")
    assert code == 0  # p99 rose 25%: below 30% as well
    code, out = run(a, slower)  # no --fail-above: a report, never a failure
    assert code == 0 and "gate" not in out


def test_latency_gate(runs):
    a, _, slower = runs
    code, out = run(a, slower, "--fail-above", "21", "--latency")
    # throughput -20% does not pass -21%, but p99 +25% lies wholly beyond +21%
    assert code == 1, out
    assert "p99 +25.0%" in out and "throughput -20.0%" not in out.split("gate FAILED")[1]


def test_faster_is_not_a_regression(runs):
    a, _, slower = runs
    code, out = run(slower, a, "--fail-above", "5")
    assert code == 0 and "faster" in out and "slower" not in out


def test_flagged_and_failed_trials_do_not_count(tmp_path):
    a = make_run(tmp_path / "a" / "r1")
    b = make_run(tmp_path / "b" / "r2", flagged=2, failed=1)
    code, out = run(a, b, "--fail-above", "5", "--json", tmp_path / "c.json")
    assert code == 0, out
    data = json.loads((tmp_path / "c.json").read_text())
    for c in data["configurations"]:
        assert c["throughput"]["label"] in ("no change", "within noise")
        b_trials = c["b"]
        assert (b_trials["trials_ranked"], b_trials["trials_flagged"]) == (5, 2)
        assert b_trials["trials_failed"] == 1
    assert "5/0/0 -> 5/2/1" in out


def test_too_few_ranked_trials_is_insufficient_not_a_regression(tmp_path):
    a = make_run(tmp_path / "a" / "r1")
    b = make_run(tmp_path / "b" / "r2", factor=0.5, repeat=2, failed=3)
    code, out = run(a, b, "--fail-above", "5")
    assert code == 0, out
    assert "insufficient data" in out and "B has 2 ranked trial(s)" in out


def test_configurations_in_one_run_only_are_listed(tmp_path):
    a = make_run(tmp_path / "a" / "r1", cores=(1, 2))
    b = make_run(tmp_path / "b" / "r2", cores=(2, 4))
    code, out = run(a, b, "--json", tmp_path / "c.json")
    assert code == 0
    assert "only in A (not compared): tokio-ws 1 core(s), echo 64 B, 64 conns" in out
    assert "only in B (not compared): tokio-tpc 4 core(s), echo 64 B, 64 conns" in out
    data = json.loads((tmp_path / "c.json").read_text())
    assert [c["server_cores"] for c in data["configurations"]] == [2, 2]
    assert sorted(c["server_cores"] for c in data["only_in_a"]) == [1, 1]
    assert sorted(c["server_cores"] for c in data["only_in_b"]) == [4, 4]


def test_no_common_configuration_is_bad_input(tmp_path):
    a = make_run(tmp_path / "a" / "r1", cores=(1,))
    b = make_run(tmp_path / "b" / "r2", cores=(4,))
    with pytest.raises(HarnessError, match="no configuration is in both runs"):
        run(a, b)


def test_platform_differences_are_warned(tmp_path):
    other = {**PLATFORM, "kernel": "Linux 6.8.0", "rustc": None,
             "git": {"commit": "b" * 40, "dirty": True},
             "pyperf": {"cpu_model_name": "Intel Xeon", "cpu_config": "idle:haltpoll"}}  # fmt: skip
    a = make_run(tmp_path / "a" / "r1")
    b = make_run(tmp_path / "b" / "r2", platform=other)
    code, out = run(a, b)
    assert code == 0
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 4, out
    assert "warning: CPU model differs: A AMD EPYC 7763 | B Intel Xeon" in out
    assert "kernel differs" in out and "rustc differs: A rustc 1.63.0 | B unknown" in out
    assert f"git commit differs: A {'a' * 12} | B {'b' * 12} (dirty)" in out


def test_results_root_picks_the_newest_run(tmp_path):
    make_run(tmp_path / "a" / "20260101T000000Z", factor=0.5)
    make_run(tmp_path / "a" / "20260102T000000Z")
    b = make_run(tmp_path / "b" / "20260103T000000Z")
    code, out = run(tmp_path / "a", b, "--fail-above", "5")
    assert code == 0, out
    assert "using the newest, 20260102T000000Z" in out


@pytest.mark.parametrize("which", ["missing", "file", "empty-dir"])
def test_bad_directory_is_one_line_exit_2(tmp_path, capsys, which):
    good = make_run(tmp_path / "good" / "r1")
    bad = tmp_path / "bad"
    if which == "file":
        bad.write_text("x")
    elif which == "empty-dir":
        bad.mkdir()
    with pytest.raises(HarnessError, match="results/<run-id>/"):
        run(good, bad)
    assert compare.main([str(bad), str(good)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("harness: error: A ")
    assert "results/<run-id>/" in err[0]


@pytest.mark.parametrize("argv", [["--fail-above", "-1"], ["--threshold", "x"]])
def test_bad_percentages_are_one_line_exit_2(tmp_path, capsys, argv):
    good = make_run(tmp_path / "good" / "r1")
    assert compare.main([str(good), str(good), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and argv[0] in err[0]


def test_threshold_turns_a_small_change_into_noise(tmp_path):
    a = make_run(tmp_path / "a" / "r1")
    b = make_run(tmp_path / "b" / "r2", factor=0.96)  # 4% slower, tight

    def labels(*options: str) -> set[str]:
        run(a, b, *options, "--json", tmp_path / "c.json")
        configs = json.loads((tmp_path / "c.json").read_text())["configurations"]
        return {c["throughput"]["label"] for c in configs}

    assert labels() == {"slower"}
    assert labels("--threshold", "10") == {"within noise"}


def test_wired_into_the_harness_command(runs):
    """Through `harness compare` once the front end registers it (harness/cli.py)."""
    from harness import cli

    parser = cli.build_parser()
    a, _, slower = runs
    try:
        parser.parse_args(["compare", str(a), str(slower)])
    except HarnessError:
        pytest.skip("harness compare is not registered in harness/cli.py yet")
    assert cli.main(["compare", str(a), str(slower), "--fail-above", "5"]) == 1
    assert cli.main(["compare", str(a), str(a), "--fail-above", "5"]) == 0
    assert cli.main(["compare", str(a), str(a.parent / "nope")]) == 2


def test_configurations_alike_but_for_their_rate_say_why_and_how_to_match():
    from harness.analysis.compare import rate_mismatch

    def key(server: str, load: float | None) -> tuple:
        return (server, "echo", 1, 64, 64, 1, "none", "open" if load else "closed", load)

    only_a = {key("tokio-ws", 34_100.0), key("tokio-tpc", 34_100.0), key("tokio-ws", None)}
    only_b = {key("tokio-ws", 31_250.5), key("tokio-tpc", 31_250.5)}
    why = rate_mismatch(only_a, only_b, Path("results/A"))
    assert why is not None
    assert why.startswith("2 configuration(s) differ only in their open-loop load")
    assert "A at 34,100, B at 31,250.5" in why
    assert "--plan results/A/manifest.json" in why
    assert (
        rate_mismatch({key("tokio-ws", 34_100.0)}, {key("tokio-tpc", 31_250.5)}, Path("A")) is None
    )


def test_calibrated_rates_from_the_same_plan_are_matched_by_plan():
    from harness.analysis.compare import RATE_TOLERANCE, _same_planned_fractions, match_by_plan

    def key(server: str, load: float) -> tuple:
        return (server, "echo", 1, 64, 64, 1, "none", "open", load)

    # Two plain `harness run`s: each calibrated 0.5 of its own capacity (42,900 vs 42,400/s).
    only_a = {key("tokio-ws", 42_900.0), key("tokio-tpc", 42_900.0)}
    only_b = {key("tokio-ws", 42_400.0), key("tokio-tpc", 42_400.0)}
    assert match_by_plan(only_a, only_b) == {
        key("tokio-ws", 42_900.0): key("tokio-ws", 42_400.0),
        key("tokio-tpc", 42_900.0): key("tokio-tpc", 42_400.0),
    }
    # Two fractions each: paired in rate order, the same fraction with the same fraction.
    two_a = {key("tokio-ws", 20_000.0), key("tokio-ws", 40_000.0)}
    two_b = {key("tokio-ws", 19_500.0), key("tokio-ws", 39_000.0)}
    assert match_by_plan(two_a, two_b)[key("tokio-ws", 20_000.0)] == key("tokio-ws", 19_500.0)
    # Beyond the tolerance: not matched (rate_mismatch then names --plan).
    far = 42_900.0 * (1 - RATE_TOLERANCE) * 0.99
    assert match_by_plan({key("tokio-ws", 42_900.0)}, {key("tokio-ws", far)}) == {}

    def manifest(measure: str, fractions: list[float]) -> dict:
        config = {"measure": measure, "rate_fractions": fractions, "group_rates": [[[], [1], []]]}
        return {"plan": {"config": config}}

    assert _same_planned_fractions(manifest("fixed-rate", [0.5]), manifest("fixed-rate", [0.5]))
    assert not _same_planned_fractions(
        manifest("fixed-rate", [0.5]), manifest("fixed-rate", [0.25])
    )
    # Rates given as such (--rates) are the user's own: never matched across values.
    assert not _same_planned_fractions(manifest("as-given", [0.5]), manifest("as-given", [0.5]))
