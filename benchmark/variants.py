"""The training variants of the paper's Tables 1 and 2, all with the same DeepLabV3, optimiser and
human-label budget (the labelled toy images `labelled` names, by default the first `toy.labelled`),
as a plain dict:

    VARIANTS = {"transfer": ..., "semi": ..., "datasetgan": ..., "supervised": ...}

Each variant is a function (Context) -> (per-image test figures after every epoch, facts for the run
record): int64 (E, N, K, K) confusions for part segmentation, float (E, N, K, 3) keypoint figures
for keypoints (benchmark.segmentation.evaluate). `check` functions stop bad input before training.

- supervised: the whole labelled pool (`toy.pool` images, or a real set's train split), the upper
  line of the paper's Fig. 6.
- datasetgan: the label factory's uncertainty-filtered synthetic set. On the toy world the
  interpreter is made in the run from the labelled toy images (benchmark.toy_interpreter); a trained
  interpreter config of your own (`datasetgan.interpreter`) or a finished synthetic folder
  (`datasetgan.synthetic`) replace it, and a real test set needs one of them (for a real keypoint
  set, e.g. cub-bird, a folder generated with the test set's keypoint names).
- transfer: DeepLab pretrained on another labelled domain (toy cars at another camera and framing
  setting, labelled with the 5 PASCAL-style parts: the stand-in for MS-COCO; on a real test set the
  network file `real.transfer_weights` names), then only its last layer replaced and fine-tuned on
  the few labelled images (part logits or keypoint heatmaps).
- semi: s4GAN on the few labelled images plus an unlabelled pool: the toy world's unlabelled split,
  or the folder `real.unlabelled` names for a real test set (benchmark.semi; part segmentation only,
  as in the paper).

On a real test set the few labelled images are the first `real.labelled_count` of the train split of
`real.labelled`'s dataset for it (default: its own), merged to its classes (benchmark.sources.RealSources).
On a real keypoint test set (cub-bird) no classes are merged: the labelled set, like a synthetic one,
must have the test set's keypoint names, in order (benchmark.sources.target_merge), and transfer puts
one heatmap per keypoint on `real.transfer_weights`' network.

Work shared between runs (the transfer source's pretraining, interpreters, synthetic sets) lives in
`shared`, keyed by everything that shapes it, so suites and test sets asking the same reuse it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from benchmark import configs
from benchmark.keypoints import KeypointImages, KeypointSettings, load_keypoint_images
from benchmark.segmentation import (LabelledImages, SegmentationSettings, build_network, fit, kept_predictions,
                                    last_layer, load_images, load_network, replace_last_layer, resize_image,
                                    trained_steps)
from benchmark.semi import S4GAN, S4GANSettings
from benchmark.sources import (TOY_TEST_SETS, RealSources, Subset, ToyData, labelled_indices, real_dataset,
                               settings_from, short_hash, target_merge, task_of, task_targets, toy_split)
from benchmark.toy_interpreter import ToyInterpreterSettings, interpreter_config, trained
from datasetgan.distributed import barrier, rank_and_world, rank_zero_first
from datasources.base import ClassSet, LabelMerge, PartDataset
from datasources.classes import CAR_12_TO_5, class_weights
from datasources.files import image_files, read_rgb
from datasources.synthetic import filter_uncertain
from datasources.toy import ToySettings


@dataclass
class Context:
    """What a variant needs: the resolved config, the test set in memory (sorted order), the merge from
    the toy world's labels to the test set's classes (None for real or keypoint test sets), and its folders."""

    config: dict
    test_set: str
    test: LabelledImages | KeypointImages
    merge: LabelMerge | None
    data_dir: Path   # rendered toy splits, shared by runs
    work: Path       # this run's checkpoints and intermediate files
    shared: Path     # work shared by runs, keyed by its settings
    device: str
    optimiser_steps: dict[str, int] = field(default_factory=dict)   # per network trained by train(): its steps
    predictions: np.ndarray | None = None   # uint8 (E, S, H, W): train()'s shown test images at each evaluation
    toy: ToyData = field(init=False)
    segmentation: SegmentationSettings = field(init=False)
    keypoints: KeypointSettings = field(init=False)
    task: str = field(init=False)

    def __post_init__(self):
        self.toy = settings_from(ToyData, self.config, "toy")
        self.segmentation = settings_from(SegmentationSettings, self.config, "segmentation")
        self.keypoints = settings_from(KeypointSettings, self.config, "keypoints")
        self.task = task_of(self.config)

    @property
    def targets(self):
        """What the test set is scored on: its class set, or for the keypoint task its keypoint names."""
        return self.test.names if self.task == "keypoints" else self.test.classes

    def images(self, dataset: PartDataset, count: int | None, merge: LabelMerge | None, name: str):
        """The first `count` samples of a dataset as this task's training data (labels through `merge`)."""
        if self.task == "keypoints":
            return load_keypoint_images(dataset, count, self.segmentation.resolution, self.keypoints.sigma, name)
        return load_images(dataset, count, merge, self.segmentation.resolution, name)

    def toy_images(self, split: str, count: int, settings: ToySettings | None = None):
        """The first `count` toy images of `split` (labels merged to the test set's classes)."""
        settings = settings or ToySettings(resolution=self.toy.resolution)
        return self.images(toy_split(self.data_dir, split, count, settings), count, self.merge, f"toy {split} split")

    @property
    def real(self) -> RealSources:
        return settings_from(RealSources, self.config, "real")

    def labelled(self):
        """The human-labelled images: the toy labelled split's at `labelled_indices`, or for a real test set
        the first real.labelled_count of its labelled set's train split, merged to the test set's classes (for
        the keypoint task its keypoint names must be the test set's instead)."""
        if self.test_set in TOY_TEST_SETS:
            indices = labelled_indices(self.config)
            split = toy_split(self.data_dir, "labelled", max(indices) + 1, ToySettings(resolution=self.toy.resolution))
            return self.images(Subset(split, indices), None, self.merge, "labelled toy images")
        name = self.real.labelled_set(self.test_set)
        data = real_dataset(name, self.config, "train")
        merge = target_merge(task_targets(data, self.task), self.targets, f"{name} train split")
        return self.images(data, self.real.labelled_count, merge, f"{name} train split (the human labels)")

    def unlabelled(self, count: int) -> torch.Tensor:
        """uint8 (N, R, R, 3): the first `count` images of the toy unlabelled split, or of the real test set's
        real.unlabelled folder (resized to segmentation.resolution)."""
        if self.test_set in TOY_TEST_SETS:
            return self.toy_images("unlabelled", count).images
        files = image_files(self.real.unlabelled_folder(self.test_set), recursive=True)[:count]
        return torch.stack([resize_image(read_rgb(f), self.segmentation.resolution) for f in files])

    def train(self, train, name: str, net: torch.nn.Module | None = None, objective=None) -> np.ndarray:
        """fit() `net` (default: a fresh DeepLab) on `train` in work/name; the test set's figures at every
        checkpoint. The steps it ran are kept in optimiser_steps[name] for the run record, the predictions fit()
        kept in `predictions` (part labels)."""
        net = net or build_network(self.segmentation, self.test.num_outputs)
        figures = fit(net, train, self.test, self.segmentation, self.work / name, objective, self.device,
                      f"{self.test_set} {name} seed {self.segmentation.seed}")
        self.optimiser_steps[name] = trained_steps(self.work / name)
        self.predictions = kept_predictions(self.work / name, self.segmentation.evaluations)
        return figures


