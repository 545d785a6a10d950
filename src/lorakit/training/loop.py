"""The training loop: read it top to bottom.

recipe -> splits -> base + adapter -> epochs of length-bucketed batches -> validation each epoch
-> the best epoch's adapter, metrics.json, TensorBoard events and a learning-curve plot in the run.

Runs as one process, or as several under ``torchrun`` / ``accelerate launch`` (data parallel):
every process builds the same model and the same global batches, trains on its own share of each
batch, and gradients are averaged by accelerate (DDP, or FSDP / DeepSpeed ZeRO, which also shard the
model: see strategy.py). Process 0 alone writes to the run folder.
"""

import hashlib
import json
import math
import os
import signal
import time
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, InitProcessGroupKwargs
from torch.utils.tensorboard import SummaryWriter
from transformers import get_scheduler

from lorakit import data as datasets
from lorakit.config import RunConfig, load_config, save_config
from lorakit.data.batching import bucket_batches, chunks, collate, encode, padded_width
from lorakit.errors import ConfigError, LorakitError, TrainingDiverged, TrainingInterrupted
from lorakit.evaluation.metrics import classification_metrics
from lorakit.evaluation.plots import learning_curve_png
from lorakit.infer.logits import batched_logits
from lorakit.infer.precision import native_bf16
from lorakit.store import model_dir
from lorakit.training import checkpoint, progress, run_dir as runs, strategy
from lorakit.training.attention import use_fast_attention_dropout
from lorakit.training.dropout import use_fast_dropout
from lorakit.training.fused_lora import use_fused_lora
from lorakit.training.distributed import gather_objects, passes
from lorakit.training.model import add_adapter, frozen_base_in_bf16, load_base, readable_length

LOG_EVERY = 10  # steps per point of the loss curve (TensorBoard and the plot): their mean loss


def _fingerprint(texts: list[str], labels: list[str]) -> str:
    h = hashlib.sha256()
    for t, y in zip(texts, labels):
        h.update(t.encode("utf-8", "surrogatepass") + b"\0" + y.encode() + b"\1")
    return h.hexdigest()


