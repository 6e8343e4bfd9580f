"""Work across processes launched by `torchrun` (or any launcher that sets RANK and WORLD_SIZE):
bulk sampling takes one contiguous block of the seed range per rank, so the union over ranks is
every seed exactly once; data-parallel training joins the process group and averages gradients."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) from the environment torchrun sets; (0, 1) for a plain process."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} must lie in [0, WORLD_SIZE={world})")
    return rank, world


def shard(seeds: list[int], rank: int, world: int) -> list[int]:
    """This rank's contiguous block of `seeds`; block sizes differ by at most one."""
    base, extra = divmod(len(seeds), world)
    start = rank * base + min(rank, extra)
    return seeds[start:start + base + (rank < extra)]


def process_group() -> bool:
    """Join torchrun's process group once (Gloo for CPU tensors, NCCL for CUDA ones, on cuda:LOCAL_RANK);
    returns whether there is one (False for a plain process)."""
    if rank_and_world()[1] == 1:
        return False
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group()
    return True


def barrier() -> None:
    """Wait for every rank (a no-op for a plain process)."""
    if process_group():
        dist.barrier()


def average_gradients(module: nn.Module) -> None:
    """Average module's gradients over the ranks (for networks DistributedDataParallel does not wrap)."""
    if not dist.is_initialized():
        return
    world = dist.get_world_size()
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def rank_zero_first(make):
    """make() on rank 0, then, once it is done, on the other ranks: for steps that cache their result on disk
    (the others then read rank 0's files instead of racing it); plain make() outside torchrun."""
    rank = rank_and_world()[0]
    result = make() if rank == 0 else None
    barrier()
    return result if rank == 0 else make()
