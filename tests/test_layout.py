"""The harness tree reads as its pipeline: every module imports only from its own stage or an
earlier one, and the modules import no cycle. Checked by parsing imports (nothing is run)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent.parent / "harness"
# The stages in pipeline order. A module beside errors.py (harness/<name>.py) is `shared`: any
# stage may import it and it imports only its like; `session` drives the stages through a run and
# `cli` parses the command line and calls the session (or a stage).
STAGES = ("shared", "plan", "run", "checks", "store", "analysis", "report", "session", "cli")
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(HARNESS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the package itself (harness/__init__.py)
    if parts[1] == "__main__":
        return "cli"
    return parts[1] if (HARNESS / parts[1]).is_dir() else "shared"


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


def test_only_the_report_words_flags(graph):
    """Flags are data until the report (issue 23): the analysis carries the stored causes, and
    no module before the report imports the flags' words."""
    wrong = [
        f"{m} imports {o}"
        for m in graph
        if stage_of(m) != "report"
        for o in graph[m]
        if o.rsplit(".", 1)[-1] == "flag_words"
    ]
    assert not wrong, "\n".join(sorted(wrong))
    assert not list((HARNESS / "analysis").rglob("flag_words.py"))


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


ARCHITECTURE = HARNESS.parent / "docs" / "architecture.md"


def drawn_edges() -> list[tuple[str, str]]:
    """The arrows of docs/architecture.md's flow drawing: its ```edges block, `a -> b` a line."""
    text = ARCHITECTURE.read_text()
    block = text.split("```edges\n", 1)[1].split("```", 1)[0]
    edges = []
    for line in block.splitlines():
        a, arrow, b = line.partition(" -> ")
        assert arrow, f"not an edge `a -> b`: {line!r}"
        edges.append((a.strip(), b.strip()))
    return edges


def in_part(module: str, part: str) -> bool:
    """Whether a module is the drawing's part: a stage (harness.<stage>...) or a module."""
    name = f"harness.{part}"
    return module == name or module.startswith(name + ".")


def test_every_arrow_of_the_architecture_drawing_is_an_import(graph):
    """`a -> b` in the drawing: some module of b imports some module of a (data goes from the
    module that defines it to the one that reads it)."""
    edges = drawn_edges()
    assert edges, "docs/architecture.md has no ```edges block"
    drawing = ARCHITECTURE.read_text().split("```\n", 2)[1]
    missing = []
    for a, b in edges:
        for part in (a, b):
            assert part in drawing, f"{part} is in the edge list but not in the drawing"
        if not any(
            in_part(importer, b) and any(in_part(m, a) for m in imported)
            for importer, imported in graph.items()
        ):
            missing.append(f"{a} -> {b}: nothing in harness.{b} imports harness.{a}")
    assert not missing, "\n".join(missing)


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


# The Rust crates whose modules must import no cycle (each file of src/ but the crate root and
# the binaries is a module; lib.rs only declares and re-exports them).
RUST_CRATES = ("servers/core", "servers/designs", "clients/loadgen")


def rust_module_graph(crate: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same crate it names (`crate::x`), comments left out."""
    src = crate / "src"
    files = {p.stem: p for p in src.glob("*.rs") if p.name not in ("lib.rs", "main.rs")}
    # A name re-exported by the root (`pub use x::{A, B};`) stands for its module.
    reexported: dict[str, str] = {}
    lib = src / "lib.rs"
    if lib.exists():
        for module, names in re.findall(r"pub use (\w+)::\{?([\w, ]+)\}?;", lib.read_text()):
            reexported.update({name.strip(): module for name in names.split(",")})
    graph = {}
    for module, path in files.items():
        code = re.sub(r"//.*", "", path.read_text())
        named = set(re.findall(r"\bcrate::(\w+)", code))
        for group in re.findall(r"\bcrate::\{([^}]*)\}", code):
            named |= {item.strip().split("::")[0] for item in group.split(",") if item.strip()}
        graph[module] = {reexported.get(n, n) for n in named} & set(files) - {module}
    return graph


@pytest.mark.parametrize("crate", RUST_CRATES)
def test_no_rust_import_cycle(crate):
    graph = rust_module_graph(HARNESS.parent / crate)
    assert graph, f"no Rust modules found in {crate}: has the layout moved?"
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for other in sorted(graph[module]):
            if state.get(other) == 1:
                cycle = [*path[path.index(other) :], other]
                pytest.fail(f"import cycle in {crate}: " + " -> ".join(cycle))
            if other not in state:
                visit(other)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
