"""The training loop: read it top to bottom.

recipe -> setup (splits, base + adapter, optimizer) -> epochs of length-bucketed batches, one
optimizer step each -> validation each epoch, scored by the task -> the best epoch's adapter (in the
task metric's own direction), metrics.json, TensorBoard events and a learning-curve plot in the run.

Runs as one process, or as several under ``torchrun`` / ``accelerate launch`` (data parallel):
every process builds the same model and the same global batches, trains on its own share of each
batch, and gradients are averaged by accelerate (DDP, or FSDP / DeepSpeed ZeRO, which also shard the
model: see strategy.py). Process 0 alone writes to the run folder.
"""

import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter

from lorakit.config import RunConfig, load_config
from lorakit.data.batching import bucket_batches, chunks, padded_width
from lorakit.errors import TrainingDiverged, TrainingInterrupted
from lorakit.tasks import Encoded
from lorakit.training import checkpoint, progress, report, run_dir as runs, strategy
from lorakit.training.distributed import gather_objects, passes
from lorakit.training.setup import Setup, save_checkpoint, setup
from lorakit.training.state import Progress
from lorakit.training.stop import StopRequest

LOG_EVERY = 10  # steps per point of the loss curve (TensorBoard and the plot): their mean loss


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
        cfg = (config or load_config(recipe, overrides)).with_absolute_paths()
        run = cfg.run_dir
    s, p = setup(cfg, run, state, overwrite)
    tc = cfg.train

    writer = SummaryWriter(str(run / "tb")) if s.main else None
    bar = progress.TrainProgress(s.total_steps, enabled=show_progress and s.main, completed=p.step)
    with bar, StopRequest() as stop:
        while p.epoch <= tc.epochs:
            batches = bucket_batches(s.lengths, tc.batch_size, tc.seed, p.epoch)
            s.model.train()
            started = time.perf_counter() - p.epoch_seconds
            while p.pos < len(batches):
                batch = batches[p.pos]
                loss = step(s, batch, p)
                _count(s, p, batch, loss, time.perf_counter() - started)
                if p.step % LOG_EVERY == 0 or p.step == s.total_steps:
                    _loss_point(s, p, writer)
                bar.update(p.epoch, loss, p.seen / p.epoch_seconds)
                if stop.requested_everywhere(s.accelerator):
                    save_checkpoint(s, p)
                    raise TrainingInterrupted(f"stopped at step {p.step} of {s.total_steps}; checkpoint saved",
                                              f"continue with: lorakit train --resume {run}")
                if tc.checkpoint_every and p.step % tc.checkpoint_every == 0 and p.pos < len(batches):
                    save_checkpoint(s, p)

            val = validate(s)
            p.history.append({
                "epoch": p.epoch, "step": p.step, "train_loss": p.loss_sum / p.seen,
                "train_samples_per_s": p.seen / p.epoch_seconds, "train_seconds": p.epoch_seconds,
                "tokens_real": p.tokens_real, "tokens_padded": p.tokens_padded,
                **{f"val_{k}": val[k] for k in s.task.metrics}, "loss_curve": p.loss_curve,
            })
            bar.epoch_done(p.epoch, val[tc.metric], tc.metric)
            if writer is not None:
                for key in s.task.metrics:
                    writer.add_scalar(f"val/{key}", val[key], p.step)
            if s.main and not s.sharded:  # a sharded model's forward needs every process
                report.samples(s, p.epoch, p.step, writer)
            keep_best(s, p, val)
            stopping = tc.early_stopping is not None and p.bad_epochs >= tc.early_stopping
            p.next_epoch()
            save_checkpoint(s, p)
            if stopping:
                break
    s.accelerator.wait_for_everyone()
    if not s.main:
        return {}
    writer.close()
    return report.write(s, p)


