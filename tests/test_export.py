"""Animatable GLB export and turntable of a reconstruction, from the true toy car mesh and a tiny
synthetic one; plus the `export-car` command on a tiny untrained reconstructor."""
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import trimesh
from click.testing import CliRunner
from PIL import Image, ImageSequence

from benchmark.cli import cli
from datasources.classes import CAR_12
from datasources.toy.car import KEYPOINT_NAMES, build_car, sample_params
from downstream.drive import DriveSettings, drive_frames, posed, save_drive_gif
from downstream.export import (GLASS, GLB_FROM_WORLD, LAMPS, WHEEL_NAMES, ExportSettings, build_scene, complete_wheels,
                               export_glb, find_wheels, wheel_tracks)
from downstream.recon import check_recon
from downstream.turntable import TurntableSettings, render_turntable, save_turntable


def toy_recon(seed: int = 0) -> tuple[dict, np.ndarray]:
    """The true toy car of `seed` as a reconstruction dict, and its wheel centres in WHEEL_NAMES order."""
    params = sample_params(np.random.default_rng(seed))
    car = build_car(params)
    colors = np.zeros((len(car.verts), 3))
    colors[car.faces.ravel()] = np.repeat(car.face_colors, 3, axis=0)  # each hull vertex has one colour
    recon = {"vertices": car.verts, "faces": car.faces, "face_labels": car.face_labels,
             "vertex_colors": colors, "keypoints": car.keypoints}
    # Toy wheels reach from 2 cm outside the body side to 22 cm inward (datasources/toy/car.py build_car).
    x, y, z = params.wheelbase / 2, params.wheel_radius - params.height / 2, params.width / 2 + 0.02 - 0.11
    centres = np.array([[x, y, -z], [x, y, z], [-x, y, -z], [-x, y, z]])
    return recon, centres


def box_recon() -> tuple[dict, np.ndarray]:
    """A body box with four wheel boxes, a window and a head light, no keypoints; and the wheel centres."""
    centres = np.array([[1.0, -0.4, -0.8], [1.0, -0.4, 0.8], [-1.2, -0.4, -0.8], [-1.2, -0.4, 0.8]])
    boxes = [((4.0, 1.0, 1.6), (0, 0, 0), "car_body"), ((1.0, 0.4, 0.05), (0, 0.3, 0.82), "window"),
             ((0.05, 0.2, 0.3), (2.02, 0.1, 0.5), "head light")]
    boxes += [((0.6, 0.6, 0.2), tuple(c), "wheel") for c in centres]
    meshes = [trimesh.creation.box(size, trimesh.transformations.translation_matrix(at)) for size, at, _ in boxes]
    labels = np.concatenate([np.full(len(m.faces), CAR_12.index(part)) for m, (_, _, part) in zip(meshes, boxes)])
    whole = trimesh.util.concatenate(meshes)
    recon = {"vertices": np.asarray(whole.vertices), "faces": np.asarray(whole.faces), "face_labels": labels,
             "vertex_colors": np.full((len(whole.vertices), 3), 0.5)}
    return recon, centres


def glb_json(path) -> dict:
    """The JSON chunk of a GLB: a 12-byte header (magic, version, length), then chunk length, type, data."""
    data = path.read_bytes()
    magic, version, _ = struct.unpack_from("<4sII", data, 0)
    length, kind = struct.unpack_from("<I4s", data, 12)
    assert (magic, version, kind) == (b"glTF", 2, b"JSON")
    return json.loads(data[20:20 + length])


@pytest.mark.parametrize("make", [toy_recon, box_recon])
def test_wheels_are_nodes_under_the_body_pivoted_at_their_centres(tmp_path, make):
    recon, centres = make()
    export_glb(recon, tmp_path / "car.glb")
    scene = trimesh.load(tmp_path / "car.glb", force="scene")
    parents = scene.graph.transforms.parents
    assert parents["body"] == scene.graph.base_frame
    for name, centre in zip(WHEEL_NAMES, centres):
        assert parents[name] == "body"
        world = scene.graph.get(name)[0]
        np.testing.assert_allclose(world[:3, 3], (GLB_FROM_WORLD @ [*centre, 1])[:3], atol=0.02)
        wheel = scene.geometry[scene.graph.get(name)[1]]
        np.testing.assert_allclose(wheel.bounds.mean(0), 0, atol=1e-6)  # geometry centred on the pivot


