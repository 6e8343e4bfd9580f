"""The one dataset interface shared by the toy world and every real-dataset adapter.

A dataset is a sequence of `Sample`s plus its `ClassSet` (index-aligned class names and palette)
and, for keypoint datasets, its keypoint names. Label maps are `int64 (H, W)` in `[0, K)` with
`IGNORE` (255) for unlabelled pixels; keypoints are `float32 (P, 3)` rows `(x, y, visible)` in
pixel coordinates (x right, y down, pixel centres at integer + 0.5).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IGNORE = 255


class InputError(ValueError):
    """Bad input from the user: a file or folder that is missing, damaged or not what was expected (the
    message names it), or a setting out of range. The `benchmark` command prints these as one `error:`
    line; any other exception is a bug and keeps its traceback."""


class CheckpointFormatError(InputError):
    """A checkpoint that is not in the expected format, or a network we cannot rebuild; names the file."""


class DatasetFormatError(InputError):
    """A file on disk is missing or not in the format the adapter expects; the message names it."""

    def __init__(self, path: str | Path, expected: str):
        super().__init__(f"{path}: {expected}")
        self.path = Path(path)
        self.expected = expected


@dataclass(frozen=True)
class ClassSet:
    """Index-aligned class names and RGB palette of one label set (index 0 is background)."""

    name: str
    names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]

    def __post_init__(self):
        if len(self.names) != len(self.palette):
            raise ValueError(f"{self.name}: {len(self.names)} names but {len(self.palette)} colours")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"{self.name}: duplicate class names")
        if len(self.names) >= IGNORE:
            raise ValueError(f"{self.name}: at most {IGNORE - 1} classes, index {IGNORE} is 'ignore'")

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of a class by name; an unknown name fails with the list of valid ones."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown class {name!r} in {self.name}; valid: {', '.join(self.names)}") from None

    def colorize(self, labels: np.ndarray) -> np.ndarray:
        """labels: int (H, W) in [0, K) or IGNORE -> uint8 (H, W, 3) colours (ignore is white)."""
        lut = np.full((256, 3), 255, np.uint8)
        lut[: len(self)] = np.asarray(self.palette, np.uint8)
        return lut[np.asarray(labels, np.int64).clip(0, 255)]


@dataclass(frozen=True)
class LabelMerge:
    """A many-to-one map from one class set onto another, declared as data (source name -> target name)."""

    source: ClassSet
    target: ClassSet
    mapping: dict[str, str]

    def __post_init__(self):
        missing = [n for n in self.source.names if n not in self.mapping]
        if missing:
            raise ValueError(f"{self.source.name} -> {self.target.name}: unmapped classes {missing}")
        for src, dst in self.mapping.items():
            self.source.index(src)
            self.target.index(dst)

    @property
    def lut(self) -> np.ndarray:
        """int64 (256,) lookup table: source index -> target index, IGNORE stays IGNORE."""
        lut = np.full(256, IGNORE, np.int64)
        for src, dst in self.mapping.items():
            lut[self.source.index(src)] = self.target.index(dst)
        return lut

    def __call__(self, labels: np.ndarray) -> np.ndarray:
        """labels: int (H, W) in the source set -> int64 (H, W) in the target set."""
        return self.lut[np.asarray(labels, np.int64)]


@dataclass
class Sample:
    """One item of a dataset.

    image: uint8 (H, W, 3) RGB.
    labels: int64 (H, W) in [0, K), IGNORE where unlabelled; None for image-only sources.
    keypoints: float32 (P, 3) rows (x, y, visible) in pixels; None when the dataset has none.
    meta: free-form per-item facts (file names, camera, bounding box, ...).
    """

    image: np.ndarray
    labels: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        h, w = self.image.shape[:2]
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 (H, W, 3), got {self.image.dtype} {self.image.shape}")
        if self.labels is not None and self.labels.shape != (h, w):
            raise ValueError(f"labels {self.labels.shape} do not match image {(h, w)}")
        if self.keypoints is not None and (self.keypoints.ndim != 2 or self.keypoints.shape[1] != 3):
            raise ValueError(f"keypoints must be (P, 3), got {self.keypoints.shape}")


def sample_name(sample: Sample, index: int) -> str:
    """A file stem for an exported sample: its seed (`seed000123`) when its meta has one, else its index."""
    return f"seed{sample.meta['seed']:06d}" if "seed" in sample.meta else f"{index:06d}"


class PartDataset(Sequence):
    """Base of every dataset: `len(ds)`, `ds[i] -> Sample`, `ds.classes`, `ds.keypoint_names`."""

    classes: ClassSet
    keypoint_names: tuple[str, ...] = ()
