"""The toy world: one seed -> a rendered car in a simple outdoor scene, with exact part labels,
keypoints (with visibility), camera and shape parameters.

The framing imitates LSUN car crops: the car is centred and spans most of the image width at every
azimuth. The scene is what a small GAN can learn: sky over a ground plane whose horizon lies where
the camera's elevation puts it, soft-edged buildings and trees standing on the horizon, a soft
shadow under the car and mild low-frequency texture. Every distribution is stated in ToySettings,
`scene_background` and datasources.toy.car.sample_params.

Rendering is done at `resolution * supersample` pixels by our own rasterizer and box-filtered down
(anti-aliasing); the label of an output pixel is the class covering most of its sub-pixels.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter, zoom

from datasources.base import Sample
from datasources.classes import CAR_12
from datasources.toy.car import CarMesh, CarParams, build_car, hsv, sample_params
from inverse_graphics import RasterSettings, interpolate_face, look_at, project, rasterize


@dataclass(frozen=True)
class ToySettings:
    """How toy samples are drawn; angles in degrees."""

    resolution: int = 64
    supersample: int = 4             # sub-pixels per output pixel along each axis (anti-aliasing)
    elevation: tuple[float, float] = (0.0, 20.0)
    fov: tuple[float, float] = (20.0, 35.0)
    fill: tuple[float, float] = (0.75, 0.95)  # fraction of the image width the car spans, at any azimuth
    max_height: float = 0.8          # ... unless its height would span more than this fraction (front views)
    buildings: tuple[int, int] = (0, 4)       # number of buildings on the horizon
    trees: tuple[int, int] = (0, 5)           # number of trees on the horizon
    texture: float = 0.04            # std of the low-frequency brightness texture (fraction of full scale)
    pixel_noise: float = 2.0         # std of Gaussian noise added to the 8-bit image

    def __post_init__(self):
        if not (isinstance(self.resolution, int) and self.resolution > 0):
            raise ValueError(f"resolution must be a positive integer, got {self.resolution!r}")
        if not (isinstance(self.supersample, int) and self.supersample > 0):
            raise ValueError(f"supersample must be a positive integer, got {self.supersample!r}")


def _soft_step(distance: np.ndarray, softness: float) -> np.ndarray:
    """Coverage in [0, 1] of a shape given the signed distance to its edge (negative inside)."""
    return 1 / (1 + np.exp(np.clip(distance / softness, -30, 30)))


def _low_frequency(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """float32 (size, size): unit-std noise on a `cells` x `cells` grid, smoothly upsampled."""
    grid = rng.normal(0, 1, (cells + 1, cells + 1))
    return zoom(grid, size / (cells + 1), order=3, grid_mode=True, mode="nearest")[:size, :size].astype(np.float32)


def scene_background(rng: np.random.Generator, size: int, horizon: float, settings: ToySettings) -> np.ndarray:
    """float32 (size, size, 3) in [0, 1]: sky above the horizon (a fraction of the image height from the
    top; it may lie outside [0, 1]), ground below, soft buildings and trees standing on the horizon.

    Sky: a blue-to-grey hue, lighter and less saturated toward the horizon. Ground: asphalt, grass or
    sand, hazier toward the horizon. Buildings: muted boxes 0.1-0.4 of the width wide and 0.05-0.35 of
    the height tall; trees: green ellipses 0.08-0.25 wide; both fade a little toward the sky colour.
    """
    y, x = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    soft = 1.0 / settings.resolution  # edges blurred over about one output pixel
    sky_top = hsv(rng.uniform(0.55, 0.65), rng.uniform(0.05, 0.6), rng.uniform(0.6, 0.95))
    sky_low = sky_top + rng.uniform(0.3, 0.7) * (0.92 - sky_top)
    t = np.clip(y / max(horizon, 1e-3), 0, 1)[..., None]
    sky = sky_top * (1 - t) + sky_low * t
    ground_kind = rng.integers(3)
    ground_hsv = [(rng.uniform(0, 1), rng.uniform(0, 0.1), rng.uniform(0.25, 0.5)),      # asphalt
                  (rng.uniform(0.2, 0.33), rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.55)),  # grass
                  (rng.uniform(0.07, 0.12), rng.uniform(0.2, 0.5), rng.uniform(0.4, 0.65))][ground_kind]  # sand
    ground = hsv(*ground_hsv)
    depth = np.clip((y - horizon) / 0.5, 0, 1)[..., None]   # 0 at the horizon, 1 half an image below
    ground = ground * (0.85 + 0.15 * depth) + (1 - depth) * 0.25 * (sky_low - ground)
    image = np.where((y < horizon)[..., None], sky, ground)
    haze = lambda color: color + rng.uniform(0, 0.3) * (sky_low - color)
    for _ in range(rng.integers(*settings.buildings, endpoint=True)):
        cx, w, h = rng.uniform(0, 1), rng.uniform(0.1, 0.4), rng.uniform(0.05, 0.35)
        box = np.maximum(np.abs(x - cx) - w / 2, np.maximum(horizon - h - y, y - horizon - 0.01))
        color = haze(hsv(rng.uniform(0, 1), rng.uniform(0, 0.25), rng.uniform(0.35, 0.8)))
        image += _soft_step(box, soft)[..., None] * (color - image)
    for _ in range(rng.integers(*settings.trees, endpoint=True)):
        cx, w, h = rng.uniform(0, 1), rng.uniform(0.08, 0.25), rng.uniform(0.1, 0.3)
        r = np.sqrt(((x - cx) / (w / 2)) ** 2 + ((y - (horizon - 0.6 * h)) / (h / 2)) ** 2)
        color = haze(hsv(rng.uniform(0.2, 0.4), rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.5)))
        image += _soft_step((r - 1) * min(w, h) / 2, soft)[..., None] * (color - image)
    image *= 1 + settings.texture * _low_frequency(rng, size, 8)[..., None]
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


def _footprint(params: CarParams, margin: float = 0.0) -> np.ndarray:
    """float32 (4, 3): the corners of the car's ground rectangle (centred mesh coordinates), grown by margin."""
    x, z, y = params.length / 2 + margin, params.width / 2 + margin, -params.height / 2
    return np.array([[x, y, z], [x, y, -z], [-x, y, -z], [-x, y, z]], np.float32)