def test_wheel_keypoints_refine_the_axle_only_when_near_their_wheel():
    recon, centres = box_recon()
    keypoints = np.zeros((len(KEYPOINT_NAMES), 3))  # collapsed keypoints, as from an untrained model
    near = [KEYPOINT_NAMES.index(name) for name in WHEEL_NAMES[:2]]
    keypoints[near] = centres[:2] + [0.1, 0.1, 0.1]  # front wheels: on the hub face, a little off the axle
    wheels = find_wheels(check_recon({**recon, "keypoints": keypoints}))
    expected = centres + np.array([[0.05, 0.05, 0]] * 2 + [[0, 0, 0]] * 2)  # x, y averaged; z and far points ignored
    np.testing.assert_allclose([wheel.centre for wheel in wheels], expected, atol=1e-9)


def test_hubs_spin_with_their_wheels_and_the_front_faces_glb_forward(tmp_path):
    recon, _ = toy_recon(1)
    export_glb(recon, tmp_path / "car.glb")
    scene = trimesh.load(tmp_path / "car.glb", force="scene")
    for name in WHEEL_NAMES:
        assert scene.graph.transforms.parents[f"{name}_hub"] == name
    head, tail = (scene.graph.get(node)[0] @ [*scene.geometry[scene.graph.get(node)[1]].centroid, 1]
                  for node in ("head_light_left", "tail_light_right"))
    assert head[2] > 1 > -1 > tail[2]  # glTF's front is +z


def test_glass_is_transparent_lamps_glow_and_extras_name_parts(tmp_path):
    recon, _ = toy_recon(2)
    export_glb(recon, tmp_path / "car.glb")
    gltf = glb_json(tmp_path / "car.glb")
    materials = {m["name"]: m for m in gltf["materials"]}
    for part in GLASS:
        assert materials[part]["alphaMode"] == "BLEND"
        assert materials[part]["pbrMetallicRoughness"]["baseColorFactor"][3] < 1
    for part in LAMPS:
        assert max(materials[part]["emissiveFactor"]) > 0.5
    paint = materials["car_body"]
    assert paint.get("alphaMode", "OPAQUE") == "OPAQUE" and max(paint.get("emissiveFactor", [0])) == 0
    nodes = {n["name"]: n.get("extras", {}) for n in gltf["nodes"]}
    present = {CAR_12.names[k] for k in np.unique(recon["face_labels"])}
    assert {extras["part"] for extras in nodes.values()} == present | {"body"}
    assert not any("placed" in extras for extras in nodes.values())   # the true car has every part
    assert all(nodes[name]["part"] == "wheel" and nodes[name]["spin_axis"] == [0, 0, 1] for name in WHEEL_NAMES)
    # trimesh reads the materials back as written
    scene = trimesh.load(tmp_path / "car.glb", force="scene")
    assert scene.geometry["window"].visual.material.alphaMode == "BLEND"
    assert scene.geometry["head_light_right"].visual.material.emissiveFactor.max() > 0.5


def test_missing_lamps_and_wheels_are_placed_and_say_how():
    """The box car has one head light (right side) and no tail light: the left head light is its mirror image,
    the tail lights are boxes at the rear; with its wheel faces relabelled as body, the wheels come from the box."""
    recon, centres = box_recon()
    scene = build_scene(check_recon(recon))
    extras = {name: scene.graph.transforms.edge_data[("body", name)].get("metadata", {})
              for name in scene.graph.nodes_geometry}
    assert extras["head_light_right"] == {"part": "head light", "side": "right"}
    assert extras["head_light_left"]["placed"] == "mirrored from head_light_right"
    assert extras["tail_light_left"]["placed"] == extras["tail_light_right"]["placed"] == "from the car's box"
    left, right = (scene.geometry[name].centroid for name in ("head_light_left", "head_light_right"))
    np.testing.assert_allclose(left, right * [1, 1, -1], atol=1e-9)   # the body box is centred on z = 0
    assert scene.geometry["tail_light_left"].centroid[0] == pytest.approx(-2.0)   # on the rear face
    recon["face_labels"] = np.where(recon["face_labels"] == CAR_12.index("wheel"), 1, recon["face_labels"])
    scene = build_scene(check_recon(recon))
    assert set(WHEEL_NAMES) < set(scene.graph.nodes_geometry)
    assert {scene.graph.transforms.edge_data[("body", name)]["metadata"]["placed"] for name in WHEEL_NAMES} == {
        "from the car's box"}


def test_a_wheel_the_part_map_missed_is_mirrored_from_its_partner():
    recon, centres = box_recon()
    inside = (np.abs(recon["vertices"][recon["faces"]].mean(1) - centres[1]) < [0.31, 0.31, 0.11]).all(1)
    recon["face_labels"] = np.where(inside, CAR_12.index("car_body"), recon["face_labels"])   # that wheel unseen
    wheels = complete_wheels(check_recon(recon), find_wheels(check_recon(recon)))
    assert [w.name for w in wheels] == list(WHEEL_NAMES) and wheels[1].placed == "mirrored from wheel_front_left"
    np.testing.assert_allclose(wheels[1].centre, centres[1], atol=1e-9)