class _StopRequest:
    """First Ctrl-C asks the loop to stop at the next step boundary (and save); a second one kills."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self.previous = None
        return self

    def requested_everywhere(self, accelerator) -> bool:
        """All processes must stop at the same step, or the others would wait in a collective."""
        if accelerator.num_processes == 1:
            return self.requested
        flag = torch.tensor(float(self.requested), device=accelerator.device)
        return bool(accelerator.reduce(flag, "sum").item() > 0)

    def _handle(self, *_):
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def train(recipe: str | Path | None = None, overrides: list[str] | dict | None = None, *,
          config: RunConfig | None = None, resume: str | Path | None = None, overwrite: bool = False,
          show_progress: bool = True) -> dict:
    """Train an adapter as the recipe says (or continue ``resume``); returns the run's metrics."""
    state = None
    if resume is not None:
        run = Path(resume)
        state = checkpoint.load(run)
        cfg = load_config(run / "config.yaml")
    else:
        cfg = config or load_config(recipe, overrides)
        run = cfg.run_dir
    tc = cfg.train
    precision = train_precision(tc.precision)
    accelerator = make_accelerator(precision, strategy.plugins(cfg, strategy.world_size()))
    strategy.check_active(accelerator, tc.distributed.strategy)
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    sharded = strategy.is_sharded(accelerator)
    deepspeed = accelerator.distributed_type == DistributedType.DEEPSPEED
    if state is not None:
        strategy.check_resumable(accelerator, run)
    base_dir = model_dir(cfg.base)  # fail early, before any data work, if the base is missing
    splits = datasets.prepare(cfg.data)
    fingerprint = _fingerprint(splits.train.texts, splits.train.labels)
    if state is not None and state["extra"]["train_fingerprint"] != fingerprint:
        raise LorakitError(f"{run}: the training data changed since the checkpoint was written",
                           "restore the data, or start a new run")
    if state is None and main:
        runs.claim(run, overwrite)
        save_config(cfg, run / "config.yaml")
        datasets.write_split(splits.val, run / "data" / "val.jsonl")
        datasets.write_split(splits.test, run / "data" / "test.jsonl")

    # Global batch = batch_size examples per optimizer step, whatever the number of processes.
    micro = tc.micro_batch_size or math.ceil(tc.batch_size / world)
    # DeepSpeed steps inside the backward of a fixed number of passes: one per process and step.
    max_tokens = None if deepspeed else tc.max_tokens_per_pass
    if micro * world > tc.batch_size:
        raise ConfigError(f"train.micro_batch_size={micro} x {world} processes exceeds train.batch_size={tc.batch_size}",
                          "lower train.micro_batch_size or raise train.batch_size")
    steps_per_epoch = math.ceil(len(splits.train) / tc.batch_size)
    total_steps = steps_per_epoch * tc.epochs

    torch.set_num_threads(tc.threads or max(1, (os.cpu_count() or 1) // world))
    torch.manual_seed(tc.seed)  # classifier head and adapter initialisation: identical on every process
    model, tokenizer = load_base(base_dir, splits.label_names)
    limit = readable_length(model, tokenizer)
    if limit and padded_width(cfg.data.max_length) > limit:
        raise ConfigError(f"data.max_length={cfg.data.max_length} pads batches to {padded_width(cfg.data.max_length)} "
                          f"tokens, more than {cfg.base} can read ({limit})",
                          f"set data.max_length to {next(n for n in range(limit, 0, -1) if padded_width(n) <= limit)} or less")
    model = add_adapter(model, cfg.lora, total_steps)
    if accelerator.device.type == "cpu":
        use_fast_dropout(model)  # the mask's random numbers were a third of a CPU step
        use_fast_attention_dropout(model)  # and SDPA's own mask 6% of what was left
        use_fused_lora(model)  # LoRA layers' training step in one autograd function
        if precision == "bf16":
            frozen_base_in_bf16(model)  # and forward under autocast
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    torch.manual_seed(tc.seed + rank)  # dropout: its own stream per process

    # Tokenise once; each batch is padded to its own longest text (rounded up: see padded_width).
    train_seqs = encode(tokenizer, splits.train.texts, cfg.data.max_length)
    train_y = torch.tensor(splits.ids(splits.train))
    val_seqs = encode(tokenizer, splits.val.texts, cfg.data.max_length)
    val_y = splits.ids(splits.val)
    lengths = [len(s) for s in train_seqs]
    pad_id = tokenizer.pad_token_id

    # Only adapter (and head) weights get gradients and optimizer state. On a CPU, AdamW's fused
    # kernel: a third of the time of its foreach form on minilm's 76 adapter and head tensors.
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=tc.lr,
                                  weight_decay=tc.weight_decay,
                                  **({"fused": True} if accelerator.device.type == "cpu" else {"foreach": True}))
    scheduler = get_scheduler("constant_with_warmup" if tc.scheduler == "constant" else tc.scheduler, optimizer,
                              num_warmup_steps=round(tc.warmup_ratio * total_steps), num_training_steps=total_steps)
    adalora = cfg.lora.method == "adalora"
    p = {"epoch": 1, "pos": 0, "step": 0, "seen": 0, "loss_sum": 0.0, "epoch_seconds": 0.0, "tokens_real": 0,
         "tokens_padded": 0, "history": [], "best": None, "bad_epochs": 0, "loss_curve": [], "window": []}
    if state is not None:  # whole weights into the plain model; prepare() then shards them if it shards
        checkpoint.restore_weights(model, state["model"])
        p = state["progress"]
        if adalora:
            _restore_adalora(model, state["extra"]["adalora"])
    strategy.wrap_layers_only(accelerator, model)
    model, optimizer = accelerator.prepare(model, optimizer)
    peft_model = accelerator.unwrap_model(model)
    device = accelerator.device
    if state is not None:
        strategy.load_optimizer_state(model, optimizer, state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        checkpoint.restore_rng(state["rng"], rank, world, reseed=tc.seed + world * p["step"])

    def save_checkpoint() -> None:
        """At a step boundary: with the RNG state of now, a resumed run replays the next steps exactly.
        Every process takes part (sharded tensors are gathered, RNG states collected); process 0 writes."""
        weights = strategy.full_weights(accelerator, model)
        optim = strategy.full_optimizer_state(accelerator, model, optimizer)
        rng = gather_objects(checkpoint.rng_state(), world)
        if main:
            extra = {"train_fingerprint": fingerprint}
            if adalora:
                extra["adalora"] = _adalora_state(peft_model)
            checkpoint.save(run, weights, optim, scheduler.state_dict(), p, rng, extra)

    writer = SummaryWriter(str(run / "tb")) if main else None
    bar = progress.TrainProgress(total_steps, enabled=show_progress and main, completed=p["step"])
    with bar, _StopRequest() as stop:
        while p["epoch"] <= tc.epochs:
            epoch = p["epoch"]
            batches = bucket_batches(lengths, tc.batch_size, tc.seed, epoch)
            model.train()
            started = time.perf_counter() - p["epoch_seconds"]
            while p["pos"] < len(batches):
                batch = batches[p["pos"]]
                # This process's share, in weighted micro-batches; gradients sync once, on the last one.
                mine = passes(batch, rank, world, micro, lengths, max_tokens, same_count=sharded)
                step_loss = torch.zeros((), device=device)
                for i, (idx, weight) in enumerate(mine):
                    inputs = {k: v.to(device) for k, v in collate([train_seqs[j] for j in idx], pad_id).items()}
                    with accelerator.no_sync(model) if i < len(mine) - 1 else nullcontext():
                        loss = model(**inputs, labels=train_y[idx].to(device)).loss
                        if not torch.isfinite(loss):
                            raise TrainingDiverged(
                                f"loss became {loss.item()} at step {p['step'] + 1} (epoch {epoch})",
                                "lower train.lr or set train.max_grad_norm; the last checkpoint and best adapter are kept")
                        accelerator.backward(loss * weight)
                    step_loss += loss.detach() * weight / world
                step_loss = (accelerator.reduce(step_loss, "sum") if world > 1 else step_loss).item()
                if tc.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), tc.max_grad_norm)
                optimizer.step()
                scheduler.step()
                if adalora:  # prune and reallocate ranks from the fresh gradients (before zero_grad)
                    peft_model.base_model.update_and_allocate(p["step"] + 1)
                optimizer.zero_grad(set_to_none=True)

                p["step"] += 1
                p["pos"] += 1
                p["seen"] += len(batch)
                p["loss_sum"] += step_loss * len(batch)
                p["tokens_real"] += sum(lengths[j] for j in batch)
                p["tokens_padded"] += sum(len(idx) * padded_width(max(lengths[j] for j in idx))
                                          for idx in chunks(batch, micro, lengths, max_tokens, backward=True))
                p["epoch_seconds"] = time.perf_counter() - started
                rate = p["seen"] / p["epoch_seconds"]
                p["window"].append(step_loss)
                if p["step"] % LOG_EVERY == 0 or p["step"] == total_steps:
                    mean_loss = sum(p["window"]) / len(p["window"])  # the mean since the last point
                    p["window"] = []
                    p["loss_curve"].append((p["step"], mean_loss))
                    if main:
                        writer.add_scalar("train/loss", mean_loss, p["step"])
                        writer.add_scalar("train/lr", scheduler.get_last_lr()[0], p["step"])
                        writer.add_scalar("train/samples_per_s", rate, p["step"])
                bar.update(epoch, step_loss, rate)
                if stop.requested_everywhere(accelerator):
                    save_checkpoint()
                    raise TrainingInterrupted(f"stopped at step {p['step']} of {total_steps}; checkpoint saved",
                                              f"continue with: lorakit train --resume {run}")
                if tc.checkpoint_every and p["step"] % tc.checkpoint_every == 0 and p["pos"] < len(batches):
                    save_checkpoint()

            # Validation on the held-out split; the best epoch's adapter is what the run keeps. A sharded
            # model's forward is a collective: every process then runs every pass, on the whole split.
            if sharded:
                y_pred = strategy.predictions(model, val_seqs, pad_id, tc.eval_batch_size, device,
                                              tc.max_tokens_per_pass)
            else:
                logits = batched_logits(model, val_seqs[rank::world], pad_id, tc.eval_batch_size, device,
                                        tc.max_tokens_per_pass)
                shares = gather_objects(logits.argmax(-1).tolist(), world)
                y_pred = [shares[i % world][i // world] for i in range(len(val_seqs))]
            val = classification_metrics(val_y, y_pred, splits.label_names)
            p["history"].append({
                "epoch": epoch, "step": p["step"], "train_loss": p["loss_sum"] / p["seen"],
                "train_samples_per_s": p["seen"] / p["epoch_seconds"], "train_seconds": p["epoch_seconds"],
                "tokens_real": p["tokens_real"], "tokens_padded": p["tokens_padded"],
                "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"], "loss_curve": p["loss_curve"],
            })
            bar.epoch_done(epoch, val[tc.metric], tc.metric)
            if main:
                for key in ("accuracy", "macro_f1"):
                    writer.add_scalar(f"val/{key}", val[key], p["step"])
            if p["best"] is None or val[tc.metric] > p["best"]["val"][tc.metric]:
                p["best"] = {"epoch": epoch, "val": {k: val[k] for k in ("accuracy", "macro_f1", "per_class")}}
                p["bad_epochs"] = 0
                weights = strategy.full_weights(accelerator, model)  # every process: gathering is a collective
                if main:
                    meta = {"labels": splits.label_names, "base": cfg.base, "base_path": str(base_dir),
                            "max_length": cfg.data.max_length, "method": cfg.lora.method, "epoch": epoch,
                            "task": "sequence-classification"}
                    runs.save_adapter(peft_model, weights, run, meta, runs.model_card(cfg, meta, val, trainable, total))
            else:
                p["bad_epochs"] += 1
            stopping = tc.early_stopping is not None and p["bad_epochs"] >= tc.early_stopping
            p.update(epoch=epoch + 1, pos=0, seen=0, loss_sum=0.0, epoch_seconds=0.0, tokens_real=0,
                     tokens_padded=0, loss_curve=[])
            save_checkpoint()
            if stopping:
                break
    accelerator.wait_for_everyone()
    if not main:
        return {}
    writer.close()

    history = p["history"]
    metrics = {
        "run": str(run),
        "best_epoch": p["best"]["epoch"],
        "best_val": p["best"]["val"],
        "selection_metric": tc.metric,
        "stopped_early": len(history) < tc.epochs,
        "history": [{k: v for k, v in h.items() if k != "loss_curve"} for h in history],
        "examples": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test),
                     "skipped_bad_rows": splits.skipped},
        "tokens": {"train_real": sum(h["tokens_real"] for h in history),
                   "train_padded": sum(h["tokens_padded"] for h in history)},
        "labels": splits.label_names,
        "parameters": {"trainable": trainable, "total": total, "trainable_percent": 100 * trainable / total},
        "processes": world,
        "precision": precision,
    }
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2))
    learning_curve_png(history, run / "plots" / "learning_curve.png", tc.metric)
    return metrics


