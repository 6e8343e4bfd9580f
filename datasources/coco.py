"""COCO segmentation files, written (one RLE mask per class present in an image) and read back (polygons or RLE,
as CVAT's "COCO 1.0" export and ours hold), with pycocotools."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from datasources.base import ClassSet, DatasetFormatError
from datasources.files import read_json


def to_coco(images: dict[int, tuple[str, np.ndarray]], classes: ClassSet) -> dict:
    """images: id -> (file name, labels int (H, W) in `classes`) -> COCO: images, categories (background excluded,
    ids = class indices) and one RLE mask per class present in each image (counts as str)."""
    from pycocotools import mask as mask_utils

    entries, annotations = [], []
    for image_id, (file_name, labels) in images.items():
        entries.append({"id": image_id, "file_name": file_name, "height": labels.shape[0], "width": labels.shape[1]})
        for c in np.unique(labels):
            if c == 0:
                continue
            rle = mask_utils.encode(np.asfortranarray((labels == c).astype(np.uint8)))
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(c),
                                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
                                "area": float(mask_utils.area(rle)), "bbox": mask_utils.toBbox(rle).tolist(),
                                "iscrowd": 0})
    categories = [{"id": i, "name": name} for i, name in enumerate(classes.names) if i > 0]
    return {"images": entries, "annotations": annotations, "categories": categories}


def read_coco(path: Path, classes: ClassSet) -> dict[str, np.ndarray]:
    """A COCO file -> {image file name (without folders): labels int64 (H, W) in `classes`}: each annotation
    (polygon or RLE) painted in file order with the class of its category's name, background elsewhere. A
    category name outside `classes` fails naming the file."""
    from pycocotools.coco import COCO

    data = read_json(path, "COCO annotation file", ("images", "annotations", "categories"))
    unknown = sorted({c.get("name") for c in data["categories"]} - set(classes.names))
    if unknown:
        raise DatasetFormatError(path, f"category names among {classes.name}'s classes, got {unknown}")
    with contextlib.redirect_stdout(io.StringIO()):   # pycocotools prints as it indexes
        coco = COCO()
        coco.dataset = data
        coco.createIndex()
    index = {c["id"]: classes.names.index(c["name"]) for c in data["categories"]}
    out = {}
    for image in data["images"]:
        labels = np.zeros((image["height"], image["width"]), np.int64)
        for annotation in coco.imgToAnns[image["id"]]:
            try:
                labels[coco.annToMask(annotation).astype(bool)] = index[annotation["category_id"]]
            except (KeyError, TypeError, ValueError, IndexError) as e:
                raise DatasetFormatError(path, f"a readable segmentation in annotation {annotation.get('id')} "
                                               f"({type(e).__name__}: {e})") from None
        out[Path(image["file_name"]).name] = labels
    return out
