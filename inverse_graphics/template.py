"""The sphere template the reconstructor deforms: an icosphere stretched to a car-sized ellipsoid,
with spherical UV coordinates, its uniform Laplacian, flatten-loss edge pairs and mirror pairs.

Axes follow camera.py (y up, the car's front at +x, its right side at +z). UV: u = atan2(z, x) /
2 pi + 1/2 runs once around the vertical axis, v = acos(y / |p|) / pi runs from the top (0) to
the bottom (1); the texture's row index grows with v and its column index with u. Faces that
straddle the seam u = 0 = 1 get their small u's raised by 1, so their corner UVs (face_uvs) are
contiguous and u lies in [0, 2): textures are sampled with a wrapped copy (see render.py). The
poles (the roof's centre and the floor's) are vertices; their corners take their face's mean u.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
import trimesh
from torch import Tensor


@dataclass(frozen=True)
class TemplateSettings:
    """Which sphere, and the half-extents (metres) of the ellipsoid it is stretched to at rest."""

    subdivisions: int = 3  # 642 vertices, 1280 faces (DIB-R's sphere)
    radii: tuple[float, float, float] = (2.1, 0.7, 0.9)  # x (length), y (height), z (width): a mean toy car


class Template:
    """The rest mesh and its fixed companions, as CPU tensors (the reconstructor keeps them as buffers)."""

    def __init__(self, settings: TemplateSettings = TemplateSettings()):
        self.settings = settings
        sphere = trimesh.creation.icosphere(subdivisions=settings.subdivisions)
        unit = np.asarray(sphere.vertices, np.float64)
        self.faces = torch.as_tensor(np.asarray(sphere.faces), dtype=torch.int64)  # (F, 3)
        self.vertices = torch.as_tensor(unit * np.asarray(settings.radii), dtype=torch.float32)  # (V, 3)
        self.vertex_uvs = torch.as_tensor(_spherical_uv(unit), dtype=torch.float32)  # (V, 2)
        self.face_uvs = _seamless_face_uvs(self.vertex_uvs, self.faces)  # (F, 3, 2)
        self.edge_faces = torch.tensor(sphere.face_adjacency, dtype=torch.int64)  # (E, 2) faces sharing an edge
        self.mirror = torch.as_tensor(_mirror_index(unit), dtype=torch.int64)  # (V,) vertex at (x, y, -z)
        self.laplacian = _uniform_laplacian(sphere)  # sparse float (V, V)

    @property
    def num_vertices(self) -> int:
        return self.vertices.shape[0]

    @cached_property
    def signature(self) -> str:
        """A short hash of the rest vertices and faces: checkpoints of another template do not match it."""
        digest = hashlib.sha256(self.vertices.numpy().round(5).tobytes() + self.faces.numpy().tobytes())
        return digest.hexdigest()[:16]


def _spherical_uv(unit: np.ndarray) -> np.ndarray:
    """unit: float (V, 3) on the unit sphere -> float (V, 2) (u, v) in [0, 1] (module docstring)."""
    x, y, z = unit.T
    u = np.arctan2(z, x) / (2 * math.pi) + 0.5
    v = np.arccos(np.clip(y, -1, 1)) / math.pi
    return np.stack([u, v], 1)


def _seamless_face_uvs(vertex_uvs: Tensor, faces: Tensor) -> Tensor:
    """float (F, 3, 2) corner UVs: on faces spanning more than half the u range, u < 1/2 gets + 1; a
    corner on a pole (where u is undefined) takes the mean u of its face's other corners."""
    uvs = vertex_uvs[faces].clone()
    u, v = uvs.unbind(-1)
    pole = (v <= 1e-6) | (v >= 1 - 1e-6)
    spread = torch.where(pole, -1.0, u).amax(1) - torch.where(pole, 2.0, u).amin(1)
    u = torch.where((spread > 0.5)[:, None] & (u < 0.5) & ~pole, u + 1, u)
    others = torch.where(pole, 0.0, u).sum(1) / (~pole).sum(1)
    uvs[..., 0] = torch.where(pole, others[:, None], u)
    return uvs


def _mirror_index(unit: np.ndarray) -> np.ndarray:
    """int (V,): for each vertex the index of its reflection across z = 0 (the icosphere is symmetric)."""
    reflected = unit * np.array([1.0, 1.0, -1.0])
    distance = np.linalg.norm(reflected[:, None] - unit[None], axis=-1)
    index = distance.argmin(1)
    if distance[np.arange(len(unit)), index].max() > 1e-6:
        raise ValueError("the template sphere is not symmetric across z = 0")
    return index


def _uniform_laplacian(mesh: trimesh.Trimesh) -> Tensor:
    """Sparse float (V, V) L = I - D^-1 A over the mesh's edges: (L x)_i = x_i - mean of i's neighbours."""
    edges = np.asarray(mesh.edges_unique)
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    degree = np.bincount(rows, minlength=len(mesh.vertices)).astype(np.float64)
    n = len(mesh.vertices)
    index = np.concatenate([np.stack([rows, cols]), np.stack([np.arange(n)] * 2)], 1)
    values = np.concatenate([-1.0 / degree[rows], np.ones(n)])
    return torch.sparse_coo_tensor(torch.as_tensor(index), torch.as_tensor(values, dtype=torch.float32),
                                   (n, n), check_invariants=True).coalesce()
