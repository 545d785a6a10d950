"""bf16 inference that answers like fp32: fast where the CPU multiplies bf16 natively (AMX, AVX-512 BF16).

A bf16 forward pass moves the logits by a fraction of a percent: enough to flip a near tie. So
the bf16 model never decides a close call alone. A probe of rows spread over each call also goes
through the fp32 model, which measures the bf16 error ε on this very data, and every row whose
two largest logits are closer than 4ε (a flip needs them closer than 2ε) is computed again in
fp32. The labels are then fp32's; the probabilities of the other rows differ by about 1e-3.
"""

import torch

from lorakit.infer.logits import batched_logits

PRECISIONS = ("auto", "fp32", "bf16")
PROBE = 64  # rows per call measured in both precisions


def native_bf16() -> bool:
    """True where bf16 matmuls run in hardware (and beat fp32); elsewhere bf16 is emulated and slower."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:
        return False


def resolve(precision: str) -> str:
    """``auto`` is bf16 on CPUs with native bf16, fp32 elsewhere."""
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    return precision


@torch.inference_mode()
def checked_logits(fast, exact, seqs: list[list[int]], pad_id: int, batch_size: int) -> tuple[torch.Tensor, int]:
    """Logits (float32, input order) with fp32's argmax, and how many rows fp32 computed."""
    if len(seqs) <= 2 * PROBE:
        return batched_logits(exact, seqs, pad_id, batch_size), len(seqs)
    logits = batched_logits(fast, seqs, pad_id, batch_size).float()
    if logits.shape[-1] < 2:
        return batched_logits(exact, seqs, pad_id, batch_size), len(seqs)
    probe = torch.linspace(0, len(seqs) - 1, PROBE).long().unique()
    sure = batched_logits(exact, [seqs[i] for i in probe], pad_id, batch_size)
    eps = (logits[probe] - sure).abs().max()
    logits[probe] = sure
    top2 = logits.topk(2, dim=-1).values
    close = (top2[:, 0] - top2[:, 1] < 4 * eps).nonzero().flatten()
    close = close[~torch.isin(close, probe)]
    if close.numel():
        logits[close] = batched_logits(exact, [seqs[i] for i in close], pad_id, batch_size)
    return logits, len(probe) + close.numel()
