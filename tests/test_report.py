"""The HTML report and its exports, on synthetic runs written through the real storage path."""

from __future__ import annotations

import html as html_lib
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyperf
import pytest
from fake_run import (
    CLIENT_BOUND,
    FAILED,
    RATE_MISSED,
    RUN_ID,
    build_client_bound_run,
    build_empty_run,
    build_failed_run,
    build_run,
)

from harness.analysis import analyse
from harness.report.answer import advice
from harness.report.charts import CHART_IDS
from harness.report.exports import COMPARISON_COLUMNS, SUMMARY_COLUMNS, write_exports
from harness.report.html import render, write_report
from harness.store import load_run


def text(page: str) -> str:
    """The page's visible text, whitespace collapsed (for sentence checks)."""
    page = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r'src="data:[^"]*"', "", page)
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", page)))


def section(page: str, element_id: str) -> str:
    """The HTML of the element with this id, up to the end of its section."""
    start = page.index(f'id="{element_id}"')
    end = page.find("</section>", start)
    return page[start:end]


def chart(page: str, chart_id: str) -> str:
    start = page.index(f'<figure class="chart" id="{chart_id}">')
    return page[start : page.index("</figure>", start)]


@pytest.fixture(scope="module")
def fake(fake_run):
    return fake_run


@pytest.fixture(scope="module")
def page(fake) -> str:
    return render(analyse.analyse(load_run(fake.directory)))


@pytest.fixture(scope="module")
def exports(fake, tmp_path_factory) -> list[Path]:
    return write_exports(
        analyse.analyse(load_run(fake.directory)), tmp_path_factory.mktemp("report")
    )


# --------------------------------------------------------------------------------------------
# The synthetic run itself


def test_fake_run_has_what_the_report_must_show(fake):
    run = load_run(fake.directory)
    t = run.trials
    assert sorted(t["server"].unique()) == ["epoll-tpc", "tokio-tpc", "tokio-ws"]
    assert sorted(t["server_cores"].unique()) == [1, 2]
    assert sorted(t["repetition"].unique()) == [0, 1, 2]
    assert any(i.endswith(FAILED) for i in fake.failed_ids)
    assert any(i.endswith(CLIENT_BOUND) for i in fake.flagged_ids)
    assert any(i.endswith(RATE_MISSED) for i in fake.flagged_ids)
    assert t.loc[t.trial_id.str.endswith(CLIENT_BOUND), "client_bound"].all()
    assert t.loc[t.trial_id.str.endswith(RATE_MISSED), "rate_missed"].all()
    assert (t["mode"] == "open").sum() > 0 and t["rate_missed"].fillna(False).sum() == 1
    assert not run.workers.empty and not run.timeseries.empty and not run.threads.empty
    assert set(run.latency["kind"]) == {"primary", "uncorrected"}


def test_fake_run_is_deterministic(tmp_path):
    a = load_run(build_run(tmp_path / "a").directory)
    b = load_run(build_run(tmp_path / "b").directory)
    pd.testing.assert_frame_equal(a.trials, b.trials)
    pd.testing.assert_frame_equal(a.latency, b.latency)


# --------------------------------------------------------------------------------------------
# The report


def test_answer_comes_first_with_numbers(page):
    answer = text(section(page, "answer"))
    # "At 1 core on echo 64 B, 64 conns, thread-per-core (tokio-tpc) served 1.18x (1.16-1.19)
    # the requests per second of work-stealing (tokio-ws): faster; ..."
    for cores in ("1 core", "2 cores"):
        pattern = (
            rf"At {cores} on echo 64 B, 64 conns, thread-per-core \(tokio-tpc\) served "
            r"\d+\.\d\dx \(\d+\.\d\d-\d+\.\d\d\) the requests per second of work-stealing "
            r"\(tokio-ws\): (faster|slower|within noise|no change|insufficient data); its "
            r"closed-loop p99 latency was \d+\.\d\dx \(\d+\.\d\d-\d+\.\d\d\)"
        )
        assert re.search(pattern, answer), answer[:2000]
    assert "verdict on thread-per-core's throughput was “faster” in 2 of 2 closed-loop" in answer
    assert page.index('id="answer"') < page.index('id="throughput"')
    # The headline table and the other pairs, in criterion's words.
    assert 'id="pairs-headline"' in page and 'id="pairs-other"' in page
    assert "insufficient data" in section(page, "pairs-other")  # epoll-tpc: 2 ranked at k1
    assert "Fewer than 6 ranked repetitions" in answer


