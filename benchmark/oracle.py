"""The ceiling of a segmentation setup on a test set: the mIoU of the best per-image logits its output grid
can hold. A network whose logits are h x w, bilinearly upsampled to the label size, cannot draw a part finer
than that grid allows, whatever its training data; fitting free logits at that grid to each test label map
directly (cross-entropy, then argmax) measures how much room a table has. At 64 px, DeepLabV3's output
stride 16 gives 4 x 4 logits and a ceiling near 26 mIoU on toy-car-12: every variant is capped there.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.metrics import confusion, mean_iou
from datasources.base import IGNORE


def output_grid(net: torch.nn.Module, resolution: int) -> tuple[int, int]:
    """(h, w) of a DeepLabV3's logits before their upsampling, for square inputs of `resolution` pixels."""
    net.eval()
    with torch.no_grad():
        features = net.backbone(torch.zeros(1, 3, resolution, resolution))["out"]
    return tuple(features.shape[-2:])


def oracle_logits(labels: Tensor, num_classes: int, grid: tuple[int, int], steps: int = 300,
                  lr: float = 0.5) -> Tensor:
    """labels: int64 (N, H, W) in [0, K) or IGNORE -> float (N, K, h, w): free logits at the grid, fitted to
    each label map by Adam on the cross-entropy of their bilinear upsampling (as DeepLabV3 upsamples)."""
    logits = torch.zeros(len(labels), num_classes, *grid, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    for _ in range(steps):
        up = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
        loss = F.cross_entropy(up, labels, ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return logits.detach()


def oracle_miou(labels: Tensor, num_classes: int, grid: tuple[int, int], convention: str = "official",
                batch: int = 64) -> float:
    """labels: int64 (N, H, W) -> the mIoU (fraction) of the oracle logits at `grid` over the whole set."""
    matrix = 0
    for start in range(0, len(labels), batch):
        part = labels[start:start + batch]
        logits = oracle_logits(part, num_classes, grid)
        pred = F.interpolate(logits, size=part.shape[-2:], mode="bilinear", align_corners=False).argmax(1)
        matrix = matrix + confusion(pred.numpy(), part.numpy(), num_classes)
    return mean_iou(matrix, convention)
