"""Resumable checkpoints: trainable weights, optimizer, scheduler, every process's RNG, data position.

Written to checkpoint.tmp/ and renamed over checkpoint/, so a kill at any moment leaves the
previous checkpoint intact. Loaded with ``torch.load(weights_only=True)``: no code runs.
Weights and optimizer state are whole tensors keyed by parameter name (gathered first when the
model is sharded), so a checkpoint resumes with any process count and any strategy.
"""

import os
import shutil
from pathlib import Path

import torch

from lorakit.errors import RunError
from lorakit.training.run_dir import swap_in

NAME = "checkpoint"
FORMAT = 2  # 2: optimizer state keyed by parameter name, one RNG state per process


def save(run: Path, weights: dict, optimizer: dict, scheduler: dict, progress: dict, rng: list[dict],
         extra: dict | None = None) -> None:
    staging, final = run / f"{NAME}.tmp", run / NAME
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    torch.save({
        "format": FORMAT,
        "model": weights,
        "optimizer": optimizer,
        "scheduler": scheduler,
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
    state = torch.load(path, weights_only=True)
    if state.get("format") != FORMAT:
        raise RunError(f"{run}: the checkpoint was written by an older lorakit and cannot be resumed",
                       f"start it again: lorakit train {run}/config.yaml --overwrite")
    return state


def restore_weights(model, weights: dict[str, torch.Tensor]) -> None:
    """Into the plain (not yet prepared) model: every process then holds the same full weights."""
    params = dict(model.named_parameters())
    missing = set(weights) - set(params)
    if missing:
        raise RunError(f"checkpoint does not match the model ({len(missing)} unknown weights, e.g. {min(missing)})")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)


def rng_state() -> dict:
    """This process's generators: the CPU one (dropout on CPUs) and the CUDA one (dropout on GPUs)."""
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None}


def restore_rng(saved: list[dict], rank: int, world: int, reseed: int) -> None:
    """Each process continues its own random stream, so dropout masks replay exactly. With another
    process count the streams cannot match the old ones (the shares differ too): every process then
    starts a fresh stream of its own from ``reseed``."""
    if len(saved) != world:
        torch.manual_seed(reseed + rank)
        return
    torch.set_rng_state(saved[rank]["cpu"])
    if saved[rank]["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(saved[rank]["cuda"])
