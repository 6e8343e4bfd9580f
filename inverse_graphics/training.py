"""Training the reconstructor through the renderer: the prediction from one view is rendered from
the camera of a view of the same car (itself, or another one when the views have groups) and
compared with that view's image, mask, part labels and keypoints. Camera refinement, when on,
corrects a view's own camera only (the network sees only the input view).

A run folder holds training.pt (everything needed to resume, written atomically every
`checkpoint_every` steps) and reconstructor.pt (the model alone, float16, for reconstruct()).
The batch of step s is drawn from a generator seeded by (seed, s), so a resumed run sees the
same batches as an uninterrupted one.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from datasources.base import CheckpointFormatError
from datasources.classes import CAR_12
from datasources.files import atomic_write, read_torch

from .camera import Cameras, look_at
from .losses import (LossWeights, colour_loss, deformation_loss, flatten_loss, iou_loss, keypoint_loss,
                     laplacian_loss, part_loss, perceptual_loss, weighted_sum)
from .rasterizer import RasterSettings
from .reconstructor import Reconstructor, ReconstructorConfig, save_reconstructor
from .render import render_uv_mesh
from .views import Batch, Views

CAMERA_RANGE = (15.0, 10.0, 0.1)  # refinement reach: azimuth, elevation (degrees), log distance
LEGACY_SETTINGS = {"keypoint_loss": "squared"}  # what runs from before these settings existed did (a resume compares)


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation of one run (GANverse3D: Adam 1e-4, batch 16); stored with its checkpoints."""

    batch: int = 16
    lr: float = 1e-4
    seed: int = 0
    refine_camera: bool = False  # let the network correct each view's camera within CAMERA_RANGE
    sigma: float = 1.0  # soft-silhouette blur, squared pixels (RasterSettings.sigma)
    keypoint_loss: str = "cauchy"  # or "distance", "squared" (losses.keypoint_loss)
    keypoint_scale: float = 0.05  # "cauchy": where a label's pull peaks, a share of the image side
    weights: LossWeights = field(default_factory=LossWeights)


def keypoint_loss_name(settings: dict) -> str:
    """The keypoint loss of a run's saved settings as `3d eval` names it: "cauchy 0.05", "distance" or "squared"
    (a run saved before the option read as LEGACY_SETTINGS says)."""
    full = {**asdict(TrainSettings()), **LEGACY_SETTINGS, **settings}
    return full["keypoint_loss"] + (f" {full['keypoint_scale']:g}" if full["keypoint_loss"] == "cauchy" else "")


def view_cameras(params: Tensor, image_size: int, delta: Tensor | None = None) -> Cameras:
    """params: float (B, 4) azimuth, elevation, distance, fov; delta: float (B, 3) in (-1, 1) scaled
    by CAMERA_RANGE, or None for the cameras as given."""
    az, el, dist, fov = params.unbind(1)
    if delta is not None:
        az = az + CAMERA_RANGE[0] * delta[:, 0]
        el = el + CAMERA_RANGE[1] * delta[:, 1]
        dist = dist * torch.exp(CAMERA_RANGE[2] * delta[:, 2])
    return look_at(az, el, dist, fov, image_size)


def loss_terms(model: Reconstructor, images: Tensor, batch: Batch, settings: TrainSettings,
               same_view: Tensor | None = None, feature_maps=None) -> dict[str, Tensor]:
    """Every loss term (unweighted) of predicting from images: float (B, 3, S, S) and rendering into
    the views of batch; same_view: bool (B,) where batch is the input view itself (None: all); feature_maps:
    the perceptual term's network (toy_feature_maps), or None for no such term."""
    pred = model(images)
    size = model.config.image_size
    delta = None
    if settings.refine_camera:
        delta = pred.camera_delta if same_view is None else pred.camera_delta * same_view[:, None]
    cameras = view_cameras(batch.cameras, size, delta)
    maps = torch.cat([pred.texture, pred.part_logits], 1)
    raster = RasterSettings(image_size=size, sigma=settings.sigma)
    rendered = render_uv_mesh(pred.vertices, model.template_faces, model.template_face_uvs, maps, cameras, raster)
    mask = batch.labels > 0
    overlap = rendered.covered & mask
    terms = {
        "iou": iou_loss(rendered.silhouette, mask.float()),
        "colour": colour_loss(rendered.maps[:, :3], batch.images, overlap),
        "parts": part_loss(rendered.maps[:, 3:], batch.labels, overlap),
        "keypoints": keypoint_loss(pred.keypoints, cameras, batch.keypoints, settings.keypoint_loss,
                                   settings.keypoint_scale),
        "laplacian": laplacian_loss(pred.vertices, model.template_laplacian),
        "flatten": flatten_loss(pred.vertices, model.template_faces, model.template_edge_faces),
        "deformation": deformation_loss(pred.offsets),
    }
    if feature_maps is not None:
        terms["perceptual"] = perceptual_loss(feature_maps, rendered.maps[:, :3], batch.images, rendered.covered)
    return terms


def toy_feature_maps(run_dir: Path, device: torch.device):
    """The perceptual term's network, as no ImageNet VGG can be downloaded: datasetgan.quality's feature net
    trained on 1,000 labelled toy renders (deterministic), kept in run_dir/feature_net.pt so that a resumed
    run does not train it again. Returns images float (B, 3, S, S) in [0, 1] -> its 4 feature maps."""
    from datasetgan.quality import FeatureNet, QualitySettings, train_feature_net

    path = run_dir / "feature_net.pt"
    if path.exists():
        net = FeatureNet(len(CAR_12))
        net.load_state_dict(read_torch(path, "perceptual feature net"))
    else:
        net = train_feature_net(QualitySettings())
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: torch.save(net.state_dict(), tmp))
    net = net.to(device).eval().requires_grad_(False)
    return lambda images: net.feature_maps(images * 2 - 1)


