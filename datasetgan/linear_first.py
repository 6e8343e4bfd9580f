"""Linear-first evaluation of a pixel-classifier ensemble: the official numbers without full-resolution features.

The official interpreter resizes every feature map to the label grid (bilinear, align_corners=False), concatenates
them (C channels, e.g. 4992) and runs every member's MLP on every pixel. Resizing and the first layer are both
linear, so they commute: W [resize(f_1); ...; resize(f_L)] = sum_l resize(W_l f_l). Here:

- every member's first layer writes its own column block of one joint (pixels, M * H1) output, straight from the
  member's weights (no stacked copy);
- maps coarser than the label grid are multiplied at their own resolution (far fewer pixels) and the M * H1 channel
  result is resized; maps as fine or finer (few channels) are resized first, then multiplied; consecutive maps of
  one resolution share one resize;
- resizing is separable: columns by F.interpolate on a channels-last tensor, rows by a small matrix holding the
  interpolation weights of a strip's rows, so a strip of label rows reads only the input rows under it, and the
  coarse rows computed for one strip are kept for the next;
- batch norm (eval mode) is folded into the next linear layer (`FoldedEnsemble`), and the members' second and third
  layers run as batched matmuls;
- labels are produced in strips of about `strip_pixels` pixels: memory is bounded by a strip, not by (C, H, W).

`gather_features` uses the same interpolation weights to give single pixels' features for training.
The naive twin (resize, concatenate, MLP) is `interpreter.naive_member_outputs`; tests hold the two together.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby

import torch
import torch.nn.functional as F
from torch import Tensor


@lru_cache(maxsize=64)
def axis_weights(source: int, size: int) -> Tensor:
    """float (size, source): row i holds the weights F.interpolate (bilinear, align_corners=False) gives the source
    samples for output index i when an axis of `source` samples is resized to `size` (at most two nonzero; the
    identity when source == size). Found by resizing an identity matrix along that axis only."""
    eye = torch.eye(source)[None, None]
    return F.interpolate(eye, size=(size, source), mode="bilinear", align_corners=False)[0, 0]


@dataclass(frozen=True)
class LabelGrid:
    """Where labels live: every feature map is resized to size x size, then rows [top, bottom) are kept
    (car: 512 -> rows 64:448); labels are (bottom - top, size)."""

    size: int
    top: int
    bottom: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.bottom - self.top, self.size

    def row_weights(self, resolution: int) -> Tensor:
        """float (H, R): the resize weights of every label row over the rows of an R x R map."""
        return axis_weights(resolution, self.size)[self.top:self.bottom]


@lru_cache(maxsize=64)
def axis_taps(source: int, size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(i0, i1, w0, w1), each (size,): per output index of axis_weights(source, size), its two source samples and
    their weights, i1 = min(i0 + 1, source - 1) as F.interpolate pairs them (w1 = 0 where they coincide)."""
    weights = axis_weights(source, size)
    i0 = (weights != 0).int().argmax(1)
    i1 = (i0 + 1).clamp(max=source - 1)
    w0 = weights.gather(1, i0[:, None])[:, 0]
    w1 = torch.where(i1 == i0, 0.0, weights.gather(1, i1[:, None])[:, 0])
    return i0, i1, w0, w1


def gather_features(features: list[Tensor], ys: Tensor, xs: Tensor, grid: LabelGrid) -> Tensor:
    """The official resized features at a few label pixels, without resizing whole maps.

    features: per layer float (C_l, R_l, R_l), one image at native resolution.
    ys, xs: int64 (N,) label pixel coordinates, rows in [0, H), columns in [0, W).
    Returns float (N, sum C_l): what resize-every-map-then-concatenate gives at those pixels, each map interpolated
    from its four neighbours with the weights F.interpolate uses there.
    """
    out = torch.empty(len(ys), sum(f.shape[0] for f in features), device=features[0].device)
    offset = 0
    for f in features:
        taps = axis_taps(f.shape[-1], grid.size)
        y0, y1, wy0, wy1 = (t[ys.cpu() + grid.top].to(f.device) for t in taps)
        x0, x1, wx0, wx1 = (t[xs.cpu()].to(f.device) for t in taps)
        f = f.float()
        value = (f[:, y0, x0] * wx0 + f[:, y0, x1] * wx1) * wy0 + (f[:, y1, x0] * wx0 + f[:, y1, x1] * wx1) * wy1
        out[:, offset:offset + f.shape[0]] = value.T
        offset += f.shape[0]
    return out


@dataclass(frozen=True)
class FoldedEnsemble:
    """An ensemble of M three-layer MLPs in eval mode, batch norm folded in, arranged for joint evaluation.

    w1: per member float (H1, C): the first-layer weights themselves (not copied); member m writes columns
    [m * H1, (m + 1) * H1) of the joint first-layer output, whose bias is b1: float (M * H1,).
    w2: float (M, H1, H2), b2: (M, H2); w3: float (M, H2, K), b3: (M, K). Member m computes
    relu(relu(x w1[m]^T + b1[m]) w2[m] + b2[m]) w3[m] + b3[m].
    """

    w1: tuple[Tensor, ...]
    b1: Tensor
    w2: Tensor
    b2: Tensor
    w3: Tensor
    b3: Tensor

    def first_layer(self, x: Tensor, channels: slice, out: Tensor, beta: float) -> None:
        """out: float (N, M * H1) <- beta * out + every member's first layer (no bias) on input channels `channels`
        of x: float (N, c), written member by member into column blocks of out (no copy of any operand)."""
        h1 = self.w1[0].shape[0]
        for m, weight in enumerate(self.w1):
            out[:, m * h1:(m + 1) * h1].addmm_(x, weight[:, channels].T, beta=beta)

    def tail(self, hidden: Tensor) -> Tensor:
        """hidden: float (N, M * H1) first-layer outputs, biases included (overwritten) -> float (M, N, K)."""
        members, h1 = self.w2.shape[:2]
        x = hidden.relu_().view(len(hidden), members, h1).transpose(0, 1)
        x = torch.baddbmm(self.b2[:, None], x, self.w2).relu_()
        return torch.baddbmm(self.b3[:, None], x, self.w3)


