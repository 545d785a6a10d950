"""The run folder: claim it, save the adapter (with its model card) into it atomically."""

import json
import os
import shutil
from pathlib import Path

from lorakit.errors import RunError


def claim(run_dir: Path, overwrite: bool) -> None:
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise RunError(f"run folder {run_dir} already exists",
                           "pass --overwrite to replace it, or name=NEW_NAME to keep it")
        if not (run_dir / "config.yaml").is_file():
            raise RunError(f"{run_dir} is not a lorakit run folder; refusing to overwrite it",
                           "pick another name=... or out_dir=...")
        shutil.rmtree(run_dir)
    for sub in ("", "data", "plots", "tb"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)


def swap_in(staging: Path, final: Path) -> None:
    """Put a complete folder in place of ``final``. A kill between the two renames leaves the previous
    version as FINAL.old, never half a folder."""
    if final.exists():
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old)
    else:
        os.replace(staging, final)


def save_adapter(model, weights: dict, run_dir: Path, meta: dict, card: str) -> None:
    """Write adapter/ next to the old one, then swap, so a crash never leaves half an adapter. ``weights``
    are the whole trainable tensors (gathered when the model is sharded: the model's own may be pieces)."""
    final = run_dir / "adapter"
    staging = run_dir / "adapter.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, state_dict=weights)
    if "labels" in meta:
        (staging / "labels.json").write_text(json.dumps(meta["labels"], indent=2))
    (staging / "lorakit.json").write_text(json.dumps(meta, indent=2))
    (staging / "README.md").write_text(card)
    swap_in(staging, final)
