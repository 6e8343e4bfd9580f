"""End to end on tiny real parts: invert annotated images, train the interpreter from a config,
generate a filtered labelled dataset, read it back."""
import json

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

from benchmark.cli import cli
from datasetgan.stylegan2 import Generator, GeneratorConfig
from datasources.base import DatasetFormatError
from datasources.classes import CAR_5
from datasources.synthetic import SyntheticDataset
from fixtures.annotated import build_annotated, invoke


@pytest.fixture
def annotated(tmp_path):
    """A tiny generator, 3 annotated 16x16 images inverted into it, and a config naming them."""
    build_annotated(tmp_path)
    return tmp_path


def test_train_then_generate_a_filtered_dataset(annotated):
    config = str(annotated / "config.yaml")
    invoke("interpreter", "train", "--config", config)
    out = annotated / "synthetic"
    output = invoke("generate", "--config", config, "--num", "6", "--shard-size", "4", "--out", str(out),
                    "--format", "coco", "--grid", str(annotated / "grid.png"))
    assert "5 samples kept, 1 dropped" in output
    data = SyntheticDataset(out)
    assert data.classes is CAR_5 and len(data) == 5
    sample = data[0]
    assert sample.image.shape == (16, 16, 3) and sample.labels.shape == (16, 16)
    assert sample.labels.max() < len(CAR_5) and data.js(0).shape == (16, 16)
    assert (out / "coco.json").exists() and (annotated / "grid.png").exists()


def test_generate_samples_at_the_truncation_asked_for_and_refuses_to_mix_sources(annotated):
    config = str(annotated / "config.yaml")
    invoke("interpreter", "train", "--config", config)
    for psi in ("0.7", "1.0"):   # 0.7: the config's default, the official
        invoke("generate", "--config", config, "--num", "2", "--out", str(annotated / psi),
               *(["--truncation-psi", psi] if psi != "0.7" else []))
        source = json.loads((annotated / psi / "source.json").read_text())
        assert source["truncation"] == {"psi": float(psi), "cutoff": None}
        assert len(source["generator"]) == 8 and len(source["interpreters"]) == 1
    images = [np.asarray(Image.open(annotated / psi / "shards" / "shard_000000" / "seed000000.png"))
              for psi in ("0.7", "1.0")]
    assert not np.array_equal(*images)   # same seed, same noise: only the truncation differs
    invoke("generate", "--config", config, "--num", "3", "--out", str(annotated / "1.0"), "--truncation-psi", "1.0")
    result = CliRunner().invoke(cli, ["generate", "--config", config, "--num", "3", "--out", str(annotated / "0.7"),
                                      "--truncation-psi", "1.0"])
    assert result.exit_code == 2 and "a folder begun with" in result.output and "use a new folder" in result.output


def test_generate_writes_a_cvat_segmentation_mask_folder(annotated):
    from datasources.voc import read_voc

    config = str(annotated / "config.yaml")
    invoke("interpreter", "train", "--config", config)
    output = invoke("generate", "--config", config, "--num", "3", "--out", str(annotated / "gen"), "--format", "voc")
    assert f"voc: {annotated / 'gen' / 'voc'}" in output
    data, back = SyntheticDataset(annotated / "gen"), read_voc(annotated / "gen" / "voc", CAR_5)
    assert [back[f"seed{s:06d}"].tolist() for s in data.seeds] == [data[i].labels.tolist() for i in range(len(data))]


def test_generate_writes_a_hugging_face_folder_that_load_from_disk_reads(annotated):
    import json

    import datasets

    config = str(annotated / "config.yaml")
    invoke("interpreter", "train", "--config", config)
    output = invoke("generate", "--config", config, "--num", "3", "--out", str(annotated / "gen"), "--format", "hf")
    assert f"hf: {annotated / 'gen' / 'hf'}" in output
    data, back = SyntheticDataset(annotated / "gen"), datasets.load_from_disk(str(annotated / "gen" / "hf"))
    assert back.column_names == ["image", "mask", "name"] and back["name"] == [f"seed{s:06d}" for s in data.seeds]
    for i, row in enumerate(back):
        assert np.array_equal(np.asarray(row["image"]), data[i].image)
        assert np.array_equal(np.asarray(row["mask"]), data[i].labels)
    id2label = json.loads((annotated / "gen" / "hf" / "id2label.json").read_text())
    assert id2label == {str(i): name for i, name in enumerate(CAR_5.names)}