def train_precision(precision: str) -> str:
    """fp32 or bf16 (fp16 only on GPUs). ``auto``: bf16 where the hardware multiplies it natively
    (GPUs that support it; CPUs with AMX or AVX-512 BF16), fp32 elsewhere."""
    cuda = torch.cuda.is_available()
    if precision == "auto":
        return "bf16" if (torch.cuda.is_bf16_supported() if cuda else native_bf16()) else "fp32"
    return "fp32" if precision == "fp16" and not cuda else precision


def make_accelerator(precision: str, plugins: dict | None = None) -> Accelerator:
    """One process, or one of several started by torchrun / accelerate launch (gloo on CPUs, NCCL on GPUs);
    ``precision``: train_precision's answer; ``plugins``: accelerate's FSDP or DeepSpeed plugin (strategy.plugins)."""
    cuda = torch.cuda.is_available()
    multi_process = int(os.environ.get("WORLD_SIZE", "1")) > 1
    # A rank that dies must not leave the others waiting for half an hour in a collective.
    timeout = InitProcessGroupKwargs(timeout=timedelta(seconds=int(os.environ.get("LORAKIT_DIST_TIMEOUT", "120"))))
    # On CPUs the loop applies bf16 itself (frozen_base_in_bf16 and autocast): accelerate's setting
    # is fixed for the life of the process, and a second run in it may want another precision.
    return Accelerator(cpu=multi_process and not cuda, mixed_precision=precision if cuda and precision != "fp32" else "no",
                       kwargs_handlers=[timeout], **(plugins or {}))


def _adalora_state(peft_model) -> dict:
    alloc = peft_model.base_model.rankallocator
    cfg = peft_model.peft_config[peft_model.active_adapter]
    return {"ipt": dict(alloc.ipt), "exp_avg_ipt": dict(alloc.exp_avg_ipt), "exp_avg_unc": dict(alloc.exp_avg_unc),
            "rank_pattern": cfg.rank_pattern}


def _restore_adalora(peft_model, saved: dict) -> None:
    alloc = peft_model.base_model.rankallocator
    alloc.ipt, alloc.exp_avg_ipt, alloc.exp_avg_unc = saved["ipt"], saved["exp_avg_ipt"], saved["exp_avg_unc"]
    peft_model.peft_config[peft_model.active_adapter].rank_pattern = saved["rank_pattern"]
