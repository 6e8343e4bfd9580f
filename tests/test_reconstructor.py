"""The inverse-graphics reconstructor: template, network, rendering, losses, training (losses fall,
exact resume), checkpoints, reconstruct() on bad input, 3D evaluation, viewpoint regressor, sources."""
import math
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from PIL import Image

from datasetgan.backbone import Backbone
from datasetgan.quality import FeatureNet
from datasetgan.factory import FactorySettings, generate, image_at_label_grid
from datasetgan.stylegan2 import Generator, GeneratorConfig
from datasources.base import CheckpointFormatError, DatasetFormatError
from datasources.classes import CAR_5, CAR_12
from datasources.synthetic import SyntheticDataset
from datasources.toy import KEYPOINT_NAMES, CarParams, ToySettings, build_car, mean_params, render_sample, sample_params
from inverse_graphics import RasterSettings, look_at
from inverse_graphics.evaluation import chamfer, evaluate, outer_surface_points, render_labels, surface_points
from inverse_graphics.losses import (LossWeights, flatten_loss, iou_loss, keypoint_loss, laplacian_loss, perceptual_loss,
                                     weighted_sum)
from inverse_graphics.reconstructor import (Reconstructor, ReconstructorConfig, load_reconstructor, read_image,
                                            reconstruct, save_reconstructor)
from inverse_graphics.render import render_uv_mesh, sample_uv
from inverse_graphics.template import Template, TemplateSettings
from inverse_graphics.training import ReconstructorTrainer, TrainSettings, loss_terms
from inverse_graphics.viewpoint import (ViewpointConfig, azimuth_certainty, azimuth_error, decode, encode,
                                        estimate_cameras, load_viewpoint, mirrored, most_certain, save_viewpoint,
                                        train_viewpoint, viewpoint_loss, ViewpointRegressor)
from inverse_graphics.views import CAMERA_KEYS, Views, match_keypoint_names, mixed_views, synthetic_views, toy_views

TINY = ReconstructorConfig(encoder="resnet10", texture_size=8)


@pytest.fixture(scope="module")
def views() -> Views:
    return toy_views(list(range(1_000_000, 1_000_008)))


def test_template_is_dib_r_sphere_with_mirror_uvs_and_laplacian():
    t = Template()
    assert t.vertices.shape == (642, 3) and t.faces.shape == (1280, 3) and t.edge_faces.shape == (1920, 2)
    flip = torch.tensor([1.0, 1.0, -1.0])
    torch.testing.assert_close(t.vertices[t.mirror], t.vertices * flip)
    assert (t.mirror[t.mirror] == torch.arange(642)).all()
    u = t.face_uvs[..., 0]
    assert (u.amax(1) - u.amin(1)).max() < 0.5 and u.min() >= 0 and u.max() < 2  # no face spans the seam
    constant = torch.ones(642, 3)
    torch.testing.assert_close(torch.sparse.mm(t.laplacian, constant), torch.zeros(642, 3))


def test_mean_car_template_is_the_same_sphere_shrink_wrapped_onto_a_car(tmp_path):
    """Same topology, UVs and mirror pairs as the ellipsoid; exactly symmetric; car-sized (the mean toy car:
    4.3 m long, 1.8 m wide); boxier than the ellipsoid (more of its vertices near the box's top); a checkpoint
    keeps the shape, and one written before `shape` existed loads as the ellipsoid."""
    settings = TemplateSettings(subdivisions=2, shape="mean-car")
    car, sphere = Template(settings), Template(TemplateSettings(subdivisions=2))
    assert torch.equal(car.faces, sphere.faces) and torch.equal(car.mirror, sphere.mirror)
    torch.testing.assert_close(car.vertex_uvs, sphere.vertex_uvs)
    torch.testing.assert_close(car.vertices[car.mirror], car.vertices * torch.tensor([1.0, 1.0, -1.0]))
    extent = car.vertices.amax(0) - car.vertices.amin(0)
    assert 4.0 < extent[0] < 4.6 and 1.6 < extent[2] < 2.0 and car.signature != sphere.signature
    top = lambda v: (v[:, 1] > 0.8 * v[:, 1].max()).float().mean()  # noqa: E731
    assert top(car.vertices) > top(sphere.vertices)
    config = ReconstructorConfig(encoder="resnet10", texture_size=8, template=settings)
    save_reconstructor(tmp_path / "car.pt", Reconstructor(config))
    assert load_reconstructor(tmp_path / "car.pt").config.template.shape == "mean-car"
    old = asdict(ReconstructorConfig())
    del old["template"]["shape"]
    assert ReconstructorConfig.from_dict(old).template == TemplateSettings()
    with pytest.raises(ValueError, match="template shape must be one of ellipsoid, mean-car"):
        TemplateSettings(shape="cube")


