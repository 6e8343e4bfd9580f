"""Differentiable triangle rasterization on sparse face-pixel pairs: a hard z-buffer with
perspective-correct barycentrics and a DIB-R style soft silhouette, plus brute-force twins.

Screen vertices are (u, v, z_cam) from camera.project; conventions are in camera.py.
Coverage: a pixel centre is inside a face when its three edge functions, signed to be
positive inside, are all > 0 or == 0 on an edge that owns it by the top-left rule (the
edge, run with the interior on its right in the v-down image, goes up or goes
horizontally to the right). Each edge function is evaluated from the edge's lower-index
vertex, so two faces on either side of a shared edge get exactly opposite values and a
pixel centre on that edge belongs to exactly one of them. Depth ties go to the lowest
face index. Faces with zero pixel area are never drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from .camera import assert_shape

_LOG_FLOOR = 1e-12  # smallest 1 - exp(-d^2/sigma) kept before the log


@dataclass(frozen=True)
class RasterSettings:
    """Image size, culling and soft silhouette blur for rasterize and soft_silhouette."""

    image_size: int = 64  # S: images are S x S pixels; must match the cameras' image_size
    cull_backfaces: bool = True  # drop back faces: signed pixel area > 0 (see camera.py)
    sigma: float = 1.0  # squared pixels: a face d pixels away covers a pixel by exp(-d^2 / sigma)
    near: float = 1e-3  # faces with any vertex at camera z <= near are dropped

    @property
    def soft_radius(self) -> float:
        """Pixels beyond which a face's soft coverage exp(-d^2/sigma) < 1.3e-4 is cut to 0."""
        return 3.0 * math.sqrt(self.sigma)


@dataclass(frozen=True)
class Fragments:
    """What each pixel centre sees; face_idx indexes the faces given to the rasterizer."""

    face_idx: Tensor  # int64 (B, H, W) visible face, -1 where no face covers the pixel centre
    bary: Tensor  # float (B, H, W, 3) perspective-correct barycentric weights, zeros where empty
    depth: Tensor  # float (B, H, W) camera z of the visible surface, +inf where empty


