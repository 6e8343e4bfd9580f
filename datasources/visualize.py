"""Pictures of datasets: images beside their coloured label maps, for the README and for checking."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from datasources.base import PartDataset, Sample


def overlay_keypoints(image: np.ndarray, keypoints: np.ndarray, scale: int) -> np.ndarray:
    """image: uint8 (H, W, 3) already upscaled by `scale`; marks visible keypoints (x, y, 1) with
    a small red cross so their placement can be checked by eye."""
    out = image.copy()
    h, w = out.shape[:2]
    for x, y, visible in keypoints:
        if visible < 0.5:
            continue
        cx, cy = int(x * scale), int(y * scale)
        for dx, dy in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)):
            if 0 <= cx + dx < w and 0 <= cy + dy < h:
                out[cy + dy, cx + dx] = (255, 0, 0)
    return out


def sample_tile(sample: Sample, dataset: PartDataset, scale: int = 2) -> np.ndarray:
    """uint8 (H*scale, 2*W*scale, 3): the image (keypoints marked) beside its coloured labels."""
    image = _upscale(sample.image, scale)
    if sample.keypoints is not None:
        image = overlay_keypoints(image, sample.keypoints, scale)
    return np.concatenate([image, _upscale(dataset.classes.colorize(sample.labels), scale)], 1)


def _upscale(array: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling of (H, W, C) by an integer factor, so pixels stay visible."""
    return np.repeat(np.repeat(array, scale, 0), scale, 1)


def save_label_grid(dataset: PartDataset, path: str | Path, count: int = 16, columns: int = 4,
                    scale: int = 2) -> Path:
    """Write a PNG grid of the first `count` samples, each as image | coloured label map."""
    tiles = [sample_tile(dataset[i], dataset, scale) for i in range(min(count, len(dataset)))]
    if not tiles:
        raise ValueError("the dataset is empty: nothing to draw")
    pad = np.full_like(tiles[0], 255)
    tiles += [pad] * (-len(tiles) % columns)
    tiles = [np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in tiles]
    rows = [np.concatenate(tiles[r:r + columns], 1) for r in range(0, len(tiles), columns)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(path)
    return path
