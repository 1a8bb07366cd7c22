"""The registry's factors: loading and validation, runtime versions from Cargo.lock, controlled
pairs and the factor chain (pure: no server is started)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from helpers import design_entry

from harness.errors import HarnessError
from harness.plan.designs import (
    DEFAULT_LOCKFILE,
    DEFAULT_REGISTRY,
    FACTOR_VALUES,
    Design,
    Pair,
    controlled_pairs,
    factor_chain,
    load_registry,
    lock_versions,
)

ENTRY = """
[[design]]
name = "{name}"
family = "thread-per-core"
io_model = "{io}"
scheduler = "{scheduler}"
accept = "{accept}"
io = "{io}"
runtime = "{runtime}"
language = "{language}"
protocols = ["echo"]
command = "{{bin_dir}}/{name} --port {{port}}"
{extra}
"""


# The factors of a made-up design unless a test says otherwise.
FACTORS = {
    "scheduler": "per-core",
    "accept": "reuseport",
    "io": "epoll",
    "runtime": "tokio",
    "language": "rust",
}


def entry(name: str, **kw: str) -> str:
    return ENTRY.format(name=name, **{**FACTORS, "extra": "", **kw})


def registry(tmp_path: Path, *entries: str) -> Path:
    path = tmp_path / "registry.toml"
    path.write_text("".join(entries))
    return path


def design(name: str, **factors: str) -> Design:
    values = {**FACTORS, **factors}
    return Design(
        name=name,
        family="thread-per-core",
        io_model=values["io"],
        protocols=("echo",),
        command=f"{{bin_dir}}/{name}",
        ready="line",
        pins_itself=True,
        counters=True,
        summary="",
        **values,
    )


REAL = load_registry()


def test_every_real_design_declares_valid_factors():
    for d in REAL.values():
        for factor, allowed in FACTOR_VALUES.items():
            assert getattr(d, factor) in allowed, (d.name, factor)
        if d.language == "rust" and d.runtime != "none":
            assert d.crate is not None, d.name


def test_runtime_versions_come_from_cargo_lock():
    lock = tomllib.loads(DEFAULT_LOCKFILE.read_text())
    locked = {(p["name"], p["version"]) for p in lock["package"]}
    for d in REAL.values():
        if d.crate is not None:
            assert (d.crate, d.runtime_version) in locked, d.name
    assert REAL["tokio-ws"].runtime_version == REAL["tokio-tpc"].runtime_version
    assert REAL["tokio-ws"].runtime_version.startswith("1.")


def test_a_crate_locked_twice_gets_the_workspace_members_version(tmp_path):
    lock = tmp_path / "Cargo.lock"
    lock.write_text(
        """
version = 4

[[package]]
name = "io-uring"
version = "0.6.4"
source = "registry+x"

[[package]]
name = "io-uring"
version = "0.7.16"
source = "registry+x"

[[package]]
name = "tokio-uring"
version = "0.5.0"
source = "registry+x"
dependencies = ["io-uring 0.6.4"]