def test_prediction_shapes_and_symmetry():
    model = Reconstructor(ReconstructorConfig())  # the default: resnet10, 32x32 UV maps
    torch.nn.init.normal_(model.shape[-1].weight, std=0.01)  # non-zero offsets, to see the mirroring
    pred = model(torch.rand(2, 3, 64, 64))
    assert pred.vertices.shape == pred.offsets.shape == (2, 642, 3)
    assert pred.texture.shape == (2, 3, 32, 32) and pred.part_logits.shape == (2, len(CAR_12), 32, 32)
    assert pred.keypoints.shape == (2, len(KEYPOINT_NAMES), 3) and pred.camera_delta.shape == (2, 3)
    flip = torch.tensor([1.0, 1.0, -1.0])
    torch.testing.assert_close(pred.offsets, pred.offsets[:, model.template_mirror] * flip)
    with pytest.raises(ValueError, match="images: expected shape"):
        model(torch.rand(2, 3, 32, 32))


def test_keypoints_are_tied_to_their_mirror_images():
    """With symmetric_keypoints (the default) each left keypoint is its right one mirrored across z = 0 and the
    plates sit on that plane; without it (checkpoints from before the option) the keypoints are free."""
    names = {name: k for k, name in enumerate(KEYPOINT_NAMES)}
    flip = torch.tensor([1.0, 1.0, -1.0])
    images = torch.rand(2, 3, 64, 64)
    for tied in (True, False):
        torch.manual_seed(0)
        model = Reconstructor(ReconstructorConfig(texture_size=8, symmetric_keypoints=tied))
        torch.nn.init.normal_(model.shape[-1].weight, std=0.01)
        torch.nn.init.normal_(model.keypoints[-1].weight, std=1.0)  # peaked, different weights per keypoint
        kp = model(images).keypoints
        parts = ("wheel_front", "wheel_rear", "head_light", "tail_light", "mirror", "roof_front", "roof_rear")
        pairs = [(names[f"{part}_left"], names[f"{part}_right"]) for part in parts]
        left, right = (torch.tensor(side) for side in zip(*pairs))
        plates = torch.tensor([names["plate_front"], names["plate_rear"]])
        if tied:
            torch.testing.assert_close(kp[:, left], kp[:, right] * flip)
            torch.testing.assert_close(kp[:, plates, 2], torch.zeros(2, 2), atol=1e-5, rtol=0)
        else:
            assert (kp[:, left] - kp[:, right] * flip).abs().max() > 0.05
    old = asdict(ReconstructorConfig())
    del old["symmetric_keypoints"]
    assert not ReconstructorConfig.from_dict(old).symmetric_keypoints
    with pytest.raises(ValueError, match="pairs the toy car's 16 keypoints"):
        ReconstructorConfig(num_keypoints=3)


def test_render_uv_mesh_samples_maps_and_passes_gradients():
    t = Template(TemplateSettings(subdivisions=2))
    vertices = t.vertices[None].clone().requires_grad_()
    maps = torch.full((1, 2, 8, 8), 0.25).requires_grad_()
    cameras = look_at(30.0, 10.0, 8.0, 40.0, 32)
    out = render_uv_mesh(vertices, t.faces, t.face_uvs, maps, cameras, RasterSettings(image_size=32))
    assert out.covered.any() and not out.covered.all()
    torch.testing.assert_close(out.maps[:, :, out.covered[0]], torch.full((1, 2, int(out.covered.sum())), 0.25))
    assert (out.maps[:, :, ~out.covered[0]] == 0).all()
    (out.maps.sum() + out.silhouette.sum()).backward()
    assert vertices.grad.abs().sum() > 0 and maps.grad.abs().sum() > 0
    # u wraps around: u and u + 1 read the same texels, and u = 0 lies halfway between the last and first column.
    ramp = torch.arange(8.0).repeat(8, 1)[None, None]
    values = sample_uv(ramp, torch.tensor([[[0.07, 0.5], [1.07, 0.5], [0.0, 0.5], [1.0, 0.5]]]))[0, :, 0]
    torch.testing.assert_close(values, torch.tensor([0.06, 0.06, 3.5, 3.5]))


