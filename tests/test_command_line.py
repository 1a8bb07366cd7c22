"""The command line people expect (issue 18): every subcommand's --help, --version everywhere,
errors as exactly one `harness: error:` line with no third-party warning before it, JSON that
parses, nothing of SSH imported on one machine, `make` listing its targets, and a lock that
holds every pin of pyproject.toml."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import tomllib

import pytest
from conftest import BIN_DIR, REPO, require_binaries
from helpers import environment, run_harness

from harness.cli import COMMANDS
from harness.plan.designs import DEFAULT_REGISTRY, load_registry

# Python's own defaults show every warning once: what a user of the harness would see.
AS_A_USER = {"PYTHONWARNINGS": None}
ENV = environment(AS_A_USER)
harness = functools.partial(run_harness, env=AS_A_USER)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_has_help(command: str) -> None:
    proc = harness(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: harness {command}")
    assert proc.stderr == ""


def test_version_names_the_package_and_the_commit() -> None:
    proc = harness("--version")
    assert proc.returncode == 0, proc.stderr
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    assert re.match(r"harness \d+\.\d+\.\d+, commit [0-9a-f]{40}", proc.stdout)
    assert commit in proc.stdout


def test_run_help_groups_its_options() -> None:
    text = harness("run", "--help").stdout
    for group in ("plans:", "what runs:", "how it is measured:", "output:"):
        assert f"\n{group}\n" in text
    assert "--cores N[,N...]" in text and "--mode closed|open" in text


# One bad input per subcommand, each reaching that command's own error path.
BAD_INPUT = {
    "run": ("run", "--cores", "x", "--dry-run"),
    "report": ("report", "/nonexistent/results-dir"),
    "list": ("list", "--registry", "/nonexistent/registry.toml"),
    "doctor": ("doctor", "--registry", "/nonexistent/registry.toml"),
    "compare": ("compare", "/nonexistent/a", "/nonexistent/b"),
    "model": ("model", "/nonexistent/results-dir"),
    "repair": ("repair", "/nonexistent/results-dir"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_error_is_exactly_one_line(command: str) -> None:
    args = BAD_INPUT.get(command, (command, "--no-such-flag"))
    proc = harness(*args)
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("harness: error: "), proc.stderr
    assert "Warning" not in proc.stderr


def test_an_unknown_flag_is_one_line_for_every_subcommand() -> None:
    for command in COMMANDS:
        proc = harness(command, "--no-such-flag")
        assert proc.returncode == 2, (command, proc.stderr)
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("harness: error: ")


def test_json_outputs_parse() -> None:
    proc = harness("doctor", "--json")
    assert proc.stderr == "", proc.stderr
    assert isinstance(json.loads(proc.stdout), list | dict)


def test_one_machine_imports_nothing_of_ssh() -> None:
    # Reading stored runs, planning and listing are all one machine's business.
    code = (
        "import sys\n"
        "from harness.cli import main\n"
        "for argv in (['run', '--dry-run', '--cores', '1'], ['list'], ['report', '/nope']):\n"
        "    main(argv)\n"
        "import harness.store.raw, harness.session.hosts, harness.cli.run\n"
        "print('asyncssh' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, timeout=120, env=ENV, cwd=REPO)  # fmt: skip
    assert proc.stdout.strip().splitlines()[-1] == "False", proc.stdout + proc.stderr


def test_ssh_is_imported_without_a_warning() -> None:
    proc = subprocess.run([sys.executable, "-W", "default", "-c", "import harness.run.remote"],
                          capture_output=True, text=True, timeout=60, env=ENV)  # fmt: skip
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_loadgen_and_every_server_answer_version() -> None:
    designs = [d for d in load_registry(DEFAULT_REGISTRY).values() if d.language == "rust"]
    names = ["loadgen", *sorted({d.command.split()[0].rsplit("/", 1)[-1] for d in designs})]
    require_binaries(*names)
    for name in names:
        proc = subprocess.run([str(BIN_DIR / name), "--version"], capture_output=True,
                              text=True, timeout=10)  # fmt: skip
        assert proc.returncode == 0, (name, proc.stderr)
        assert re.fullmatch(rf"{re.escape(name)} \d+\.\d+\.\d+\n", proc.stdout), proc.stdout


def test_make_alone_lists_the_targets() -> None:
    proc = subprocess.run(["make", "-s", "-C", str(REPO)], capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for target in ("run", "test", "setup", "lint", "lock"):
        assert re.search(rf"^  {target}\s", proc.stdout, re.M), proc.stdout


def test_the_lock_holds_every_pin_with_hashes() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    lock = (REPO / "requirements.lock").read_text()
    entries = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock, re.M)
    locked = {name.lower().replace("_", "-"): version for name, version in entries}
    for pin in pins:
        name, version = pin.split("==")
        assert locked.get(name.lower().replace("_", "-")) == version, (
            f"{pin} is not in requirements.lock at that version; run `make lock`"
        )
    # Every locked package carries at least one hash (pip's --require-hashes needs them all).
    blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", lock.strip())
    assert all("--hash=sha256:" in b for b in blocks if "==" in b.split("\n")[0])
