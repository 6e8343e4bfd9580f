"""StyleGAN1 generator (Karras et al., CVPR 2019) in the parameter layout of the PyTorch port whose state dicts
DatasetGAN released (`karras2019stylegan-{cats-256x256,cars-512x384,celebahq-1024x1024}.for_g_all.pt`), so those
files load with strict=True and no renaming; every block's two feature maps are returned.

Layout: `g_mapping.dense{0..7}`; `g_synthesis.torgb`; `g_synthesis.blocks.{R}x{R}`, each holding `const` + `bias`
(4x4) or `conv0_up` (upsampling conv with its blur buffer `intermediate.kernel`), then `epi1`, `conv` (4x4) or
`conv1`, `epi2`. An epilogue is noise + leaky ReLU + instance norm (`top_epi`) then the AdaIN style (`style_mod`).
The files hold neither the average latent nor noise maps: the average is set on loading (the release's mean-w
file, or estimated), and absent noise means this module's own constant noise (seeded, not stored in files).
Images are float (B, 3, R, R) in about [-1, 1].
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datasources.base import CheckpointFormatError
from datasources.files import read_torch
from inverse_graphics.camera import assert_shape

CONV_GAIN = math.sqrt(2)


@dataclass(frozen=True)
class StyleGAN1Config:
    """Architecture of a StyleGAN1 generator; the block at 2^k pixels has nf(k - 1) channels."""

    resolution: int = 1024
    z_dim: int = 512
    w_dim: int = 512
    img_channels: int = 3
    fmap_base: int = 8192
    fmap_max: int = 512
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    fused_up_min_resolution: int = 128  # blocks this large or larger upsample by a fused transposed conv
    instance_norm_eps: float = 1e-5  # the port's nn.InstanceNorm2d default (the TF original used 1e-8)
    noise_seed: int = 0  # seeds the constant noise used when no noise is passed

    def __post_init__(self):
        if self.resolution < 4 or self.resolution & (self.resolution - 1):
            raise ValueError(f"StyleGAN1 resolution must be a power of two >= 4, got {self.resolution}")

    def nf(self, stage: int) -> int:
        """Channels at `stage`: min(fmap_base / 2^stage, fmap_max)."""
        return min(int(self.fmap_base / 2.0 ** stage), self.fmap_max)

    @property
    def block_resolutions(self) -> list[int]:
        return [2 ** k for k in range(2, int(math.log2(self.resolution)) + 1)]

    def channels(self, res: int) -> int:
        return self.nf(int(math.log2(res)) - 1)

    @property
    def num_ws(self) -> int:
        """One w per epilogue: two per block (the to-RGB conv takes no style)."""
        return 2 * len(self.block_resolutions)

    @property
    def feature_channels(self) -> list[int]:
        """C_l of every feature map the synthesis returns, in order (two per block)."""
        return [self.channels(res) for res in self.block_resolutions for _ in range(2)]


@dataclass(frozen=True)
class StyleGAN1Preset:
    """A released DatasetGAN StyleGAN1 model: its architecture, file name, and how the official code samples it."""

    config: StyleGAN1Config
    checkpoint: str  # file name of the official converted state dict
    truncation_cutoff: int  # truncation applies to the first this many ws
    label_resolution: int  # features and labels are resized to this square size
    crop_rows: tuple[int, int] | None = None  # rows kept of the label_resolution maps (car: 512x512 -> 384x512)
    truncation_psi: float = 0.7


STYLEGAN1_PRESETS = {
    "cat": StyleGAN1Preset(StyleGAN1Config(resolution=256), "karras2019stylegan-cats-256x256.for_g_all.pt", 7, 256),
    "car": StyleGAN1Preset(StyleGAN1Config(resolution=512), "karras2019stylegan-cars-512x384.for_g_all.pt", 8, 512,
                           crop_rows=(64, 448)),
    "face": StyleGAN1Preset(StyleGAN1Config(resolution=1024), "karras2019stylegan-celebahq-1024x1024.for_g_all.pt",
                            8, 512),
}


def resolve_config(preset_or_config: str | StyleGAN1Preset | StyleGAN1Config) -> StyleGAN1Config:
    """The architecture of a preset name, a preset or a config; an unknown name fails listing the valid ones."""
    if isinstance(preset_or_config, StyleGAN1Config):
        return preset_or_config
    if isinstance(preset_or_config, StyleGAN1Preset):
        return preset_or_config.config
    if preset_or_config not in STYLEGAN1_PRESETS:
        raise KeyError(f"unknown StyleGAN1 preset {preset_or_config!r}; valid: {', '.join(STYLEGAN1_PRESETS)}")
    return STYLEGAN1_PRESETS[preset_or_config].config


class EqualizedLinear(nn.Module):
    """Linear layer with equalised learning rate: weights stored as N(0, 1/lr_mul^2), scaled at run time."""

    def __init__(self, in_features: int, out_features: int, gain: float, lr_multiplier: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.weight_gain = gain / math.sqrt(in_features) * lr_multiplier
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)


class EqualizedConv2d(nn.Module):
    """k x k 'same' convolution with equalised learning rate (weight scaled by gain / sqrt(fan_in))."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = gain / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.weight.shape[-1] // 2)