def test_loss_terms_on_hand_cases():
    mask = torch.zeros(1, 4, 4)
    mask[0, :2] = 1
    assert iou_loss(mask, mask) == 0 and iou_loss(1 - mask, mask) == 1
    cameras = look_at(0.0, 0.0, 5.0, 40.0, 64)
    points = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    target = torch.tensor([[[32.0, 32.0, 1.0], [0.0, 0.0, 0.0]]])  # the second keypoint is not visible
    assert keypoint_loss(points, cameras, target) == 0
    target[0, 0, 0] = 32.0 + 6.4  # a tenth of the image side off: (0.1)^2
    torch.testing.assert_close(keypoint_loss(points, cameras, target), torch.tensor(0.01))
    torch.testing.assert_close(keypoint_loss(points, cameras, target, "distance"), torch.tensor(0.1), atol=1e-4, rtol=0)
    # Three labels of one place, one far off: the distance loss is least at the median, the squared at the mean.
    labels = torch.tensor([[[32.0, 32.0, 1.0], [32.0, 32.0, 1.0], [32.0 + 19.2, 32.0, 1.0]]])
    at = lambda x: torch.tensor([[[x, 0.0, 0.0]]]).expand(1, 3, 3)  # noqa: E731, world x moves the projection
    for kind, best in (("distance", 0.0), ("squared", 0.36)):  # world x 0.36 projects near the labels' mean
        losses = [float(keypoint_loss(at(x), cameras, labels, kind)) for x in (0.0, 0.36)]
        assert min(zip(losses, (0.0, 0.36)))[1] == best, (kind, losses)
    # Three labels of one place and four spread far off: the distance loss is least at their median (8 pixels
    # off, world x 0.455), the Cauchy loss at the place where most agree.
    labels = torch.tensor([[[32.0 + dx, 32.0, 1.0] for dx in (0, 0, 0, 8, 16, 24, 32)]])
    at = lambda x: torch.tensor([[[x, 0.0, 0.0]]]).expand(1, 7, 3)  # noqa: E731
    for kind, best in (("distance", 0.455), ("cauchy", 0.0)):
        losses = [float(keypoint_loss(at(x), cameras, labels, kind, scale=0.025)) for x in (0.0, 0.455)]
        assert min(zip(losses, (0.0, 0.455)))[1] == best, (kind, losses)
    # Near the labels the Cauchy loss pulls as the distance does, scale * log(1 + 1) at one scale off.
    target[0, 0, 0] = 32.0 + 3.2
    torch.testing.assert_close(keypoint_loss(points, cameras, target, "cauchy", scale=0.05),
                               torch.tensor(0.05 * math.log(2)), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="unknown keypoint loss 'huber'"):
        keypoint_loss(points, cameras, target, "huber")
    square = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    assert flatten_loss(square, faces, torch.tensor([[0, 1]])) == 0
    folded = square.clone()
    folded[0, 3] = torch.tensor([0.5, 0.5, 0.5**0.5])  # the second triangle turned 90 deg about the diagonal
    torch.testing.assert_close(flatten_loss(folded, faces, torch.tensor([[0, 1]])), torch.tensor(1.0))  # (1 - cos 90)^2
    t = Template(TemplateSettings(subdivisions=1))
    shifted = (t.vertices + torch.tensor([5.0, 0.0, 0.0]))[None]
    torch.testing.assert_close(laplacian_loss(shifted, t.laplacian), laplacian_loss(t.vertices[None], t.laplacian))
    with pytest.raises(KeyError, match="no weight"):
        weighted_sum({"chamfer": torch.tensor(1.0)}, LossWeights())


def test_training_lowers_the_losses_and_resumes_exactly(views, tmp_path):
    settings = TrainSettings(batch=4, lr=1e-3)
    fixed = views.batch(torch.arange(8))

    def total(model):
        with torch.no_grad():
            terms = loss_terms(model, fixed.images, fixed, settings)
        return weighted_sum(terms, settings.weights).item(), terms["iou"].item()

    trainer = ReconstructorTrainer(tmp_path / "a", views, TINY, settings)
    before = total(trainer.model)
    trainer.train(12, checkpoint_every=5)
    after = total(trainer.model)
    assert after[0] < 0.8 * before[0] and after[1] < before[1]
    assert (tmp_path / "a" / "training.pt").is_file() and (tmp_path / "a" / "reconstructor.pt").is_file()
    # An interrupted run (6 steps, then a new trainer from the folder) continues to the same numbers.
    ReconstructorTrainer(tmp_path / "b", views, TINY, settings).train(6)
    resumed = ReconstructorTrainer(tmp_path / "b", views, TINY, settings)
    assert resumed.step_count == 6
    resumed.train(12)
    assert resumed.log == trainer.log
    with pytest.raises(CheckpointFormatError, match="settings.lr: 0.001 -> 0.01"):
        ReconstructorTrainer(tmp_path / "b", views, TINY, TrainSettings(batch=4, lr=1e-2))
    state = torch.load(tmp_path / "b" / "training.pt", weights_only=True)
    del state["options"]["settings"]["weights"]["perceptual"]   # a run saved before that option existed
    torch.save(state, tmp_path / "b" / "training.pt")
    assert ReconstructorTrainer(tmp_path / "b", views, TINY, settings).step_count == 12
    del state["options"]["settings"]["keypoint_loss"]   # a run from before it trained with the squared loss
    del state["options"]["settings"]["keypoint_scale"]  # (and one from before the scale ignores it)
    torch.save(state, tmp_path / "b" / "training.pt")
    with pytest.raises(CheckpointFormatError, match="settings.keypoint_loss: squared -> cauchy"):
        ReconstructorTrainer(tmp_path / "b", views, TINY, settings)
    legacy = replace(settings, keypoint_loss="squared")
    assert ReconstructorTrainer(tmp_path / "b", views, TINY, legacy).step_count == 12


