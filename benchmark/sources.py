"""Where the runners' images come from: test sets by benchmark name, the toy world's splits
(rendered once under <out>/data and reused), and the maps between class sets.

Test set names: `toy-car-12` (the toy test split, exact ADE-Car-12 labels), `toy-car-5` (the same,
merged to the 5 PASCAL-style parts) and, for the keypoint task, `toy-car-keypoints` (the same images
with their 16 keypoints), or a real set of datasources.registry (its `test` split, its root
from the config's `roots: {name: PATH}` or configs/datasets/<name>.yaml). A real set whose dataset
declares `keypoint_names` (cub-bird's 15 CUB parts) is a keypoint test set too: the keypoint task
scores its keypoints, PCK normalised by its object masks' boxes (benchmark.keypoints), while the
segmentation task still scores its label maps. On a real test set the few-label variants take their
human labels, unlabelled pool and source network from the config's `real` entry (RealSources): by
default the labels are the test set's own `train` split, which for the DatasetGAN release sets is the
annotated GAN images (the paper's out-of-domain setting); they must carry the test set's classes (or
a declared merge to them) or, for the keypoint task, exactly its keypoint names (target_merge).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from benchmark.configs import CONFIG_ROOT, ConfigError, load
from datasources import classes as class_module
from datasources.base import ClassSet, DatasetFormatError, LabelMerge, PartDataset
from datasources.classes import CAR_12_TO_5
from datasources.toy import KEYPOINT_NAMES, SPLITS, ToyDataset, ToySettings, write_split

# Test set name -> the merge applied to the toy world's ADE-Car-12 labels (None: kept as they are).
TOY_TEST_SETS = {"toy-car-12": None, "toy-car-5": CAR_12_TO_5, "toy-car-keypoints": None}
KEYPOINT_TEST_SETS = ("toy-car-keypoints",)   # the toy ones scored on keypoints only (real ones: keypoint_names)
TASKS = ("segmentation", "keypoints")

MERGES = {(m.source.name, m.target.name): m for m in vars(class_module).values() if isinstance(m, LabelMerge)}


@dataclass(frozen=True)
class ToyData:
    """How much of the toy world a run uses: the human-label budget, the supervised pool, the test set."""

    resolution: int = 64
    labelled: int = 16    # human-labelled images every few-label variant gets (the paper's 16 cars)
    pool: int = 2_000     # the fully supervised upper line: the whole labelled split
    test: int = 250       # the ADE-Car-12 test set's size

    def __post_init__(self):
        if not (isinstance(self.resolution, int) and self.resolution >= 8):
            raise ConfigError(f"toy.resolution must be an integer of at least 8, got {self.resolution!r}")
        for name, split in (("labelled", "labelled"), ("pool", "labelled"), ("test", "test")):
            if not 0 < getattr(self, name) <= SPLITS[split][1]:
                raise ConfigError(f"toy.{name} must be in 1..{SPLITS[split][1]}, got {getattr(self, name)}")


def task_of(config: dict) -> str:
    """config['task']: segmentation (default) or keypoints."""
    task = config.get("task", "segmentation")
    if task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    return task


def labelled_indices(config: dict) -> list[int]:
    """Which images of the toy labelled split are the human labels: config['labelled'] (a list of indices,
    set by the ablations' data selection), else the first toy.labelled."""
    indices = config.get("labelled")
    if indices is None:
        return list(range(settings_from(ToyData, config, "toy").labelled))
    size = SPLITS["labelled"][1]
    if not indices or len(set(indices)) != len(indices) or not all(0 <= i < size for i in indices):
        raise ConfigError(f"labelled must be distinct indices in 0..{size - 1}, got {indices!r}")
    return list(indices)


class Subset(PartDataset):
    """The samples of a dataset at `indices`, in that order."""

    def __init__(self, dataset: PartDataset, indices: list[int]):
        self.dataset, self.indices = dataset, list(indices)
        self.classes = dataset.classes
        self.keypoint_names = dataset.keypoint_names

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.dataset[self.indices[i]]


def settings_from(cls, config: dict, key: str):
    """cls(**config[key]) (defaults where absent); an unknown field fails with the valid ones."""
    section = config.get(key) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"config entry '{key}' must be a mapping, got {section!r}")
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(section) - valid)
    if unknown:
        raise ConfigError(f"config entry '{key}': unknown fields {unknown}; valid: {', '.join(sorted(valid))}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in section.items()})


def class_merge(source: ClassSet, target: ClassSet, what: str) -> LabelMerge | None:
    """None when the sets are the same, the declared merge when one exists, or two declared merges in a row
    (car-20 -> ADE-Car-12 -> 5 parts), else a clear error."""
    if source.names == target.names:
        return None
    if (source.name, target.name) in MERGES:
        return MERGES[(source.name, target.name)]
    for (first_source, middle), first in MERGES.items():
        if first_source == source.name and (middle, target.name) in MERGES:
            second = MERGES[(middle, target.name)]
            return LabelMerge(source, target, {k: second.mapping[v] for k, v in first.mapping.items()})
    raise DatasetFormatError(what, f"labels in the test set's classes ({target.name}, {len(target)} classes) or a "
                                   f"declared merge to them; got {source.name} ({len(source)} classes)")


def describe_targets(targets) -> str:
    """A class set or a tuple of keypoint names, for messages."""
    if isinstance(targets, tuple):
        return f"{len(targets)} keypoints" + (f": {', '.join(targets)}" if targets else "")
    return f"{targets.name}, {len(targets)} classes"


def task_targets(data: PartDataset, task: str) -> ClassSet | tuple[str, ...]:
    """What a dataset's labels give the task: its keypoint names for the keypoint task, else its class set."""
    return data.keypoint_names if task == "keypoints" else data.classes


def target_merge(made, wanted, what: str) -> LabelMerge | None:
    """How labels in `made` become the test set's `wanted` targets (each a ClassSet, or a tuple of keypoint
    names for the keypoint task): keypoints must be the test set's, the same names in the same order (None:
    nothing to map); classes go through class_merge. `what` names the labels' source in the error."""
    if not (isinstance(made, tuple) or isinstance(wanted, tuple)):
        return class_merge(made, wanted, what)
    if made != wanted:
        raise ConfigError(f"{what}: its targets ({describe_targets(made)}) are not the test set's "
                          f"({describe_targets(wanted)})")
    return None


def short_hash(data) -> str:
    """8 hex digits identifying a JSON-able value (work folders keyed by their settings)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:8]


def toy_split(data_dir: Path, split: str, count: int, settings: ToySettings) -> ToyDataset:
    """A toy split at `settings` holding at least its first `count` samples, rendered once under data_dir
    (resumable; a folder rendered for a larger count is reused, so callers take the first `count`)."""
    root = Path(data_dir) / f"toy-{split}-{settings.resolution}px-{short_hash(asdict(settings))}"
    write_split(root, split, count, settings)
    return ToyDataset(root)


def keypoint_names(name: str) -> tuple[str, ...]:
    """The keypoints test set `name` is scored on: the toy keypoint set's 16, a registry dataset's declared
    `keypoint_names`, or () for a set without keypoints (or an unknown name)."""
    from datasources.registry import DATASETS

    if name in KEYPOINT_TEST_SETS:
        return KEYPOINT_NAMES
    factory = DATASETS.get(name)
    return tuple(getattr(getattr(factory, "func", factory), "keypoint_names", ()))


def check_test_set(name: str, task: str = "segmentation") -> LabelMerge | None:
    """The toy labels' merge for a toy test set (None for a real one); an unknown name lists the valid ones,
    and so does a test set of the other task (the keypoint task takes toy-car-keypoints and the real sets
    with keypoints; segmentation every set but toy-car-keypoints)."""
    from datasources.registry import DATASETS

    if name not in TOY_TEST_SETS and name not in DATASETS:
        raise ConfigError(f"unknown test set {name!r}; valid: {', '.join([*TOY_TEST_SETS, *DATASETS])}")
    if task == "keypoints" and not keypoint_names(name):
        valid = [n for n in [*KEYPOINT_TEST_SETS, *DATASETS] if keypoint_names(n)]
        raise ConfigError(f"test set {name!r} is not a keypoint test set; valid: {', '.join(valid)} (the sets "
                          f"with keypoints)")
    if task == "segmentation" and name in KEYPOINT_TEST_SETS:
        raise ConfigError(f"test set {name!r} is scored on keypoints; set task: keypoints (suite keypoints)")
    return TOY_TEST_SETS.get(name)


@dataclass(frozen=True)
class RealSources:
    """Where the few-label variants get their data on a real test set (the toy world makes its own).

    labelled: test set -> the registry dataset whose `train` split holds the human labels (default: the
    test set's own; e.g. car-20's annotated GAN images for ade-car-12, merged to its classes; for the
    keypoint task one with the test set's keypoint names, e.g. cub-bird's own train split);
    labelled_count: the first N of them (None: all). unlabelled: test set -> a folder of images, the
    semi-supervised pool (the first `semi.unlabelled` images under it, by path). transfer_weights: a DeepLabV3 state dict
    trained on segmentation of another domain (the paper: MS-COCO; torchvision's file fits), whose
    last layer transfer replaces (by one output per class, or one heatmap per keypoint)."""

    labelled: dict = field(default_factory=dict)
    labelled_count: int | None = None
    unlabelled: dict = field(default_factory=dict)
    transfer_weights: str | None = None

    def __post_init__(self):
        for name in ("labelled", "unlabelled"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"real.{name} must map test set names to {name} sources, got {getattr(self, name)!r}")
        if self.labelled_count is not None and self.labelled_count < 1:
            raise ConfigError(f"real.labelled_count must be at least 1, got {self.labelled_count}")

    def labelled_set(self, test_set: str) -> str:
        """The registry name of the dataset whose train split labels `test_set`'s few-label variants."""
        return self.labelled.get(test_set, test_set)

    def unlabelled_folder(self, test_set: str) -> Path:
        """The semi-supervised pool's folder for `test_set`; unset or missing is a clear error."""
        folder = self.unlabelled.get(test_set)
        if not folder or not Path(folder).is_dir():
            raise ConfigError(f"test set {test_set}: the semi variant needs an unlabelled pool; set "
                              f"`real: {{unlabelled: {{{test_set}: FOLDER}}}}` to a folder of images (got {folder})")
        return Path(folder)

    def weights(self) -> Path:
        """The transfer variant's source network file; unset or missing is a clear error."""
        if not self.transfer_weights or not Path(self.transfer_weights).is_file():
            raise ConfigError(f"the transfer variant on a real test set needs real.transfer_weights: a DeepLabV3 "
                              f"state dict trained on another domain (got {self.transfer_weights})")
        return Path(self.transfer_weights)


def real_dataset(name: str, config: dict, split: str = "test") -> PartDataset:
    """A split of a real dataset at its configured root; a missing root or split is a clear error."""
    from datasources.registry import load as load_dataset
    from datasources.registry import splits

    roots = config.get("roots") or {}
    if name in roots:
        root, where = roots[name], f"roots.{name} in the config"
    else:
        where = f"configs/datasets/{name}.yaml"
        root = load(CONFIG_ROOT / "datasets" / f"{name}.yaml").get("root")
    if not root or not Path(root).is_dir():
        raise ConfigError(f"{name}: dataset root {root} ({where}) is not a folder; "
                          f"set `roots: {{{name}: PATH}}` in a --config file")
    if split not in splits(name):
        raise ConfigError(f"{name} has no {split!r} split (has {', '.join(splits(name))})")
    return load_dataset(name, Path(root), split)