@dataclass(frozen=True)
class _Triangles:
    """Per-face screen-space data, one row per (batch, face) = b * F + f; edge k is the edge
    opposite corner k, stored from its lower-index vertex (anchor) to its higher one."""

    anchor_u: Tensor  # float (K, 3)
    anchor_v: Tensor  # float (K, 3)
    dir_u: Tensor  # float (K, 3) edge vector, higher-index vertex minus anchor
    dir_v: Tensor  # float (K, 3)
    sign: Tensor  # float (K, 3) +-1 making the edge function >= 0 inside the face
    top_left: Tensor  # bool (K, 3) the edge owns pixel centres lying exactly on it
    inv_z: Tensor  # float (K, 3) 1 / camera z of the corners
    area2: Tensor  # float (K,) twice the absolute pixel area

    def take(self, rows: Tensor) -> "_Triangles":
        """The rows picked by rows: int64 (N,)."""
        return _Triangles(**{f.name: getattr(self, f.name).index_select(0, rows) for f in fields(self)})

    def edge_values(self, pu: Tensor, pv: Tensor) -> Tensor:
        """pu, pv: float (...) pixel points broadcasting against the rows. Returns (..., 3)."""
        du, dv = pu[..., None] - self.anchor_u, pv[..., None] - self.anchor_v
        return self.sign * (self.dir_u * dv - self.dir_v * du)

    def inside(self, w: Tensor) -> Tensor:
        """w: float (..., 3) edge values. Returns bool (...) coverage with the top-left rule."""
        return ((w > 0) | ((w == 0) & self.top_left)).all(-1)

    def bary_depth(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """w: float (..., 3) edge values. Returns perspective-correct bary (..., 3), depth (...)."""
        t = w / self.area2[..., None] * self.inv_z  # screen weights over z
        depth = 1 / (t[..., 0] + t[..., 1] + t[..., 2])
        return t * depth[..., None], depth

    def sq_distance(self, pu: Tensor, pv: Tensor) -> Tensor:
        """pu, pv: float (...) pixel points. Returns float (...) squared distance to the edges."""
        du, dv = pu[..., None] - self.anchor_u, pv[..., None] - self.anchor_v
        length2 = self.dir_u * self.dir_u + self.dir_v * self.dir_v
        t = ((du * self.dir_u + dv * self.dir_v) / length2).clamp(0, 1)
        eu, ev = du - t * self.dir_u, dv - t * self.dir_v
        return (eu * eu + ev * ev).amin(-1)


def _check_inputs(screen_verts: Tensor, faces: Tensor) -> None:
    """Shape and dtype checks shared by the public entry points."""
    assert_shape(screen_verts, (None, None, 3), "screen_verts")
    assert_shape(faces, (None, 3), "faces")
    if faces.dtype != torch.int64:
        raise ValueError(f"faces: expected int64, got {faces.dtype}")


def _triangles(
    screen_verts: Tensor, faces: Tensor, settings: RasterSettings
) -> tuple[_Triangles, Tensor, Tensor]:
    """Differentiable edge and depth data of every face of every batch item, with the bool (K,)
    rows to draw (in front of the near plane, non-degenerate, not culled) and float (K, 3, 2)
    corner pixel positions."""
    corners = screen_verts[:, faces].flatten(0, 1)  # (K, 3 corners, 3)
    u, v, z = corners.unbind(-1)
    signed_area2 = (u[:, 1] - u[:, 0]) * (v[:, 2] - v[:, 0]) - (v[:, 1] - v[:, 0]) * (u[:, 2] - u[:, 0])
    front = signed_area2 < 0
    kept = front if settings.cull_backfaces else front | (signed_area2 > 0)
    orientation = torch.where(front, -1.0, 1.0).to(corners.dtype)

    start, end = faces[:, [1, 2, 0]], faces[:, [2, 0, 1]]  # edge k runs from corner k+1 to k+2
    low, high = torch.minimum(start, end), torch.maximum(start, end)
    anchor, tip = screen_verts[:, low].flatten(0, 1), screen_verts[:, high].flatten(0, 1)
    along = torch.where(start < end, 1.0, -1.0).to(corners.dtype).repeat(screen_verts.shape[0], 1)
    sign = along * orientation[:, None]
    dir_u, dir_v = tip[..., 0] - anchor[..., 0], tip[..., 1] - anchor[..., 1]
    oriented_u, oriented_v = sign * dir_u, sign * dir_v
    tris = _Triangles(  # contiguous fields: take() gathers rows fastest from them
        anchor_u=anchor[..., 0].contiguous(),
        anchor_v=anchor[..., 1].contiguous(),
        dir_u=dir_u,
        dir_v=dir_v,
        sign=sign,
        top_left=(oriented_v < 0) | ((oriented_v == 0) & (oriented_u > 0)),
        inv_z=1 / z.contiguous(),
        area2=signed_area2.abs(),
    )
    return tris, (z > settings.near).all(-1) & kept, corners[..., :2].detach()


def _pixel_boxes(corners: Tensor, size: int, margin: float) -> tuple[Tensor, Tensor]:
    """corners: float (N, 3, 2) pixel positions. Returns int64 (N, 2) first and one-past-last pixel
    (column, row) whose centres lie in the corners' bounding box grown by margin pixels, clipped
    to the image; empty boxes have stop = start."""
    start = torch.ceil(corners.amin(1) - margin - 0.5).clamp(0, size).long()
    stop = (torch.floor(corners.amax(1) + margin - 0.5) + 1).clamp(0, size).long()
    return start, torch.maximum(start, stop)


def _pixel_pairs(rows: Tensor, start: Tensor, stop: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """rows: int64 (N,), start/stop: int64 (N, 2) pixel boxes. Returns the row, pixel column and
    pixel row (int64 (P,) each) of every pixel of every box, without Python loops."""
    extent = stop - start
    counts = extent[:, 0] * extent[:, 1]
    per_box = torch.stack([rows, counts.cumsum(0) - counts, extent[:, 0], start[:, 0], start[:, 1]], 1)
    row, first_pair, width, x0, y0 = per_box.repeat_interleave(counts, dim=0).unbind(1)
    offset = torch.arange(len(row), device=rows.device) - first_pair
    return row, x0 + offset % width, y0 + offset // width


def _centres(x: Tensor, y: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Pixel centre coordinates of integer pixel columns x and rows y."""
    return x.to(dtype) + 0.5, y.to(dtype) + 0.5


def _fragments(
    batch: int, size: int, pixel: Tensor, face: Tensor, bary: Tensor, depth: Tensor
) -> Fragments:
    """Scatter the winners (flat pixel index b*S*S + y*S + x, face index, bary, depth) into images."""
    n = batch * size * size
    face_idx = torch.full((n,), -1, dtype=torch.int64, device=pixel.device).index_put((pixel,), face)
    full_bary = bary.new_zeros(n, 3).index_put((pixel,), bary)
    full_depth = depth.new_full((n,), math.inf).index_put((pixel,), depth)
    shape = (batch, size, size)
    return Fragments(face_idx.view(shape), full_bary.view(*shape, 3), full_depth.view(shape))


def rasterize(
    screen_verts: Tensor, faces: Tensor, settings: RasterSettings = RasterSettings()
) -> Fragments:
    """screen_verts: float (B, V, 3) (u, v, z_cam) from project; faces: int64 (F, 3) shared by the
    batch. Hard z-buffer over sparse face-pixel pairs; bary and depth are differentiable."""
    _check_inputs(screen_verts, faces)
    batch, size, n_faces = screen_verts.shape[0], settings.image_size, faces.shape[0]
    tris, valid, corners = _triangles(screen_verts, faces, settings)
    with torch.no_grad():
        row = valid.nonzero().squeeze(1)
        row, x, y = _pixel_pairs(row, *_pixel_boxes(corners[row], size, 0.0))
        pairs = tris.take(row)
        w = pairs.edge_values(*_centres(x, y, screen_verts.dtype))
        _, depth = pairs.bary_depth(w)
        hit = pairs.inside(w).nonzero().squeeze(1)
        row, depth = row[hit], depth[hit]
        pixel = ((row // n_faces) * size + y[hit]) * size + x[hit]
        zbuffer = depth.new_full((batch * size * size,), math.inf)
        zbuffer = zbuffer.scatter_reduce(0, pixel, depth, "amin")
        nearest = (depth == zbuffer[pixel]).nonzero().squeeze(1)
        no_face = len(valid)
        winner = torch.full_like(zbuffer, no_face, dtype=torch.int64)
        winner = winner.scatter_reduce(0, pixel[nearest], row[nearest], "amin")
        pixel = (winner < no_face).nonzero().squeeze(1)
        row = winner[pixel]
    winners = tris.take(row)  # recomputed with autograd, for the winners only
    pu, pv = _centres(pixel % size, pixel // size % size, screen_verts.dtype)
    bary, depth = winners.bary_depth(winners.edge_values(pu, pv))
    return _fragments(batch, size, pixel, row % n_faces, bary, depth)


def rasterize_dense(
    screen_verts: Tensor, faces: Tensor, settings: RasterSettings = RasterSettings()
) -> Fragments:
    """screen_verts: float (B, V, 3); faces: int64 (F, 3). Brute-force twin of rasterize over all
    pixels x all faces, one batch item at a time; for tests on tiny meshes."""
    _check_inputs(screen_verts, faces)
    batch, size, n_faces = screen_verts.shape[0], settings.image_size, faces.shape[0]
    tris, valid, _ = _triangles(screen_verts, faces, settings)
    pu, pv = (p[:, None] for p in _all_centres(size, screen_verts))  # (S*S, 1): broadcast over faces
    none = torch.zeros(0, dtype=torch.int64, device=screen_verts.device)
    # Winners as (flat pixel, row, bary, depth) per batch item, after an empty entry.
    found = [(none, none, screen_verts.new_zeros(0, 3), screen_verts.new_zeros(0))]
    for b in range(batch):
        valid_rows = b * n_faces + valid[b * n_faces : (b + 1) * n_faces].nonzero().squeeze(1)
        if len(valid_rows) == 0:
            continue
        faces_b = tris.take(valid_rows)
        w = faces_b.edge_values(pu, pv)  # (S*S, F_valid, 3)
        bary, depth = faces_b.bary_depth(w)
        nearest, first = torch.where(faces_b.inside(w), depth, math.inf).min(1)  # first = lowest face
        pixel = torch.isfinite(nearest).nonzero().squeeze(1)
        winner = first[pixel]
        found.append((b * size * size + pixel, valid_rows[winner], bary[pixel, winner], nearest[pixel]))
    pixel, row, bary, depth = (torch.cat(parts) for parts in zip(*found))
    return _fragments(batch, size, pixel, row % n_faces, bary, depth)


def _all_centres(size: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """float (S*S,) u and v of every pixel centre in row-major order, like's dtype and device."""
    pixel = torch.arange(size * size, device=like.device)
    return _centres(pixel % size, pixel // size, like.dtype)


def _log_miss(sq_distance: Tensor, sigma: float) -> Tensor:
    """log(1 - exp(-d^2 / sigma)): log-probability that a face misses a pixel, floored before the log."""
    return torch.log((-torch.expm1(-sq_distance / sigma)).clamp(min=_LOG_FLOOR))


def _silhouette(log_miss_sum: Tensor, fragments: Fragments) -> Tensor:
    """log_miss_sum: float (B*H*W,) summed over nearby faces. Returns float (B, H, W) in [0, 1]."""
    covered = fragments.face_idx >= 0
    return torch.where(covered, 1.0, 1 - torch.exp(log_miss_sum.view(covered.shape)))


def _check_fragments(screen_verts: Tensor, fragments: Fragments, settings: RasterSettings) -> None:
    """The fragments must come from the same batch and image size."""
    size = settings.image_size
    assert_shape(fragments.face_idx, (screen_verts.shape[0], size, size), "fragments.face_idx")


def _count_in_boxes(mask: Tensor, item: Tensor, start: Tensor, stop: Tensor) -> Tensor:
    """mask: bool (B, S, S); item: int64 (N,) image of each box; start/stop: int64 (N, 2) boxes.
    Returns int64 (N,) true pixels per box, from a summed-area table."""
    table = torch.nn.functional.pad(mask.long().cumsum(1).cumsum(2), (1, 0, 1, 0))
    (x0, y0), (x1, y1) = start.unbind(1), stop.unbind(1)
    return table[item, y1, x1] - table[item, y0, x1] - table[item, y1, x0] + table[item, y0, x0]


def soft_silhouette(
    screen_verts: Tensor,
    faces: Tensor,
    fragments: Fragments,
    settings: RasterSettings = RasterSettings(),
) -> Tensor:
    """screen_verts: float (B, V, 3); faces: int64 (F, 3); fragments from rasterize. Returns float
    (B, H, W): 1 on covered pixels, else 1 - prod over the faces within settings.soft_radius of
    (1 - exp(-d^2 / sigma)), d the pixel distance to the face. Faces rasterize would drop (culled,
    near-plane, degenerate) do not contribute. Differentiable in screen_verts; sparse pairs."""
    _check_inputs(screen_verts, faces)
    _check_fragments(screen_verts, fragments, settings)
    size, n_faces, radius = settings.image_size, faces.shape[0], settings.soft_radius
    tris, valid, corners = _triangles(screen_verts, faces, settings)
    empty = fragments.face_idx < 0
    with torch.no_grad():
        row = valid.nonzero().squeeze(1)
        start, stop = _pixel_boxes(corners[row], size, radius)
        reaches = (_count_in_boxes(empty, row // n_faces, start, stop) > 0).nonzero().squeeze(1)
        row, x, y = _pixel_pairs(row[reaches], start[reaches], stop[reaches])
        pixel = ((row // n_faces) * size + y) * size + x
        outside = empty.view(-1)[pixel].nonzero().squeeze(1)  # covered pixels stay 1 anyway
        row, pixel, x, y = row[outside], pixel[outside], x[outside], y[outside]
        pu, pv = _centres(x, y, screen_verts.dtype)
        near = (tris.take(row).sq_distance(pu, pv) < radius**2).nonzero().squeeze(1)
        row, pixel, pu, pv = row[near], pixel[near], pu[near], pv[near]
    log_miss = _log_miss(tris.take(row).sq_distance(pu, pv), settings.sigma)  # with autograd
    return _silhouette(log_miss.new_zeros(empty.numel()).index_add(0, pixel, log_miss), fragments)


def soft_silhouette_dense(
    screen_verts: Tensor,
    faces: Tensor,
    fragments: Fragments,
    settings: RasterSettings = RasterSettings(),
) -> Tensor:
    """screen_verts: float (B, V, 3); faces: int64 (F, 3); fragments. Brute-force twin of
    soft_silhouette over all pixels x all faces; for tests on tiny meshes."""
    _check_inputs(screen_verts, faces)
    _check_fragments(screen_verts, fragments, settings)
    batch, size = screen_verts.shape[0], settings.image_size
    tris, valid, _ = _triangles(screen_verts, faces, settings)
    rows = valid.nonzero().squeeze(1)
    item = rows // faces.shape[0]
    pu, pv = (p[:, None] for p in _all_centres(size, screen_verts))  # (S*S, 1): broadcast over faces
    sq_distance = tris.take(rows).sq_distance(pu, pv)  # (S*S, K_valid)
    counted = (fragments.face_idx < 0).view(batch, -1)[item].T & (sq_distance < settings.soft_radius**2)
    log_miss = torch.where(counted, _log_miss(sq_distance, settings.sigma), 0.0)
    per_image = log_miss.new_zeros(batch, size * size).index_add(0, item, log_miss.T)
    return _silhouette(per_image.view(-1), fragments)


def interpolate(fragments: Fragments, faces: Tensor, vertex_attrs: Tensor) -> Tensor:
    """vertex_attrs: float (B, V, D) per-vertex values; faces: int64 (F, 3) as rasterized. Returns
    float (B, H, W, D) perspective-correct values at pixel centres, zeros where empty."""
    batch, height, width = fragments.face_idx.shape
    assert_shape(vertex_attrs, (batch, None, None), "vertex_attrs")
    corners = faces[fragments.face_idx.clamp(min=0)].view(batch, -1, 1)  # (B, H*W*3, 1) vertex ids
    channels = vertex_attrs.shape[-1]
    values = vertex_attrs.gather(1, corners.expand(-1, -1, channels)).view(
        batch, height, width, 3, channels
    )
    return (fragments.bary[..., None] * values).sum(-2)  # empty pixels have zero bary


def interpolate_face(fragments: Fragments, face_attrs: Tensor) -> Tensor:
    """face_attrs: float (B, F, D) per-face values (labels, colours). Returns float (B, H, W, D)
    the visible face's values, zeros where empty."""
    batch, height, width = fragments.face_idx.shape
    assert_shape(face_attrs, (batch, None, None), "face_attrs")
    index = fragments.face_idx.clamp(min=0).view(batch, -1, 1).expand(-1, -1, face_attrs.shape[-1])
    values = face_attrs.gather(1, index).view(batch, height, width, -1)
    return torch.where(fragments.face_idx[..., None] >= 0, values, 0)
