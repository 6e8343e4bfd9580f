"""Animatable GLB export of a reconstructed car: one node per part with a material that suits it
(glass, lamps, paint), and each wheel replaced by a cylinder on its own node, pivoted at the wheel
centre and parented to the body, so that an animator can spin it (local z) and steer it (local y).

GLB conventions (glTF 2.0): metres, +y up, the asset's front at +z, faces counter-clockwise from
outside. Our world (downstream.recon) has the front at +x, so the body node, the root, carries
GLB_FROM_WORLD, a -90 degree turn about y (x -> z, z -> -x); everything below it is in world
coordinates, and a wheel node's translation is the wheel centre in the world. Node extras hold
{"part": ADE-Car-12 name, ...}: trimesh writes the scene graph's edge metadata as node extras
(and reads them back as such).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from trimesh.visual.material import PBRMaterial

from datasets.classes import CAR_12
from datasets.files import atomic_write
from datasets.toy.car import KEYPOINT_NAMES
from downstream.recon import Reconstruction, check_recon

GLB_FROM_WORLD = np.array([[0.0, 0, -1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]])  # x -> z, z -> -x
GLASS = ("wind shield", "window")
LAMPS = ("head light", "tail light")
# front_left, front_right, rear_left, rear_right: index = 2 * rear + right, as find_wheels groups them
WHEEL_NAMES = tuple(name for name in KEYPOINT_NAMES if name.startswith("wheel_"))
SPIN_AXIS, STEER_AXIS = (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)  # in a wheel node's frame


@dataclass(frozen=True)
class ExportSettings:
    """Material and wheel geometry choices of export_glb."""

    glass_alpha: float = 0.35  # opacity of windows and windshield (alphaMode BLEND)
    wheel_sections: int = 32  # sides of each wheel cylinder


@dataclass(frozen=True)
class Wheel:
    """One wheel found on a reconstruction, in world coordinates (metres)."""

    name: str  # one of WHEEL_NAMES
    centre: np.ndarray  # float (3,) the axle's midpoint: the spin and steer pivot
    radius: float
    width: float  # along z, the axle
    color: np.ndarray  # float (3,) mean albedo of the wheel's vertices, in [0, 1]


def find_wheels(recon: Reconstruction) -> list[Wheel]:
    """The wheels of `recon` in WHEEL_NAMES order: its wheel faces split into up to four groups, front
    or rear and left or right of the mesh's box centre, each fitted with the bounding box of its
    vertices. A wheel keypoint lies on the outer hub face, so it refines its wheel's axle x and y
    (averaged with the box centre's), not z, and only when within one wheel radius of the box centre."""
    wheel_faces = np.flatnonzero(recon.face_labels == CAR_12.index("wheel"))
    centroids = recon.vertices[recon.faces[wheel_faces]].mean(1)
    mid = (recon.vertices.min(0) + recon.vertices.max(0)) / 2
    group = 2 * (centroids[:, 0] < mid[0]) + (centroids[:, 2] > mid[2])
    keypoints = dict(zip(recon.keypoint_names, recon.keypoints)) if recon.keypoints is not None else {}
    wheels = []
    for g, name in enumerate(WHEEL_NAMES):
        used = np.unique(recon.faces[wheel_faces[group == g]])
        if len(used) == 0:
            continue
        lo, hi = recon.vertices[used].min(0), recon.vertices[used].max(0)
        centre = (lo + hi) / 2
        radius = float((hi - lo)[:2].max() / 2)
        if name in keypoints and np.linalg.norm(keypoints[name][:2] - centre[:2]) <= radius:
            centre[:2] = (centre[:2] + keypoints[name][:2]) / 2
        width = max(float(hi[2] - lo[2]), 0.2 * radius)  # a flat wheel patch still gets a tyre
        wheels.append(Wheel(name, centre, radius, width, recon.vertex_colors[used].mean(0)))
    return wheels


def _material(part: str, color: np.ndarray, settings: ExportSettings) -> PBRMaterial:
    """Glass: tinted and see-through; lamps: glowing in their own hue (their class colour if they are
    nearly black); anything else: paint coloured by COLOR_0 (base colour white: glTF multiplies them)."""
    if part in GLASS:
        return PBRMaterial(name=part, baseColorFactor=[*color, settings.glass_alpha], alphaMode="BLEND",
                           metallicFactor=0.0, roughnessFactor=0.05, doubleSided=True)
    if part in LAMPS:
        hue = color if color.max() > 0.05 else np.asarray(CAR_12.palette[CAR_12.index(part)]) / 255
        return PBRMaterial(name=part, baseColorFactor=[*color, 1.0], emissiveFactor=hue / hue.max(),
                           metallicFactor=0.0, roughnessFactor=0.3)
    return PBRMaterial(name=part, baseColorFactor=[1.0, 1.0, 1.0, 1.0], metallicFactor=0.2, roughnessFactor=0.5)


def _dressed(mesh: trimesh.Trimesh, part: str, colors: np.ndarray, settings: ExportSettings) -> trimesh.Trimesh:
    """`mesh` with the material of `part`; paint also keeps its vertex colours (float (V, 3) in [0, 1])."""
    mesh.visual = trimesh.visual.TextureVisuals(material=_material(part, colors.mean(0), settings))
    if part not in GLASS + LAMPS:
        rgba = np.c_[np.rint(colors * 255), np.full(len(colors), 255)].astype(np.uint8)
        mesh.visual.vertex_attributes["color"] = rgba
    return mesh


def _part_mesh(recon: Reconstruction, faces: np.ndarray, part: str, settings: ExportSettings,
               origin: np.ndarray) -> trimesh.Trimesh:
    """The faces (int64 (N,) indices into recon.faces) as a mesh of their own, moved by -origin."""
    used, local = np.unique(recon.faces[faces], return_inverse=True)
    mesh = trimesh.Trimesh(recon.vertices[used] - origin, local.reshape(-1, 3), process=False)
    return _dressed(mesh, part, recon.vertex_colors[used], settings)


def _tyre(wheel: Wheel, settings: ExportSettings) -> trimesh.Trimesh:
    """A cylinder centred on its node's origin, axis along z, in the wheel's mean colour."""
    mesh = trimesh.creation.cylinder(wheel.radius, wheel.width, sections=settings.wheel_sections)
    return _dressed(mesh, "wheel", np.tile(wheel.color, (len(mesh.vertices), 1)), settings)


def _add(scene: trimesh.Scene, mesh: trimesh.Trimesh, node: str, parent: str, extras: dict,
         transform: np.ndarray | None = None) -> None:
    """Add `mesh` as node `node` (its geometry has the same name) under `parent`, with glTF extras."""
    scene.add_geometry(mesh, node_name=node, geom_name=node, parent_node_name=parent, transform=transform,
                       metadata=extras)


def _add_wheels(scene: trimesh.Scene, recon: Reconstruction, wheels: list[Wheel], hubs: np.ndarray,
                settings: ExportSettings) -> None:
    """One tyre node per wheel under the body, pivoted at its centre; each hub face (int64 (N,)
    indices into recon.faces) goes under the wheel with the nearest centre, so that it spins along."""
    centres = np.stack([wheel.centre for wheel in wheels])
    owner = np.linalg.norm(recon.vertices[recon.faces[hubs]].mean(1)[:, None] - centres, axis=-1).argmin(1)
    for i, wheel in enumerate(wheels):
        extras = {"part": "wheel", "spin_axis": SPIN_AXIS, "steer_axis": STEER_AXIS,
                  "steers": wheel.name.startswith("wheel_front"), "radius": wheel.radius, "width": wheel.width}
        pivot = trimesh.transformations.translation_matrix(wheel.centre)
        _add(scene, _tyre(wheel, settings), wheel.name, "body", extras, pivot)
        if np.any(owner == i):
            hub = _part_mesh(recon, hubs[owner == i], "wheelhub", settings, origin=wheel.centre)
            _add(scene, hub, f"{wheel.name}_hub", wheel.name, {"part": "wheelhub"})


def build_scene(recon: Reconstruction, settings: ExportSettings = ExportSettings()) -> trimesh.Scene:
    """The node tree: body (the root, GLB_FROM_WORLD) -> one node per part present, and one node per
    wheel (translation = its centre) -> that wheel's hub faces, if any. When no wheel is found, wheel
    and hub faces stay ordinary parts. Faces labelled background are exported with the body."""
    scene = trimesh.Scene()
    scene.graph.update("body", scene.graph.base_frame, matrix=GLB_FROM_WORLD, metadata={"part": "body"})
    labels = np.where(recon.face_labels == 0, CAR_12.index("car_body"), recon.face_labels)
    wheels = find_wheels(recon)
    rigged = ("wheel", "wheelhub") if wheels else ()
    for k, part in enumerate(CAR_12.names):
        faces = np.flatnonzero(labels == k)
        if len(faces) and part not in rigged:
            mesh = _part_mesh(recon, faces, part, settings, origin=np.zeros(3))
            _add(scene, mesh, part.replace(" ", "_"), "body", {"part": part})
    if wheels:
        _add_wheels(scene, recon, wheels, np.flatnonzero(labels == CAR_12.index("wheelhub")), settings)
    return scene


def export_glb(recon: dict, path: str | Path, settings: ExportSettings = ExportSettings()) -> trimesh.Scene:
    """Write `recon` (a dict as downstream.recon describes) as an animatable GLB at `path` and return
    its scene. The file is built in memory and renamed into place: a failure leaves no file at `path`."""
    scene = build_scene(check_recon(recon), settings)
    data = scene.export(file_type="glb")
    atomic_write(Path(path), lambda tmp: tmp.write_bytes(data))
    return scene
