"""`harness compare A B`: what changed from run A to run B, configuration by configuration.

Exit codes: 0 no gated regression, 1 a gated regression, 2 bad input (HarnessError, one line).
`python -m harness.cli.compare A B ...` is the same command without the harness front end.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.text import Text

from harness.analysis import stats
from harness.errors import HarnessError

HELP = "compare two runs"
EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_USAGE = 2
DESCRIPTION = (
    "`harness compare A B`: what changed from run A to run B, configuration by configuration."
)


def _percent(flag: str, *, maximum: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text.rstrip("%"))
        except ValueError:
            raise HarnessError(f"{flag} takes a percentage, got {text!r}; e.g. {flag} 5") from None
        if not value >= 0 or (maximum is not None and value >= maximum):
            bound = f" and below {maximum:g}" if maximum is not None else ""
            raise HarnessError(f"{flag} must be 0 or more{bound}, got {text!r}; e.g. {flag} 5")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `harness compare` (the caller dispatches to `run`)."""
    parser.description = DESCRIPTION
    parser.add_argument(
        "run_a",
        type=Path,
        metavar="A",
        help="baseline: a results directory results/<run-id>/ (or a results root: newest run)",
    )
    parser.add_argument(
        "run_b", type=Path, metavar="B", help="candidate, compared relative to A (B/A - 1)"
    )
    parser.add_argument(
        "--threshold",
        type=_percent("--threshold", maximum=100),
        default=stats.DEFAULT_NOISE_THRESHOLD * 100,
        metavar="PCT",
        help="noise threshold in percent: a change must lie wholly beyond it "
        f"(default {stats.DEFAULT_NOISE_THRESHOLD * 100:g})",
    )
    parser.add_argument(
        "--fail-above",
        type=_percent("--fail-above"),
        default=None,
        metavar="PCT",
        help="exit 1 when a configuration is significantly slower and its whole 95%% interval "
        "lies more than PCT percent below A (the CI gate)",
    )
    parser.add_argument(
        "--latency",
        action="store_true",
        help="--fail-above also gates on p99 latency (whole interval more than PCT percent "
        "above A); meant for open-loop runs",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write JSON")
    parser.add_argument(
        "--markdown", type=Path, default=None, metavar="FILE", help="write a Markdown summary"
    )
    return parser


def _write(path: Path, flag: str, write: Callable[[Path], None]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
    except OSError as exc:
        raise HarnessError(
            f"cannot write {flag} {path}: {exc.strerror or exc}; choose a writable path"
        ) from exc


def run(args: argparse.Namespace, console: Console) -> int:
    """`harness compare`: 0 no gated regression, 1 gated regression; HarnessError on bad input."""
    from harness.analysis.analyse import analyse
    from harness.analysis.compare import compare_runs, gate
    from harness.report import compare as show
    from harness.store import load_run, resolve_run_dir, write_json

    dir_a, note_a = resolve_run_dir(args.run_a, "A")
    dir_b, note_b = resolve_run_dir(args.run_b, "B")
    # Each run analysed once, exactly as its report analyses it.
    run_a, run_b = analyse(load_run(dir_a)), analyse(load_run(dir_b))
    result = compare_runs(run_a, run_b, threshold=args.threshold / 100.0)
    fail_above, latency = args.fail_above, args.latency
    hits = gate(result.changes, fail_above, latency=latency) if fail_above is not None else []

    out = console.print
    for note in (note_a, note_b):
        if note:
            out(note, highlight=False, markup=False)
    out(f"A: {dir_a}  ({result.run_id_a})", highlight=False, markup=False)
    out(f"B: {dir_b}  ({result.run_id_b})", highlight=False, markup=False)
    for d in result.platform:
        out(Text(f"warning: {d.describe()}", style="yellow"))
    rows = show.table_rows(result)
    if console.is_terminal:
        out(show.rich_table(rows))
    else:
        out(show.plain_table(rows), highlight=False, markup=False)
    out(show.summary_line(result), highlight=False, markup=False)
    for title, only in (("only in A", result.only_a), ("only in B", result.only_b)):
        for s in only:
            out(f"{title} (not compared): {show.describe_config(s)}", highlight=False, markup=False)
    for n in result.notes:
        out(Text(f"note: {n}", style="yellow"))
    if fail_above is not None:
        style = "red" if hits else "green"
        out(Text(show.gate_line(hits, fail_above, latency), style=style))
        for h in hits:
            out(Text(f"  {h.describe()}", style="red"))

    if args.json is not None:
        data = show.to_json(result, fail_above, latency, hits)
        _write(args.json, "--json", lambda p: write_json(p, data))
    if args.markdown is not None:
        text = show.to_markdown(result, fail_above, latency, hits)
        _write(args.markdown, "--markdown", lambda p: p.write_text(text))
    return EXIT_REGRESSION if hits else EXIT_OK


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like the harness front end
        raise HarnessError(f"{message} (see `{self.prog} --help`)")


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.compare A B ...`: the same command without the harness front end."""
    parser = _Parser(prog="harness compare")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
        return run(args, Console(soft_wrap=True))
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