def supervised(ctx: Context) -> tuple[np.ndarray, dict]:
    """DeepLab on the whole labelled pool: the toy labelled split's first `toy.pool`, or a real test
    set's `train` split."""
    if ctx.test_set in TOY_TEST_SETS:
        pool = ctx.toy_images("labelled", ctx.toy.pool)
    else:
        pool = ctx.images(real_dataset(ctx.test_set, ctx.config, "train"), None, None, f"{ctx.test_set} train split")
    return ctx.train(pool, "deeplab"), {"training_images": len(pool)}


@dataclass(frozen=True)
class DatasetGANSettings:
    """The synthetic training set: whose interpreter labels it, how many samples, how many dropped."""

    interpreter: str | None = None      # a trained interpreter config of your own (datasetgan.pipeline format)
    synthetic: str | None = None        # a finished `benchmark generate` folder to train on (no generation)
    toy_interpreter: dict | None = None  # ToyInterpreterSettings fields of the interpreter made in the run (toy)
    num: int = 10_000                   # samples generated
    view: int | None = None             # train on the first `view` of them (ablations: one set, many sizes)
    filter_ratio: float = 0.1           # of those, the most uncertain fraction left out
    filter_rule: str = "paper"          # datasources.synthetic.filter_uncertain: the paper's, or "official" (its script's)
    shard_size: int = 100

    def __post_init__(self):
        if self.view is not None and not 0 < self.view <= self.num:
            raise configs.ConfigError(f"datasetgan.view must be in 1..num ({self.num}), got {self.view}")
        try:
            filter_uncertain({i: 0.0 for i in range(self.view or self.num)}, self.filter_ratio, self.filter_rule)
        except ValueError as e:
            raise configs.ConfigError(f"datasetgan.filter_rule: {e}") from None


