"""Pickled checkpoints (.bin/.pt/.ckpt/.pkl): refused by default, converted only on request.

Unpickling can run arbitrary code, so lorakit never unpickles by default. With
--allow-pickle a checkpoint is read with ``torch.load(weights_only=True)`` (torch's restricted
unpickler: tensors and plain containers only, no code) and rewritten as safetensors; the
pickle itself never enters the store.
"""

import json
import re
import warnings
from pathlib import Path

from lorakit.errors import StoreError

PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"}
HINT = "lorakit installs safetensors only; --allow-pickle converts tensors-only checkpoints (no code is run)"


def is_pickle(rel: str) -> bool:
    return Path(rel).suffix.lower() in PICKLE_SUFFIXES


def refuse(source: str, pickles: list[str]) -> StoreError:
    shown = ", ".join(pickles[:3]) + (f" (+{len(pickles) - 3} more)" if len(pickles) > 3 else "")
    return StoreError(f"{source}: refusing pickled checkpoint {shown}: loading a pickle can run code", HINT)


def _flat_tensors(obj, rel: str) -> dict:
    import torch

    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]  # lightning-style checkpoints
    if not isinstance(obj, dict) or not obj:
        raise StoreError(f"{rel}: not a state dict of tensors", HINT)
    out = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise StoreError(f"{rel}: entry {str(k)[:60]!r} is not a tensor", "convert the checkpoint to a state dict")
        out[k] = v.detach().contiguous()
    # safetensors refuses shared storage: give every tensor its own copy
    seen = set()
    for k, v in out.items():
        ptr = (v.untyped_storage().data_ptr(), v.storage_offset())
        if v.untyped_storage().data_ptr() in seen:
            out[k] = v.clone()
        seen.add(ptr[0])
    return out


def safetensors_name(rel: str) -> str:
    """pytorch_model.bin -> model.safetensors, adapter_model.bin -> adapter_model.safetensors."""
    p = Path(rel)
    stem = p.stem.replace("pytorch_model", "model")
    return (p.parent / f"{stem}.safetensors").as_posix()


def convert(path: Path, rel: str, out: Path) -> Path:
    """Read ``path`` with the restricted unpickler and write ``out`` as safetensors."""
    import pickle

    import torch
    from safetensors.torch import save_file

    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are noise for our users
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()
        why = next((line for line in first if "Unsupported" in line or "global" in line.lower()),
                   first[0] if first else "")
        raise StoreError(f"{rel}: refused: the pickle holds more than tensors ({why.strip()[:160]})",
                         "only tensors-only checkpoints can be converted; ask for a .safetensors file") from None
    except Exception as e:  # a corrupt or foreign file: torch raises many kinds
        raise StoreError(f"{rel}: cannot read as a torch checkpoint ({e.__class__.__name__})", HINT) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(_flat_tensors(obj, rel), str(out), metadata={"format": "pt", "converted_from": Path(rel).name})
    return out


def convert_index(path: Path, out: Path) -> Path:
    """pytorch_model.bin.index.json -> model.safetensors.index.json with shard names rewritten."""
    try:
        index = json.loads(path.read_text())
        index["weight_map"] = {k: safetensors_name(v) for k, v in index["weight_map"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise StoreError(f"{path.name}: malformed checkpoint index (no weight_map of tensor names to files)",
                         f"remove {path.name} if the weights are one file, or fix its weight_map") from None
    out.write_text(json.dumps(index, indent=2))
    return out


def is_pickle_index(rel: str) -> bool:
    return bool(re.search(r"\.(bin|pt|pth)\.index\.json$", rel))
