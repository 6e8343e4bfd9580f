"""GAN inversion: find a latent (and optionally noise) with which the generator redraws a given image,
so that real annotated images can train the Style Interpreter (as EditGAN does).

Sample where you annotate: the interpreter labels the factory's samples, whose latents are one w per
image (z mapped, truncated) and whose noise maps are drawn from each sample's seed. So by default an
image is inverted into W (one w for every layer, not a free w+ per layer) under noise drawn from a
seed of its own, the factory's noise mode, and its features are then those of a sample the factory
could have drawn. A free w+ fits closer but lands where the factory never samples.

The loss is pixel MSE plus MSE of 4x average-pooled images (which keeps the optimisation pulling
on the overall layout when fine detail cannot be matched). Every image of a batch is optimised
independently: the loss is a sum over images and Adam works per element.
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

    def __post_init__(self):
        if self.space not in SPACES:
            raise ValueError(f"inversion space must be one of {', '.join(SPACES)}, got {self.space!r}")


@dataclass(frozen=True)
class Inversion:
    """ws: float (B, num_ws, w_dim) (all rows equal in space "w"); noise_seeds: the seed of each image's noise
    maps (Backbone.noise), or None for the generator's constant noise; noise: per layer float (B, 1, R, R) when
    optimised, else None (the seeds' maps); image: float (B, 3, R, R) the reconstruction; mse: float (B,) per-pixel
    MSE in [-1, 1] units; psnr: float (B,) in dB for images scaled to [0, 1]."""

    ws: Tensor
    noise_seeds: list[int] | None
    noise: list[Tensor] | None
    image: Tensor
    mse: Tensor
    psnr: Tensor


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
    start = mean_ws(backbone, settings.mean_samples)
    free = (start[:1] if settings.space == "w" else start)[None].repeat(b, 1, 1).requires_grad_(True)
    latents = lambda: free.expand(-1, backbone.num_ws, -1)  # noqa: E731  (W: one w broadcast to every layer)
    noise = None if noise_seeds is None else backbone.noise(noise_seeds)
    params = [free]
    if settings.optimize_noise:
        noise = [n.requires_grad_(True) for n in noise]
        params += noise
    optimizer = torch.optim.Adam(params, lr=settings.lr, betas=(0.9, 0.999))
    for _ in tqdm(range(settings.steps), desc="inversion", unit="step", disable=not progress):
        recon = backbone.synthesize(latents(), noise, grad=True).image
        loss = _per_image_loss(recon, images, settings.pooled_weight).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if settings.optimize_noise:  # keep noise maps unit Gaussian so they cannot absorb the image
            with torch.no_grad():
                for n in noise:
                    n.sub_(n.mean([1, 2, 3], keepdim=True)).div_(n.std([1, 2, 3], keepdim=True) + 1e-8)
    with torch.no_grad():
        final = [n.detach() for n in noise] if noise is not None else None
        ws = latents().detach().clone()
        recon = backbone.synthesize(ws, final).image
        mse = (recon - images).square().mean([1, 2, 3])
        psnr = 10 * torch.log10(4 / mse.clamp_min(1e-12))  # [-1, 1] has a peak-to-peak of 2
    return Inversion(ws, noise_seeds, final if settings.optimize_noise else None, recon, mse, psnr)


def _per_image_loss(recon: Tensor, target: Tensor, pooled_weight: float) -> Tensor:
    """float (B,): pixel MSE plus weighted MSE of 4x average-pooled images."""
    pixel = (recon - target).square().mean([1, 2, 3])
    pooled = (F.avg_pool2d(recon, 4) - F.avg_pool2d(target, 4)).square().mean([1, 2, 3])
    return pixel + pooled_weight * pooled
