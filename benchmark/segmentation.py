"""The one segmentation network and trainer every variant shares: DeepLabV3 (torchvision's, or on the
small dilated ResNet of the CPU profiles), Adam, the same number of optimiser steps for every variant
(each cycles its own shuffled batches), a resumable checkpoint at each of `evaluations` evenly spaced
points, and an evaluation of the test set there so that k-fold selection can pick any of them without
running the network again (the official script's 20 epochs are 20 such points).

Two tasks share it, told apart by the data, which brings its objective and its per-image figures:
part segmentation (LabelledImages here: one logit per class, cross-entropy, confusion matrices) and
keypoints (benchmark.keypoints.KeypointImages: one heatmap per keypoint, L2 loss).

Network weights never come from the internet: `weights=None, weights_backbone=None` always, and a
pretrained backbone only from the local file `SegmentationSettings.pretrained` names.
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import segmentation as tvseg
from tqdm import tqdm

from benchmark.configs import ConfigError
from benchmark.dilated_resnet import deeplabv3_dilated_resnet
from benchmark.metrics import confusion
from datasetgan.distributed import barrier, process_group, rank_and_world
from datasources.base import IGNORE, CheckpointFormatError, ClassSet, DatasetFormatError, LabelMerge, PartDataset
from datasources.classes import CLASS_WEIGHTINGS, class_weights
from datasources.files import atomic_write, read_npy, read_torch

BACKBONES = {
    "resnet101": tvseg.deeplabv3_resnet101,   # the released code's choice
    "resnet50": tvseg.deeplabv3_resnet50,
    "mobilenet_v3_large": tvseg.deeplabv3_mobilenet_v3_large,   # output stride 16: 4 x 4 logits at 64 px
    "dilated_resnet": deeplabv3_dilated_resnet,   # output stride 2, for the CPU profiles' 64 px toy images
}
IMAGENET_BACKBONES = ("resnet101", "resnet50")   # the official script starts these from ImageNet weights
RANDOM_INIT = "random"   # segmentation.pretrained's value that asks for a random initialisation on purpose


@dataclass(frozen=True)
class SegmentationSettings:
    """DeepLabV3 training; defaults are the official script's except where a comment says otherwise."""

    backbone: str = "resnet101"
    steps: int = 25_000  # optimiser steps of every variant (the official 20 epochs of 10,000 images at batch 8)
    evaluations: int = 20  # evenly spaced checkpoints the folds choose from (the official: one per epoch)
    batch_size: int = 8
    lr: float = 1e-3
    resolution: int | None = None  # square side images and labels are resized to; None: keep (ours)
    pretrained: str | None = None  # a local backbone state dict (the official: ImageNet); "random": random init.
    #                                Required for IMAGENET_BACKBONES; the others start from random init when None
    bn_momentum: float | None = 0.1  # ours: every batch norm's; torchvision's MobileNetV3 has 0.01, whose running
    #                                  statistics lag far behind on short schedules (eval then predicts background)
    keep_all_checkpoints: bool = False  # ours: keep only the latest (every epoch's evaluation is kept anyway)
    amp: bool = True  # ours: mixed precision on CUDA (bf16, else fp16 with loss scaling); False: fp32 as the official
    seed: int = 0
    class_weighting: str = "none"  # ours: "inverse_sqrt_frequency" weighs each class's cross-entropy by its training
    #                                 pixel frequency^-1/2 (class_weights); the official script's is unweighted

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise ConfigError(f"segmentation.backbone {self.backbone!r} unknown; valid: {', '.join(BACKBONES)}")
        if self.batch_size < 1 or not 1 <= self.evaluations <= self.steps:
            raise ConfigError(f"segmentation.batch_size must be at least 1 and segmentation.evaluations in 1..steps "
                              f"({self.steps}); got {self.batch_size} and {self.evaluations}")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ConfigError(f"segmentation.class_weighting {self.class_weighting!r} unknown; valid: "
                              f"{', '.join(CLASS_WEIGHTINGS)}")
        if self.backbone in IMAGENET_BACKBONES and self.pretrained is None:
            raise ConfigError(f"segmentation.pretrained: the {self.backbone} backbone starts from an ImageNet backbone "
                              f"file, as the official script's does (e.g. torchvision's resnet101-63fe2227.pth, "
                              f"fetched by you); set it to that file, or to '{RANDOM_INIT}' for a random init")

    @property
    def evaluated_steps(self) -> list[int]:
        """The step counts after which the test set is evaluated and a checkpoint written (the last is `steps`)."""
        return [round(self.steps * (i + 1) / self.evaluations) for i in range(self.evaluations)]


