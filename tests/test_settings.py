"""Each design runs with the runtime settings docs/fairness.md gives, read from what the server
reports at start (its `server-settings/1` line), once per profile (its authors' set-up, and
`BENCH_RUNTIME_SETTINGS=defaults`); and how the harness keeps, stores and compares that line.

A design that is not built, or that this machine cannot run (io_uring refused, memlock too
low), is skipped with the reason. Every server is started through the harness's own server
start (bounded by its READY timeout) and its process group is killed when the test ends.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from harness.analysis.settings_diff import settings_differences
from harness.checks.runtime_needs import why_not_runnable
from harness.plan.designs import DEFAULT_BIN_DIR, REPO_ROOT, load_registry
from harness.run import procs, server
from harness.store.rows import _settings_columns

BIN_DIR = Path(os.environ.get("BENCH_BIN_DIR", DEFAULT_BIN_DIR))
FAIRNESS = REPO_ROOT / "docs" / "fairness.md"
REGISTRY = load_registry()
RUST = sorted(d.name for d in REGISTRY.values() if d.language == "rust")
ALLOWED = sorted(os.sched_getaffinity(0))
ONE_CPU = (1,) if 1 in ALLOWED else (ALLOWED[0],)


def docs_tables(path: Path = FAIRNESS) -> dict[str, dict[str, dict[str, str]]]:
    """design -> setting -> {"authors": value, "defaults": value}, from the `### design`
    sections of docs/fairness.md whose table starts with `| setting | authors | defaults |`."""
    tables: dict[str, dict[str, dict[str, str]]] = {}
    design = None
    columns: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("### "):
            design, columns = line[4:].strip(), []
            continue
        if line.startswith("#"):  # a higher heading ends the last design's section
            design = None
            continue
        if design is None or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not columns:
            columns = cells
            continue
        if set(line) <= set("|- "):
            continue
        if columns[:3] == ["setting", "authors", "defaults"]:
            tables.setdefault(design, {})[cells[0]] = {"authors": cells[1], "defaults": cells[2]}
    return tables


TABLES = docs_tables()


def shown(value: object) -> str:
    """A reported value as the docs table writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_every_rust_design_has_a_table_and_every_table_a_design():
    assert set(TABLES) <= set(REGISTRY), "a table names a design the registry lacks"
    untabled = [name for name in RUST if name not in TABLES]
    assert untabled == [], "a Rust design without a table in docs/fairness.md"
    for design, rows in TABLES.items():
        assert rows, f"{design}'s table is empty"


@pytest.mark.parametrize("profile", ["authors", "defaults"])
@pytest.mark.parametrize("name", sorted(TABLES))
def test_a_design_reports_the_settings_its_table_gives(name, profile, tmp_path, monkeypatch):
    design = REGISTRY[name]
    if why := design.missing(BIN_DIR):
        pytest.skip(why)
    if why := why_not_runnable(design):
        pytest.skip(f"not runnable here: {why}")
    if profile == "defaults":
        monkeypatch.setenv("BENCH_RUNTIME_SETTINGS", "defaults")
    else:
        monkeypatch.delenv("BENCH_RUNTIME_SETTINGS", raising=False)
    port = procs.free_port()
    argv = design.argv(
        bin_dir=BIN_DIR, protocol="echo", host=server.HOST, port=port, threads=1, cpus="1"
    )
    argv[argv.index("--cpus") + 1] = ",".join(map(str, ONE_CPU))
    with server.running(
        design, argv, protocol="echo", cpus=ONE_CPU, port=port, log=tmp_path / "server.log"
    ) as srv:
        reported = srv.settings
    assert reported is not None, f"{name} printed no settings line before READY"
    assert reported["design"] == name and reported["profile"] == profile
    got = {key: shown(value) for key, value in reported["settings"].items()}
    want = {key: values[profile] for key, values in TABLES[name].items()}
    assert got == want


def test_a_bad_profile_is_refused_with_one_line(monkeypatch, tmp_path):
    design = REGISTRY["epoll-tpc"]
    if why := design.missing(BIN_DIR):
        pytest.skip(why)
    monkeypatch.setenv("BENCH_RUNTIME_SETTINGS", "fastest")
    port = procs.free_port()
    argv = design.argv(
        bin_dir=BIN_DIR, protocol="echo", host=server.HOST, port=port, threads=1, cpus="0"
    )
    argv[argv.index("--cpus") + 1] = str(ONE_CPU[0])
    with pytest.raises(server.ServerStartError) as info:
        server.start(design, argv, protocol="echo", cpus=ONE_CPU, port=port, log=tmp_path / "l")
    assert info.value.refused
    assert "BENCH_RUNTIME_SETTINGS" in (tmp_path / "l").read_text()


def test_the_settings_line_is_recognised_only_when_it_is_one():
    line = (
        '{"schema":"server-settings/1","design":"x","profile":"authors",'
        '"settings":{"entries":32768,"sqpoll":false}}\n'
    )
    parsed = server.parse_settings(line.encode())
    assert parsed is not None and parsed["settings"] == {"entries": 32768, "sqpoll": False}
    assert server.parse_settings(b"READY\n") is None
    assert server.parse_settings(b'{"schema":"server-counters/1","workers":[]}\n') is None
    assert server.parse_settings(b'{"schema":"server-settings/1", broken\n') is None
    assert server.parse_settings(b'{"schema":"server-settings/1","settings":3}\n') is None


def test_stored_settings_are_sorted_json_or_null():
    cols = _settings_columns({"profile": "defaults", "settings": {"b": 1, "a": True}})
    assert cols == {"settings_profile": "defaults", "server_settings": '{"a": true, "b": 1}'}
    assert _settings_columns(None) == {"settings_profile": None, "server_settings": None}


def _trials(rows: list[tuple[str, str | None, dict | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "server": server_name,
                "settings_profile": profile,
                "server_settings": None if s is None else json.dumps(s, sort_keys=True),
            }
            for server_name, profile, s in rows
        ]
    )


def test_compare_names_the_designs_whose_settings_differ():
    a = _trials(
        [
            ("monoio-tpc", "defaults", {"entries": 1024}),
            ("monoio-tpc", "defaults", {"entries": 1024}),
            ("tokio-tpc", "authors", {"event_interval": 61}),
            ("nginx", None, None),
        ]
    )
    b = _trials(
        [
            ("monoio-tpc", "authors", {"entries": 32768}),
            ("tokio-tpc", "authors", {"event_interval": 61}),
            ("nginx", None, None),
        ]
    )
    notes = settings_differences(a, b)
    assert len(notes) == 1
    assert notes[0].startswith("monoio-tpc: runtime settings differ")
    assert "profile defaults -> authors" in notes[0] and "entries 1024 -> 32768" in notes[0]
    assert settings_differences(a, a) == []
    # The same settings under the other profile's name: the same set-up, no note.
    renamed = _trials([("tokio-tpc", "defaults", {"event_interval": 61})])
    assert settings_differences(a, renamed) == []
    flags = _trials([("monoio-tpc", "authors", {"entries": 1024, "coop": True, "mode": "x"})])
    (flag_note,) = settings_differences(a, flags)
    assert "coop (none) -> true" in flag_note and 'mode (none) -> "x"' in flag_note
    older = _trials([("monoio-tpc", None, None)])
    (note,) = settings_differences(older, b)
    assert "recorded in B only" in note
