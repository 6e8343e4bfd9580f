"""Run a suite from its resolved config: check every input first, then train and cross-validate each
run and write one record per run under <out>/runs (tables are made from those).

A suite is a list of runs: a variant trained on a test set under a config, filling one cell (table,
row, column) of a paper table. `parts` (Table 1) and `keypoints` (Table 2) run every variant on every
test set; `ablations` builds its own list (benchmark.ablations). The keypoint task's test sets are
toy-car-keypoints and the real sets with keypoints (cub-bird: its test split's 15 keypoints, resized
with the images, PCK normalised by each bird mask's box, so the set must have label maps); their
few-label and fully supervised variants train on real train splits with the same keypoint names.

Config entries read here (defaults in the dataclasses they fill, one place each):
    task: segmentation | keypoints                       what the networks predict and how they are scored
    variants: [transfer, semi, datasetgan, supervised]   keys of benchmark.variants.VARIANTS
    test_sets: [toy-car-12, ...]                         toy ones or datasources.registry names (benchmark.sources;
                                                         the keypoint task: toy-car-keypoints, cub-bird, ...)
    roots: {dataset name: PATH}                          real roots (else configs/datasets/<name>.yaml)
    folds: 5            miou: official | mmseg          device: auto | cpu | cuda
    seeds: 1            training seeds per cell (segmentation.seed 0..seeds-1; `benchmark run --seeds N`)
    toy: ToyData        segmentation: SegmentationSettings   keypoints: KeypointSettings
    transfer: TransferSettings   semi: S4GANSettings   datasetgan: DatasetGANSettings
    real: RealSources (the few-label variants' labels, unlabelled pool and source network on real test sets)
    labelled: [indices into the toy labelled split]      the human labels (default: the first toy.labelled)
    table: the paper table the suite fills    paper_tables: where its published figures are looked up
    paper_columns: {test set: the paper's column it stands in for}
    per_test_set: {test set: {section: {key: value}}}     settings for one test set only, merged into those
                                                         sections (e.g. the official 256 px for cat-16)
    ablations: benchmark.ablations.AblationSettings (suite ablations)
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from benchmark.configs import ConfigError
from benchmark.metrics import mean_iou
from benchmark.oracle import oracle_miou, output_grid
from benchmark.protocol import (cross_validate, cross_validate_keypoints, fold_sums, folds, keypoint_counts,
                                selection_threshold)
from benchmark.qualitative import save_shown
from benchmark.records import write_record
from benchmark.keypoints import KeypointSettings, load_keypoint_images
from benchmark.segmentation import RANDOM_INIT, SegmentationSettings, build_network, load_images
from benchmark.semi import S4GANSettings
from benchmark.sources import (TOY_TEST_SETS, RealSources, ToyData, check_test_set, labelled_indices, real_dataset,
                               settings_from, task_of, task_targets, toy_split)
from benchmark.variants import (KEYPOINT_VARIANTS, VARIANTS, Context, DatasetGANSettings, TransferSettings,
                                check_datasetgan, check_real_sources, work_key)
from datasetgan.distributed import rank_and_world
from datasources.base import ClassSet
from datasources.classes import CAR_12
from datasources.files import atomic_write, read_json
from datasources.datasetgan_release import RELEASES
from datasources.toy import KEYPOINT_NAMES, SPLITS, ToySettings

CONVENTIONS = ("official", "mmseg")
SECTIONS = {"toy": ToyData, "segmentation": SegmentationSettings, "keypoints": KeypointSettings,
            "transfer": TransferSettings, "semi": S4GANSettings, "datasetgan": DatasetGANSettings,
            "real": RealSources}


@dataclass(frozen=True)
class Run:
    """One run of a suite: `variant` trained on `test_set` under `config` (the suite's, with this run's
    changes), filling cell (table, row, column) of a paper table; `round` tells repeated draws apart (the
    random selection of Table 6), whose figures a table averages. paper: where the paper's figure for the
    cell is looked up ({"tables": [...], "row": ..., "column": ...}), or None."""

    variant: str
    test_set: str
    config: dict
    table: str
    row: str
    column: str
    paper: dict | None = None
    round: int = 0
    facts: dict = field(default_factory=dict)   # extra facts for the record (e.g. how `labelled` was chosen)


def device_of(config: dict) -> str:
    """config['device']: auto (CUDA when present), cpu or cuda."""
    device = config.get("device", "auto")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {device!r}")
    return device


def seeds_of(config: dict) -> int:
    """config['seeds']: how many training seeds every cell is trained with (at least 1)."""
    seeds = config.get("seeds", 1)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ConfigError(f"seeds must be a whole number of at least 1, got {seeds!r}")
    return seeds


def paper_columns(config: dict) -> dict:
    return config.get("paper_columns") or {}


def for_test_set(config: dict, name: str) -> dict:
    """The config a test set's runs use: per_test_set[name]'s sections merged key by key into the config's."""
    extra = (config.get("per_test_set") or {}).get(name) or {}
    if not isinstance(extra, dict) or not all(isinstance(v, dict) for v in extra.values()):
        raise ConfigError(f"per_test_set.{name} must map sections to mappings, "
                          f"e.g. {{segmentation: {{resolution: 256}}}}")
    return {**config, **{section: {**(config.get(section) or {}), **values} for section, values in extra.items()}}


