"""Every real dataset by its benchmark name: `DATASETS[name](root, split="test") -> PartDataset`.

Splits per dataset (`splits(name)`): ade-car-12 / ade-car-5 and celeba-mask-8: train, val, test;
pascal-car-5, cub-bird, stanford-cars and the release sets (car-20, face-34, bird-11, cat-16,
bedroom-19): train, test; kaggle-cats: train, test, all. Every factory also takes
`on_error` (see datasources.files). Roots for the paper profile are in configs/datasets/<name>.yaml.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from datasources.ade20k import ADECars
from datasources.base import PartDataset
from datasources.celebamask_hq import CelebAMaskHQ
from datasources.classes import CAR_12_TO_5, CELEBA_19_TO_8, PASCAL_CAR_TO_5
from datasources.cub import CUBBirds
from datasources.datasetgan_release import RELEASES, ReleaseDataset
from datasources.files import OnError, raise_error
from datasources.kaggle_cats import KaggleCats
from datasources.pascal_part import PascalCars
from datasources.stanford_cars import StanfordCars

DATASETS = {
    "ade-car-12": ADECars,
    "ade-car-5": partial(ADECars, merge=CAR_12_TO_5),
    "pascal-car-5": partial(PascalCars, merge=PASCAL_CAR_TO_5),
    "celeba-mask-8": partial(CelebAMaskHQ, merge=CELEBA_19_TO_8),
    "cub-bird": CUBBirds,
    **{name: partial(ReleaseDataset, release=release) for name, release in RELEASES.items()},
    "stanford-cars": StanfordCars,
    "kaggle-cats": KaggleCats,
}


def _factory(name: str):
    """DATASETS[name], or a ValueError listing the valid names."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    return DATASETS[name]


def splits(name: str) -> tuple[str, ...]:
    """The splits dataset `name` supports."""
    factory = _factory(name)
    return getattr(factory, "func", factory).SPLITS


def load(name: str, root: Path, split: str = "test", on_error: OnError = raise_error) -> PartDataset:
    """Open dataset `name` at `root`; an unknown name or split fails with the valid ones."""
    return _factory(name)(Path(root), split, on_error=on_error)
