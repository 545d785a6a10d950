"""What each process does under torchrun / accelerate launch: its share of a batch, gathering.

One process is the ordinary case (world size 1): every function is then the identity.
"""

import torch.distributed as dist


def shard(batch: list[int], rank: int, world: int) -> list[int]:
    """This rank's share of a global batch. The batch is length-sorted, so striding gives every rank
    similar lengths. Ranks get disjoint shares that together cover the batch."""
    return batch[rank::world]


def gather_objects(obj, world: int) -> list:
    """Every rank's ``obj`` in rank order (on all ranks)."""
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out
