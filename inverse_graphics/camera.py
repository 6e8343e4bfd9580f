"""Perspective cameras orbiting the origin, and projection of world points to pixels.

Conventions, shared by the whole inverse_graphics package:

- World: right-handed, y up, objects around the origin. A car's front points to +x,
  its height is +y, its width is along z.
- Cameras come from azimuth/elevation (degrees), distance and vertical field of view
  (degrees); they always look at the origin with world up +y. Camera position =
  distance * (cos(el) sin(az), sin(el), cos(el) cos(az)): azimuth 0 looks from +z (a side
  view of the car, its front to the right of the image), azimuth 90 looks from +x (front
  view), elevation > 0 looks from above. Elevation +-90 is degenerate (up = view axis).
- Camera space: x right, y down, z forward (depth z > 0 in front of the camera),
  OpenCV-like: x_cam = R x_world + T.
- Image: pixel (u, v), u to the right, v down, origin at the top-left image corner,
  pixel centres at integer + 0.5; square images of size S; focal length in pixels
  f = (S / 2) / tan(fov / 2); u = f x / z + S/2, v = f y / z + S/2.
- Triangle winding: faces are counter-clockwise seen from outside (outward normals by
  the right-hand rule, as trimesh.creation.box/icosphere give). A face is front-facing
  when its normal points toward the camera. For vertices in front of the camera, the
  signed area A = ((u1-u0)(v2-v0) - (v1-v0)(u2-u0)) / 2 in pixel coordinates equals
  f^2 det[p0 p1 p2] / (2 z0 z1 z2) with p_i in camera space, so front-facing <=> A < 0
  (such a face looks counter-clockwise on the displayed image, whose v axis points down).
  Back-face culling drops faces with A >= 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import Sequence

import torch
from torch import Tensor


def assert_shape(tensor: Tensor, shape: Sequence[int | None], name: str) -> None:
    """Raise ValueError unless tensor has len(shape) dims matching shape (None = any size)."""
    ok = tensor.dim() == len(shape) and all(
        want is None or want == got for want, got in zip(shape, tensor.shape)
    )
    if not ok:
        wanted = tuple("*" if want is None else want for want in shape)
        raise ValueError(f"{name}: expected shape {wanted}, got {tuple(tensor.shape)}")


@dataclass(frozen=True)
class Cameras:
    """A batch of pinhole cameras with square images; x_cam = R x_world + T."""

    R: Tensor  # float (B, 3, 3) world -> camera rotation
    T: Tensor  # float (B, 3) translation
    focal: Tensor  # float (B,) focal length in pixels
    image_size: int  # S, images are S x S pixels

    def __len__(self) -> int:
        """The batch size B."""
        return self.R.shape[0]

    def to(self, device: torch.device | str) -> "Cameras":
        """Return the same cameras with their tensors on device."""
        return Cameras(self.R.to(device), self.T.to(device), self.focal.to(device), self.image_size)


def _as_batch(values: Sequence[Tensor | float]) -> list[Tensor]:
    """Turn floats and (B,) / scalar tensors into broadcast (B,) float tensors on the tensors' device."""
    tensors = [v for v in values if isinstance(v, Tensor)]
    dtype = reduce(torch.promote_types, (t.dtype for t in tensors), torch.get_default_dtype())
    device = tensors[0].device if tensors else None
    out = [torch.as_tensor(v, dtype=dtype, device=device).reshape(-1) for v in values]
    return list(torch.broadcast_tensors(*out))


def look_at(
    azimuth: Tensor | float,
    elevation: Tensor | float,
    distance: Tensor | float,
    fov: Tensor | float,
    image_size: int,
) -> Cameras:
    """azimuth, elevation: float (B,) degrees; distance: float (B,) to the origin; fov: float (B,)
    vertical field of view in degrees. Floats broadcast. Differentiable in all four."""
    az, el, dist, fov_t = _as_batch([azimuth, elevation, distance, fov])
    az, el = torch.deg2rad(az), torch.deg2rad(el)
    sa, ca, se, ce = az.sin(), az.cos(), el.sin(), el.cos()
    zero = torch.zeros_like(az)
    # Closed forms of right = forward x up / |.|, down = forward x right, forward = -position / |.|.
    right = torch.stack([ca, zero, -sa], -1)
    down = torch.stack([se * sa, -ce, se * ca], -1)
    forward = -torch.stack([ce * sa, se, ce * ca], -1)
    R = torch.stack([right, down, forward], -2)
    T = torch.stack([zero, zero, dist], -1)  # -R @ position: the origin lies at depth distance
    focal = (image_size / 2) / torch.tan(torch.deg2rad(fov_t) / 2)
    return Cameras(R, T, focal, image_size)


def project(points: Tensor, cameras: Cameras) -> Tensor:
    """points: float (B, N, 3) world positions. Returns float (B, N, 3) = (u, v, z_cam) in pixels
    and camera depth. Points with z_cam = 0 give infinite u, v. Differentiable."""
    assert_shape(points, (len(cameras), None, 3), "points")
    cam = points @ cameras.R.transpose(1, 2) + cameras.T[:, None, :]
    x, y, z = cam.unbind(-1)
    f = cameras.focal[:, None]
    centre = cameras.image_size / 2
    return torch.stack([f * x / z + centre, f * y / z + centre, z], -1)
