"""Find a trained adapter (a run folder, its adapter/ folder, or an installed adapter) and read its metadata."""

import json
from dataclasses import dataclass
from pathlib import Path

from lorakit.errors import NotInstalledError, RunError, StoreError
from lorakit.store import model_dir
from lorakit.store.layout import entry_dir


@dataclass(frozen=True)
class AdapterInfo:
    path: Path          # folder with adapter_config.json, adapter_model.safetensors, lorakit.json
    labels: list[str]
    base: str           # the base model it was trained on (store name or folder)
    max_length: int
    meta: dict


def adapter_dir(run: str | Path) -> Path:
    """Accepts a run folder (runs/NAME) or its adapter/ folder."""
    run = Path(run)
    for d in (run / "adapter", run):
        if (d / "adapter_config.json").is_file() and (d / "lorakit.json").is_file():
            return d
    if run.is_dir():
        raise RunError(f"{run}: no trained adapter here", f"run: lorakit train RECIPE name={run.name}")
    raise RunError(f"run {str(run)!r} not found", "give a run folder such as runs/demo")


def read_adapter(path: Path) -> AdapterInfo:
    try:
        meta = json.loads((path / "lorakit.json").read_text())
        labels = [str(x) for x in meta["labels"]]
        return AdapterInfo(path, labels, str(meta["base"]), int(meta["max_length"]), meta)
    except (OSError, ValueError, KeyError, TypeError):
        raise RunError(f"{path}: lorakit.json is missing or unreadable",
                       "retrain the adapter, or reinstall it into the store") from None


def load_info(run: str | Path) -> AdapterInfo:
    return read_adapter(adapter_dir(run))


def store_adapter(name: str) -> AdapterInfo:
    """An adapter installed in the store under ``name`` (never an arbitrary path)."""
    d = entry_dir("adapters", name)  # validates the name: no '/', no '..'
    if not ((d / "adapter_config.json").is_file() and (d / "lorakit.json").is_file()):
        raise NotInstalledError(f"adapter {name!r} is not installed", f"run: lorakit install ADAPTER_SOURCE --name {name}")
    return read_adapter(d)


def resolve(source: str) -> AdapterInfo:
    """``source`` is a run or adapter folder when it looks like a path, else an installed adapter's name."""
    path = Path(source).expanduser()
    if "/" in source or source.startswith(".") or path.is_dir():
        return load_info(path)
    try:
        return store_adapter(source)
    except NotInstalledError:
        raise NotInstalledError(f"{source!r} is neither a run folder nor an installed adapter",
                                f"give a run folder such as runs/demo, or install it: "
                                f"lorakit install --adapter SOURCE --base BASE --name {source}") from None


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
