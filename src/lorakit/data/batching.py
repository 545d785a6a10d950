"""Tokenise once, then batch by length so that almost no compute is spent on padding."""

import math
import random

import torch


def encode(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated, unpadded (padding happens per batch)."""
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]


def bucket_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, pool: int = 50) -> list[list[int]]:
    """Every index exactly once, in batches of similar length, in a seeded random order.

    Shuffle, cut into pools of ``pool`` batches, sort each pool by length, cut into batches,
    shuffle the batches: batches stay random across epochs but pad to nearly their real length.
    """
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    step = batch_size * pool
    for start in range(0, len(order), step):
        chunk = sorted(order[start:start + step], key=lengths.__getitem__)
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def chunks(indices: list[int], size: int, lengths: list[int] | None = None,
           max_tokens: int | None = None, backward: bool = False) -> list[list[int]]:
    """Consecutive runs of at most ``size`` indices and, given lengths, at most ``max_tokens`` padded
    tokens (rows x longest row): long texts go through in smaller passes, which bounds peak memory.
    ``backward``: passes whose activations are kept for a backward pass, budgeted by ``pass_tokens``."""
    out, cur, longest = [], [], 0
    for i in indices:
        width = max(longest, lengths[i]) if lengths else 0
        if cur and (len(cur) == size or (max_tokens and not _fits(len(cur) + 1, width, max_tokens, backward))):
            out.append(cur)
            cur, width = [], lengths[i] if lengths else 0
        cur.append(i)
        longest = width
    if cur:
        out.append(cur)
    return out


def _fits(rows: int, longest: int, max_tokens: int, backward: bool) -> bool:
    width = padded_width(longest)
    return rows * width <= (pass_tokens(width, max_tokens) if backward else max_tokens)


def pass_tokens(width: int, max_tokens: int) -> int:
    """Padded tokens a training pass of ``width``-token rows may hold. A layer keeps [tokens, hidden]
    activations and [rows, heads, width, width] attention maps for its backward pass, and past about
    128 tokens the maps grow to dominate: the budget then shrinks with the square root of the width
    (half of ``max_tokens`` at 512), which keeps a pass's activations roughly level across widths
    (its memory and time effect: benchmarks/README.md, Measurements behind the code)."""
    return max_tokens if width <= 128 else int(max_tokens * math.sqrt(128 / width))


def padding_bounded_chunks(order: list[int], lengths: list[int], max_padding: float, max_rows: int):
    """Cut indices already sorted by length into chunks of at most ``max_rows`` whose padded tokens per
    real token stay under ``max_padding`` (beyond the first row): for requests of random lengths,
    a few more forward passes cost less than padding them all to the longest."""
    chunk, real = [], 0
    for j in order:
        n = lengths[j]
        if chunk and (len(chunk) == max_rows or n * (len(chunk) + 1) > (1 + max_padding) * (real + n)):
            yield chunk
            chunk, real = [], 0
        chunk.append(j)
        real += n
    if chunk:
        yield chunk


def sorted_batches(lengths: list[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Batches in length order, for inference; callers restore the input order."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return chunks(order, batch_size, lengths, max_tokens)


# Batch widths are rounded up to a multiple of 4 (8 past 64 tokens; past 128, to a sixteenth of the
# width: eight widths per doubling, at most 12.5% padding). Each new batch shape costs oneDNN (bf16
# matmuls on CPU) freshly compiled kernels and memory that is never returned, while padding costs
# compute; odd widths also slow the attention matmuls, whose inner dimension is the width. The
# measurements behind the choice are in benchmarks/README.md (Measurements behind the code).
# Dynamic int8 models take exact widths (multiple=1): their activation scales see padded positions.
WIDTH_MULTIPLE = 4


def padded_width(longest: int, multiple: int = WIDTH_MULTIPLE) -> int:
    """The width of a batch whose longest text has ``longest`` tokens; ``multiple=1`` keeps it exact."""
    if multiple > 1:
        multiple = max(multiple, 1 << max(0, (longest - 1).bit_length() - 4))
    return -(-longest // multiple) * multiple


def collate(seqs: list[list[int]], pad_id: int, multiple: int = WIDTH_MULTIPLE) -> dict[str, torch.Tensor]:
    width = padded_width(max(len(s) for s in seqs), multiple)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, :len(s)] = torch.tensor(s)
        mask[row, :len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask}
