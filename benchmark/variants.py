"""The four training variants of the paper's Table 1, all with the same DeepLabV3, optimiser and
human-label budget (`toy.labelled` images), as a plain dict:

    VARIANTS = {"transfer": ..., "semi": ..., "datasetgan": ..., "supervised": ...}

Each variant is a function (Context) -> (per-image test confusions int64 (E, N, K, K) after every
epoch, facts for the run record). `check` functions stop bad input before any training.

- supervised: the whole labelled pool (`toy.pool` images, or a real set's train split), the upper
  line of the paper's Fig. 6.
- datasetgan: the label factory's uncertainty-filtered synthetic set, from the interpreter config
  `datasetgan.interpreter` (or, with `datasetgan.tiny_gan`, a stand-in made in the run).
- transfer: DeepLab pretrained on another labelled domain (toy cars at another camera and framing
  setting, labelled with the 5 PASCAL-style parts: the stand-in for MS-COCO), then only its last
  layer fine-tuned on the few labelled images.
- semi: s4GAN on the few labelled images plus the toy world's unlabelled pool (benchmark.semi).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from benchmark import configs
from benchmark.segmentation import (LabelledImages, SegmentationSettings, build_network, fit, last_layer,
                                    load_images, replace_last_layer)
from benchmark.semi import S4GAN, S4GANSettings
from benchmark.sources import TOY_TEST_SETS, ToyData, class_merge, real_dataset, settings_from, short_hash, toy_split
from benchmark.tiny_gan import TinyGANSettings, interpreter_config
from datasets.base import LabelMerge
from datasets.classes import CAR_12_TO_5
from datasets.toy import ToySettings


@dataclass
class Context:
    """What a variant needs: the resolved config, the test set in memory (sorted order), the merge from
    the toy world's labels to the test set's classes (None for real test sets), and its folders."""

    config: dict
    test_set: str
    test: LabelledImages
    merge: LabelMerge | None
    data_dir: Path   # rendered toy splits, shared by runs
    work: Path       # this variant's checkpoints and intermediate files
    device: str
    toy: ToyData = field(init=False)
    segmentation: SegmentationSettings = field(init=False)

    def __post_init__(self):
        self.toy = settings_from(ToyData, self.config, "toy")
        self.segmentation = settings_from(SegmentationSettings, self.config, "segmentation")

    def toy_images(self, split: str, count: int, settings: ToySettings | None = None,
                   merge: LabelMerge | None = None) -> LabelledImages:
        """The first `count` toy images of `split`, labels through `merge` (default: to the test set's classes)."""
        settings = settings or ToySettings(resolution=self.toy.resolution)
        data = toy_split(self.data_dir, split, count, settings)
        return load_images(data, count, merge if merge is not None else self.merge, self.segmentation.resolution,
                           f"toy {split} split")

    def train(self, train: LabelledImages, name: str, net: torch.nn.Module | None = None,
              objective=None) -> np.ndarray:
        """fit() `net` (default: a fresh DeepLab) on `train` in work/name; the test set's confusions per epoch."""
        net = net or build_network(self.segmentation, len(self.test.classes))
        return fit(net, train, self.test, self.segmentation, self.work / name, objective, self.device,
                   f"{self.test_set} {name}")


def supervised(ctx: Context) -> tuple[np.ndarray, dict]:
    """DeepLab on the whole labelled pool: the toy labelled split's first `toy.pool`, or a real test
    set's `train` split."""
    if ctx.test_set in TOY_TEST_SETS:
        pool = ctx.toy_images("labelled", ctx.toy.pool)
    else:
        pool = load_images(real_dataset(ctx.test_set, ctx.config, "train"), None, None, ctx.segmentation.resolution,
                           f"{ctx.test_set} train split")
    return ctx.train(pool, "deeplab"), {"training_images": len(pool)}


@dataclass(frozen=True)
class DatasetGANSettings:
    """The synthetic training set: which interpreter labels it, how many samples, how many dropped."""

    interpreter: str | None = "configs/interpreter/toy-car-12.yaml"
    synthetic: str | None = None   # a finished `benchmark generate` folder to train on instead (no generation)
    tiny_gan: dict | None = None   # TinyGANSettings fields: use the in-run stand-in interpreter (quick, tests)
    num: int = 10_000
    filter_ratio: float = 0.1
    shard_size: int = 100


def _interpreter_config(ctx: Context, settings: DatasetGANSettings) -> dict:
    """The interpreter config of the variant (the stand-in's is written to work/tiny-gan)."""
    if settings.tiny_gan is not None:
        tiny = settings_from(TinyGANSettings, {"tiny_gan": settings.tiny_gan}, "tiny_gan")
        labelled = toy_split(ctx.data_dir, "labelled", ctx.toy.labelled, ToySettings(resolution=ctx.toy.resolution))
        return interpreter_config(labelled, ctx.toy.labelled, ctx.toy.resolution, tiny, ctx.work / "tiny-gan")
    return configs.load(_project_file(settings.interpreter, "datasetgan.interpreter"))


def _project_file(path: str | None, what: str) -> Path:
    from datasetgan.pipeline import project_path

    if not path:
        raise configs.ConfigError(f"{what}: a file is required")
    full = project_path(path)
    if not full.is_file():
        raise configs.ConfigError(f"{what}: no such file {full}")
    return full


def check_datasetgan(config: dict, test_classes) -> None:
    """Before training: the synthetic folder is a finished factory output, or the interpreter config,
    its generator and its trained checkpoint exist; either way its classes map onto the test set's."""
    from datasetgan.pipeline import class_set, project_path
    from datasets.synthetic import SyntheticDataset

    settings = settings_from(DatasetGANSettings, config, "datasetgan")
    if settings.synthetic:
        folder = project_path(settings.synthetic)
        class_merge(SyntheticDataset(folder).classes, test_classes, f"datasetgan.synthetic {folder}")
        return
    if settings.tiny_gan is not None:
        settings_from(TinyGANSettings, {"tiny_gan": settings.tiny_gan}, "tiny_gan")
        return
    interp = configs.load(_project_file(settings.interpreter, "datasetgan.interpreter"))
    where = f"interpreter config {settings.interpreter}"
    _project_file((interp.get("generator") or {}).get("checkpoint"), f"{where}: generator.checkpoint")
    _project_file(interp.get("checkpoint"), f"{where}: checkpoint (train it: benchmark interpreter train)")
    try:
        classes = class_set(interp.get("classes", ""))
    except KeyError as e:
        raise configs.ConfigError(f"{where}: {e.args[0]}") from None
    class_merge(classes, test_classes, where)


def _generate(ctx: Context, settings: DatasetGANSettings) -> Path:
    """Label `settings.num` samples with the variant's interpreter (trained first when it is the stand-in)
    into work/synthetic-<interpreter digest> (resumable) and return that folder."""
    from datasetgan.factory import FactorySettings, generate
    from datasetgan.pipeline import labeler_from_config, project_path, train_from_config

    interp = _interpreter_config(ctx, settings)
    if settings.tiny_gan is not None and not Path(interp["checkpoint"]).exists():
        train_from_config(interp, ctx.device)
    backbone, labeler, classes, size, crop_rows = labeler_from_config(interp, ctx.device)
    folder = ctx.work / f"synthetic-{_file_digest(project_path(interp['checkpoint']))}"
    factory = FactorySettings(num=settings.num, shard_size=settings.shard_size, filter_ratio=settings.filter_ratio)
    generate(backbone, labeler, classes, folder, factory, size, crop_rows)
    return folder


def datasetgan(ctx: Context) -> tuple[np.ndarray, dict]:
    """DeepLab on a filtered synthetic set: `datasetgan.synthetic` as given, or generated once per
    trained interpreter."""
    from datasetgan.pipeline import project_path
    from datasets.synthetic import SyntheticDataset

    settings = settings_from(DatasetGANSettings, ctx.config, "datasetgan")
    folder = project_path(settings.synthetic) if settings.synthetic else _generate(ctx, settings)
    data = SyntheticDataset(folder)
    synthetic = load_images(data, None, class_merge(data.classes, ctx.test.classes, str(folder)),
                            ctx.segmentation.resolution, str(folder))
    key = short_hash([str(folder.resolve()), (folder / "index.json").read_text()])
    return ctx.train(synthetic, f"deeplab-{key}"), {"synthetic": str(folder), "synthetic_kept": len(synthetic),
                                                    "synthetic_classes": data.classes.name}


def _file_digest(path: Path) -> str:
    """The first 8 hex digits of a file's SHA-256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


@dataclass(frozen=True)
class TransferSettings:
    """The source domain (toy cars drawn at another setting, CAR_5 labels) and its pretraining."""

    source_images: int = 2_000
    source_epochs: int = 20
    elevation: tuple[float, float] = (20.0, 45.0)   # the target's is (0, 20)
    fov: tuple[float, float] = (40.0, 60.0)         # the target's is (25, 40)
    fill: tuple[float, float] = (0.45, 0.7)         # the target's is (0.65, 0.95)


def transfer(ctx: Context) -> tuple[np.ndarray, dict]:
    """Pretrain on the source domain, then fine-tune a fresh last layer alone on the few labelled images."""
    settings = settings_from(TransferSettings, ctx.config, "transfer")
    source_world = ToySettings(resolution=ctx.toy.resolution, elevation=settings.elevation, fov=settings.fov,
                               fill=settings.fill)
    # the unlabelled split's seeds drawn at the source setting: no test or labelled image is seen
    source = ctx.toy_images("unlabelled", settings.source_images, source_world, merge=CAR_12_TO_5)
    pretrain = replace(ctx.segmentation, epochs=settings.source_epochs)
    net = build_network(pretrain, len(source.classes))
    fit(net, source, None, pretrain, ctx.work / "pretrain", device=ctx.device, desc=f"{ctx.test_set} pretrain")
    replace_last_layer(net, len(ctx.test.classes), ctx.segmentation.seed)
    net.requires_grad_(False)
    last_layer(net).requires_grad_(True)
    labelled = ctx.toy_images("labelled", ctx.toy.labelled)
    return ctx.train(labelled, "finetune", net=net), {"training_images": len(labelled),
                                                      "source": {**asdict(settings), "classes": source.classes.name}}


def semi(ctx: Context) -> tuple[np.ndarray, dict]:
    """s4GAN on the few labelled images and the unlabelled pool."""
    settings = settings_from(S4GANSettings, ctx.config, "semi")
    labelled = ctx.toy_images("labelled", ctx.toy.labelled)
    unlabelled = ctx.toy_images("unlabelled", settings.unlabelled).images
    objective = S4GAN(unlabelled, len(ctx.test.classes), settings, torch.device(ctx.device), ctx.segmentation.seed)
    return ctx.train(labelled, "s4gan", objective=objective), {"training_images": len(labelled),
                                                               "unlabelled_images": len(unlabelled)}


VARIANTS = {"transfer": transfer, "semi": semi, "datasetgan": datasetgan, "supervised": supervised}


def work_key(config: dict, variant: str) -> str:
    """Folder name of a variant's work: its name and a hash of everything that shapes its training."""
    keys = ("toy", "segmentation", "roots", variant)
    return f"{variant}-{short_hash({k: config.get(k) for k in keys})}"
