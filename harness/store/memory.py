"""Keep freed memory in the process while a large run is read and analysed.

The analysis works through tens of millions of latency rows in chunks of about a million, so it
allocates and frees arrays of a few to tens of megabytes thousands of times. glibc's malloc
hands every such block back to the kernel on free (mmap above its threshold, heap trimming) and
the next one is faulted in again page by page; on a virtual machine a fresh page is the slow
part (measured here: a temporary of 8 MB costs four times as much as the arithmetic on it). So
blocks up to 32 MB come from the heap and up to 1 GB of freed heap stays with the process,
reused by the next chunk. The process is a short-lived report or compare; nothing else changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_SETTINGS = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20))
_done = False


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as above, once per process; False where there is no glibc
    (the numbers are the same either way, only slower)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _done = all(mallopt(option, value) == 1 for option, value in _SETTINGS)
    return _done
