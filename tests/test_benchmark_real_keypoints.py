"""A real keypoint test set (CUB-200-2011 birds) in the keypoints suite (paper Table 2): its keypoints resized
with the images and PCK normalised by each bird mask's box, transfer fine-tuned on the few labelled train
birds and the fully supervised baseline on its train split; labelled sets without the test set's keypoints,
and sets without keypoints or masks, stop the run before training."""
import json

import pytest
import torch

from benchmark import configs, suites
from benchmark.keypoints import load_keypoint_images
from benchmark.segmentation import SegmentationSettings, build_network
from datasources.classes import CUB_KEYPOINTS, CUB_MASK
from datasources.cub import CUBBirds
from fixtures.suites import REDUCED, cells, run_quick

SEGMENTATION = {**REDUCED["segmentation"], "resolution": 16}


def _birds(tmp_path) -> dict:
    """The CUB fixture (two test birds, one train bird) as the keypoint test set, its train bird as the few
    labels, and a 21-class DeepLab file (torchvision's MS-COCO layout) as the transfer source."""
    from fixtures.cub import build

    build(tmp_path / "cub")
    net = build_network(SegmentationSettings(**SEGMENTATION), 21)
    torch.save(net.state_dict(), tmp_path / "coco.pth")
    return {**REDUCED, "test_sets": ["cub-bird"], "variants": ["transfer", "supervised"], "folds": 2,
            "segmentation": SEGMENTATION, "keypoints": {"sigma": 1.0, "thresholds": [25, 15, 10]},
            "roots": {"cub-bird": str(tmp_path / "cub")},
            "real": {"labelled_count": 1, "transfer_weights": str(tmp_path / "coco.pth")}}


def test_cub_keypoints_scale_with_their_images_and_the_mask_box_gives_the_pck_normaliser(tmp_path):
    from fixtures.cub import build

    fixture = build(tmp_path / "cub")
    data = load_keypoint_images(CUBBirds(tmp_path / "cub", "test"), None, 16, sigma=1.0)
    assert data.images.shape == (2, 16, 16, 3) and data.names == CUB_KEYPOINTS
    for row, image_id in enumerate((1, 3)):   # 16 x 12 images: x kept, y times 16 / 12
        expected = torch.from_numpy(fixture.keypoints[image_id]) * torch.tensor([1.0, 4 / 3, 1.0])
        torch.testing.assert_close(data.labels[row], expected)   # hidden points stay as stored: (0, 0, 0)
    # every mask spans rows 0-9 (one half-intensity pixel in row 0): 10 rows x 4/3 beats at most 13 columns
    torch.testing.assert_close(data.scale, torch.tensor([40 / 3, 40 / 3], dtype=torch.float64))


def test_transfer_and_supervised_run_on_cub_keypoints(tmp_path):
    result = run_quick(tmp_path, _birds(tmp_path), suite="keypoints")
    assert result.exit_code == 0, result.output
    records = {r["variant"]: r for r in (json.loads(p.read_text())
                                         for p in (tmp_path / "out" / "runs").glob("*/record.json"))}
    assert set(records) == {"transfer", "supervised"}
    for record in records.values():
        assert record["test_set"] == "cub-bird" and record["keypoints"] == list(CUB_KEYPOINTS)
        assert record["metrics"] == ["l2", "pck@25", "pck@15", "pck@10"] and record["folds"] == [[0, 0], [1, 1]]
        assert record["facts"]["training_images"] == 1   # the fixture's one train bird
    source = {"weights": str(tmp_path / "coco.pth"), "labelled_set": "cub-bird"}
    assert records["transfer"]["facts"]["source"] == source
    table = cells(tmp_path / "out" / "tables" / "keypoints.csv")
    assert list(dict.fromkeys(table.index.get_level_values("row"))) == ["transfer", "supervised", "all-zero heatmaps"]
    pck, l2 = (table.xs(metric, level="metric")["mean"] for metric in ("pck@25", "l2"))
    assert pck.between(0, 100).all() and (l2 > 0).all()
    assert records["transfer"]["selected_by"] == "pck@15"   # the middle of CUB's 25/15/10
    assert table.loc[("transfer", "cub-bird", "l2"), "paper"] == 5.3e-4   # the paper's CUB-Bird column, beside ours
    assert table.loc[("supervised", "cub-bird", "pck@25"), "paper"] == 77.54


def test_cub_is_still_a_segmentation_test_set(tmp_path):
    config = {**configs.resolve("parts", "quick"), **_birds(tmp_path), "variants": ["supervised"]}
    suites.check(config)
    test, merge = suites.test_images("cub-bird", config, tmp_path / "data")
    assert test.classes == CUB_MASK and test.labels.shape == (2, 16, 16) and merge is None


def _other_labelled_set(name: str, build):
    """Change: the few labels come from dataset `name`'s train split, a fixture built at tmp_path/name."""
    def change(config, tmp_path):
        build(tmp_path / name)
        config["roots"][name] = str(tmp_path / name)
        config["real"]["labelled"] = {"cub-bird": name}
    return change


def _pascal(root):
    from fixtures.pascal_part import build

    build(root)


def _cats(root):
    from fixtures.kaggle_cats import build

    root.mkdir()
    build(root)


def _cats_as_test_set(config, tmp_path):
    _cats(tmp_path / "cats")
    config["roots"]["kaggle-cats"] = str(tmp_path / "cats")
    config["test_sets"] = ["kaggle-cats"]


@pytest.mark.parametrize("change, message", [
    (lambda c, p: c.update(test_sets=["pascal-car-5"]),
     "'pascal-car-5' is not a keypoint test set; valid: toy-car-keypoints, cub-bird, kaggle-cats"),
    (_other_labelled_set("pascal-car-5", _pascal),
     ("pascal-car-5 train split (the labelled set of cub-bird): its targets (0 keypoints) are not the test set's "
      "(15 keypoints: back, beak,")),
    (_other_labelled_set("kaggle-cats", _cats),
     "kaggle-cats train split (the labelled set of cub-bird): its targets (9 keypoints: left eye,"),
    (_cats_as_test_set, "test set kaggle-cats: keypoint PCK is normalised by each object's mask box"),
    (lambda c, p: c.update(variants=["datasetgan"]), "the in-run interpreter is for toy sets"),
    (lambda c, p: c["real"].pop("transfer_weights"), "needs real.transfer_weights"),
])
def test_real_keypoint_problems_stop_before_training(tmp_path, change, message):
    config = _birds(tmp_path)
    change(config, tmp_path)
    result = run_quick(tmp_path, config, suite="keypoints")
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out" / "runs").exists()
