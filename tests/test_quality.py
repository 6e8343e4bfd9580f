"""Quality figures on features of a toy-trained CNN: the estimators themselves, and the end-to-end figures on a
tiny setting."""
import torch

from datasetgan.quality import QualitySettings, colour_diversity, kid, layout_diversity, precision_recall, toy_quality


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g)
    same, _ = kid(a, b, subsets=20, subset_size=200, seed=0)
    shifted, _ = kid(a, b + 0.5, subsets=20, subset_size=200, seed=0)
    far, _ = kid(a, b + 1.0, subsets=20, subset_size=200, seed=0)
    assert abs(same) < 0.01 < shifted < far


def test_precision_recall_separate_fidelity_from_coverage():
    """A generator that covers one half of the real modes is precise but recalls about half; one that draws
    everything with noise far off the data recalls nothing and is not precise."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(8, 2, generator=g) * 10  # 2-d: few samples fill the k-NN balls well
    real = centres.repeat(50, 1) + torch.randn(400, 2, generator=g)
    half = centres[:4].repeat(100, 1) + torch.randn(400, 2, generator=g)
    precision, recall = precision_recall(real, half, k=3)
    assert precision > 0.9 and 0.4 < recall < 0.6
    assert min(precision_recall(real, centres.repeat(50, 1) + torch.randn(400, 2, generator=g), k=3)) > 0.9
    assert precision_recall(real, real + 100, k=3) == (0.0, 0.0)


def test_colour_diversity_sees_the_centre_colour_only():
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(32, 3, 20, 20)
    images[:, :, :8] = torch.rand(32, 3, 1, 1, generator=g)  # the top rows vary: outside the central box
    assert colour_diversity(images) == 0
    images[:, :, 8:12, 6:14] = torch.rand(32, 3, 1, 1, generator=g)
    assert colour_diversity(images) > 0.2


def test_toy_quality_ranks_a_grey_generator_far_below_real_images():
    settings = QualitySettings(train_images=32, real_images=16, reference_images=16, generated_images=16, epochs=2,
                           subsets=5, subset_size=12)
    grey = lambda seeds: torch.zeros(len(seeds), 3, 64, 64)  # noqa: E731
    result = toy_quality(grey, settings)
    generated, floor = result["kid_x1000_generated"][0], result["kid_x1000_real_vs_real"][0]
    assert generated > 10 * abs(floor) and generated > 0
    assert result["settings"]["train_images"] == 32
    layout = result["layout_diversity"]
    assert layout["generated"] == 0 and layout["real"] > 0.3 and layout["reference"] > 0.3
    assert result["colour_diversity"]["generated"] == 0 < result["colour_diversity"]["real"]
    (precision, recall), (_, ref_recall) = result["precision_recall"].values()
    assert recall <= 1 / 16 < ref_recall


def test_layout_diversity_ignores_colour_and_sees_layout():
    """One layout in many colours and contrasts scores 0; the same blob at random places scores high."""
    g = torch.Generator().manual_seed(0)
    blob = torch.zeros(1, 3, 32, 32)
    blob[..., 8:16, 8:16] = 1
    recoloured = blob * torch.rand(64, 3, 1, 1, generator=g) * 2 + torch.rand(64, 3, 1, 1, generator=g)
    moved = torch.stack([torch.roll(blob[0], tuple(torch.randint(0, 32, (2,), generator=g).tolist()), (1, 2))
                         for _ in range(64)])
    assert layout_diversity(recoloured) < 1e-3 < 0.5 < layout_diversity(moved)
