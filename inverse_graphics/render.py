"""Rendering a UV-mapped mesh (the reconstructor's prediction) into a soft silhouette, a colour
image and a part-logit image, differentiably, with the rasterizer of this package."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .camera import Cameras, assert_shape, project
from .rasterizer import RasterSettings, interpolate, rasterize, soft_silhouette


@dataclass(frozen=True)
class Rendered:
    """What the cameras see of a batch of UV-mapped meshes."""

    silhouette: Tensor  # float (B, S, S) soft coverage in [0, 1] (DIB-R style, see rasterizer.py)
    covered: Tensor  # bool (B, S, S) a face covers the pixel centre
    maps: Tensor  # float (B, C, S, S) the UV maps sampled at each covered pixel, zeros elsewhere
    screen: Tensor  # float (B, V, 3) projected vertices (u, v, z_cam)


def sample_uv(maps: Tensor, uv: Tensor) -> Tensor:
    """maps: float (B, C, T, T) UV images; uv: float (B, N, 2) with u in [0, 2) (template.py's seam
    convention), v in [0, 1]. Returns float (B, N, C) bilinear samples, u wrapping around."""
    assert_shape(uv, (maps.shape[0], None, 2), "uv")
    wrapped = torch.cat([maps, maps, maps], -1)  # (B, C, T, 3T): u in [-1, 2) with no edge near [0, 2)
    grid = torch.stack([2 * (uv[..., 0] + 1) / 3 - 1, 2 * uv[..., 1] - 1], -1)[:, None]  # (B, 1, N, 2) in [-1, 1]
    samples = F.grid_sample(wrapped, grid, mode="bilinear", padding_mode="border", align_corners=False)  # (B, C, 1, N)
    return samples[:, :, 0].transpose(1, 2)


def render_uv_mesh(vertices: Tensor, faces: Tensor, face_uvs: Tensor, maps: Tensor, cameras: Cameras,
                   settings: RasterSettings) -> Rendered:
    """vertices: float (B, V, 3) world; faces: int64 (F, 3); face_uvs: float (F, 3, 2) corner UVs;
    maps: float (B, C, T, T) UV maps (texture, part logits, ...). Differentiable in vertices, maps
    and the cameras."""
    batch, size = vertices.shape[0], settings.image_size
    assert_shape(face_uvs, (faces.shape[0], 3, 2), "face_uvs")
    assert_shape(maps, (batch, None, None, None), "maps")
    screen = project(vertices, cameras)
    fragments = rasterize(screen, faces, settings)
    silhouette = soft_silhouette(screen, faces, fragments, settings)
    corners = torch.arange(3 * faces.shape[0], device=faces.device).view(-1, 3)  # one "vertex" per face corner
    uv = interpolate(fragments, corners, face_uvs.reshape(1, -1, 2).expand(batch, -1, -1))  # (B, S, S, 2)
    covered = fragments.face_idx >= 0
    values = sample_uv(maps, uv.view(batch, -1, 2)).transpose(1, 2).reshape(batch, -1, size, size)
    return Rendered(silhouette, covered, values * covered[:, None], screen)
