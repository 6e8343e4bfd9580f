"""What both ADE20K releases share: car and part names, one car's annotation, and how it is painted.

ADE-Car-12 mapping (inferred, see dataset-formats.md): a part is named by the first comma-separated
term of its WordNet name; headlight, taillight, license plate, windshield, wheel, rim (-> wheelhub),
door, handle, window and mirror have classes, every other part keeps the class of what it lies on
(so car pixels outside a listed part are car_body). Paint order: the car, then level-1 parts, then
level-2 parts (deeper wins); parts are painted only inside the car's visible pixels.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasources.base import DatasetFormatError
from datasources.classes import CAR_12

CAR_NAME = "car, auto, automobile, machine, motorcar"

PART_TO_CAR_12 = {
    "headlight": "head light", "taillight": "tail light", "license plate": "licence plate",
    "windshield": "wind shield", "wheel": "wheel", "rim": "wheelhub", "door": "door", "handle": "handle",
    "window": "window", "mirror": "mirror",
}


@dataclass(frozen=True)
class CarRef:
    """One car instance of one ADE image: its photo and the release's number for the instance."""

    image: Path
    instance: int

    @property
    def name(self) -> str:
        """The crop's name, which orders the split: '<image stem>_<instance, 3 digits>'."""
        return f"{self.image.stem}_{self.instance:03d}"


def car_refs(images: list[Path], subset: str, instances: Callable[[Path], list[int]], on_error) -> list[CarRef]:
    """Car instances of the images under a <subset>/ folder ('training' or 'validation'); `instances`
    reads one image's car instance numbers (release-specific), and a file it cannot read goes to on_error."""
    refs = []
    for image in images:
        if subset not in image.parts:
            continue
        try:
            refs += [CarRef(image, k) for k in instances(image)]
        except DatasetFormatError as e:
            on_error(e)
    return refs


@dataclass
class CarAnnotation:
    """car: bool (H, W) visible car pixels; parts: (level >= 1, WordNet name, bool (H, W) mask) rows."""

    car: np.ndarray
    parts: list[tuple[int, str, np.ndarray]]


def release_folder(root: Path, folder: str) -> Path:
    """An index 'folder' entry ('ADE20K_2021_17_01/images/...') resolved under `root`.

    The entry starts with the release's own folder name; it is dropped so a renamed root still works.
    """
    return root.joinpath(*Path(folder).parts[1:])


def part_class(name: str) -> int | None:
    """A part's WordNet name -> its CAR_12 index, or None for parts that keep their parent's class."""
    target = PART_TO_CAR_12.get(name.split(",")[0].strip().lower())
    return None if target is None else CAR_12.index(target)


def paint_car(annotation: CarAnnotation) -> np.ndarray:
    """-> labels: int64 (H, W) in CAR_12: 0 off the car, car_body on it, then parts by level."""
    car = annotation.car
    labels = np.zeros(car.shape, np.int64)
    labels[car] = CAR_12.index("car_body")
    for _, name, mask in sorted(annotation.parts, key=lambda part: part[0]):
        index = part_class(name)
        if index is not None:
            labels[mask & car] = index
    return labels
