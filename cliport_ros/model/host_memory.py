"""Keep freed host memory for reuse: a CPU decision then stops paying page faults for its large buffers.

A CPU decision of the ``paper`` network allocates and frees tensors of up to ~150 MB several hundred times.
glibc serves blocks over its mmap threshold (at most 32 MB) with fresh mappings, which the kernel zero-fills
page by page on first touch: that took ~15 % of a decision on the development machine (see
docs/benchmarks.md). ``keep_freed_host_memory`` asks glibc to serve every block from its heap and to keep
what is freed there (``mallopt``), so later decisions reuse warm pages. The price: the process keeps its peak
memory rather than returning it to the system. A no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
# the largest value mallopt takes (an int): free memory at the heap's top is returned only past 2 GiB
_KEEP = 2**31 - 1
_TOP_PAD = 64 << 20  # grow the heap 64 MB at a time

_lock = threading.Lock()
_applied: bool | None = None


def keep_freed_host_memory() -> bool:
    """Apply the glibc settings once per process; returns whether they are in force."""
    global _applied
    with _lock:
        if _applied is not None:
            return _applied
        _applied = False
        if not sys.platform.startswith("linux"):
            return False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
            return False
        mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        mallopt.restype = ctypes.c_int
        _applied = bool(
            mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, _KEEP) == 1 and mallopt(M_TOP_PAD, _TOP_PAD) == 1
        )
        return _applied
