"""The sphere template the reconstructor deforms: an icosphere stretched to a car-sized ellipsoid, or
shrink-wrapped onto the toy world's mean car (same sphere topology), with spherical UV coordinates, its
uniform Laplacian, flatten-loss edge pairs and mirror pairs.

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


TEMPLATE_SHAPES = ("ellipsoid", "mean-car")


@dataclass(frozen=True)
class TemplateSettings:
    """Which sphere, and its rest shape: the ellipsoid of half-extents `radii` (metres), or "mean-car": each
    vertex pushed along its direction to the outer surface of the toy world's mean car (mean_car_radii)."""

    subdivisions: int = 3  # 642 vertices, 1280 faces (DIB-R's sphere)
    radii: tuple[float, float, float] = (2.1, 0.7, 0.9)  # x (length), y (height), z (width): a mean toy car
    shape: str = "ellipsoid"  # one of TEMPLATE_SHAPES

    def __post_init__(self):
        if self.shape not in TEMPLATE_SHAPES:
            raise ValueError(f"template shape must be one of {', '.join(TEMPLATE_SHAPES)}, got {self.shape!r}")


class Template:
    """The rest mesh and its fixed companions, as CPU tensors (the reconstructor keeps them as buffers)."""

    def __init__(self, settings: TemplateSettings = TemplateSettings()):
        self.settings = settings
        sphere = trimesh.creation.icosphere(subdivisions=settings.subdivisions)
        unit = np.asarray(sphere.vertices, np.float64)
        self.faces = torch.as_tensor(np.asarray(sphere.faces), dtype=torch.int64)  # (F, 3)
        mirror = _mirror_index(unit)
        if settings.shape == "ellipsoid":
            rest = unit * np.asarray(settings.radii)
        else:
            radii = mean_car_radii(unit)
            rest = unit * ((radii + radii[mirror]) / 2)[:, None]   # exactly symmetric across z = 0
        self.vertices = torch.as_tensor(rest, dtype=torch.float32)  # (V, 3)
        self.vertex_uvs = torch.as_tensor(_spherical_uv(unit), dtype=torch.float32)  # (V, 2)
        self.face_uvs = _seamless_face_uvs(self.vertex_uvs, self.faces)  # (F, 3, 2)
        self.edge_faces = torch.tensor(sphere.face_adjacency, dtype=torch.int64)  # (E, 2) faces sharing an edge
        self.mirror = torch.as_tensor(mirror, dtype=torch.int64)  # (V,) vertex at (x, y, -z)
        self.laplacian = _uniform_laplacian(sphere)  # sparse float (V, V)

    @property
    def num_vertices(self) -> int:
        return self.vertices.shape[0]

    @cached_property
    def signature(self) -> str:
        """A short hash of the rest vertices and faces: checkpoints of another template do not match it."""
        digest = hashlib.sha256(self.vertices.numpy().round(5).tobytes() + self.faces.numpy().tobytes())
        return digest.hexdigest()[:16]


def mean_car_radii(directions: np.ndarray, samples: int = 1000) -> np.ndarray:
    """float (V,): how far the toy world's mean car (each shape parameter of datasources.toy.car averaged over
    `samples` seeded draws) reaches from its box centre along each unit direction float (V, 3): the outermost
    hit of a ray, so hidden insides of overlapping parts are skipped."""
    from datasources.toy.car import build_car, mean_params

    car = build_car(mean_params(samples))
    centre = (car.verts.min(0) + car.verts.max(0)) / 2
    radii = _farthest_hits(centre, directions, car.verts[car.faces])
    if (radii <= 0).any():
        raise ValueError("a template direction misses the mean car: its centre is not inside it")
    return radii


def _farthest_hits(origin: np.ndarray, directions: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """float (V,): the largest t with origin + t * direction on a triangle (Moller-Trumbore, every ray against
    every triangle float (F, 3, 3)); 0 where a ray hits none."""
    e1, e2 = triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]
    p = np.cross(directions[:, None], e2[None])   # (V, F, 3)
    det = (e1[None] * p).sum(-1)
    inv = 1 / np.where(np.abs(det) > 1e-12, det, np.inf)
    s = origin - triangles[:, 0]   # (F, 3)
    q = np.cross(s, e1)
    u = (s[None] * p).sum(-1) * inv
    v = (directions[:, None] * q[None]).sum(-1) * inv
    t = (e2 * q).sum(-1)[None] * inv
    hit = (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    return np.where(hit, t, 0.0).max(1)


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
