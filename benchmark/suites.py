"""Run a suite from its resolved config: check every input first, then for each test set and
variant train, cross-validate and write one run record under <out>/runs (tables are made from those).

Config entries read here (defaults in the dataclasses they fill, one place each):
    variants: [transfer, semi, datasetgan, supervised]   keys of benchmark.variants.VARIANTS
    test_sets: [toy-car-12, ...]                         toy ones or datasets.registry names (benchmark.sources)
    roots: {dataset name: PATH}                          real roots (else configs/datasets/<name>.yaml)
    folds: 5            miou: official | mmseg          device: auto | cpu | cuda
    toy: ToyData        segmentation: SegmentationSettings
    transfer: TransferSettings   semi: S4GANSettings   datasetgan: DatasetGANSettings
    paper_columns: {test set: the paper's column it stands in for}   (used by benchmark.tables)
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch

from benchmark.configs import ConfigError
from benchmark.metrics import mean_iou
from benchmark.protocol import cross_validate, fold_confusions, folds
from benchmark.records import write_record
from benchmark.segmentation import LabelledImages, SegmentationSettings, load_images
from benchmark.semi import S4GANSettings
from benchmark.sources import (REAL_VARIANTS, TOY_TEST_SETS, ToyData, check_test_set, real_dataset, settings_from,
                               toy_split)
from benchmark.variants import VARIANTS, Context, DatasetGANSettings, TransferSettings, check_datasetgan, work_key
from datasets.base import LabelMerge
from datasets.classes import CAR_12
from datasets.datasetgan_release import RELEASES
from datasets.toy import SPLITS, ToySettings

CONVENTIONS = ("official", "mmseg")
SECTIONS = {"toy": ToyData, "segmentation": SegmentationSettings, "transfer": TransferSettings,
            "semi": S4GANSettings, "datasetgan": DatasetGANSettings}


def device_of(config: dict) -> str:
    """config['device']: auto (CUDA when present), cpu or cuda."""
    device = config.get("device", "auto")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {device!r}")
    return device


def check(config: dict) -> None:
    """Every problem a run could hit before training, as one clear error: unknown variants or test
    sets, bad settings, too few test images for the folds, missing files, class sets that do not meet."""
    unknown = [v for v in config.get("variants", []) if v not in VARIANTS]
    if unknown or not config.get("variants"):
        raise ConfigError(f"variants {unknown or '(none)'} unknown; valid: {', '.join(VARIANTS)}")
    if config.get("metric", "miou") != "miou":
        raise ConfigError(f"suite {config.get('suite')!r}: metric {config['metric']!r} runners (keypoints) are not "
                          f"implemented yet; only miou suites run")
    if config.get("miou", "official") not in CONVENTIONS:
        raise ConfigError(f"miou must be one of {', '.join(CONVENTIONS)}, got {config['miou']!r}")
    device_of(config)
    sections = {key: settings_from(cls, config, key) for key, cls in SECTIONS.items()}
    pretrained = sections["segmentation"].pretrained
    if pretrained and not Path(pretrained).is_file():
        raise ConfigError(f"segmentation.pretrained: no such file {pretrained}")
    if not config.get("test_sets"):
        raise ConfigError("test_sets: at least one test set is needed")
    for name in config["test_sets"]:
        merge = check_test_set(name)
        if name in TOY_TEST_SETS:
            count, classes = sections["toy"].test, merge.target if merge else CAR_12
        else:
            waiting = [v for v in config["variants"] if v not in REAL_VARIANTS]
            if waiting:
                raise ConfigError(f"test set {name}: variants {waiting} are not implemented yet for real test sets "
                                  f"(runnable: {', '.join(REAL_VARIANTS)})")
            if "supervised" in config["variants"] and name in RELEASES:
                raise ConfigError(f"test set {name}: no fully supervised baseline (its train split holds only "
                                  f"the annotated GAN images; the paper has none either)")
            if sections["segmentation"].resolution is None:
                raise ConfigError(f"test set {name}: real images come in many sizes; set segmentation.resolution")
            dataset = real_dataset(name, config)
            count, classes = len(dataset), dataset.classes
            if "supervised" in config["variants"]:
                real_dataset(name, config, "train")
        try:
            folds(count, config.get("folds", 5))
        except ValueError as e:
            raise ConfigError(f"test set {name}: {e}") from None
        if "datasetgan" in config["variants"]:
            check_datasetgan(config, classes)


def test_images(name: str, config: dict, data_dir: Path) -> tuple[LabelledImages, LabelMerge | None]:
    """A test set in memory, in sorted order, and the merge from toy labels to its classes (None for real sets)."""
    toy = settings_from(ToyData, config, "toy")
    resolution = settings_from(SegmentationSettings, config, "segmentation").resolution
    merge = check_test_set(name)
    if name in TOY_TEST_SETS:
        dataset = toy_split(data_dir, "test", toy.test, ToySettings(resolution=toy.resolution))
        return load_images(dataset, toy.test, merge, resolution, f"test set {name}"), merge
    return load_images(real_dataset(name, config), None, None, resolution, f"test set {name}"), None


def run_suite(config: dict, out: Path) -> list[Path]:
    """Train and evaluate every variant on every test set; returns the record folders written."""
    check(config)
    out = Path(out)
    device = device_of(config)
    segmentation = settings_from(SegmentationSettings, config, "segmentation")
    convention = config.get("miou", "official")
    written = []
    for test_set in config["test_sets"]:
        test, merge = test_images(test_set, config, out / "data")
        fold_indices = folds(len(test), config.get("folds", 5))
        for variant in config["variants"]:
            started = time.time()
            ctx = Context(config, test_set, test, merge, out / "data",
                          out / "work" / config["suite"] / test_set / work_key(config, variant), device)
            per_image, facts = VARIANTS[variant](ctx)
            per_fold = fold_confusions(per_image, fold_indices)
            result = cross_validate(per_fold, convention)
            other = cross_validate(per_fold, "mmseg" if convention == "official" else "official")
            record = {
                "suite": config["suite"], "profile": config["profile"], "variant": variant, "test_set": test_set,
                "metric": "miou", "classes": list(test.classes.names), "config": config,
                "seeds": {"segmentation": segmentation.seed, "toy_splits_first_seed_and_size": SPLITS},
                "folds": [[int(f[0]), int(f[-1])] for f in fold_indices],
                "cross_validation": asdict(result), "cross_validation_other_convention": asdict(other),
                "miou_per_epoch_all_images": [mean_iou(m, convention) for m in per_fold.sum(1)],
                "confusion_per_epoch_and_fold": per_fold.tolist(), "facts": facts, "device": device,
            }
            written.append(write_record(out / "runs", f"{config['suite']}-{test_set}-{variant}", record, started))
    return written
