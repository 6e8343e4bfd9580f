"""The Style Interpreter: an ensemble of per-pixel MLPs on GAN features, as the official DatasetGAN code has it,
trained and evaluated without ever holding full-resolution features.

Official behaviour kept (nv-tlabs/datasetGAN_release, train_interpreter.py):
- member: fewer than 32 classes Linear(C,128)-ReLU-BN(128)-Linear(128,32)-ReLU-BN(32)-Linear(32,K), else
  Linear(C,256)-ReLU-BN(256)-Linear(256,128)-ReLU-BN(128)-Linear(128,K) (state-dict keys `layers.N.*` as there);
  linear weights normal(0, 0.02), zero biases; Adam 1e-3, minibatches of 64 pixels, cross-entropy, up to 100
  epochs; early stopping from epoch 4 on (0-based; the official `epoch > 3`) once more than 50 consecutive
  minibatches fail to set a new best loss; 10 members differing only by seed (init and shuffle order);
- per image, classes with fewer than 30 pixels are relabelled background (0) before training: the official
  code's fixed rule, written for its 384x512 car labels (0.015% of the map), is here scaled by label area by
  default (`small_class_rule`), since at 64x64 a fixed 30 pixels (0.73%) deletes every light, plate, handle and
  mirror of a toy car;
- training features are the resized features at the training pixels, stored in float16 as the official does;
- labels: per-pixel majority vote of the members' argmax (ties to the smallest class, as scipy.stats.mode);
  uncertainty: JS divergence H(mean softmax) - mean H(softmax) in nats; image score: mean of the top 10% of it.
Deviations: a training image contributes a sample of its pixels (`pixels_per_image`, every class at least
`min_samples_per_region` of them or all it has) instead of all of them (None restores the official: 160 GB for 16
face images); pixels labelled IGNORE (255) are never used; a final minibatch of one pixel is skipped (batch norm
cannot train on it); `class_weighting` can weigh the cross-entropy's classes (unweighted by default, as
the official). Keypoint mode (not in the official release): one output per keypoint regressing a Gaussian
heatmap (`heatmap_sigma`) with an L2 loss, all zero for a keypoint that is not visible; the ensemble's mean
heatmap's maximum is the keypoint, and its value (about 1 on a visible keypoint, about 0 otherwise) its visibility.

Evaluation is linear-first (datasetgan.linear_first); `naive_member_outputs` and `predict_naive` are the official
computation, kept only as the reference for tests and benchmarks.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from datasetgan.linear_first import FoldedEnsemble, LabelGrid, gather_features, member_outputs_in_strips
from datasetgan.stylegan1 import STYLEGAN1_PRESETS
from datasources.base import IGNORE, CheckpointFormatError
from datasources.classes import CLASS_WEIGHTINGS, class_weights
from datasources.files import atomic_write, read_torch
from inverse_graphics.camera import assert_shape

MODES = ("segmentation", "keypoints")
SMALL_CLASS_RULES = ("scaled", "fixed")
OFFICIAL_LABEL_AREA = 384 * 512   # the car label map the official 30-pixel rule was written for


@dataclass(frozen=True)
class InterpreterConfig:
    """Settings of one Style Interpreter; each default is the official value unless its comment says otherwise."""

    num_classes: int  # K: classes, background 0 included (segmentation), or keypoints (keypoint mode)
    feature_channels: tuple[int, ...]  # C_l of every feature map, in the backbone's order (sum: C)
    resolution: int  # every map is resized to resolution x resolution (the official dim[1])
    crop_rows: tuple[int, int] | None = None  # rows of that grid kept as the label map (car: (64, 448))
    mode: str = "segmentation"  # or "keypoints"
    ensemble_size: int = 10
    batch_size: int = 64  # pixels per minibatch
    lr: float = 1e-3
    max_epochs: int = 100
    early_stopping_start_epoch: int = 4  # minibatch losses count toward early stopping from this epoch (0-based)
    early_stopping_patience: int = 50  # stop once more than this many consecutive minibatches set no new best
    min_pixels: int = 30  # per image, classes with fewer pixels (at a 384x512 label map, see small_class_pixels)
    #                      become background
    small_class_rule: str = "scaled"  # ours: min_pixels scaled by label area; "fixed": min_pixels at any size
    #                                   (the official rule)
    pixels_per_image: int | None = 8192  # ours: training pixels sampled per image; None: all (official)
    class_weighting: str = "none"  # official: unweighted cross-entropy; ours: "inverse_sqrt_frequency" weighs each
    #                               class by its training pixel frequency^-1/2 (datasources.classes.class_weights)
    min_samples_per_region: int = 256  # ours: each class (keypoint neighbourhood) gets this many, or all it has
    heatmap_sigma: float = 2.0  # keypoint mode: Gaussian heatmap std in label pixels (ours)
    calibration_samples: int = 256  # keypoint mode (ours): generated samples that calibrate visible_peaks
    visible_peaks: tuple[float, ...] | None = None  # keypoint mode (ours): per keypoint, the mean-heatmap peak from
    #                                                 which a generated keypoint counts as visible (set after training
    #                                                 by datasetgan.pipeline.calibrate_visibility; None: 0.5)
    strip_pixels: int = 2048  # evaluation works on strips of about this many label pixels (bounds memory)
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown interpreter mode {self.mode!r}; valid: {', '.join(MODES)}")
        top, bottom = self.crop_rows or (0, self.resolution)
        if not 0 <= top < bottom <= self.resolution:
            raise ValueError(f"crop_rows {self.crop_rows} not inside 0..{self.resolution}")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ValueError(f"unknown interpreter class_weighting {self.class_weighting!r}; valid: "
                             f"{', '.join(CLASS_WEIGHTINGS)}")
        if self.small_class_rule not in SMALL_CLASS_RULES or self.min_pixels < 0:
            raise ValueError(f"interpreter small-class rule: min_pixels must be at least 0 and small_class_rule one "
                             f"of {', '.join(SMALL_CLASS_RULES)}; got {self.min_pixels} and {self.small_class_rule!r}")

    @property
    def small_class_pixels(self) -> float:
        """Per training image, a class with fewer pixels than this becomes background: min_pixels scaled from the
        official 384x512 label map to this one's area ("scaled": 0.625 at 64x64), or min_pixels ("fixed")."""
        if self.small_class_rule == "fixed":
            return float(self.min_pixels)
        h, w = self.grid.shape
        return self.min_pixels * h * w / OFFICIAL_LABEL_AREA

    @classmethod
    def for_stylegan1(cls, preset: str, num_classes: int) -> InterpreterConfig:
        """The official settings for a StyleGAN1 preset (cat, car, face): its feature channels and label grid."""
        if preset not in STYLEGAN1_PRESETS:
            raise KeyError(f"unknown StyleGAN1 preset {preset!r}; valid: {', '.join(STYLEGAN1_PRESETS)}")
        p = STYLEGAN1_PRESETS[preset]
        return cls(num_classes, tuple(p.config.feature_channels), p.label_resolution, p.crop_rows)

    @property
    def grid(self) -> LabelGrid:
        top, bottom = self.crop_rows or (0, self.resolution)
        return LabelGrid(self.resolution, top, bottom)

    @property
    def hidden_sizes(self) -> tuple[int, int]:
        """(H1, H2) of a member: (128, 32) below 32 outputs, else (256, 128)."""
        return (128, 32) if self.num_classes < 32 else (256, 128)


