r"""Keep freed host memory in the process, so large CPU tensors do not fault in fresh pages.

glibc serves every allocation of 32 MiB or more (at most 32 MiB is allowed as the
``mmap`` threshold) with a fresh ``mmap`` and gives it back with ``munmap`` when it is
freed. A training step at batch 2,048 allocates dozens of 16-32 MiB activations and
gradients, so each step had the kernel zero ~120 MB of new pages: 0.09-0.23 s of system
time per step on a 2-core machine (``benchmarks/RESULTS.md``). With ``mmap`` disabled
and trimming raised, freed blocks stay in the heap and the next step reuses them.

The setting is process-wide and only changes where freed memory goes: the peak resident
size stays the same (2.59-2.64 GB with and without it in that benchmark), but memory
freed at the end is not returned to the operating system until the process exits.
Being process-wide, it is the command line's choice, never the library's: the ``run``,
``compare``, ``sweep`` and ``tune`` commands apply it; a Python program may call
:func:`keep_freed_host_memory` itself.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
_M_MMAP_MAX = -4
_TRIM_THRESHOLD = 2**31 - 1  # the largest value mallopt accepts (an int)


def keep_freed_host_memory() -> bool:
    """Make glibc keep freed memory for reuse; ``True`` if the setting is in effect.

    Returns ``False`` (and changes nothing) on a C library other than glibc; calling it again
    changes nothing more.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1
    except (OSError, AttributeError):
        return False
    if ok:
        log.debug("glibc keeps freed memory for reuse (mmap off, trim threshold %d)", _TRIM_THRESHOLD)
    return ok
