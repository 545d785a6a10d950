"""Where the store lives and how its folders are named.

    $LORAKIT_HOME/                 (default ~/.cache/lorakit)
      blobs/sha256/<hex>           every file, stored once by content (read-only)
      entries/<kind>/<name>.<id>/  one immutable version of an entry: hard links into blobs + manifest
      models/<name>                symlink to the current version of a base model
      adapters/<name>              symlink to the current version of an adapter
      tmp/                         installs in progress (renamed into place when complete)
      locks/                       one lock file per entry name, plus the store-wide gc lock

An entry becomes visible only when its symlink is swapped in with one atomic rename, so a
reader (or a killed install) sees either the old version or the new one, never a half.
"""

import os
import re
from pathlib import Path

from lorakit.errors import StoreError

MANIFEST = "lorakit-manifest.json"
KINDS = ("models", "adapters")
KIND_WORD = {"models": "model", "adapters": "adapter"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def home() -> Path:
    return Path(os.environ.get("LORAKIT_HOME") or Path.home() / ".cache" / "lorakit").expanduser()


def check_name(name: str) -> str:
    """Entry names become folder names: allow only a safe, flat alphabet (no '/', no '..')."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise StoreError(
            f"invalid name {name!r}",
            "use letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. --name my-model",
        )
    return name


def entry_dir(kind: str, name: str) -> Path:
    """The visible path of an entry (a symlink to its current version)."""
    return home() / kind / check_name(name)


def versions_dir(kind: str) -> Path:
    return home() / "entries" / kind


def blob_dir() -> Path:
    return home() / "blobs" / "sha256"


def tmp_dir() -> Path:
    d = home() / "tmp"
    d.mkdir(parents=True, exist_ok=True)
    return d


def lock_dir() -> Path:
    d = home() / "locks"
    d.mkdir(parents=True, exist_ok=True)
    return d
