"""The monoio-2021 profile, the published-beside-measured and scaling sections, `harness bundle`
and `harness publish` (docs/publish.md, docs/monoio-2021.md).

Planning tests use saved topologies (a 16-CPU machine shown here). Everything else runs on real
runs made here with short trials (real servers on loopback, our load generator): no figure in
these tests is made up; they check what is shown and how it is labelled, never a value.
"""

from __future__ import annotations

import functools
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import BIN_DIR, build_sysfs, require_binaries
from helpers import one_error_line, run_harness

# Third-party warnings are test_command_line's business; here they would only be noise.
QUIET = {"PYTHONWARNINGS": "ignore"}
harness = functools.partial(run_harness, env=QUIET, timeout=60)
DESIGNS = ("tokio-ws", "tokio-tpc", "glommio-tpc", "monoio-tpc")


# --------------------------------------------------------------------------------------------
# Planning on a 16-CPU machine, shown here


def _trial_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line[:4].isdigit()]


def test_profile_plans_on_a_saved_16_cpu_topology(tmp_path: Path) -> None:
    saved = tmp_path / "manifest.json"  # what another machine's run stored
    cores = [[i, i + 8] for i in range(8)]  # 8 physical cores with SMT: 16 CPUs
    saved.write_text(json.dumps({"platform": {"topology": {"cores": cores}}}))
    proc = harness("run", "--profile", "monoio-2021", "--dry-run", "--topology", str(saved))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # 8 physical cores: 1 and 4 server cores fit; 8 and 16 leave no core for the client.
    assert "left out --cores 16" in out and "left out --cores 8" in out
    lines = _trial_lines(out)
    assert {line.split("-echo-")[1].split("-")[0] for line in lines} == {"k1", "k4"}
    # 400, 520, 600 connections per server core, both message sizes, every design.
    assert any("-k4-c2400-b100-" in line for line in lines)
    assert any("-k1-c520-b1024-" in line for line in lines)
    assert {line.split("-")[1] + "-" + line.split("-")[2] for line in lines} == set(DESIGNS)
    # monoio's 4 client CPUs per server core where they are free, every free one otherwise.
    k1 = next(line for line in lines if "-k1-" in line)
    assert "client cpus [0, 1, 2, 3]" in k1
    k4 = next(line for line in lines if "-k4-" in line)
    assert "client cpus [0, 1, 2, 3, 8, 9, 10, 11]" in k4  # whole cores, then siblings