@dataclass(frozen=True)
class LabelledImages:
    """images: uint8 (N, H, W, 3); labels: int64 (N, H, W) in [0, K) or IGNORE; classes: the K names."""

    images: Tensor
    labels: Tensor
    classes: ClassSet

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_outputs(self) -> int:
        return len(self.classes)

    @property
    def describe(self) -> str:
        return f"{len(self.classes)} classes ({self.classes.name})"

    def objective(self, class_weighting: str = "none") -> CrossEntropy:
        """The default training objective for these labels: cross-entropy, its classes weighted by
        `class_weighting` (class_weights)."""
        return CrossEntropy(class_weights(self.labels, self.num_outputs, class_weighting))

    def figures(self, outputs: Tensor, start: int) -> np.ndarray:
        """outputs: float (B, K, H, W) logits of images start..start+B -> int64 (B, K, K) their confusions
        (rows truth, columns prediction)."""
        pred = outputs.argmax(1).cpu().numpy()
        truth = self.labels[start:start + len(outputs)].numpy()
        return np.stack([confusion(p, t, self.num_outputs) for p, t in zip(pred, truth)])


def resize_image(image: np.ndarray, resolution: int | None) -> Tensor:
    """uint8 (H, W, 3) -> uint8 (R, R, 3), bilinear (unchanged when resolution is None)."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    if resolution is not None:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return x[0].round().clamp(0, 255).byte().permute(1, 2, 0)


def first_samples(dataset: PartDataset, count: int | None, resolution: int | None, name: str) -> list:
    """The first `count` samples, checked to be of one size unless they are resized."""
    n = len(dataset) if count is None else min(count, len(dataset))
    if n == 0:
        raise DatasetFormatError(name, "at least one image; found none")
    samples = [dataset[i] for i in range(n)]
    shapes = {s.image.shape for s in samples}
    if len(shapes) > 1 and resolution is None:
        raise DatasetFormatError(name, f"images of one size (or set segmentation.resolution); found {sorted(shapes)}")
    return samples


def load_images(dataset: PartDataset, count: int | None = None, merge: LabelMerge | None = None,
                resolution: int | None = None, name: str = "dataset") -> LabelledImages:
    """The first `count` samples of a dataset in memory, labels mapped through `merge` when given and
    everything resized to `resolution` (bilinear images, nearest labels) when given."""
    samples = first_samples(dataset, count, resolution, name)
    if any(s.labels is None for s in samples):
        raise DatasetFormatError(name, "label maps for every image")
    labels = []
    for s in samples:
        label = torch.from_numpy(merge(s.labels) if merge else s.labels)[None, None].float()
        if resolution is not None:
            label = F.interpolate(label, size=(resolution, resolution), mode="nearest")
        labels.append(label[0, 0].long())
    return LabelledImages(torch.stack([resize_image(s.image, resolution) for s in samples]), torch.stack(labels),
                          merge.target if merge else dataset.classes)


def to_input(images: Tensor) -> Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W), normalised with ImageNet statistics."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (images.permute(0, 3, 1, 2).float() / 255 - mean.to(images.device)) / std.to(images.device)


def build_network(settings: SegmentationSettings, num_classes: int) -> nn.Module:
    """DeepLabV3 with `num_classes` outputs; forward(x float (B, 3, H, W)) -> {"out": float (B, K, H, W)}."""
    torch.manual_seed(settings.seed)
    net = BACKBONES[settings.backbone](weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
    if settings.bn_momentum is not None:
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = settings.bn_momentum
    if settings.pretrained and settings.pretrained != RANDOM_INIT:
        load_backbone_weights(net, Path(settings.pretrained))
    return net


def _state_dict(path: Path):
    """A local weights file's state dict (read with weights_only), unwrapped from a {"model": ...} checkpoint."""
    state = read_torch(path, "weights file")
    state = state.get("model", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise CheckpointFormatError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def load_backbone_weights(net: nn.Module, path: Path) -> None:
    """Copy a local state dict into net.backbone: a classification model's (torchvision names, its head
    ignored) or a segmentation model's ("backbone." prefix). Every backbone tensor must be present."""
    if not path.is_file():
        raise ConfigError(f"segmentation.pretrained: no such file {path}")
    state = {k.removeprefix("backbone."): v for k, v in _state_dict(path).items()}
    wanted = net.backbone.state_dict()
    missing = [k for k in wanted if k not in state or state[k].shape != wanted[k].shape]
    if missing:
        raise ConfigError(f"{path}: not a backbone of this network; {len(missing)} tensors missing or of "
                          f"another shape, e.g. {missing[:3]}")
    net.backbone.load_state_dict({k: state[k] for k in wanted})


def load_network(settings: SegmentationSettings, path: Path) -> nn.Module:
    """A whole DeepLabV3 from a local state dict (ours, or torchvision's, e.g. its MS-COCO one), with as many
    outputs as the file's last layer; the auxiliary head, if stored, is dropped. A file of another
    network is a clear error naming it."""
    state = _state_dict(path)
    head = state.get("classifier.4.weight") if isinstance(state, dict) else None
    if head is None:
        raise ConfigError(f"{path}: not a DeepLabV3 state dict (no classifier.4.weight)")
    net = build_network(replace(settings, pretrained=RANDOM_INIT), head.shape[0])
    state = {k: v for k, v in state.items() if not k.startswith("aux_classifier.")}
    wanted = net.state_dict()
    missing = [k for k in wanted if k not in state or state[k].shape != wanted[k].shape]
    unexpected = [k for k in state if k not in wanted]
    if missing or unexpected:
        raise ConfigError(f"{path}: not a DeepLabV3 with the {settings.backbone} backbone: {len(missing)} tensors "
                          f"missing or of another shape (e.g. {missing[:3]}), {len(unexpected)} unexpected "
                          f"(e.g. {unexpected[:3]})")
    net.load_state_dict(state)
    return net


def last_layer(net: nn.Module) -> nn.Conv2d:
    """The final 1x1 convolution producing the class logits."""
    return net.classifier[-1]


def replace_last_layer(net: nn.Module, num_classes: int, seed: int) -> None:
    """A fresh final convolution with `num_classes` outputs (transfer learning)."""
    torch.manual_seed(seed)
    old = last_layer(net)
    net.classifier[-1] = nn.Conv2d(old.in_channels, num_classes, 1)


class CrossEntropy:
    """The plain supervised objective of segmentation, its classes weighted by `weight` (float (K,), or None:
    unweighted); richer ones (semi.S4GAN) keep this interface."""

    def __init__(self, weight: Tensor | None = None):
        self.weight = weight

    def loss(self, net: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
        """images: float (B, 3, H, W) normalised; labels: int64 (B, H, W) -> scalar loss."""
        out = net(images)["out"]
        weight = None if self.weight is None else self.weight.to(out.device)
        return F.cross_entropy(out, labels, weight=weight, ignore_index=IGNORE)

    def after_step(self) -> None:
        """Called after each optimiser step of the network."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class BatchSchedule:
    """Which images each optimiser step trains on: shuffled passes over the n training images (pass p's order
    drawn from (seed, p), so a resumed run continues where it stopped), cut into batches of `batch`, cycled
    for as many steps as asked. A last batch of one is dropped and a single image is shown twice per batch
    (batch norm after DeepLab's global pooling needs two samples). Under data parallelism each of the
    `world` ranks takes its share of every step's batch (at least two images), so a step is the same
    global batch whatever the number of ranks."""

    def __init__(self, n: int, batch: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.batch, self.seed, self.rank, self.world = n, batch, seed, rank, world
        size = min(batch, n)
        self.per_pass = 1 if n == 1 else n // size + (n % size > 1)   # batches of one are dropped
        self._pass = (-1, [])

    def _chunks(self, index: int) -> list[Tensor]:
        if self._pass[0] != index:
            if self.n == 1:
                chunks = [torch.zeros(2, dtype=torch.int64)]
            else:
                order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + index))
                chunks = [c for c in order.split(min(self.batch, self.n)) if len(c) > 1]
            self._pass = (index, chunks)
        return self._pass[1]

    def __call__(self, step: int) -> Tensor:
        """int64 (b,): this rank's image indices for optimiser step `step` (0-based)."""
        chunk = self._chunks(step // self.per_pass)[step % self.per_pass]
        if self.world == 1:
            return chunk
        share = max(2, -(-len(chunk) // self.world))
        return chunk.roll(-self.rank * share)[:share]


def _set_train_mode(net: nn.Module) -> None:
    """Train mode, except batch norms whose parameters are all frozen keep their statistics (eval mode)."""
    net.train()
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()


SHOWN_IMAGES = 8   # test images whose predicted label maps fit() keeps at every evaluation (benchmark.qualitative)


def shown_indices(num_images: int) -> np.ndarray:
    """int64 (S,): the test images a qualitative grid shows, spread evenly over the sorted test set so that
    every cross-validation fold holds some."""
    return np.unique(np.linspace(0, num_images - 1, min(SHOWN_IMAGES, num_images)).round().astype(np.int64))


@torch.no_grad()
def predict_labels(net: nn.Module, images: Tensor, device: torch.device) -> np.ndarray:
    """uint8 (N, H, W, 3) images -> uint8 (N, H, W) the classes `net` predicts."""
    net.eval()
    return net(to_input(images.to(device)))["out"].argmax(1).byte().cpu().numpy()


def kept_predictions(run_dir: Path, evaluations: int) -> np.ndarray | None:
    """uint8 (E, S, H, W): the shown images' predictions fit() kept at each of its E evaluations in run_dir; None
    when some are missing (a run trained before they were kept)."""
    files = [Path(run_dir) / f"predictions_{e:03d}.npy" for e in range(evaluations)]
    if not all(f.is_file() for f in files):
        return None
    return np.stack([read_npy(f, "kept predictions") for f in files])


@torch.no_grad()
def evaluate(net: nn.Module, test, device: torch.device, batch: int = 16) -> np.ndarray:
    """Every test image's figures (test.figures), from which any set's metric can be pooled: int64 (N, K, K)
    confusions for LabelledImages, float (N, K, 3) keypoint figures for KeypointImages."""
    net.eval()
    out = []
    for start in range(0, len(test), batch):
        outputs = net(to_input(test.images[start:start + batch].to(device)))["out"]
        out.append(test.figures(outputs, start))
    return np.concatenate(out)


def _atomic_save(obj, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _precision(device: torch.device, amp: bool):
    """(autocast context, gradient scaler) for training: with `amp` on CUDA bf16 (or fp16 with loss scaling),
    else fp32."""
    if device.type != "cuda" or not amp:
        return contextlib.nullcontext(), torch.amp.GradScaler("cpu", enabled=False)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype), torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)


def trained_steps(run_dir: Path) -> int:
    """How many optimiser steps fit() has run in run_dir (0 before its first checkpoint)."""
    done = sorted(Path(run_dir).glob("checkpoint_*.pt"))
    return _checkpoint(done[-1], "cpu")["step"] if done else 0


def _checkpoint(path: Path, device) -> dict:
    """One of fit()'s checkpoints, its keys checked (CheckpointFormatError naming the file otherwise)."""
    state = read_torch(path, "training checkpoint", map_location=device)
    keys = {"model", "optimizer", "objective", "evaluation", "step"}
    if not isinstance(state, dict) or not keys <= set(state):
        raise CheckpointFormatError(f"{path}: expected a training checkpoint with keys {', '.join(sorted(keys))}")
    return state


def fit(net: nn.Module, train, test, settings: SegmentationSettings, run_dir: Path, objective=None,
        device: str | torch.device = "cpu", desc: str = "deeplab") -> np.ndarray | None:
    """Train `net` (its parameters with requires_grad) on `train` (LabelledImages or KeypointImages) with Adam
    for settings.steps optimiser steps (BatchSchedule) on `objective` (default:
    train.objective(settings.class_weighting)); at each of settings.evaluated_steps write run_dir/checkpoint_{i:03d}.pt and, with a test set,
    run_dir/evaluation_{i:03d}.npy (evaluate()). A rerun resumes after the last checkpoint written. On CUDA it
    trains channels-last and (settings.amp) in mixed precision; under torchrun it is data-parallel
    (DistributedDataParallel, each rank on cuda:LOCAL_RANK or the CPU, a share of every step's batch), rank 0
    writing the files the other ranks then read.
    Returns (E, N, ...), E = settings.evaluations: evaluate() of the test set at every evaluated step (None
    without a test set)."""
    if test is not None and (type(train) is not type(test) or train.num_outputs != test.num_outputs):
        raise DatasetFormatError(desc, f"training labels have {train.describe}, the test set {test.describe}")
    objective = objective or train.objective(settings.class_weighting)
    rank, world = rank_and_world()
    device = torch.device(device)
    distributed = process_group()
    if distributed and device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())   # this rank's, set by process_group
    memory_format = torch.channels_last   # faster on CUDA and, measured, on the CPU too
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    net.to(device, memory_format=memory_format)
    model = net
    if distributed:
        model = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    autocast, scaler = _precision(device, settings.amp)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=settings.lr)
    done = sorted(run_dir.glob("checkpoint_*.pt"))
    start = 0
    if done:
        state = _checkpoint(done[-1], device)
        try:
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            objective.load_state_dict(state["objective"])
        except (ValueError, RuntimeError) as error:
            raise CheckpointFormatError(f"{done[-1]}: does not fit this network and settings ({error}); "
                                        "delete the run folder to start over") from None
        start = state["evaluation"] + 1
    schedule = BatchSchedule(len(train), settings.batch_size, settings.seed, rank, world)
    ends = settings.evaluated_steps
    step = ends[start - 1] if start else 0
    if start and rank == 0:
        tqdm.write(f"{desc}: resuming after optimiser step {step} ({done[-1]})", file=sys.stderr)
    bar = tqdm(total=settings.steps, initial=step, desc=desc, unit="step", disable=rank > 0)
    for point in range(start, settings.evaluations):
        torch.manual_seed(settings.seed * 100_003 + point)  # dropout
        _set_train_mode(net)
        for step in range(step, ends[point]):
            idx = schedule(step)
            images = to_input(train.images[idx].to(device)).contiguous(memory_format=memory_format)
            with autocast:
                loss = objective.loss(model, images, train.labels[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            objective.after_step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        step = ends[point]
        if rank == 0:
            if test is not None:
                figures = evaluate(net, test, device)
                atomic_write(run_dir / f"evaluation_{point:03d}.npy", lambda tmp: np.save(tmp, figures))
                if isinstance(test, LabelledImages):
                    shown = predict_labels(net, test.images[shown_indices(len(test))], device)
                    atomic_write(run_dir / f"predictions_{point:03d}.npy", lambda tmp: np.save(tmp, shown))
            _atomic_save({"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                          "objective": objective.state_dict(), "evaluation": point, "step": step,
                          "settings": asdict(settings)}, run_dir / f"checkpoint_{point:03d}.pt")
            if not settings.keep_all_checkpoints and point > 0:
                (run_dir / f"checkpoint_{point - 1:03d}.pt").unlink(missing_ok=True)
        barrier()
    bar.close()
    if test is None:
        return None
    return np.stack([read_npy(run_dir / f"evaluation_{e:03d}.npy", "evaluation") for e in range(settings.evaluations)])
