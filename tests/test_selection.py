"""Data selection: random draws and the uncertainty band + coreset of the paper's active learning."""
import torch

from datasetgan.selection import k_center_greedy, select_active, select_random


def test_random_selection_is_seeded_and_distinct():
    a = select_random(100, 12, seed=3)
    assert a == select_random(100, 12, seed=3) and len(set(a)) == 12 and a != select_random(100, 12, seed=4)


def test_k_center_greedy_on_hand_checkable_points():
    points = torch.tensor([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [0.0, 5.0], [9.9, 0.1]])
    # mean (4.0, 1.02): nearest is (0, 5)? distances: 4.13, 4.02, 6.09, 5.03, 5.99 -> index 1 first.
    assert k_center_greedy(points, 3) == [1, 2, 3]


def test_active_selection_uses_only_the_band_below_the_most_uncertain():
    n = 200
    scores = torch.arange(n, dtype=torch.float32)  # index i has uncertainty i: the top 10% are 180..199
    embeddings = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
    picked = select_active(scores, embeddings, centres=12, k=10)
    assert len(picked) == 12 == len(set(picked))
    assert all(160 <= i < 180 for i in picked)  # ranks (10%, 20%] of the uncertainty order