def test_profile_plans_on_16_physical_cores(tmp_path: Path) -> None:
    sysfs = build_sysfs(tmp_path / "cpu", [(i, 0, i, 0) for i in range(16)])
    proc = harness(
        "run",
        "--profile",
        "monoio-2021",
        "--dry-run",
        env={**QUIET, "HARNESS_SYSFS_CPU": str(sysfs)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "left out --cores 16: --cores 16 needs 17 CPUs" in proc.stdout
    assert "left out --cores 8" not in proc.stdout
    ks = {line.split("-echo-")[1].split("-")[0] for line in _trial_lines(proc.stdout)}
    assert ks == {"k1", "k4", "k8"}


def test_profile_with_oversubscribe_runs_every_core_count_marked(tmp_path: Path) -> None:
    sysfs = build_sysfs(tmp_path / "cpu", [(i, 0, i, 0) for i in range(16)])
    proc = harness(
        "run", "--profile", "monoio-2021", "--dry-run", "--oversubscribe", "--repeat", "1",
        env={**QUIET, "HARNESS_SYSFS_CPU": str(sysfs)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    k16 = [line for line in _trial_lines(proc.stdout) if "-k16-" in line]
    assert k16 and all("OVERSUBSCRIBED" in line for line in k16)


def test_nothing_fits_is_one_line(tmp_path: Path) -> None:
    saved = tmp_path / "one.json"
    saved.write_text(json.dumps({"cores": [[0]]}))
    line = one_error_line(
        harness("run", "--profile", "monoio-2021", "--dry-run", "--topology", str(saved))
    )
    assert "no core count of [1, 4, 8, 16] fits" in line and "--oversubscribe" in line


def test_topology_is_for_dry_runs_and_must_be_one(tmp_path: Path) -> None:
    saved = tmp_path / "t.json"
    saved.write_text(json.dumps({"cores": [[0], [1]]}))
    assert "--dry-run" in one_error_line(harness("run", "--topology", str(saved)))
    saved.write_text("{}")
    assert "not a saved topology" in one_error_line(
        harness("run", "--dry-run", "--topology", str(saved))
    )


# --------------------------------------------------------------------------------------------
# Real runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_binaries("loadgen", *DESIGNS)
    root = tmp_path_factory.mktemp("runs")
    two = build_sysfs(root / "cpu", [(0, 0, 0, 0), (1, 0, 1, 0)])
    common = ["--repeat", "2", "--duration", "1", "--warmup", "0.3", "--no-preflight",
              "--bin-dir", str(BIN_DIR), "--out", str(root / "results"),
              "--reports", str(root / "reports")]  # fmt: skip
    made = {}
    for name, argv in {
        # The profile, small (16 connections per core, 100 B only), on a 2-CPU topology (CPUs
        # 0 and 1, which every machine has): 1 core fits, 4, 8 and 16 are left out.
        "profile": ["--profile", "monoio-2021", "--size", "100",
                    "--connections-per-core", "16"],
        # Two core counts (2 is oversubscribed on a 2-CPU machine, and so marked).
        "scaling": ["--servers", "tokio-ws,tokio-tpc", "--cores", "1,2", "--oversubscribe",
                    "--connections", "16", "--measure", "closed-loop"],
    }.items():  # fmt: skip
        before = set((root / "results").glob("*")) if (root / "results").is_dir() else set()
        proc = harness(
            "run", *argv, *common, env={**QUIET, "HARNESS_SYSFS_CPU": str(two)}, timeout=600
        )
        assert proc.returncode in (0, 1), proc.stderr  # 1: a failed trial, stored
        (made[name],) = set((root / "results").glob("*")) - before
    return made


def _report(run: Path) -> str:
    return (run.parent.parent / "reports" / run.name / "index.html").read_text()


def test_profile_report_puts_published_beside_measured(runs: dict[str, Path]) -> None:
    page = _report(runs["profile"])
    assert '<section id="published">' in page
    section = page[page.index('<section id="published">') :]
    section = section[: section.index("</section>")]
    # Their figures, with source and method: the data file's, shown as published.
    assert "205,726" in section and "232,888" in section  # 1 core, 100 B: tokio, monoio
    assert "1.13x" in section  # their monoio / tokio at 1 core
    assert "raw_data.txt" in section and "best QPS" in section
    # 4, 8 and 16 cores were not run here: said, not a number.
    assert section.count("machine too small") >= 3
    # Ours at 1 core: a median, or why there is none (flags).
    manifest = json.loads((runs["profile"] / "manifest.json").read_text())
    assert manifest["plan"]["config"]["published"] == "monoio-2021"
    assert manifest["plan"]["config"]["connections_per_core"] == [16]
    assert {k for k, _ in manifest["plan"]["dropped_cores"]} == {4, 8, 16}
    assert 'id="published-latency"' in section and "p99.9" in section
    # At one core the work-stealing verdict is the price of stealing: said.
    assert 'id="stealing-note"' in page and "nobody to steal from" in page


def test_scaling_section_for_several_core_counts(runs: dict[str, Path]) -> None:
    page = _report(runs["scaling"])
    assert '<section id="scaling">' in page
    section = page[page.index('<section id="scaling">') :]
    section = section[: section.index("</section>")]
    assert "T(N) / (N x T(1))" in section
    for design in ("tokio-ws", "tokio-tpc"):
        assert f'<td class="l">{design}</td>' in section
    # 2 cores on 2 CPUs with the client: oversubscribed, so not a ranked figure.
    assert "flagged, not ranked" in section


@pytest.fixture(scope="module")
def bundle(
    runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`harness bundle` of the profile run, once for the module: the archive and the command."""
    out = tmp_path_factory.mktemp("bundle") / "run.tar.gz"
    return out, harness("bundle", str(runs["profile"]), "-o", str(out), timeout=300)


@pytest.fixture(scope="module")
def site(
    runs: dict[str, Path],
    bundle: tuple[Path, subprocess.CompletedProcess[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`harness publish` over the bundle and the scaling run's directory, once for the module
    (read by the site's checks and by the browser): the site and the command."""
    archive, bundled = bundle
    assert bundled.returncode == 0, bundled.stderr
    out = tmp_path_factory.mktemp("published") / "site"
    return out, harness("publish", str(archive), str(runs["scaling"]), "-o", str(out), timeout=600)


def test_bundle_holds_the_run_and_its_report(
    runs: dict[str, Path], bundle: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    out, proc = bundle
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(out) as tar:
        names = tar.getnames()
    run_id = runs["profile"].name
    for want in ("manifest.json", "trials.parquet", "latency.parquet", "report/index.html"):
        assert f"{run_id}/{want}" in names
    assert any(n.startswith(f"{run_id}/raw/") and n.endswith(".loadgen.json") for n in names)


def test_publish_over_a_bundle_and_a_directory(
    runs: dict[str, Path],
    bundle: tuple[Path, subprocess.CompletedProcess[str]],
    site: tuple[Path, subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    (published, proc), (archive, _) = site, bundle
    assert proc.returncode == 0, proc.stderr
    page = (published / "index.html").read_text()
    # A fingerprint per machine, each run's page, the ratio table from one query.
    for row in ("CPU model", "topology", "kernel", "virtualisation", "rustc", "runtimes"):
        assert f'<th class="l">{row}</th>' in page
    pages = sorted(p.parent.name for p in (published / "runs").glob("*/index.html"))
    assert len(pages) == 2 and all(f"runs/{p}/index.html" in page for p in pages)
    assert 'id="ratio-table"' in page and "tokio-tpc / tokio-ws" in page
    assert "oversubscribed" in page  # the --oversubscribe run is labelled
    assert "nobody to steal from" in page  # 1-core ratios are read as the price of stealing
    # Same run twice: refused.
    again = harness("publish", str(archive), str(runs["profile"]), "-o", str(tmp_path / "x"))
    assert "given twice" in one_error_line(again)


def test_published_site_in_chromium(
    site: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    from test_browser import CHROMIUM, open_in_browser

    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from harness.report.charts import CHART_IDS

    published, proc = site
    assert proc.returncode == 0, proc.stderr
    for d in ("index", "run"):
        (tmp_path / d).mkdir()
    state, dt, _ = open_in_browser(published / "index.html", tmp_path / "index", "site")
    assert dt.problems() == []
    assert all(u.startswith(("file:", "data:")) for u in dt.requests()), dt.requests()
    assert all(r.startswith("data:") for r in state["resources"]), state["resources"]
    assert state["images"] and all(i["ok"] and i["w"] > 200 for i in state["images"])
    assert state["text"] > 1000
    run_page = next((published / "runs").glob("*/index.html"))
    state, dt, _ = open_in_browser(run_page, tmp_path / "run", "site-run")
    assert dt.problems() == []
    assert all(u.startswith(("file:", "data:")) for u in dt.requests()), dt.requests()
    assert all(state["charts"][c] is not None for c in CHART_IDS)


# --------------------------------------------------------------------------------------------
# The data file and bad input


def test_published_data_file_holds_their_table() -> None:
    """The transcription against the figures the claim quotes (the issue's and their text's)."""
    from harness.analysis.published import load_published

    src = load_published("monoio-2021")
    assert src is not None and src.claim_cores == (1, 4, 8, 16)
    qps = {(r["runtime"], r["cores"]): r["qps"] for r in src.best}
    assert [qps[("tokio", k)] for k in (1, 4, 8, 16)] == [205726, 430921, 774526, 908179]
    assert [qps[("glommio", k)] for k in (1, 4, 8, 16)] == [163709, 616687, 1116116, 2064589]
    assert [qps[("monoio", k)] for k in (1, 4, 8, 16)] == [232888, 868525, 1588528, 2764152]
    ratios = [round(qps[("monoio", k)] / qps[("tokio", k)], 2) for k in (1, 4, 8, 16)]
    assert ratios == [1.13, 2.02, 2.05, 3.04]  # "1.13x, 2.0x, 2.05x, 3.0x" as quoted
    # Their 1-core, 1 KiB sweep: 4 client cores x 80..170 connections, QPS and mean latency.
    sweep = [r for r in src.sweep if (r["runtime"], r["cores"], r["size"]) == ("tokio", 1, 1024)]
    assert [r["conns_per_client_core"] for r in sweep] == list(range(80, 171, 10))
    assert src.design_for("tokio", 1) == "tokio-tpc" and src.design_for("tokio", 4) == "tokio-ws"


def test_a_damaged_bundle_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "run.tar.gz"
    bad.write_bytes(b"not an archive")
    line = one_error_line(harness("publish", str(bad), "-o", str(tmp_path / "site")))
    assert "bundle" in line and str(bad) in line