def _framing_distance(verts: np.ndarray, azimuth: float, elevation: float, fov: float, fill: float,
                      max_height: float) -> float:
    """The camera distance at which the car spans `fill` of the image width, or `max_height` of its height if
    that is further. Spans are measured from the image centre (twice the furthest vertex), so that the
    near end of a car seen at an angle, which perspective enlarges, stays in the frame."""
    points = torch.from_numpy(verts)[None]
    distance = 10.0 * float(np.abs(verts).max())
    for _ in range(3):  # perspective: the width is not exactly inverse to the distance; a few fixed-point steps
        u, v = project(points, look_at(azimuth, elevation, distance, fov, image_size=1))[0, :, :2].T
        distance *= max(2 * float((u - 0.5).abs().max()) / fill, 2 * float((v - 0.5).abs().max()) / max_height)
    return distance


def render_sample(seed: int, settings: ToySettings = ToySettings()) -> Sample:
    """Draw the toy sample of `seed`.

    Returns a Sample with image uint8 (R, R, 3), labels int64 (R, R) in ADE-Car-12,
    keypoints float32 (16, 3) (datasources.toy.car.KEYPOINT_NAMES) rows (x, y, visible) in output pixels, and meta
    with the seed, the camera (degrees), the car's shape parameters and the mesh's world size.
    """
    rng = np.random.default_rng(seed)
    params = sample_params(rng)
    mesh = build_car(params)
    s, k = settings.resolution, settings.supersample
    size = s * k
    azimuth, elevation = rng.uniform(0, 360), rng.uniform(*settings.elevation)
    fov, fill = rng.uniform(*settings.fov), rng.uniform(*settings.fill)
    camera = {"azimuth": azimuth, "elevation": elevation,
              "distance": _framing_distance(mesh.verts, azimuth, elevation, fov, fill, settings.max_height), "fov": fov}
    colors = _shade(mesh.verts, mesh.faces, mesh.face_colors, rng)
    # the horizon is the image of horizontal rays: tan(elevation) above the optical axis
    horizon = 0.5 - np.tan(np.radians(elevation)) / (2 * np.tan(np.radians(fov) / 2))
    background = scene_background(rng, size, horizon, settings)

    cams = _cameras(camera, size)
    verts = torch.from_numpy(mesh.verts)[None]
    faces = torch.from_numpy(mesh.faces)
    with torch.no_grad():
        frags = rasterize(project(verts, cams), faces, RasterSettings(image_size=size))
        rgb = interpolate_face(frags, torch.from_numpy(colors).float()[None])[0].numpy()
        kp = project(torch.from_numpy(mesh.keypoints)[None], cams)[0].numpy()
        shadow_corners = project(torch.from_numpy(_footprint(params, 0.2))[None], cams)[0, :, :2].numpy()
    shadow = Image.new("F", (size, size), 0.0)
    ImageDraw.Draw(shadow).polygon([tuple(p) for p in shadow_corners.astype(float)], fill=1.0)
    shadow = gaussian_filter(np.asarray(shadow), sigma=1.5 * k)[..., None]
    background = background * (1 - rng.uniform(0.35, 0.6) * shadow)
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
        meta={"seed": int(seed), "camera": {n: float(v) for n, v in camera.items()}, "params": params.to_dict(),
              "settings": asdict(settings)},
    )


def _cameras(camera: dict, size: int):
    """One camera (azimuth, elevation, distance, fov; degrees) for size x size images, as inverse_graphics.Cameras."""
    return look_at(*(torch.tensor([camera[n]], dtype=torch.float32) for n in ("azimuth", "elevation", "distance", "fov")),
                   image_size=size)


def keypoints_in_view(mesh: CarMesh, camera: dict, size: int) -> np.ndarray:
    """A car's keypoints seen by camera (azimuth, elevation, distance, fov; degrees) in a size x size image:
    float32 (len(KEYPOINT_NAMES), 3) rows (x, y, visible) in pixels, visibility as render_sample's."""
    cams = _cameras(camera, size)
    with torch.no_grad():
        frags = rasterize(project(torch.from_numpy(mesh.verts)[None], cams), torch.from_numpy(mesh.faces),
                          RasterSettings(image_size=size))
        kp = project(torch.from_numpy(mesh.keypoints)[None], cams)[0].numpy()
    return _keypoints_with_visibility(kp, frags.depth[0].numpy(), size, 1)


def _keypoints_with_visibility(kp: np.ndarray, depth: np.ndarray, size: int, k: int) -> np.ndarray:
    """kp: (P, 3) (u, v, z) in sub-pixels; a keypoint is visible when it is inside the image and
    no surface lies more than a few centimetres in front of it at its sub-pixel."""
    u, v, z = kp.T
    inside = (u >= 0) & (u < size) & (v >= 0) & (v < size) & (z > 0)
    iu, iv = np.clip(u.astype(int), 0, size - 1), np.clip(v.astype(int), 0, size - 1)
    visible = inside & (z <= depth[iv, iu] + 0.05)
    return np.stack([u / k, v / k, visible.astype(np.float32)], 1).astype(np.float32)

