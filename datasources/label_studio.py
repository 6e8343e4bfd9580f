"""Label Studio's JSON export of brush annotations, decoded with Label Studio's own converter library.

The export is a list of tasks: `data` names the image (an upload path; Label Studio prefixes uploaded file
names with 8 hex digits and a dash, which are dropped), `annotations[-1].result` holds one `brushlabels`
entry per stroke layer: `value.rle` (Label Studio's RLE of an RGBA image), `value.brushlabels` (the class
name), `original_width` and `original_height`.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from datasources.base import ClassSet, DatasetFormatError
from datasources.files import optional_library, read_json

UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def read_label_studio(path: Path, classes: ClassSet) -> dict[str, np.ndarray]:
    """A Label Studio JSON export -> {image file name: labels int64 (H, W) in `classes`}: each brush layer of
    a task's latest annotation painted in file order with its class, background elsewhere. A label outside
    `classes`, or an RLE whose length is not its stated image size, fails naming the file and the image."""
    brush = optional_library("label_studio_converter.brush", "a Label Studio annotation file")
    tasks = read_json(path, "Label Studio export")
    if not isinstance(tasks, list):
        raise DatasetFormatError(path, "a Label Studio JSON export (a list of tasks)")
    out = {}
    for task in tasks:
        refs = [v for v in (task.get("data") or {}).values() if isinstance(v, str)]
        annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not refs or not annotations:
            raise DatasetFormatError(path, f"an image and an annotation in task {task.get('id')}")
        name = UPLOAD_PREFIX.sub("", Path(refs[0]).name)
        labels = None
        for result in annotations[-1].get("result") or []:
            if result.get("type") != "brushlabels":
                continue
            value, h, w = result["value"], result["original_height"], result["original_width"]
            label = (value.get("brushlabels") or ["?"])[0]
            if label not in classes.names:
                raise DatasetFormatError(path, f"brush labels among {classes.name}'s classes, got {label!r} ({name})")
            rgba = brush.decode_rle(value["rle"])
            if rgba.size != h * w * 4:
                raise DatasetFormatError(path, f"an RLE of {h}x{w}x4 values for {name}, as its original size says; "
                                               f"it decodes to {rgba.size}")
            if labels is None:
                labels = np.zeros((h, w), np.int64)
            elif labels.shape != (h, w):
                raise DatasetFormatError(path, f"one image size per task ({name}: {labels.shape} and {(h, w)})")
            labels[rgba.reshape(h, w, 4)[:, :, 3] > 0] = classes.names.index(label)
        if labels is None:
            raise DatasetFormatError(path, f"at least one brush label for {name}")
        out[name] = labels
    return out
