"""The keypoint task on the shared trainer (paper Table 2): images with keypoints, one output map per
keypoint regressing the Gaussian target of datasetgan.interpreter.gaussian_heatmaps with an L2 loss,
and per-image figures (predicted locations by heatmap argmax, heatmap MSE) from which L2 loss and PCK
pool over any set (benchmark.protocol).

One PCK normaliser for every test set, toy or real: max(width, height) of the box of the object's
labelled pixels. For CUB-200-2011 this is the bird mask's box, not the annotated bounding box that
CUB's own PCK uses (datasources.cub meta['bbox']): the two differ by the annotators' margin, so our
PCK on cub-bird is comparable across our runs, not digit for digit with figures normalised by the
stored boxes (the paper does not say which it used)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.configs import ConfigError
from benchmark.metrics import heatmap_argmax, heatmap_l2
from benchmark.segmentation import CrossEntropy, resize_image, first_samples
from datasetgan.interpreter import gaussian_heatmaps
from datasources.base import DatasetFormatError, PartDataset


@dataclass(frozen=True)
class KeypointSettings:
    """Keypoint targets and scores (suite keypoints; ours where the paper is silent)."""

    sigma: float = 4.0   # std of the Gaussian target heatmaps, in pixels of the network's input
    thresholds: tuple[float, ...] = (15.0, 10.0, 5.0)   # PCK "th-t" as t percent of the object's box (Car-20's)

    def __post_init__(self):
        if self.sigma <= 0 or not self.thresholds or min(self.thresholds) <= 0:
            raise ConfigError("keypoints.sigma and every keypoints.thresholds entry must be positive")


class HeatmapL2(CrossEntropy):
    """The keypoint objective: mean squared error between the K output maps and the Gaussian targets."""

    def __init__(self, sigma: float):
        self.sigma = sigma

    def loss(self, net: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
        """images: float (B, 3, H, W) normalised; labels: float (B, K, 3) keypoints -> scalar loss."""
        out = net(images)["out"]
        return F.mse_loss(out, gaussian_heatmaps(labels, out.shape[2], out.shape[3], self.sigma))


@dataclass(frozen=True)
class KeypointImages:
    """images: uint8 (N, H, W, 3); labels: float (N, K, 3) keypoints (x, y, visible) in pixels of these images,
    pixel centres at integer + 0.5; names: the K keypoint names; scale: float (N,) each image's PCK normaliser,
    max(width, height) of the bounding box of its object's pixels (labels != 0) in these pixels (NaN for
    images without a label map, e.g. synthetic training sets: they are never scored); sigma: the std of the
    Gaussian target heatmaps in these pixels."""

    images: Tensor
    labels: Tensor
    names: tuple[str, ...]
    scale: Tensor
    sigma: float

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_outputs(self) -> int:
        return len(self.names)

    @property
    def describe(self) -> str:
        return f"{len(self.names)} keypoints"

    def zero_output_l2(self, batch: int = 16) -> float:
        """The L2 heatmap loss of a network that outputs all-zero heatmaps on these images: the floor a trained
        network has to beat (the targets are sparse, so it is low, and a selection by L2 can prefer it)."""
        h, w = self.images.shape[1:3]
        total = sum(float(gaussian_heatmaps(self.labels[i:i + batch].double(), h, w, self.sigma).square().sum())
                    for i in range(0, len(self), batch))
        return total / (len(self) * self.num_outputs * h * w)

    def objective(self, class_weighting: str = "none") -> HeatmapL2:
        """The default training objective for these keypoints (heatmaps have no classes to weight: a
        segmentation.class_weighting is left aside)."""
        return HeatmapL2(self.sigma)

    def figures(self, outputs: Tensor, start: int) -> np.ndarray:
        """outputs: float (B, K, H, W) heatmaps of images start..start+B -> float (B, K, 3): per keypoint the
        predicted (x, y) (metrics.heatmap_argmax) and its heatmap's mean squared error against the target."""
        maps = outputs.double().cpu().numpy()
        labels = self.labels[start:start + len(outputs)].double()
        target = gaussian_heatmaps(labels, maps.shape[2], maps.shape[3], self.sigma).numpy()
        return np.concatenate([heatmap_argmax(maps), heatmap_l2(maps, target)[..., None]], -1)


def _box(labels: np.ndarray) -> np.ndarray:
    """(width, height) of the bounding box of the pixels labelled other than background (the image's size
    when there are none)."""
    ys, xs = np.nonzero(labels > 0)
    if not len(xs):
        return np.array(labels.shape[::-1], np.float64)
    return np.array([xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], np.float64)


def load_keypoint_images(dataset: PartDataset, count: int | None, resolution: int | None, sigma: float,
                         name: str = "dataset") -> KeypointImages:
    """The first `count` samples' images and keypoints in memory, resized to `resolution` when given (keypoints
    scaled with them), and each image's PCK normaliser from its label map when it has one; `sigma`: the target
    heatmaps' std in the resized pixels. A keypoint row with a missing (NaN) value becomes (0, 0, not visible),
    as datasets store hidden points (CUB's stored (0, 0, 0)): no target peak, never scored."""
    samples = first_samples(dataset, count, resolution, name)
    if any(s.keypoints is None for s in samples):
        raise DatasetFormatError(name, "keypoints for every image")
    keypoints, scales = [], []
    for s in samples:
        h, w = s.image.shape[:2]
        factor = np.array([resolution / w, resolution / h]) if resolution is not None else np.ones(2)
        kp = np.asarray(s.keypoints, np.float64).copy()
        kp[~np.isfinite(kp).all(1)] = 0.0
        kp[:, :2] *= factor
        keypoints.append(kp)
        scales.append((_box(s.labels) * factor).max() if s.labels is not None else np.nan)
    names = tuple(getattr(dataset, "keypoint_names", ()) or (f"keypoint {i}" for i in range(len(keypoints[0]))))
    return KeypointImages(torch.stack([resize_image(s.image, resolution) for s in samples]),
                          torch.from_numpy(np.stack(keypoints)).float(), names,
                          torch.tensor(scales, dtype=torch.float64), sigma)