def test_perceptual_term_compares_feature_maps_of_the_rendering_pasted_on_the_view(views):
    """Zero where the rendering equals the view, positive otherwise; in loss_terms it reaches the model."""
    torch.manual_seed(0)
    net = FeatureNet(len(CAR_12)).eval()
    feature_maps = lambda x: net.feature_maps(x * 2 - 1)  # noqa: E731
    batch = views.batch(torch.arange(2))
    covered = torch.zeros(2, 64, 64, dtype=torch.bool)
    covered[:, 16:48, 16:48] = True
    assert perceptual_loss(feature_maps, batch.images, batch.images, covered) == 0
    assert perceptual_loss(feature_maps, batch.images.flip(-1), batch.images, covered) > 0
    model = Reconstructor(TINY)
    terms = loss_terms(model, batch.images, batch, TrainSettings(), feature_maps=feature_maps)
    terms["perceptual"].backward()
    assert terms["perceptual"] > 0 and model.uv.out.weight.grad.abs().sum() > 0


def test_multiview_pairs_render_into_the_other_views(views, tmp_path):
    grouped = Views(views.images, views.labels, views.keypoints, views.cameras, groups=torch.arange(8) // 4)
    trainer = ReconstructorTrainer(tmp_path, grouped, TINY, TrainSettings(batch=4, refine_camera=True))
    assert [m.tolist() for m in trainer.members[3:5]] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    record = trainer.step()
    assert np.isfinite(record["total"])


def test_checkpoint_roundtrip_and_bad_checkpoints(tmp_path):
    model = Reconstructor(TINY).eval()
    path = tmp_path / "model.pt"
    save_reconstructor(path, model)
    loaded = load_reconstructor(path)
    image = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(loaded(image).vertices, model(image).vertices, atol=1e-3, rtol=1e-3)  # float16 weights
    # A checkpoint whose weights belong to another template (162 vertices) but claims the 642 one.
    other = Reconstructor(ReconstructorConfig(encoder="resnet10", texture_size=8,
                                              template=TemplateSettings(subdivisions=2)))
    save_reconstructor(path, other)
    saved = torch.load(path, weights_only=True)
    saved["config"]["template"]["subdivisions"] = 3
    torch.save(saved, path)
    with pytest.raises(CheckpointFormatError, match="another template"):
        load_reconstructor(path)
    saved["template"] = Template().signature
    torch.save(saved, path)
    with pytest.raises(CheckpointFormatError, match="do not fit"):
        load_reconstructor(path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointFormatError, match="not a readable reconstructor checkpoint"):
        load_reconstructor(tmp_path / "junk.pt")
    with pytest.raises(CheckpointFormatError, match="no such"):
        load_reconstructor(tmp_path / "missing.pt")


def test_reconstruct_returns_the_export_interface(views):
    model = Reconstructor(TINY)
    out = reconstruct(model, views.images[0].numpy())
    assert out["vertices"].shape == (642, 3) and out["faces"].shape == (1280, 3) and out["faces"].dtype == np.int64
    assert out["face_labels"].shape == (1280,) and out["face_labels"].min() >= 1 and out["face_labels"].max() < 12
    assert out["vertex_colors"].shape == (642, 3) and 0 <= out["vertex_colors"].min() <= out["vertex_colors"].max() <= 1
    assert out["texture"].shape == (8, 8, 3) and out["texture"].dtype == np.uint8
    assert out["face_uvs"].shape == (1280, 3, 2) and out["keypoints"].shape == (16, 3)
    wide = np.zeros((40, 90, 3), np.uint8)  # non-square: padded, then resized
    assert reconstruct(model, wide)["vertices"].shape == (642, 3)


def test_bad_images_fail_clearly(tmp_path):
    model = Reconstructor(TINY)
    with pytest.raises(ValueError, match="RGB image"):
        reconstruct(model, np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="too small"):
        reconstruct(model, np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        reconstruct(model, np.zeros((64, 64, 3), np.float32))
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "gray.png")
    with pytest.raises(DatasetFormatError, match="grayscale"):
        read_image(tmp_path / "gray.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DatasetFormatError, match="broken.png: a readable image"):
        read_image(tmp_path / "broken.png")
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(DatasetFormatError, match="too small"):
        read_image(tmp_path / "tiny.png")
    Image.fromarray(np.zeros((64, 64, 4), np.uint8)).save(tmp_path / "rgba.png")
    assert read_image(tmp_path / "rgba.png").shape == (64, 64, 3)


def test_chamfer_on_hand_computed_points():
    # A -> B: the origin's nearest is 1 away; B -> A: 1 and 3, mean 2. Chamfer = (1 + 2) / 2.
    assert chamfer(np.zeros((1, 3)), np.array([[1.0, 0, 0], [3.0, 0, 0]])) == 1.5
    rng = np.random.default_rng(0)
    square = np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    points = surface_points(square, np.array([[0, 1, 2], [0, 2, 3]]), 4000, rng)
    assert (points[:, 2] == 0).all() and points.min() >= 0 and points.max() <= 1
    assert abs((points[:, 0] > points[:, 1]).mean() - 0.5) < 0.05  # two equal triangles, equal shares
    car = build_car(sample_params(np.random.default_rng(1)))
    outer = outer_surface_points(car, 4000, rng)
    assert 1000 < len(outer) < 4000  # the hidden insides of overlapping parts are dropped
    assert chamfer(outer, surface_points(car.verts, car.faces, 4000, rng)) < 0.1


def test_evaluate_reports_every_figure():
    settings = ToySettings(resolution=64)
    result = evaluate(Reconstructor(TINY), [3], settings, points=500)
    for key in ("chamfer_over_length", "keypoint_error_over_length", "silhouette_iou_input", "silhouette_iou_novel",
                "part_miou_input", "part_miou_novel"):
        assert np.isfinite(result[key]) and result[key] >= 0, key
    assert 0 < result["silhouette_iou_input"] <= 1 and result["images"] == 1
    car = build_car(sample_params(np.random.default_rng(3)))
    labels = render_labels(car.verts, car.faces, car.face_labels, [0.0, 0.0, 12.0, 30.0], 64)
    assert labels[32, 32] > 0 and labels[0, 0] == 0
    # The mean-car prior: the same mesh for every image, its keypoint error computed by hand.
    prior = evaluate(None, [3], settings, points=500)
    params = CarParams(**render_sample(3, settings).meta["params"])
    error = np.linalg.norm(build_car(mean_params()).keypoints - build_car(params).keypoints, axis=1).mean()
    assert prior["keypoint_error_over_length"] == pytest.approx(error / params.length)
    assert 0.5 < prior["silhouette_iou_input"] <= 1 and prior["chamfer_over_length"] < 0.05


def test_3d_eval_command_writes_a_record_per_checkpoint_and_a_row_per_source(tmp_path):
    """Two seeds of one source make one row (mean and seed std), another source its own row (a run trained before
    the keypoint loss was an option is named squared, one of another loss than the default by it, and so on);
    --mean-car adds the prior's row first."""
    import pandas as pd
    from click.testing import CliRunner

    from benchmark.cli import cli

    args = ["3d", "eval", "--seeds", "3", "--points", "200", "--out", str(tmp_path / "records"),
            "--tables", str(tmp_path / "tables"), "--mean-car"]
    cauchy = {"keypoint_loss": "cauchy", "keypoint_scale": 0.05}
    for i, (source, settings) in enumerate([("toy:a", {"seed": 0, **cauchy}), ("toy:a", {"seed": 1, **cauchy}),
                                            ("generated:b", {"seed": 0}),
                                            ("toy:a", {"seed": 0, **cauchy, "keypoint_scale": 0.025}),
                                            ("toy:a", {"seed": 0, "keypoint_loss": "distance",
                                                       "refine_camera": True})]):
        torch.manual_seed(i)
        save_reconstructor(tmp_path / f"r{i}.pt", Reconstructor(TINY), {"source": source, "settings": settings})
        args += ["--checkpoint", str(tmp_path / f"r{i}.pt")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "tables" / "3d.csv", dtype={"seeds": str})
    assert table.source.tolist() == ["toy world's mean car (no image)", "toy:a", "generated:b, squared keypoint loss",
                                     "toy:a, cauchy 0.025 keypoint loss",
                                     "toy:a, distance keypoint loss, cameras refined"]
    assert table.seeds.tolist() == ["0", "0 1", "0", "0", "0"]
    assert 0 < table["silhouette_iou_input"][1] <= 1 and table["silhouette_iou_input_seed_std"][1] >= 0   # two seeds
    assert np.isnan(table["silhouette_iou_input_seed_std"][2]) and len(table.records[1].split()) == 2
    assert (tmp_path / "tables" / "3d.tex").read_text().count("$\\pm$") == 6
    assert "| toy:a " in (tmp_path / "tables" / "3d.md").read_text()
    assert len(list((tmp_path / "records").glob("*/record.json"))) == 6
    # Earlier records join a new table as they are (rows first); one of other test seeds is refused.
    kept = table.records[2].split() + table.records[1].split()[:1]
    again = ["3d", "eval", "--seeds", "3", "--points", "200", "--out", str(tmp_path / "records"), "--tables",
             str(tmp_path / "again"), "--checkpoint", str(tmp_path / "r1.pt")] + [a for k in kept for a in ("--record", k)]
    result = CliRunner().invoke(cli, again)
    assert result.exit_code == 0, result.output
    remade = pd.read_csv(tmp_path / "again" / "3d.csv", dtype={"seeds": str})
    assert remade.source.tolist() == ["generated:b, squared keypoint loss", "toy:a"] and remade.seeds[1] == "0 1"
    assert remade.keypoint_error_over_length[0] == table.keypoint_error_over_length[2]
    assert remade.keypoint_error_over_length[1] == pytest.approx(table.keypoint_error_over_length[1])
    result = CliRunner().invoke(cli, again[:2] + ["--seeds", "4"] + again[4:])
    assert result.exit_code != 0 and "scored other seeds" in result.output
    # Records alone rebuild a table: nothing is scored, no record written.
    result = CliRunner().invoke(cli, again[:10] + [a for k in kept for a in ("--record", k)])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "again" / "3d.csv").source.tolist() == remade.source.tolist()
    assert len(list((tmp_path / "records").glob("*/record.json"))) == 7


def _outputs_for(cameras, config: ViewpointConfig) -> torch.Tensor:
    """The outputs a perfect regressor gives for cameras float (N, 4): one-hot bin logits, the true offsets."""
    bin_, offset, rest = encode(cameras, config.azimuth_bins)
    logits = torch.nn.functional.one_hot(bin_, config.azimuth_bins).float() * 20
    offsets = torch.zeros(len(cameras), config.azimuth_bins).scatter(1, bin_[:, None], offset[:, None])
    return torch.cat([logits, offsets, rest], 1)


def test_viewpoint_regressor_targets_training_and_checkpoint(views, tmp_path):
    cameras = torch.tensor([[350.0, 10.0, 9.0, 30.0], [7.5, 3.0, 6.0, 30.0], [186.0, 0.0, 7.0, 30.0]])
    config = ViewpointConfig(fov=30.0)
    torch.testing.assert_close(decode(_outputs_for(cameras, config), config), cameras)
    other_fov = decode(_outputs_for(cameras, config), ViewpointConfig(fov=40.0))  # same apparent size, other fov
    torch.testing.assert_close(other_fov[:, 2] * np.tan(np.radians(20)), cameras[:, 2] * np.tan(np.radians(15)))
    # a mirrored view: the car seen from 180 - azimuth
    images = torch.rand(3, 3, 8, 8)
    flipped, flipped_cameras = mirrored(images, cameras)
    torch.testing.assert_close(flipped[..., 0], images[..., -1])
    torch.testing.assert_close(flipped_cameras[:, 0], torch.tensor([190.0, 172.5, 354.0]))
    assert azimuth_error(torch.tensor([[355.0, 0, 1, 1]]), torch.tensor([[5.0, 0, 1, 1]])) == 10
    assert viewpoint_loss(_outputs_for(cameras, config), cameras, config.azimuth_bins) < 1e-3
    model = train_viewpoint(views, steps=2, batch=4)
    save_viewpoint(tmp_path / "viewpoint.pt", model)
    loaded = load_viewpoint(tmp_path / "viewpoint.pt")
    torch.testing.assert_close(estimate_cameras(loaded, views.images), estimate_cameras(model, views.images))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointFormatError, match="viewpoint"):
        load_viewpoint(tmp_path / "junk.pt")


