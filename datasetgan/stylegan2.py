"""StyleGAN2 generator (config F, skip architecture) written from the paper, with the parameter
names and layout of NVlabs' stylegan2-ada-pytorch, so that its network pickles map onto it
tensor for tensor (datasetgan.loaders), and with every layer's features returned.

Layer -> block -> network, as in the original: `Generator` holds `mapping` and `synthesis`;
synthesis blocks are named by resolution (`b4`, `b8`, ...), each with `conv0` (upsampling, not in
b4), `conv1` and `torgb`. Images are float (B, 3, R, R) in about [-1, 1].
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inverse_graphics.camera import assert_shape

LRELU_GAIN = math.sqrt(2)
# Memory format of every convolution's input: oneDNN's CPU convolutions run 1.3 to 2x faster on channels-last
# tensors, 1x1 kernels up to 20x (`python bench/gan_speed.py` times training both ways; torch.contiguous_format
# restores PyTorch's default).
CONV_MEMORY_FORMAT = torch.channels_last


def conv_input(x: Tensor) -> Tensor:
    """x: float (B, C, H, W), the same values laid out in CONV_MEMORY_FORMAT (no copy when it already is)."""
    return x.contiguous(memory_format=CONV_MEMORY_FORMAT)


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of a StyleGAN2 generator; channels at resolution r = min(channel_base // r, channel_max), unless
    channel_list gives them per block (rosinality's channel multipliers above 2 follow no such rule)."""

    z_dim: int = 512
    w_dim: int = 512
    resolution: int = 1024
    img_channels: int = 3
    channel_base: int = 32768
    channel_max: int = 512
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    conv_clamp: float | None = 256.0  # clamp of conv outputs, as stylegan2-ada's default configs
    channel_list: tuple[int, ...] | None = None  # channels of the blocks at 4, 8, ..., resolution; None: the rule

    def channels(self, res: int) -> int:
        if self.channel_list is not None:
            return self.channel_list[int(math.log2(res)) - 2]
        return min(self.channel_base // res, self.channel_max)

    @property
    def block_resolutions(self) -> list[int]:
        return [2 ** i for i in range(2, int(math.log2(self.resolution)) + 1)]

    def to_dict(self) -> dict:
        return asdict(self)


def _blur_filter() -> Tensor:
    """The [1, 3, 3, 1] low-pass filter as a normalised 4x4 kernel."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = f[:, None] * f[None, :]
    return f / f.sum()


def _filter2d(x: Tensor, f: Tensor, pad: tuple[int, int], gain: float) -> Tensor:
    """Depthwise FIR filter of x: float (B, C, H, W) with f (k, k), padding (before, after) on both axes."""
    c = x.shape[1]
    x = conv_input(F.pad(x, [pad[0], pad[1], pad[0], pad[1]]))
    weight = (f * gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1).to(x.dtype)
    return F.conv2d(x, weight, groups=c)


def upsample2d(x: Tensor, f: Tensor) -> Tensor:
    """x: float (B, C, H, W) -> (B, C, 2H, 2W): zero insertion then the FIR filter (gain 4)."""
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, h, 2, w, 2)
    up[:, :, :, 0, :, 0] = x
    return _filter2d(up.reshape(b, c, 2 * h, 2 * w), f, (2, 1), gain=4.0)


class FullyConnected(nn.Module):
    """Linear layer with equalised learning rate: weights stored at unit scale, scaled at run time."""

    def __init__(self, in_features: int, out_features: int, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return F.leaky_relu(x, 0.2) * LRELU_GAIN if self.activation == "lrelu" else x


class MappingNetwork(nn.Module):
    """z: float (B, z_dim) -> w: float (B, num_ws, w_dim), with truncation toward the tracked mean w_avg."""

    def __init__(self, cfg: GeneratorConfig, num_ws: int):
        super().__init__()
        self.num_ws = num_ws
        self.num_layers = cfg.mapping_layers
        dims = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        for i in range(cfg.mapping_layers):
            setattr(self, f"fc{i}", FullyConnected(dims[i], dims[i + 1], "lrelu", cfg.mapping_lr_multiplier))
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(self, z: Tensor, psi: float = 1.0, cutoff: int | None = None) -> Tensor:
        x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        ws = x[:, None].repeat(1, self.num_ws, 1)
        if psi != 1:
            cutoff = self.num_ws if cutoff is None else cutoff
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], psi)
        return ws


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool, up: bool,
                     f: Tensor | None = None) -> Tensor:
    """x: (B, I, H, W); weight: (O, I, k, k); styles: (B, I) -> (B, O, H, W), or (B, O, 2H, 2W) with `up`
    (a stride-2 transposed conv, then the FIR filter). Scaling the input by the styles and the output
    by the demodulation coefficients equals convolving with per-sample modulated weights, and runs as
    one ordinary batched convolution."""
    x = conv_input(x * styles[:, :, None, None])
    if up:
        x = _filter2d(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2), f, (1, 1), gain=4.0)
    else:
        x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
    if demodulate:
        x = x * (styles.square() @ weight.square().sum([2, 3]).T + 1e-8).rsqrt()[:, :, None, None]
    return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling) + per-pixel noise + bias + leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool,
                 conv_clamp: float | None):
        super().__init__()
        self.up = up
        self.resolution = resolution
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("resample_filter", _blur_filter())  # used when up; kept for the layout

    def forward(self, x: Tensor, w: Tensor, noise: Tensor | None) -> Tensor:
        """noise: float (B, 1, R, R) unit Gaussian, or None for the layer's stored constant noise."""
        styles = self.affine(w)
        x = modulated_conv2d(x, self.weight, styles, True, self.up, self.resample_filter)
        noise = self.noise_const[None, None] if noise is None else noise
        x = x + noise * self.noise_strength + self.bias[None, :, None, None]
        x = F.leaky_relu(x, 0.2) * LRELU_GAIN
        return x.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else x


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to RGB without demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w) * self.weight_gain, False, False)
        x = x + self.bias[None, :, None, None]
        return x.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else x


