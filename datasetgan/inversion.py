"""GAN inversion: find a latent (and optionally noise) with which the generator redraws a given image,
so that real annotated images can train the Style Interpreter (as EditGAN does).

Sample where you annotate: the interpreter labels the factory's samples, whose latents are one w per
image (z mapped, truncated) and whose noise maps are drawn from each sample's seed. So by default an
image is inverted into W (one w for every layer, not a free w+ per layer) under noise drawn from a
seed of its own, the factory's noise mode, and its features are then those of a sample the factory
could have drawn. A free w+ fits closer but lands where the factory never samples.

The loss is pixel MSE plus MSE of 4x average-pooled images (which keeps the optimisation pulling
on the overall layout when fine detail cannot be matched). Every image of a batch is optimised
independently: the loss is a sum over images and Adam works per element. From the mean w alone some
images stay in a poor local minimum (on the toy GAN one of 16 at 19.6 dB; 22.3 dB with 6 starts);
with `starts` > 1 each image is first probed from several starts and goes on from the best one.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from datasetgan.backbone import Backbone
from inverse_graphics.camera import assert_shape


SPACES = ("w", "w+")


@dataclass(frozen=True)
class InversionSettings:
    """Optimisation of w (space "w": one for every layer) or w+ ("w+": one per layer) from the mean w; with
    optimize_noise the noise maps are free too (starting from the images' seeded noise)."""

    steps: int = 300
    lr: float = 0.05
    pooled_weight: float = 1.0
    space: str = "w"
    optimize_noise: bool = False
    mean_samples: int = 2000  # z samples averaged for the starting w
    starts: int = 1           # 1: from the mean w; N: also from the w of z seeds 0..N-2, each image going on from
    probe_steps: int = 50     # ... the start whose loss is lowest after probe_steps steps (under fixed noise)

    def __post_init__(self):
        if self.space not in SPACES:
            raise ValueError(f"inversion space must be one of {', '.join(SPACES)}, got {self.space!r}")
        if self.starts < 1 or self.probe_steps < 1:
            raise ValueError(f"inversion starts and probe_steps must be at least 1, got {self.starts}, "
                             f"{self.probe_steps}")


@dataclass(frozen=True)
class Inversion:
    """ws: float (B, num_ws, w_dim) (all rows equal in space "w"); noise_seeds: the seed of each image's noise
    maps (Backbone.noise), or None for the generator's constant noise; noise: per layer float (B, 1, R, R) when
    optimised, else None (the seeds' maps); image: float (B, 3, R, R) the reconstruction; mse: float (B,) per-pixel
    MSE in [-1, 1] units; psnr: float (B,) in dB for images scaled to [0, 1]; start: int64 (B,) the start each image
    went on from (0: the mean w, k: the w of z seed k-1)."""

    ws: Tensor
    noise_seeds: list[int] | None
    noise: list[Tensor] | None
    image: Tensor
    mse: Tensor
    psnr: Tensor
    start: Tensor


def mean_ws(backbone: Backbone, samples: int) -> Tensor:
    """float (num_ws, w_dim): the average untruncated w+ over `samples` fixed z (seeds 0..samples-1)."""
    with torch.no_grad():
        z = backbone.z(list(range(samples)))
        return backbone.generator.mapping(z).mean(0)


def invert(backbone: Backbone, images: Tensor, settings: InversionSettings = InversionSettings(),
           noise_seeds: list[int] | None = None, progress: bool = True) -> Inversion:
    """images: float (B, 3, R, R) in [-1, 1] -> the Inversion that redraws them. noise_seeds: one per image, whose
    seeded noise maps (the factory's noise mode) the image is redrawn with; None: the generator's constant noise
    (or seeds 0..B-1 when the noise is optimised)."""
    r = backbone.resolution
    assert_shape(images, (None, 3, r, r), "images")
    b = images.shape[0]
    if noise_seeds is None and settings.optimize_noise:
        noise_seeds = list(range(b))
    if noise_seeds is not None and len(noise_seeds) != b:
        raise ValueError(f"one noise seed per image: {b} images, {len(noise_seeds)} seeds")
    images = images.to(backbone.device)
    candidates = _starts(backbone, settings)
    noise = None if noise_seeds is None else backbone.noise(noise_seeds)
    chosen = torch.zeros(b, dtype=torch.long, device=images.device)
    if len(candidates) > 1:   # probe every start on every image (start-major batch), keep each image's best
        k = len(candidates)
        probe = candidates.repeat_interleave(b, 0).requires_grad_(True)
        repeated = None if noise is None else [n.repeat(k, 1, 1, 1) for n in noise]
        _optimise(backbone, probe, images.repeat(k, 1, 1, 1), repeated, [], settings, settings.probe_steps,
                  "inversion starts" if progress else None)
        with torch.no_grad():
            recon = backbone.synthesize(probe.expand(-1, backbone.num_ws, -1), repeated).image
            chosen = _per_image_loss(recon, images.repeat(k, 1, 1, 1), settings.pooled_weight).view(k, b).argmin(0)
    free = candidates[chosen].clone().requires_grad_(True)
    if settings.optimize_noise:
        noise = [n.requires_grad_(True) for n in noise]
    _optimise(backbone, free, images, noise, noise if settings.optimize_noise else [], settings, settings.steps,
              "inversion" if progress else None)
    with torch.no_grad():
        final = [n.detach() for n in noise] if noise is not None else None
        ws = free.detach().expand(-1, backbone.num_ws, -1).clone()
        recon = backbone.synthesize(ws, final).image
        mse = (recon - images).square().mean([1, 2, 3])
        psnr = 10 * torch.log10(4 / mse.clamp_min(1e-12))  # [-1, 1] has a peak-to-peak of 2
    return Inversion(ws, noise_seeds, final if settings.optimize_noise else None, recon, mse, psnr, chosen.cpu())


def _starts(backbone: Backbone, settings: InversionSettings) -> Tensor:
    """float (starts, 1 or num_ws, w_dim): the mean w, then the (untruncated) w of z seeds 0..starts-2."""
    start = mean_ws(backbone, settings.mean_samples)[None]
    if settings.starts > 1:
        with torch.no_grad():
            start = torch.cat([start, backbone.generator.mapping(backbone.z(list(range(settings.starts - 1))))])
    return start[:, :1] if settings.space == "w" else start


def _optimise(backbone: Backbone, free: Tensor, images: Tensor, noise: list[Tensor] | None, free_noise: list[Tensor],
              settings: InversionSettings, steps: int, desc: str | None) -> None:
    """Adam on free (B, 1 or num_ws, w_dim; W: one w broadcast to every layer) and the free_noise maps, in place."""
    optimizer = torch.optim.Adam([free, *free_noise], lr=settings.lr, betas=(0.9, 0.999))
    for _ in tqdm(range(steps), desc=desc, unit="step", disable=desc is None):
        recon = backbone.synthesize(free.expand(-1, backbone.num_ws, -1), noise, grad=True).image
        loss = _per_image_loss(recon, images, settings.pooled_weight).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():   # keep free noise maps unit Gaussian so they cannot absorb the image
            for n in free_noise:
                n.sub_(n.mean([1, 2, 3], keepdim=True)).div_(n.std([1, 2, 3], keepdim=True) + 1e-8)


def _per_image_loss(recon: Tensor, target: Tensor, pooled_weight: float) -> Tensor:
    """float (B,): pixel MSE plus weighted MSE of 4x average-pooled images."""
    pixel = (recon - target).square().mean([1, 2, 3])
    pooled = (F.avg_pool2d(recon, 4) - F.avg_pool2d(target, 4)).square().mean([1, 2, 3])
    return pixel + pooled_weight * pooled