def test_official_members_import_and_give_the_same_logits(annotated):
    """Members saved as the official train_interpreter.py saves them (a DataParallel-wrapped classifier's
    state dict under 'model_state_dict', one model_{i}.pth each) import into an identical ensemble."""
    from datasetgan.interpreter import load_ensemble

    config = annotated / "config.yaml"
    invoke("interpreter", "train", "--config", str(config))
    ours, cfg = load_ensemble(annotated / "interp.pt")
    official = annotated / "official"
    official.mkdir()
    for i, member in enumerate(ours.members):
        torch.save({"model_state_dict": torch.nn.DataParallel(member).state_dict()}, official / f"model_{i}.pth")
    assert next(iter(torch.load(official / "model_0.pth")["model_state_dict"])).startswith("module.")
    imported = yaml.safe_load(config.read_text())
    imported["checkpoint"] = str(annotated / "imported.pt")
    (annotated / "imported.yaml").write_text(yaml.safe_dump(imported))
    invoke("interpreter", "import", "--config", str(annotated / "imported.yaml"), "--official", str(official))
    theirs, their_cfg = load_ensemble(annotated / "imported.pt")
    assert their_cfg.num_classes == cfg.num_classes and their_cfg.feature_channels == cfg.feature_channels
    x = torch.randn(50, sum(cfg.feature_channels))
    with torch.no_grad():
        torch.testing.assert_close(theirs(x), ours(x), rtol=0, atol=0)
    (official / "model_1.pth").unlink()
    result = CliRunner().invoke(cli, ["interpreter", "import", "--config", str(annotated / "imported.yaml"),
                                "--official", str(official)])
    assert result.exit_code == 2 and "model_1.pth: no such official interpreter member" in result.output


def test_annotation_labels_of_the_wrong_size_stop_training(annotated):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(annotated / "labels" / "000001.png")
    result = CliRunner().invoke(cli, ["interpreter", "train", "--config", str(annotated / "config.yaml")])
    assert result.exit_code != 0 and "000001.png" in result.output and "16x16 label map" in result.output
    assert "Traceback" not in result.output


def test_eval_by_inversion_scores_held_out_toy_images(annotated):
    import json

    from datasources.toy import ToySettings, write_split

    config = yaml.safe_load((annotated / "config.yaml").read_text())
    config["classes"] = "car-12"
    (annotated / "config.yaml").write_text(yaml.safe_dump(config))
    invoke("interpreter", "train", "--config", str(annotated / "config.yaml"))
    write_split(annotated / "toy", "test", 2, ToySettings(resolution=16))
    output = invoke("interpreter", "eval", "--config", str(annotated / "config.yaml"), "--toy", str(annotated / "toy"),
                    "--n", "2", "--steps", "2", "--out", str(annotated / "results"))
    record = json.loads(next((annotated / "results").glob("*/record.json")).read_text())
    assert record["images"] == 2 and 0 <= record["miou_official"] <= 1 and "mIoU" in output
    assert np.array(record["confusion"]).sum() == 2 * 16 * 16
    assert record["environment"]["packages"]["torch"]


def test_keypoint_labels_take_visibility_from_the_heatmap_peak():
    from datasetgan.interpreter import Prediction
    from datasetgan.pipeline import keypoint_labels

    prediction = Prediction(keypoints=torch.tensor([[[1.5, 2.5], [3.5, 0.5]]]), peaks=torch.tensor([[0.9, 0.2]]))
    keypoints, js, score = keypoint_labels(prediction)
    assert js is None
    torch.testing.assert_close(keypoints, torch.tensor([[[1.5, 2.5, 1.0], [3.5, 0.5, 0.0]]]))
    torch.testing.assert_close(score, torch.tensor([1 - (0.9 + 0.2) / 2]))   # weak peaks: less certain


