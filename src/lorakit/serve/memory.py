"""Keep a long-running server's memory flat.

Requests of varying lengths allocate and free tensors of ever new sizes; glibc keeps the freed
pages in fragmented heaps, and a server's memory grew by ~25 MB per 500 requests (minilm,
8 adapters). Trimming the heap after each batch gives them back: memory stayed flat over
3,000 requests at no measurable cost (102 s vs 101 s for 500 batches). A fixed mmap threshold
also kept it flat but cost 27% in speed.
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
