"""Remember the sha256 of files by their stat signature, as git's index does.

Re-installing identical content then costs a stat per file instead of a full read, both for
the source files and for the installed ones it is checked against. The signature includes the
inode change time, which no user tool can set back, so an edited file always misses the cache.
"""

import json
import os
from pathlib import Path

from lorakit.store.layout import home


def _path() -> Path:
    return home() / "cache" / "hashes.json"


def signature(path: Path) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def load() -> dict:
    try:
        data = json.loads(_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def lookup(cache: dict, path: Path) -> str | None:
    hit = cache.get(str(path))
    if isinstance(hit, list) and len(hit) == 2 and hit[0] == signature(path):
        return hit[1]
    return None


def remember(cache: dict, path: Path, digest: str) -> None:
    cache[str(path)] = [signature(path), digest]


def forget(cache: dict, path: Path) -> None:
    cache.pop(str(path), None)


def save(cache: dict) -> None:
    """Atomic replace; a lost update between two concurrent installs only costs a re-hash later."""
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"hashes.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    tmp.write_text(json.dumps(cache))
    os.replace(tmp, path)
