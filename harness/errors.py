"""The errors the command line turns into one `harness: error: ...` line, and their exit codes.

Exit codes (README, docs/architecture.md): 0 success; 1 some trial failed (or, for `harness
compare`, a gated regression); 2 bad input (HarnessError: nothing, or nothing more, ran);
3 could not store (StoreError, or the system refusing a write: disk full, read-only or unwritable
directory); 130 interrupted.
"""

from __future__ import annotations

import errno

EXIT_TRIALS_FAILED = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_INTERRUPTED = 130

# An OSError with one of these is the system refusing to keep what we write.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


class HarnessError(Exception):
    """Bad input or an impossible request: the message names the problem and the fix."""


class DamagedFileError(HarnessError):
    """A results file that cannot be read back (truncated parquet, garbage JSON): the message
    names the file and `harness repair DIR`."""


class StoreError(Exception):
    """Results could not be written (exit 3). `raw_only`: trials whose raw records are on disk
    but whose rows are not in the tables (`harness repair` / `--resume` rebuild them)."""

    def __init__(self, message: str, *, raw_only: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.raw_only = raw_only


def os_error_text(exc: OSError) -> str:
    """'FILE: reason' for an OSError, never an empty reason."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    name = exc.filename
    return f"{name}: {reason}" if name else reason


def one_line(exc: BaseException) -> tuple[str, int] | None:
    """The one error line and exit code for an error a user can cause or meet; None for a bug
    (which keeps its traceback)."""
    if isinstance(exc, HarnessError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, StoreError):
        return str(exc), EXIT_STORE
    if isinstance(exc, OSError):
        text = os_error_text(exc)
        if exc.errno in _WRITE_ERRNOS:
            return (
                f"could not write {text}; free space or make the directory writable, then run "
                "the command again",
                EXIT_STORE,
            )
        if exc.errno in (errno.EACCES, errno.EPERM):
            return f"{text}; make it accessible to this user, or choose another path", EXIT_USAGE
        return f"{text}; check the path and try again", EXIT_USAGE
    return None
