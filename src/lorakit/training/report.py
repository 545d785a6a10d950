"""The run's report once training ends: metrics.json and the learning-curve plot."""

import json
from contextlib import nullcontext

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def metrics(s, p) -> dict:
    """metrics.json of a finished run (``s``: the Setup, ``p``: its Progress)."""
    tc, history = s.cfg.train, p.history
    return {
        "run": str(s.run),
        "task": s.task.name,
        "best_epoch": p.best["epoch"],
        "best_val": p.best["val"],
        "selection_metric": tc.metric,
        "stopped_early": len(history) < tc.epochs,
        "history": [{k: v for k, v in h.items() if k != "loss_curve"} for h in history],
        "examples": {"train": len(s.splits.train), "val": len(s.splits.val), "test": len(s.splits.test),
                     "skipped_bad_rows": s.splits.skipped + s.train.skipped + s.val.skipped},
        "tokens": {"train_real": sum(h["tokens_real"] for h in history),
                   "train_padded": sum(h["tokens_padded"] for h in history)},
        **s.meta,
        "parameters": {"trainable": s.trainable, "total": s.total, "trainable_percent": 100 * s.trainable / s.total},
        "vocabulary": s.vocabulary,
        "processes": s.world,
        "precision": s.precision,
    }


def samples(s, epoch: int, step: int, writer) -> None:
    """The task's sample outputs of this epoch's model: samples/epoch-N.jsonl and TensorBoard's text tab."""
    # generate() runs the inner model's forward, outside the autocast that frozen_base_in_bf16 wraps around the outer one
    bf16_cpu = s.precision == "bf16" and s.device.type == "cpu"
    with torch.autocast("cpu", dtype=torch.bfloat16) if bf16_cpu else nullcontext():
        shown = s.task.samples(s.peft_model, s.tokenizer, s.splits.val, s.meta, s.device)
    if not shown:
        return
    folder = s.run / "samples"
    folder.mkdir(exist_ok=True)
    with open(folder / f"epoch-{epoch}.jsonl", "w", encoding="utf-8") as f:
        for row in shown:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    if writer is not None:
        text = "\n\n".join("\n".join(f"**{k}**: {v}" for k, v in row.items()) for row in shown)
        writer.add_text("samples", text, step)


def write(s, p) -> dict:
    m = metrics(s, p)
    (s.run / "metrics.json").write_text(json.dumps(m, indent=2))
    learning_curve_png(p.history, s.run / "plots" / "learning_curve.png", s.cfg.train.metric)
    return m


def learning_curve_png(history: list[dict], path, metric: str) -> None:
    """Training loss per logged step, and the validation metric per epoch."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    steps = [p for h in history for p in h.get("loss_curve", [])]
    if steps:
        left.plot([s for s, _ in steps], [v for _, v in steps], lw=1)
    left.set(xlabel="step", ylabel="training loss", title="loss")
    epochs = [h["epoch"] for h in history]
    right.plot(epochs, [h[f"val_{metric}"] for h in history], marker="o")
    right.set(xlabel="epoch", ylabel=f"validation {metric}", title=f"validation {metric}", xticks=epochs)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