class PixelClassifier(nn.Module):
    """One member. x: float (N, C) features of N pixels -> float (N, K) logits (or heatmap values)."""

    def __init__(self, in_channels: int, num_outputs: int, hidden: tuple[int, int]):
        super().__init__()
        h1, h2 = hidden
        self.layers = nn.Sequential(nn.Linear(in_channels, h1), nn.ReLU(), nn.BatchNorm1d(h1),
                                    nn.Linear(h1, h2), nn.ReLU(), nn.BatchNorm1d(h2), nn.Linear(h2, num_outputs))

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)

    def reset(self, generator: torch.Generator) -> None:
        """The official init: linear weights normal(0, 0.02), biases 0; batch norm as PyTorch's default."""
        for layer in self.layers:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, 0.0, 0.02, generator=generator)
                nn.init.zeros_(layer.bias)

    @torch.no_grad()
    def folded_layers(self) -> list[tuple[Tensor, Tensor]]:
        """The three linear layers as (weight (out, in), bias (out,)) with each eval-mode batch norm folded into the
        linear layer after it: Linear(BN(r)) = (W diag(s)) r + (W t + b), BN(r) = s r + t."""
        first, _, bn1, second, _, bn2, third = self.layers
        out = [(first.weight, first.bias)]
        for bn, linear in ((bn1, second), (bn2, third)):
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            shift = bn.bias - bn.running_mean * scale
            out.append((linear.weight * scale, linear.bias + linear.weight @ shift))
        return out