[[package]]
name = "bench-designs"
version = "0.1.0"
dependencies = ["io-uring 0.7.16", "tokio-uring"]
"""
    )
    versions = lock_versions(lock)
    assert versions is not None
    assert versions["io-uring"] == "0.7.16"
    assert versions["tokio-uring"] == "0.5.0"
    assert lock_versions(tmp_path / "absent.lock") is None


def test_python_and_nginx_versions_come_from_the_installed_package():
    import importlib.metadata

    assert REAL["py-asyncio-tpc"].runtime_version == importlib.metadata.version("uvloop")
    assert REAL["py-aiohttp"].runtime_version == importlib.metadata.version("aiohttp")
    assert REAL["epoll-tpc"].runtime_version is None  # no runtime, no crate named


def test_maintenance_labels_and_requirements():
    assert REAL["tokio-uring-tpc"].maintenance == "unmaintained upstream"
    assert REAL["async-std-ws"].maintenance == "discontinued upstream"
    assert REAL["tokio-ws"].maintenance is None
    assert REAL["glommio-tpc"].requires == ("io_uring", "memlock")
    assert REAL["monoio-tpc"].requires == ("io_uring",)
    assert REAL["monoio-epoll-tpc"].requires == ()


@pytest.mark.parametrize(
    ("key", "bad", "allowed"),
    [
        ("scheduler", "stealing", "work-stealing, per-core, shared-pool"),
        ("accept", "so_reuseport", "shared-listener, reuseport, dispatch"),
        ("io", "uring", "epoll, uring-poll, uring-oneshot, uring-multishot"),
        ("runtime", "tokyo", "tokio, monoio"),
    ],
)
def test_a_bad_factor_value_is_one_line_naming_design_key_and_values(tmp_path, key, bad, allowed):
    path = registry(tmp_path, entry("good"), entry("odd", **{key: bad}))
    with pytest.raises(HarnessError) as info:
        load_registry(path)
    message = str(info.value)
    assert "\n" not in message
    assert "design odd" in message and key in message and repr(bad) in message
    assert allowed in message


def test_bad_maintenance_requires_and_crate_are_refused(tmp_path):
    for extra, words in [
        ('maintenance = "abandoned"', ["maintenance", "unmaintained upstream"]),
        ('requires = ["gpu"]', ["requires", "io_uring, memlock"]),
        ('requires = "io_uring"', ["requires must be a list"]),
        ('crate = "tokio-typo"', ["tokio-typo", "Cargo.lock"]),
    ]:
        path = registry(tmp_path, entry("odd", extra=extra))
        with pytest.raises(HarnessError) as info:
            load_registry(path)
        message = str(info.value)
        assert "\n" not in message and "design odd" in message
        for word in words:
            assert word in message, (extra, message)


def test_a_design_without_factors_loads_and_pairs_with_nothing(tmp_path):
    bare = design_entry("broken", "/bin/sh -c 'exit 3'")
    designs = load_registry(registry(tmp_path, bare, entry("tokio-tpc")))
    assert designs["broken"].scheduler is None and designs["broken"].requires == ()
    assert controlled_pairs(designs.values()) == []


def test_controlled_pairs_differ_in_exactly_one_factor():
    pairs = controlled_pairs(REAL.values())
    assert pairs, "the registry has controlled pairs"
    for p in pairs:
        a, b = REAL[p.a].factors(), REAL[p.b].factors()
        assert [f for f in a if a[f] != b[f]] == [p.factor]
        assert (a[p.factor], b[p.factor]) == (p.a_value, p.b_value)
    found = {(p.a, p.b): p.factor for p in pairs}
    assert found[("tokio-ws", "tokio-ws-reuseport")] == "accept"
    assert found[("tokio-tpc", "tokio-ws-reuseport")] == "scheduler"
    assert found[("monoio-epoll-tpc", "tokio-tpc")] == "runtime"
    assert found[("monoio-epoll-tpc", "monoio-tpc")] == "io"
    assert found[("epoll-tpc", "uring-tpc")] == "io"
    # tokio-tpc against tokio-ws differs in scheduler AND accept topology: never controlled.
    assert ("tokio-tpc", "tokio-ws") not in found
    # No Python or C design pairs with a Rust one (language and runtime both differ).
    for p in pairs:
        assert REAL[p.a].language == REAL[p.b].language


def test_pairs_of_a_small_set():
    ds = [
        design("a"),
        design("b", io="uring-oneshot"),
        design("c", io="uring-oneshot", runtime="monoio"),
        design("d", scheduler="work-stealing", accept="shared-listener"),
    ]
    assert controlled_pairs(ds) == [
        Pair("b", "c", "runtime", "tokio", "monoio"),
        Pair("a", "b", "io", "epoll", "uring-oneshot"),
    ]


def test_the_monoio_chain_is_accept_then_scheduler_then_runtime_then_io():
    chain = factor_chain(REAL.values(), "tokio-ws", "monoio-tpc")
    assert chain is not None
    assert [(s.before, s.after, s.factor) for s in chain] == [
        ("tokio-ws", "tokio-ws-reuseport", "accept"),
        ("tokio-ws-reuseport", "tokio-tpc", "scheduler"),
        ("tokio-tpc", "monoio-epoll-tpc", "runtime"),
        ("monoio-epoll-tpc", "monoio-tpc", "io"),
    ]
    assert [(s.before_value, s.after_value) for s in chain] == [
        ("shared-listener", "reuseport"),
        ("work-stealing", "per-core"),
        ("tokio", "monoio"),
        ("epoll", "uring-oneshot"),
    ]


def test_chains_are_deterministic_whatever_the_order_of_designs():
    # compio-tpc, not glommio-tpc as before the io factor named the data path: glommio's is
    # io_uring readiness (uring-poll), which no other design shares, so no chain reaches it.
    forward = factor_chain(REAL.values(), "tokio-ws", "compio-tpc")
    backward = factor_chain(list(reversed(list(REAL.values()))), "tokio-ws", "compio-tpc")
    assert forward == backward
    assert forward is not None and len(forward) == 5  # 4 differing factors, runtime twice
    for step in forward:
        a, b = REAL[step.before].factors(), REAL[step.after].factors()
        assert [f for f in a if a[f] != b[f]] == [step.factor]


def test_a_chain_via_a_design_passes_it():
    chain = factor_chain(REAL.values(), "tokio-ws", "compio-tpc", via=["monoio-tpc"])
    assert chain is not None
    assert [s.after for s in chain] == [
        "tokio-ws-reuseport",
        "tokio-tpc",
        "monoio-epoll-tpc",
        "monoio-tpc",
        "compio-tpc",
    ]


def test_no_runtime_pair_differs_in_its_io_path():
    """The io factor is the data path: a runtime pair on io_uring shares it (completion,
    single-shot), and glommio (readiness over io_uring) or the floor (multishot receive from a
    buffer ring) is never drawn as a runtime step against them."""
    pairs = controlled_pairs(REAL.values())
    for p in pairs:
        if p.factor == "runtime":
            assert REAL[p.a].io == REAL[p.b].io
    by_pair = {(p.a, p.b): p.factor for p in pairs}
    assert by_pair[("compio-tpc", "monoio-tpc")] == "runtime"
    assert by_pair[("monoio-tpc", "tokio-uring-tpc")] == "runtime"
    assert ("glommio-tpc", "monoio-tpc") not in by_pair
    assert ("monoio-tpc", "uring-tpc") not in by_pair
    assert factor_chain(REAL.values(), "tokio-ws", "glommio-tpc") is None
    assert {d.io for d in REAL.values()} <= set(FACTOR_VALUES["io"])
    assert REAL["glommio-tpc"].io == "uring-poll"
    assert REAL["uring-tpc"].io == "uring-multishot"


def test_no_chain_without_the_missing_link_or_across_languages():
    without = [d for d in REAL.values() if d.name != "tokio-ws-reuseport"]
    assert factor_chain(without, "tokio-ws", "monoio-tpc") is None
    assert factor_chain(REAL.values(), "tokio-ws", "nginx") is None
    assert factor_chain(REAL.values(), "tokio-ws", "absent") is None
    assert factor_chain(REAL.values(), "tokio-ws", "tokio-ws") == []


def test_the_real_registry_file_is_the_default():
    assert DEFAULT_REGISTRY.is_file() and DEFAULT_LOCKFILE.is_file()


def test_concurrency_is_a_factor_and_defaults_to_a_task_per_connection(tmp_path):
    path = registry(
        tmp_path,
        entry("tasks"),
        entry("grouped", extra='concurrency = "structured"'),
        entry("other", runtime="monoio", extra='concurrency = "structured"'),
    )
    designs = load_registry(path)
    assert designs["tasks"].concurrency == "task-per-connection"  # undeclared: the old default
    assert controlled_pairs(designs.values()) == [
        Pair("grouped", "other", "runtime", "tokio", "monoio"),
        Pair("grouped", "tasks", "concurrency", "structured", "task-per-connection"),
    ]
    bad = registry(tmp_path, entry("x", extra='concurrency = "threads"'))
    with pytest.raises(HarnessError, match="concurrency = 'threads' is not one of"):
        load_registry(bad)


def test_the_structured_designs_are_one_concurrency_step_from_their_task_designs():
    chain = factor_chain(REAL.values(), "tokio-tpc", "tokio-tpc-structured")
    assert chain is not None
    assert [(s.factor, s.before_value, s.after_value) for s in chain] == [
        ("concurrency", "task-per-connection", "structured")
    ]
    # Hand-written loops and nginx run no futures at all: not a task per connection.
    for name in ("epoll-tpc", "uring-tpc", "nginx"):
        assert REAL[name].concurrency == "event-loop", name