def table_runs(config: dict) -> list[Run]:
    """Every variant on every test set: the rows and columns of the suite's paper table."""
    tables = [str(t) for t in config.get("paper_tables", [config.get("table", "")])]
    return [Run(v, t, for_test_set(config, t), str(config.get("table", "")), v, t,
                {"tables": tables, "row": v, "column": paper_columns(config).get(t, t)})
            for t in config.get("test_sets", []) for v in config.get("variants", [])]


def check_run(config: dict) -> None:
    """Every problem a run could hit before training, as one clear error: unknown variants or test
    sets, bad settings, too few test images for the folds, missing files, class sets that do not meet."""
    task = task_of(config)
    unknown = [v for v in config.get("variants", []) if v not in VARIANTS]
    if unknown or not config.get("variants"):
        raise ConfigError(f"variants {unknown or '(none)'} unknown; valid: {', '.join(VARIANTS)}")
    if task == "keypoints" and set(config["variants"]) - set(KEYPOINT_VARIANTS):
        raise ConfigError(f"keypoint variants are {', '.join(KEYPOINT_VARIANTS)} (the paper's Table 2); "
                          f"got {config['variants']}")
    if config.get("miou", "official") not in CONVENTIONS:
        raise ConfigError(f"miou must be one of {', '.join(CONVENTIONS)}, got {config['miou']!r}")
    device_of(config)
    seeds_of(config)
    sections = {key: settings_from(cls, config, key) for key, cls in SECTIONS.items()}
    labelled_indices(config)
    pretrained = sections["segmentation"].pretrained
    if pretrained and pretrained != RANDOM_INIT:
        build_network(sections["segmentation"], 2)   # reads the weights now: a damaged file fails before any work
    if not config.get("test_sets"):
        raise ConfigError("test_sets: at least one test set is needed")
    for name in config["test_sets"]:
        merge = check_test_set(name, task)
        own = for_test_set(config, name)
        if name in TOY_TEST_SETS:
            count = sections["toy"].test
            targets = KEYPOINT_NAMES if task == "keypoints" else (merge.target if merge else CAR_12)
        else:
            count, targets = check_real_test_set(own, name, settings_from(SegmentationSettings, own, "segmentation"))
        try:
            folds(count, config.get("folds", 5))
        except ValueError as e:
            raise ConfigError(f"test set {name}: {e}") from None
        if "datasetgan" in config["variants"]:
            check_datasetgan(own, name, targets)


