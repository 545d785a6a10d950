"""Dynamic int8 quantization of the Linear layers (CPU): weights int8, activations quantized per batch."""

import warnings

import torch

MODES = ("int8",)


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Quantize a merged (plain transformers) model in place; LoRA layers must be merged first."""
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, which is not a dependency;
        # the eager dynamic path still works on the pinned torch.
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
