"""s4GAN as an objective of the shared trainer."""
import numpy as np
import torch

from benchmark.segmentation import LabelledImages, SegmentationSettings, build_network, fit, to_input
from benchmark.semi import S4GAN, Discriminator, S4GANSettings, one_hot
from datasources.base import IGNORE
from datasources.classes import CAR_5

LIGHT = SegmentationSettings(backbone="mobilenet_v3_large", steps=4, evaluations=2, batch_size=2)


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return LabelledImages(torch.from_numpy(rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)),
                          torch.from_numpy(rng.integers(0, 6, (n, 16, 16))), CAR_5)


def test_one_hot_leaves_ignored_pixels_empty():
    labels = torch.tensor([[[0, 2], [IGNORE, 1]]])
    out = one_hot(labels, 3)
    assert out.shape == (1, 3, 2, 2)
    np.testing.assert_array_equal(out.sum(1)[0], [[1, 1], [0, 1]])
    assert out[0, 2, 0, 1] == 1


def test_discriminator_scores_and_features():
    score, features = Discriminator(6)(torch.randn(3, 9, 32, 32))
    assert score.shape == (3,) and features.shape == (3, 512) and ((score > 0) & (score < 1)).all()


def test_s4gan_trains_segmenter_and_discriminator_and_resumes(tmp_path):
    unlabelled = _images(5, seed=2).images
    objective = S4GAN(unlabelled, 6, S4GANSettings(threshold=0.0), torch.device("cpu"))
    d_before = [p.clone() for p in objective.D.parameters()]
    net = build_network(LIGHT, 6)
    out = fit(net, _images(4), _images(2, seed=1), LIGHT, tmp_path, objective=objective)
    assert out.shape == (2, 2, 6, 6)
    assert any(not torch.equal(a, b) for a, b in zip(d_before, objective.D.parameters()))
    again = S4GAN(unlabelled, 6, S4GANSettings(threshold=0.0), torch.device("cpu"))
    fit(build_network(LIGHT, 6), _images(4), _images(2, seed=1), LIGHT, tmp_path, objective=again)
    for a, b in zip(again.D.state_dict().values(), objective.D.state_dict().values()):
        assert torch.equal(a, b)  # restored from the checkpoint


def test_self_training_only_on_confident_predictions():
    data = _images(2)
    net = build_network(LIGHT, 6).eval()
    never = S4GAN(data.images, 6, S4GANSettings(threshold=1.0, feature_matching=0.0), torch.device("cpu"))
    always = S4GAN(data.images, 6, S4GANSettings(threshold=0.0, feature_matching=0.0), torch.device("cpu"))
    images = to_input(data.images)
    ce = torch.nn.functional.cross_entropy(net(images)["out"], data.labels)
    assert never.loss(net, images, data.labels).item() == ce.item()
    assert always.loss(net, images, data.labels).item() > ce.item()


def test_the_labelled_cross_entropy_takes_the_shared_class_weights():
    data = _images(2)
    net = build_network(LIGHT, 6).eval()
    weight = torch.tensor([0.5, 1.0, 2.0, 3.0, 0.0, 1.5])
    weighted = S4GAN(data.images, 6, S4GANSettings(threshold=1.0, feature_matching=0.0), torch.device("cpu"),
                     class_weight=weight)
    images = to_input(data.images)
    ce = torch.nn.functional.cross_entropy(net(images)["out"], data.labels, weight=weight)
    assert weighted.loss(net, images, data.labels).item() == ce.item()
