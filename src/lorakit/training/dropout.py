"""Dropout whose random mask costs far less than torch's on CPU.

Profiling a LoRA step of minilm on 2 CPU cores put a large share of the time in
``aten::bernoulli_``: the 51 dropout layers of a step (BERT's own and one per LoRA module) each
draw one 32-bit random number per element. Here one 64-bit draw from the same torch generator
gives eight 8-bit lanes (or four 16-bit ones), each compared with a threshold: a Bernoulli mask
whose drop probability is p rounded to 1/256 when that is within 2% of p (0.1 -> 26/256 = 0.1016),
else to 1/65536, scaled by 1/(1 - that probability) so the expectation stays exact. Seeds and
checkpoints still replay a run exactly. 8-bit lanes make the mask cheaper than 16-bit ones, and
both far cheaper than ``bernoulli_`` (figures: benchmarks/README.md, Measurements behind the code).

The mask is applied as a multiply by 0/1 values that the comparison makes in the activation's
dtype (``torch.ge(..., out=)``), the scale in the same pass: torch's ``where`` and any
bool-with-float op take a slow mixed-dtype path on CPU (``where`` is slower than the multiply),
and a bool mask would need a conversion pass. The backward pass keeps the random lanes (1 byte
per element) and makes the multiplier again.
"""

import functools
from typing import NamedTuple

import torch
from torch import nn


class FastDropout(nn.Module):
    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p) if self.training else x

    def extra_repr(self) -> str:
        return f"p={self.p}"


def fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """``F.dropout(x, p, training=True)`` with the cheaper mask described above."""
    if p == 0:
        return x
    return _Masked.apply(x, p)


class Mask(NamedTuple):
    """A dropout mask as drawn: random lanes shaped like the input; an element is kept where its
    lane is at or above ``threshold``. The lanes (1 byte per element for 8-bit lanes) are what a
    backward pass keeps; the multiplier is made from them where it is needed."""

    lanes: torch.Tensor
    threshold: int
    scale: float  # 1 / the exact keep probability: the mean stays exact

    def multiplier(self, dtype: torch.dtype) -> torch.Tensor:
        """A fresh tensor holding 0 where dropped and 1 where kept, from one comparison with ``out=``
        in ``dtype``. torch runs it through a bool temporary and a copy, yet it is the cheapest eager
        path measured: cheaper than the bool comparison alone and than multiplying by a bool mask
        (figures: benchmarks/README.md, Measurements behind the code)."""
        m = torch.empty(self.lanes.shape, dtype=dtype, device=self.lanes.device)
        return torch.ge(self.lanes, self.threshold, out=m)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """x ⊙ mask · scale as a fresh tensor: the multiplier, then one fused multiply (``addcmul`` onto
        a broadcast zero: two in-place multiplies took longer; figures: benchmarks/README.md,
        Measurements behind the code)."""
        return torch.addcmul(x.new_zeros(()), x, self.multiplier(x.dtype), value=self.scale)


def draw_mask(x: torch.Tensor, p: float) -> Mask:
    """A mask for ``x`` keeping each element with probability about 1 - p (see the module notes)."""
    bits, drop_count = _lanes(p)
    n = x.numel()
    lanes_per_draw = 64 // bits
    draws = torch.randint(-(2**63), 2**63 - 1, ((n + lanes_per_draw - 1) // lanes_per_draw,),
                          dtype=torch.int64, device=x.device)
    lanes = draws.view(torch.int8 if bits == 8 else torch.int16)[:n].view(x.shape)
    # lanes are uniform over [-2^(bits-1), 2^(bits-1)): keep the top (2^bits - drop_count) values
    return Mask(lanes, drop_count - 2 ** (bits - 1), 2**bits / (2**bits - drop_count))


@functools.cache
def _lanes(p: float) -> tuple[int, int]:
    """(bits per lane, how many of the 2^bits lane values drop an element) for drop probability p."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    coarse = round(p * 256)
    if 0 < coarse < 256 and abs(coarse / 256 - p) <= 0.02 * p:
        return 8, coarse
    return 16, min(round(p * 65536), 65535)


class _Masked(torch.autograd.Function):
    """x ⊙ mask · scale; the backward pass keeps only the mask's lanes."""

    @staticmethod
    def forward(ctx, x, p):
        mask = draw_mask(x, p)
        ctx.save_for_backward(mask.lanes)
        ctx.threshold, ctx.scale = mask.threshold, mask.scale
        return mask.apply(x)

    @staticmethod
    def backward(ctx, grad):
        (lanes,) = ctx.saved_tensors
        return Mask(lanes, ctx.threshold, ctx.scale).apply(grad), None


def use_fast_dropout(model: nn.Module) -> int:
    """Replace every nn.Dropout in ``model`` (the base's and the adapters') in place; returns how many."""
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if type(child) is nn.Dropout]
    for parent, name, child in swaps:
        setattr(parent, name, FastDropout(child.p).train(child.training))
    return len(swaps)