class PixelEnsemble(nn.Module):
    """M members. x: float (N, C) -> float (M, N, K) every member's outputs."""

    def __init__(self, config: InterpreterConfig):
        super().__init__()
        self.members = nn.ModuleList(
            PixelClassifier(sum(config.feature_channels), config.num_classes, config.hidden_sizes)
            for _ in range(config.ensemble_size))

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([member(x) for member in self.members])

    @torch.no_grad()
    def folded(self) -> FoldedEnsemble:
        """The members in eval mode, batch norm folded, arranged for linear-first evaluation."""
        per_layer = zip(*(member.folded_layers() for member in self.members))  # per layer: (weight, bias) per member
        (w1, b1), (w2, b2), (w3, b3) = (zip(*layer) for layer in per_layer)
        return FoldedEnsemble(tuple(w.detach() for w in w1), torch.cat(b1), torch.stack(w2).transpose(1, 2),
                              torch.stack(b2), torch.stack(w3).transpose(1, 2), torch.stack(b3))


@dataclass(frozen=True)
class Prediction:
    """The ensemble's output for a batch of B generated images.

    labels: int64 (B, H, W) in [0, K): majority vote of the members' argmax (segmentation; None for keypoints).
    js: float (B, H, W) >= 0: JS divergence of the members' softmaxes in nats (segmentation).
    score: float (B,): mean of the top 10% of js per image; higher is less certain (segmentation).
    keypoints: float (B, K, 2) (x, y): pixel centre of each mean heatmap's maximum (keypoint mode; else None).
    peaks: float (B, K): the value of that maximum, about 1 for a visible keypoint and 0 for one that is not.
    maps: float (B, K, H, W): mean softmax (segmentation) or mean heatmap (keypoints), only when asked.
    """

    labels: Tensor | None = None
    js: Tensor | None = None
    score: Tensor | None = None
    keypoints: Tensor | None = None
    peaks: Tensor | None = None
    maps: Tensor | None = None


def majority_vote(member_labels: Tensor, num_classes: int) -> Tensor:
    """member_labels: int64 (M, N) in [0, K) -> int64 (N,): the most frequent label, ties to the smallest."""
    counts = torch.zeros(num_classes, member_labels.shape[1], dtype=torch.int32, device=member_labels.device)
    counts.scatter_add_(0, member_labels, torch.ones_like(member_labels, dtype=torch.int32))
    return counts.argmax(0)


def js_divergence(logits: Tensor) -> Tensor:
    """logits: float (M, N, K) -> float (N,) >= 0: H(mean_m p_m) - mean_m H(p_m), p_m = softmax, in nats."""
    log_p = logits.log_softmax(-1)
    p = log_p.exp()
    member_entropy = -(p * log_p).sum(-1).mean(0)
    mean_p = p.mean(0)
    return -torch.xlogy(mean_p, mean_p).sum(-1) - member_entropy


def image_score(js: Tensor, fraction: float = 0.1) -> Tensor:
    """js: float (B, H, W) -> float (B,): the mean of each image's top `fraction` of pixel values (at least one)."""
    values = js.flatten(1)
    return values.topk(max(1, int(values.shape[1] * fraction)), dim=1).values.mean(1)


