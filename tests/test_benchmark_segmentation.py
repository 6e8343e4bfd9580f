"""The shared DeepLabV3 trainer: step budget, evaluation points, resume, frozen layers, local pretrained weights."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from benchmark.configs import ConfigError
from benchmark.oracle import oracle_miou, output_grid
from benchmark.segmentation import (BatchSchedule, LabelledImages, SegmentationSettings, build_network, evaluate,
                                    fit, last_layer, load_images, replace_last_layer, trained_steps)
from datasources.base import IGNORE, DatasetFormatError, PartDataset, Sample
from datasources.classes import CAR_5, CAR_12, CAR_12_TO_5, class_weights

LIGHT = SegmentationSettings(backbone="mobilenet_v3_large", steps=4, evaluations=2, batch_size=2)


def _images(n, classes=CAR_5, size=16, seed=0):
    rng = np.random.default_rng(seed)
    labels = torch.from_numpy(rng.integers(0, len(classes), (n, size, size)))
    labels[:, 0, 0] = IGNORE
    return LabelledImages(torch.from_numpy(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)), labels, classes)


def test_fit_evaluates_at_every_point_and_resumes_to_the_same_result(tmp_path):
    import shutil

    train, test = _images(5), _images(3, seed=1)
    settings = replace(LIGHT, steps=5, keep_all_checkpoints=True)   # points after steps 2 and 5; passes of 2 batches
    assert settings.evaluated_steps == [2, 5]
    full = fit(build_network(settings, 6), train, test, settings, tmp_path / "full")
    assert full.shape == (2, 3, 6, 6) and full.dtype == np.int64
    assert (full.sum((2, 3)) == 16 * 16 - 1).all()  # every pixel but the ignored one, per image
    assert trained_steps(tmp_path / "full") == 5
    shutil.copytree(tmp_path / "full", tmp_path / "split")   # stopped after the first point: resume from it
    for name in ("checkpoint_001.pt", "evaluation_001.npy"):
        (tmp_path / "split" / name).unlink()
    resumed = fit(build_network(settings, 6), train, test, settings, tmp_path / "split")
    np.testing.assert_array_equal(resumed, full)
    assert trained_steps(tmp_path / "split") == 5
    latest = fit(build_network(LIGHT, 6), train, test, LIGHT, tmp_path / "latest")   # only the latest checkpoint kept
    assert sorted(p.name for p in (tmp_path / "latest").glob("checkpoint_*.pt")) == ["checkpoint_001.pt"]
    assert latest.shape == (2, 3, 6, 6)


def test_the_step_budget_cycles_shuffled_batches_whatever_the_set_size():
    schedule = BatchSchedule(5, 2, seed=3)   # 2 batches a pass (the last image of a pass is dropped)
    steps = [schedule(s).tolist() for s in range(6)]
    assert all(len(b) == 2 for b in steps)
    assert steps == [BatchSchedule(5, 2, seed=3)(s).tolist() for s in range(6)]   # a pure function of the step
    passes = [sorted(steps[i] + steps[i + 1]) for i in (0, 2, 4)]
    assert all(len(set(p)) == 4 for p in passes) and len({tuple(p) for p in passes}) > 1   # reshuffled per pass
    assert BatchSchedule(1, 8, seed=0)(7).tolist() == [0, 0]   # one image: shown twice (batch norm needs two)


def test_a_finished_run_is_not_trained_again(tmp_path):
    train, test = _images(4), _images(3, seed=1)
    first = fit(build_network(LIGHT, 6), train, test, LIGHT, tmp_path)
    stamp = (tmp_path / "checkpoint_001.pt").stat().st_mtime_ns
    again = fit(build_network(LIGHT, 6), train, test, LIGHT, tmp_path)
    np.testing.assert_array_equal(first, again)
    assert (tmp_path / "checkpoint_001.pt").stat().st_mtime_ns == stamp


def test_a_single_labelled_image_trains(tmp_path):
    out = fit(build_network(LIGHT, 6), _images(1), _images(2, seed=1), LIGHT, tmp_path)
    assert out.shape == (2, 2, 6, 6)


def test_only_the_last_layer_trains_when_the_rest_is_frozen(tmp_path):
    net = build_network(LIGHT, 6)
    replace_last_layer(net, 12, seed=0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.requires_grad_(False)
    last_layer(net).requires_grad_(True)
    fit(net, _images(4, CAR_12), _images(2, CAR_12, seed=1), LIGHT, tmp_path)
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"classifier.4.weight", "classifier.4.bias"}  # batch-norm statistics untouched too


def test_class_count_mismatch_stops_before_training(tmp_path):
    with pytest.raises(DatasetFormatError, match="training labels have 6 classes"):
        fit(build_network(LIGHT, 6), _images(2), _images(2, CAR_12), LIGHT, tmp_path)
    assert not list(tmp_path.iterdir())


def test_pretrained_backbone_only_from_a_local_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        build_network(SegmentationSettings(backbone="mobilenet_v3_large", pretrained=str(tmp_path / "no.pt")), 6)
    source = build_network(SegmentationSettings(backbone="mobilenet_v3_large", seed=5), 6)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    net = build_network(SegmentationSettings(backbone="mobilenet_v3_large", pretrained=str(tmp_path / "w.pt")), 12)
    for k, v in net.backbone.state_dict().items():
        assert torch.equal(v, source.backbone.state_dict()[k])
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(ConfigError, match="not a backbone of this network"):
        build_network(SegmentationSettings(backbone="mobilenet_v3_large", pretrained=str(tmp_path / "bad.pt")), 6)


def test_unknown_backbone_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="resnet101, resnet50, mobilenet_v3_large, dilated_resnet"):
        SegmentationSettings(backbone="vgg")


def test_resnet_backbones_need_an_imagenet_file_or_an_explicit_random_init():
    with pytest.raises(ConfigError, match="segmentation.pretrained: the resnet101 backbone starts from an ImageNet"):
        SegmentationSettings(backbone="resnet101")
    assert SegmentationSettings(backbone="resnet101", pretrained="random").pretrained == "random"
    with pytest.raises(ConfigError, match="evaluations in 1..steps"):
        SegmentationSettings(backbone="dilated_resnet", steps=3, evaluations=4)


def test_class_weights_are_inverse_frequencies_or_their_square_roots_and_an_average_pixel_weighs_one():
    # 64 labelled pixels: 48 background, 12 body, 4 handle; class 3 never appears; IGNORE is left out.
    labels = torch.zeros(1, 9, 8, dtype=torch.int64)
    labels[0, 6:8, :6] = 1
    labels[0, 4, :4] = 2
    labels[0, 8, :] = IGNORE
    assert class_weights(labels, 4) is None                   # "none": the official unweighted loss
    weight = class_weights(labels, 4, "inverse_sqrt_frequency")
    freq = torch.tensor([48, 12, 4, 0]) / 64
    assert weight[3] == 0
    np.testing.assert_allclose(weight[:3] / weight[0], (freq[:3] / freq[0]) ** -0.5, rtol=1e-6)   # 1 : 2 : 3.46
    assert (freq * weight).sum().item() == pytest.approx(1.0)
    weight = class_weights(labels, 4, "inverse_frequency")          # every class present weighs as much in all
    np.testing.assert_allclose((freq * weight)[:3], [1 / 3] * 3, rtol=1e-6)
    assert weight[3] == 0
    with pytest.raises(ConfigError, match="class_weighting 'focal' unknown; valid: none, inverse_sqrt_frequency, "
                                          "inverse_frequency"):
        SegmentationSettings(backbone="dilated_resnet", class_weighting="focal")


def test_the_training_objective_weighs_classes_as_the_settings_say():
    data = _images(2)
    net = build_network(LIGHT, 6).eval()
    images = (data.images.permute(0, 3, 1, 2).float() - 128) / 64
    logits = net(images)["out"]
    weight = class_weights(data.labels, 6, "inverse_sqrt_frequency")
    expected = torch.nn.functional.cross_entropy(logits, data.labels, weight=weight, ignore_index=IGNORE)
    assert data.objective("inverse_sqrt_frequency").loss(net, images, data.labels).item() == pytest.approx(
        expected.item())
    assert data.objective().loss(net, images, data.labels).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, data.labels, ignore_index=IGNORE).item())


def test_the_setup_ceiling_is_the_oracle_at_the_networks_output_grid():
    # The dilated ResNet keeps 32x32 logits at 64 px, MobileNetV3's DeepLab 4x4.
    assert output_grid(build_network(SegmentationSettings(backbone="dilated_resnet"), 6), 64) == (32, 32)
    assert output_grid(build_network(LIGHT, 6), 64) == (4, 4)
    # A hand-made 16x16 map: a 2x2 part (class 2) in a 4x4 part (class 1) on background. A 16x16 grid holds it
    # exactly; a 2x2 grid upsampled cannot draw the small part.
    labels = torch.zeros(1, 16, 16, dtype=torch.int64)
    labels[0, 4:8, 4:8] = 1
    labels[0, 5:7, 5:7] = 2
    assert oracle_miou(labels, 3, (16, 16)) == pytest.approx(1.0)
    assert oracle_miou(labels, 3, (2, 2)) < 0.7


class _Tiny(PartDataset):
    classes = CAR_12

    def __init__(self, n, size=8):
        self.n, self.size = n, size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        labels = np.full((self.size, self.size), 6, np.int64)
        return Sample(np.full((self.size, self.size, 3), i, np.uint8), labels)


def test_load_images_merges_resizes_and_refuses_an_empty_set():
    data = load_images(_Tiny(3), 2, CAR_12_TO_5, resolution=4)
    assert data.images.shape == (2, 4, 4, 3) and data.labels.shape == (2, 4, 4) and data.classes is CAR_5
    assert (data.labels == CAR_5.index("wheel")).all()
    with pytest.raises(DatasetFormatError, match="at least one image"):
        load_images(_Tiny(0), name="test set empty")


def test_evaluate_counts_every_labelled_pixel():
    net = build_network(LIGHT, 6)
    test = _images(3)
    out = evaluate(net, test, torch.device("cpu"), batch=2)
    assert out.shape == (3, 6, 6)
    np.testing.assert_array_equal(out.sum(2), [np.bincount(t[t != IGNORE], minlength=6) for t in test.labels.numpy()])


def test_batch_norm_momentum_is_one_setting():
    momenta = {m.momentum for m in build_network(LIGHT, 6).modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert momenta == {0.1}
    kept = SegmentationSettings(backbone="mobilenet_v3_large", bn_momentum=None)
    assert 0.01 in {m.momentum for m in build_network(kept, 6).modules() if isinstance(m, torch.nn.BatchNorm2d)}
