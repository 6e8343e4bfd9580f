"""ADE20K 2021 release (ADE20K_2021_17_01): index_ade20k.pkl, per-image JSON, per-instance mask PNGs.

Cars are JSON objects named CAR_NAME at part level 0; their parts are the objects whose `ispartof`
chain leads to the car (depth 1 and 2). Masks are the instance PNGs named by each object's
`instance_mask` (relative to the image's folder); only visible pixels (value 255) count, the
amodal occluded extent (128) does not.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from datasources.ade20k_parts import CAR_NAME, CarAnnotation, CarRef, car_refs, release_folder
from datasources.base import DatasetFormatError
from datasources.files import OnError, check_size, read_gray, read_pickle, read_text

INDEX = "index_ade20k.pkl"
_OBJECT_KEYS = ("id", "name", "parts", "instance_mask")
_PARTS_KEYS = ("part_level", "ispartof")


def _parent(value) -> int | None:
    """A JSON `ispartof` (an int, [] or a one-element list) -> the parent id, or None."""
    if isinstance(value, list):
        return int(value[0]) if value else None
    return int(value)


def read_objects(path: Path) -> list[dict]:
    """An image's JSON -> its `annotation.object` list, each object checked for the keys used here."""
    text = read_text(path, "per-image annotation JSON")
    try:
        objects = json.loads(text)["annotation"]["object"]
    except (ValueError, KeyError, TypeError) as e:
        raise DatasetFormatError(path, f"JSON with annotation.object ({type(e).__name__}: {e})") from None
    for obj in objects:
        missing = [k for k in _OBJECT_KEYS if k not in obj]
        missing += [f"parts.{k}" for k in _PARTS_KEYS if k not in obj.get("parts", {})]
        if missing:
            raise DatasetFormatError(path, f"object {obj.get('id', '?')} with keys {', '.join(missing)}")
        try:
            int(obj["id"])
            _parent(obj["parts"]["ispartof"])
        except (TypeError, ValueError, IndexError):
            expected = "an integer id and ispartof (int, [] or [int])"
            raise DatasetFormatError(path, f"object {obj['id']!r} with {expected}") from None
    return objects


class ADE2021:
    """Reader of the 2021 release rooted at ADE20K_2021_17_01/."""

    def __init__(self, root: Path):
        path = root / INDEX
        index = read_pickle(path, "ADE20K index")
        if not isinstance(index, dict) or not {"filename", "folder"} <= index.keys():
            raise DatasetFormatError(path, "a dict with 'filename' and 'folder' lists")
        if len(index["filename"]) != len(index["folder"]):
            raise DatasetFormatError(path, "'filename' and 'folder' of equal length")
        self.images = [release_folder(root, str(d)) / str(f) for f, d in zip(index["filename"], index["folder"])]

    def cars(self, subset: str, on_error: OnError) -> list[CarRef]:
        """Car instances of the images under images/ADE/<subset>/ ('training' or 'validation')."""
        return car_refs(self.images, subset, lambda image: [
            int(o["id"]) for o in read_objects(image.with_suffix(".json"))
            if o["name"] == CAR_NAME and _parent(o["parts"]["ispartof"]) is None], on_error)

    def load(self, ref: CarRef, hw: tuple[int, int]) -> CarAnnotation:
        """The car's visible mask and its parts down to depth 2, each mask (H, W) = `hw`."""
        objects = read_objects(ref.image.with_suffix(".json"))
        children: dict[int, list[dict]] = {}
        for obj in objects:
            parent = _parent(obj["parts"]["ispartof"])
            if parent is not None:
                children.setdefault(parent, []).append(obj)
        car = next((o for o in objects if int(o["id"]) == ref.instance), None)
        if car is None:
            raise DatasetFormatError(ref.image.with_suffix(".json"), f"an object with id {ref.instance}")
        parts, frontier = [], [car]
        for level in (1, 2):
            frontier = [child for obj in frontier for child in children.get(int(obj["id"]), [])]
            parts += [(level, obj["name"], self._visible(ref.image, obj, hw)) for obj in frontier]
        return CarAnnotation(self._visible(ref.image, car, hw), parts)

    @staticmethod
    def _visible(image: Path, obj: dict, hw: tuple[int, int]) -> np.ndarray:
        """bool (H, W): the visible (255) pixels of an object's instance mask."""
        path = image.parent / obj["instance_mask"]
        mask = read_gray(path, "instance mask")
        check_size(path, mask.shape, hw, "instance mask")
        return mask == 255
