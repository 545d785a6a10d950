"""Where the store lives and how its folders are named.

    $LORAKIT_HOME/                 (default ~/.cache/lorakit)
      blobs/sha256/<hex>           every file, stored once by content
      models/<name>/               an installed base model: hard links into blobs + manifest.json
      adapters/<name>/             an installed adapter, same layout
      tmp/                         installs in progress (renamed into place when complete)
"""

import os
import re
from pathlib import Path

from lorakit.errors import StoreError

MANIFEST = "lorakit-manifest.json"
KINDS = ("models", "adapters")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def home() -> Path:
    return Path(os.environ.get("LORAKIT_HOME") or Path.home() / ".cache" / "lorakit").expanduser()


def check_name(name: str) -> str:
    """Entry names become folder names: allow only a safe, flat alphabet (no '/', no '..')."""
    if not _NAME.match(name) or ".." in name:
        raise StoreError(
            f"invalid name {name!r}",
            "use letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. --name my-model",
        )
    return name


def entry_dir(kind: str, name: str) -> Path:
    return home() / kind / check_name(name)


def blob_dir() -> Path:
    return home() / "blobs" / "sha256"


def tmp_dir() -> Path:
    d = home() / "tmp"
    d.mkdir(parents=True, exist_ok=True)
    return d
