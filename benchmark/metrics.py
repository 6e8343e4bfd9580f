"""Segmentation metrics from a confusion matrix summed over a whole set, as the official DatasetGAN
evaluation computes them (and mmsegmentation's convention as an option)."""
from __future__ import annotations

import numpy as np

from datasets.base import IGNORE


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
