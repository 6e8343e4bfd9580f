"""Segmentation metrics from a confusion matrix summed over a whole set, as the official DatasetGAN
evaluation computes them (and mmsegmentation's convention as an option), and keypoint metrics
(heatmap argmax, PCK, L2 heatmap loss) in the same spirit: per-image figures that pool over a set."""
from __future__ import annotations

import numpy as np

from datasources.base import IGNORE


def confusion(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """pred, truth: int (...) label maps of one shape -> int64 (K, K) counts, rows = truth, cols = prediction;
    pixels whose truth is IGNORE are left out."""
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    keep = truth != IGNORE
    t, p = truth[keep].astype(np.int64), pred[keep].astype(np.int64)
    if t.size and (t.max() >= num_classes or p.max() >= num_classes or min(t.min(), p.min()) < 0):
        raise ValueError(f"labels outside [0, {num_classes})")
    return np.bincount(t * num_classes + p, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_per_class(matrix: np.ndarray) -> np.ndarray:
    """float (K,): intersection / union per class from a summed confusion matrix; NaN where the union is 0."""
    inter = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def mean_iou(matrix: np.ndarray, convention: str = "official") -> float:
    """Mean IoU over classes, background included. official (DatasetGAN): a class absent from both
    prediction and truth counts 0; mmseg: such classes are left out of the mean (nanmean)."""
    iou = iou_per_class(matrix)
    if convention == "official":
        return float(np.nan_to_num(iou, nan=0.0).mean())
    if convention == "mmseg":
        return float(np.nanmean(iou))
    raise ValueError(f"unknown mIoU convention {convention!r}; valid: official, mmseg")


# Keypoints (paper Table 2). Heatmaps are float (N, K, H, W), one map per keypoint; keypoints are float
# (N, K, 3) rows (x, y, visible) in pixels of those maps, pixel centres at integer + 0.5 (datasources.base).

def heatmap_argmax(maps: np.ndarray) -> np.ndarray:
    """maps: float (N, K, H, W) -> float (N, K, 2) (x, y): the centre of each map's highest pixel (the first
    in row-major order on ties)."""
    n, k, h, w = maps.shape
    flat = maps.reshape(n, k, h * w).argmax(-1)
    return np.stack([flat % w, flat // w], -1).astype(np.float64) + 0.5


def pck_counts(predicted: np.ndarray, truth: np.ndarray, scale: np.ndarray,
               thresholds: tuple[float, ...]) -> np.ndarray:
    """Percentage of correct keypoints, as additive counts so that sets can be pooled before dividing.

    predicted: float (N, K, 2) (x, y); truth: float (N, K, 3) (x, y, visible); scale: float (N,) the normaliser
    of each image, max(width, height) of the object's bounding box in the same pixels (the field's convention,
    as CUB's PCK uses it; the paper does not publish its own). A visible keypoint is correct at threshold t
    when its distance to the truth is at most t / 100 * scale (the paper's "th-t" read as t percent).
    Returns int64 (N, 1 + T): visible keypoints per image, then correct ones at each threshold."""
    distance = np.linalg.norm(predicted - truth[..., :2], axis=-1)            # (N, K)
    visible = truth[..., 2] > 0
    limits = np.asarray(thresholds, np.float64)[:, None, None] / 100 * np.asarray(scale, np.float64)[None, :, None]
    correct = ((distance[None] <= limits) & visible[None]).sum(-1)            # (T, N)
    return np.concatenate([visible.sum(-1)[:, None], correct.T], 1).astype(np.int64)


def pck(counts: np.ndarray) -> np.ndarray:
    """counts: int (..., 1 + T) from pck_counts (summed over any set) -> float (..., T) fractions in [0, 1];
    NaN where no keypoint is visible."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts[..., 1:] / np.where(counts[..., :1] > 0, counts[..., :1], np.nan)


def heatmap_l2(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """predicted, target: float (N, K, H, W) -> float (N, K): the mean squared error of each heatmap. The L2
    heatmap loss of a set (paper Table 2) is the mean of these over its images and keypoints (every map of a
    set has the same size), the targets being datasetgan.interpreter.gaussian_heatmaps."""
    if predicted.shape != target.shape:
        raise ValueError(f"predicted heatmaps {predicted.shape} and targets {target.shape} differ in shape")
    return ((predicted - target) ** 2).mean((2, 3))
