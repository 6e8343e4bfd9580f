"""ADE20K 2016 release (ADE20K_2016_07_26): index_ade20k.mat, *_seg.png, *_parts_N.png, *_atr.txt.

PNG encoding: class = (R // 10) * 256 + G, a 1-based index into index.objectnames (0 = unlabelled);
instance k (1-based, as numbered in *_atr.txt) = the pixels holding the k-th smallest non-zero B value
(inferred: the reference decoder ranks all B values, and 0 is the unlabelled background).
*_atr.txt rows are `instance # part level # occluded # WordNet name # raw name # attributes`; cars are
level-0 rows named CAR_NAME. With no parent pointers, a car's parts are the pixels of *_parts_N.png
inside the car's own pixels, N = 1, 2, ... while the file exists.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasources.ade20k_parts import CAR_NAME, CarAnnotation, CarRef, car_refs, release_folder
from datasources.base import DatasetFormatError
from datasources.files import OnError, check_size, mat_field, mat_strings, read_mat, read_rgb, read_text

INDEX = "index_ade20k.mat"


def decode(seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """seg: uint8 (H, W, 3) -> (class: int64 (H, W), 1-based into objectnames; instance: int64 (H, W), 0 = none)."""
    r, g, b = (seg[..., c].astype(np.int64) for c in range(3))
    values = np.unique(b[b > 0])
    instance = np.where(b > 0, np.searchsorted(values, b) + 1, 0)
    return (r // 10) * 256 + g, instance


def read_atr(path: Path) -> list[tuple[int, int, str]]:
    """*_atr.txt -> (instance, part level, WordNet name) per row."""
    rows = []
    for line in read_text(path, "attribute file (*_atr.txt)").splitlines():
        fields = [f.strip() for f in line.split("#")]
        if line.strip():
            try:
                rows.append((int(fields[0]), int(fields[1]), fields[3]))
            except (IndexError, ValueError):
                expected = "rows 'instance # level # occluded # name # raw name # attributes'"
                raise DatasetFormatError(path, f"{expected}, got {line!r}") from None
    return rows


def _sibling(image: Path, suffix: str) -> Path:
    """ADE_x.jpg -> ADE_x<suffix> in the same folder."""
    return image.with_name(image.stem + suffix)


class ADE2016:
    """Reader of the 2016 release rooted at ADE20K_2016_07_26/."""

    def __init__(self, root: Path):
        path = root / INDEX
        mat = read_mat(path, "ADE20K index")
        if "index" not in mat:
            raise DatasetFormatError(path, "a struct named 'index'")
        index = mat["index"][0, 0]
        filenames = mat_strings(mat_field(index, "filename", path))
        folders = mat_strings(mat_field(index, "folder", path))
        self.objectnames = mat_strings(mat_field(index, "objectnames", path))
        if len(filenames) != len(folders):
            raise DatasetFormatError(path, "index.filename and index.folder of equal length")
        if CAR_NAME not in self.objectnames:
            raise DatasetFormatError(path, f"the class {CAR_NAME!r} in index.objectnames")
        self.car_class = self.objectnames.index(CAR_NAME) + 1
        self.images = [release_folder(root, d) / f for f, d in zip(filenames, folders)]

    def cars(self, subset: str, on_error: OnError) -> list[CarRef]:
        """Car instances of the images under images/<subset>/ ('training' or 'validation')."""
        return car_refs(self.images, subset, lambda image: [
            k for k, level, name in read_atr(_sibling(image, "_atr.txt")) if level == 0 and name == CAR_NAME], on_error)

    def _decode(self, path: Path, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Read and decode one class/instance PNG of the image's size."""
        seg = read_rgb(path, "class/instance PNG")
        check_size(path, seg.shape, hw, "class/instance PNG")
        classes, instances = decode(seg)
        if classes.max() > len(self.objectnames):
            raise DatasetFormatError(path, f"class values at most {len(self.objectnames)} (index.objectnames)")
        return classes, instances

    def load(self, ref: CarRef, hw: tuple[int, int]) -> CarAnnotation:
        """The car's pixels (from *_seg.png) and the part pixels inside them, each (H, W) = `hw`."""
        path = _sibling(ref.image, "_seg.png")
        classes, instances = self._decode(path, hw)
        car = instances == ref.instance
        if not car.any() or (classes[car] != self.car_class).any():
            raise DatasetFormatError(path, f"instance {ref.instance} to be a car, as its *_atr.txt row says")
        parts, level = [], 1
        while (path := _sibling(ref.image, f"_parts_{level}.png")).is_file():
            classes, _ = self._decode(path, hw)
            parts += [(level, self.objectnames[c - 1], (classes == c) & car) for c in np.unique(classes[car]) if c]
            level += 1
        return CarAnnotation(car, parts)
