"""The toy world: one seed -> a rendered car on a cluttered background with exact part labels,
keypoints (with visibility), camera and shape parameters.

Rendering is done at `resolution * supersample` pixels by our own rasterizer and box-filtered down
(anti-aliasing); the label of an output pixel is the class covering most of its sub-pixels.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from datasets.base import Sample
from datasets.classes import CAR_12
from datasets.toy.car import build_car, sample_params
from inverse_graphics import RasterSettings, interpolate_face, look_at, project, rasterize


@dataclass(frozen=True)
class ToySettings:
    """How toy samples are drawn; angles in degrees."""

    resolution: int = 64
    supersample: int = 4             # sub-pixels per output pixel along each axis (anti-aliasing)
    elevation: tuple[float, float] = (0.0, 20.0)
    fov: tuple[float, float] = (25.0, 40.0)
    fill: tuple[float, float] = (0.65, 0.95)  # fraction of the image width the car's length spans
    clutter: tuple[int, int] = (8, 20)        # number of background shapes
    pixel_noise: float = 2.0         # std of Gaussian noise added to the 8-bit image

    def __post_init__(self):
        if not (isinstance(self.resolution, int) and self.resolution > 0):
            raise ValueError(f"resolution must be a positive integer, got {self.resolution!r}")
        if not (isinstance(self.supersample, int) and self.supersample > 0):
            raise ValueError(f"supersample must be a positive integer, got {self.supersample!r}")


def clutter_background(rng: np.random.Generator, size: int, shapes: tuple[int, int]) -> np.ndarray:
    """float32 (size, size, 3) in [0, 1]: a sky/ground gradient under random boxes, discs and poles."""
    rows = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    horizon = rng.uniform(0.35, 0.7)
    sky = rng.uniform(0.4, 1.0, 3) * (1 - 0.4 * rows) + 0.1
    ground = rng.uniform(0.1, 0.6, 3) * (0.7 + 0.5 * rows)
    image = np.where(rows < horizon, sky, ground) * np.ones((1, size, 1), np.float32)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for _ in range(rng.integers(*shapes, endpoint=True)):
        kind = rng.integers(3)
        cx, cy, w, h = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.4), rng.uniform(0.05, 0.5)
        if kind == 0:    # a building or a box
            mask = (np.abs(x - cx) < w / 2) & (np.abs(y - cy) < h / 2)
        elif kind == 1:  # a bush or a ball
            mask = ((x - cx) / (w / 2)) ** 2 + ((y - cy) / (h / 2)) ** 2 < 1
        else:            # a pole or a stripe
            mask = np.abs(x - cx) < w / 12
        alpha = rng.uniform(0.5, 1.0)
        image[mask] = (1 - alpha) * image[mask] + alpha * rng.uniform(0, 1, 3)
    return np.clip(image, 0, 1).astype(np.float32)


def _shade(verts: np.ndarray, faces: np.ndarray, albedo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float32 (F, 3): Lambertian face colours under a random directional light plus ambient."""
    a, b, c = (verts[faces[:, i]] for i in range(3))
    normals = np.cross(b - a, c - a)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    az, el = rng.uniform(0, 2 * np.pi), rng.uniform(np.radians(25), np.radians(75))
    light = np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
    ambient = rng.uniform(0.35, 0.55)
    jitter = 1 + rng.normal(0, 0.03, (len(faces), 1))  # slight per-face colour noise
    return np.clip(albedo * jitter * (ambient + (1 - ambient) * np.clip(normals @ light, 0, 1)[:, None]), 0, 1)


def render_sample(seed: int, settings: ToySettings = ToySettings()) -> Sample:
    """Draw the toy sample of `seed`.

    Returns a Sample with image uint8 (R, R, 3), labels int64 (R, R) in ADE-Car-12,
    keypoints float32 (16, 3) (datasets.toy.car.KEYPOINT_NAMES) rows (x, y, visible) in output pixels, and meta
    with the seed, the camera (degrees), the car's shape parameters and the mesh's world size.
    """
    rng = np.random.default_rng(seed)
    params = sample_params(rng)
    mesh = build_car(params)
    s, k = settings.resolution, settings.supersample
    size = s * k
    fov = rng.uniform(*settings.fov)
    distance = params.length / (2 * rng.uniform(*settings.fill) * np.tan(np.radians(fov) / 2))
    camera = {"azimuth": rng.uniform(0, 360), "elevation": rng.uniform(*settings.elevation),
              "distance": float(distance), "fov": float(fov)}
    colors = _shade(mesh.verts, mesh.faces, mesh.face_colors, rng)
    background = clutter_background(rng, size, settings.clutter)

    cams = look_at(*(torch.tensor([camera[n]], dtype=torch.float32) for n in ("azimuth", "elevation", "distance", "fov")),
                   image_size=size)
    verts = torch.from_numpy(mesh.verts)[None]
    faces = torch.from_numpy(mesh.faces)
    with torch.no_grad():
        frags = rasterize(project(verts, cams), faces, RasterSettings(image_size=size))
        rgb = interpolate_face(frags, torch.from_numpy(colors).float()[None])[0].numpy()
        kp = project(torch.from_numpy(mesh.keypoints)[None], cams)[0].numpy()
    covered = frags.face_idx[0].numpy() >= 0
    hi_rgb = np.where(covered[..., None], rgb, background)
    hi_labels = np.where(covered, mesh.face_labels[frags.face_idx[0].numpy().clip(min=0)], 0)

    image = hi_rgb.reshape(s, k, s, k, 3).mean((1, 3)) * 255 + rng.normal(0, settings.pixel_noise, (s, s, 3))
    votes = np.eye(len(CAR_12), dtype=np.int32)[hi_labels].reshape(s, k, s, k, -1).sum((1, 3))
    labels = votes.argmax(-1)
    keypoints = _keypoints_with_visibility(kp, frags.depth[0].numpy(), size, k)
    return Sample(
        image=np.clip(np.rint(image), 0, 255).astype(np.uint8),
        labels=labels.astype(np.int64),
        keypoints=keypoints,
        meta={"seed": int(seed), "camera": camera, "params": params.to_dict(),
              "settings": asdict(settings)},
    )


def _keypoints_with_visibility(kp: np.ndarray, depth: np.ndarray, size: int, k: int) -> np.ndarray:
    """kp: (P, 3) (u, v, z) in sub-pixels; a keypoint is visible when it is inside the image and
    no surface lies more than a few centimetres in front of it at its sub-pixel."""
    u, v, z = kp.T
    inside = (u >= 0) & (u < size) & (v >= 0) & (v < size) & (z > 0)
    iu, iv = np.clip(u.astype(int), 0, size - 1), np.clip(v.astype(int), 0, size - 1)
    visible = inside & (z <= depth[iv, iu] + 0.05)
    return np.stack([u / k, v / k, visible.astype(np.float32)], 1).astype(np.float32)

