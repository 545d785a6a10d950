"""FSDP and DeepSpeed ZeRO through accelerate's plugins, and the gathering a sharded model needs.

``train.distributed.strategy`` picks how processes share the model: ddp (each holds all of it),
fsdp or deepspeed (weights, gradients and optimizer state in pieces, one per process). Sharding
changes two things for the loop. A sharded model's forward pass is a collective (each process
gathers the pieces it lacks), so all processes must run the same passes. And its tensors are
pieces, so saving gathers them whole first: adapters and checkpoints are the same files whatever
the strategy (PEFT's known pitfall otherwise: ZeRO-3 and FSDP adapters with empty or partial
``lora_B`` tensors), and a checkpoint of one strategy resumes under another.
"""

import os
from importlib.util import find_spec

import torch
from accelerate.utils import DistributedType
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                     get_optimizer_state_dict, set_optimizer_state_dict)

from lorakit.errors import ConfigError, RunError

SHARDED = (DistributedType.FSDP, DistributedType.DEEPSPEED)
ADAM_STATES = ("exp_avg", "exp_avg_sq")


def plugins(cfg, world: int) -> dict:
    """Keyword arguments for ``Accelerator``: the plugin of the recipe's strategy (none for ddp or one process)."""
    dc, tc = cfg.train.distributed, cfg.train
    if dc.strategy == "ddp" or world == 1:
        return {}
    if cfg.lora.method == "adalora":
        raise ConfigError(f"lora.method=adalora cannot train with train.distributed.strategy={dc.strategy}: its rank "
                          "allocator reads whole gradients, which sharding splits",
                          "use train.distributed.strategy=ddp")
    from accelerate import DeepSpeedPlugin, FullyShardedDataParallelPlugin

    if dc.strategy == "fsdp":
        v1 = dc.fsdp_version == 1
        return {"fsdp_plugin": FullyShardedDataParallelPlugin(
            fsdp_version=dc.fsdp_version,
            reshard_after_forward=(("FULL_SHARD" if dc.reshard_after_forward else "SHARD_GRAD_OP") if v1
                                   else dc.reshard_after_forward),
            auto_wrap_policy="transformer_based_wrap" if dc.auto_wrap == "transformer" else "no_wrap",
            cpu_offload=dc.cpu_offload,
            use_orig_params=True if v1 else None,  # FSDP1: frozen base and trainable adapter in one flat unit
        )}
    if find_spec("deepspeed") is None:
        raise ConfigError("train.distributed.strategy=deepspeed: DeepSpeed is not installed",
                          "pip install deepspeed, or use train.distributed.strategy=fsdp")
    if tc.micro_batch_size is not None:
        raise ConfigError("train.micro_batch_size does not apply with train.distributed.strategy=deepspeed "
                          "(each process takes its share of a batch in one pass)",
                          "remove train.micro_batch_size, or use train.distributed.strategy=fsdp")
    plugin = DeepSpeedPlugin(
        zero_stage=dc.zero_stage,
        gradient_accumulation_steps=1,
        gradient_clipping=tc.max_grad_norm or 0.0,
        offload_optimizer_device="cpu" if dc.cpu_offload else "none",
        offload_param_device="cpu" if dc.cpu_offload and dc.zero_stage == 3 else "none",
        # Every process builds the whole model (as under DDP) and ZeRO-3 partitions it in prepare():
        # the seeded adapter initialisation and checkpoint restore stay the same code for all strategies.
        zero3_init_flag=False,
    )
    micro = -(-tc.batch_size // world)
    # torch's AdamW steps ZeRO's partitions (also when offloaded: the checkpoint format stays AdamW's).
    plugin.deepspeed_config.update(train_micro_batch_size_per_gpu=micro, train_batch_size=micro * world,
                                   zero_allow_untested_optimizer=True, zero_force_ds_cpu_optimizer=False)
    return {"deepspeed_plugin": plugin}


def check_active(accelerator, strategy: str) -> None:
    """The recipe decides the strategy. accelerate shards only on GPUs (on CPU processes it would quietly
    run DDP), and its launch flags or config file can turn sharding on by themselves: refuse both."""
    expected = {"fsdp": DistributedType.FSDP, "deepspeed": DistributedType.DEEPSPEED}.get(strategy)
    got = accelerator.distributed_type
    if accelerator.num_processes == 1 or got == expected or (expected is None and got not in SHARDED):
        return
    if expected is not None and not torch.cuda.is_available():
        raise ConfigError(f"train.distributed.strategy={strategy} runs on GPUs only (accelerate shards models across "
                          "CUDA devices); these processes have none",
                          "use train.distributed.strategy=ddp on CPUs")
    raise ConfigError(f"train.distributed.strategy={strategy}, but accelerate set up {got.value} "
                      "(from accelerate launch flags or its config file)",
                      "set train.distributed.strategy to match, or launch without those flags")


def wrap_layers_only(accelerator, model) -> None:
    """FSDP units for auto_wrap=transformer: the model's no-split classes, less any that holds the input
    embedding. accelerate gives the embedding a unit of its own, and BERT-like models list their
    embeddings block (BertEmbeddings) as no-split: the embedding would be sharded twice, which
    fully_shard refuses."""
    plugin = getattr(accelerator.state, "fsdp_plugin", None)
    if accelerator.distributed_type != DistributedType.FSDP or plugin.auto_wrap_policy is None:
        return
    embedding = model.get_input_embeddings()
    holders = {type(m).__name__ for m in model.modules() if m is not embedding and embedding in m.modules()}
    plugin.transformer_cls_names_to_wrap = sorted(set(model._no_split_modules or ()) - holders)


def is_sharded(accelerator) -> bool:
    return accelerator.distributed_type in SHARDED


def _options(accelerator, **kw) -> StateDictOptions:
    # Gathered to CPU on process 0 only: the others get {} (only process 0 writes).
    return StateDictOptions(full_state_dict=True, cpu_offload=accelerator.num_processes > 1, **kw)


def _trainable(model):
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def full_weights(accelerator, model) -> dict[str, torch.Tensor]:
    """The trainable weights, whole, by their PEFT names. A collective: every process calls it; process 0
    gets the tensors."""
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        from deepspeed.utils import safe_get_full_fp32_param

        # ZeRO's fp32 master weights, assembled from every partition.
        return {n: safe_get_full_fp32_param(p).cpu() for n, p in _trainable(accelerator.unwrap_model(model))}
    weights = get_model_state_dict(model, options=_options(accelerator, ignore_frozen_params=True))
    # A tied output layer (lm_head = the frozen input embeddings) is not a parameter of its own, so
    # torch does not see it as frozen: keep the trainable weights only.
    trainable = {_plain_name(n) for n, _ in _trainable(accelerator.unwrap_model(model))}
    return {k: v for k, v in weights.items() if k in trainable}


def _plain_name(name: str) -> str:
    """A parameter's name without FSDP1's and activation checkpointing's wrapper modules."""
    return name.replace("_fsdp_wrapped_module.", "").replace("_checkpoint_wrapped_module.", "")


def full_optimizer_state(accelerator, model, optimizer) -> dict:
    """Optimizer state keyed by parameter name (torch's full optimizer state dict), whatever the strategy.
    A collective, like ``full_weights``."""
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        from deepspeed.utils import safe_get_full_optimizer_state

        base = _deepspeed_base_optimizer(optimizer)
        group = {k: v for k, v in base.param_groups[0].items() if k != "params"}
        step = next(iter(base.state.values()), {}).get("step", torch.tensor(0.0))
        params = _trainable(accelerator.unwrap_model(model))
        state = {n: {"step": step.clone(), **{k: safe_get_full_optimizer_state(p, k).cpu() for k in ADAM_STATES}}
                 for n, p in params}
        return {"state": state, "param_groups": [{**group, "params": [n for n, _ in params]}]}
    return get_optimizer_state_dict(model, optimizer.optimizer, options=_options(accelerator))


def check_resumable(accelerator, run) -> None:
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        raise RunError("a run cannot resume under DeepSpeed: ZeRO builds its optimizer state at its first step, "
                       "so a saved one cannot be put back",
                       f"the checkpoint holds whole tensors: set train.distributed.strategy to fsdp or ddp in "
                       f"{run}/config.yaml, then lorakit train --resume {run}")


def load_optimizer_state(model, optimizer, saved: dict) -> None:
    """Load a full optimizer state (every process has read it from the checkpoint) into this process's pieces."""
    set_optimizer_state_dict(model, optimizer.optimizer, saved, options=StateDictOptions(full_state_dict=True))


def _deepspeed_base_optimizer(optimizer):
    """accelerate's wrapper -> DeepSpeed's ZeRO optimizer -> the torch AdamW it steps on its partitions."""
    return optimizer.optimizer.optimizer


def world_size() -> int:
    """Processes of this run, before accelerate is set up (torchrun and accelerate launch set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))
