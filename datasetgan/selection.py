"""Which GAN samples to annotate (paper Table 6): random, or active learning with the ensemble's
JS uncertainty followed by a coreset.

Active learning as the paper states it: rank the pool by image uncertainty, leave out the top k%
(the most uncertain: often broken samples), and pick N coreset centres (k-center greedy, Sener and
Savarese 2018) among the next 10% (ranks from k% to k + 10%). The paper then has a person keep the
6 most realistic of the N; that human step is not modelled: all N centres are returned, in the
order the greedy picks them, so a caller can keep the first few.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def select_random(pool_size: int, count: int, seed: int) -> list[int]:
    """`count` distinct pool indices drawn by a local generator seeded with `seed`."""
    return sorted(np.random.RandomState(seed).choice(pool_size, count, replace=False).tolist())


def k_center_greedy(embeddings: Tensor, count: int) -> list[int]:
    """embeddings: float (N, D) -> `count` indices, each the point farthest from those already picked;
    the first is the point nearest the mean (deterministic)."""
    first = int((embeddings - embeddings.mean(0)).norm(dim=1).argmin())
    picked = [first]
    distance = (embeddings - embeddings[first]).norm(dim=1)
    while len(picked) < min(count, len(embeddings)):
        nxt = int(distance.argmax())
        picked.append(nxt)
        distance = torch.minimum(distance, (embeddings - embeddings[nxt]).norm(dim=1))
    return picked


def select_active(scores: Tensor, embeddings: Tensor, centres: int = 12, k: float = 10.0) -> list[int]:
    """scores: float (N,) image uncertainty (higher = less certain); embeddings: float (N, D) of the
    same images -> pool indices of the coreset centres among uncertainty ranks (k%, k + 10%]."""
    order = torch.argsort(scores, descending=True, stable=True)
    n = len(scores)
    lo, hi = int(round(n * k / 100)), int(round(n * (k + 10) / 100))
    band = order[lo:max(hi, lo + centres)]
    return [int(band[i]) for i in k_center_greedy(embeddings[band], centres)]
