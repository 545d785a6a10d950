"""File locks: one per entry name (installs of the same name queue up), one for the whole store
(installs and removals share it; gc takes it alone, so it never collects a blob being installed)."""

import fcntl
from contextlib import contextmanager

from lorakit.store.layout import lock_dir


@contextmanager
def _flock(name: str, mode: int):
    with open(lock_dir() / f"{name}.lock", "a") as f:
        fcntl.flock(f, mode)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def name_lock(kind: str, name: str):
    return _flock(f"{kind}-{name}", fcntl.LOCK_EX)


def store_lock(exclusive: bool = False):
    return _flock("store", fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