class Blur(nn.Module):
    """Depthwise [1, 2, 1] x [1, 2, 1] / 16 low-pass filter, size kept; the kernel is a buffer in the files."""

    def __init__(self):
        super().__init__()
        f = torch.tensor([1.0, 2.0, 1.0])
        kernel = f[:, None] * f[None, :]
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None])

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        return F.conv2d(x, self.kernel.expand(c, -1, -1, -1).to(x.dtype), padding=1, groups=c)


class UpConv2d(EqualizedConv2d):
    """x: float (B, I, H, W) -> (B, O, 2H, 2W): 2x upsampling with a 3x3 conv, then the blur, then the bias.

    Unfused: nearest upsampling then the conv. Fused (as the official model from 128 pixels up): a stride-2
    transposed conv whose 4x4 kernel sums the 3x3 kernel over its four 2x2 shifts; this equals nearest
    upsampling followed by the conv with the spatially flipped kernel."""

    def __init__(self, in_channels: int, out_channels: int, fused: bool):
        super().__init__(in_channels, out_channels, 3, CONV_GAIN)
        self.fused = fused
        self.intermediate = Blur()

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight * self.weight_gain
        if self.fused:
            o, i = weight.shape[:2]
            box = weight.new_ones(1, 1, 2, 2)
            weight = F.conv2d(weight.transpose(0, 1).reshape(i * o, 1, 3, 3), box, padding=1).reshape(i, o, 4, 4)
            x = F.conv_transpose2d(x, weight, stride=2, padding=1)
        else:
            x = F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), weight, padding=1)
        return self.intermediate(x) + self.bias[None, :, None, None].to(x.dtype)


class NoiseInput(nn.Module):
    """x + weight[c] * noise: per-pixel noise float (B or 1, 1, H, W), shared by all channels, scaled per channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, noise: Tensor) -> Tensor:
        return x + self.weight[None, :, None, None] * noise


class NoiseActNorm(nn.Module):
    """The epilogue's first half (`top_epi`): noise, leaky ReLU 0.2 (no gain), instance norm without affine."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.noise = NoiseInput(channels)
        self.eps = eps

    def forward(self, x: Tensor, noise: Tensor) -> Tensor:
        return F.instance_norm(F.leaky_relu(self.noise(x, noise), 0.2), eps=self.eps)


class StyleMod(nn.Module):
    """AdaIN style: x * (1 + scale) + shift, with (scale, shift) = an affine map of w split in halves."""

    def __init__(self, w_dim: int, channels: int):
        super().__init__()
        self.lin = EqualizedLinear(w_dim, 2 * channels, gain=1.0)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        scale, shift = self.lin(w)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + scale) + shift


class Epilogue(nn.Module):
    """After each conv: `top_epi` (noise, activation, instance norm), then `style_mod` (AdaIN from one w)."""

    def __init__(self, channels: int, cfg: StyleGAN1Config):
        super().__init__()
        self.top_epi = NoiseActNorm(channels, cfg.instance_norm_eps)
        self.style_mod = StyleMod(cfg.w_dim, channels)

    def forward(self, x: Tensor, w: Tensor, noise: Tensor) -> Tensor:
        return self.style_mod(self.top_epi(x, noise), w)


