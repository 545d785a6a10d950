"""Everything a run needs before its first step: the processes, the data, the model with its adapter,
the optimizer and schedule — or all of it put back from a checkpoint."""

import math
import os
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, InitProcessGroupKwargs
from transformers import get_scheduler

from lorakit import data as datasets
from lorakit import tasks
from lorakit.config import RunConfig, save_config
from lorakit.data.batching import padded_width
from lorakit.errors import ConfigError, LorakitError
from lorakit.model.device import native_bf16
from lorakit.model.fit import fit_warning, vocabulary_fit
from lorakit.model.load import readable_length
from lorakit.model.peft import add_adapter, frozen_base_in_bf16
from lorakit.store import model_dir
from lorakit.tasks import Encoded, Task
from lorakit.training import checkpoint, progress, run_dir as runs, strategy
from lorakit.training.attention import use_fast_attention_dropout
from lorakit.training.distributed import gather_objects
from lorakit.training.dropout import use_fast_dropout
from lorakit.training.fused_lora import use_fused_lora
from lorakit.training.state import Progress
from lorakit.training.threads import choose_threads


@dataclass
class Setup:
    cfg: RunConfig
    run: Path
    task: Task
    accelerator: Accelerator
    precision: str            # fp32, bf16 or fp16: what the steps compute in
    splits: object            # the task's splits (train / val / test tables)
    meta: dict                # what the task records about its data (labels), in lorakit.json too
    fingerprint: str          # of the training split: a resumed run must see the same data
    train: Encoded
    val: Encoded
    lengths: list[int]        # token counts of the training examples
    pad_id: int
    micro: int                # examples per forward pass in one process
    max_tokens: int | None    # padded tokens per training pass (None: no cap)
    total_steps: int
    vocabulary: dict          # how well the base's tokenizer knows the training texts (model/fit.py)
    tokenizer: object
    model: torch.nn.Module    # as prepared by accelerate (wrapped when distributed)
    peft_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    trainable: int            # parameters trained, of all
    total: int
    base_dir: Path

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def device(self):
        return self.accelerator.device

    @property
    def sharded(self) -> bool:
        return strategy.is_sharded(self.accelerator)

    @property
    def adalora(self) -> bool:
        return self.cfg.lora.method == "adalora"