class _Collector:
    """Turns member outputs (M, n, K) of strips of label rows into a Prediction."""

    def __init__(self, batch: int, config: InterpreterConfig, keep_maps: bool, device: torch.device):
        self.config = config
        h, w = config.grid.shape
        k = config.num_classes
        self.maps = torch.empty(batch, k, h, w, device=device) if keep_maps else None
        if config.mode == "segmentation":
            self.labels = torch.empty(batch, h, w, dtype=torch.int64, device=device)
            self.js = torch.empty(batch, h, w, device=device)
        else:
            self.best = torch.full((batch, k), -math.inf, device=device)
            self.where = torch.zeros(batch, k, dtype=torch.int64, device=device)

    def add(self, b: int, rows: slice, outputs: Tensor) -> None:
        k, w = self.config.num_classes, self.config.grid.size
        h = rows.stop - rows.start
        if self.config.mode == "segmentation":
            self.labels[b, rows] = majority_vote(outputs.argmax(-1), k).view(h, w)
            self.js[b, rows] = js_divergence(outputs).view(h, w)
            mean = outputs.softmax(-1).mean(0) if self.maps is not None else None
        else:
            mean = outputs.mean(0)
            value, index = mean.max(0)
            better = value > self.best[b]
            self.best[b] = torch.where(better, value, self.best[b])
            self.where[b] = torch.where(better, index + rows.start * w, self.where[b])
        if self.maps is not None:
            self.maps[b, :, rows] = mean.T.reshape(k, h, w)

    def result(self) -> Prediction:
        if self.config.mode == "segmentation":
            return Prediction(labels=self.labels, js=self.js, score=image_score(self.js), maps=self.maps)
        w = self.config.grid.size
        xy = torch.stack([self.where % w, self.where // w], -1).float() + 0.5
        return Prediction(keypoints=xy, peaks=self.best, maps=self.maps)


def _check_features(features: Sequence[Tensor], config: InterpreterConfig, batched: bool, name: str) -> None:
    if len(features) != len(config.feature_channels):
        raise ValueError(f"{name}: expected {len(config.feature_channels)} feature maps, got {len(features)}")
    batch = (features[0].shape[0],) if batched else ()
    for i, (f, c) in enumerate(zip(features, config.feature_channels)):
        assert_shape(f, (*batch, c, f.shape[-1], f.shape[-1]), f"{name}[{i}]")


@torch.no_grad()
def predict(ensemble: PixelEnsemble, features: Sequence[Tensor], config: InterpreterConfig,
            keep_maps: bool = False) -> Prediction:
    """Labels (or keypoints) and uncertainty of generated images, linear-first in strips (bounded memory).

    features: per layer float (B, C_l, R_l, R_l) at native resolution, in config.feature_channels' order, on the
        ensemble's device. The ensemble is evaluated as in eval mode whatever its mode.
    Returns a Prediction on that device, H x W = config.grid.shape.
    """
    _check_features(features, config, batched=True, name="features")
    collector = _Collector(features[0].shape[0], config, keep_maps, features[0].device)
    mlp = ensemble.folded()
    for b, rows, outputs in member_outputs_in_strips(mlp, list(features), config.grid, config.strip_pixels):
        collector.add(b, rows, outputs)
    return collector.result()


@torch.no_grad()
def naive_member_outputs(ensemble: PixelEnsemble, features: Sequence[Tensor], config: InterpreterConfig) -> Tensor:
    """The official evaluation, kept as the reference for tests and benchmarks: resize every map to the grid
    (bilinear, align_corners=False), keep the crop rows, concatenate into one (C, H, W) tensor, run every member on
    every pixel. Maps are resized a few channels at a time straight into that tensor (the same numbers, without
    GB-sized temporaries).

    features: per layer float (B, C_l, R_l, R_l) on the ensemble's device (in eval mode).
    Returns float (M, B * H * W, K), pixels in row-major order.
    """
    _check_features(features, config, batched=True, name="features")
    if ensemble.training:
        raise ValueError("the ensemble must be in eval mode (train_ensemble and load_ensemble return it so)")
    grid = config.grid
    outputs = []
    for b in range(features[0].shape[0]):
        x = features[0].new_empty(sum(config.feature_channels), *grid.shape, dtype=torch.float32)
        start = 0
        for chunk in (chunk for f in features for chunk in f[b].split(8)):
            resized = F.interpolate(chunk[None].float(), size=(grid.size, grid.size), mode="bilinear",
                                    align_corners=False)
            x[start:start + len(chunk)] = resized[0, :, grid.top:grid.bottom]
            start += len(chunk)
        outputs.append(ensemble(x.view(len(x), -1).T))
    return torch.cat(outputs, 1)


def predict_naive(ensemble: PixelEnsemble, features: Sequence[Tensor], config: InterpreterConfig,
                  keep_maps: bool = False) -> Prediction:
    """`predict` computed the official way (naive_member_outputs): the slow reference twin."""
    outputs = naive_member_outputs(ensemble, features, config)
    batch = features[0].shape[0]
    collector = _Collector(batch, config, keep_maps, outputs.device)
    rows = slice(0, config.grid.shape[0])
    for b, image in enumerate(outputs.chunk(batch, dim=1)):
        collector.add(b, rows, image)
    return collector.result()


def drop_small_classes(labels: Tensor, min_pixels: float) -> Tensor:
    """labels: int64 (H, W) in [0, K) or IGNORE -> a copy where classes other than 0 and IGNORE with fewer than
    min_pixels pixels are background (0), as the official code does."""
    classes, counts = labels.unique(return_counts=True)
    small = classes[(counts < min_pixels) & (classes != 0) & (classes != IGNORE)]
    return torch.where(torch.isin(labels, small), 0, labels)


def gaussian_heatmaps(keypoints: Tensor, height: int, width: int, sigma: float) -> Tensor:
    """keypoints: float (..., K, 3) rows (x, y, visible) in pixel coordinates (pixel centres at integer + 0.5)
    -> float (..., K, H, W) Gaussian heatmaps exp(-d^2 / (2 sigma^2)) at the pixel centres, d the distance to the
    keypoint; all zero for a keypoint not visible (hidden or outside the image: no peak is the right answer).
    The one definition of a keypoint target: the interpreter's and the downstream networks' (benchmark)."""
    ys = torch.arange(height, dtype=keypoints.dtype, device=keypoints.device) + 0.5
    xs = torch.arange(width, dtype=keypoints.dtype, device=keypoints.device) + 0.5
    dx = (xs - keypoints[..., 0, None]).square()[..., None, :]   # (..., K, 1, W)
    dy = (ys - keypoints[..., 1, None]).square()[..., :, None]   # (..., K, H, 1)
    maps = torch.exp(-(dx + dy) / (2 * sigma ** 2))
    return maps * (keypoints[..., 2] > 0)[..., None, None]


def _regions(target: Tensor, config: InterpreterConfig) -> list[Tensor]:
    """int64 flat pixel indices of each region an image's pixels must sample: every class present
    (segmentation), or the disc of radius 3 sigma around every visible keypoint and then the whole image."""
    h, w = config.grid.shape
    if config.mode == "segmentation":
        flat = target.flatten()
        return [(flat == c).nonzero()[:, 0] for c in flat.unique() if c != IGNORE]
    near = gaussian_heatmaps(target, h, w, config.heatmap_sigma).flatten(1) >= math.exp(-4.5)  # within 3 sigma
    return [row.nonzero()[:, 0] for row in near if row.any()] + [torch.arange(h * w)]


def sample_pixels(regions: list[Tensor], budget: int | None, floor: int, generator: torch.Generator) -> Tensor:
    """regions: int64 flat pixel indices per region -> sorted distinct int64 (N,) pixels: each region gives a
    random share proportional to its size of `budget` (None: all pixels), at least `floor` or all it has."""
    total = sum(len(r) for r in regions)
    picked = []
    for region in regions:
        quota = len(region) if budget is None else min(len(region), max(floor, round(budget * len(region) / total)))
        picked.append(region[torch.randperm(len(region), generator=generator)[:quota]])
    return torch.cat(picked).unique()


def _generator(*key: int) -> torch.Generator:
    """A local generator seeded from a tuple of ints (e.g. (seed, stream, index))."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence(list(key)).generate_state(1)[0]))


def _check_target(target: Tensor, config: InterpreterConfig, i: int) -> Tensor:
    if config.mode == "segmentation":
        assert_shape(target, config.grid.shape, f"labels[{i}]")
        bad = (target < 0) | ((target >= config.num_classes) & (target != IGNORE))
        if bad.any():
            raise ValueError(f"labels[{i}]: values must be in [0, {config.num_classes}) or {IGNORE}, "
                             f"got {target[bad].unique().tolist()}")
        return drop_small_classes(target.long().cpu(), config.small_class_pixels)
    assert_shape(target, (config.num_classes, 3), f"keypoints[{i}]")
    return target.float().cpu()


class EarlyStopping:
    """The official rule: from epoch `start_epoch` on, count consecutive minibatch losses that set no new best;
    stop once the count exceeds `patience`."""

    def __init__(self, start_epoch: int, patience: int):
        self.start_epoch, self.patience = start_epoch, patience
        self.best, self.count = math.inf, 0

    def step(self, epoch: int, loss: float) -> bool:
        """Record one minibatch loss; True when training should stop."""
        if epoch < self.start_epoch:
            return False
        if loss < self.best:
            self.best, self.count = loss, 0
        else:
            self.count += 1
        return self.count > self.patience


def _loss(outputs: Tensor, targets: Tensor, weight: Tensor | None = None) -> Tensor:
    """Cross-entropy on int64 class targets (N,), its classes weighted by float (K,) `weight` (None: unweighted);
    mean squared error on float heatmap targets (N, K)."""
    if targets.dtype == torch.int64:
        return F.cross_entropy(outputs, targets, weight=weight)
    return F.mse_loss(outputs, targets)


def train_ensemble(features_per_image: Iterable[Sequence[Tensor]], labels: Sequence[Tensor],
                   config: InterpreterConfig, device: str | torch.device = "cpu",
                   progress: bool = True) -> PixelEnsemble:
    """Train the ensemble on annotated generated images, holding only the sampled pixels' features.

    features_per_image: per image, per layer float (C_l, R_l, R_l) at native resolution; iterated once, so it may
        be a generator that synthesizes each image's features on demand.
    labels: per image int64 (H, W) in [0, K) or IGNORE (segmentation), or float (K, 3) keypoints (x, y, visible)
        in label pixels, pixel centres at integer + 0.5 (keypoint mode); H x W = config.grid.shape.
    Returns the ensemble in eval mode, on `device`.
    """
    targets = [_check_target(t, config, i) for i, t in enumerate(labels)]
    pixels = [sample_pixels(_regions(t, config), config.pixels_per_image, config.min_samples_per_region,
                            _generator(config.seed, 0, i)) for i, t in enumerate(targets)]
    if sum(len(p) for p in pixels) < 2:
        raise ValueError(f"labels: {sum(len(p) for p in pixels)} labelled pixels in all; training needs two or more")
    width = config.grid.size
    x = torch.empty(sum(len(p) for p in pixels), sum(config.feature_channels), dtype=torch.float16)
    seen, start = 0, 0
    for i, features in enumerate(tqdm(features_per_image, total=len(labels), desc="gathering pixel features",
                                      disable=not progress)):
        if i >= len(labels):
            raise ValueError(f"features_per_image: more images than the {len(labels)} labels")
        _check_features(features, config, batched=False, name=f"features_per_image[{i}]")
        stop = start + len(pixels[i])
        x[start:stop] = gather_features(list(features), pixels[i] // width, pixels[i] % width, config.grid).cpu()
        start, seen = stop, i + 1
        del features  # let this image's maps go before the iterable makes the next
    if seen != len(labels):
        raise ValueError(f"features_per_image: {seen} images for {len(labels)} labels")
    weight = None
    if config.mode == "segmentation":
        y = torch.cat([t.flatten()[p] for t, p in zip(targets, pixels)])
        weight = class_weights(y, config.num_classes, config.class_weighting)
    else:
        h = config.grid.shape[0]
        y = torch.cat([gaussian_heatmaps(t, h, width, config.heatmap_sigma).flatten(1)[:, p].T
                       for t, p in zip(targets, pixels)])

    ensemble = PixelEnsemble(config).to(device)
    bar = tqdm(ensemble.members, desc="interpreter members", disable=not progress)
    for m, member in enumerate(bar):
        generator = _generator(config.seed, 1, m)
        member.reset(generator)
        _train_member(member.to(device).train(), x, y, weight, config, generator, device, bar)
    return ensemble.eval()


def _train_member(member: PixelClassifier, x: Tensor, y: Tensor, weight: Tensor | None, config: InterpreterConfig,
                  generator: torch.Generator, device: str | torch.device, bar: tqdm) -> None:
    """Adam on shuffled minibatches until config.max_epochs or early stopping; `weight`: the cross-entropy's class
    weights (None: unweighted)."""
    optimizer = torch.optim.Adam(member.parameters(), lr=config.lr)
    stopping = EarlyStopping(config.early_stopping_start_epoch, config.early_stopping_patience)
    for epoch in range(config.max_epochs):
        order = torch.randperm(len(x), generator=generator)
        for batch in order.split(config.batch_size):
            if len(batch) < 2:
                continue
            loss = _loss(member(x[batch].to(device).float()), y[batch].to(device),
                         None if weight is None else weight.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if stopping.step(epoch, loss.item()):
                bar.set_postfix(epoch=epoch, loss=f"{loss.item():.4f}", stopped="early")
                return
        bar.set_postfix(epoch=epoch, loss=f"{loss.item():.4f}")


def save_ensemble(path: str | Path, ensemble: PixelEnsemble, config: InterpreterConfig) -> None:
    """Write the ensemble's state dict and its config (atomically: a temporary name, then a rename)."""
    atomic_write(Path(path), lambda tmp: torch.save({"config": asdict(config), "state_dict": ensemble.state_dict()}, tmp))


def load_ensemble(path: str | Path, device: str | torch.device = "cpu") -> tuple[PixelEnsemble, InterpreterConfig]:
    """Read what save_ensemble wrote (torch.load with weights_only=True); fails with CheckpointFormatError naming
    the file."""
    path = Path(path)
    saved = read_torch(path, "interpreter checkpoint", map_location=device)
    if not isinstance(saved, dict) or set(saved) != {"config", "state_dict"}:
        raise CheckpointFormatError(f"{path}: expected an interpreter checkpoint (keys config, state_dict)")
    names = {f.name for f in fields(InterpreterConfig)}
    if not isinstance(saved["config"], dict) or not set(saved["config"]) <= names:
        raise CheckpointFormatError(f"{path}: config must be a dict of InterpreterConfig fields "
                                    f"({', '.join(sorted(names))})")
    try:
        config = InterpreterConfig(**saved["config"])
        ensemble = PixelEnsemble(config)
        ensemble.load_state_dict(saved["state_dict"])
    except (TypeError, ValueError, RuntimeError) as error:
        raise CheckpointFormatError(f"{path}: weights do not fit the saved config ({error})") from None
    return ensemble.to(device).eval(), config


def load_official_members(folder: str | Path, config: InterpreterConfig) -> PixelEnsemble:
    """The official train_interpreter.py's members, folder/model_{i}.pth for i < config.ensemble_size (each a
    {"model_state_dict": ...} of an nn.DataParallel-wrapped pixel_classifier, whose layer layout ours shares), as
    an ensemble in eval mode; a missing file or one that does not fit `config` fails naming it."""
    ensemble = PixelEnsemble(config)
    for i, member in enumerate(ensemble.members):
        path = Path(folder) / f"model_{i}.pth"
        saved = read_torch(path, "official interpreter member")
        state = saved.get("model_state_dict", saved) if isinstance(saved, dict) else None
        if not isinstance(state, dict):
            raise CheckpointFormatError(f"{path}: expected {{'model_state_dict': ...}} as train_interpreter.py saves")
        try:
            member.load_state_dict({key.removeprefix("module."): value for key, value in state.items()})
        except RuntimeError as error:
            raise CheckpointFormatError(f"{path}: does not fit {config.num_classes} outputs on "
                                        f"{sum(config.feature_channels)} feature channels ({error})") from None
    return ensemble.eval()
