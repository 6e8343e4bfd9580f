"""The few-label variants (transfer, semi) on a real test set: their human labels, unlabelled pool and source
network come from the config's `real` entry; every problem with them stops the run before training."""
import json

import pytest
import torch

from benchmark.segmentation import SegmentationSettings, build_network
from benchmark.sources import class_merge
from datasources.classes import CAR_5, CAR_20
from fixtures.images import photo, save
from fixtures.suites import REDUCED, cells, run_quick

SEGMENTATION = {**REDUCED["segmentation"], "resolution": 16}


def _sources(tmp_path) -> dict:
    """PASCAL-Part test cars, car-20's three annotated GAN images as the human labels, five unlabelled photos
    and a 21-class DeepLab file (torchvision's MS-COCO layout, auxiliary head included) as the source network."""
    from fixtures.datasetgan import build as build_release
    from fixtures.pascal_part import build as build_pascal

    build_pascal(tmp_path / "voc")
    build_release(tmp_path / "release", "car-20")
    for k in range(5):   # in subfolders, as CUB's images/<class>/
        save(tmp_path / "pool" / f"class{k % 2}" / f"{k:03d}.jpg", photo(10 + k, 12, 40 + k))
    net = build_network(SegmentationSettings(**SEGMENTATION), 21)
    state = {**net.state_dict(), "aux_classifier.4.weight": torch.zeros(21, 10, 1, 1)}
    torch.save({"model": state}, tmp_path / "coco.pth")
    return {**REDUCED, "test_sets": ["pascal-car-5"], "variants": ["transfer", "semi"], "folds": 2,
            "segmentation": SEGMENTATION,
            "roots": {"pascal-car-5": str(tmp_path / "voc"), "car-20": str(tmp_path / "release")},
            "real": {"labelled": {"pascal-car-5": "car-20"}, "unlabelled": {"pascal-car-5": str(tmp_path / "pool")},
                     "transfer_weights": str(tmp_path / "coco.pth")}}


def test_transfer_and_semi_run_on_a_real_test_set(tmp_path):
    result = run_quick(tmp_path, _sources(tmp_path))
    assert result.exit_code == 0, result.output
    records = {r["variant"]: r for r in (json.loads(p.read_text())
                                         for p in (tmp_path / "out" / "runs").glob("*/record.json"))}
    assert set(records) == {"transfer", "semi"}
    for record in records.values():
        assert record["test_set"] == "pascal-car-5" and record["classes"] == list(CAR_5.names)
        assert record["facts"]["training_images"] == 3   # car-20's annotated images, merged to the 5 parts
    assert records["semi"]["facts"]["unlabelled_images"] == 4   # the first semi.unlabelled of the pool
    assert records["transfer"]["facts"]["source"] == {"weights": str(tmp_path / "coco.pth"), "labelled_set": "car-20"}
    table = cells(tmp_path / "out" / "tables" / "parts.csv")
    assert table.index.tolist() == [("transfer", "pascal-car-5", "miou"), ("semi", "pascal-car-5", "miou")]
    assert table["mean"].between(0, 100).all()


def test_two_declared_merges_make_one():
    merge = class_merge(CAR_20, CAR_5, "car-20 labels")
    assert merge.source is CAR_20 and merge.target is CAR_5
    assert {k: merge.mapping[k] for k in ("tire", "wheelhub", "windshield", "car_lights", "mirror", "licensePlate")} \
        == {"tire": "wheel", "wheelhub": "wheel", "windshield": "window", "car_lights": "light", "mirror": "body",
            "licensePlate": "plate"}


@pytest.mark.parametrize("change, message", [
    (lambda c, p: c["real"].pop("transfer_weights"), "needs real.transfer_weights"),
    (lambda c, p: c["real"]["unlabelled"].clear(), "set `real: {unlabelled: {pascal-car-5: FOLDER}}`"),
    (lambda c, p: (p / "empty").mkdir() or c["real"]["unlabelled"].update({"pascal-car-5": str(p / "empty")}),
     "PNG or JPG images (found none)"),
    (lambda c, p: c["real"]["labelled"].update({"pascal-car-5": "face-34"}), "face-34: dataset root"),
    (lambda c, p: torch.save({"classifier.4.weight": torch.zeros(3, 256, 1, 1)}, p / "coco.pth"),
     "not a DeepLabV3 with the dilated_resnet backbone: 116 tensors missing"),
    (lambda c, p: torch.save({"fc.weight": torch.zeros(3, 3)}, p / "coco.pth"), "not a DeepLabV3 state dict"),
])
def test_real_source_problems_stop_before_training(tmp_path, change, message):
    config = _sources(tmp_path)
    change(config, tmp_path)
    result = run_quick(tmp_path, config)
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out" / "runs").exists()


def test_a_labelled_set_whose_classes_do_not_meet_the_test_set(tmp_path):
    from fixtures.datasetgan import build as build_release

    config = _sources(tmp_path)
    build_release(tmp_path / "release", "cat-16")
    config["roots"]["cat-16"] = str(tmp_path / "release")
    config["real"]["labelled"]["pascal-car-5"] = "cat-16"
    result = run_quick(tmp_path, config)
    assert result.exit_code != 0 and "cat-16 train split (the labelled set of pascal-car-5)" in result.output
    assert "labels in the test set's classes (car-5" in result.output, result.output
