"""How a Python design says it cannot run, as bench-core does: `error: ...` on one stderr line,
exit 2 for a bad command line (`UsageError`), exit 1 for a failure after it was accepted."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


class UsageError(Exception):
    """A bad flag or value: one line on stderr, exit 2."""


def fail_usage(msg: str) -> NoReturn:
    print(f"error: {msg}", file=sys.stderr, flush=True)
    os._exit(2)


def fatal(msg: str) -> NoReturn:
    """A failure after the command line was accepted (bind, fork): exit 1, as bench-core."""
    print(f"error: {msg}", file=sys.stderr, flush=True)
    os._exit(1)
