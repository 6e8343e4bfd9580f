"""`benchmark run` end to end on a reduced quick profile, and bad input stopped before any training."""
import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from benchmark import configs
from benchmark.suites import check
from benchmark.variants import VARIANTS
from fixtures.suites import REDUCED, cells, run_quick

def test_variants_are_a_plain_dict():
    assert list(VARIANTS) == ["transfer", "semi", "datasetgan", "supervised"]


def test_quick_profile_passes_its_checks():
    check(configs.resolve("parts", "quick"))


def test_run_end_to_end_writes_records_and_tables_and_reruns_add_records(tmp_path):
    result = run_quick(tmp_path, REDUCED)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    table = cells(out / "tables" / "parts.csv")
    assert table.index.get_level_values("row").tolist() == ["transfer", "semi", "datasetgan", "supervised"]
    assert table["mean"].between(0, 100).all() and (table.fold_std >= 0).all()   # one row per variant's cell
    assert table.loc[("datasetgan", "toy-car-12", "miou"), "paper"] == 45.64
    assert all(len(ids.split()) == 1 for ids in table.record_ids)
    assert "| datasetgan |" in (out / "tables" / "parts.md").read_text()
    assert "1 seed a cell" in (out / "tables" / "parts.tex").read_text()
    # per class: one row per (variant, class) of the 12 car classes; the qualitative grid from the kept predictions
    per_class = pd.read_csv(out / "tables" / "parts-per-class.csv")
    assert len(per_class) == 4 * 12 and per_class.iou_mean.dropna().between(0, 100).all()
    per_class_md = (out / "tables" / "parts-per-class.md").read_text()
    assert re.search(r"\| class +\| transfer +\| semi +\| datasetgan +\| supervised +\|", per_class_md)
    row = per_class.query("row == 'supervised' and column == 'toy-car-12' and `class` == 'background'").iou_mean
    assert re.search(rf"\| background +\| .* \| {row.iloc[0]:.2f} +\|", per_class_md)   # in percent, as the CSV
    grid = Image.open(out / "tables" / "qualitative" / "parts-1-toy-car-12.png")
    assert grid.format == "PNG" and grid.size[0] > grid.size[1] / 2
    shown = np.load(next((out / "runs").glob("*semi-toy-car-12-seed0")) / "qualitative.npz")
    assert shown["indices"].tolist() == [0, 1, 3, 4, 5, 6, 8, 9]   # 8 of the 10 test images, spread over the folds
    assert shown["predictions"].shape == shown["labels"].shape == (8, 32, 32) and shown["predictions"].max() < 12
    assert set(shown["checkpoints"].tolist()) <= {0, 1}
    records = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/record.json"))]
    assert len(records) == 4
    r = next(rec for rec in records if rec["variant"] == "transfer")   # folder names sort by second, then name
    assert r["config"]["toy"] == REDUCED["toy"] and r["environment"]["packages"]["torch"]
    assert len(r["cross_validation"]["miou"]["scores"]) == 5 and r["folds"][0] == [0, 1]
    assert r["cell"] == {"table": "1", "row": "transfer", "column": "toy-car-12", "round": 0}
    assert len(r["confusion_per_checkpoint_and_fold"]) == 2 and r["seeds"]["segmentation"] == 0 == r["seed"]
    assert r["output_grid"] == [16, 16] and 0.9 < r["oracle_miou"] <= 1   # the dilated ResNet at 32 px
    # every variant trained the same number of optimiser steps (transfer: its fine-tuning; the source is upstream)
    steps = {rec["variant"]: rec["optimiser_steps"] for rec in records}
    assert sorted(steps) == ["datasetgan", "semi", "supervised", "transfer"]
    assert [list(s.values()) for s in steps.values()] == [[4]] * 4 and "finetune" in steps["transfer"]
    again = run_quick(tmp_path, REDUCED)   # resumes from the finished checkpoints: nothing is trained again
    assert again.exit_code == 0, again.output
    assert len(list((out / "runs").glob("*/record.json"))) == 8
    rerun = cells(out / "tables" / "parts.csv")
    assert (rerun.records == 2).all()
    pd.testing.assert_series_equal(rerun["mean"], table["mean"])
    # a finished synthetic set given as such, merged onto a 5-class test set
    synthetic = next((out / "work").rglob("synthetic-*"))
    given = run_quick(tmp_path, {**REDUCED, "variants": ["datasetgan"], "test_sets": ["toy-car-5"],
                            "datasetgan": {"synthetic": str(synthetic)}})
    assert given.exit_code == 0, given.output
    record = json.loads(max((out / "runs").glob("*datasetgan-toy-car-5-seed0/record.json")).read_text())
    assert record["facts"]["synthetic_targets"] == "car-12" and len(record["classes"]) == 6


