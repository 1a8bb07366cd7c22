"""One way to write a file so that a reader never sees a torn one: write path.tmp, fsync it,
rename it over path, fsync the directory. Shared by every stage (the stored tables and trial
records, the report and its exports, the published site, binaries copied to the local host)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

TMP_SUFFIX = ".tmp"


def fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call write(path.tmp), fsync it, rename it over path, fsync the directory: a reader sees
    the old file or the new one, never a torn one, and the new one survives a crash once this
    returns. A failed write removes its temp file (it would only fill the disk further)."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        write(tmp)
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent, directory=True)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """write_atomic for UTF-8 text."""
    write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))
