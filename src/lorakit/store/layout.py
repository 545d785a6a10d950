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
NAME_RULE = "a store name is letters, digits, '.', '_' or '-' (at most 100), starting with a letter or digit"
LIST_HINT = "see the installed names: lorakit list"
NAME_HINT = "name it with --name, e.g. --name my-model"


def home() -> Path:
    return Path(os.environ.get("LORAKIT_HOME") or Path.home() / ".cache" / "lorakit").expanduser()


def looks_like_path(value: str) -> bool:
    return "/" in value or os.sep in value or value in (".", "..") or value.startswith("~")


def check_name(name: str, hint: str = LIST_HINT) -> str:
    """Entry names become folder names: allow only a safe, flat alphabet (no '/', no '..').

    ``hint`` is the next step where the name came from: an option to pick another one, or (the
    default, true for every command that takes a name) where to see the names that exist.
    """
    if isinstance(name, str) and _NAME.match(name) and ".." not in name:
        return name
    why = "that is a path, not a store name" if isinstance(name, str) and looks_like_path(name) else NAME_RULE
    raise StoreError(f"invalid name {name!r}: {why}", hint)


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
