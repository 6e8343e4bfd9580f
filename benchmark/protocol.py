"""The official k-fold evaluation of DatasetGAN's downstream networks.

Test images are taken in sorted order and cut into `k` contiguous folds (sizes differ by at most
one; the official script's 250 / 5 and 20 / 5 divide evenly). Each fold in turn is the validation
fold: it picks the epoch (checkpoint) with the best mIoU on itself, and the other k - 1 folds,
pooled, are scored at that epoch. The result is the mean and the standard deviation (population,
ddof 0, as numpy's default in the official script) of the k scores.

Everything works on confusion matrices summed per fold, so a run stores (E, k, K, K) counts and
any convention or fold choice can be recomputed from its record.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.metrics import mean_iou


def folds(num_images: int, k: int = 5) -> list[np.ndarray]:
    """k contiguous folds of the indices 0..num_images-1 (the images' sorted order); int64 arrays."""
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k}")
    if num_images < k:
        raise ValueError(f"{num_images} test images cannot make {k} folds")
    return [np.asarray(f, np.int64) for f in np.array_split(np.arange(num_images), k)]


def fold_confusions(per_image: np.ndarray, fold_indices: list[np.ndarray]) -> np.ndarray:
    """per_image: int64 (E, N, K, K) confusion of every test image at every epoch
    -> int64 (E, F, K, K) summed over each fold's images."""
    return np.stack([per_image[:, f].sum(1) for f in fold_indices], axis=1)


@dataclass(frozen=True)
class CrossValidation:
    """selected_epochs: int (F,) the epoch (0-based) fold f picked on itself; scores: float (F,) mIoU
    of the other folds at that epoch, in [0, 1]; mean, std: over the F scores."""

    selected_epochs: tuple[int, ...]
    scores: tuple[float, ...]
    mean: float
    std: float
    convention: str


def cross_validate(per_fold: np.ndarray, convention: str = "official") -> CrossValidation:
    """per_fold: int64 (E, F, K, K) confusion summed per fold at every epoch -> the k-fold result.
    Ties between epochs go to the earliest."""
    if per_fold.ndim != 4 or per_fold.shape[2] != per_fold.shape[3]:
        raise ValueError(f"per_fold must be (E, F, K, K), got {per_fold.shape}")
    epochs, num_folds = per_fold.shape[:2]
    total = per_fold.sum(1)  # (E, K, K)
    selected, scores = [], []
    for f in range(num_folds):
        validation = [mean_iou(per_fold[e, f], convention) for e in range(epochs)]
        best = int(np.argmax(validation))
        selected.append(best)
        scores.append(mean_iou(total[best] - per_fold[best, f], convention))
    return CrossValidation(tuple(selected), tuple(scores), float(np.mean(scores)), float(np.std(scores)), convention)