def _differences(saved: dict, wanted: dict, defaults: dict, prefix: str = "") -> list[str]:
    """'key: saved -> wanted' for every leaf where two nested option dicts differ; a key that saved lacks (an
    option added after it was written) counts as its value in defaults."""
    out = []
    for key in sorted(set(saved) | set(wanted)):
        a, b = saved.get(key, defaults.get(key)), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, defaults.get(key) or {}, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a} -> {b}")
    return out


def _group_members(views: Views) -> list[Tensor]:
    """Per view, int64 (n,) the rows of all views of its group (itself alone when views.groups is None)."""
    groups = views.groups if views.groups is not None else torch.arange(len(views))
    order = torch.argsort(groups, stable=True)
    counts = torch.unique_consecutive(groups[order], return_counts=True)[1]
    of_group = {int(groups[rows[0]]): rows for rows in order.split(counts.tolist())}
    return [of_group[g] for g in groups.tolist()]


class ReconstructorTrainer:
    """Model, optimiser and step count of one run; `train(steps)` continues from where it stopped."""

    def __init__(self, run_dir: str | Path, views: Views, config: ReconstructorConfig = ReconstructorConfig(),
                 settings: TrainSettings = TrainSettings(), device: str | torch.device = "cpu", source: str = ""):
        """source: a description of the views, kept in the checkpoints for records."""
        if views.image_size != config.image_size:
            raise ValueError(f"views are {views.image_size}x{views.image_size}, the model takes "
                             f"{config.image_size}x{config.image_size}")
        self.run_dir, self.views, self.settings, self.source = Path(run_dir), views, settings, source
        self.device = torch.device(device)
        torch.manual_seed(settings.seed)
        self.model = Reconstructor(config).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=settings.lr)
        self.step_count = 0
        self.log: list[dict[str, float]] = []
        self.members = _group_members(views)
        self.feature_maps = toy_feature_maps(self.run_dir, self.device) if settings.weights.perceptual > 0 else None
        if (self.run_dir / "training.pt").exists():
            self._resume()

    def _options(self) -> dict:
        return {"config": asdict(self.model.config), "settings": asdict(self.settings)}

    def _resume(self) -> None:
        path = self.run_dir / "training.pt"
        state = read_torch(path, "reconstructor training state", map_location=self.device)
        if not isinstance(state, dict) or not isinstance(state.get("options"), dict):
            raise CheckpointFormatError(f"{path}: not a training state of this trainer (no options)")
        try:   # the saved config as the checkpoint loader reads it (options it lacks at what they were then)
            saved = {**state["options"], "config": asdict(ReconstructorConfig.from_dict(state["options"]["config"]))}
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointFormatError(f"{path}: not a training state of this trainer ({error})") from None
        defaults = {"config": asdict(ReconstructorConfig()), "settings": {**asdict(TrainSettings()), **LEGACY_SETTINGS}}
        changed = _differences(saved, self._options(), defaults)
        if changed:
            raise CheckpointFormatError(f"{path}: a run with other options ({'; '.join(changed)}); "
                                        "repeat them or use another run folder")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.step_count, self.log = state["step"], state["log"]
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise CheckpointFormatError(f"{path}: not a training state of this trainer ({error})") from None

    def checkpoint(self) -> None:
        """Write training.pt and reconstructor.pt, each atomically."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = {"options": self._options(), "step": self.step_count, "log": self.log,
                 "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
        atomic_write(self.run_dir / "training.pt", lambda tmp: torch.save(state, tmp))
        save_reconstructor(self.run_dir / "reconstructor.pt", self.model,
                           extra={"step": self.step_count, "settings": asdict(self.settings), "source": self.source})

    def step(self) -> dict[str, float]:
        """One Adam step on the batch of this step number; returns the weighted total and each term."""
        self.model.train()
        rng = torch.Generator().manual_seed(self.settings.seed * 1_000_003 + self.step_count)
        index = torch.randint(len(self.views), (self.settings.batch,), generator=rng)
        partner = torch.stack([m[torch.randint(len(m), (), generator=rng)] for m in (self.members[i] for i in index)])
        targets = self.views.batch(partner, self.device)
        images = self.views.batch(index, self.device).images
        terms = loss_terms(self.model, images, targets, self.settings, (partner == index).to(self.device),
                           self.feature_maps)
        total = weighted_sum(terms, self.settings.weights)
        if not math.isfinite(total.item()):
            values = {k: v.item() for k, v in terms.items()}
            raise FloatingPointError(f"step {self.step_count}: non-finite loss {values}")
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.step_count += 1
        record = {"total": total.item(), **{k: v.item() for k, v in terms.items()}}
        self.log.append(record)
        return record

    def train(self, steps: int, checkpoint_every: int = 100) -> None:
        """Run until `steps` steps are done in all, checkpointing every checkpoint_every and at the end."""
        bar = tqdm(total=steps, initial=self.step_count, desc="reconstructor", unit="step")
        while self.step_count < steps:
            record = self.step()
            bar.update(1)
            bar.set_postfix(loss=f"{record['total']:.3f}", iou=f"{record['iou']:.3f}")
            if self.step_count % checkpoint_every == 0 or self.step_count == steps:
                self.checkpoint()
        bar.close()
