"""Differentiable mesh rendering (cameras, rasterizer, soft silhouettes) for 3D car assets."""

from .camera import Cameras, assert_shape, look_at, project
from .rasterizer import (
    Fragments,
    RasterSettings,
    interpolate,
    interpolate_face,
    rasterize,
    rasterize_dense,
    soft_silhouette,
    soft_silhouette_dense,
)

__all__ = [
    "Cameras",
    "Fragments",
    "RasterSettings",
    "assert_shape",
    "interpolate",
    "interpolate_face",
    "look_at",
    "project",
    "rasterize",
    "rasterize_dense",
    "soft_silhouette",
    "soft_silhouette_dense",
]
