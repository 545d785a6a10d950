"""Packing short examples into shared rows vs length-bucketed padded batches, side by side.

    python benchmarks/train_packing.py [--dataset bible-en-fr] [--examples 320] [--threads 2] [--rounds 2]

Both sides train smollm2 (install it first: lorakit install smollm2) one epoch on the same subset
with the same recipe, each in its own process, data.packing off then on, alternating for
``--rounds`` rounds (the ratio is of the medians); the result
(benchmarks/results/train_packing.json) gives real tokens/s and validation loss of each, and the
share of padding in the unpacked batches: the most packing could save.
"""

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import run_json, write_result  # noqa: E402


def side(dataset: str, examples: int, threads: int, packing: bool, out_dir: str) -> None:
    from lorakit.training.loop import train

    m = train(overrides={
        "task": "causal-lm", "name": "bench", "out_dir": out_dir, "base": "smollm2", "data.dataset": dataset,
        "data.limit": examples, "data.val_limit": 100, "data.max_length": 192, "data.packing": packing,
        "lora.r": 16, "lora.alpha": 32, "lora.dropout": 0.05, "train.epochs": 1, "train.batch_size": 16,
        "train.lr": 1e-3, "train.threads": threads, "train.seed": 0,
    }, show_progress=False)
    h = m["history"][0]
    print(json.dumps({"real_tokens_per_s": h["tokens_real"] / h["train_seconds"], "train_seconds": h["train_seconds"],
                      "tokens_real": h["tokens_real"],
                      "padding_share_unpacked": 1 - h["tokens_real"] / h["tokens_padded"], "val_loss": h["val_loss"]}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="bible-en-fr")
    ap.add_argument("--examples", type=int, default=320)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--side", choices=["plain", "packed"], help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side:
        return side(a.dataset, a.examples, a.threads, a.side == "packed", a.out_dir)
    rounds = {"plain": [], "packed": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.rounds):
            for name in rounds:
                rounds[name].append(run_json([sys.executable, __file__, "--side", name, "--dataset", a.dataset,
                                              "--examples", str(a.examples), "--threads", str(a.threads),
                                              "--out-dir", f"{tmp}/{name}-{i}"]))
    speed = {name: statistics.median(r["real_tokens_per_s"] for r in runs) for name, runs in rounds.items()}
    loss = {name: runs[0]["val_loss"] for name, runs in rounds.items()}
    result = {"dataset": a.dataset, "examples": a.examples, "max_length": 192, "batch_size": 16,
              "padding_share_unpacked": rounds["plain"][0]["padding_share_unpacked"],
              "real_tokens_per_s": speed, "val_loss": loss, "rounds": rounds,
              "speed_ratio_packed": speed["packed"] / speed["plain"],
              "val_loss_change": loss["packed"] / loss["plain"] - 1}
    print(json.dumps(result, indent=2))
    print(write_result("train_packing", result))


if __name__ == "__main__":
    main()