def member_outputs_in_strips(mlp: FoldedEnsemble, features: list[Tensor], grid: LabelGrid,
                             strip_pixels: int) -> Iterator[tuple[int, slice, Tensor]]:
    """Every member's outputs over the label grid, strip by strip.

    features: per layer float (B, C_l, R_l, R_l) at native resolution, channels in the order of mlp.w1's columns.
    Yields (b, rows, outputs) for image b and label rows `rows` (a strip of about strip_pixels pixels):
    outputs float (M, len(rows) * W, K), pixels in row-major order; the same numbers (to float rounding) as
    resizing, concatenating and running each member on every pixel.
    """
    height, width = grid.shape
    runs, first = [], 0
    for _, maps in groupby(features, key=lambda f: f.shape[-1]):
        maps = list(maps)
        channels = sum(f.shape[1] for f in maps)
        runs.append(_Run(maps, mlp, slice(first, first + channels), grid))
        first += channels
    step = max(1, strip_pixels // width)
    workspace = mlp.b1.new_empty(step * width, len(mlp.b1))  # reused: fresh large buffers cost page faults
    for b in range(features[0].shape[0]):
        for top in range(0, height, step):
            rows = slice(top, min(height, top + step))
            hidden = workspace[:(rows.stop - rows.start) * width]
            hidden.copy_(mlp.b1.expand_as(hidden))
            for run in runs:
                run.add_first_layer(hidden, b, rows)
            yield b, rows, mlp.tail(hidden)


class _Run:
    """Consecutive feature maps of one resolution R and their input channels of the first layers.

    Coarse maps (R < grid size) are multiplied at native resolution and the M * H1 channel result is resized;
    finer or equal maps are resized first (few channels), then multiplied. Rows of coarse products are kept
    from one strip to the next, which needs some of them again.
    """

    def __init__(self, maps: list[Tensor], mlp: FoldedEnsemble, channels: slice, grid: LabelGrid):
        self.maps = maps  # each float (B, C_l, R, R)
        self.mlp = mlp
        self.channels = channels  # these maps' input channels of the first layers
        self.res = maps[0].shape[-1]
        self.size = grid.size
        self.row_weights = grid.row_weights(self.res).to(mlp.b1.device)  # (H, R)
        self.kept: tuple[int, int, Tensor] | None = None  # (image, first row, float (r, R, M * H1)) products

    def _inputs(self, b: int, start: int, stop: int) -> Tensor:
        """float (C, stop - start, R): rows [start, stop) of image b's maps, channels concatenated."""
        return torch.cat([f[b, :, start:stop] for f in self.maps]).float()

    def _products(self, b: int, start: int, stop: int) -> Tensor:
        """float (stop - start, R, M * H1): the first layers at native resolution on rows [start, stop) of image b,
        reusing the rows the previous strip computed."""
        reused = 0
        if self.kept is not None and self.kept[0] == b:
            kept = self.kept[2]
            reused = max(0, self.kept[1] + len(kept) - start)
        inputs = self._inputs(b, start + reused, stop)
        new = self.mlp.b1.new_empty(stop - start - reused, self.res, len(self.mlp.b1))
        self.mlp.first_layer(inputs.reshape(len(inputs), -1).T, self.channels, new.view(-1, new.shape[-1]), beta=0)
        products = torch.cat([kept[len(kept) - reused:], new]) if reused else new
        self.kept = (b, start, products)
        return products

    def add_first_layer(self, hidden: Tensor, b: int, rows: slice) -> None:
        """hidden: float (h * W, M * H1), += this run's first-layer terms on label rows `rows` of image b."""
        block = self.row_weights[rows]
        used = block.any(0).nonzero()[:, 0]
        start, stop = int(used[0]), int(used[-1]) + 1
        block = block[:, start:stop]  # (h, r): the strip rows' weights over the input rows under them
        h, r = block.shape
        if self.res < self.size:
            products = self._products(b, start, stop)[None].permute(0, 3, 1, 2)  # (1, MH, r, R) channels-last
            wide = F.interpolate(products, size=(r, self.size), mode="bilinear", align_corners=False)
            hidden.view(h, -1).addmm_(block, wide.permute(0, 2, 3, 1).reshape(r, -1))  # (h, r) @ (r, W * MH)
        else:
            inputs = self._inputs(b, start, stop)
            wide = F.interpolate(inputs[None], size=(r, self.size), mode="bilinear", align_corners=False)[0]
            resized = torch.matmul(block, wide)  # (C, h, W)
            self.mlp.first_layer(resized.reshape(len(resized), -1).T, self.channels, hidden, beta=1)