def test_certainty_marks_views_the_regressor_may_have_turned_round(views):
    config = ViewpointConfig()
    sure = _outputs_for(torch.tensor([[40.0, 0.0, 8.0, 30.0]] * 3), config)
    turned = _outputs_for(torch.tensor([[220.0, 0.0, 8.0, 30.0]]), config)
    sure[1, :config.azimuth_bins] = (sure[1] + turned[0])[:config.azimuth_bins]  # front or rear, evenly
    bins = sure[2, :config.azimuth_bins].clone()
    sure[2, :config.azimuth_bins] = bins.roll(-1) + bins + bins.roll(1)  # unsure between neighbours only
    certainty = azimuth_certainty(sure, config)
    assert certainty[0] > 0.999 and abs(certainty[1] - 0.5) < 1e-3 and certainty[2] > 0.99
    model = train_viewpoint(views, steps=2, batch=4)
    certainty = azimuth_certainty(model(views.images.permute(0, 3, 1, 2).float().div(255)), model.config)
    rows = most_certain(certainty, 0.6)  # 8 views: the 5 most certain, in order
    dropped = torch.ones(len(views), dtype=torch.bool).index_fill(0, rows, False)
    assert rows.tolist() == sorted(rows.tolist()) and len(rows) == 5
    assert certainty[rows].min() >= certainty[dropped].max()


