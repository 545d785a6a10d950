"""The training loop: read it top to bottom.

recipe -> splits -> base + adapter -> epochs of length-bucketed batches -> validation each epoch
-> the best epoch's adapter, metrics.json, TensorBoard events and a learning-curve plot in the run.
"""

import json
import math
import os
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from torch.utils.tensorboard import SummaryWriter
from transformers import get_scheduler

from lorakit import data as datasets
from lorakit.config import RunConfig, load_config, save_config
from lorakit.data.batching import bucket_batches, collate, encode
from lorakit.errors import LorakitError
from lorakit.evaluate.metrics import classification_metrics
from lorakit.evaluate.plots import learning_curve_png
from lorakit.infer.logits import batched_logits
from lorakit.store import model_dir
from lorakit.train import progress, run_dir as runs
from lorakit.train.model import add_adapter, load_base

LOG_EVERY = 10  # steps between TensorBoard loss points


class TrainingDiverged(LorakitError):
    pass


def train(recipe: str | Path | None = None, overrides: list[str] | dict | None = None, *,
          config: RunConfig | None = None, overwrite: bool = False, show_progress: bool = True) -> dict:
    """Train an adapter as the recipe says; returns the run's metrics (also in RUN/metrics.json)."""
    cfg = config or load_config(recipe, overrides)
    tc = cfg.train
    base_dir = model_dir(cfg.base)  # fail early, before any data work, if the base is missing
    splits = datasets.prepare(cfg.data)
    run = cfg.run_dir
    runs.claim(run, overwrite)
    save_config(cfg, run / "config.yaml")
    datasets.write_split(splits.val, run / "data" / "val.jsonl")
    datasets.write_split(splits.test, run / "data" / "test.jsonl")

    torch.set_num_threads(tc.threads or os.cpu_count())
    torch.manual_seed(tc.seed)  # classifier head and adapter initialisation, dropout
    accelerator = Accelerator()
    model, tokenizer = load_base(base_dir, splits.label_names)
    model = add_adapter(model, cfg.lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    # Tokenise once; batches are padded per batch to their own longest text.
    train_seqs = encode(tokenizer, splits.train.texts, cfg.data.max_length)
    train_y = torch.tensor(splits.ids(splits.train))
    val_seqs = encode(tokenizer, splits.val.texts, cfg.data.max_length)
    val_y = splits.ids(splits.val)
    lengths = [len(s) for s in train_seqs]
    pad_id = tokenizer.pad_token_id

    # Only adapter (and head) weights get gradients and optimizer state.
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=tc.lr, weight_decay=tc.weight_decay)
    steps_per_epoch = math.ceil(len(train_seqs) / tc.batch_size)
    total_steps = steps_per_epoch * tc.epochs
    scheduler = get_scheduler("constant_with_warmup" if tc.scheduler == "constant" else tc.scheduler, optimizer,
                              num_warmup_steps=round(tc.warmup_ratio * total_steps), num_training_steps=total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device

    writer = SummaryWriter(str(run / "tb"))
    history, best, step = [], None, 0
    bar = progress.TrainProgress(total_steps, enabled=show_progress)
    with bar:
        for epoch in range(1, tc.epochs + 1):
            model.train()
            started, seen, loss_sum, loss_curve = time.perf_counter(), 0, 0.0, []
            for idx in bucket_batches(lengths, tc.batch_size, tc.seed, epoch):
                batch = {k: v.to(device) for k, v in collate([train_seqs[i] for i in idx], pad_id).items()}
                loss = model(**batch, labels=train_y[idx].to(device)).loss
                if not torch.isfinite(loss):
                    raise TrainingDiverged(f"loss became {loss.item()} at step {step + 1} (epoch {epoch})",
                                           "lower train.lr, or set train.max_grad_norm; the best adapter so far is kept")
                accelerator.backward(loss)
                if tc.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), tc.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)

                step += 1
                seen += len(idx)
                loss_value = loss.item()
                loss_sum += loss_value * len(idx)
                rate = seen / (time.perf_counter() - started)
                if step % LOG_EVERY == 0 or step == total_steps:
                    writer.add_scalar("train/loss", loss_value, step)
                    writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
                    writer.add_scalar("train/samples_per_s", rate, step)
                    loss_curve.append((step, loss_value))
                bar.update(epoch, loss_value, rate)
            train_time = time.perf_counter() - started

            # Validation on the held-out split; the best epoch's adapter is what the run keeps.
            logits = batched_logits(model, val_seqs, pad_id, tc.eval_batch_size, device)
            val = classification_metrics(val_y, logits.argmax(-1).tolist(), splits.label_names)
            for key in ("accuracy", "macro_f1"):
                writer.add_scalar(f"val/{key}", val[key], step)
            history.append({"epoch": epoch, "step": step, "train_loss": loss_sum / seen,
                            "train_samples_per_s": seen / train_time, "train_seconds": train_time,
                            "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"], "loss_curve": loss_curve})
            bar.epoch_done(epoch, val[tc.metric], tc.metric)
            if best is None or val[tc.metric] > best["val"][tc.metric]:
                best = {"epoch": epoch, "val": val}
                meta = {"labels": splits.label_names, "base": cfg.base, "base_path": str(base_dir),
                        "max_length": cfg.data.max_length, "method": cfg.lora.method, "epoch": epoch,
                        "task": "sequence-classification"}
                runs.save_adapter(accelerator.unwrap_model(model), run, meta,
                                  runs.model_card(cfg, meta, val, trainable, total))
    writer.close()

    metrics = {
        "run": str(run),
        "best_epoch": best["epoch"],
        "best_val": {k: best["val"][k] for k in ("accuracy", "macro_f1", "per_class")},
        "selection_metric": tc.metric,
        "history": [{k: v for k, v in h.items() if k != "loss_curve"} for h in history],
        "examples": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test),
                     "skipped_bad_rows": splits.skipped},
        "labels": splits.label_names,
        "parameters": {"trainable": trainable, "total": total, "trainable_percent": 100 * trainable / total},
    }
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2))
    learning_curve_png(history, run / "plots" / "learning_curve.png", tc.metric)
    return metrics
