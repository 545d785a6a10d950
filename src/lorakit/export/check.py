"""Compare an exported model with its reference on a run's test split: accuracy change, speed, logits.

Both sides see the same token batches (length-sorted, as in inference, padded only to each batch's
longest text: int8 activation scales see padded positions) on the same threads; each is warmed up
on one batch, then timed over the whole split, best of ``repeats`` passes.
"""

import time

import torch

from lorakit.data.batching import sorted_batches
from lorakit.model.forward import batched_logits
from lorakit.tasks.classification.metrics import accuracy

# How far an export may be from its reference: logits for exact conversions; for int8 (weights
# rounded to 8 bits) the class probabilities, which do not depend on how large a model's logits are.
TOLERANCE = {"safetensors": ("logit", 1e-5), "onnx": ("logit", 1e-4), "int8": ("probability", 0.05)}


def _run(model, seqs, pad_id, batch_size) -> tuple[torch.Tensor, float]:
    first = [seqs[i] for i in sorted_batches([len(s) for s in seqs], batch_size)[0]]
    batched_logits(model, first, pad_id, batch_size, multiple=1)  # warm-up: allocations, lazy init
    started = time.perf_counter()
    logits = batched_logits(model, seqs, pad_id, batch_size, multiple=1)
    return logits, time.perf_counter() - started


def compare(reference, candidate, seqs: list[list[int]], y: list[int], pad_id: int, fmt: str, *,
            batch_size: int = 64, repeats: int = 2, names=("reference", "candidate")) -> dict:
    """``reference`` and ``candidate`` are called as model(input_ids=..., attention_mask=...)."""
    sides = {}
    for name, model in zip(names, (reference, candidate)):
        runs = [_run(model, seqs, pad_id, batch_size) for _ in range(repeats)]
        logits, seconds = runs[0][0], min(s for _, s in runs)
        sides[name] = {"accuracy": accuracy(y, logits.argmax(-1).tolist()), "seconds": seconds,
                       "texts_per_s": len(seqs) / seconds, "logits": logits}
    ref, cand = (sides[n] for n in names)
    diff = (ref["logits"] - cand["logits"]).abs().max().item()
    prob_diff = (ref["logits"].softmax(-1) - cand["logits"].softmax(-1)).abs().max().item()
    kind, tol = TOLERANCE[fmt]
    result = {
        "format": fmt,
        "examples": len(seqs),
        "threads": torch.get_num_threads(),
        "accuracy_change": round(cand["accuracy"] - ref["accuracy"], 6),
        "speed_ratio": ref["seconds"] / cand["seconds"],
        "max_abs_logit_diff": diff,
        "max_abs_prob_diff": prob_diff,
        "prediction_agreement": accuracy(ref["logits"].argmax(-1).tolist(), cand["logits"].argmax(-1).tolist()),
        "tolerance": {"on": kind, "max_abs_diff": tol},
        "within_tolerance": (diff if kind == "logit" else prob_diff) <= tol,
    }
    for name in names:
        result[name] = {k: v for k, v in sides[name].items() if k != "logits"}
    result["sides"] = list(names)
    return result