def step(s: Setup, batch: list[int], p: Progress) -> float:
    """One optimizer step on ``batch`` (indices of training examples); returns its mean loss."""
    model, accelerator = s.model, s.accelerator
    # This process's share, in weighted micro-batches; gradients sync once, on the last one.
    mine = passes(batch, s.rank, s.world, s.micro, s.lengths, s.max_tokens, same_count=s.sharded,
                  units=lambda idx: s.task.loss_units(s.train, idx))
    step_loss = torch.zeros((), device=s.device)
    for i, (idx, weight) in enumerate(mine):
        inputs = {k: v.to(s.device) if isinstance(v, torch.Tensor) else v
                  for k, v in s.task.inputs(s.train, idx, s.pad_id, s.meta).items()}
        with accelerator.no_sync(model) if i < len(mine) - 1 else nullcontext():
            loss = model(**inputs).loss
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at step {p.step + 1} (epoch {p.epoch})",
                    "lower train.lr or set train.max_grad_norm; the last checkpoint and best adapter are kept")
            accelerator.backward(loss * weight)
        step_loss += loss.detach() * weight / s.world
    step_loss = (accelerator.reduce(step_loss, "sum") if s.world > 1 else step_loss).item()
    if s.cfg.train.max_grad_norm:
        accelerator.clip_grad_norm_(model.parameters(), s.cfg.train.max_grad_norm)
    s.optimizer.step()
    s.scheduler.step()
    if s.adalora:  # prune and reallocate ranks from the fresh gradients (before zero_grad)
        s.peft_model.base_model.update_and_allocate(p.step + 1)
    s.optimizer.zero_grad(set_to_none=True)
    return step_loss


def _count(s: Setup, p: Progress, batch: list[int], loss: float, seconds: float) -> None:
    p.step += 1
    p.pos += 1
    p.seen += len(batch)
    p.loss_sum += loss * len(batch)
    p.tokens_real += sum(s.lengths[j] for j in batch)
    p.tokens_padded += sum(len(idx) * padded_width(max(s.lengths[j] for j in idx))
                           for idx in chunks(batch, s.micro, s.lengths, s.max_tokens, backward=True))
    p.epoch_seconds = seconds
    p.window.append(loss)


def _loss_point(s: Setup, p: Progress, writer: SummaryWriter | None) -> None:
    """A point of the loss curve: the mean loss since the last one."""
    mean_loss = sum(p.window) / len(p.window)
    p.window = []
    p.loss_curve.append((p.step, mean_loss))
    if writer is not None:
        writer.add_scalar("train/loss", mean_loss, p.step)
        writer.add_scalar("train/lr", s.scheduler.get_last_lr()[0], p.step)
        writer.add_scalar("train/samples_per_s", p.seen / p.epoch_seconds, p.step)


def validate(s: Setup) -> dict:
    """The task's scores of the model on the validation split. A sharded model's forward is a
    collective: every process then runs every pass, on the whole split; otherwise each process
    takes every world-th example and the outputs are gathered."""
    tc = s.cfg.train
    if s.sharded:
        outputs = s.task.predict(s.model, s.val, s.pad_id, tc.eval_batch_size, s.device, tc.max_tokens_per_pass,
                                 inference_mode=False)
    else:
        share = Encoded(s.val.seqs[s.rank::s.world], s.val.targets[s.rank::s.world])
        mine = s.task.predict(s.model, share, s.pad_id, tc.eval_batch_size, s.device, tc.max_tokens_per_pass)
        shares = gather_objects(mine, s.world)
        outputs = [shares[i % s.world][i // s.world] for i in range(len(s.val))]
    return s.task.score(outputs, s.val, s.meta)


def keep_best(s: Setup, p: Progress, val: dict) -> None:
    """The best epoch's adapter is what the run keeps: saved when this epoch beats the best so far."""
    metric = s.cfg.train.metric
    if not s.task.better(metric, val, p.best and p.best["val"]):
        p.bad_epochs += 1
        return
    p.best = {"epoch": p.epoch, "val": s.task.kept(val)}
    p.bad_epochs = 0
    weights = strategy.full_weights(s.accelerator, s.model)  # every process: gathering is a collective
    if s.main:
        meta = {**s.meta, "base": s.cfg.base, "base_path": str(s.base_dir), "max_length": s.cfg.data.max_length,
                "method": s.cfg.lora.method, "epoch": p.epoch, "task": s.task.name}
        card = s.task.card(s.cfg, meta, val, s.trainable, s.total)
        runs.save_adapter(s.peft_model, weights, s.run, meta, card)