def _project_file(path: str | None, what: str) -> Path:
    from datasetgan.pipeline import project_path

    if not path:
        raise configs.ConfigError(f"{what}: a file is required")
    full = project_path(path)
    if not full.is_file():
        raise configs.ConfigError(f"{what}: no such file {full}")
    return full


def check_datasetgan(config: dict, test_set: str, targets) -> None:
    """Before training: the synthetic folder is a finished factory output, the interpreter config names its
    generator and trained checkpoint, or (toy test sets) the in-run interpreter's generator exists; either way
    its classes map onto the test set's (or its keypoints are the test set's). targets: the test set's class
    set, or its keypoint names."""
    from datasetgan.pipeline import check_interpreter_settings, project_path, targets as interpreter_targets
    from datasources.synthetic import SyntheticDataset

    settings = settings_from(DatasetGANSettings, config, "datasetgan")
    if settings.synthetic:
        folder = project_path(settings.synthetic)
        data = SyntheticDataset(folder)
        target_merge(_synthetic_targets(data, targets, folder), targets, f"datasetgan.synthetic {folder}")
        return
    if settings.interpreter:
        interp = configs.load(_project_file(settings.interpreter, "datasetgan.interpreter"))
        where = f"interpreter config {settings.interpreter}"
        check_interpreter_settings(interp)
        _project_file((interp.get("generator") or {}).get("checkpoint"), f"{where}: generator.checkpoint")
        _project_file(interp.get("checkpoint"), f"{where}: checkpoint (train it: benchmark interpreter train)")
        try:
            made = interpreter_targets(interp)
        except KeyError as e:
            raise configs.ConfigError(f"{where}: {e.args[0]}") from None
        target_merge(made, targets, where)
        return
    if test_set not in TOY_TEST_SETS:
        raise configs.ConfigError(f"test set {test_set}: set datasetgan.interpreter (a trained interpreter config) "
                                  f"or datasetgan.synthetic (a generated folder); the in-run interpreter is for "
                                  f"toy sets")
    toy = settings_from(ToyInterpreterSettings, {"t": settings.toy_interpreter}, "t")
    if toy.generator != "tiny":
        from datasetgan.loaders import load_generator_any

        path = _project_file(toy.generator, "datasetgan.toy_interpreter.generator")
        resolution = settings_from(ToyData, config, "toy").resolution
        if load_generator_any(path).cfg.resolution != resolution:
            raise configs.ConfigError(f"toy.resolution {resolution} differs from the resolution of "
                                      f"datasetgan.toy_interpreter.generator {path}; the labelled toy images are "
                                      f"inverted into it")


def check_real_sources(config: dict, test_set: str, targets) -> None:
    """Before training on a real test set: the few-label variants' labelled set opens and its classes map
    onto the test set's (for the keypoint task: it has the test set's keypoint names); semi's unlabelled
    folder holds images; transfer's network file loads. targets: the test set's class set or keypoint names."""
    variants = set(config["variants"])
    real = settings_from(RealSources, config, "real")
    if variants & {"transfer", "semi"}:
        name = real.labelled_set(test_set)
        data = real_dataset(name, config, "train")
        if len(data) == 0:
            raise configs.ConfigError(f"test set {test_set}: the labelled set ({name} train split) holds no images")
        target_merge(task_targets(data, task_of(config)), targets,
                     f"{name} train split (the labelled set of {test_set})")
    if "semi" in variants:
        image_files(real.unlabelled_folder(test_set), recursive=True)
    if "transfer" in variants:
        load_network(settings_from(SegmentationSettings, config, "segmentation"), real.weights())


