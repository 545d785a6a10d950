"""The training step of a plain LoRA layer (LoRA, rsLoRA) as one autograd function.

PEFT computes ``base(x) + lora_B(lora_A(dropout(x))) * scaling``: on the layer's [tokens, out]
output that is a multiply by the scaling and an add, each again in the backward pass, plus four
modules' worth of Python per layer. Here the scaling goes into B (an [out, r] matrix), the branch is
accumulated into the base output by the matmul itself (addmm), and the backward pass is written
out. Measured on minilm, 2 CPU cores, bf16: 5-6% more samples/s.

Same parameters and files, and the same dropout masks (``keep_mask``, drawn at the same point of
the forward pass as PEFT's dropout module would), so a run takes the same course whichever path it
takes, up to float rounding. Only the training forward of a plain LoRA ``nn.Linear`` layer with one
active adapter comes here; evaluation, merged layers, several adapters, DoRA (a PEFT variant) and
any other case keep PEFT's forward.
"""

import types

import torch
from peft.tuners.lora.layer import Linear as LoraLinear
from torch import nn

from lorakit.training.dropout import FastDropout, keep_mask, scaled


class _LoraBranch(torch.autograd.Function):
    """base_out + ((x ⊙ mask) Aᵀ)(scaling · B)ᵀ, computed in x's dtype; A and B keep their own."""

    @staticmethod
    def forward(ctx, x, base_out, lora_a, lora_b, scaling, p):
        rows = x.reshape(-1, x.shape[-1])
        a = lora_a.to(x.dtype)
        b = (lora_b * scaling).to(x.dtype)
        keep, keep_scale = keep_mask(rows, p) if p else (None, 1.0)
        dropped = rows * scaled(keep, rows.dtype, keep_scale) if keep is not None else rows
        h = dropped @ a.t()
        out = torch.addmm(base_out.reshape(-1, base_out.shape[-1]), h, b.t())
        ctx.save_for_backward(dropped, h, a, b, keep)
        ctx.scaling, ctx.keep_scale, ctx.x_shape = scaling, keep_scale, x.shape
        ctx.param_dtypes = lora_a.dtype, lora_b.dtype
        return out.view(base_out.shape)

    @staticmethod
    def backward(ctx, grad):
        dropped, h, a, b, keep = ctx.saved_tensors
        g = grad.reshape(-1, grad.shape[-1])
        grad_b = (g.t() @ h).to(ctx.param_dtypes[1]).mul_(ctx.scaling)
        grad_h = g @ b
        grad_a = (grad_h.t() @ dropped).to(ctx.param_dtypes[0])
        grad_x = grad_h @ a
        if keep is not None:
            grad_x.mul_(scaled(keep, grad_x.dtype, ctx.keep_scale))
        return grad_x.view(ctx.x_shape), grad, grad_a, grad_b, None, None


def _forward(self, x, *args, **kwargs):
    active = self.active_adapters
    name = active[0] if len(active) == 1 else None
    dropout = self.lora_dropout[name] if name in self.lora_dropout else None
    device = x.device.type
    compute = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else self.base_layer.weight.dtype
    if (not self.training or args or kwargs or self.merged or self.disable_adapters
            or name not in self.lora_A or name in self.lora_variant
            or not isinstance(dropout, (FastDropout, nn.Identity)) or x.dtype != compute):
        return LoraLinear.forward(self, x, *args, **kwargs)
    p = dropout.p if isinstance(dropout, FastDropout) else 0.0
    return _LoraBranch.apply(x, self.base_layer(x), self.lora_A[name].weight, self.lora_B[name].weight,
                             self.scaling[name], p)


def use_fused_lora(model: nn.Module) -> int:
    """Give every plain LoRA linear layer of ``model`` the fused training forward; returns how many."""
    layers = [m for m in model.modules() if type(m) is LoraLinear and isinstance(m.base_layer, nn.Linear)]
    for layer in layers:
        layer.forward = types.MethodType(_forward, layer)
    return len(layers)
