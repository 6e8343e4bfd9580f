"""Kaggle CAT dataset as an image and keypoint source: CAT_00 ... CAT_06/*.jpg with *.jpg.cat files.

A .cat file is one line `9 x1 y1 ... x9 y9` (pixels, in CAT_KEYPOINTS order), all points visible.
Splits (inferred, no official one): 'train' = CAT_00..CAT_05, 'test' = CAT_06, 'all' = every folder;
items sorted by (folder, file name).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasources.base import DatasetFormatError, PartDataset, Sample
from datasources.classes import CAT_KEYPOINTS, CAT_OBJECT
from datasources.files import OnError, check_split, list_files, raise_error, read_rgb, read_text

SPLIT_FOLDERS = {
    "train": tuple(f"CAT_{k:02d}" for k in range(6)),
    "test": ("CAT_06",),
    "all": tuple(f"CAT_{k:02d}" for k in range(7)),
}


def read_cat(path: Path) -> np.ndarray:
    """A .cat file -> keypoints: float32 (9, 3) rows (x, y, 1)."""
    fields = read_text(path, "keypoint file (.cat)").split()
    try:
        values = [float(v) for v in fields]
    except ValueError:
        values = []
    count = len(CAT_KEYPOINTS)
    if len(values) != 1 + 2 * count or values[0] != count:
        raise DatasetFormatError(path, f"'{count}' followed by {count} x y pairs, got {' '.join(fields)!r}")
    xy = np.asarray(values[1:], np.float32).reshape(count, 2)
    return np.concatenate([xy, np.ones((count, 1), np.float32)], axis=1)


class KaggleCats(PartDataset):
    """Kaggle CAT images (labels None) with 9 head keypoints: float32 (9, 3) (x, y, visible)."""

    SPLITS = tuple(SPLIT_FOLDERS)
    classes = CAT_OBJECT
    keypoint_names = CAT_KEYPOINTS

    def __init__(self, root: Path, split: str = "test", on_error: OnError = raise_error):
        check_split(split, self.SPLITS)
        self.images = []
        for folder in SPLIT_FOLDERS[split]:
            try:
                self.images += list_files(Path(root) / folder, (".jpg",), "cat photos")
            except DatasetFormatError as e:
                on_error(e)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Sample:
        """The i-th photo: image uint8 (H, W, 3) and its keypoints float32 (9, 3)."""
        path = self.images[i]
        keypoints = read_cat(path.with_name(path.name + ".cat"))
        return Sample(read_rgb(path), keypoints=keypoints, meta={"path": str(path)})
