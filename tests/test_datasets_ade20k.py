"""ADE-Car-12 / ADE-Car-5 on fixtures in both ADE20K release formats, compared pixel by pixel."""
from pathlib import Path

import numpy as np
import pytest

import datasources.ade20k as ade20k
from datasources.ade20k import ADECars
from datasources.ade20k_2016 import decode
from datasources.base import DatasetFormatError
from datasources.classes import CAR_5, CAR_12, CAR_12_TO_5
from fixtures.ade20k import build_2016, build_2021
from fixtures.images import decoded

BUILDERS = {"2016": build_2016, "2021": build_2021}


@pytest.fixture(params=list(BUILDERS))
def release(request, tmp_path):
    return BUILDERS[request.param](tmp_path)


def test_car_crops_match_the_encoded_parts(release):
    ds = ADECars(release.root, "val")
    assert ds.classes is CAR_12 and len(ds) == len(release.cars) == 3
    for sample, car in zip(ds, release.cars):
        assert sample.meta["instance"] == car.instance and sample.meta["box"] == car.box
        assert sample.labels.dtype == np.int64
        np.testing.assert_array_equal(sample.labels, car.labels)
        x0, y0, x1, y1 = car.box
        full = decoded(Path(sample.meta["path"]))
        np.testing.assert_array_equal(sample.image, full[y0:y1, x0:x1])


def test_first_car_keeps_the_quirks(release):
    """Tree in the notch -> background, plate over bumper, rim over wheel, bumper stays body."""
    (labels,) = [s.labels for s in ADECars(release.root, "val") if s.meta["box"] == (2, 4, 20, 16)]
    assert labels[0, 13] == CAR_12.index("background")  # notch: tree in front, car hidden behind
    assert labels[11, 11] == CAR_12.index("car_body")  # bumper has no class
    assert labels[10, 14] == CAR_12.index("licence plate")
    assert labels[9, 3] == CAR_12.index("wheelhub")
    assert labels[4, 8] == CAR_12.index("handle")


def test_split_is_first_sorted_crops_for_val(release, monkeypatch):
    monkeypatch.setattr(ade20k, "VAL_COUNT", 2)
    val, test = ADECars(release.root, "val"), ADECars(release.root, "test")
    assert [s.meta["name"] for s in val] + [s.meta["name"] for s in test] == \
        [f"{c.image}_{c.instance:03d}" for c in release.cars]
    assert len(val) == 2 and len(test) == 1


def test_train_split_reads_training_images(release):
    (sample,) = list(ADECars(release.root, "train"))
    np.testing.assert_array_equal(sample.labels, release.train_cars[0].labels)


def test_car_5_merge(release):
    ds = ADECars(release.root, "val", merge=CAR_12_TO_5)
    assert ds.classes is CAR_5
    for sample, car in zip(ds, release.cars):
        np.testing.assert_array_equal(sample.labels, CAR_12_TO_5.lut[car.labels])


def test_missing_index_names_the_file(tmp_path):
    with pytest.raises(DatasetFormatError, match="index_ade20k.pkl"):
        ADECars(tmp_path, "val")


def test_truncated_instance_mask_stops_loading(tmp_path):
    fixture = build_2021(tmp_path)
    mask = next(tmp_path.rglob("instance_001_ADE_val_00000001.png"))
    mask.write_bytes(mask.read_bytes()[:40])
    with pytest.raises(DatasetFormatError) as error:
        ADECars(fixture.root, "val")[0]
    assert error.value.path == mask


def test_2016_decoding_uses_r_for_high_classes_and_ranks_b():
    seg = np.zeros((1, 3, 3), np.uint8)
    seg[0, 0] = (10, 45, 200)  # class 301, largest B -> instance 2
    seg[0, 1] = (0, 7, 30)  # class 7, smallest non-zero B -> instance 1
    classes, instances = decode(seg)
    assert classes.tolist() == [[301, 7, 0]] and instances.tolist() == [[2, 1, 0]]
