"""An animated GIF of an exported car playing its "drive" clip (downstream.export: the wheels turn, the front
wheels steer), drawn by our own rasterizer from a fixed three-quarter front view: what a glTF viewer shows, for a
README or a quick check without one. Glass is drawn opaque in its tint; lamps glow (unshaded, in their emissive
colour)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from datasources.files import atomic_write
from downstream.export import GLB_FROM_WORLD, LAMPS, WHEEL_NAMES, ExportSettings, build_scene, wheel_tracks
from downstream.recon import check_recon
from downstream.turntable import TurntableSettings, draw, framing
from inverse_graphics import look_at


@dataclass(frozen=True)
class DriveSettings:
    """The GIF: one clip at `frames` evenly spaced times, seen from `azimuth` (degrees; 90 faces the car's front)."""

    frames: int = 25   # 160 ms each over the 4 s clip: GIF delays are whole hundredths of a second
    azimuth: float = 55.0
    view: TurntableSettings = field(default_factory=lambda: TurntableSettings(image_size=160, elevation=20.0))
    export: ExportSettings = field(default_factory=ExportSettings)


def _colours(mesh: trimesh.Trimesh) -> tuple[np.ndarray, bool]:
    """(float (V, 3) the mesh's colours in [0, 1], whether it glows): paint keeps its vertex colours, glass its
    base colour, a lamp its emissive colour."""
    material = mesh.visual.material
    colors = mesh.visual.vertex_attributes.get("color")
    if colors is not None:
        return np.asarray(colors, np.float32)[:, :3] / 255, False
    if material.name in LAMPS:
        return np.tile(np.asarray(material.emissiveFactor, np.float32), (len(mesh.vertices), 1)), True
    return np.tile(np.asarray(material.baseColorFactor[:3], np.float32) / 255, (len(mesh.vertices), 1)), False


def posed(scene: trimesh.Scene, rotations: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                            np.ndarray]:
    """The scene in world coordinates (GLB_FROM_WORLD undone) with each wheel node of `rotations` (name -> float
    (4,) quaternion x, y, z, w) turned about its pivot (the scene is left as it was): verts float (V, 3), faces int64 (F, 3), colours float
    (V, 3), glowing faces bool (F,)."""
    rest = {name: scene.graph.get(name, "body")[0] for name in rotations}   # scene.copy() drops vertex colours
    for name, (x, y, z, w) in rotations.items():
        turn = trimesh.transformations.quaternion_matrix([w, x, y, z])
        scene.graph.update(name, "body", matrix=trimesh.transformations.translation_matrix(rest[name][:3, 3]) @ turn)
    to_world = np.linalg.inv(GLB_FROM_WORLD)
    verts, faces, colours, glow = [], [], [], []
    for node in scene.graph.nodes_geometry:
        matrix, geometry = scene.graph.get(node)
        mesh = scene.geometry[geometry]
        faces.append(np.asarray(mesh.faces, np.int64) + sum(len(v) for v in verts))
        verts.append(trimesh.transformations.transform_points(mesh.vertices, to_world @ matrix))
        colour, glows = _colours(mesh)
        colours.append(colour)
        glow.append(np.full(len(mesh.faces), glows))
    for name, matrix in rest.items():
        scene.graph.update(name, "body", matrix=matrix)
    return np.concatenate(verts), np.concatenate(faces), np.concatenate(colours), np.concatenate(glow)


def drive_frames(recon: dict, settings: DriveSettings = DriveSettings()) -> np.ndarray:
    """uint8 (T, S, S, 3): the exported car (build_scene) at `settings.frames` times of its drive clip."""
    scene = build_scene(check_recon(recon), settings.export)
    times = np.arange(settings.frames) * settings.export.clip_seconds / settings.frames
    _, tracks = wheel_tracks(settings.export, times)
    rest = posed(scene, {})[0]
    centre = (rest.min(0) + rest.max(0)) / 2
    _, distance = framing(rest, settings.view)
    view = settings.view
    cams = look_at(settings.azimuth, view.elevation, distance, view.fov, view.image_size * view.supersample)
    frames = []
    for t in range(settings.frames):
        verts, faces, colours, glow = posed(scene, {name: tracks[name.startswith("wheel_front")][t]
                                                    for name in WHEEL_NAMES})
        frames.append(draw(verts - centre, faces, cams, view, vertex_colors=colours, unlit=glow)[0])
    return np.stack(frames)


def save_drive_gif(recon: dict, path: str | Path, settings: DriveSettings = DriveSettings()) -> None:
    """Write drive_frames as a looping GIF at `path` (one clip in real time), renamed into place when complete."""
    frames = [Image.fromarray(f) for f in drive_frames(recon, settings)]
    duration = 10 * round(100 * settings.export.clip_seconds / settings.frames)   # ms, in GIF's hundredths
    atomic_write(Path(path), lambda tmp: frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                                                        duration=duration, loop=0))
