"""The one forward loop over many token sequences: length-sorted batches, no autograd, input order restored."""

import torch

from lorakit.data.batching import WIDTH_MULTIPLE, collate, sorted_batches


def batched_logits(model, seqs: list[list[int]], pad_id: int, batch_size: int, device="cpu",
                   max_tokens: int | None = None, multiple: int = WIDTH_MULTIPLE,
                   inference_mode: bool = True) -> torch.Tensor:
    """Outputs [len(seqs), ...] in input order (float32, on the CPU).

    ``model`` is called as ``model(input_ids=..., attention_mask=...)`` and may return a tensor or an
    object with ``.logits`` (an ONNX runner, a transformers model). ``max_tokens`` caps the padded
    tokens of a pass; ``multiple=1`` keeps exact batch widths. ``inference_mode=False`` runs under
    no_grad instead: a ZeRO-3 model would keep weights gathered in inference mode, unusable by the
    next backward.
    """
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    out = [None] * len(seqs)
    with torch.inference_mode() if inference_mode else torch.no_grad():
        for idx in sorted_batches([len(s) for s in seqs], batch_size, max_tokens):
            batch = {k: v.to(device) for k, v in collate([seqs[i] for i in idx], pad_id, multiple).items()}
            result = model(**batch)
            logits = getattr(result, "logits", result).float().cpu()
            for row, i in enumerate(idx):
                out[i] = logits[row]
    if was_training:
        model.train()
    if not out:
        return torch.empty(0)
    return torch.stack(out)
