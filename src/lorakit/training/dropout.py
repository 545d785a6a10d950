"""Dropout whose random mask costs a third of torch's on CPU.

Profiling a LoRA step of minilm on 2 CPU cores put 33% of the time in ``aten::bernoulli_``: the
51 dropout layers of a step (BERT's own and one per LoRA module) each draw one 32-bit random
number per element. Here one 64-bit draw gives four 16-bit lanes, each compared with a
threshold: the same Bernoulli mask up to p rounded to 1/65536, from the same torch generator
(so seeds and checkpoints still replay a run exactly). Measured on a [1056, 1536] activation,
forward and backward: 10.6 ms for ``F.dropout``, 5.9 ms here.

The mask is applied as a multiply by a float copy of it, made through a uint8 view: torch's
``where`` and any bool-with-float op take a slow mixed-dtype path on CPU (on a [1056, 1536]
activation: 1.0 ms for ``where``, 0.15 ms for the uint8-to-float copy, 0.36 ms for the multiply).
A LoRA step of minilm ran 6% faster than with ``where``.
"""

import torch
from torch import nn


class FastDropout(nn.Module):
    def __init__(self, p: float):
        super().__init__()
        self.p = p
        # keep an element when its uniform 16-bit lane (read as int16) is at or above this
        self.threshold = round(p * 65536) - 32768

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        n = x.numel()
        draws = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
        lanes = draws.view(torch.int16)[:n].view(x.shape)
        return _Masked.apply(x, lanes >= self.threshold, 1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _Masked(torch.autograd.Function):
    """x ⊙ keep · scale, keeping only the bool mask (1 byte per element) for the backward pass."""

    @staticmethod
    def forward(ctx, x, keep, scale):
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x * _scaled(keep, x.dtype, scale)

    @staticmethod
    def backward(ctx, grad):
        (keep,) = ctx.saved_tensors
        return grad * _scaled(keep, grad.dtype, ctx.scale), None, None


def _scaled(keep: torch.Tensor, dtype: torch.dtype, scale: float) -> torch.Tensor:
    return keep.view(torch.uint8).to(dtype).mul_(scale)


def use_fast_dropout(model: nn.Module) -> int:
    """Replace every nn.Dropout in ``model`` (the base's and the adapters') in place; returns how many."""
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if type(child) is nn.Dropout]
    for parent, name, child in swaps:
        setattr(parent, name, FastDropout(child.p))
    return len(swaps)
