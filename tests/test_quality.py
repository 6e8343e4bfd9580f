"""KID on features of a toy-trained CNN: the estimator itself, and the end-to-end figure on a tiny setting."""
import torch

from datasetgan.quality import KIDSettings, kid, layout_diversity, toy_kid


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g)
    same, _ = kid(a, b, subsets=20, subset_size=200, seed=0)
    shifted, _ = kid(a, b + 0.5, subsets=20, subset_size=200, seed=0)
    far, _ = kid(a, b + 1.0, subsets=20, subset_size=200, seed=0)
    assert abs(same) < 0.01 < shifted < far


def test_toy_kid_ranks_a_grey_generator_far_above_real_images():
    settings = KIDSettings(train_images=32, real_images=16, reference_images=16, generated_images=16, epochs=2,
                           subsets=5, subset_size=12)
    grey = lambda seeds: torch.zeros(len(seeds), 3, 64, 64)  # noqa: E731
    result = toy_kid(grey, settings)
    generated, floor = result["kid_x1000_generated"][0], result["kid_x1000_real_vs_real"][0]
    assert generated > 10 * abs(floor) and generated > 0
    assert result["settings"]["train_images"] == 32
    layout = result["layout_diversity"]
    assert layout["generated"] == 0 and layout["real"] > 0.3 and layout["reference"] > 0.3


def test_layout_diversity_ignores_colour_and_sees_layout():
    """One layout in many colours and contrasts scores 0; the same blob at random places scores high."""
    g = torch.Generator().manual_seed(0)
    blob = torch.zeros(1, 3, 32, 32)
    blob[..., 8:16, 8:16] = 1
    recoloured = blob * torch.rand(64, 3, 1, 1, generator=g) * 2 + torch.rand(64, 3, 1, 1, generator=g)
    moved = torch.stack([torch.roll(blob[0], tuple(torch.randint(0, 32, (2,), generator=g).tolist()), (1, 2))
                         for _ in range(64)])
    assert layout_diversity(recoloured) < 1e-3 < 0.5 < layout_diversity(moved)
