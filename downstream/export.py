"""Complete, animated GLB export of a reconstructed car: one node per part with a material that suits it
(glass, emissive lamps, paint), two head lights and two tail lights, and four wheels, each a cylinder on its
own node pivoted at the wheel centre and parented to the body, with a glTF animation clip "drive" that spins
every wheel (local z) and steers the front ones (local y). Where the part map misses a lamp or a wheel, it is
placed from the car's symmetry, its keypoints or its box, and the node's extras say so ({"placed": how}).

GLB conventions (glTF 2.0): metres, +y up, the asset's front at +z, faces counter-clockwise from
outside. Our world (downstream.recon) has the front at +x, so the body node, the root, carries
GLB_FROM_WORLD, a -90 degree turn about y (x -> z, z -> -x); everything below it is in world
coordinates, and a wheel node's translation is the wheel centre in the world. Node extras hold
{"part": ADE-Car-12 name, ...}: trimesh writes the scene graph's edge metadata as node extras
(and reads them back as such); trimesh writes no animation, so pygltflib adds the clip to its GLB.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pygltflib
import trimesh
from trimesh.visual.material import PBRMaterial

from datasources.classes import CAR_12
from datasources.files import atomic_write
from datasources.toy.car import KEYPOINT_NAMES
from downstream.recon import Reconstruction, check_recon

GLB_FROM_WORLD = np.array([[0.0, 0, -1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]])  # x -> z, z -> -x
GLASS = ("wind shield", "window")
LAMPS = ("head light", "tail light")
SIDES = ("left", "right")  # left at -z: the car's right side is +z (datasources.toy.car)
# front_left, front_right, rear_left, rear_right: index = 2 * rear + right, as find_wheels groups them
WHEEL_NAMES = tuple(name for name in KEYPOINT_NAMES if name.startswith("wheel_"))
SPIN_AXIS, STEER_AXIS = (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)  # in a wheel node's frame


@dataclass(frozen=True)
class ExportSettings:
    """Material, placed-part and animation choices of export_glb."""

    glass_alpha: float = 0.35  # opacity of windows and windshield (alphaMode BLEND)
    wheel_sections: int = 32  # sides of each wheel cylinder
    lamp_size: tuple[float, float] = (0.12, 0.3)  # height and width (metres) of a lamp placed where none was found
    clip_seconds: float = 4.0  # the "drive" clip: wheels turn, front wheels steer left and back and right
    clip_keys: int = 49  # keyframes (linear quaternions: keep a turn between keys well under 180 degrees)
    wheel_turns: float = 4.0  # turns of every wheel over the clip (forward, toward the car's front)
    steer_degrees: float = 20.0


@dataclass(frozen=True)
class Wheel:
    """One wheel of a reconstruction, in world coordinates (metres)."""

    name: str  # one of WHEEL_NAMES
    centre: np.ndarray  # float (3,) the axle's midpoint: the spin and steer pivot
    radius: float
    width: float  # along z, the axle
    color: np.ndarray  # float (3,) mean albedo of the wheel's vertices, in [0, 1]
    placed: str | None = None  # how a wheel the part map missed was placed (None: found)


def find_wheels(recon: Reconstruction) -> list[Wheel]:
    """The wheels of `recon` in WHEEL_NAMES order: its wheel faces split into up to four groups, front
    or rear and left or right of the mesh's box centre, each fitted with the bounding box of its
    vertices. A wheel keypoint lies on the outer hub face, so it refines its wheel's axle x and y
    (averaged with the box centre's), not z, and only when within one wheel radius of the box centre."""
    wheel_faces = np.flatnonzero(recon.face_labels == CAR_12.index("wheel"))
    centroids = recon.vertices[recon.faces[wheel_faces]].mean(1)
    mid = (recon.vertices.min(0) + recon.vertices.max(0)) / 2
    group = 2 * (centroids[:, 0] < mid[0]) + (centroids[:, 2] > mid[2])
    keypoints = _named_keypoints(recon)
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


def _named_keypoints(recon: Reconstruction) -> dict[str, np.ndarray]:
    """name -> float (3,) world position of each keypoint the reconstruction has (none: {})."""
    return dict(zip(recon.keypoint_names, recon.keypoints)) if recon.keypoints is not None else {}


def _box(recon: Reconstruction) -> tuple[np.ndarray, np.ndarray]:
    """The reconstruction's bounding box: (lo, hi), float (3,) each."""
    return recon.vertices.min(0), recon.vertices.max(0)


def complete_wheels(recon: Reconstruction, wheels: list[Wheel]) -> list[Wheel]:
    """All four wheels in WHEEL_NAMES order: the found ones, and each missing one mirrored from its partner across
    the car's middle plane (z), else centred on its keypoint, else put where the box says (a fifth of the
    length in from either end, on the ground, flush with the side); placed wheels get the found ones' mean
    radius, width and colour (or a size from the box and a dark grey)."""
    lo, hi = _box(recon)
    mid = (lo + hi) / 2
    found = {wheel.name: wheel for wheel in wheels}
    keypoints = _named_keypoints(recon)
    radius = float(np.mean([w.radius for w in wheels])) if wheels else 0.18 * float(hi[1] - lo[1])
    width = float(np.mean([w.width for w in wheels])) if wheels else 0.5 * radius
    color = np.mean([w.color for w in wheels], 0) if wheels else np.full(3, 0.1)
    out = []
    for name in WHEEL_NAMES:
        partner = name.replace("left", "right") if name.endswith("left") else name.replace("right", "left")
        if name in found:
            out.append(found[name])
        elif partner in found:
            twin = found[partner]
            centre = twin.centre * [1, 1, -1] + [0, 0, 2 * mid[2]]
            out.append(replace(twin, name=name, centre=centre, placed=f"mirrored from {partner}"))
        elif name in keypoints:
            out.append(Wheel(name, keypoints[name].copy(), radius, width, color, f"at keypoint {name}"))
        else:
            x = lo[0] + (0.8 if "front" in name else 0.2) * (hi[0] - lo[0])
            z = hi[2] - width / 2 if name.endswith("right") else lo[2] + width / 2
            out.append(Wheel(name, np.array([x, lo[1] + radius, z]), radius, width, color, "from the car's box"))
    return out


def _lamp_box(recon: Reconstruction, part: str, side: str, settings: ExportSettings) -> tuple[trimesh.Trimesh, str]:
    """A flat box lamp for `side` of the car's front (head light) or rear (tail light): at its keypoint, else at
    40% of the height and 30% of the width in from the middle; returns it and how it was placed."""
    lo, hi = _box(recon)
    name = f"{part.replace(' ', '_')}_{side}"
    keypoints = _named_keypoints(recon)
    if name in keypoints:
        centre, how = keypoints[name], f"at keypoint {name}"
    else:
        x = hi[0] if part == "head light" else lo[0]
        z = (lo[2] + hi[2]) / 2 + (0.3 if side == "right" else -0.3) * (hi[2] - lo[2])
        centre, how = np.array([x, lo[1] + 0.4 * (hi[1] - lo[1]), z]), "from the car's box"
    height, width = settings.lamp_size
    return trimesh.creation.box((0.02, height, width), trimesh.transformations.translation_matrix(centre)), how


def _lamps(recon: Reconstruction, labels: np.ndarray, part: str,
           settings: ExportSettings) -> list[tuple[str, trimesh.Trimesh, dict]]:
    """(node name, mesh, extras) of the left and right lamp of `part`: its faces on each side of the car's middle
    plane; a side without any is mirrored from the other, else placed by _lamp_box."""
    faces = np.flatnonzero(labels == CAR_12.index(part))
    lo, hi = _box(recon)
    mid = (lo[2] + hi[2]) / 2
    right = recon.vertices[recon.faces[faces]].mean(1)[:, 2] > mid
    found = {"left": faces[~right], "right": faces[right]}
    hue = np.asarray(CAR_12.palette[CAR_12.index(part)]) / 255
    out = []
    for side in SIDES:
        other = SIDES[1 - SIDES.index(side)]
        extras = {"part": part, "side": side}
        if len(found[side]):
            mesh = _part_mesh(recon, found[side], part, settings, origin=np.zeros(3))
        elif len(found[other]):
            twin = _part_mesh(recon, found[other], part, settings, origin=np.zeros(3))
            vertices = np.asarray(twin.vertices) * [1, 1, -1] + [0, 0, 2 * mid]
            mesh = _dressed(trimesh.Trimesh(vertices, np.asarray(twin.faces)[:, ::-1], process=False), part,
                            np.tile(twin.visual.material.baseColorFactor[:3] / 255, (len(vertices), 1)), settings)
            extras["placed"] = f"mirrored from {part.replace(' ', '_')}_{other}"
        else:
            box, extras["placed"] = _lamp_box(recon, part, side, settings)
            mesh = _dressed(box, part, np.tile(hue, (len(box.vertices), 1)), settings)
        out.append((f"{part.replace(' ', '_')}_{side}", mesh, extras))
    return out


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
        if wheel.placed:
            extras["placed"] = wheel.placed
        pivot = trimesh.transformations.translation_matrix(wheel.centre)
        _add(scene, _tyre(wheel, settings), wheel.name, "body", extras, pivot)
        if np.any(owner == i):
            hub = _part_mesh(recon, hubs[owner == i], "wheelhub", settings, origin=wheel.centre)
            _add(scene, hub, f"{wheel.name}_hub", wheel.name, {"part": "wheelhub"})


def build_scene(recon: Reconstruction, settings: ExportSettings = ExportSettings()) -> trimesh.Scene:
    """The node tree: body (the root, GLB_FROM_WORLD) -> one node per other part present, a left and a right node
    per lamp (LAMPS, always), and four wheel nodes (translation = the wheel centre, always) -> the hub faces
    nearest each. Faces labelled background are exported with the body."""
    scene = trimesh.Scene()
    scene.graph.update("body", scene.graph.base_frame, matrix=GLB_FROM_WORLD, metadata={"part": "body"})
    labels = np.where(recon.face_labels == 0, CAR_12.index("car_body"), recon.face_labels)
    for k, part in enumerate(CAR_12.names):
        faces = np.flatnonzero(labels == k)
        if len(faces) and part not in ("wheel", "wheelhub", *LAMPS):
            mesh = _part_mesh(recon, faces, part, settings, origin=np.zeros(3))
            _add(scene, mesh, part.replace(" ", "_"), "body", {"part": part})
    for part in LAMPS:
        for node, mesh, extras in _lamps(recon, labels, part, settings):
            _add(scene, mesh, node, "body", extras)
    wheels = complete_wheels(recon, find_wheels(recon))
    _add_wheels(scene, recon, wheels, np.flatnonzero(labels == CAR_12.index("wheelhub")), settings)
    return scene


def _quaternion(axis: tuple[float, float, float], angles: np.ndarray) -> np.ndarray:
    """Rotations by `angles` (radians, (N,)) about a unit axis -> quaternions (N, 4) in glTF's (x, y, z, w) order."""
    half = np.asarray(angles)[:, None] / 2
    return np.concatenate([np.sin(half) * axis, np.cos(half)], 1)


def _multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton products a * b of quaternions (N, 4) in (x, y, z, w) order: rotate by b, then by a."""
    (ax, ay, az, aw), (bx, by, bz, bw) = a.T, b.T
    return np.stack([aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz], 1)


def wheel_tracks(settings: ExportSettings, times: np.ndarray | None = None) -> tuple[np.ndarray, dict[bool, np.ndarray]]:
    """The "drive" clip: key times float32 (N,) in seconds (default: settings.clip_keys over the clip) and, for
    front (True) and rear (False) wheels, their rotations float32 (N, 4) (x, y, z, w): a steer about y (front: one
    sine period of steer_degrees), applied after a spin about z that rolls the car toward its front (world +x:
    clockwise seen from +z)."""
    times = np.linspace(0, settings.clip_seconds, settings.clip_keys) if times is None else np.asarray(times)
    spin = _quaternion(SPIN_AXIS, -2 * np.pi * settings.wheel_turns * times / settings.clip_seconds)
    steer_angle = np.radians(settings.steer_degrees) * np.sin(2 * np.pi * times / settings.clip_seconds)
    steer = _quaternion(STEER_AXIS, steer_angle)
    return times.astype(np.float32), {True: _multiply(steer, spin).astype(np.float32), False: spin.astype(np.float32)}


def _with_clip(glb: bytes, settings: ExportSettings) -> bytes:
    """Add the "drive" animation (wheel_tracks) to the wheel nodes of a GLB that trimesh wrote; an animated node
    gets its pivot as a translation, since glTF forbids a matrix on a node that an animation moves."""
    gltf = pygltflib.GLTF2.load_from_bytes(glb)
    blob = bytearray(gltf.binary_blob() or b"")

    def accessor(array: np.ndarray, kind: str, bounds: bool = False) -> int:
        blob.extend(b"\0" * (-len(blob) % 4))
        gltf.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=array.nbytes))
        blob.extend(array.tobytes())
        gltf.accessors.append(pygltflib.Accessor(
            bufferView=len(gltf.bufferViews) - 1, componentType=pygltflib.FLOAT, count=len(array), type=kind,
            min=[float(array.min())] if bounds else None, max=[float(array.max())] if bounds else None))
        return len(gltf.accessors) - 1

    times, rotations = wheel_tracks(settings)
    time_accessor = accessor(times, pygltflib.SCALAR, bounds=True)
    track = {front: accessor(rotations[front], pygltflib.VEC4) for front in (True, False)}
    samplers = [pygltflib.AnimationSampler(input=time_accessor, output=track[front], interpolation="LINEAR")
                for front in (True, False)]
    channels = []
    for index, node in enumerate(gltf.nodes):
        if node.name in WHEEL_NAMES:
            if node.matrix is not None:   # trimesh leaves it out for an identity transform
                node.translation, node.matrix = list(node.matrix[12:15]), None   # column-major: the last column
            channels.append(pygltflib.AnimationChannel(sampler=0 if node.name.startswith("wheel_front") else 1,
                                                       target=pygltflib.AnimationChannelTarget(node=index,
                                                                                               path="rotation")))
    gltf.animations.append(pygltflib.Animation(name="drive", samplers=samplers, channels=channels))
    gltf.buffers[0].byteLength = len(blob)
    gltf.set_binary_blob(bytes(blob))
    return b"".join(gltf.save_to_bytes())


def export_glb(recon: dict, path: str | Path, settings: ExportSettings = ExportSettings()) -> trimesh.Scene:
    """Write `recon` (a dict as downstream.recon describes) as a complete, animated GLB at `path` and return its
    scene (without the clip, which only the file holds). The file is built in memory and renamed into place: a
    failure leaves no file at `path`."""
    scene = build_scene(check_recon(recon), settings)
    data = _with_clip(scene.export(file_type="glb"), settings)
    atomic_write(Path(path), lambda tmp: tmp.write_bytes(data))
    return scene
