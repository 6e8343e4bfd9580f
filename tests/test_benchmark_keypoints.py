"""The keypoint task on the shared trainer: keypoints resized with their images, the PCK normaliser from the
object's box, per-epoch figures that are the network's heatmap argmax and MSE, and a refusal to mix tasks."""
import numpy as np
import pytest
import torch

from benchmark.keypoints import KeypointImages, load_keypoint_images
from benchmark.metrics import heatmap_argmax
from benchmark.segmentation import LabelledImages, SegmentationSettings, build_network, fit, to_input
from datasetgan.interpreter import gaussian_heatmaps
from datasources.base import DatasetFormatError, PartDataset, Sample
from datasources.classes import CAR_5

LIGHT = SegmentationSettings(backbone="mobilenet_v3_large", steps=4, evaluations=2, batch_size=2)


class _Boxes(PartDataset):
    """8 x 8 images holding a 4 x 3 object (columns 2-5, rows 1-3) with one keypoint on its corner."""

    classes = CAR_5
    keypoint_names = ("corner", "hidden")

    def __len__(self):
        return 2

    def __getitem__(self, i):
        labels = np.zeros((8, 8), np.int64)
        labels[1:4, 2:6] = 1
        keypoints = np.array([[2.5, 1.5, 1.0], [7.5, 7.5, 0.0]], np.float32)
        return Sample(np.full((8, 8, 3), 40 * i, np.uint8), labels, keypoints)


def test_keypoints_scale_with_their_images_and_the_box_gives_the_pck_normaliser():
    data = load_keypoint_images(_Boxes(), None, resolution=16, sigma=1.0)
    assert data.images.shape == (2, 16, 16, 3) and data.names == ("corner", "hidden") and data.num_outputs == 2
    torch.testing.assert_close(data.labels[0], torch.tensor([[5.0, 3.0, 1.0], [15.0, 15.0, 0.0]]))
    torch.testing.assert_close(data.scale, torch.tensor([8.0, 8.0], dtype=torch.float64))   # max(4, 3) x 2


class _Missing(_Boxes):
    """_Boxes whose second keypoint was never annotated (a NaN row, as CUB's part_locs reader leaves it)."""

    def __getitem__(self, i):
        sample = super().__getitem__(i)
        sample.keypoints[1] = np.nan
        return sample


def test_a_missing_keypoint_is_not_visible():
    data = load_keypoint_images(_Missing(), None, resolution=16, sigma=1.0)
    torch.testing.assert_close(data.labels[0, 1], torch.zeros(3))
    assert not gaussian_heatmaps(data.labels, 16, 16, 1.0)[:, 1].any()   # no target peak, and no NaN


def test_training_and_evaluation_per_keypoint(tmp_path):
    data = load_keypoint_images(_Boxes(), None, resolution=16, sigma=1.0)
    net = build_network(LIGHT, data.num_outputs)
    figures = fit(net, data, data, LIGHT, tmp_path)
    assert figures.shape == (2, 2, 2, 3)   # epochs, images, keypoints, (x, y, heatmap MSE)
    # the last epoch's figures are the trained network's heatmaps, argmax and MSE against the Gaussian targets
    with torch.no_grad():
        maps = net.eval()(to_input(data.images))["out"].double().numpy()
    target = gaussian_heatmaps(data.labels.double(), 16, 16, 1.0).numpy()
    np.testing.assert_allclose(figures[-1, ..., :2], heatmap_argmax(maps))
    np.testing.assert_allclose(figures[-1, ..., 2], ((maps - target) ** 2).mean((2, 3)), rtol=1e-5)
    assert (target[:, 1] == 0).all()   # the hidden keypoint's target is empty
    assert target[:, 0].max() == pytest.approx(np.exp(-0.25))   # (5, 3) lies between 4 pixel centres


def test_tasks_do_not_mix(tmp_path):
    keypoints = load_keypoint_images(_Boxes(), None, resolution=8, sigma=1.0)
    labels = LabelledImages(keypoints.images, torch.zeros(2, 8, 8, dtype=torch.int64), CAR_5)
    with pytest.raises(DatasetFormatError, match="training labels have 2 keypoints, the test set 6 classes"):
        fit(build_network(LIGHT, 2), keypoints, labels, LIGHT, tmp_path)
    assert isinstance(keypoints, KeypointImages)
