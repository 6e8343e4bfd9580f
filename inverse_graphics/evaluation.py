"""3D evaluation on the toy world, whose true meshes are known (beyond the paper, which shows its 3D
results only as pictures): Chamfer distance, silhouette IoU and part mIoU of re-rendered views
(the input view and novel ones), and 3D keypoint error.

Lengths are reported in units of the true car's length (3.6 to 5 m in the toy world), so 0.01 is
about 4.3 cm. Chamfer distance = (mean over points of A of the distance to the nearest point of B
+ the same from B to A) / 2, on points drawn uniformly (by area) from both surfaces; the true
surface is its outer part: points of one convex part lying strictly inside another are hidden and
dropped.
"""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree
from tqdm import tqdm

from benchmark.metrics import confusion, iou_per_class, mean_iou
from datasources.classes import CAR_12
from datasources.toy import CarParams, ToySettings, build_car, mean_params, render_sample
from datasources.toy.car import CarMesh

from .camera import look_at, project
from .rasterizer import RasterSettings, rasterize
from .reconstructor import Reconstructor, reconstruct
from .training import TrainSettings, keypoint_loss_name

NOVEL_AZIMUTHS = (90.0, 180.0, 270.0)  # novel views: the input camera turned by these azimuths (degrees)
INSIDE_TOLERANCE = 1e-4  # metres: a point this far inside another part is hidden