def setup(cfg: RunConfig, run: Path, state: dict | None, overwrite: bool) -> tuple[Setup, Progress]:
    """Build the run (``state``: a loaded checkpoint to continue from, or None for a new run)."""
    tc = cfg.train
    task = tasks.get(cfg.task)
    precision = train_precision(tc.precision)
    accelerator = make_accelerator(precision, strategy.plugins(cfg, strategy.world_size()))
    strategy.check_active(accelerator, tc.distributed.strategy)
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    if state is not None:
        strategy.check_resumable(accelerator, run)
    base_dir = model_dir(cfg.base)  # fail early, before any data work, if the base is missing
    splits = task.prepare(cfg.data)
    meta = task.meta(splits, cfg.data)
    fingerprint = splits.train.fingerprint()
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
    max_tokens = None if accelerator.distributed_type == DistributedType.DEEPSPEED else tc.max_tokens_per_pass
    if micro * world > tc.batch_size:
        raise ConfigError(f"train.micro_batch_size={micro} x {world} processes exceeds train.batch_size={tc.batch_size}",
                          "lower train.micro_batch_size or raise train.batch_size")
    total_steps = math.ceil(len(splits.train) / tc.batch_size) * tc.epochs

    threads, warning = choose_threads(tc.threads, world)  # from the cores other processes leave free
    torch.set_num_threads(threads)
    if main and warning:
        progress.note(f"warning: {warning}")
    torch.manual_seed(tc.seed)  # head and adapter initialisation: identical on every process
    model, tokenizer = task.load_model(base_dir, meta)
    meta = task.tokenizer_meta(meta, tokenizer)
    for warning in task.base_warnings(model, tokenizer, meta) if main else ():
        progress.note(f"warning: {warning}")
    _check_length(cfg, model, tokenizer)
    model = add_adapter(model, cfg.lora, task.peft_task_type, task.target_presets, total_steps)
    if accelerator.device.type == "cpu":
        use_fast_dropout(model)  # cheaper dropout masks (see dropout.py)
        use_fast_attention_dropout(model)  # and SDPA's own mask
        use_fused_lora(model)  # LoRA layers' training step in one autograd function
        if precision == "bf16":
            frozen_base_in_bf16(model)  # and forward under autocast
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    torch.manual_seed(tc.seed + rank)  # dropout: its own stream per process

    # Tokenise once; each batch is padded to its own longest text (rounded up: see padded_width).
    train = task.encode(tokenizer, splits.train, meta, cfg.data)
    val = task.encode(tokenizer, splits.val, meta, cfg.data)
    vocabulary = vocabulary_fit(tokenizer, splits.train.texts) if task.vocabulary_check else {}
    if main and vocabulary and (warning := fit_warning(vocabulary, cfg.base)):
        vocabulary["warning"] = warning
        progress.note(f"warning: {warning}")

    # Only adapter (and head) weights get gradients and optimizer state. On a CPU, AdamW's fused
    # kernel (cheaper than foreach on many small tensors); foreach on GPUs, where sharded
    # parameters go through it.
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=tc.lr,
                                  weight_decay=tc.weight_decay,
                                  **({"fused": True} if accelerator.device.type == "cpu" else {"foreach": True}))
    scheduler = get_scheduler("constant_with_warmup" if tc.scheduler == "constant" else tc.scheduler, optimizer,
                              num_warmup_steps=round(tc.warmup_ratio * total_steps), num_training_steps=total_steps)
    position = Progress()
    if state is not None:  # whole weights into the plain model; prepare() then shards them if it shards
        checkpoint.restore_weights(model, state["model"])
        position = Progress(**state["progress"])
        if cfg.lora.method == "adalora":
            _restore_adalora(model, state["extra"]["adalora"])
    strategy.wrap_layers_only(accelerator, model)
    model, optimizer = accelerator.prepare(model, optimizer)
    if state is not None:
        strategy.load_optimizer_state(model, optimizer, state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        checkpoint.restore_rng(state["rng"], rank, world, reseed=tc.seed + world * position.step)
    s = Setup(cfg, run, task, accelerator, precision, splits, meta, fingerprint, train, val, train.lengths,
              tokenizer.pad_token_id, micro, max_tokens, total_steps, vocabulary, tokenizer, model,
              accelerator.unwrap_model(model), optimizer, scheduler, trainable, total, base_dir)
    return s, position


def save_checkpoint(s: Setup, p: Progress) -> None:
    """At a step boundary: with the RNG state of now, a resumed run replays the next steps exactly.
    Every process takes part (sharded tensors are gathered, RNG states collected); process 0 writes."""
    weights = strategy.full_weights(s.accelerator, s.model)
    optim = strategy.full_optimizer_state(s.accelerator, s.model, s.optimizer)
    rng = gather_objects(checkpoint.rng_state(), s.world)
    if s.main:
        extra = {"train_fingerprint": s.fingerprint}
        if s.adalora:
            extra["adalora"] = _adalora_state(s.peft_model)
        checkpoint.save(s.run, weights, optim, s.scheduler.state_dict(), asdict(p), rng, extra)


def _check_length(cfg: RunConfig, model, tokenizer) -> None:
    limit = readable_length(model, tokenizer)
    if limit and padded_width(cfg.data.max_length) > limit:
        raise ConfigError(f"data.max_length={cfg.data.max_length} pads batches to {padded_width(cfg.data.max_length)} "
                          f"tokens, more than {cfg.base} can read ({limit})",
                          f"set data.max_length to {next(n for n in range(limit, 0, -1) if padded_width(n) <= limit)} or less")


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