@pytest.mark.parametrize("overrides, message", [
    ({"toy": {"test": 3}}, "3 test images cannot make 5 folds"),
    ({"toy": {"test": 0}}, "toy.test must be in 1..250"),
    ({"test_sets": []}, "at least one test set"),
    ({"test_sets": ["ade-car-12"], "segmentation": {"backbone": "dilated_resnet", "resolution": 16}},
     "configs/datasets/ade-car-12.yaml) is not a folder"),
    ({"test_sets": ["nope"]}, "unknown test set 'nope'"),
    ({"variants": ["supervised", "magic"]}, "valid: transfer, semi, datasetgan, supervised"),
    ({"segmentation": {"steps": 1, "bogus": 2}}, "unknown fields ['bogus']"),
    ({"segmentation": {"pretrained": "/no/such/weights.pt"}}, "no such file /no/such/weights.pt"),
    ({"datasetgan": {"interpreter": "/no/such/interp.yaml"}}, "no such file /no/such/interp.yaml"),
    ({"miou": "mean"}, "miou must be one of official, mmseg"),
    ({"datasetgan": {"toy_interpreter": {"generator": "checkpoints/toy-car-gan.pt"}}}, "toy.resolution 32 differs"),
    ({"labelled": [0, 0]}, "labelled must be distinct indices"),
    ({"seeds": 0}, "seeds must be a whole number of at least 1, got 0"),
    ({"segmentation": {"backbone": "resnet101"}},
     "segmentation.pretrained: the resnet101 backbone starts from an ImageNet"),
])
def test_bad_input_stops_before_training(tmp_path, overrides, message):
    result = run_quick(tmp_path, overrides)
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out" / "runs").exists()


def _interpreter_config(tmp_path, **changes):
    (tmp_path / "g.pt").write_bytes(b"")
    config = {"generator": {"checkpoint": str(tmp_path / "g.pt")}, "classes": "car-12",
              "checkpoint": str(tmp_path / "interp.pt"), **changes}
    (tmp_path / "interp.yaml").write_text(yaml.safe_dump(config))
    return {"datasetgan": {"interpreter": str(tmp_path / "interp.yaml")}}


def test_an_interpreter_config_naming_a_missing_checkpoint(tmp_path):
    result = run_quick(tmp_path, _interpreter_config(tmp_path))
    assert result.exit_code != 0 and f"no such file {tmp_path / 'interp.pt'}" in result.output
    assert not (tmp_path / "out" / "runs").exists()


def test_zero_seeds_on_the_command_line_and_a_negative_small_class_rule_stop_before_training(tmp_path):
    result = run_quick(tmp_path, REDUCED, "--seeds", "0")
    assert result.exit_code != 0 and "'--seeds': 0 is not in the range x>=1" in result.output
    result = run_quick(tmp_path, _interpreter_config(tmp_path, interpreter={"min_pixels": -5}))
    assert result.exit_code != 0 and "small-class rule: min_pixels must be at least 0" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out" / "runs").exists()


def test_synthetic_classes_that_do_not_meet_the_test_set(tmp_path):
    overrides = _interpreter_config(tmp_path, classes="face-34")
    (tmp_path / "interp.pt").write_bytes(b"")
    result = run_quick(tmp_path, overrides)
    assert result.exit_code != 0 and "test set's classes (car-12, 12 classes)" in result.output
    assert "face-34 (34 classes)" in result.output and not (tmp_path / "out" / "runs").exists()


def test_a_merge_to_the_test_classes_is_accepted(tmp_path):
    overrides = _interpreter_config(tmp_path, classes="car-12")
    (tmp_path / "interp.pt").write_bytes(b"")
    check({**configs.resolve("parts", "quick"), **overrides, "test_sets": ["toy-car-5"]})


@pytest.mark.parametrize("overrides, message", [
    ({"variants": ["semi"]}, "keypoint variants are transfer, datasetgan, supervised"),
    ({"test_sets": ["toy-car-12"]}, "'toy-car-12' is not a keypoint test set; valid: toy-car-keypoints"),
    ({"keypoints": {"thresholds": []}}, "must be positive"),
])
def test_keypoint_suite_problems_stop_before_training(tmp_path, overrides, message):
    result = run_quick(tmp_path, overrides, suite="keypoints")
    assert result.exit_code != 0 and message in result.output, result.output
    assert not (tmp_path / "out" / "runs").exists()


def test_a_keypoint_test_set_in_a_segmentation_suite(tmp_path):
    result = run_quick(tmp_path, {"test_sets": ["toy-car-keypoints"]})
    assert result.exit_code != 0 and "set task: keypoints" in result.output


