"""Stanford Cars as an image source: cars_{train,test}/*.jpg with devkit/*.mat boxes and classes.

devkit/cars_{split}_annos.mat holds the struct array `annotations` (bbox_x1, bbox_y1, bbox_x2,
bbox_y2: 1-based inclusive pixels; class: 1-based into cars_meta.mat's class_names, absent from the
test file; fname). Items are whole images sorted by file name; meta['box'] is the car's box as
(x0, y0, x1, y1), 0-based with exclusive ends, and meta['class_name'] its model (None for 'test').
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasources.base import DatasetFormatError, PartDataset, Sample
from datasources.classes import CAR_OBJECT
from datasources.files import OnError, check_split, mat_field, mat_str, mat_strings, raise_error, read_mat, read_rgb

_BOX_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")


def _struct_array(path: Path, name: str, what: str) -> np.ndarray:
    """The MATLAB variable `name` of a .mat file, flattened."""
    mat = read_mat(path, what)
    if name not in mat:
        raise DatasetFormatError(path, f"a variable named {name!r}")
    return np.asarray(mat[name]).ravel()


def _int(record, name: str, path: Path) -> int:
    """One scalar integer field of a MATLAB struct element."""
    return int(np.asarray(mat_field(record, name, path)).ravel()[0])


class StanfordCars(PartDataset):
    """Stanford Cars images (labels and keypoints None) with their boxes and model names."""

    SPLITS = ("train", "test")
    classes = CAR_OBJECT

    def __init__(self, root: Path, split: str = "test", on_error: OnError = raise_error):
        check_split(split, self.SPLITS)
        self.root = Path(root)
        self.folder = self.root / f"cars_{split}"
        self.annos = self.root / "devkit" / f"cars_{split}_annos.mat"
        meta = self.root / "devkit" / "cars_meta.mat"
        self.class_names = mat_strings(_struct_array(meta, "class_names", "class list"))
        self.items = []
        for record in _struct_array(self.annos, "annotations", "box annotations"):
            x1, y1, x2, y2 = (_int(record, f, self.annos) for f in _BOX_FIELDS)
            label = _int(record, "class", self.annos) if "class" in record.dtype.names else None
            self.items.append((mat_str(mat_field(record, "fname", self.annos)), (x1 - 1, y1 - 1, x2, y2), label))
        self.items.sort(key=lambda item: item[0])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Sample:
        """The i-th image: uint8 (H, W, 3); meta holds 'box' (x0, y0, x1, y1) and 'class_name'."""
        fname, box, label = self.items[i]
        path = self.folder / fname
        image = read_rgb(path)
        h, w = image.shape[:2]
        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise DatasetFormatError(self.annos, f"the box of {fname} inside its {w}x{h} image, got {box}")
        if label is not None and not 1 <= label <= len(self.class_names):
            raise DatasetFormatError(self.annos, f"the class of {fname} in 1..{len(self.class_names)}, got {label}")
        class_name = None if label is None else self.class_names[label - 1]
        return Sample(image, meta={"path": str(path), "box": box, "class_name": class_name})