def _tiny_backbone():
    torch.manual_seed(0)
    return Backbone(Generator(GeneratorConfig(z_dim=8, w_dim=8, resolution=8, channel_base=32, channel_max=8,
                                              mapping_layers=1)))


def box_labeler(sample):
    """A deterministic labeler: a car body box in the middle of every 8x8 image, certain everywhere."""
    labels = torch.zeros(len(sample.image), 8, 8, dtype=torch.int64)
    labels[:, 2:6, 1:7] = CAR_12.index("car_body")
    return labels, torch.zeros(labels.shape), torch.zeros(len(labels))


def fixed_cameras(images):
    return torch.tensor([30.0, 5.0, 10.0, 32.5]).repeat(len(images), 1)


def test_synthetic_views_read_a_factory_folder(tmp_path):
    generate(_tiny_backbone(), box_labeler, CAR_12, tmp_path, FactorySettings(num=3, filter_ratio=0.0), (8, 8))
    out = synthetic_views(tmp_path, fixed_cameras, size=64)
    assert out.images.shape == (3, 64, 64, 3) and out.labels.shape == (3, 64, 64) and out.groups is None
    assert out.labels[0, 32, 32] == CAR_12.index("car_body") and out.labels[0, 0, 0] == 0
    assert (out.keypoints[..., 2] == 0).all() and out.cameras[1, 0] == 30
    generate(_tiny_backbone(), box_labeler, CAR_5, tmp_path / "car5", FactorySettings(num=1), (8, 8))
    with pytest.raises(DatasetFormatError, match="car-12"):
        synthetic_views(tmp_path / "car5", fixed_cameras, size=64)


