"""The label factory on a tiny real generator: files, filtering, resume without gaps or duplicates, COCO."""
import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from datasetgan.backbone import Backbone
from datasetgan.factory import FactorySettings, generate
from datasetgan.stylegan2 import Generator, GeneratorConfig
from datasources.base import DatasetFormatError
from datasources.classes import CAR_5
from datasources.coco import read_coco
from datasources.synthetic import SyntheticDataset


def _backbone():
    torch.manual_seed(0)
    return Backbone(Generator(GeneratorConfig(z_dim=8, w_dim=8, resolution=8, channel_base=32, channel_max=8,
                                              mapping_layers=1)))


def brightness_labeler(sample):
    """A real, deterministic labeler: class by image brightness band; uncertainty by distance to a band edge."""
    grey = sample.image.mean(1).clamp(-1, 0.999)
    labels = ((grey + 1) / 2 * len(CAR_5)).long()
    js = 1 - ((grey + 1) / 2 * len(CAR_5)).frac().sub(0.5).abs() * 2
    return labels, js, js.flatten(1).topk(max(1, js[0].numel() // 10), dim=1).values.mean(1)


def _digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_factory_writes_filters_and_exports_coco(tmp_path):
    settings = FactorySettings(num=10, shard_size=4, batch=3, filter_ratio=0.2, coco=True)
    index = generate(_backbone(), brightness_labeler, CAR_5, tmp_path, settings, label_size=(8, 8))
    assert len(index["kept"]) == 8 and len(index["dropped"]) == 2 and sorted(index["kept"] + index["dropped"]) == list(range(10))
    scores = {}
    for shard in (tmp_path / "shards").iterdir():
        scores.update({int(k): v["score"] for k, v in json.loads((shard / "samples.json").read_text()).items()})
    assert min(scores[s] for s in index["dropped"]) >= max(scores[s] for s in index["kept"])
    stem = tmp_path / index["files"][str(index["kept"][0])]
    labels = np.asarray(Image.open(f"{stem}_label.png"))
    assert labels.shape == (8, 8) and np.load(f"{stem}_js.npy").dtype == np.float16
    coco = json.loads((tmp_path / "coco.json").read_text())
    assert [c["name"] for c in coco["categories"]] == list(CAR_5.names[1:])
    back = read_coco(tmp_path / "coco.json", CAR_5)   # read back with pycocotools, by file name
    for seed in index["kept"]:
        stem = tmp_path / index["files"][str(seed)]
        np.testing.assert_array_equal(back[f"seed{seed:06d}.png"], np.asarray(Image.open(f"{stem}_label.png")))


def test_interrupted_run_resumes_to_the_same_files(tmp_path):
    settings = FactorySettings(num=9, shard_size=4, batch=2)
    generate(_backbone(), brightness_labeler, CAR_5, tmp_path / "a", settings, label_size=(8, 8))
    b = tmp_path / "b"
    generate(_backbone(), brightness_labeler, CAR_5, b, settings, label_size=(8, 8))
    shutil.rmtree(b / "shards" / "shard_000001")  # as if killed while writing shard 1 ...
    (b / "shards" / ".tmp-shard_000001").mkdir()  # ... leaving a half-written temporary folder
    (b / "shards" / ".tmp-shard_000001" / "seed000004.png").write_bytes(b"half")
    (b / "index.json").unlink()
    assert _digest(tmp_path / "a") != _digest(b)
    generate(_backbone(), brightness_labeler, CAR_5, b, settings, label_size=(8, 8))
    assert _digest(tmp_path / "a") == _digest(b)


def test_ranks_split_the_shards_and_the_last_one_indexes(tmp_path):
    settings = FactorySettings(num=9, shard_size=2, batch=2)
    first = generate(_backbone(), brightness_labeler, CAR_5, tmp_path, settings, label_size=(8, 8), rank=0, world=2)
    assert first is None and sorted(p.name for p in (tmp_path / "shards").iterdir()) == ["shard_000000", "shard_000002", "shard_000004"]
    index = generate(_backbone(), brightness_labeler, CAR_5, tmp_path, settings, label_size=(8, 8), rank=1, world=2)
    assert sorted(index["kept"] + index["dropped"]) == list(range(9))


def test_views_of_fewer_samples_and_other_ratios_match_a_fresh_run(tmp_path):
    """The ablations read the first N samples at another filter ratio from one generation."""
    generate(_backbone(), brightness_labeler, CAR_5, tmp_path / "big", FactorySettings(num=10, shard_size=4),
             label_size=(8, 8))
    small = generate(_backbone(), brightness_labeler, CAR_5, tmp_path / "small",
                     FactorySettings(num=6, shard_size=4, filter_ratio=0.5), label_size=(8, 8))
    view = SyntheticDataset(tmp_path / "big", num=6, filter_ratio=0.5)
    assert view.seeds == small["kept"] and len(view) == 3
    np.testing.assert_array_equal(view[0].labels, SyntheticDataset(tmp_path / "small")[0].labels)
    assert len(SyntheticDataset(tmp_path / "big", filter_ratio=0.0)) == 10


def test_a_shorter_last_shard_of_a_smaller_run_is_redone(tmp_path):
    generate(_backbone(), brightness_labeler, CAR_5, tmp_path, FactorySettings(num=6, shard_size=4), label_size=(8, 8))
    index = generate(_backbone(), brightness_labeler, CAR_5, tmp_path, FactorySettings(num=8, shard_size=4),
                     label_size=(8, 8))
    assert sorted(index["kept"] + index["dropped"]) == list(range(8))
    data = SyntheticDataset(tmp_path)
    assert len(data) == len(index["kept"]) and data[-1].image.shape == (8, 8, 3)


def test_a_keypoint_labeler_writes_keypoints_and_no_label_maps(tmp_path):
    def corner_labeler(sample):
        """Two keypoints at the brightest and darkest pixel; uncertainty: the image's darkness."""
        grey = sample.image.mean(1).flatten(1)
        xy = [torch.stack([i % 8, i // 8], -1).float() + 0.5 for i in (grey.argmax(1), grey.argmin(1))]
        keypoints = torch.cat([torch.stack(xy, 1), torch.ones(len(grey), 2, 1)], -1)
        return keypoints, None, -grey.mean(1)

    index = generate(_backbone(), corner_labeler, ("bright", "dark"), tmp_path,
                     FactorySettings(num=5, shard_size=4, filter_ratio=0.2), label_size=(8, 8))
    assert index["keypoint_names"] == ["bright", "dark"] and len(index["kept"]) == 4
    data = SyntheticDataset(tmp_path)
    assert data.keypoint_names == ("bright", "dark") and data[0].labels is None
    assert data[0].keypoints.shape == (2, 3) and (data[0].keypoints[:, 2] == 1).all()
    assert not list(tmp_path.rglob("*_label.png"))
    with pytest.raises(ValueError, match="COCO export is for segmentation"):
        generate(_backbone(), corner_labeler, ("bright", "dark"), tmp_path / "coco",
                 FactorySettings(num=2, coco=True), label_size=(8, 8))


def test_the_papers_filter_and_the_official_scripts_slice_on_hand_made_scores():
    from datasources.synthetic import filter_uncertain

    scores = {seed: float(seed) for seed in range(100)}   # seed 99 the most uncertain, seed 0 the most certain
    kept, dropped = filter_uncertain(scores, 0.1)
    assert dropped == list(range(90, 100)) and kept == list(range(90))   # the paper: the 10 most uncertain
    scores = {seed: float(seed) for seed in range(400)}
    kept, dropped = filter_uncertain(scores, 0.1, "official")   # f = 40: the 30 most certain and 10 most uncertain
    assert dropped == list(range(30)) + list(range(390, 400)) and kept == list(range(30, 390))
    assert filter_uncertain(scores, 0.0, "official") == (list(range(400)), [])
    with pytest.raises(ValueError, match="official filter slice keeps nothing unless"):
        filter_uncertain({seed: 0.0 for seed in range(100)}, 0.1, "official")


def test_a_folder_begun_by_another_source_is_refused_not_mixed(tmp_path):
    settings = FactorySettings(num=4, shard_size=2, batch=2)
    generate(_backbone(), brightness_labeler, CAR_5, tmp_path, settings, label_size=(8, 8), source={"interpreters": ["a"]})
    assert json.loads((tmp_path / "source.json").read_text()) == {"truncation": {"psi": 1.0, "cutoff": None},
                                                                  "interpreters": ["a"]}
    generate(_backbone(), brightness_labeler, CAR_5, tmp_path, settings, label_size=(8, 8), source={"interpreters": ["a"]})
    with pytest.raises(DatasetFormatError, match="a folder begun with .*'a'.* not .*'b'.*use a new folder"):
        generate(_backbone(), brightness_labeler, CAR_5, tmp_path, settings, label_size=(8, 8),
                 source={"interpreters": ["b"]})
    (tmp_path / "source.json").unlink()   # a folder written before source.json: resumed as it is, nothing claimed
    generate(_backbone(), brightness_labeler, CAR_5, tmp_path, settings, label_size=(8, 8), source={"interpreters": ["b"]})
    assert not (tmp_path / "source.json").exists()
