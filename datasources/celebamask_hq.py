"""CelebAMask-HQ: 18 binary part PNGs per face, painted in the official order into CELEBA_19.

Layout: CelebA-HQ-img/{k}.jpg, CelebAMask-HQ-mask-anno/{k // 2000}/{k:05d}_{part}.png (a missing
file means the part is absent), CelebA-HQ-to-CelebA-mapping.txt (`idx orig_idx orig_file`).
Splits follow the official partition on orig_idx: 'train' < 162771, official test >= 182638; the
paper's 'val' is the first VAL_COUNT test faces by HQ index and 'test' the rest. Labels are at the
masks' resolution: the image is reduced by the integer factor between the two (shipped 1024 -> 512,
box filter); a mask of any other size is an error, and so is a face with no part file at all.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from PIL import Image

from datasources.base import DatasetFormatError, LabelMerge, PartDataset, Sample
from datasources.classes import CELEBA_19
from datasources.files import OnError, check_split, raise_error, read_binary, read_lines, read_rgb, take_split

PARTS = CELEBA_19.names[1:]
VAL_COUNT = 500
TRAIN_END, TEST_START = 162771, 182638
MAPPING = "CelebA-HQ-to-CelebA-mapping.txt"
_MASK_NAME = re.compile(r"^(\d{5})_(.+)\.png$")


def read_mapping(path: Path) -> list[tuple[int, int]]:
    """The mapping file -> (HQ index, original CelebA index) rows, header skipped."""
    rows = []
    for fields in read_lines(path, "CelebA-HQ to CelebA mapping"):
        if fields[0] == "idx":
            continue
        try:
            rows.append((int(fields[0]), int(fields[1])))
        except (IndexError, ValueError):
            raise DatasetFormatError(path, f"rows 'idx orig_idx orig_file', got {' '.join(fields)!r}") from None
    return rows


class CelebAMaskHQ(PartDataset):
    """CelebAMask-HQ faces; labels in CELEBA_19, or in `merge.target` (CELEBA_19_TO_8: CelebA-Mask-8)."""

    SPLITS = ("train", "val", "test")

    def __init__(self, root: Path, split: str = "test", merge: LabelMerge | None = None,
                 on_error: OnError = raise_error):
        check_split(split, self.SPLITS)
        self.root = Path(root)
        self.merge = merge
        self.classes = CELEBA_19 if merge is None else merge.target
        rows = sorted(read_mapping(self.root / MAPPING))
        if split == "train":
            self.faces = [k for k, orig in rows if orig < TRAIN_END]
        else:
            self.faces = take_split([k for k, orig in rows if orig >= TEST_START], split, VAL_COUNT)
        self.part_files: dict[int, dict[str, Path]] = {}
        wanted = set(self.faces)
        for group in sorted({k // 2000 for k in self.faces}):
            self._scan(self.root / "CelebAMask-HQ-mask-anno" / str(group), wanted, on_error)

    def _scan(self, folder: Path, wanted: set[int], on_error: OnError) -> None:
        """Index one mask folder's files of the `wanted` faces; a file naming an unknown part is reported."""
        if not folder.is_dir():
            return
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            match = _MASK_NAME.match(entry.name)
            if match and int(match.group(1)) in wanted:
                face, part = int(match.group(1)), match.group(2)
                if part in PARTS:
                    self.part_files.setdefault(face, {})[part] = Path(entry.path)
                else:
                    on_error(DatasetFormatError(entry.path, f"a part name among: {', '.join(PARTS)}"))

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int) -> Sample:
        """The i-th face: image uint8 (S, S, 3) and labels int64 (S, S), S the masks' size (512 shipped)."""
        face = self.faces[i]
        path = self.root / "CelebA-HQ-img" / f"{face}.jpg"
        image = read_rgb(path)
        files = self.part_files.get(face)
        if not files:
            expected = self.root / "CelebAMask-HQ-mask-anno" / str(face // 2000) / f"{face:05d}_<part>.png"
            raise DatasetFormatError(expected, f"part masks for image {path.name}: none of the 18 files exists")
        masks = {part: read_binary(files[part], "part mask") for part in PARTS if part in files}
        first = next(iter(masks))
        factor = self._factor(files[first], masks[first].shape, image.shape)
        labels = np.zeros(masks[first].shape, np.int64)
        for index, part in enumerate(PARTS, start=1):
            if part in masks:
                if masks[part].shape != labels.shape:
                    raise DatasetFormatError(files[part], f"the size of {files[first].name}, {labels.shape[::-1]}")
                labels[masks[part]] = index
        if factor > 1:
            image = np.array(Image.fromarray(image).reduce(factor))
        if self.merge is not None:
            labels = self.merge(labels)
        return Sample(image, labels, meta={"path": str(path), "face": face})

    @staticmethod
    def _factor(path: Path, mask_hw: tuple[int, ...], image_shape: tuple[int, ...]) -> int:
        """The integer f with image size = f * mask size on both axes, or a DatasetFormatError naming the mask."""
        (mh, mw), (ih, iw) = mask_hw, image_shape[:2]
        if ih % mh or iw % mw or ih // mh != iw // mw:
            raise DatasetFormatError(path, f"size {mw}x{mh} to divide its image's {iw}x{ih} by one integer factor")
        return ih // mh
