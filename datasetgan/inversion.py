"""GAN inversion: find w+ (and optionally noise) with which the generator redraws a given image, so
that real annotated images can train the Style Interpreter (as EditGAN does).

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


@dataclass(frozen=True)
class InversionSettings:
    """Optimisation of w+ from the mean w; with optimize_noise the noise maps are free too."""

    steps: int = 300
    lr: float = 0.05
    pooled_weight: float = 1.0
    optimize_noise: bool = False
    mean_samples: int = 2000  # z samples averaged for the starting w
    seed: int = 0             # of the starting noise maps when they are optimised


@dataclass(frozen=True)
class Inversion:
    """ws: float (B, num_ws, w_dim); noise: per layer float (B, 1, R, R), or None for the generator's
    constant noise; image: float (B, 3, R, R) the reconstruction; mse: float (B,) per-pixel MSE in
    [-1, 1] units; psnr: float (B,) in dB for images scaled to [0, 1]."""

    ws: Tensor
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
           progress: bool = True) -> Inversion:
    """images: float (B, 3, R, R) in [-1, 1] -> the Inversion that redraws them."""
    r = backbone.resolution
    assert_shape(images, (None, 3, r, r), "images")
    images = images.to(backbone.device)
    b = images.shape[0]
    ws = mean_ws(backbone, settings.mean_samples)[None].repeat(b, 1, 1).requires_grad_(True)
    noise = None
    params = [ws]
    if settings.optimize_noise:
        noise = [n.requires_grad_(True) for n in backbone.noise([settings.seed + i for i in range(b)])]
        params += noise
    optimizer = torch.optim.Adam(params, lr=settings.lr, betas=(0.9, 0.999))
    for _ in tqdm(range(settings.steps), desc="inversion", unit="step", disable=not progress):
        recon = backbone.synthesize(ws, noise, grad=True).image
        loss = _per_image_loss(recon, images, settings.pooled_weight).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if noise is not None:  # keep noise maps unit Gaussian so they cannot absorb the image
            with torch.no_grad():
                for n in noise:
                    n.sub_(n.mean([1, 2, 3], keepdim=True)).div_(n.std([1, 2, 3], keepdim=True) + 1e-8)
    with torch.no_grad():
        final = [n.detach() for n in noise] if noise is not None else None
        recon = backbone.synthesize(ws.detach(), final).image
        mse = (recon - images).square().mean([1, 2, 3])
        psnr = 10 * torch.log10(4 / mse.clamp_min(1e-12))  # [-1, 1] has a peak-to-peak of 2
    return Inversion(ws.detach(), final, recon, mse, psnr)


def _per_image_loss(recon: Tensor, target: Tensor, pooled_weight: float) -> Tensor:
    """float (B,): pixel MSE plus weighted MSE of 4x average-pooled images."""
    pixel = (recon - target).square().mean([1, 2, 3])
    pooled = (F.avg_pool2d(recon, 4) - F.avg_pool2d(target, 4)).square().mean([1, 2, 3])
    return pixel + pooled_weight * pooled
