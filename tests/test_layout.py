"""The harness tree reads as its pipeline: every module imports only from its own stage or an
earlier one, and the modules import no cycle. Checked by parsing imports (nothing is run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent.parent / "harness"
# Top-level modules every stage may import (they import no stage themselves).
SHARED = ("errors", "atomic")
# The stages in pipeline order; the shared modules come first, `cli` drives them all.
STAGES = ("shared", "plan", "run", "checks", "store", "analysis", "report", "cli")
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(HARNESS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the package itself (harness/__init__.py)
    if parts[1] in SHARED:
        return "shared"
    return "cli" if parts[1] == "__main__" else parts[1]


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The harness modules one file imports (at any depth: deferred imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from harness.x import y` imports harness.x, and harness.x.y when y is a module.
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {n for n in names if n in modules}
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in HARNESS.rglob("*.py")}
    modules = set(files)
    return {m: imports_of(p, modules) - {m} for m, p in files.items()}


def test_every_module_is_in_a_stage(graph):
    for module in graph:
        stage = stage_of(module)
        assert stage is None or stage in STAGES, f"{module} is in no stage of {STAGES}"


def test_no_module_imports_a_later_stage(graph):
    wrong = []
    for module, imported in graph.items():
        stage = stage_of(module)
        if stage is None:
            continue
        for other in imported:
            if stage_of(other) is not None and STAGES.index(stage_of(other)) > STAGES.index(stage):
                wrong.append(f"{module} ({stage}) imports {other} ({stage_of(other)})")
    assert not wrong, "\n".join(sorted(wrong))


def test_shared_modules_import_no_stage(graph):
    wrong = [
        f"{m} imports {o}"
        for m in graph
        if stage_of(m) == "shared"
        for o in graph[m]
        if stage_of(o) != "shared"
    ]
    assert not wrong, "\n".join(sorted(wrong))


# What reads a stored file or analyses a run: never called in harness/report.
READERS = {
    "analyse",
    "load_run",
    "read_table",
    "read_parquet",
    "read_schema",
    "read_csv",
    "read_json",
    "read_text",
    "read_bytes",
}


def test_report_only_presents(graph):
    """The report takes an Analysis and draws it: it reads no stored file (no store module)
    and never analyses a run itself (no call of analyse())."""
    wrong = [
        f"{m} imports {o}"
        for m in graph
        if stage_of(m) == "report"
        for o in graph[m]
        if stage_of(o) == "store"
    ]
    for path in (HARNESS / "report").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in READERS:
                    wrong.append(f"{path.relative_to(HARNESS)}:{node.lineno} calls {name}()")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycle(graph):
    # A package's __init__ re-exporting its modules is not a cycle of the modules themselves.
    def edges(module: str) -> set[str]:
        return {m for m in graph[module] if not module.startswith(m + ".")}

    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for other in sorted(edges(module)):
            if state.get(other) == 1:
                cycle = [*path[path.index(other) :], other]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if other not in state:
                visit(other)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_no_file_is_long():
    long = {
        str(p.relative_to(HARNESS)): n
        for p in HARNESS.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_rust_unit_tests_live_in_libraries():
    """`make test` runs `cargo test --lib`: a test in a binary's own file would never run."""
    root = HARNESS.parent
    binaries = [
        p
        for p in root.glob("*/*/src/**/*.rs")
        if p.name == "main.rs" or "bin" in p.relative_to(root).parts
    ]
    assert binaries, "no Rust binaries found: has the layout moved?"
    holding = [str(p.relative_to(root)) for p in binaries if "#[test]" in p.read_text()]
    assert not holding, f"move these tests into the crate's library: {holding}"
