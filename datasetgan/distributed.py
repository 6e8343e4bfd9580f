"""Sharding bulk sampling across processes launched by `torchrun` (or any launcher that sets RANK
and WORLD_SIZE): each rank takes one contiguous block of the seed range, so the union over ranks
is every seed exactly once."""
from __future__ import annotations

import os


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
