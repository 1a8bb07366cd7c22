"""Command line: thin shells over the pipeline stages (plan -> run -> store -> analyse -> report).

Every error a user can cause or meet becomes one line on stderr naming the problem and the fix,
never a traceback (harness/errors.py): exit 2 for bad input (or a damaged results file, with the
`harness repair` that fixes it), 3 when results could not be stored, 130 when interrupted.
Run options come from, in increasing precedence: built-in defaults, a named profile
(`--profile quick|ci|full`) or a plan file (`--plan FILE.toml` or a run's manifest.json), and the
command line.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from harness.cli import compare, doctor, listing, model, repair, report, run
from harness.errors import EXIT_INTERRUPTED, EXIT_USAGE, HarnessError, StoreError, one_line

COMMANDS = {
    "run": run,
    "report": report,
    "list": listing,
    "doctor": doctor,
    "compare": compare,
    "model": model,
    "repair": repair,
}


class _Version(argparse.Action):
    """`harness --version`: the package version and the commit it runs from (git asked only
    when the flag is given)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import version

        from harness.run.platform import git_commit

        git = git_commit()
        commit = git["commit"] or "unknown (not a git checkout)"
        dirty = " (uncommitted changes)" if git["dirty"] else ""
        print(f"harness {version('executor-bench-harness')}, commit {commit}{dirty}")
        parser.exit()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other bad input
        raise HarnessError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="harness", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    console = Console(soft_wrap=True)
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command].run(args, console)
    except (HarnessError, StoreError, OSError) as exc:
        line, code = one_line(exc) or (str(exc), EXIT_USAGE)
        print(f"harness: error: {line}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
