"""The training step of a plain LoRA layer (LoRA, rsLoRA) as one autograd function.

PEFT computes ``base(x) + lora_B(lora_A(dropout(x))) * scaling``: on the layer's [tokens, out]
output that is a copy of the base output, a multiply by the scaling and an add, each again in the
backward pass, plus five modules' worth of Python per layer. Here the scaling goes into B (an
[out, r] matrix) and the dropout's 1/keep scale into the [tokens, r] product, the branch is
accumulated into the base matmul's output (addmm_), and the backward pass is written out with the
base and LoRA input gradients summed by one addmm: fewer passes over the [tokens, out] output and
less Python per layer, so more samples/s than PEFT's forward.

On a CPU in bf16 the frozen base weight goes to oneDNN once, in its own blocked layout (and once
transposed, for the input gradient), instead of being reordered inside every matmul call: the same
products bit for bit in less time per matmul; it keeps two more copies of the frozen linear
weights (figures: benchmarks/README.md, Measurements behind the code).

Same parameters and files, and the same dropout masks (``draw_mask``, drawn at the same point of
the forward pass as PEFT's dropout module would), so a run takes the same course whichever path it
takes, up to float rounding. Only the training forward of a plain LoRA ``nn.Linear`` layer with one
active adapter over a frozen base comes here; evaluation, merged layers, several adapters, DoRA (a
PEFT variant), a trained bias and any other case keep PEFT's forward.
"""

import types
import weakref

import torch
from peft.tuners.lora.layer import Linear as LoraLinear
from torch import nn

from lorakit.training.dropout import FastDropout, Mask, draw_mask


class _LoraBranch(torch.autograd.Function):
    """x Wᵀ + bias + ((x ⊙ mask) Aᵀ)(scaling · B)ᵀ, computed in x's dtype (that of W); A and B, and
    their gradients, keep their own."""

    @staticmethod
    def forward(ctx, x, weight, bias, lora_a, lora_b, scaling, p, packed):
        rows = x.reshape(-1, x.shape[-1])
        if packed is not None:
            base = _onednn_linear(rows, packed[0], bias, "none", [], "")
        else:
            base = rows @ weight.t() if bias is None else torch.addmm(bias, rows, weight.t())
        a = lora_a.to(x.dtype)
        b = (lora_b * scaling).to(x.dtype)
        mask = draw_mask(rows, p) if p else None
        dropped = mask.multiplier(rows.dtype).mul_(rows) if mask is not None else rows
        h = dropped @ a.t()
        if mask is not None:
            h.mul_(mask.scale)
        base.addmm_(h, b.t())
        ctx.save_for_backward(weight, dropped, h, a, b, *([] if mask is None else [mask.lanes]))
        ctx.mask = (mask.threshold, mask.scale) if mask is not None else None
        ctx.scaling, ctx.x_shape, ctx.packed = scaling, x.shape, packed
        ctx.param_dtypes = lora_a.dtype, lora_b.dtype
        return base.view(*x.shape[:-1], base.shape[-1])

    @staticmethod
    def backward(ctx, grad):
        weight, dropped, h, a, b, *lanes = ctx.saved_tensors
        g = grad.reshape(-1, grad.shape[-1])
        grad_b = (g.t() @ h).to(ctx.param_dtypes[1]).mul_(ctx.scaling)
        grad_h = g @ b
        if ctx.mask is not None:
            grad_h.mul_(ctx.mask[1])
        grad_a = (grad_h.t() @ dropped).to(ctx.param_dtypes[0])
        grad_lora = grad_h @ a
        if ctx.mask is not None:
            grad_lora.mul_(Mask(lanes[0], *ctx.mask).multiplier(grad_lora.dtype))
        if ctx.packed is not None:  # g W + grad_lora, the sum inside the matmul
            grad_x = _onednn_linear.binary(g, grad_lora, ctx.packed[1], None, "add")
        else:
            grad_x = torch.addmm(grad_lora, g, weight)
        return grad_x.view(ctx.x_shape), None, None, grad_a, grad_b, None, None, None


def _forward(self, x, *args, **kwargs):
    if not _fusable(self, x) or args or kwargs:
        return LoraLinear.forward(self, x, *args, **kwargs)
    name = self.active_adapters[0]
    dropout = self.lora_dropout[name]
    base = self.base_layer
    return _LoraBranch.apply(x, base.weight, base.bias, self.lora_A[name].weight, self.lora_B[name].weight,
                             self.scaling[name], dropout.p if isinstance(dropout, FastDropout) else 0.0,
                             _packed(base))


def _onednn_bf16_linear():
    """oneDNN's linear op, where this torch has it and this CPU runs its bf16 kernels (else None)."""
    ops = torch.ops.mkldnn
    if not (torch.backends.mkldnn.is_available() and hasattr(ops, "_linear_pointwise")
            and hasattr(ops, "_is_mkldnn_bf16_supported") and ops._is_mkldnn_bf16_supported()):
        return None
    return ops._linear_pointwise


_onednn_linear = _onednn_bf16_linear()
_PACKED = weakref.WeakKeyDictionary()  # base nn.Linear -> ((weight's storage, version), (W, Wᵀ) in oneDNN layout)


def _packed(base: nn.Linear):
    """The frozen bf16 weight of ``base`` in oneDNN's layout, for x Wᵀ and for g W (made on first use and
    again if the weight is replaced or changed in place); None where oneDNN does not do the matmul."""
    w = base.weight
    if _onednn_linear is None or w.device.type != "cpu" or w.dtype != torch.bfloat16:
        return None
    key = (w.data_ptr(), w._version)
    cached = _PACKED.get(base)
    if cached is None or cached[0] != key:
        reorder = torch.ops.mkldnn._reorder_linear_weight
        cached = _PACKED[base] = (key, (reorder(w, None), reorder(w.t().contiguous(), None)))
    return cached[1]


def _fusable(layer, x: torch.Tensor) -> bool:
    """Training one plain LoRA adapter over a frozen base whose weights are in the compute dtype."""
    active = layer.active_adapters
    if not layer.training or layer.merged or layer.disable_adapters or len(active) != 1:
        return False
    name, base = active[0], layer.base_layer
    device = x.device.type
    autocast = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
    return (name in layer.lora_A and name not in layer.lora_variant
            and isinstance(layer.lora_dropout[name], (FastDropout, nn.Identity))
            and x.dtype == autocast == base.weight.dtype
            and not any(p.requires_grad for p in base.parameters()))


def use_fused_lora(model: nn.Module) -> int:
    """Give every plain LoRA linear layer of ``model`` the fused training forward; returns how many."""
    layers = [m for m in model.modules() if type(m) is LoraLinear and isinstance(m.base_layer, nn.Linear)]
    for layer in layers:
        layer.forward = types.MethodType(_forward, layer)
    return len(layers)
