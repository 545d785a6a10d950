"""What each process does under torchrun / accelerate launch: its share of a batch, gathering.

One process is the ordinary case (world size 1): every function is then the identity.
"""

import torch.distributed as dist

from lorakit.data.batching import chunks


def shard(batch: list[int], rank: int, world: int) -> list[int]:
    """This rank's share of a global batch. The batch is length-sorted, so striding gives every rank
    similar lengths. Ranks get disjoint shares that together cover the batch."""
    return batch[rank::world]


def passes(batch: list[int], rank: int, world: int, micro: int, lengths: list[int], max_tokens: int | None,
           same_count: bool = False, units=len) -> list[tuple[list[int], float]]:
    """This rank's forward passes over its share of ``batch``, as (indices, loss weight).

    Weighted so that the gradient, once averaged over processes, is the mean over the whole global
    batch, however it was split: a pass's loss is a mean over ``units(indices)`` items (examples by
    default; a language model's trained tokens), so it weighs its share of the batch's items. A rank with nothing to do (a final batch smaller than the process
    count) still runs one pass of weight 0, to join the gradient sync. With ``same_count`` every rank
    runs as many passes as the busiest one (weight-0 passes make up the difference): the forward of a
    sharded model is a collective. Every rank knows the whole batch, so no communication is needed.
    """
    def split(r):
        return chunks(shard(batch, r, world), micro, lengths, max_tokens, backward=True)

    total = units(batch)
    mine = [(idx, units(idx) / total * world) for idx in split(rank)]
    count = max(len(split(r)) for r in range(world)) if same_count else 1
    return mine + [(batch[:1], 0.0)] * (count - len(mine))


def gather_objects(obj, world: int) -> list:
    """Every rank's ``obj`` in rank order (on all ranks)."""
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out