def test_3d_train_keeps_the_most_certain_cameras(tmp_path):
    from click.testing import CliRunner

    from benchmark.cli import cli

    generate(_tiny_backbone(), box_labeler, CAR_12, tmp_path / "synthetic", FactorySettings(num=4, filter_ratio=0.0),
             (8, 8))
    torch.manual_seed(0)
    save_viewpoint(tmp_path / "viewpoint.pt", ViewpointRegressor(ViewpointConfig()))
    args = ["3d", "train", "--run", str(tmp_path / "run"), "--steps", "1", "--batch", "2", "--camera-keep", "0.5"]
    result = CliRunner().invoke(cli, args + ["--generated", str(tmp_path / "synthetic"), "--viewpoint",
                                             str(tmp_path / "viewpoint.pt"), "--weight", "keypoints=0"])
    assert result.exit_code == 0, result.output
    assert "(step 1, 2 views)" in result.output
    result = CliRunner().invoke(cli, args + ["--toy", str(tmp_path / "synthetic")])  # refused before any reading
    assert result.exit_code == 2 and "--camera-keep is for the sources whose cameras are estimated" in result.output


def test_keypoint_names_are_matched_to_the_camera():
    """Exact toy keypoints keep their names under their true cameras; with every left and right name swapped,
    and front wheels called rear ones, matching restores them. Keypoints the mean car hides in that view (the
    toy car's shape differs from it) are marked hidden, never renamed to a hidden name."""
    samples = [render_sample(seed) for seed in range(12)]
    truth = np.stack([s.keypoints for s in samples])
    cameras = np.array([[s.meta["camera"][k] for k in CAMERA_KEYS] for s in samples])
    other = {"left": "right", "right": "left", "front": "rear", "rear": "front"}
    swap = [KEYPOINT_NAMES.index("_".join(other.get(w, w) if w in ("left", "right") or name.startswith("wheel") else w
                                          for w in name.split("_"))) for name in KEYPOINT_NAMES]
    visible = truth[..., 2] > 0
    for given in (truth, truth[:, swap]):
        matched = match_keypoint_names(given, cameras, 64)
        same = np.abs(matched[..., :2] - truth[..., :2]).max(-1) < 1e-4
        assert ((matched[..., 2] > 0) <= visible).all()   # renamed or hidden, never invented
        assert (same & visible).sum() >= 0.8 * visible.sum() and (same | ~(matched[..., 2] > 0)).all()
    assert np.abs(truth[:, swap, :2] - truth[..., :2]).max(-1)[visible].mean() > 5   # the swap did rename them
    # a right mirror found where the camera shows only the left one, far from it: renamed, or with a reach dropped
    left, right = KEYPOINT_NAMES.index("mirror_left"), KEYPOINT_NAMES.index("mirror_right")
    view, other_view = np.flatnonzero(visible[:, left] & ~visible[:, right])[:2]
    given = truth.copy()
    given[view, left, 2], given[view, right] = 0, given[view, left] + [20, 0, 0]
    given[other_view, left, 0] += 20  # as far off under its own name: kept
    for reach, kept in ((None, True), (0.125, False)):
        matched = match_keypoint_names(given, cameras, 64, rename_reach=reach)
        assert (matched[view, left, 2] > 0) == kept and matched[view, right, 2] == 0
        np.testing.assert_array_equal(matched[other_view, left], given[other_view, left])
    for given in (truth, truth[:, swap]):   # exact keypoints lie within reach of their names
        np.testing.assert_array_equal(match_keypoint_names(given, cameras, 64, 0.125),
                                      match_keypoint_names(given, cameras, 64))