class SynthesisBlock(nn.Module):
    """One resolution: (const or conv0 up) -> conv1 -> torgb added to the upsampled image."""

    def __init__(self, in_channels: int, out_channels: int, cfg: GeneratorConfig, resolution: int):
        super().__init__()
        self.resolution = resolution
        self.first = in_channels == 0
        if self.first:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, cfg.w_dim, resolution, True, cfg.conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, cfg.w_dim, resolution, False, cfg.conv_clamp)
        self.torgb = ToRGBLayer(out_channels, cfg.img_channels, cfg.w_dim, cfg.conv_clamp)
        self.register_buffer("resample_filter", _blur_filter())
        self.num_conv = 1 if self.first else 2

    def forward(self, x, img, ws: Tensor, noise: list[Tensor | None]):
        """ws: (B, num_conv + 1, w_dim); noise: one entry per conv. Returns x, img and the conv outputs."""
        if self.first:
            x = self.const[None].repeat(ws.shape[0], 1, 1, 1)
            features = [x, self.conv1(x, ws[:, 0], noise[0])]
        else:
            y = self.conv0(x, ws[:, 0], noise[0])
            features = [y, self.conv1(y, ws[:, 1], noise[1])]
        x = features[-1]
        rgb = self.torgb(x, ws[:, self.num_conv])
        img = rgb if img is None else upsample2d(img, self.resample_filter) + rgb
        return x, img, features


class SynthesisNetwork(nn.Module):
    """ws: float (B, num_ws, w_dim) -> image and the per-layer features."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.resolutions = cfg.block_resolutions
        self.num_ws = 0
        for res in self.resolutions:
            in_ch = 0 if res == 4 else cfg.channels(res // 2)
            block = SynthesisBlock(in_ch, cfg.channels(res), cfg, res)
            setattr(self, f"b{res}", block)
            self.num_ws += block.num_conv
        self.num_ws += 1  # the last block's torgb

    def noise_shapes(self) -> list[tuple[int, int, int]]:
        """(1, R, R) of every conv layer's noise input, in order."""
        return [(1, r, r) for r in self.resolutions for _ in range(1 if r == 4 else 2)]

    def forward(self, ws: Tensor, noise: list[Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
        """noise: per conv layer float (B, 1, R, R), or None for the stored constant noise.
        Returns image float (B, C, R, R) and features: the const input then every conv output,
        each float (B, C_l, R_l, R_l) at its native resolution."""
        assert_shape(ws, (None, self.num_ws, None), "ws")
        noise = list(noise) if noise is not None else [None] * len(self.noise_shapes())
        x = img = None
        features, w_idx, n_idx = [], 0, 0
        for res in self.resolutions:
            block = getattr(self, f"b{res}")
            x, img, feats = block(x, img, ws[:, w_idx:w_idx + block.num_conv + 1], noise[n_idx:n_idx + block.num_conv])
            features += feats
            w_idx += block.num_conv
            n_idx += block.num_conv
        return img, features


class Generator(nn.Module):
    """z -> w (mapping) -> image and features (synthesis)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.synthesis = SynthesisNetwork(cfg)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(cfg, self.num_ws)

    def forward(self, z: Tensor, psi: float = 1.0, noise: list[Tensor] | None = None) -> Tensor:
        return self.synthesis(self.mapping(z, psi), noise)[0]

