"""The reconstructor's losses: image terms through the renderer (silhouette IoU, masked L1 colour,
part cross-entropy, projected keypoints) and shape regularisers (Laplacian, flatten, deformation).
Every term is a mean, so the weights do not depend on batch, image or mesh size."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .camera import Cameras, assert_shape, project


@dataclass(frozen=True)
class LossWeights:
    """Weight of each term; the first five are GANverse3D's (see shared/reference/official-code.md),
    keypoints and parts are ours (the paper trains no such branches)."""

    iou: float = 3.0
    colour: float = 20.0
    laplacian: float = 5.0
    flatten: float = 5.0
    deformation: float = 2.5
    keypoints: float = 10.0
    parts: float = 1.0
    perceptual: float = 0.0  # GANverse3D uses 0.5 with VGG; ours needs a feature net trained on toy renders


def iou_loss(silhouette: Tensor, mask: Tensor) -> Tensor:
    """silhouette: float (B, S, S) soft coverage in [0, 1]; mask: float (B, S, S) target in {0, 1}.
    1 - the mean over images of the soft intersection over union."""
    assert_shape(mask, tuple(silhouette.shape), "mask")
    inter = (silhouette * mask).sum((1, 2))
    union = (silhouette + mask - silhouette * mask).sum((1, 2))
    return 1 - (inter / union.clamp(min=1e-6)).mean()


def colour_loss(rendered: Tensor, image: Tensor, where: Tensor) -> Tensor:
    """rendered, image: float (B, 3, S, S) in [0, 1]; where: bool (B, S, S). Mean absolute colour
    difference over the pixels of `where` (0 when there are none)."""
    assert_shape(image, tuple(rendered.shape), "image")
    weight = where[:, None].to(rendered.dtype)
    return ((rendered - image).abs() * weight).sum() / (3 * weight.sum()).clamp(min=1)


def part_loss(logits: Tensor, labels: Tensor, where: Tensor) -> Tensor:
    """logits: float (B, K, S, S) rendered part logits; labels: int64 (B, S, S) in [0, K); where:
    bool (B, S, S). Cross-entropy over the foreground classes 1..K-1 on pixels of `where` whose
    label is not background (the surface is never background; the silhouette term handles that)."""
    keep = where & (labels > 0)
    if not keep.any():
        return logits.sum() * 0
    pixels = logits[:, 1:].permute(0, 2, 3, 1)[keep]  # (N, K - 1)
    return F.cross_entropy(pixels, labels[keep] - 1)


KEYPOINT_LOSSES = ("squared", "distance", "cauchy")


def keypoint_loss(keypoints: Tensor, cameras: Cameras, target: Tensor, kind: str = "squared",
                  scale: float = 0.05) -> Tensor:
    """keypoints: float (B, P, 3) world; target: float (B, P, 3) rows (x, y, visible) in pixels.
    Mean squared pixel distance of the visible keypoints' projections, in units of the image side; kind
    "distance": the mean distance itself, whose optimum over noisy labels is their median rather than their
    mean, so that a few labels far off pull less (smoothed below a thousandth of the side); kind "cauchy" (the
    trainer's default): scale * log(1 + (distance / scale)^2), whose pull is the distance's at `scale` (a share of
    the side) and fades beyond it, so that labels far off hardly pull at all: the optimum is where most agree."""
    assert_shape(target, tuple(keypoints.shape), "target")
    if kind not in KEYPOINT_LOSSES:
        raise ValueError(f"unknown keypoint loss {kind!r}; valid: {', '.join(KEYPOINT_LOSSES)}")
    uv = project(keypoints, cameras)[..., :2]
    visible = target[..., 2] > 0
    if not visible.any():
        return keypoints.sum() * 0
    squared = ((uv - target[..., :2]) / cameras.image_size)[visible].square().sum(-1)
    if kind == "cauchy":
        return (scale * torch.log1p(squared / scale ** 2)).mean()
    return squared.mean() if kind == "squared" else (squared + 1e-6).sqrt().mean()


def perceptual_loss(feature_maps, rendered: Tensor, image: Tensor, covered: Tensor) -> Tensor:
    """feature_maps: float (B, 3, S, S) images in [0, 1] -> list of float (B, C, h, w); rendered, image: float
    (B, 3, S, S); covered: bool (B, S, S) where the mesh is drawn. The sum over layers of the mean L1 distance
    between the features of the view and of the rendering pasted onto it (GANverse3D's perceptual term)."""
    composite = torch.where(covered[:, None], rendered, image)
    return sum((a - b).abs().mean() for a, b in zip(feature_maps(composite), feature_maps(image)))


def laplacian_loss(vertices: Tensor, laplacian: Tensor) -> Tensor:
    """vertices: float (B, V, 3); laplacian: sparse float (V, V). Mean squared length of L x per vertex."""
    batch, n, _ = vertices.shape
    flat = vertices.permute(1, 0, 2).reshape(n, batch * 3)
    return torch.sparse.mm(laplacian, flat).view(n, batch, 3).square().sum(-1).mean()


def flatten_loss(vertices: Tensor, faces: Tensor, edge_faces: Tensor) -> Tensor:
    """vertices: float (B, V, 3); faces: int64 (F, 3); edge_faces: int64 (E, 2) the two faces of each
    edge. Mean (1 - cos)^2 of the angle between the normals of neighbouring faces (0 when flat)."""
    a, b, c = vertices[:, faces].unbind(2)
    normals = F.normalize(torch.cross(b - a, c - a, dim=-1), dim=-1, eps=1e-12)  # (B, F, 3)
    cos = (normals[:, edge_faces[:, 0]] * normals[:, edge_faces[:, 1]]).sum(-1)
    return (1 - cos).square().mean()


def deformation_loss(offsets: Tensor) -> Tensor:
    """offsets: float (B, V, 3). Mean squared offset length (metres squared)."""
    return offsets.square().sum(-1).mean()


def weighted_sum(terms: dict[str, Tensor], weights: LossWeights) -> Tensor:
    """sum over terms of weight * term; every term must have a weight of the same name."""
    table = asdict(weights)
    unknown = set(terms) - set(table)
    if unknown:
        raise KeyError(f"no weight for loss terms {sorted(unknown)}; valid: {', '.join(table)}")
    return sum(table[name] * value for name, value in terms.items())
