"""PASCAL-Car-5 on a PASCAL-Part fixture: overlapping parts, a part-less car, scrambled part order."""
from pathlib import Path

import numpy as np
import pytest

from datasources.base import DatasetFormatError
from datasources.classes import CAR_5, PASCAL_CAR_PARTS, PASCAL_CAR_TO_5
from datasources.pascal_part import PascalCars, part_kind
from fixtures.images import decoded
from fixtures.pascal_part import add_unknown_part, build


@pytest.fixture
def fixture(tmp_path):
    return build(tmp_path)


@pytest.mark.parametrize("split", ["test", "train"])
def test_car_5_labels_match_pixel_by_pixel(fixture, split):
    ds = PascalCars(fixture.root, split, merge=PASCAL_CAR_TO_5)
    expected = getattr(fixture, split)
    assert ds.classes is CAR_5 and len(ds) == len(expected)
    for sample, car in zip(ds, expected):
        assert (sample.meta["image"], sample.meta["object"], sample.meta["box"]) == (car.image, car.number, car.box)
        np.testing.assert_array_equal(sample.labels, car.labels)
        x0, y0, x1, y1 = car.box
        full = decoded(fixture.root / "JPEGImages" / f"{car.image}.jpg")
        np.testing.assert_array_equal(sample.image, full[y0:y1, x0:x1])


def test_raw_part_kinds_before_the_merge(fixture):
    labels = PascalCars(fixture.root, "test")[0].labels  # box (2, 2, 22, 14)
    assert labels[7, 18] == PASCAL_CAR_PARTS.index("fliplate")  # plate painted over frontside
    assert labels[4, 6] == PASCAL_CAR_PARTS.index("window")  # window painted over door and leftside
    assert labels[0, 2] == PASCAL_CAR_PARTS.index("car")  # car pixel outside every part


def test_part_names():
    assert [part_kind(n) for n in ("door_12", "fliplate", "headlight_3", "door", "spoiler_1")] == \
        ["door", "fliplate", "headlight", "door", None]


def test_unknown_part_name_stops_loading(fixture):
    path = add_unknown_part(fixture.root)
    ds = PascalCars(fixture.root, "test")
    with pytest.raises(DatasetFormatError, match="spoiler_1") as error:
        ds[1]
    assert error.value.path == Path(path)
