"""CUB-200-2011 birds: images, foreground masks, 15 keypoints with visibility, boxes and the split.

Root is CUB_200_2011/ with the separately shipped segmentations/ folder extracted inside it.
Splits: train_test_split.txt (1 = 'train', 0 = 'test'), items sorted by image id. Labels are the soft
segmentation thresholded at half intensity (>= 128 -> bird). Keypoints are part_locs.txt's pixel
coordinates as stored, in parts/parts.txt order; an invisible point keeps its stored (0, 0) and
visible = 0. meta['bbox'] is the stored (x, y, w, h): the field's PCK scores a visible point correct
when its distance is at most alpha * max(w, h).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasources.base import DatasetFormatError, PartDataset, Sample
from datasources.classes import CUB_KEYPOINTS, CUB_MASK
from datasources.files import OnError, check_size, check_split, raise_error, read_binary, read_lines, read_rgb

SPLIT_FLAGS = {"train": "1", "test": "0"}


def _table(path: Path, what: str, width: int) -> dict[int, list[str]]:
    """A CUB text table keyed by its first column (an image id), each row at least `width` fields."""
    rows = {}
    for fields in read_lines(path, what):
        if len(fields) < width or not fields[0].isdigit():
            got = " ".join(fields)
            raise DatasetFormatError(path, f"rows of {width} fields starting with an image id, got {got!r}")
        rows[int(fields[0])] = fields[1:]
    return rows


def read_part_locs(path: Path) -> dict[int, np.ndarray]:
    """part_locs.txt -> image id -> float32 (15, 3) rows (x, y, visible); rows never given stay NaN."""
    keypoints: dict[int, np.ndarray] = {}
    for fields in read_lines(path, "keypoint locations"):
        try:
            image, part = int(fields[0]), int(fields[1])
            row = [float(v) for v in fields[2:5]]
        except (IndexError, ValueError):
            row = []
        if len(row) != 3 or not 1 <= part <= len(CUB_KEYPOINTS):
            raise DatasetFormatError(path, f"rows 'image part(1-15) x y visible', got {' '.join(fields)!r}")
        keypoints.setdefault(image, np.full((len(CUB_KEYPOINTS), 3), np.nan, np.float32))[part - 1] = row
    return keypoints


class CUBBirds(PartDataset):
    """CUB-200-2011: labels int64 (H, W) in CUB_MASK, keypoints float32 (15, 3) (x, y, visible)."""

    SPLITS = tuple(SPLIT_FLAGS)
    classes = CUB_MASK
    keypoint_names = CUB_KEYPOINTS

    def __init__(self, root: Path, split: str = "test", on_error: OnError = raise_error):
        check_split(split, self.SPLITS)
        self.root = Path(root)
        parts_file = self.root / "parts" / "parts.txt"
        names = tuple(" ".join(fields[1:]) for fields in read_lines(parts_file, "keypoint list"))
        if names != CUB_KEYPOINTS:
            raise DatasetFormatError(parts_file, f"the 15 CUB parts in order: {', '.join(CUB_KEYPOINTS)}")
        self.paths = _table(self.root / "images.txt", "image list", 2)
        self.boxes = _table(self.root / "bounding_boxes.txt", "box list", 5)
        flags = _table(self.root / "train_test_split.txt", "split list", 2)
        self.part_locs = self.root / "parts" / "part_locs.txt"
        self.keypoints = read_part_locs(self.part_locs)
        self.ids = sorted(i for i, row in flags.items() if row[0] == SPLIT_FLAGS[split])

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Sample:
        """The i-th bird: image uint8 (H, W, 3), labels int64 (H, W) in {0, 1}, keypoints float32 (15, 3)."""
        image_id = self.ids[i]
        if image_id not in self.paths or image_id not in self.boxes:
            raise DatasetFormatError(self.root / "images.txt", f"image {image_id} in images.txt and bounding_boxes.txt")
        relative = Path(self.paths[image_id][0])
        path = self.root / "images" / relative
        image = read_rgb(path)
        mask_path = self.root / "segmentations" / relative.with_suffix(".png")
        mask = read_binary(mask_path, "segmentation mask")
        check_size(mask_path, mask.shape, image.shape[:2], "segmentation mask")
        keypoints = self.keypoints.get(image_id)
        if keypoints is None or np.isnan(keypoints).any():
            raise DatasetFormatError(self.part_locs, f"15 keypoint rows for image {image_id}")
        bbox = tuple(float(v) for v in self.boxes[image_id][:4])
        return Sample(image, mask.astype(np.int64), keypoints.copy(), meta={"path": str(path), "bbox": bbox})