def test_the_drive_clip_spins_every_wheel_forward_and_steers_the_front_ones():
    settings = ExportSettings()
    times, tracks = wheel_tracks(settings)
    assert times[0] == 0 and times[-1] == settings.clip_seconds
    for rotations in tracks.values():
        np.testing.assert_allclose(np.linalg.norm(rotations, axis=1), 1, atol=1e-6)
        turn = np.degrees(2 * np.arccos(np.clip(np.abs((rotations[1:] * rotations[:-1]).sum(1)), 0, 1)))
        assert turn.max() < 90   # linear quaternion keys take the short way round
    rear, front = tracks[False], tracks[True]
    assert np.allclose(rear[:, :2], 0) and rear[1, 2] < 0   # about z only, clockwise seen from +z: rolls to +x
    quarter = len(times) // 4   # a quarter clip: the front wheels are steered fully to one side
    steer = trimesh.transformations.quaternion_matrix(np.roll(front[quarter], 1)) @ np.linalg.inv(
        trimesh.transformations.quaternion_matrix(np.roll(rear[quarter], 1)))
    assert np.degrees(np.arctan2(steer[0, 2], steer[0, 0])) == pytest.approx(settings.steer_degrees, abs=0.5)


def test_bad_reconstructions_are_named():
    recon, _ = box_recon()
    for key, value, message in (("faces", np.zeros((3, 2), int), "'faces' must have shape"),
                                ("face_labels", np.full(len(recon["faces"]), 12), "'face_labels' must lie"),
                                ("vertex_colors", recon["vertex_colors"] * 300, "'vertex_colors' must lie"),
                                ("keypoints", np.zeros((3, 3)), "'keypoints' must have shape")):
        with pytest.raises(ValueError, match=message):
            check_recon({**recon, key: value})


def test_a_failing_export_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    recon, _ = box_recon()
    with pytest.raises(ValueError):
        export_glb({**recon, "face_labels": recon["face_labels"] + 20}, tmp_path / "new.glb")
    old = tmp_path / "old.glb"
    old.write_bytes(b"previous")

    def broken(*args, **kwargs):
        raise RuntimeError("export failed")

    monkeypatch.setattr(trimesh.Scene, "export", broken)
    with pytest.raises(RuntimeError):
        export_glb(recon, old)
    assert not (tmp_path / "new.glb").exists() and old.read_bytes() == b"previous"


def test_turntable_row_by_vertex_colour_and_by_part(tmp_path):
    recon, _ = toy_recon(3)
    settings = TurntableSettings(views=4, image_size=32)
    by_vertex = render_turntable(recon, settings)
    by_part = render_turntable(recon, TurntableSettings(views=4, image_size=32, color_by="part"))
    assert by_vertex.shape == by_part.shape == (32, 128, 3) and by_vertex.dtype == np.uint8
    views = by_vertex.reshape(32, 4, 32, 3)
    assert all((views[:, i] < 250).any(-1).mean() > 0.05 for i in range(4))  # the car shows in every view
    assert np.abs(by_vertex.astype(int) - by_part).mean() > 5
    save_turntable(recon, tmp_path / "turntable.png", settings)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "turntable.png")), by_vertex)
    with pytest.raises(ValueError, match="color_by"):
        TurntableSettings(color_by="texture")


def test_the_drive_gif_shows_the_clip_steer_the_front_wheels_and_the_lamps_glow(tmp_path):
    """On the true toy car: frames a quarter clip apart (front wheels steered) differ, only around the front
    wheels; the lamps keep their emissive colour unshaded; the GIF holds one frame per clip time."""
    recon, centres = toy_recon(3)
    settings = DriveSettings(frames=8, view=TurntableSettings(image_size=64, supersample=1))
    frames = drive_frames(recon, settings)
    assert frames.shape == (8, 64, 64, 3) and frames.dtype == np.uint8
    changed = np.abs(frames[2].astype(int) - frames[0]).sum(-1) > 30   # steered by steer_degrees, spun a turn
    assert changed.mean() > 0.002
    scene = build_scene(check_recon(recon))
    verts, faces, colours, glow = posed(scene, {})
    assert glow.any() and not glow.all() and len(colours) == len(verts) and faces.max() < len(verts)
    paint = np.asarray(scene.geometry["car_body"].visual.vertex_attributes["color"])[:, :3] / 255
    assert all(np.isclose(colours, c, atol=1e-6).all(1).any() for c in paint)   # paint keeps its vertex colours
    turned = posed(scene, {"wheel_front_left": np.array([0.0, np.sin(0.5), 0.0, np.cos(0.5)])})[0]
    assert not np.allclose(turned, verts) and np.allclose(posed(scene, {})[0], verts)   # the scene is left as it was
    save_drive_gif(recon, tmp_path / "drive.gif", settings)
    gif = Image.open(tmp_path / "drive.gif")
    assert gif.n_frames == 8 and gif.info["loop"] == 0 and gif.info["duration"] == 500


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """An untrained reconstructor on the smallest template and encoder, saved as `3d train` saves it."""
    from inverse_graphics.reconstructor import Reconstructor, ReconstructorConfig, save_reconstructor
    from inverse_graphics.template import TemplateSettings

    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    config = ReconstructorConfig(encoder="resnet10", texture_size=8, template=TemplateSettings(subdivisions=1))
    save_reconstructor(path, Reconstructor(config))
    return path


