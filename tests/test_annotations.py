"""Annotations in: LabelMe polygons, mask PNGs (indices and palette colours), latents -> features."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from datasetgan.annotations import Annotation, check_labels, features_of, read_labelme, read_mask_png
from datasetgan.backbone import Backbone
from datasetgan.stylegan2 import Generator, GeneratorConfig
from datasources.base import DatasetFormatError
from datasources.classes import CAR_12


def _labelme(path, shapes, h=6, w=8):
    path.write_text(json.dumps({"version": "5.2.1", "flags": {}, "shapes": shapes, "imagePath": "x.png",
                                "imageData": None, "imageHeight": h, "imageWidth": w}))
    return path


def test_labelme_polygons_and_rectangles_paint_in_order(tmp_path):
    shapes = [
        {"label": "car_body", "points": [[1, 1], [6, 1], [6, 4], [1, 4]], "shape_type": "polygon", "flags": {}},
        {"label": "wheel", "points": [[5, 3], [7, 5]], "shape_type": "rectangle", "flags": {}},
    ]
    labels = read_labelme(_labelme(tmp_path / "a.json", shapes), CAR_12)
    expected = np.zeros((6, 8), np.int64)
    expected[1:5, 1:7] = CAR_12.index("car_body")  # PIL fills polygons including their edge pixels
    expected[3:6, 5:8] = CAR_12.index("wheel")
    np.testing.assert_array_equal(labels, expected)


def test_labelme_unknown_label_names_the_file(tmp_path):
    path = _labelme(tmp_path / "bad.json", [{"label": "spoiler", "points": [[0, 0], [2, 0], [2, 2]]}])
    with pytest.raises(DatasetFormatError, match=r"bad\.json.*'spoiler'.*valid: background"):
        read_labelme(path, CAR_12)


def test_mask_png_indices_and_palette_colours(tmp_path):
    labels = np.array([[0, 1, 6], [9, 10, 11]], np.uint8)
    Image.fromarray(labels).save(tmp_path / "idx.png")
    np.testing.assert_array_equal(read_mask_png(tmp_path / "idx.png", CAR_12), labels)
    Image.fromarray(CAR_12.colorize(labels)).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_mask_png(tmp_path / "rgb.png", CAR_12), labels)
    Image.fromarray(np.full((2, 2, 3), 7, np.uint8)).save(tmp_path / "odd.png")
    with pytest.raises(DatasetFormatError, match=r"odd\.png.*palette colours.*\(7, 7, 7\)"):
        read_mask_png(tmp_path / "odd.png", CAR_12)
    Image.fromarray(np.full((2, 2), 12, np.uint8)).save(tmp_path / "high.png")
    with pytest.raises(DatasetFormatError, match=r"high\.png.*below 12"):
        read_mask_png(tmp_path / "high.png", CAR_12)


def test_check_labels_size_and_range():
    with pytest.raises(DatasetFormatError, match="a 4x3 label map"):
        check_labels(np.zeros((2, 2)), (3, 4), CAR_12, "m.npy")
    with pytest.raises(DatasetFormatError, match=r"\[0, 12\)"):
        check_labels(np.full((3, 4), 12), (3, 4), CAR_12, "m.npy")


def test_features_of_z_and_ws_latents_agree():
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=8, w_dim=8, resolution=8, channel_base=32, channel_max=8, mapping_layers=1))
    backbone = Backbone(G)
    z = np.random.RandomState(0).standard_normal(8).astype(np.float32)
    ws = backbone.ws(torch.from_numpy(z)[None])[0]
    labels = np.zeros((8, 8), np.int64)
    by_z, by_ws = list(features_of(backbone, [Annotation(labels, "a", z=z, noise_seed=3),
                                         Annotation(labels, "b", ws=ws, noise_seed=3)]))
    assert [f.shape for f in by_z] == [f.shape for f in by_ws] and by_z[0].ndim == 3
    for a, b in zip(by_z, by_ws):
        torch.testing.assert_close(a, b)
    with pytest.raises(DatasetFormatError, match="exactly one latent"):
        Annotation(labels, "c")
