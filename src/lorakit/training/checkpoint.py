"""Resumable checkpoints: trainable weights, optimizer, scheduler, RNG and data position.

Written to checkpoint.tmp/ and renamed over checkpoint/, so a kill at any moment leaves the
previous checkpoint intact. Loaded with ``torch.load(weights_only=True)``: no code runs.
"""

import os
import shutil
from pathlib import Path

import torch

from lorakit.errors import RunError
from lorakit.training.run_dir import swap_in

NAME = "checkpoint"


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def save(run: Path, model, optimizer, scheduler, progress: dict, rng: torch.Tensor, extra: dict | None = None) -> None:
    staging, final = run / f"{NAME}.tmp", run / NAME
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    torch.save({
        "model": trainable_state(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng,
        "progress": progress,
        "extra": extra or {},
    }, staging / "state.pt")
    with open(staging / "state.pt", "rb") as f:
        os.fsync(f.fileno())
    swap_in(staging, final)


def load(run: Path) -> dict:
    path = run / NAME / "state.pt"
    if not path.is_file():
        # A kill between the two renames in save() leaves only checkpoint.old: still a good checkpoint.
        path = run / f"{NAME}.old" / "state.pt"
    if not path.is_file():
        raise RunError(f"{run}: no checkpoint to resume from", f"start it again: lorakit train {run}/config.yaml --overwrite")
    return torch.load(path, weights_only=True)


def restore(state: dict, model, optimizer, scheduler) -> None:
    params = dict(model.named_parameters())
    missing = set(state["model"]) - set(params)
    if missing:
        raise RunError(f"checkpoint does not match the model ({len(missing)} unknown weights, e.g. {min(missing)})")
    with torch.no_grad():
        for name, value in state["model"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
