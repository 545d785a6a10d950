"""Put a LoRA-family adapter on a base model (PEFT), and the CPU's bf16 form of the frozen base."""

import torch
from peft import AdaLoraConfig, LoraConfig, PeftModel, get_peft_model
from peft.tuners.tuners_utils import BaseTunerLayer

from lorakit.errors import ConfigError


def lora_config(lora, task_type, presets: dict[str, list[str]], model_type: str, total_steps: int) -> LoraConfig:
    """PEFT's config for the recipe's ``lora`` section; ``presets`` are the task's 'auto' target modules."""
    targets = lora.target_modules
    if targets == "auto":
        if model_type not in presets:
            raise ConfigError(f"lora.target_modules: no 'auto' preset for model type {model_type!r}",
                              "set lora.target_modules to a list of module names, or 'all-linear'")
        targets = presets[model_type]
    if lora.method == "adalora":
        # Rank pruning runs between tinit and total - tfinal; PEFT needs the step count up front.
        return AdaLoraConfig(
            task_type=task_type,
            init_r=max(lora.adalora_init_r, lora.r),
            target_r=lora.r,
            tinit=int(lora.adalora_tinit * total_steps),
            tfinal=int(lora.adalora_tfinal * total_steps),
            deltaT=lora.adalora_delta_t,
            total_step=total_steps,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=targets,
        )
    return LoraConfig(
        task_type=task_type,  # the task's heads are saved with the adapter (modules_to_save)
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        use_rslora=lora.method == "rslora",
        use_dora=lora.method == "dora",
    )


def add_adapter(model, lora, task_type, presets: dict[str, list[str]], total_steps: int) -> PeftModel:
    if lora.method == "adalora" and lora.adalora_tinit + lora.adalora_tfinal >= 1:
        raise ConfigError("lora.adalora_tinit + lora.adalora_tfinal must be < 1, "
                          f"got {lora.adalora_tinit} + {lora.adalora_tfinal}")
    config = lora_config(lora, task_type, presets, model.config.model_type, total_steps)
    try:
        return get_peft_model(model, config)
    except ValueError as e:  # PEFT's message for target modules absent from the model
        raise ConfigError(f"lora.target_modules: {str(e).splitlines()[0]}") from None


def frozen_base_in_bf16(model) -> None:
    """bf16 mixed precision on a CPU: the frozen base weights stored in bf16 once, the trained
    weights (adapters, head) and their optimizer state in fp32, every forward pass under autocast
    (the model's forward is wrapped here).

    Autocast alone would cast each frozen weight at every use (only weights that require grad
    have their casts cached), and a bf16 base without autocast makes PEFT cast each LoRA layer's
    input to its fp32 weights and the sum back: four copies of an activation per layer and step.
    With autocast those casts are not needed, so PEFT's are switched off. (The step times of each
    form are in benchmarks/README.md, Measurements behind the code.)
    """
    for p in model.parameters():
        if not p.requires_grad and p.is_floating_point():
            p.data = p.data.to(torch.bfloat16)
    for m in model.modules():
        if isinstance(m, BaseTunerLayer):
            m.cast_input_dtype_enabled = False
    model.forward = torch.autocast("cpu", dtype=torch.bfloat16)(model.forward)