def _synthetic_targets(data, targets, folder: Path) -> ClassSet | tuple[str, ...]:
    """What a synthetic folder gives a test set of these targets (its class set, or its keypoint names): its
    keypoint names for keypoint targets, else its class set (a folder may hold both)."""
    made = data.keypoint_names if isinstance(targets, tuple) else getattr(data, "classes", None)
    if not made:
        what = "keypoints" if isinstance(targets, tuple) else "part labels"
        raise configs.ConfigError(f"{folder}: its samples carry no {what}")
    return made


def _interpreter(ctx: Context, settings: DatasetGANSettings) -> dict:
    """The variant's trained interpreter config: the user's, or the one made in the run on the labelled images."""
    if settings.interpreter:
        return configs.load(_project_file(settings.interpreter, "datasetgan.interpreter"))
    toy = settings_from(ToyInterpreterSettings, {"t": settings.toy_interpreter}, "t")
    indices = labelled_indices(ctx.config)
    labelled = toy_split(ctx.data_dir, "labelled", max(indices) + 1, ToySettings(resolution=ctx.toy.resolution))
    return trained(interpreter_config(labelled, indices, toy, ctx.shared / "interpreters", ctx.task), ctx.device)


def synthetic_folder(ctx: Context, settings: DatasetGANSettings) -> Path:
    """Generate `settings.num` labelled samples with the variant's interpreter into
    shared/synthetic-<interpreter digest>-<shard size> (resumable; reused by every run of that interpreter;
    under torchrun rank 0 trains the interpreter and the ranks split the shards)."""
    from datasetgan.factory import FactorySettings, generate
    from datasetgan.pipeline import factory_source, labeler_from_config, project_path

    interp = rank_zero_first(lambda: _interpreter(ctx, settings))   # trained once, on rank 0
    backbone, labeler, classes, size, crop_rows = labeler_from_config(interp, ctx.device)
    source = factory_source(interp)
    folder = ctx.shared / f"synthetic-{source['interpreters'][0]}-{settings.shard_size}"
    factory = FactorySettings(num=settings.num, shard_size=settings.shard_size, filter_ratio=settings.filter_ratio)
    generate(backbone, labeler, classes, folder, factory, size, crop_rows, *rank_and_world(),   # shards split by rank
             source=source)
    barrier()   # the last rank to finish its shards writes the index every rank reads
    return folder


def datasetgan(ctx: Context) -> tuple[np.ndarray, dict]:
    """DeepLab on a filtered synthetic set: `datasetgan.synthetic` as given, or the first `num` (or `view`)
    samples the variant's interpreter generates with the `filter_ratio` most uncertain of them dropped."""
    from datasetgan.pipeline import project_path
    from datasources.synthetic import SyntheticDataset

    settings = settings_from(DatasetGANSettings, ctx.config, "datasetgan")
    if settings.synthetic:
        folder = project_path(settings.synthetic)
        data = SyntheticDataset(folder)
    else:
        folder = synthetic_folder(ctx, settings)
        data = SyntheticDataset(folder, settings.view or settings.num, settings.filter_ratio, settings.filter_rule)
    merge = target_merge(_synthetic_targets(data, ctx.targets, folder), ctx.targets, str(folder))
    synthetic = ctx.images(data, None, merge, str(folder))
    key = short_hash([str(folder.resolve()), data.seeds])
    return ctx.train(synthetic, f"deeplab-{key}"), {
        "synthetic": str(folder), "synthetic_kept": len(synthetic),
        "synthetic_targets": "keypoints" if ctx.task == "keypoints" else data.classes.name}


@dataclass(frozen=True)
class TransferSettings:
    """The source domain (toy cars drawn at another setting, CAR_5 labels) and its pretraining."""

    source_images: int = 2_000
    source_steps: int | None = None   # the source network's optimiser steps (None: segmentation.steps)
    elevation: tuple[float, float] = (20.0, 45.0)   # the target's is (0, 20)
    fov: tuple[float, float] = (40.0, 60.0)         # the target's is (20, 35)
    fill: tuple[float, float] = (0.45, 0.7)         # the target's is (0.75, 0.95)


