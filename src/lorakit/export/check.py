"""Compare an exported model with its reference on a run's test split: accuracy change, speed, logits.

Both sides see the same token batches (length-sorted, as in inference) on the same threads; each
is warmed up on one batch, then timed over the whole split, best of ``repeats`` passes.
"""

import time

import torch

from lorakit.data.batching import collate, sorted_batches

# How far an export's logits may be from the reference's: absolute for exact conversions,
# relative to the largest reference logit for int8 (weights rounded to 8 bits).
TOLERANCE = {"safetensors": ("absolute", 1e-5), "onnx": ("absolute", 1e-4), "int8": ("relative", 0.05)}


def _run(model, batches, seqs, pad_id) -> tuple[torch.Tensor, float]:
    out = [None] * len(seqs)
    with torch.inference_mode():
        model(**collate([seqs[i] for i in batches[0]], pad_id))  # warm-up: allocations, lazy init
        started = time.perf_counter()
        for idx in batches:
            logits = model(**collate([seqs[i] for i in idx], pad_id))
            logits = getattr(logits, "logits", logits).float()
            for row, i in enumerate(idx):
                out[i] = logits[row]
        seconds = time.perf_counter() - started
    return torch.stack(out), seconds


def compare(reference, candidate, seqs: list[list[int]], y: list[int], pad_id: int, fmt: str, *,
            batch_size: int = 64, repeats: int = 2, names=("reference", "candidate")) -> dict:
    """``reference`` and ``candidate`` are called as model(input_ids=..., attention_mask=...)."""
    batches = sorted_batches([len(s) for s in seqs], batch_size)
    y = torch.tensor(y)
    sides = {}
    for name, model in zip(names, (reference, candidate)):
        runs = [_run(model, batches, seqs, pad_id) for _ in range(repeats)]
        logits, seconds = runs[0][0], min(s for _, s in runs)
        sides[name] = {"accuracy": (logits.argmax(-1) == y).float().mean().item(), "seconds": seconds,
                       "texts_per_s": len(seqs) / seconds, "logits": logits}
    ref, cand = (sides[n] for n in names)
    diff = (ref["logits"] - cand["logits"]).abs().max().item()
    kind, tol = TOLERANCE[fmt]
    limit = tol if kind == "absolute" else tol * ref["logits"].abs().max().item()
    result = {
        "format": fmt,
        "examples": len(seqs),
        "threads": torch.get_num_threads(),
        "accuracy_change": cand["accuracy"] - ref["accuracy"],
        "speed_ratio": ref["seconds"] / cand["seconds"],
        "max_abs_logit_diff": diff,
        "prediction_agreement": (ref["logits"].argmax(-1) == cand["logits"].argmax(-1)).float().mean().item(),
        "tolerance": {"kind": kind, "value": tol, "limit": limit},
        "within_tolerance": diff <= limit,
    }
    for name in names:
        result[name] = {k: v for k, v in sides[name].items() if k != "logits"}
    result["sides"] = list(names)
    return result
