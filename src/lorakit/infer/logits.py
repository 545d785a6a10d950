"""Forward passes over many texts: length-sorted batches, no autograd, input order restored."""

import torch

from lorakit.data.batching import WIDTH_MULTIPLE, collate, sorted_batches


@torch.inference_mode()
def batched_logits(model, seqs: list[list[int]], pad_id: int, batch_size: int, device="cpu",
                   max_tokens: int | None = None, multiple: int = WIDTH_MULTIPLE) -> torch.Tensor:
    """Logits [len(seqs), num_labels] in input order; ``max_tokens`` caps padded tokens per pass."""
    was_training = model.training
    model.eval()
    out = [None] * len(seqs)
    for idx in sorted_batches([len(s) for s in seqs], batch_size, max_tokens):
        batch = {k: v.to(device) for k, v in collate([seqs[i] for i in idx], pad_id, multiple).items()}
        logits = model(**batch).logits.float().cpu()
        for row, i in enumerate(idx):
            out[i] = logits[row]
    model.train(was_training)
    if not out:
        return torch.empty(0)
    return torch.stack(out)