def check_real_test_set(config: dict, name: str,
                        segmentation: SegmentationSettings) -> tuple[int, ClassSet | tuple[str, ...]]:
    """A real test set's problems before training (a release set has no supervised baseline, images of many
    sizes need segmentation.resolution, a keypoint set needs label maps for its PCK normaliser, the variants'
    sources must open and meet it); returns its image count and what it is scored on (its class set, or for
    the keypoint task its keypoint names)."""
    variants, task = config["variants"], task_of(config)
    if "supervised" in variants and name in RELEASES:
        raise ConfigError(f"test set {name}: no fully supervised baseline (its train split holds only "
                          f"the annotated GAN images; the paper has none either)")
    if segmentation.resolution is None:
        raise ConfigError(f"test set {name}: real images come in many sizes; set segmentation.resolution")
    dataset = real_dataset(name, config)
    if task == "keypoints" and len(dataset) and dataset[0].labels is None:
        raise ConfigError(f"test set {name}: keypoint PCK is normalised by each object's mask box, and its "
                          f"images have no label maps")
    if "supervised" in variants:
        real_dataset(name, config, "train")
    targets = task_targets(dataset, task)
    check_real_sources(config, name, targets)
    return len(dataset), targets


def check(config: dict) -> None:
    """check_run for the suite's config, or for every distinct config of an ablation suite."""
    if "ablations" not in config:
        check_run(config)
        return
    from benchmark.ablations import runs

    for run in runs(config):
        check_run({**run.config, "variants": [run.variant], "test_sets": [run.test_set]})


def test_images(name: str, config: dict, data_dir: Path):
    """A test set in memory, in sorted order (LabelledImages, or KeypointImages for the keypoint task), and the
    merge from toy labels to its classes (None for real and keypoint sets)."""
    toy = settings_from(ToyData, config, "toy")
    resolution = settings_from(SegmentationSettings, config, "segmentation").resolution
    merge = check_test_set(name, task_of(config))
    if name in TOY_TEST_SETS:
        dataset, count = toy_split(data_dir, "test", toy.test, ToySettings(resolution=toy.resolution)), toy.test
    else:
        dataset, count = real_dataset(name, config), None
    if task_of(config) == "keypoints":
        sigma = settings_from(KeypointSettings, config, "keypoints").sigma
        return load_keypoint_images(dataset, count, resolution, sigma, f"test set {name}"), None
    return load_images(dataset, count, merge, resolution, f"test set {name}"), merge


def scores(per_image, test, config: dict) -> dict:
    """The run's k-fold figures for its record: `cross_validation` {metric: CrossValidation as a dict},
    `metrics` (the names a table shows, in order) and the per-fold sums they came from."""
    fold_indices = folds(len(test), config.get("folds", 5))
    out = {"folds": [[int(f[0]), int(f[-1])] for f in fold_indices]}
    if task_of(config) == "keypoints":
        thresholds = settings_from(KeypointSettings, config, "keypoints").thresholds
        per_fold = fold_sums(keypoint_counts(per_image, test.labels.numpy().astype("float64"), test.scale.numpy(),
                                             thresholds), fold_indices)
        results = cross_validate_keypoints(per_fold, thresholds)
        return {**out, "metric": "keypoints", "metrics": list(results), "keypoints": list(test.names),
                "cross_validation": {k: asdict(v) for k, v in results.items()},
                "selected_by": f"pck@{selection_threshold(thresholds):g}",
                "l2_all_zero_heatmaps": test.zero_output_l2(),
                "keypoint_counts_per_checkpoint_and_fold": per_fold.tolist(),
                "keypoint_counts_columns": ["visible", *(f"correct@{t:g}" for t in thresholds), "l2_sum", "maps"]}
    convention = config.get("miou", "official")
    other = "mmseg" if convention == "official" else "official"
    per_fold = fold_sums(per_image, fold_indices)
    return {**out, "metric": "miou", "metrics": ["miou"], "classes": list(test.classes.names),
            "cross_validation": {"miou": asdict(cross_validate(per_fold, convention)),
                                 f"miou_{other}": asdict(cross_validate(per_fold, other))},
            "miou_per_checkpoint_all_images": [mean_iou(m, convention) for m in per_fold.sum(1)],
            "confusion_per_checkpoint_and_fold": per_fold.tolist()}


