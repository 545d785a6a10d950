"""Scaled dot-product attention for CPU training, with the cheap dropout mask of dropout.py.

With attention dropout on, torch's SDPA on a CPU takes its math path: q, k and v copied to fp32,
and the mask of the attention probabilities drawn with ``aten::bernoulli_``, a visible share of a
minilm LoRA step (figures: benchmarks/README.md, Measurements behind the code). This is that math
path written out, with ``fast_dropout`` and everything left in the autocast dtype, like
transformers' eager attention under autocast. Everything else (evaluation, no dropout, causal or
grouped-query attention) goes to transformers' own SDPA function unchanged.

Registered with transformers' attention interface, so a model switches to it with
``model.set_attn_implementation(NAME)``; the masks are SDPA's (boolean, True = attend).
"""

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from lorakit.training.dropout import fast_dropout

NAME = "lorakit_sdpa"


def sdpa_fast_dropout(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    if (not dropout or not module.training or getattr(module, "is_causal", False)
            or query.shape[1] != key.shape[1]):
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query * scale, key.transpose(-2, -1))  # scaled on the smaller operand
    if attention_mask is not None:  # in place: the matmul's backward needs only its inputs
        if attention_mask.dtype == torch.bool:
            scores.masked_fill_(~attention_mask, float("-inf"))
        else:
            scores.add_(attention_mask)
    probs = fast_dropout(scores.softmax(-1), dropout)  # CPU softmax accumulates reduced precision in fp32
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, sdpa_fast_dropout)
AttentionMaskInterface.register(NAME, sdpa_mask)


def use_fast_attention_dropout(model) -> bool:
    """Switch a model that uses SDPA to the function above; True if it was switched."""
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    model.set_attn_implementation(NAME)
    return model.config._attn_implementation == NAME