def pretrained_on_source(ctx: Context) -> torch.nn.Module:
    """DeepLab trained on the source domain's segmentation: real.transfer_weights for a real test set, else
    trained here on the toy source domain, once per setting under shared/."""
    if ctx.test_set not in TOY_TEST_SETS:
        return load_network(ctx.segmentation, ctx.real.weights())
    settings = settings_from(TransferSettings, ctx.config, "transfer")
    source_world = ToySettings(resolution=ctx.toy.resolution, elevation=settings.elevation, fov=settings.fov,
                               fill=settings.fill)
    # the unlabelled split's seeds drawn at the source setting: no test or labelled image is seen
    data = toy_split(ctx.data_dir, "unlabelled", settings.source_images, source_world)
    source = load_images(data, settings.source_images, CAR_12_TO_5, ctx.segmentation.resolution, "transfer source")
    # one source network for every training seed (seed 0): like the interpreter and the synthetic set of the
    # datasetgan variant, it is upstream of the table's network, whose training the seeds vary
    pretrain = replace(ctx.segmentation, steps=settings.source_steps or ctx.segmentation.steps, seed=0)
    net = build_network(pretrain, len(source.classes))
    folder = ctx.shared / f"transfer-source-{short_hash([asdict(settings), asdict(pretrain), ctx.toy.resolution])}"
    fit(net, source, None, pretrain, folder, device=ctx.device, desc=f"{ctx.test_set} transfer source")
    return net


def transfer(ctx: Context) -> tuple[np.ndarray, dict]:
    """Pretrain on the source domain, then fine-tune a fresh last layer alone on the few labelled images."""
    net = pretrained_on_source(ctx)
    replace_last_layer(net, ctx.test.num_outputs, ctx.segmentation.seed)
    net.requires_grad_(False)
    last_layer(net).requires_grad_(True)
    labelled = ctx.labelled()
    if ctx.test_set in TOY_TEST_SETS:
        source = {**asdict(settings_from(TransferSettings, ctx.config, "transfer")), "classes": CAR_12_TO_5.target.name}
    else:
        source = {"weights": str(ctx.real.weights()), "labelled_set": ctx.real.labelled_set(ctx.test_set)}
    return ctx.train(labelled, "finetune", net=net), {"training_images": len(labelled), "source": source}


def semi(ctx: Context) -> tuple[np.ndarray, dict]:
    """s4GAN on the few labelled images and the unlabelled pool."""
    settings = settings_from(S4GANSettings, ctx.config, "semi")
    labelled = ctx.labelled()
    unlabelled = ctx.unlabelled(settings.unlabelled)
    k = len(ctx.test.classes)
    objective = S4GAN(unlabelled, k, settings, torch.device(ctx.device), ctx.segmentation.seed,
                      class_weights(labelled.labels, k, ctx.segmentation.class_weighting))
    return ctx.train(labelled, "s4gan", objective=objective), {
        "training_images": len(labelled), "unlabelled_images": len(unlabelled),
        "optimiser": "the shared Adam (segmentation.lr) for the segmenter, as every variant; the s4GAN reference "
                     "uses SGD (momentum 0.9, weight decay 5e-4, poly decay, 10x head learning rate): one optimiser "
                     "for every variant keeps the comparison about the data and the algorithm"}


VARIANTS = {"transfer": transfer, "semi": semi, "datasetgan": datasetgan, "supervised": supervised}
KEYPOINT_VARIANTS = ("transfer", "datasetgan", "supervised")   # the paper's Table 2 rows


def variant_rank(row: str) -> int:
    """Where a table row goes: variants in the paper's order (VARIANTS), any other row after them."""
    return list(VARIANTS).index(row) if row in VARIANTS else len(VARIANTS)


def work_key(config: dict, variant: str) -> str:
    """Folder name of a variant's work: its name and a hash of everything that shapes its training."""
    keys = ("task", "toy", "labelled", "segmentation", "keypoints", "roots", "real", variant)
    return f"{variant}-{short_hash({k: config.get(k) for k in keys})}"