def ceiling(test, config: dict, shared: Path) -> dict:
    """The segmentation setup's ceiling on a test set (benchmark.oracle): its output grid and the oracle mIoU
    there, in the run's convention; computed once per test set and setup under `shared`."""
    segmentation = settings_from(SegmentationSettings, config, "segmentation")
    grid = output_grid(build_network(segmentation, len(test.classes)), test.images.shape[1])
    convention = config.get("miou", "official")
    labels = hashlib.sha256(test.labels.numpy().tobytes()).hexdigest()[:8]
    path = Path(shared) / f"oracle-{labels}-{grid[0]}x{grid[1]}-{convention}.json"
    if not path.exists():
        result = {"output_grid": list(grid),
                  "oracle_miou": oracle_miou(test.labels, len(test.classes), grid, convention)}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(result)))
    return read_json(path, "oracle cache", ("output_grid", "oracle_miou"))


def seeded(runs: list[Run]) -> list[tuple[Run, int]]:
    """Every run with each of its config's training seeds (seeds_of): the seed sets segmentation.seed."""
    return [(replace(run, config={**run.config, "segmentation": {**(run.config.get("segmentation") or {}),
                                                                  "seed": seed}}), seed)
            for run in runs for seed in range(seeds_of(run.config))]


def execute(runs: list[Run], out: Path) -> list[Path]:
    """Train and cross-validate every run with each of its training seeds (test sets loaded once each); returns
    the record folders written."""
    out = Path(out)
    written, tests, ceilings = [], {}, {}
    for order, (run, seed) in enumerate(seeded(runs)):
        config = run.config
        device = device_of(config)
        toy = settings_from(ToyData, config, "toy")
        segmentation = settings_from(SegmentationSettings, config, "segmentation")
        key = (run.test_set, task_of(config), toy.resolution, toy.test, str(config.get("roots")),
               segmentation.resolution, settings_from(KeypointSettings, config, "keypoints").sigma)
        if key not in tests:
            tests[key] = test_images(run.test_set, config, out / "data")
        test, merge = tests[key]
        if task_of(config) == "segmentation" and (key, segmentation.backbone) not in ceilings:
            ceilings[key, segmentation.backbone] = ceiling(test, config, out / "work" / "shared")
        started = time.time()
        ctx = Context(config, run.test_set, test, merge, out / "data",
                      out / "work" / config["suite"] / run.test_set / work_key(config, run.variant),
                      out / "work" / "shared", device)
        per_image, facts = VARIANTS[run.variant](ctx)
        record = {
            "suite": config["suite"], "profile": config["profile"], "variant": run.variant, "test_set": run.test_set,
            "cell": {"table": run.table, "row": run.row, "column": run.column, "round": run.round}, "order": order,
            "seed": seed, "paper": run.paper, "config": config, "labelled": labelled_indices(config),
            "seeds": {"segmentation": segmentation.seed, "toy_splits_first_seed_and_size": SPLITS},
            "optimiser_steps": ctx.optimiser_steps, **ceilings.get((key, segmentation.backbone), {}),
            **scores(per_image, test, config), "facts": {**facts, **run.facts}, "device": device,
            "data_parallel_ranks": rank_and_world()[1],
        }
        where = run.column if run.column == run.test_set else f"{run.column}-{run.test_set}"
        name = f"{config['suite']}-{run.table}-{run.row}-{where}" + (f"-round{run.round}" if run.round else "")
        if rank_and_world()[0] == 0:   # under torchrun every rank trains; one writes
            written.append(write_record(out / "runs", f"{name}-seed{seed}", record, started))
            if ctx.predictions is not None:
                save_shown(written[-1], test, ctx.predictions, folds(len(test), config.get("folds", 5)),
                           record["cross_validation"]["miou"]["selected_checkpoints"])
    return written


def run_suite(config: dict, out: Path) -> list[Path]:
    """Check, then run every run of the suite; returns the record folders written."""
    check(config)
    if "ablations" in config:
        from benchmark.ablations import run_ablations

        return run_ablations(config, Path(out))
    return execute(table_runs(config), Path(out))
