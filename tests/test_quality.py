"""KID on features of a toy-trained CNN: the estimator itself, and the end-to-end figure on a tiny setting."""
import torch

from datasetgan.quality import KIDSettings, kid, toy_kid


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
