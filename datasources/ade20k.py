"""ADE-Car-12 and ADE-Car-5: every ADE20K car instance cropped to its box, with part labels.

Reads either release as shipped; the index file at the root says which (index_ade20k.pkl: 2021,
index_ade20k.mat: 2016). Splits (inferred where the paper is silent): 'val' and 'test' come from the
ADE validation images, 'train' from the training images; instances are sorted by crop name
('<image stem>_<instance>') and the first VAL_COUNT are 'val', the rest 'test' (the paper: the first
50 sorted images validate). Every car is kept (the paper's selection of 300 is unpublished); the
crop is the box of the car's visible pixels (inferred) and other objects inside it are background.
"""
from __future__ import annotations

from pathlib import Path

from datasources.ade20k_2016 import ADE2016
from datasources.ade20k_2021 import ADE2021
from datasources.ade20k_parts import paint_car
from datasources.base import DatasetFormatError, LabelMerge, PartDataset, Sample
from datasources.classes import CAR_12
from datasources.files import OnError, check_split, crop, mask_box, raise_error, read_rgb, take_split

VAL_COUNT = 50
RELEASES = {"index_ade20k.pkl": ADE2021, "index_ade20k.mat": ADE2016}


def open_release(root: Path) -> ADE2016 | ADE2021:
    """The reader for the release whose index file lies in `root`."""
    for index, reader in RELEASES.items():
        if (root / index).is_file():
            return reader(root)
    raise DatasetFormatError(root / "index_ade20k.pkl", f"missing ADE20K index ({' or '.join(RELEASES)})")


class ADECars(PartDataset):
    """ADE20K car crops; labels in CAR_12, or in `merge.target` when a merge (e.g. CAR_12_TO_5) is given."""

    SPLITS = ("train", "val", "test")

    def __init__(self, root: Path, split: str = "test", merge: LabelMerge | None = None,
                 on_error: OnError = raise_error):
        check_split(split, self.SPLITS)
        self.reader = open_release(Path(root))
        self.merge = merge
        self.classes = CAR_12 if merge is None else merge.target
        subset = "training" if split == "train" else "validation"
        refs = sorted(self.reader.cars(subset, on_error), key=lambda ref: ref.name)
        self.refs = refs if split == "train" else take_split(refs, split, VAL_COUNT)

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i: int) -> Sample:
        """The i-th car: image uint8 (h, w, 3) and labels int64 (h, w), cropped to the car's box."""
        ref = self.refs[i]
        image = read_rgb(ref.image)
        annotation = self.reader.load(ref, image.shape[:2])
        box = mask_box(annotation.car)
        if box is None:
            raise DatasetFormatError(ref.image, f"visible pixels for car instance {ref.instance}")
        labels = paint_car(annotation)
        if self.merge is not None:
            labels = self.merge(labels)
        return Sample(crop(image, box), crop(labels, box),
                      meta={"path": str(ref.image), "instance": ref.instance, "box": box, "name": ref.name})
