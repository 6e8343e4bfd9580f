"""PASCAL-Car-5: PASCAL-Part car objects (Annotations_Part/<voc id>.mat) cropped to their boxes.

Root is VOC2010's folder (VOCdevkit/VOC2010) with PASCAL-Part's Annotations_Part/ placed inside it,
next to JPEGImages/ and ImageSets/. Splits (inferred): 'train' and 'test' are the images that
ImageSets/Main/car_train.txt and car_val.txt mark as holding a car (flag 1 or 0, difficult included);
items are their car objects with at least one part, sorted by (image id, object number). A car
without parts is left out: nothing inside it could be scored. Parts overlap (plates and windows lie
inside sides), so kinds are painted in PAINT_ORDER, later on top; within a kind, file order. Only
pixels inside the car's own mask are labelled; car pixels outside every part are 'car' (-> body).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasources.base import DatasetFormatError, LabelMerge, PartDataset, Sample
from datasources.classes import PASCAL_CAR_PARTS
from datasources.files import (OnError, check_size, check_split, crop, mask_box, mat_field, mat_str, raise_error,
                            read_lines, read_mat, read_rgb)

PAINT_ORDER = (
    ("frontside", "leftside", "rightside", "backside", "roofside", "door", "leftmirror", "rightmirror"),
    ("wheel",), ("headlight",), ("fliplate", "bliplate"), ("window",),
)
_RANK = {kind: rank for rank, kinds in enumerate(PAINT_ORDER) for kind in kinds}
_NUMBERED = re.compile(r"^(door|wheel|headlight|window)_\d+$")
SPLIT_LISTS = {"train": "car_train.txt", "test": "car_val.txt"}


def part_kind(name: str) -> str | None:
    """A PASCAL-Part car part name ('door_2', 'fliplate') -> its kind, or None when unknown."""
    match = _NUMBERED.match(name)
    kind = match.group(1) if match else name
    return kind if kind in _RANK else None


def read_objects(path: Path) -> tuple[str, np.ndarray]:
    """An Annotations_Part .mat -> (imname, objects: struct elements with class, mask, parts)."""
    mat = read_mat(path, "PASCAL-Part annotation")
    if "anno" not in mat:
        raise DatasetFormatError(path, "a struct named 'anno'")
    anno = mat["anno"][0, 0]
    objects = np.asarray(mat_field(anno, "objects", path)).ravel()
    if objects.size and not {"class", "mask", "parts"} <= set(objects.dtype.names or ()):
        raise DatasetFormatError(path, "objects with fields class, mask and parts")
    return mat_str(mat_field(anno, "imname", path)), objects


def _parts(obj) -> np.ndarray:
    """An object's parts as a flat struct array; the (0, 0) placeholder of a part-less object -> empty."""
    parts = np.asarray(obj["parts"])
    return parts.ravel() if parts.dtype.names else parts[:0].ravel()


@dataclass(frozen=True)
class CarObject:
    """One car object: its annotation file and its position in the file's object list."""

    path: Path
    number: int


class PascalCars(PartDataset):
    """PASCAL-Part car crops; labels in PASCAL_CAR_PARTS, or in `merge.target` (PASCAL_CAR_TO_5)."""

    SPLITS = tuple(SPLIT_LISTS)

    def __init__(self, root: Path, split: str = "test", merge: LabelMerge | None = None,
                 on_error: OnError = raise_error):
        check_split(split, self.SPLITS)
        self.root = Path(root)
        self.merge = merge
        self.classes = PASCAL_CAR_PARTS if merge is None else merge.target
        listing = self.root / "ImageSets" / "Main" / SPLIT_LISTS[split]
        ids = sorted(row[0] for row in read_lines(listing, "VOC image list") if row[-1] in ("0", "1"))
        self.cars = []
        for voc_id in ids:
            path = self.root / "Annotations_Part" / f"{voc_id}.mat"
            try:
                _, objects = read_objects(path)
            except DatasetFormatError as e:
                on_error(e)
                continue
            self.cars += [CarObject(path, k) for k, obj in enumerate(objects)
                          if mat_str(obj["class"]) == "car" and _parts(obj).size]

    def __len__(self) -> int:
        return len(self.cars)

    def __getitem__(self, i: int) -> Sample:
        """The i-th car: image uint8 (h, w, 3) and labels int64 (h, w), cropped to the car's mask box."""
        ref = self.cars[i]
        imname, objects = read_objects(ref.path)
        obj = objects[ref.number]
        image = read_rgb(self.root / "JPEGImages" / f"{imname}.jpg")
        car = np.asarray(obj["mask"]) > 0
        check_size(ref.path, car.shape, image.shape[:2], f"object {ref.number} mask")
        labels = np.zeros(car.shape, np.int64)
        labels[car] = PASCAL_CAR_PARTS.index("car")
        for kind, mask in sorted(self._part_masks(ref, obj, car.shape), key=lambda part: _RANK[part[0]]):
            labels[mask & car] = PASCAL_CAR_PARTS.index(kind)
        if self.merge is not None:
            labels = self.merge(labels)
        box = mask_box(car)
        if box is None:
            raise DatasetFormatError(ref.path, f"object {ref.number} with a non-empty mask")
        return Sample(crop(image, box), crop(labels, box),
                      meta={"path": str(ref.path), "image": imname, "object": ref.number, "box": box})

    @staticmethod
    def _part_masks(ref: CarObject, obj, hw: tuple[int, ...]) -> list[tuple[str, np.ndarray]]:
        """(kind, bool (H, W) mask) per part in file order; an unknown name or a wrong size fails."""
        masks = []
        for part in _parts(obj):
            name = mat_str(part["part_name"])
            kind = part_kind(name)
            if kind is None:
                raise DatasetFormatError(ref.path, f"a known car part name (got {name!r} in object {ref.number})")
            mask = np.asarray(part["mask"]) > 0
            check_size(ref.path, mask.shape, hw, f"part {name!r} mask")
            masks.append((kind, mask))
        return masks
