"""A turntable picture of a reconstruction: views from evenly spaced azimuths around the car, drawn by
our own rasterizer (inverse_graphics) in one row, coloured by the reconstruction's vertex colours or
by the ADE-Car-12 part palette, with flat Lambertian shading under a light that follows the camera.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from datasources.classes import CAR_12
from datasources.files import atomic_write
from downstream.recon import check_recon
from inverse_graphics import RasterSettings, interpolate, interpolate_face, look_at, project, rasterize

COLOR_BY = ("vertex", "part")


@dataclass(frozen=True)
class TurntableSettings:
    """How the turntable is drawn; angles in degrees."""

    views: int = 8  # azimuths 0, 360/views, ...; azimuth 0 is the car's right side (camera.py)
    image_size: int = 128  # each view is image_size x image_size pixels
    elevation: float = 15.0
    fov: float = 30.0  # the car's bounding sphere just fills this vertical field of view
    supersample: int = 2  # sub-pixels per pixel along each axis, box-filtered (anti-aliasing)
    color_by: str = "vertex"  # one of COLOR_BY: the reconstruction's colours, or the part palette
    ambient: float = 0.4  # shading = ambient + (1 - ambient) * max(0, normal . light)
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self):
        if self.color_by not in COLOR_BY:
            raise ValueError(f"color_by must be one of {', '.join(COLOR_BY)}, got {self.color_by!r}")
        if self.views < 1 or self.image_size < 1 or self.supersample < 1:
            raise ValueError("views, image_size and supersample must be positive")


def draw(verts: np.ndarray, faces: np.ndarray, cams, settings: TurntableSettings, vertex_colors: np.ndarray | None = None,
         face_colors: np.ndarray | None = None, unlit: np.ndarray | None = None) -> np.ndarray:
    """Draw one mesh (verts float (V, 3), faces int (F, 3)) through n cameras at settings.image_size x
    settings.supersample pixels: albedo from vertex_colors float (V, 3) or face_colors float (F, 3) in [0, 1],
    flat Lambertian shading under a light that follows the camera except on `unlit` faces (bool (F,), glowing
    lamps), box-filtered. Returns uint8 (n, S, S, 3)."""
    n, size = len(cams.R), settings.image_size * settings.supersample
    torch_faces = torch.from_numpy(faces)
    corners = verts[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    with torch.no_grad():
        frags = rasterize(project(torch.from_numpy(verts).float().expand(n, -1, -1), cams), torch_faces,
                          RasterSettings(image_size=size))
        light = torch.nn.functional.normalize(-cams.R[:, 2] + torch.tensor([0.0, 0.5, 0.0]), dim=-1)  # (n, 3)
        lit = (torch.from_numpy(normals).float() @ light.T).clamp(min=0).T  # (n, F)
        lit = settings.ambient + (1 - settings.ambient) * lit
        if unlit is not None:
            lit[:, torch.from_numpy(unlit)] = 1.0
        shade = interpolate_face(frags, lit[..., None])
        if vertex_colors is not None:
            albedo = interpolate(frags, torch_faces, torch.from_numpy(vertex_colors).float().expand(n, -1, -1))
        else:
            albedo = interpolate_face(frags, torch.from_numpy(face_colors).float().expand(n, -1, -1))
        covered = (frags.face_idx >= 0)[..., None]
        rgb = torch.where(covered, albedo * shade, torch.tensor(settings.background)).numpy()
    k, s = settings.supersample, settings.image_size
    rgb = rgb.reshape(n, s, k, s, k, 3).mean((2, 4))  # box filter
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


def framing(verts: np.ndarray, settings: TurntableSettings) -> tuple[np.ndarray, float]:
    """(verts float (V, 3) with their bounding box centred at the origin, the camera distance at which their
    bounding sphere just fills the vertical field of view)."""
    centred = verts - (verts.min(0) + verts.max(0)) / 2
    return centred, float(np.linalg.norm(centred, axis=1).max() / np.sin(np.radians(settings.fov) / 2))


def render_turntable(recon: dict, settings: TurntableSettings = TurntableSettings()) -> np.ndarray:
    """recon: a dict as downstream.recon describes. Returns uint8 (S, views * S, 3), the views left to
    right by increasing azimuth, with the car's bounding box centred in each."""
    r = check_recon(recon)
    n, size = settings.views, settings.image_size * settings.supersample
    verts, distance = framing(r.vertices, settings)
    cams = look_at(torch.arange(n) * 360.0 / n, settings.elevation, distance, settings.fov, size)
    if settings.color_by == "vertex":
        views = draw(verts, r.faces, cams, settings, vertex_colors=r.vertex_colors)
    else:
        palette = np.asarray(CAR_12.palette, np.float32) / 255
        views = draw(verts, r.faces, cams, settings, face_colors=palette[r.face_labels])
    return np.concatenate(list(views), 1)


def save_turntable(recon: dict, path: str | Path, settings: TurntableSettings = TurntableSettings()) -> None:
    """Render the turntable and write it as a PNG at `path`, renamed into place when complete."""
    image = Image.fromarray(render_turntable(recon, settings))
    atomic_write(Path(path), lambda tmp: image.save(tmp, format="PNG"))