class SynthesisBlock(nn.Module):
    """One resolution: (const + bias | conv0_up) -> epi1 -> conv (4x4) or conv1 -> epi2."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, cfg: StyleGAN1Config):
        super().__init__()
        self.first = resolution == 4
        if self.first:
            self.const = nn.Parameter(torch.ones(1, out_channels, 4, 4))
            self.bias = nn.Parameter(torch.ones(out_channels))
        else:
            self.conv0_up = UpConv2d(in_channels, out_channels, fused=resolution >= cfg.fused_up_min_resolution)
        self.epi1 = Epilogue(out_channels, cfg)
        self.conv_name = "conv" if self.first else "conv1"
        self.add_module(self.conv_name, EqualizedConv2d(out_channels, out_channels, 3, CONV_GAIN))
        self.epi2 = Epilogue(out_channels, cfg)

    def forward(self, x: Tensor | None, ws: Tensor, noise: list[Tensor]) -> tuple[Tensor, Tensor]:
        """x: float (B, C_in, R/2, R/2), None for 4x4; ws: (B, 2, w_dim); noise: two (B or 1, 1, R, R).
        Returns the block output after epi2 and the raw conv output (bias added) before it, (B, C, R, R) each."""
        if self.first:
            x = (self.const + self.bias[None, :, None, None]).expand(ws.shape[0], -1, -1, -1)
        else:
            x = self.conv0_up(x)
        x = self.epi1(x, ws[:, 0], noise[0])
        raw = getattr(self, self.conv_name)(x)
        return self.epi2(raw, ws[:, 1], noise[1]), raw


class SynthesisNetwork(nn.Module):
    """ws: float (B, num_ws, w_dim) -> image and the two feature maps of every block."""

    def __init__(self, cfg: StyleGAN1Config):
        super().__init__()
        self.resolutions = cfg.block_resolutions
        self.num_ws = cfg.num_ws
        self.w_dim = cfg.w_dim
        # Assigned before `blocks`, as in the official module, so state-dict keys follow its order.
        self.torgb = EqualizedConv2d(cfg.channels(cfg.resolution), cfg.img_channels, 1, gain=1.0)
        blocks = {}
        for res in self.resolutions:
            in_channels = cfg.channels(res // 2) if res > 4 else 0
            blocks[f"{res}x{res}"] = SynthesisBlock(in_channels, cfg.channels(res), res, cfg)
        self.blocks = nn.ModuleDict(blocks)
        generator = torch.Generator().manual_seed(cfg.noise_seed)
        for i, shape in enumerate(self.noise_shapes()):
            self.register_buffer(f"noise_const{i}", torch.randn(shape, generator=generator), persistent=False)

    def noise_shapes(self) -> list[tuple[int, int, int]]:
        """(1, R, R) of every noise input (epi1 then epi2 of each block), in order."""
        return [(1, r, r) for r in self.resolutions for _ in range(2)]

    def forward(self, ws: Tensor, noise: list[Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
        """noise: per noise input float (B, 1, R, R), or None for the constant noise (the same for every sample).
        Returns image float (B, 3, R, R) and features: per block, as the official code orders them, the block
        output after its second epilogue, then the raw output of its last conv (bias added, before that
        epilogue); each float (B, C_l, R_l, R_l) at native resolution."""
        assert_shape(ws, (None, self.num_ws, self.w_dim), "ws")
        shapes = self.noise_shapes()
        if noise is None:
            noise = [getattr(self, f"noise_const{i}")[None] for i in range(len(shapes))]
        elif len(noise) != len(shapes):
            raise ValueError(f"noise: expected {len(shapes)} maps, got {len(noise)}")
        for i, (n, shape) in enumerate(zip(noise, shapes)):
            assert_shape(n, (None, *shape), f"noise[{i}]")
        x, features = None, []
        for i, block in enumerate(self.blocks.values()):
            x, raw = block(x, ws[:, 2 * i:2 * i + 2], noise[2 * i:2 * i + 2])
            features += [x, raw]
        return self.torgb(x), features


class MappingNetwork(nn.Module):
    """z: float (B, z_dim) -> ws: float (B, num_ws, w_dim), truncated toward `avg_latent` on the first layers."""

    def __init__(self, cfg: StyleGAN1Config):
        super().__init__()
        self.z_dim = cfg.z_dim
        self.num_ws = cfg.num_ws
        self.num_layers = cfg.mapping_layers
        dims = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        for i in range(cfg.mapping_layers):
            setattr(self, f"dense{i}", EqualizedLinear(dims[i], dims[i + 1], CONV_GAIN, cfg.mapping_lr_multiplier))
        # Mean w per layer; not in the official files (loaded or estimated by load_stylegan1).
        self.register_buffer("avg_latent", torch.zeros(cfg.num_ws, cfg.w_dim), persistent=False)

    def w(self, z: Tensor) -> Tensor:
        """z: float (B, z_dim) -> w: float (B, w_dim): pixel norm, then dense layers with leaky ReLU 0.2."""
        x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.num_layers):
            x = F.leaky_relu(getattr(self, f"dense{i}")(x), 0.2)
        return x

    def forward(self, z: Tensor, psi: float = 1.0, cutoff: int | None = None) -> Tensor:
        """psi: truncation (1 = none), applied to ws[:, :cutoff] (None: all layers)."""
        assert_shape(z, (None, self.z_dim), "z")
        ws = self.w(z)[:, None].repeat(1, self.num_ws, 1)
        if psi != 1:
            cutoff = self.num_ws if cutoff is None else cutoff
            ws[:, :cutoff] = self.avg_latent[:cutoff].to(ws.dtype).lerp(ws[:, :cutoff], psi)
        return ws

    def set_avg_latent(self, avg: Tensor | np.ndarray) -> None:
        """avg: float (w_dim,), or (N, w_dim) per layer with N >= num_ws (the release's (18, 512): rows beyond
        num_ws are dropped, as the official model ignores the ws a 256-pixel synthesis does not use), or (1, N,
        w_dim), the batch of one that the official make_mean_latent returns."""
        avg = torch.as_tensor(avg, dtype=torch.float32)
        if avg.dim() == 3 and avg.shape[0] == 1:
            avg = avg[0]
        if avg.dim() == 1:
            avg = avg[None].expand(self.num_ws, -1)
        if avg.dim() != 2 or avg.shape[0] < self.num_ws or avg.shape[1] != self.avg_latent.shape[1]:
            raise ValueError(f"average latent: expected ({self.avg_latent.shape[1]},) or (N >= {self.num_ws}, "
                             f"{self.avg_latent.shape[1]}), got {tuple(avg.shape)}")
        self.avg_latent.copy_(avg[:self.num_ws])

    @torch.no_grad()
    def estimate_avg_latent(self, num_samples: int = 10_000, seed: int = 0) -> Tensor:
        """float (w_dim,): the mean w of `num_samples` z ~ N(0, I) from `seed` (the official make_mean_latent)."""
        z = torch.randn(num_samples, self.z_dim, generator=torch.Generator().manual_seed(seed))
        return self.w(z.to(self.avg_latent.device)).mean(0)


class StyleGAN1Generator(nn.Module):
    """z -> ws (mapping, `g_mapping`) -> image and features (synthesis, `g_synthesis`)."""

    def __init__(self, cfg: StyleGAN1Config):
        super().__init__()
        self.cfg = cfg
        self.num_ws = cfg.num_ws
        self.g_mapping = MappingNetwork(cfg)
        self.g_synthesis = SynthesisNetwork(cfg)

    @property
    def mapping(self) -> MappingNetwork:
        return self.g_mapping

    @property
    def synthesis(self) -> SynthesisNetwork:
        return self.g_synthesis

    def forward(self, z: Tensor, psi: float = 1.0, noise: list[Tensor] | None = None) -> Tensor:
        return self.synthesis(self.mapping(z, psi), noise)[0]


def load_stylegan1(path: str | Path, preset_or_config: str | StyleGAN1Preset | StyleGAN1Config,
                   avg_latent: Tensor | np.ndarray | None = None) -> StyleGAN1Generator:
    """The official converted state dict at `path` in a generator of `preset_or_config` (a STYLEGAN1_PRESETS name,
    preset or config), in eval mode. avg_latent: float (w_dim,) or (N >= num_ws, w_dim) mean w (the release's
    avg_latent file); None estimates it from the mapping network. Fails naming the file and every missing,
    unexpected or mis-shaped key."""
    path = Path(path)
    model = StyleGAN1Generator(resolve_config(preset_or_config))
    state = read_torch(path, "StyleGAN1 state dict")
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointFormatError(f"{path}: expected a state dict of tensors (the official for_g_all.pt layout)")
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    problems = [f"missing: {key} {expected[key]}" for key in expected if key not in state]
    problems += [f"unexpected: {key} {tuple(state[key].shape)}" for key in state if key not in expected]
    problems += [f"shape of {key}: file {tuple(state[key].shape)}, expected {expected[key]}"
                 for key in expected if key in state and tuple(state[key].shape) != expected[key]]
    if problems:
        raise CheckpointFormatError(f"{path} does not fit a StyleGAN1 generator of {model.cfg.resolution} pixels "
                                    f"({len(problems)} problems):\n  " + "\n  ".join(problems))
    model.load_state_dict(state, strict=True)
    model.mapping.set_avg_latent(model.mapping.estimate_avg_latent() if avg_latent is None else avg_latent)
    return model.eval()
