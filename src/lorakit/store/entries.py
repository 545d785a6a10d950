"""Read what is installed: list entries, find a model's folder."""

import json
from pathlib import Path

from lorakit.errors import NotInstalledError
from lorakit.store.layout import KINDS, MANIFEST, entry_dir, home
from lorakit.store.sources import ALIASES


def list_entries() -> list[dict]:
    out = []
    for kind in KINDS:
        root = home() / kind
        if not root.is_dir():
            continue
        for d in sorted(root.iterdir()):
            if (d / MANIFEST).is_file():
                m = json.loads((d / MANIFEST).read_text())
                m["size"] = sum(f["size"] for f in m["files"].values())
                out.append(m)
    return out


def model_dir(name: str) -> Path:
    """Folder of an installed base model. A path to an HF-format folder is accepted as is."""
    path = Path(name).expanduser()
    if ("/" in name or name.startswith(".")) and (path / "config.json").is_file():
        return path.resolve()
    d = entry_dir("models", name)
    if not (d / MANIFEST).is_file():
        hint = f"run: lorakit install {name}" if name in ALIASES else "run: lorakit install SOURCE --name " + name
        raise NotInstalledError(f"model {name!r} is not installed in {home()}", hint)
    return d


def manifest(kind: str, name: str) -> dict:
    return json.loads((entry_dir(kind, name) / MANIFEST).read_text())
