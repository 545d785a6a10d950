"""bf16 inference that answers like fp32: fast where the CPU multiplies bf16 natively (AMX, AVX-512 BF16).

A bf16 forward pass moves the logits by a fraction of a percent: enough to flip a near tie. So
the bf16 model never decides a close call alone. The first rows it sees, and every 256th row
after them, also go through the fp32 model, which measures the bf16 error on the data at hand:
ε, the largest spread of a row's error across its logits (a shift of all logits alike changes
no label, and the gap between any two logits moves by at most ε). A label can flip only where
the two largest logits are closer than ε; every row closer than 2ε is computed again in fp32.
The labels are then fp32's; the probabilities of the other rows differ by a few thousandths.
"""

from collections.abc import Callable

import torch


class CloseCalls:
    """Which rows of a bf16 pass fp32 computes again; keeps the largest bf16 error spread seen so far."""

    def __init__(self, warmup: int = 256, every: int = 256):
        self.eps = 0.0
        self.warmup, self.every = warmup, every
        self.seen = 0

    def resolve(self, logits: torch.Tensor, exact: Callable[[list[int]], torch.Tensor]) -> tuple[torch.Tensor, int]:
        """``logits`` of a bf16 pass, with the probed and the close rows replaced by ``exact(rows)``
        (fp32 logits of those rows); returns them (float32) and how many rows fp32 computed."""
        logits = logits.float().clone()  # ours to write into, in or out of inference mode
        n = len(logits)
        if logits.shape[-1] < 2:
            return exact(list(range(n))), n
        probe = [i for i in range(n) if self.seen + i < self.warmup or (self.seen + i) % self.every == 0]
        self.seen += n
        if probe:
            sure = exact(probe)
            err = logits[probe] - sure
            self.eps = max(self.eps, float((err.max(-1).values - err.min(-1).values).max()))
            logits[probe] = sure
        top2 = logits.topk(2, dim=-1).values
        probed = set(probe)
        close = [i for i in (top2[:, 0] - top2[:, 1] < 2 * self.eps).nonzero().flatten().tolist() if i not in probed]
        if close:
            logits[close] = exact(close)
        return logits, len(probe) + len(close)