def test_interval_coverage_is_stated(page):
    configurations = text(section(page, "configurations"))
    assert "75% (min-max of 3)" in configurations
    assert "50% (min-max of 2)" in configurations


def test_every_failed_and_flagged_trial_is_listed_with_its_reason(fake, page):
    problems = section(page, "problem-trials")
    for trial_id in fake.failed_ids + fake.flagged_ids:
        assert trial_id in problems, trial_id
    listed = text(problems)
    assert "Segmentation fault" in listed
    assert "client bound: client thread 0 on CPU 0 busy 96%" in listed  # words from its causes
    assert "rate missed: achieved" in listed
    assert listed.count("failed") >= len(fake.failed_ids)


def test_every_chart_is_an_inline_image_with_alt_text(page):
    for chart_id in CHART_IDS:
        fig = chart(page, chart_id)
        assert re.search(
            r'<img class="chart-img" src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', fig
        ), chart_id
        alt = re.search(r'alt="([^"]+)"', fig)
        assert alt and len(alt.group(1)) > 20, chart_id
        assert "<figcaption>" in fig
    # Flagged points are drawn distinctly, and the captions say so.
    assert "Hollow markers are flagged trials" in chart(page, "chart-throughput-cores")
    assert "Dotted lines are flagged trials" in chart(page, "chart-series")
    # Among ranked points, the few flagged ones are named where they are drawn.
    assert "Client-bound (1 trial)" in text(chart(page, "chart-throughput-cores"))
    # A missed rate is the server's own result (issue 14): the trial is ranked, drawn as a cross
    # (not hollow), and the caption says it counts against the design, with its own figure.
    load = text(chart(page, "chart-latency-load"))
    assert "Hollow markers are flagged trials" not in load
    assert "Crosses are ranked trials with a server flag (1 trial)" in load
    assert re.search(
        r"Rate missed \(1 trial\): the server fell behind the offered rate \(it answered "
        r"\d+\.\d% of the requests due\), below 99%: that counts against the design",
        load,
    ), load


def test_report_is_self_contained(page):
    assert "http://" not in page and "https://" not in page
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert "<script" not in page


def test_methods_platform_doctor_and_reproduction(page):
    methods = text(section(page, "methods"))
    assert "2.0 s of warm-up" in methods and "10.0 s of measurement" in methods
    assert "repeated 3 times" in methods
    assert "tokio-ws, tokio-tpc, epoll-tpc" in methods  # the interleaving order
    assert "intended send time" in methods and "closed-loop" in text(page)
    assert "HdrHistogram" in methods
    assert "14, 15" in section(page, "cpu-assignment")
    platform = text(section(page, "platform"))
    assert "AMD EPYC 7443P" in platform and "Linux 6.8.0-45-generic" in platform
    assert "turbo" in text(section(page, "doctor")) and "warning" in section(page, "doctor")
    reproduce = text(section(page, "reproduce"))
    assert "harness run --servers tokio-ws,tokio-tpc,epoll-tpc" in reproduce
    assert f"harness run --plan results/{RUN_ID}/manifest.json" in reproduce
    assert "f5070e9d2c1b0a9e8f7d6c5b4a3928171605f4e3" in reproduce
    assert "uncommitted changes" in reproduce


def test_stability_warnings_are_listed(page):
    warnings = text(section(page, "stability-warnings"))
    assert "only 2 repetition(s)" in warnings


def test_closed_only_run_says_why_open_loop_chart_is_missing(tmp_path):
    fake = build_run(tmp_path / "run", fractions=())
    page = render(analyse.analyse(load_run(fake.directory)))
    missing = chart(page, "chart-latency-load")
    assert "<img" not in missing and "no open-loop trials in this run" in missing
    assert "<img" in chart(page, "chart-throughput-cores")


def test_flagged_trials_have_their_own_row_in_the_table(fake, page):
    run = load_run(fake.directory)
    t = run.trials
    cb = t[t.trial_id.str.endswith(CLIENT_BOUND)].iloc[0]
    configurations = text(section(page, "summary"))
    # epoll-tpc at 2 cores: 2 ranked repetitions and one client-bound, shown beside them.
    assert "flagged, not ranked: median over 1 trial (client-bound 1)" in configurations
    assert f"{cb.throughput_rps:,.0f}" in configurations


def no_data(page: str, chart_id: str) -> str:
    fig = chart(page, chart_id)
    assert "<img" not in fig, chart_id
    return text(fig)