def test_calibrated_thresholds_decide_visibility_per_keypoint():
    from datasetgan.interpreter import Prediction
    from datasetgan.pipeline import keypoint_labels

    prediction = Prediction(keypoints=torch.zeros(1, 3, 2), peaks=torch.tensor([[0.3, 0.3, 0.9]]))
    visible = keypoint_labels(prediction, (0.2, 0.4, float("inf")))[0][0, :, 2]
    torch.testing.assert_close(visible, torch.tensor([1.0, 0.0, 0.0]))   # an infinite threshold: never visible


def test_calibration_matches_the_annotated_visibility_rates():
    """Whatever the (here untrained) ensemble's peaks, the calibrated thresholds make each keypoint visible on the
    calibration samples as often as on the annotated images: 2/4, 1/4 and never."""
    from datasetgan.annotations import Annotation
    from datasetgan.backbone import Backbone
    from datasetgan.interpreter import InterpreterConfig, PixelEnsemble, predict
    from datasetgan.pipeline import calibrate_visibility, keypoint_labels

    torch.manual_seed(0)
    backbone = Backbone(Generator(GeneratorConfig(z_dim=8, w_dim=8, resolution=16, channel_base=64, channel_max=8,
                                                  mapping_layers=1)))
    channels = tuple(f.shape[1] for f in backbone.sample([0]).features)
    cfg = InterpreterConfig(3, channels, 16, mode="keypoints", ensemble_size=2, calibration_samples=40)
    ensemble = PixelEnsemble(cfg).eval()
    visible = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0]], np.float32)
    annotations = [Annotation(np.stack([np.full(3, 5.5), np.full(3, 5.5), v], 1), f"a{i}", z=np.zeros(8, np.float32))
                   for i, v in enumerate(visible)]
    thresholds = calibrate_visibility(ensemble, cfg, backbone, annotations, batch=16)
    assert thresholds[2] == float("inf")
    with torch.no_grad():
        prediction = predict(ensemble, backbone.sample(list(range(40))).features, cfg)
    rates = keypoint_labels(prediction, thresholds)[0][..., 2].mean(0)
    torch.testing.assert_close(rates, torch.tensor([0.5, 0.25, 0.0]), atol=1 / 40, rtol=0)


def test_own_gan_walkthrough_prepare_annotate_train_generate(tmp_path):
    """The README's path for one's own GAN, on a tiny one: prepare samples to annotate, annotate them (here: a
    box per image), train the interpreter from the prepared config, generate; a mask for an image prepare never
    wrote stops training with its name."""
    from datasetgan.gan_training import save_generator

    torch.manual_seed(0)
    save_generator(Generator(GeneratorConfig(z_dim=8, w_dim=8, resolution=16, channel_base=64, channel_max=8,
                                             mapping_layers=1)), tmp_path / "mine.pt")
    output = invoke("annotate", "prepare", "--checkpoint", str(tmp_path / "mine.pt"), "--n", "3", "--classes",
                    "car-5", "--out", str(tmp_path / "mine"))
    mine = tmp_path / "mine"
    assert sorted(p.name for p in (mine / "images").iterdir()) == ["seed000000.png", "seed000001.png",
                                                                  "seed000002.png"]
    assert np.load(mine / "latents.npy").shape == (3, 6, 8) and "interpreter train --config" in output
    config = yaml.safe_load((mine / "config.yaml").read_text())
    assert config["annotations"]["kind"] == "inverted" and config["generator"]["truncation_psi"] == 0.7
    for i, image in enumerate(sorted((mine / "images").iterdir())):
        labels = np.zeros((16, 16), np.uint8)
        labels[4:12, 2 + i:14] = CAR_5.index("body")
        Image.fromarray(labels).save(mine / "labels" / image.name)
    config["interpreter"] = {"ensemble_size": 2, "max_epochs": 1, "pixels_per_image": 64}
    (mine / "config.yaml").write_text(yaml.safe_dump(config))
    invoke("interpreter", "train", "--config", str(mine / "config.yaml"))
    invoke("generate", "--config", str(mine / "config.yaml"), "--num", "4", "--out", str(tmp_path / "gen"))
    assert len(SyntheticDataset(tmp_path / "gen")) == 4   # 10% of 4 images rounds to none dropped
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(mine / "labels" / "seed000009.png")
    result = CliRunner().invoke(cli, ["interpreter", "train", "--config", str(mine / "config.yaml")])
    assert result.exit_code == 2 and "seed000009.png: a mask of an image" in result.output, result.output


