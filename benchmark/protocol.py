"""The official k-fold evaluation of DatasetGAN's downstream networks.

Test images are taken in sorted order and cut into `k` contiguous folds (sizes differ by at most
one; the official script's 250 / 5 and 20 / 5 divide evenly). Each fold in turn is the validation
fold: it picks the checkpoint (the official script's epoch; ours are benchmark.segmentation's evenly
spaced evaluation points) with the best mIoU on itself, and the other k - 1 folds, pooled, are
scored at that checkpoint. The result is the mean and the standard deviation (population,
ddof 0, as numpy's default in the official script) of the k scores.

Everything works on additive per-image figures summed per fold (confusion matrices for parts,
keypoint counts for keypoints), so a run stores (E, k, ...) sums (E checkpoints) and any convention
or fold choice can be recomputed from its record. Keypoint runs pick each fold's checkpoint by PCK at the middle of the
table's thresholds (the paper does not say; Car-20's 15/10/5 -> PCK@10) and report every keypoint
metric there. Selecting by the lowest L2 heatmap loss instead would be won by networks that output
nothing: all-zero heatmaps score a lower L2 than any trained network on sparse keypoint targets.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from benchmark.metrics import mean_iou, pck, pck_counts


def folds(num_images: int, k: int = 5) -> list[np.ndarray]:
    """k contiguous folds of the indices 0..num_images-1 (the images' sorted order); int64 arrays."""
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k}")
    if num_images < k:
        raise ValueError(f"{num_images} test images cannot make {k} folds")
    return [np.asarray(f, np.int64) for f in np.array_split(np.arange(num_images), k)]


def fold_sums(per_image: np.ndarray, fold_indices: list[np.ndarray]) -> np.ndarray:
    """per_image: (E, N, ...) additive figures of every test image at every epoch (e.g. int64 (E, N, K, K)
    confusions) -> (E, F, ...) summed over each fold's images."""
    return np.stack([per_image[:, f].sum(1) for f in fold_indices], axis=1)


def keypoint_counts(per_image: np.ndarray, truth: np.ndarray, scale: np.ndarray,
                    thresholds: tuple[float, ...]) -> np.ndarray:
    """per_image: float (E, N, K, 3) benchmark.segmentation.evaluate's keypoint figures (x, y, heatmap MSE) at
    every checkpoint; truth: float (N, K, 3); scale: float (N,) -> float (E, N, 3 + T) additive figures: visible
    keypoints, correct ones at each threshold (metrics.pck_counts), summed heatmap MSE, number of heatmaps."""
    checkpoints, n, k, _ = per_image.shape
    counts = np.stack([pck_counts(e[..., :2], truth, scale, thresholds) for e in per_image])
    l2 = np.stack([per_image[..., 2].sum(-1), np.full((checkpoints, n), k, np.float64)], -1)
    return np.concatenate([counts, l2], -1)


def keypoint_metrics(thresholds: tuple[float, ...]) -> dict[str, Callable[[np.ndarray], float]]:
    """Name -> metric of summed keypoint_counts: "l2" (mean squared heatmap error) and "pck@t" per threshold
    (fraction of visible keypoints within t percent of the object's box)."""
    metrics = {"l2": lambda c: float(c[-2] / c[-1])}
    for i, t in enumerate(thresholds):
        metrics[f"pck@{t:g}"] = lambda c, i=i: float(pck(c[:-2])[i])
    return metrics


def selection_threshold(thresholds: tuple[float, ...]) -> float:
    """The PCK threshold keypoint checkpoints are selected by: the middle of the table's (in their order)."""
    return thresholds[len(thresholds) // 2]


@dataclass(frozen=True)
class CrossValidation:
    """selected_checkpoints: int (F,) the checkpoint (0-based) fold f picked on itself; scores: float (F,) the
    metric of the other folds at that checkpoint (mIoU in [0, 1]); mean, std: over the F scores."""

    selected_checkpoints: tuple[int, ...]
    scores: tuple[float, ...]
    mean: float
    std: float
    convention: str


def select_checkpoints(per_fold: np.ndarray, criterion: Callable[[np.ndarray], float]) -> tuple[int, ...]:
    """per_fold: (E, F, ...) figures summed per fold -> each fold's checkpoint with the highest criterion on
    itself; ties go to the earliest."""
    checkpoints, num_folds = per_fold.shape[:2]
    return tuple(int(np.argmax([criterion(per_fold[e, f]) for e in range(checkpoints)])) for f in range(num_folds))


def held_out(per_fold: np.ndarray, selected: tuple[int, ...], metric: Callable[[np.ndarray], float],
             convention: str) -> CrossValidation:
    """Each fold's selected checkpoint scored on the other folds pooled, with `metric` of summed figures."""
    total = per_fold.sum(1)
    scores = [metric(total[e] - per_fold[e, f]) for f, e in enumerate(selected)]
    return CrossValidation(tuple(selected), tuple(scores), float(np.mean(scores)), float(np.std(scores)), convention)


def cross_validate(per_fold: np.ndarray, convention: str = "official") -> CrossValidation:
    """per_fold: int64 (E, F, K, K) confusion summed per fold at every checkpoint -> the k-fold mIoU result
    (each fold selects by mIoU in the same convention)."""
    if per_fold.ndim != 4 or per_fold.shape[2] != per_fold.shape[3]:
        raise ValueError(f"per_fold must be (E, F, K, K), got {per_fold.shape}")
    metric = lambda m: mean_iou(m, convention)  # noqa: E731
    return held_out(per_fold, select_checkpoints(per_fold, metric), metric, convention)


def cross_validate_keypoints(per_fold: np.ndarray, thresholds: tuple[float, ...]) -> dict[str, CrossValidation]:
    """per_fold: float (E, F, 3 + T) keypoint_counts summed per fold -> every keypoint metric's k-fold result,
    all at the checkpoints each fold selects by its PCK at the middle threshold (selection_threshold)."""
    metrics = keypoint_metrics(thresholds)
    by = metrics[f"pck@{selection_threshold(thresholds):g}"]
    selected = select_checkpoints(per_fold, lambda c: np.nan_to_num(by(c), nan=-1.0))
    return {name: held_out(per_fold, selected, metric, "l2" if name == "l2" else "pck-box")
            for name, metric in metrics.items()}