def test_export_car_command(tmp_path, tiny_checkpoint):
    image = tmp_path / "car.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(image)
    args = ["export-car", "--image", str(image), "--checkpoint", str(tiny_checkpoint)]
    result = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "out" / "car.glb"),
                                             "--turntable", str(tmp_path / "car-tt.png"), "--color-by", "part",
                                             "--gif", str(tmp_path / "car.gif")])
    assert result.exit_code == 0, result.output
    gif = Image.open(tmp_path / "car.gif")   # Pillow merges repeated frames, summing their durations
    assert sum(frame.info["duration"] for frame in ImageSequence.Iterator(gif)) == 1000 * ExportSettings().clip_seconds
    assert len(trimesh.load(tmp_path / "out" / "car.glb", force="scene").geometry) > 0
    assert Image.open(tmp_path / "car-tt.png").size == (8 * 128, 128)
    _check_complete(glb_json(tmp_path / "out" / "car.glb"))   # even an untrained model's car is complete

    (tmp_path / "broken.png").write_bytes(b"not an image")
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(tmp_path / "gray.png")
    out = ["--out", str(tmp_path / "bad.glb")]
    for extra, message in ((["--image", str(tmp_path / "broken.png")], "a readable image file"),
                           (["--image", str(tmp_path / "gray.png")], "an RGB image"),
                           (["--checkpoint", str(image)], "not a readable reconstructor checkpoint")):
        result = CliRunner().invoke(cli, args + extra + out)
        assert result.exit_code != 0 and message in result.output, result.output
        assert "Traceback" not in result.output and not (tmp_path / "bad.glb").exists()
    result = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "car.obj")])
    assert result.exit_code != 0 and "not a .glb path" in result.output


def _check_complete(gltf: dict) -> None:
    """Four wheel nodes moved by the "drive" clip (front ones on their own track), two emissive head lights and
    two emissive tail lights."""
    nodes = {node["name"]: (i, node) for i, node in enumerate(gltf["nodes"])}
    materials = gltf["materials"]
    for part in ("head_light", "tail_light"):
        for side in ("left", "right"):
            _, node = nodes[f"{part}_{side}"]
            material = materials[gltf["meshes"][node["mesh"]]["primitives"][0]["material"]]
            assert max(material["emissiveFactor"]) > 0.5
    (clip,) = gltf["animations"]
    assert clip["name"] == "drive"
    moved = {channel["target"]["node"]: channel for channel in clip["channels"]}
    assert sorted(moved) == sorted(nodes[name][0] for name in WHEEL_NAMES)
    for name in WHEEL_NAMES:
        index, node = nodes[name]
        assert "matrix" not in node and moved[index]["target"]["path"] == "rotation"
    times = gltf["accessors"][clip["samplers"][0]["input"]]
    assert times["max"] == [ExportSettings().clip_seconds] and times["count"] == ExportSettings().clip_keys
    front, rear = (moved[nodes[name][0]]["sampler"] for name in ("wheel_front_left", "wheel_rear_left"))
    assert front != rear


VALIDATOR = Path(__file__).resolve().parents[1] / "build" / "node" / "node_modules" / "gltf-validator"


@pytest.mark.skipif(shutil.which("node") is None or not VALIDATOR.is_dir(),
                    reason="needs node and the Khronos validator: make gltf-validator")
@pytest.mark.parametrize("make", [toy_recon, box_recon])
def test_the_khronos_validator_finds_no_error_and_no_warning(tmp_path, make):
    export_glb(make()[0], tmp_path / "car.glb")
    script = ("const v = require(process.argv[1]); const data = require('fs').readFileSync(process.argv[2]);"
              "v.validateBytes(new Uint8Array(data)).then(r => console.log(JSON.stringify(r.issues)));")
    run = subprocess.run(["node", "-e", script, str(VALIDATOR), str(tmp_path / "car.glb")], capture_output=True,
                         text=True, check=True)
    issues = json.loads(run.stdout)
    assert issues["numErrors"] == issues["numWarnings"] == 0, issues["messages"][:5]
    _check_complete(glb_json(tmp_path / "car.glb"))
