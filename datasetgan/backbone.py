"""One interface over every generator (our StyleGAN2, StyleGAN1 in the official DatasetGAN layout):
seed -> z -> w+ (with truncation) -> image and per-layer features, with noise fixed per seed.

A sample is a pure function of its seed and the weights: z and the noise maps are drawn from
NumPy generators seeded with the sample's seed, so the same seed gives the same image and
features in any process, on any device.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from inverse_graphics.camera import assert_shape


@dataclass(frozen=True)
class Truncation:
    """w <- w_avg + psi (w - w_avg) on the first `cutoff` layers (None: all layers); psi 1 = none."""

    psi: float = 1.0
    cutoff: int | None = None


@dataclass(frozen=True)
class Synthesized:
    """A batch of generated samples.

    seeds: the sample seeds (None for latents that did not come from seeds, e.g. inversion).
    ws: float (B, num_ws, w_dim) the w+ latents used.
    image: float (B, 3, R, R) in about [-1, 1].
    features: per layer float (B, C_l, R_l, R_l) at native resolution, in synthesis order.
    """

    seeds: list[int] | None
    ws: Tensor
    image: Tensor
    features: list[Tensor]


class Backbone:
    """Drives a generator that has `.cfg` (z_dim, resolution), `.num_ws`, `.mapping(z, psi, cutoff)`
    and `.synthesis` (with `noise_shapes()` and `(ws, noise) -> (image, features)`)."""

    def __init__(self, generator: nn.Module, truncation: Truncation = Truncation(), device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32):
        self.generator = generator.eval().requires_grad_(False).to(device)
        self.truncation = truncation
        self.device = torch.device(device)
        self.dtype = dtype

    @property
    def num_ws(self) -> int:
        return self.generator.num_ws

    @property
    def resolution(self) -> int:
        return self.generator.cfg.resolution

    def z(self, seeds: list[int]) -> Tensor:
        """float (B, z_dim): z ~ N(0, I) drawn from a NumPy generator seeded with each seed."""
        z = np.stack([np.random.RandomState(seed).standard_normal(self.generator.cfg.z_dim) for seed in seeds])
        return torch.from_numpy(z).float().to(self.device)

    def noise(self, seeds: list[int]) -> list[Tensor]:
        """Per noise input float (B, 1, R, R), fixed by each seed (independent of its z)."""
        per_sample = []
        for seed in seeds:
            rng = np.random.RandomState(seed + 1)
            per_sample.append([rng.standard_normal(shape).astype(np.float32)
                               for shape in self.generator.synthesis.noise_shapes()])
        return [torch.from_numpy(np.stack(layer)).to(self.device) for layer in zip(*per_sample)]

    def ws(self, z: Tensor) -> Tensor:
        """z: float (B, z_dim) -> w+: float (B, num_ws, w_dim), truncated."""
        assert_shape(z, (None, self.generator.cfg.z_dim), "z")
        return self.generator.mapping(z, self.truncation.psi, self.truncation.cutoff)

    def synthesize(self, ws: Tensor, noise: list[Tensor] | None = None, seeds: list[int] | None = None,
                   grad: bool = False) -> Synthesized:
        """w+: float (B, num_ws, w_dim) -> image and features. Noise: explicit maps, else the seeds'
        noise when seeds are given, else the generator's stored constant noise."""
        assert_shape(ws, (None, self.num_ws, None), "ws")
        if noise is None and seeds is not None:
            noise = self.noise(seeds)
        with torch.set_grad_enabled(grad), _autocast(self.device, self.dtype):
            image, features = self.generator.synthesis(ws, noise)
        return Synthesized(seeds, ws, image.float(), [f.float() for f in features])

    def sample(self, seeds: list[int]) -> Synthesized:
        """The samples of `seeds`: their z, truncated w+, fixed noise, image and features."""
        with torch.no_grad():
            return self.synthesize(self.ws(self.z(seeds)), seeds=seeds)


def _autocast(device: torch.device, dtype: torch.dtype):
    """Mixed precision where asked (fp16/bf16 on CUDA, bf16 on CPU); a no-op for float32."""
    enabled = dtype != torch.float32
    return torch.autocast(device.type, dtype=dtype, enabled=enabled)
