"""The toy-car world: geometry, rendering, splits, the on-disk layout and its reader."""
import hashlib

import numpy as np
import pytest
import trimesh

from datasources.base import DatasetFormatError
from datasources.classes import CAR_12, CAR_12_TO_5
from datasources.toy import KEYPOINT_NAMES, ToyDataset, ToySettings, build_car, render_sample, sample_params, write_split
from datasources.toy.disk import SAMPLES_PER_WORKER, split_seeds


def test_car_mesh_has_every_part_and_outward_winding():
    mesh = build_car(sample_params(np.random.default_rng(3)))
    assert set(np.unique(mesh.face_labels)) == set(range(1, len(CAR_12)))  # every part but background
    assert mesh.faces.max() < len(mesh.verts) and mesh.keypoints.shape == (len(KEYPOINT_NAMES), 3)
    # Each part is a closed convex solid wound counter-clockwise from outside: positive volume.
    tm = trimesh.Trimesh(mesh.verts, mesh.faces, process=False)
    for part in tm.split(only_watertight=False):
        assert part.is_watertight and part.volume > 0


def test_keypoints_sit_on_their_parts():
    mesh = build_car(sample_params(np.random.default_rng(5)))
    kp = dict(zip(KEYPOINT_NAMES, mesh.keypoints))
    assert kp["head_light_left"][0] > 0 > kp["tail_light_left"][0]          # front at +x
    assert kp["wheel_front_left"][2] < 0 < kp["wheel_front_right"][2]        # left at -z
    # Each keypoint lies on the surface of a triangle of its own part.
    part = {"wheel": "wheelhub", "head": "head light", "tail": "tail light", "plate": "licence plate",
            "mirror": "mirror", "roof": "car_body"}
    for name, point in zip(KEYPOINT_NAMES, mesh.keypoints.astype(np.float64)):
        tris = mesh.verts[mesh.faces[mesh.face_labels == CAR_12.index(part[name.split("_")[0]])]].astype(np.float64)
        bary = trimesh.triangles.points_to_barycentric(tris, np.repeat(point[None], len(tris), 0))
        normals = trimesh.triangles.normals(tris)[0]
        off_plane = np.abs(np.einsum("ij,ij->i", normals, point - tris[:, 0]))
        assert ((bary > -1e-6).all(1) & (off_plane < 1e-5)).any(), name


def test_render_sample_shapes_classes_and_determinism():
    settings = ToySettings(resolution=48)
    a, b = render_sample(7, settings), render_sample(7, settings)
    assert a.image.shape == (48, 48, 3) and a.image.dtype == np.uint8
    assert a.labels.shape == (48, 48) and a.labels.dtype == np.int64
    assert a.keypoints.shape == (len(KEYPOINT_NAMES), 3)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.image, render_sample(8, settings).image)
    # The car is in view: body pixels exist, background surrounds it, visible keypoints land on the car.
    assert (a.labels == CAR_12.index("car_body")).sum() > 50 and (a.labels[0] == 0).all()
    vis = a.keypoints[a.keypoints[:, 2] > 0]
    assert len(vis) >= 4
    x, y = vis[:, 0].astype(int), vis[:, 1].astype(int)
    near = [a.labels[max(j - 1, 0):j + 2, max(i - 1, 0):i + 2].max() > 0 for i, j in zip(x, y)]
    assert all(near)


def test_side_view_keypoint_visibility():
    """Seen from +z (the car's right), right-side wheels are visible and left-side ones hidden."""
    for seed in range(40):
        s = render_sample(seed, ToySettings(resolution=64))
        az = s.meta["camera"]["azimuth"]
        if min(abs(az - 0), abs(az - 360)) < 25:  # a right-side view
            vis = dict(zip(KEYPOINT_NAMES, s.keypoints[:, 2]))
            assert vis["wheel_front_right"] == 1 and vis["wheel_rear_right"] == 1
            assert vis["wheel_front_left"] == 0 and vis["wheel_rear_left"] == 0
            return
    pytest.fail("no right-side view among 40 seeds")


def test_splits_are_disjoint_and_fixed():
    seeds = {name: set(split_seeds(name)) for name in ("test", "labelled", "unlabelled")}
    assert len(seeds["test"]) == 250
    assert not (seeds["test"] & seeds["labelled"]) and not (seeds["labelled"] & seeds["unlabelled"])
    assert split_seeds("test", 3) == split_seeds("test")[:3]
    with pytest.raises(KeyError, match="valid: test, labelled, unlabelled"):
        split_seeds("train")


def _digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_write_split_round_trip_byte_identical_and_resumable(tmp_path):
    settings = ToySettings(resolution=32)
    a = write_split(tmp_path / "a", "test", 4, settings)
    ds = ToyDataset(a)
    assert len(ds) == 4 and ds.classes is CAR_12 and ds.keypoint_names == KEYPOINT_NAMES
    direct = render_sample(split_seeds("test")[2], settings)
    item = ds[2]
    np.testing.assert_array_equal(item.image, direct.image)
    np.testing.assert_array_equal(item.labels, direct.labels)
    np.testing.assert_allclose(item.keypoints, direct.keypoints)
    assert item.meta["camera"] == direct.meta["camera"]

    # Same seed -> byte-identical files; an interrupted run (a missing sample) resumes to the same bytes.
    b = write_split(tmp_path / "b", "test", 4, settings)
    assert _digest(a) == _digest(b)
    for sub, ext in (("annotations", "json"), ("images", "png")):
        (b / sub / f"000003.{ext}").unlink()
    write_split(b, "test", 4, settings)
    assert _digest(a) == _digest(b)


def test_write_split_renders_the_same_bytes_with_several_processes(tmp_path):
    """Two rendering processes (each given at least SAMPLES_PER_WORKER samples) write what one writes."""
    settings, count = ToySettings(resolution=16), 2 * SAMPLES_PER_WORKER
    one = write_split(tmp_path / "one", "test", count, settings, workers=1)
    two = write_split(tmp_path / "two", "test", count, settings, workers=2)
    assert _digest(one) == _digest(two) and len(ToyDataset(two)) == count


def test_write_split_refuses_other_settings(tmp_path):
    write_split(tmp_path, "test", 1, ToySettings(resolution=16))
    with pytest.raises(DatasetFormatError, match="other settings"):
        write_split(tmp_path, "test", 1, ToySettings(resolution=32))


def test_reader_names_damaged_files(tmp_path):
    root = write_split(tmp_path, "test", 2, ToySettings(resolution=16))
    (root / "labels" / "000001.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DatasetFormatError, match="000001.png"):
        ToyDataset(root)[1]
    with pytest.raises(DatasetFormatError, match="dataset.json"):
        ToyDataset(tmp_path / "nowhere")


def test_car_12_to_5_merge():
    labels = np.arange(len(CAR_12)).reshape(3, 4)
    merged = CAR_12_TO_5(labels)
    names = [CAR_12_TO_5.target.names[i] for i in merged.ravel()]
    assert names == ["background", "body", "light", "light", "plate", "window",
                     "wheel", "body", "body", "wheel", "window", "body"]
    assert CAR_12_TO_5(np.array([[255]]))[0, 0] == 255