def corner_keypointer(sample):
    """A deterministic keypoint labeler: keypoint k at (k % 8 + 0.5, 2.5), visible when k is even."""
    k = torch.arange(len(KEYPOINT_NAMES), dtype=torch.float32)
    row = torch.stack([k % 8 + 0.5, torch.full_like(k, 2.5), (k % 2 == 0).float()], 1)
    return row.expand(len(sample.image), -1, -1), None, torch.zeros(len(sample.image))


def test_factory_keypoints_round_trip_into_the_reconstructors_views(tmp_path):
    """Parts and keypoints of the same samples: written by the factory, read back by SyntheticDataset, scaled to
    the views' size; a folder without keypoints is refused when the keypoint loss needs them."""
    generate(_tiny_backbone(), box_labeler, CAR_12, tmp_path / "both", FactorySettings(num=3, filter_ratio=0.0),
             (8, 8), keypointer=corner_keypointer, keypoint_names=KEYPOINT_NAMES)
    data = SyntheticDataset(tmp_path / "both")
    assert data.classes is CAR_12 and data.keypoint_names == KEYPOINT_NAMES
    sample = data[1]
    assert sample.labels.shape == (8, 8) and sample.keypoints.shape == (len(KEYPOINT_NAMES), 3)
    k = np.arange(len(KEYPOINT_NAMES))
    np.testing.assert_allclose(sample.keypoints, np.stack([k % 8 + 0.5, np.full(len(k), 2.5), k % 2 == 0], 1))
    views = synthetic_views(tmp_path / "both", fixed_cameras, size=64, need_keypoints=True, match_names=False)
    np.testing.assert_allclose(views.keypoints[0], sample.keypoints * [8, 8, 1])
    generate(_tiny_backbone(), box_labeler, CAR_12, tmp_path / "parts", FactorySettings(num=2), (8, 8))
    with pytest.raises(DatasetFormatError, match="index.json: keypoints for the reconstructor's keypoint loss"):
        synthetic_views(tmp_path / "parts", fixed_cameras, size=64, need_keypoints=True)
    with pytest.raises(ValueError, match="a keypointer adds named keypoints"):
        generate(_tiny_backbone(), box_labeler, CAR_12, tmp_path / "x", FactorySettings(num=2), (8, 8),
                 keypointer=corner_keypointer)


def test_mixed_views_share_identity_layers(tmp_path):
    backbone = _tiny_backbone()
    out = mixed_views(backbone, box_labeler, fixed_cameras, [5, 6], views_per_car=3, view_layers=1, size=64)
    assert out.images.shape == (6, 64, 64, 3) and out.groups.tolist() == [0, 0, 0, 1, 1, 1]
    own = image_at_label_grid(backbone.sample([5]).image, (8, 8))[0].numpy()
    own = np.asarray(Image.fromarray(own).resize((64, 64), Image.BILINEAR))
    np.testing.assert_array_equal(out.images[0].numpy(), own)
    assert not torch.equal(out.images[0], out.images[1])  # another viewpoint donor, another image
    with pytest.raises(ValueError, match="view_layers"):
        mixed_views(backbone, box_labeler, fixed_cameras, [5], views_per_car=2, view_layers=backbone.num_ws, size=64)
