"""Find a trained adapter and read what lorakit recorded about it: the one lookup every command uses.

A source is a run folder (runs/NAME), its adapter/ folder, or the name of an adapter installed in
the store. The folder holds PEFT's adapter_config.json and adapter_model.safetensors, and
lorakit.json: the task, the base it was trained on, and what the task needs (labels, max_length).
"""

import json
from dataclasses import dataclass
from pathlib import Path

from lorakit.errors import LorakitError, NotInstalledError, RunError, StoreError
from lorakit.model.merged import read_merged
from lorakit.store import model_dir
from lorakit.store.layout import entry_dir

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
META = "lorakit.json"


class AdapterError(LorakitError):
    """An adapter cannot be used as asked (loaded, merged, combined)."""


@dataclass(frozen=True)
class AdapterInfo:
    path: Path          # the folder with adapter_config.json, adapter_model.safetensors and lorakit.json
    task: str           # the task it was trained for (a name of lorakit.tasks)
    base: str           # the base model it was trained on: a store name or a folder
    labels: list[str]   # classification labels (empty for tasks without labels)
    max_length: int
    meta: dict          # lorakit.json as written


def _looks_like_path(source: str) -> bool:
    return "/" in source or source.startswith(".") or Path(source).expanduser().exists()


def locate(source: str | Path) -> Path:
    """The adapter folder of ``source``: a path when it looks like one, else an installed adapter's name."""
    source = str(source)
    path = Path(source).expanduser()
    if _looks_like_path(source):
        for d in (path / "adapter", path):
            if (d / CONFIG).is_file():
                return d
        if read_merged(path) is not None:
            raise RunError(f"{source} is a merged model, not an adapter: this command takes a run folder, an adapter "
                           "folder or an installed adapter's name",
                           "give the run it was merged from; lorakit predict takes merged and exported folders")
        if path.is_dir():
            raise RunError(f"{source}: no trained adapter here (no {CONFIG})",
                           f"give a run folder written by lorakit train, or train one: lorakit train RECIPE name={path.name}")
        raise RunError(f"run {source!r} not found", "give a run folder such as runs/demo")
    try:
        return installed_dir(source)
    except NotInstalledError:
        raise NotInstalledError(f"{source!r} is neither a run folder nor an installed adapter",
                                f"give a run folder such as runs/demo, or install it: "
                                f"lorakit install --adapter SOURCE --base BASE --name {source}") from None


def installed_dir(name: str) -> Path:
    """The folder of the adapter installed in the store as ``name`` (never an arbitrary path)."""
    d = entry_dir("adapters", name)  # validates the name: no '/', no '..'
    if not (d / CONFIG).is_file():
        raise NotInstalledError(f"adapter {name!r} is not installed",
                                f"run: lorakit install --adapter SOURCE --base BASE --name {name}")
    return d


def read_info(path: Path) -> AdapterInfo:
    """lorakit.json of an adapter folder, checked for the keys every task records."""
    try:
        meta = json.loads((path / META).read_text())
        return AdapterInfo(path, str(meta.get("task", "classification")), str(meta["base"]),
                           [str(x) for x in meta.get("labels", [])], int(meta["max_length"]), meta)
    except (OSError, ValueError, KeyError, TypeError):
        raise RunError(f"{path}: {META} is missing or unreadable (the task, base and labels lorakit recorded)",
                       "give an adapter written by lorakit train, or reinstall it into the store") from None


def resolve(source: str | Path) -> AdapterInfo:
    return read_info(locate(source))


def from_store(name: str) -> AdapterInfo:
    """An adapter installed in the store (by name only, never a path: for requests from the network)."""
    return read_info(installed_dir(name))


def same_base(info: AdapterInfo, base_name: str, base_path: Path) -> bool:
    """True when the adapter was trained on this base (by store name, or by the same folder)."""
    if info.base == base_name:
        return True
    candidates = [info.meta.get("base_path")]
    try:
        candidates.append(str(model_dir(info.base)))
    except StoreError:
        pass
    return any(c and Path(c).resolve() == base_path.resolve() for c in candidates)
