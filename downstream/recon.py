"""The reconstruction dict of `inverse_graphics.reconstruct`, checked once where downstream code takes it.

Conventions (those of inverse_graphics.camera and datasources.toy.car): world in metres, y up, the car's
front at +x, its right side at +z, the car near the origin; faces counter-clockwise seen from outside;
face labels are ADE-Car-12 indices (datasources.classes.CAR_12); keypoints are named by the optional
"keypoint_names" (default datasources.toy.car.KEYPOINT_NAMES). Other keys (a UV texture, say) are ignored.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasources.classes import CAR_12
from datasources.toy.car import KEYPOINT_NAMES


@dataclass(frozen=True)
class Reconstruction:
    """A checked reconstruction: arrays in the dtypes below, indices in range, colours in [0, 1]."""

    vertices: np.ndarray  # float64 (V, 3) world positions
    faces: np.ndarray  # int64 (F, 3) vertex indices, counter-clockwise from outside
    face_labels: np.ndarray  # int64 (F,) ADE-Car-12 class of each face
    vertex_colors: np.ndarray  # float64 (V, 3) RGB albedo in [0, 1]
    keypoints: np.ndarray | None  # float64 (P, 3) world positions, or None
    keypoint_names: tuple[str, ...]  # (P,) names of the keypoints' rows


def _array(recon: dict, key: str, shape: tuple, kind: str) -> np.ndarray:
    """recon[key] as an array of numpy kind 'f' or 'i' whose shape matches (None = any size)."""
    if key not in recon:
        raise ValueError(f"reconstruction: missing {key!r} (keys present: {', '.join(sorted(recon))})")
    value = np.asarray(recon[key])
    wanted = tuple("*" if n is None else n for n in shape)
    if value.ndim != len(shape) or any(n is not None and n != got for n, got in zip(shape, value.shape)):
        raise ValueError(f"reconstruction: {key!r} must have shape {wanted}, got {value.shape}")
    if value.dtype.kind not in ("iu" if kind == "i" else "fiu"):
        wanted_kind = "integer" if kind == "i" else "numeric"
        raise ValueError(f"reconstruction: {key!r} must be {wanted_kind}, got {value.dtype}")
    if kind == "f" and not np.isfinite(value).all():
        raise ValueError(f"reconstruction: {key!r} holds NaN or infinite values")
    return value.astype(np.float64 if kind == "f" else np.int64)


def check_recon(recon: dict) -> Reconstruction:
    """Validate `recon` (keys vertices, faces, face_labels, vertex_colors, optional keypoints and
    keypoint_names; shapes in Reconstruction) and return it as a Reconstruction; a ValueError names
    the first bad key."""
    vertices = _array(recon, "vertices", (None, 3), "f")
    faces = _array(recon, "faces", (None, 3), "i")
    labels = _array(recon, "face_labels", (len(faces),), "i")
    colors = _array(recon, "vertex_colors", (len(vertices), 3), "f")
    if len(faces) == 0 or faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"reconstruction: 'faces' must be non-empty indices into {len(vertices)} vertices")
    if labels.min() < 0 or labels.max() >= len(CAR_12):
        raise ValueError(f"reconstruction: 'face_labels' must lie in [0, {len(CAR_12)}) (ADE-Car-12)")
    if colors.min() < 0 or colors.max() > 1:
        raise ValueError("reconstruction: 'vertex_colors' must lie in [0, 1]")
    names = tuple(recon.get("keypoint_names", KEYPOINT_NAMES))
    keypoints = None if recon.get("keypoints") is None else _array(recon, "keypoints", (len(names), 3), "f")
    return Reconstruction(vertices, faces, labels, colors, keypoints, names)