def surface_points(vertices: np.ndarray, faces: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """vertices: float (V, 3); faces: int (F, 3) -> float64 (count, 3) uniform by area on the surface."""
    a, b, c = (np.asarray(vertices, np.float64)[faces[:, i]] for i in range(3))
    area = np.linalg.norm(np.cross(b - a, c - a), axis=1)
    face = rng.choice(len(faces), size=count, p=area / area.sum())
    r1, r2 = rng.random((2, count, 1))
    s = np.sqrt(r1)  # uniform barycentrics: (1 - s, s (1 - r2), s r2)
    return (1 - s) * a[face] + s * (1 - r2) * b[face] + s * r2 * c[face]


def outer_surface_points(mesh: CarMesh, count: int, rng: np.random.Generator) -> np.ndarray:
    """float64 (<= count, 3): surface points of a toy car that no other of its convex parts hides."""
    points = surface_points(mesh.verts, mesh.faces, count, rng)
    parts = trimesh.graph.connected_component_labels(
        trimesh.Trimesh(mesh.verts, mesh.faces, process=False).face_adjacency, node_count=len(mesh.faces))
    hidden = np.zeros(len(points), bool)
    a, b, c = (mesh.verts[mesh.faces[:, i]].astype(np.float64) for i in range(3))
    normals = np.cross(b - a, c - a)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    offsets = (normals * a).sum(1)
    for part in np.unique(parts):
        mine = parts == part  # the part's outward face planes: inside = below all of them
        hidden |= (points @ normals[mine].T - offsets[mine]).max(1) < -INSIDE_TOLERANCE
    return points[~hidden]


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """a: float (N, 3), b: float (M, 3) -> symmetric mean nearest-neighbour distance (module docstring)."""
    return float((cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean()) / 2)


def render_labels(vertices: np.ndarray, faces: np.ndarray, face_labels: np.ndarray, camera: list[float],
                  size: int) -> np.ndarray:
    """A labelled mesh seen by camera (azimuth, elevation, distance, fov) -> int64 (size, size) labels,
    0 where no face covers the pixel centre."""
    cameras = look_at(*(torch.tensor([v], dtype=torch.float32) for v in camera), image_size=size)
    with torch.no_grad():
        screen = project(torch.as_tensor(vertices, dtype=torch.float32)[None], cameras)
        fragments = rasterize(screen, torch.as_tensor(faces, dtype=torch.int64), RasterSettings(image_size=size))
    face_idx = fragments.face_idx[0].numpy()
    return np.where(face_idx >= 0, np.asarray(face_labels)[face_idx.clip(min=0)], 0)


def _silhouette_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """IoU of the foregrounds (label > 0) of two label maps."""
    p, t = pred > 0, truth > 0
    return float((p & t).sum() / max((p | t).sum(), 1))


def evaluate(model: Reconstructor | None, seeds: list[int], settings: ToySettings = ToySettings(),
             points: int = 5000) -> dict:
    """Reconstruct the toy samples of `seeds` and score them against their true meshes. Returns plain
    data: means over images of chamfer_over_length, keypoint_error_over_length and silhouette IoUs
    (input view, novel views), part mIoU over the set (official convention, background included).
    model None scores the toy world's mean car (shape, parts and keypoints; datasources.toy.mean_params) for
    every image: a prior that sees no image, which a reconstructor must beat to have learnt from its input."""
    size = settings.resolution
    prior = None if model is not None else build_car(mean_params())
    chamfers, keypoint_errors, sil = [], [], {"input": [], "novel": []}
    matrices = {kind: np.zeros((len(CAR_12), len(CAR_12)), np.int64) for kind in sil}
    for seed in tqdm(seeds, desc="3D evaluation", unit="img"):
        sample = render_sample(seed, settings)
        params = CarParams(**sample.meta["params"])
        truth = build_car(params)
        rng = np.random.default_rng(seed)
        if prior is None:
            rec = reconstruct(model, sample.image)
            predicted_points = surface_points(rec["vertices"], rec["faces"], points, rng)
        else:
            rec = {"vertices": prior.verts, "faces": prior.faces, "face_labels": prior.face_labels,
                   "keypoints": prior.keypoints}
            predicted_points = outer_surface_points(prior, points, rng)
        chamfers.append(chamfer(predicted_points, outer_surface_points(truth, points, rng)) / params.length)
        keypoint_errors.append(float(np.linalg.norm(rec["keypoints"] - truth.keypoints, axis=1).mean()) / params.length)
        cam = sample.meta["camera"]
        for turn in (0.0, *NOVEL_AZIMUTHS):
            camera = [cam["azimuth"] + turn, cam["elevation"], cam["distance"], cam["fov"]]
            want = render_labels(truth.verts, truth.faces, truth.face_labels, camera, size)
            got = render_labels(rec["vertices"], rec["faces"], rec["face_labels"], camera, size)
            kind = "input" if turn == 0 else "novel"
            sil[kind].append(_silhouette_iou(got, want))
            matrices[kind] += confusion(got, want, len(CAR_12))
    result = {"images": len(seeds), "seeds": [int(s) for s in seeds], "novel_azimuths": list(NOVEL_AZIMUTHS),
              "chamfer_over_length": float(np.mean(chamfers)),
              "keypoint_error_over_length": float(np.mean(keypoint_errors))}
    for kind in sil:
        iou = iou_per_class(matrices[kind])
        result[f"silhouette_iou_{kind}"] = float(np.mean(sil[kind]))
        result[f"part_miou_{kind}"] = mean_iou(matrices[kind])
        result[f"part_iou_per_class_{kind}"] = {name: (None if np.isnan(v) else float(v))
                                                for name, v in zip(CAR_12.names, iou)}
    return result


METRICS = {"chamfer_over_length": "Chamfer / length", "keypoint_error_over_length": "keypoint error / length",
           "silhouette_iou_input": "sil. IoU input", "silhouette_iou_novel": "sil. IoU novel",
           "part_miou_input": "part mIoU input", "part_miou_novel": "part mIoU novel"}


def table_row(record: dict, folder) -> dict:
    """A `3d eval` record (as written to record.json) and its folder -> its metrics with the table row's `source`,
    the training `seed` and `record`. Rows are split by what a run was trained on and by template, perceptual
    weight, keypoint loss and camera refinement where those differ from the defaults."""
    row = {**{m: record[m] for m in METRICS}, "record": str(folder)}
    if record["trained"] is None:
        return {**row, "source": "toy world's mean car (no image)", "seed": 0}
    settings = record["trained"].get("settings", {})
    shape = record.get("template", "ellipsoid")  # records before 2026-12-07 did not name it
    perceptual = settings.get("weights", {}).get("perceptual", 0)
    loss = keypoint_loss_name(settings)
    source = record["trained"].get("source", "?") + ("" if shape == "ellipsoid" else f", {shape} template") + \
        (f", perceptual loss {perceptual:g}" if perceptual else "") + \
        ("" if loss == keypoint_loss_name(asdict(TrainSettings())) else f", {loss} keypoint loss") + \
        (", cameras refined" if settings.get("refine_camera") else "")
    return {**row, "source": source, "seed": settings.get("seed", 0)}


def seed_table(records: list[dict]):
    """evaluate() results with their `source`, training `seed` and `record` folder -> (the table: one row per
    source in first-seen order with every metric's mean and seed std (ddof 1, NaN with one seed), the seeds and
    the record folders; the same formatted "mean ± std" with readable headers)."""
    import pandas as pd

    frame = pd.DataFrame(records)
    rows, shown = [], []
    for source, part in frame.groupby("source", sort=False):
        row = {"source": source, "seeds": " ".join(str(s) for s in part.seed)}
        for metric in METRICS:
            row[metric] = float(part[metric].mean())
            row[f"{metric}_seed_std"] = float(part[metric].std(ddof=1)) if len(part) > 1 else float("nan")
        rows.append({**row, "records": " ".join(part.record)})
        shown.append({"source": source, "seeds": len(part), **{
            title: f"{row[m]:.3f}" + (f" ± {row[m + '_seed_std']:.3f}" if len(part) > 1 else "")
            for m, title in METRICS.items()}})
    return pd.DataFrame(rows), pd.DataFrame(shown)
