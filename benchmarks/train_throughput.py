"""Training throughput: lorakit vs the PEFT-docs Trainer reference, side by side, same inputs.

    python benchmarks/train_throughput.py [--examples 2000] [--threads 2] [--reference-args JSON]

Both sides train one epoch on the same stratified subset of tweets-sentiment with minilm and
the same LoRA and optimizer settings, each in its own process; results go to
benchmarks/results/train_throughput.json.
"""

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import matmul_gflops, run_json, write_result  # noqa: E402

HP = {"r": 8, "alpha": 16, "dropout": 0.1, "target_modules": ["query", "key", "value", "dense"],
      "batch_size": 32, "eval_batch_size": 128, "lr": 1e-3, "weight_decay": 0.01, "warmup_ratio": 0.06,
      "max_grad_norm": 1.0, "epochs": 1, "seed": 0, "max_length": 128}


def training_flops_per_token(cfg, attended: float, r: int) -> dict:
    """FLOPs to train one real token through an encoder with frozen base weights and rank-r LoRA on
    each of a layer's six linear layers (the HP target modules: query, key, value and the three dense).

    Base linear layers: forward 2·N, backward 2·N (input gradients only: the base is frozen).
    LoRA: forward 2·r·(in + out) per layer, backward twice that (input and weight gradients).
    Attention scores and mixing: forward 4·L·d per layer for a token of an L-token text, backward
    twice that (both operands are activations); ``attended`` is L averaged over tokens, Σ L² / Σ L.
    Per-example work (pooler, classifier, loss) is left out.
    """
    d, ff, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    base = 4 * layers * (4 * d * d + 2 * d * ff)
    lora = 6 * layers * r * (4 * 2 * d + 2 * (d + ff))
    attention = 3 * 4 * layers * attended * d
    return {"base_linear": base, "lora": lora, "attention": attention, "total": base + lora + attention}


def lorakit_side(model_dir: str, examples: int, val: int, threads: int, out_dir: str) -> None:
    from lorakit.training.loop import train

    m = train(overrides={
        "name": "bench", "out_dir": out_dir, "base": model_dir, "data.dataset": "tweets-sentiment",
        "data.limit": examples, "data.val_limit": val, "data.max_length": HP["max_length"],
        "lora.r": HP["r"], "lora.alpha": HP["alpha"], "lora.dropout": HP["dropout"],
        "lora.target_modules": HP["target_modules"], "train.epochs": HP["epochs"], "train.batch_size": HP["batch_size"],
        "train.lr": HP["lr"], "train.weight_decay": HP["weight_decay"], "train.warmup_ratio": HP["warmup_ratio"],
        "train.max_grad_norm": HP["max_grad_norm"], "train.seed": HP["seed"], "train.threads": threads,
    }, show_progress=False)
    h = m["history"][0]
    print(json.dumps({
        "precision": m["precision"],
        "samples_per_s": h["train_samples_per_s"], "train_seconds": h["train_seconds"],
        "val_accuracy": h["val_accuracy"], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "real_tokens": m["tokens"]["train_real"], "padded_tokens": m["tokens"]["train_padded"],
    }))


def achieved_gflops(model_dir: str, texts: list[str], ours: dict) -> dict:
    """lorakit's FLOPs on its real tokens per second of training, from the lengths of the texts it trained on."""
    from transformers import AutoConfig, AutoTokenizer

    from lorakit.data.batching import encode

    lengths = [len(t) for t in encode(AutoTokenizer.from_pretrained(model_dir), texts, HP["max_length"])]
    assert sum(lengths) == ours["real_tokens"], "the texts are not the ones lorakit trained on"
    per_token = training_flops_per_token(AutoConfig.from_pretrained(model_dir),
                                         sum(n * n for n in lengths) / sum(lengths), HP["r"])
    return {"achieved_gflops_real_tokens": sum(lengths) * per_token["total"] / ours["train_seconds"] / 1e9,
            "flops_per_real_token": {k: round(v) for k, v in per_token.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reference-args", type=json.loads, default={}, metavar="JSON",
                    help='extra TrainingArguments for the reference, e.g. \'{"bf16": true}\'')
    ap.add_argument("--side", choices=["lorakit"], help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side:
        return lorakit_side(a.model_dir, a.examples, a.val, a.threads, a.out_dir)

    from lorakit.data import write_split
    from lorakit.tasks.classification.data import ClassificationData, prepare
    from lorakit.store.sources import ALIASES, package_dir

    model_dir = str(package_dir(*ALIASES["minilm"]))
    with tempfile.TemporaryDirectory() as tmp:
        # The exact examples lorakit will train on (its splits are deterministic), for the reference.
        s = prepare(ClassificationData(dataset="tweets-sentiment", limit=a.examples, val_limit=a.val, max_length=HP["max_length"]))
        write_split(s.train, Path(tmp) / "train.jsonl")
        write_split(s.val, Path(tmp) / "val.jsonl")
        here = Path(__file__).parent
        ref = run_json([sys.executable, str(here / "reference/trainer_lora.py"), model_dir, f"{tmp}/train.jsonl",
                        f"{tmp}/val.jsonl", json.dumps({**HP, "threads": a.threads, "output_dir": f"{tmp}/ref",
                                                          "training_args": a.reference_args})])
        # The matmul peak just before and just after lorakit's run: the machine as the run found it.
        peak_before = matmul_gflops(a.threads)
        ours = run_json([sys.executable, __file__, "--side", "lorakit", "--model-dir", model_dir, "--out-dir", tmp,
                         "--examples", str(a.examples), "--val", str(a.val), "--threads", str(a.threads)])
        peak_after = matmul_gflops(a.threads)
        ours.update(achieved_gflops(model_dir, s.train.texts, ours))
    peak = (peak_before + peak_after) / 2
    peak_bf16 = matmul_gflops(a.threads, dtype="bfloat16")
    result = {
        "settings": {**HP, "examples": a.examples, "val_examples": a.val, "threads": a.threads,
                     "dataset": "tweets-sentiment", "model": "minilm"},
        "reference": {"what": "transformers Trainer + DataCollatorWithPadding + get_peft_model",
                      "training_args": a.reference_args, **ref},
        "lorakit": ours,
        "speedup": ours["samples_per_s"] / ref["samples_per_s"],
        "accuracy_delta": ours["val_accuracy"] - ref["val_accuracy"],
        "peak_rss_ratio": ours["peak_rss_mb"] / ref["peak_rss_mb"],
        "matmul_gflops": peak,
        "matmul_gflops_before_after": [peak_before, peak_after],
        "fraction_of_matmul_peak": ours["achieved_gflops_real_tokens"] / peak,
        # lorakit trains in bf16 where the CPU has it (train.precision auto): its own peak is the bf16 one
        "matmul_gflops_bf16": peak_bf16,
        "fraction_of_bf16_matmul_peak": ours["achieved_gflops_real_tokens"] / peak_bf16,
    }
    # A reference variant is a check of the ratio, kept next to the headline result, not over it.
    variant = "".join(f"-{k}" for k in sorted(a.reference_args))
    path = write_result(f"train_throughput{variant}", result)
    print(json.dumps({k: result[k] for k in ("speedup", "accuracy_delta", "peak_rss_ratio", "fraction_of_matmul_peak")}))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