def test_run_with_only_client_bound_trials_draws_them_as_flagged(tmp_path):
    """A 2-CPU machine: every trial client-bound, so nothing is ranked, but every number was
    measured and is drawn, marked as flagged; the answer says what to do about it."""
    fake = build_client_bound_run(tmp_path / "run")
    run = load_run(fake.directory)
    assert len(fake.flagged_ids) == len(fake.trial_ids) == 6
    assert run.trials["client_bound"].all() and run.trials["unsteady"].sum() == 1
    page = render(analyse.analyse(run))
    whole = text(page)

    for chart_id in (
        "chart-throughput-cores",
        "chart-latency-percentiles",
        "chart-efficiency",
        "chart-ctxt",
        "chart-series",
    ):
        fig = chart(page, chart_id)
        assert '<img class="chart-img"' in fig and "Not drawn" not in fig, chart_id
        caption = text(fig[fig.index("<figcaption>") :])
        assert "flagged trials" in caption and "never ranked" in caption, chart_id
        assert "Client-bound (6 trials): the single load-generator core was" in caption, chart_id
        assert "unsteady (1 trial)" in caption, chart_id
    assert "No closed-loop trial could be ranked" in text(chart(page, "chart-throughput-cores"))
    assert "Dotted curves" in text(chart(page, "chart-latency-percentiles"))

    # What is not drawn says the true reason; nothing claims /proc was unreadable.
    assert "every successful closed-loop trial was flagged (client-bound, unsteady)" in no_data(
        page, "chart-ratios"
    )
    assert "ran one worker (1 server core)" in no_data(page, "chart-worker-balance")
    assert "no open-loop trials in this run" in no_data(page, "chart-latency-load")
    assert "/proc" not in " ".join(re.findall(r'class="no-data">([^<]*)<', page))
    assert "could not read" not in whole and "no /proc thread data" not in whole

    # The answer: why nothing is ranked, and what to do about it.
    answer = text(section(page, "answer"))
    assert "No pair of designs can be ranked in this run" in answer
    assert "every successful trial was flagged (client-bound 6, unsteady 1)" in answer
    assert "What to do: the load generator could not outrun the server" in answer
    for option in ("--client-cpus", "--mode open --rate-sweep 0.5,0.8", "--work fixed:20"):
        assert option in answer, option
    assert "tokio-tpc: 0 ranked of 3 trials, 3 flagged (client-bound 3)" in answer

    # The table: ranked columns stay n/a, the flagged medians are shown beside them.
    configurations = text(section(page, "summary"))
    t = run.trials
    for server in ("tokio-ws", "tokio-tpc"):
        median = t.loc[t.server == server, "throughput_rps"].median()
        assert f"{median:,.0f}" in configurations, server
    assert configurations.count("flagged, not ranked: median over 3 trials") == 2
    assert "n/a" in configurations


@pytest.mark.parametrize(
    ("flag", "words"),
    [
        ("client_bound", "--client-cpus"),
        ("contended", "harness doctor"),
        ("oversubscribed", "--cores within the machine"),
        ("unsteady", "--duration / --warmup"),
        ("rate_missed", "lower the offered rates"),
    ],
)
def test_advice_follows_the_dominant_flag(flag, words):
    columns = ("oversubscribed", "contended", "client_bound", "rate_missed", "unsteady")
    trials = pd.DataFrame({c: [c == flag] * 3 for c in columns}).assign(flagged=True)
    trials.loc[0, "unsteady" if flag != "unsteady" else "contended"] = True  # a minority flag
    assert words in (advice(trials) or "")


def test_empty_run(tmp_path):
    fake = build_empty_run(tmp_path / "run")
    path = write_report(
        analyse.analyse(load_run(fake.directory)), tmp_path / "report" / "index.html"
    )
    page = path.read_text()
    assert "No pair of designs can be ranked in this run" in page
    assert "interrupted before its first trial finished" in page
    for chart_id in CHART_IDS:
        fig = chart(page, chart_id)
        assert "<img" not in fig and 'class="no-data"' in fig, chart_id
    assert "no platform checks" in page  # no doctor table in this older manifest
    assert "http://" not in page and "https://" not in page


def test_run_with_only_failed_trials(tmp_path):
    fake = build_failed_run(tmp_path / "run")
    page = render(analyse.analyse(load_run(fake.directory)))
    answer = text(section(page, "answer"))
    assert f"all {len(fake.failed_ids)} trials failed" in answer
    assert "the server did not start (12)" in answer  # grouped by kind (`failure`), not text
    problems = section(page, "problem-trials")
    for trial_id in fake.failed_ids:
        assert trial_id in problems
    assert "<img" not in page
    assert f"all {len(fake.failed_ids)} closed-loop trials failed" in no_data(
        page, "chart-efficiency"
    )
    assert "/proc" not in " ".join(re.findall(r'class="no-data">([^<]*)<', page))


