"""Annotations in: label maps drawn by people on GAN images, each tied to the latent that redraws
its image. Sources: the DatasetGAN release (z codes), LabelMe JSON polygons, mask PNGs, and real
images brought into the GAN by inversion (datasetgan.inversion).

Label maps are int64 (H, W) in [0, K) of a declared ClassSet; any file that breaks that (unknown
class name or colour, wrong size, a missing latent) fails with a DatasetFormatError naming it.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from datasetgan.backbone import Backbone
from datasources.base import ClassSet, DatasetFormatError
from datasources.files import read_text, require_file


@dataclass(frozen=True)
class Annotation:
    """One annotated GAN sample.

    labels: int64 (H, W) in [0, K); in keypoint mode float32 (K, 3) keypoints (x, y, visible) in label pixels.
    ws: float (num_ws, w_dim) w+ latent (from inversion or an earlier mapping), or None;
    z: float (z_dim,) latent to be mapped (with the backbone's truncation), when ws is None.
    noise_seeds: the seed whose fixed noise redraws the image; None = the generator's constant noise.
    source: where the labels came from (a file name), for error messages and records.
    """

    labels: np.ndarray
    source: str
    ws: Tensor | None = None
    z: np.ndarray | None = None
    noise_seed: int | None = None

    def __post_init__(self):
        if (self.ws is None) == (self.z is None):
            raise DatasetFormatError(self.source, "exactly one latent (ws or z) for the annotation")


def features_of(backbone: Backbone, annotations: list[Annotation]) -> Iterator[list[Tensor]]:
    """Per annotation (lazily, one image at a time), the backbone's features float (C_l, R_l, R_l)."""
    for a in annotations:
        ws = a.ws[None] if a.ws is not None else backbone.ws(torch.from_numpy(a.z).float()[None])
        seeds = None if a.noise_seed is None else [a.noise_seed]
        yield [f[0] for f in backbone.synthesize(ws.to(backbone.device), seeds=seeds).features]


def read_labelme(path: Path, classes: ClassSet) -> np.ndarray:
    """A LabelMe JSON file -> labels int64 (imageHeight, imageWidth): polygons and rectangles filled
    in file order (later shapes on top), everything else background."""
    try:
        data = json.loads(read_text(path, "LabelMe JSON"))
        height, width, shapes = int(data["imageHeight"]), int(data["imageWidth"]), data["shapes"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise DatasetFormatError(path, f"LabelMe JSON with imageHeight, imageWidth and shapes ({e})") from None
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for shape in shapes:
        label = shape.get("label")
        if label not in classes.names:
            raise DatasetFormatError(path, f"a class of {classes.name} for shape label {label!r}; "
                                           f"valid: {', '.join(classes.names)}")
        points = [tuple(map(float, p)) for p in shape.get("points", [])]
        kind = shape.get("shape_type", "polygon")
        if kind == "polygon" and len(points) >= 3:
            draw.polygon(points, fill=classes.index(label))
        elif kind == "rectangle" and len(points) == 2:
            draw.rectangle([tuple(np.min(points, 0)), tuple(np.max(points, 0))], fill=classes.index(label))
        else:
            raise DatasetFormatError(path, f"a polygon (>= 3 points) or rectangle (2 points), got {kind} "
                                           f"with {len(points)} points for {label!r}")
    return np.asarray(canvas, np.int64)


def read_mask_png(path: Path, classes: ClassSet) -> np.ndarray:
    """A mask PNG -> labels int64 (H, W): one-channel (or palette) files hold class indices; RGB
    files hold the class set's palette colours."""
    require_file(path, "mask PNG")
    try:
        with Image.open(path) as im:
            im.load()
            mode, array = im.mode, np.asarray(im)
    except (OSError, SyntaxError, ValueError) as e:
        raise DatasetFormatError(path, f"a readable mask PNG ({e})") from None
    if mode in ("L", "P", "I", "I;16"):
        labels = array.astype(np.int64)
    elif mode in ("RGB", "RGBA"):
        codes = (array[..., :3].astype(np.int64) * [65536, 256, 1]).sum(-1)
        lut = {r * 65536 + g * 256 + b: i for i, (r, g, b) in enumerate(classes.palette)}
        unknown = sorted(set(np.unique(codes).tolist()) - set(lut))
        if unknown:
            colours = [((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in unknown[:5]]
            raise DatasetFormatError(path, f"only the {classes.name} palette colours, found {colours}")
        labels = np.vectorize(lut.get, otypes=[np.int64])(codes)
    else:
        raise DatasetFormatError(path, f"a one-channel, palette or RGB mask, got mode {mode}")
    if labels.max(initial=0) >= len(classes):
        raise DatasetFormatError(path, f"class indices below {len(classes)} ({classes.name}), found {labels.max()}")
    return labels


def check_labels(labels: np.ndarray, size: tuple[int, int], classes: ClassSet, source: str) -> np.ndarray:
    """labels must be (H, W) == size with values in [0, K); returns them as int64."""
    if labels.shape != tuple(size):
        raise DatasetFormatError(source, f"a {size[1]}x{size[0]} label map (W x H), got {labels.shape[1::-1]}")
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= len(classes):
        raise DatasetFormatError(source, f"class indices in [0, {len(classes)}) of {classes.name}")
    return labels.astype(np.int64)