def test_a_missing_synthetic_dataset_root(tmp_path):
    result = run_quick(tmp_path, {"datasetgan": {"synthetic": str(tmp_path / "nowhere")}})
    assert result.exit_code != 0 and f"{tmp_path / 'nowhere' / 'index.json'}: missing" in result.output
    assert not (tmp_path / "out" / "runs").exists()


def _cat_synthetic(folder):
    """A finished factory output in the Cat-16 classes, from a tiny generator and a brightness labeler."""
    import torch

    from datasetgan.backbone import Backbone
    from datasetgan.factory import FactorySettings, generate
    from datasetgan.stylegan2 import Generator, GeneratorConfig
    from datasources.classes import CAT_16

    def labeler(sample):
        grey = sample.image.mean(1).clamp(-1, 0.999)
        labels = ((grey + 1) / 2 * len(CAT_16)).long()
        return labels, grey.abs(), grey.abs().flatten(1).mean(1)

    torch.manual_seed(0)
    backbone = Backbone(Generator(GeneratorConfig(z_dim=8, w_dim=8, resolution=8, channel_base=32, channel_max=8,
                                                  mapping_layers=1)))
    generate(backbone, labeler, CAT_16, folder, FactorySettings(num=6, shard_size=3), label_size=(8, 8))


def test_a_real_test_set_runs_the_datasetgan_variant(tmp_path):
    from fixtures.datasetgan import build

    build(tmp_path / "release", "cat-16")   # 3 test images of 6 x 8 pixels, 16 classes
    _cat_synthetic(tmp_path / "synthetic")
    overrides = {**REDUCED, "test_sets": ["cat-16"], "variants": ["datasetgan"], "folds": 3,
                 "roots": {"cat-16": str(tmp_path / "release")}, "datasetgan": {"synthetic": str(tmp_path / "synthetic")},
                 "segmentation": {**REDUCED["segmentation"], "resolution": 16}}
    result = run_quick(tmp_path, overrides)
    assert result.exit_code == 0, result.output
    record = json.loads(next((tmp_path / "out" / "runs").glob("*/record.json")).read_text())
    assert record["test_set"] == "cat-16" and len(record["classes"]) == 16 and record["folds"] == [[0, 0], [1, 1], [2, 2]]
    assert record["facts"]["synthetic_kept"] == 5 and record["facts"]["synthetic_targets"] == "cat-16"


def test_a_real_test_set_with_no_images(tmp_path):
    from fixtures.ade20k import build_2021

    build_2021(tmp_path / "ade")   # three validation images: all taken by the first-50 validation split
    result = run_quick(tmp_path, {"test_sets": ["ade-car-12"], "variants": ["supervised"],
                             "roots": {"ade-car-12": str(tmp_path / "ade")}})
    assert result.exit_code != 0 and "0 test images cannot make 5 folds" in result.output, result.output
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.parametrize("overrides, message", [
    ({"test_sets": ["cat-16"], "variants": ["datasetgan"], "roots": {"cat-16": "/no/such/root"}},
     "dataset root /no/such/root (roots.cat-16 in the config) is not a folder"),
    ({"test_sets": ["cat-16"], "variants": ["datasetgan"], "segmentation": {"backbone": "dilated_resnet", "steps": 1, "evaluations": 1}}, "set segmentation.resolution"),
    ({"test_sets": ["cat-16"], "variants": ["supervised"], "roots": {"cat-16": "/"}}, "no fully supervised baseline"),
])
def test_real_test_set_problems_stop_before_training(tmp_path, overrides, message):
    result = run_quick(tmp_path, overrides)
    assert result.exit_code != 0 and message in result.output, result.output
    assert not (tmp_path / "out" / "runs").exists()


def test_an_unknown_class_set_in_the_interpreter_config(tmp_path):
    overrides = _interpreter_config(tmp_path, classes="car-99")
    (tmp_path / "interp.pt").write_bytes(b"")
    result = run_quick(tmp_path, overrides)
    assert result.exit_code != 0 and "unknown class set 'car-99'" in result.output and "Traceback" not in result.output


def test_the_paper_profile_needs_its_imagenet_backbone_and_trains_cats_at_256_px():
    from benchmark.suites import table_runs

    config = configs.resolve("parts", "paper")
    with pytest.raises(configs.ConfigError, match="segmentation.pretrained: no such file /data/weights/resnet101"):
        check(config)
    resolutions = {run.test_set: run.config["segmentation"]["resolution"] for run in table_runs(config)}
    assert resolutions["cat-16"] == 256 and resolutions["car-20"] == 512 == resolutions["face-34"]
    assert {run.config["segmentation"]["backbone"] for run in table_runs(config)} == {"resnet101"}
