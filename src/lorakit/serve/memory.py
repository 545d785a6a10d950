"""Keep a long-running server's memory flat.

Requests of varying lengths allocate and free tensors of ever new sizes; glibc keeps the freed
pages in fragmented heaps, and a server's memory kept growing with the requests served. Trimming
the heap after each batch gives them back: memory stays flat at no measurable cost. A fixed mmap
threshold also kept it flat but cost speed (figures: benchmarks/README.md, Measurements behind
the code).
"""

import ctypes
from collections.abc import Callable


def heap_trimmer() -> Callable[[], None]:
    """A function that returns free heap memory to the system (a no-op where libc has no malloc_trim)."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)