def test_analyse_labels_match_summaries(fake):
    run = load_run(fake.directory)
    t = analyse.label_trials(run.trials)
    summaries = analyse.summarise(run.trials, run.latency, run.workers)
    keys = {(s.server, s.server_cores, s.label) for s in summaries}
    assert set(zip(t["server"], t["server_cores"], t["label"], strict=True)) == keys


# --------------------------------------------------------------------------------------------
# Exports


def test_exports_are_written_and_parse(fake, exports):
    names = sorted(p.name for p in exports)
    assert names == ["comparisons.csv", "pyperf.json", "summary.csv", "summary.md"]
    run = load_run(fake.directory)
    summaries = analyse.summarise(run.trials, run.latency, run.workers)
    directory = exports[0].parent

    summary = pd.read_csv(directory / "summary.csv")
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert len(summary) == len(summaries)
    row = summary[
        (summary.server == "tokio-ws") & (summary.server_cores == 1) & (summary["mode"] == "closed")
    ].iloc[0]
    assert row.trials_ranked == 3 and row.throughput_ci_method == "range"
    assert row.throughput_ci_low <= row.throughput_rps <= row.throughput_ci_high

    comparisons = pd.read_csv(directory / "comparisons.csv")
    assert list(comparisons.columns) == list(COMPARISON_COLUMNS)
    headline = comparisons[comparisons.headline & (comparisons["mode"] == "closed")]
    assert set(headline.throughput_verdict) == {"faster"}

    md = (directory / "summary.md").read_text()
    assert md.startswith(f"# Run {RUN_ID}")
    assert "|:---|:---|:---|---:|" in md
    assert md.count("\n| ") == len(summaries) + 1  # header + one line per configuration
    assert "seconds per request" in md


def test_pyperf_export_holds_seconds_per_request(fake, exports):
    suite = pyperf.BenchmarkSuite.load(str(exports[0].parent / "pyperf.json"))
    names = suite.get_benchmark_names()
    assert "tokio-ws/echo-64B-c64/k1" in names
    assert "tokio-tpc/echo-64B-c64-open0.5x/k2/p99" in names
    bench = suite.get_benchmark("tokio-ws/echo-64B-c64/k1")
    assert bench.get_nrun() == 3 and bench.get_loops() == 1
    assert bench.get_unit() == "second"
    run = load_run(fake.directory)
    t = run.trials
    ranked = t[(t.server == "tokio-ws") & (t.server_cores == 1) & (t["mode"] == "closed")]
    expected = sorted(1.0 / ranked.throughput_rps)
    assert sorted(bench.get_values()) == pytest.approx(expected)
    assert bench.get_metadata()["run_id"] == RUN_ID
    assert bench.get_metadata()["cpu_model_name"] == "AMD EPYC 7443P 24-Core Processor"
    # The client-bound trial is not a value of its configuration.
    epoll = suite.get_benchmark("epoll-tpc/echo-64B-c64/k2")
    assert epoll.get_nrun() == 2


def test_pyperf_compare_to_two_runs(exports, tmp_path):
    other = build_run(tmp_path / "other", seed=8)
    other_files = write_exports(
        analyse.analyse(load_run(other.directory)), tmp_path / "other-report"
    )
    a = exports[0].parent / "pyperf.json"
    b = next(p for p in other_files if p.name == "pyperf.json")
    out = subprocess.run(
        [sys.executable, "-m", "pyperf", "compare_to", str(a), str(b), "--table"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "echo-64B-c64" in out.stdout


def test_exports_of_a_run_with_only_failed_trials(tmp_path):
    fake = build_failed_run(tmp_path / "run")
    written = write_exports(analyse.analyse(load_run(fake.directory)), tmp_path / "out")
    assert sorted(p.name for p in written) == ["comparisons.csv", "summary.csv", "summary.md"]
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert (summary.trials_failed > 0).all() and summary.throughput_rps.isna().all()
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "Not written: no configuration has a ranked trial." in md
    assert "Configurations left out of pyperf.json" in md and "tokio-ws, echo 64 B" in md


def test_exports_of_an_empty_run(tmp_path):
    fake = build_empty_run(tmp_path / "run")
    write_exports(analyse.analyse(load_run(fake.directory)), tmp_path / "out")
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert summary.empty and list(summary.columns) == list(SUMMARY_COLUMNS)
    assert not (tmp_path / "out" / "pyperf.json").exists()