def test_cvat_and_label_studio_exports_give_the_masks_labels(annotated):
    """The annotated masks as CVAT exports them, COCO 1.0 (polygons) and Segmentation mask 1.1 (labelmap.txt and RGB
    masks), and as Label Studio exports brush labels (RLE, encoded by its own library), read into the same label
    maps as the mask PNGs; a label outside the class set and an RLE of another size are named."""
    import json

    from label_studio_converter.brush import mask2rle

    from datasetgan.pipeline import load_annotations
    from datasources.voc import LABELMAP_HEADER

    config = yaml.safe_load((annotated / "config.yaml").read_text())
    spec = config["annotations"]
    masks = [a.labels for a in load_annotations(spec, CAR_5, (16, 16))]
    images, annotations, tasks = [], [], []
    voc = annotated / "cvat-voc"
    (voc / "SegmentationClass").mkdir(parents=True)
    (voc / "labelmap.txt").write_text(f"{LABELMAP_HEADER}\nbackground:0,0,0::\nbody:10,20,30::\nwheel:200,0,0::\n")
    colours = {0: (0, 0, 0), CAR_5.index("body"): (10, 20, 30), CAR_5.index("wheel"): (200, 0, 0)}
    for i, labels in enumerate(masks):
        name = f"{i:06d}.png"
        images.append({"id": i + 1, "file_name": f"task/{name}", "height": 16, "width": 16})
        for c in (CAR_5.index("body"), CAR_5.index("wheel")):   # one rectangle each, as polygon corners
            rows, cols = np.nonzero(labels == c)
            y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": c, "iscrowd": 0,
                                "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]], "area": 0, "bbox": []})
        rgb = np.zeros((16, 16, 3), np.uint8)
        for c, colour in colours.items():
            rgb[labels == c] = colour
        Image.fromarray(rgb).save(voc / "SegmentationClass" / name)
        strokes = [{"type": "brushlabels", "original_width": 16, "original_height": 16,
                    "value": {"format": "rle", "brushlabels": [CAR_5.names[c]],
                              "rle": mask2rle((labels == c).astype(np.uint8) * 255)}}
                   for c in np.unique(labels) if c > 0]
        tasks.append({"id": i + 1, "data": {"image": f"/data/upload/1/0a1b2c3d-{name}"},
                      "annotations": [{"result": strokes}]})
    categories = [{"id": CAR_5.index(n), "name": n} for n in ("body", "wheel")]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    (annotated / "cvat.json").write_text(json.dumps(coco, default=int))
    (annotated / "label-studio.json").write_text(json.dumps(tasks, default=int))
    for where in (annotated / "cvat.json", voc, annotated / "label-studio.json"):
        read = [a.labels for a in load_annotations({**spec, "labels": str(where)}, CAR_5, (16, 16))]
        assert all(np.array_equal(a, b) for a, b in zip(read, masks)), where
    coco["categories"][0]["name"] = "spoiler"
    (annotated / "cvat.json").write_text(json.dumps(coco, default=int))
    with pytest.raises(DatasetFormatError, match=r"cvat.json: category names among car-5's classes, got \['spoiler'\]"):
        load_annotations({**spec, "labels": str(annotated / "cvat.json")}, CAR_5, (16, 16))
    tasks[0]["annotations"][0]["result"][0]["value"]["brushlabels"] = ["spoiler"]
    (annotated / "label-studio.json").write_text(json.dumps(tasks, default=int))
    with pytest.raises(DatasetFormatError, match=r"label-studio.json: brush labels among car-5's classes, got 'spoiler'"):
        load_annotations({**spec, "labels": str(annotated / "label-studio.json")}, CAR_5, (16, 16))
    tasks[0]["annotations"][0]["result"][0]["value"]["brushlabels"] = ["body"]
    tasks[0]["annotations"][0]["result"][0]["original_width"] = 20
    (annotated / "label-studio.json").write_text(json.dumps(tasks, default=int))
    with pytest.raises(DatasetFormatError, match=r"label-studio.json: an RLE of 16x20x4 values for 000000.png"):
        load_annotations({**spec, "labels": str(annotated / "label-studio.json")}, CAR_5, (16, 16))
