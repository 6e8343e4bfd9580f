"""CelebA-Mask-8 on a CelebAMask-HQ fixture: paint order, missing part files, the 19 -> 8 merge, splits."""
import numpy as np
import pytest
from PIL import Image

import datasources.celebamask_hq as celebamask_hq
from datasources.base import DatasetFormatError
from datasources.celebamask_hq import CelebAMaskHQ
from datasources.classes import CELEBA_19, CELEBA_19_TO_8, CELEBA_MASK_8
from fixtures.celebamask import NAMES_8, ORDER, build, mask_path
from fixtures.images import save


@pytest.fixture
def fixture(tmp_path):
    return build(tmp_path)


def test_class_lists_follow_the_official_order():
    assert CELEBA_19.names == ("background",) + ORDER and CELEBA_MASK_8.names == NAMES_8


@pytest.mark.parametrize("merge", [None, CELEBA_19_TO_8])
def test_labels_match_pixel_by_pixel(fixture, merge):
    ds = CelebAMaskHQ(fixture.root, "val", merge=merge)
    expected = fixture.labels_19 if merge is None else fixture.labels_8
    assert [s.meta["face"] for s in ds] == [0, 1]
    for sample in ds:
        np.testing.assert_array_equal(sample.labels, expected[sample.meta["face"]])
        reduced = Image.open(fixture.root / "CelebA-HQ-img" / f"{sample.meta['face']}.jpg").convert("RGB").reduce(2)
        np.testing.assert_array_equal(sample.image, np.asarray(reduced))


def test_splits_use_the_mapping_file(fixture, monkeypatch):
    assert [s.meta["face"] for s in CelebAMaskHQ(fixture.root, "train")] == [2001]
    assert len(CelebAMaskHQ(fixture.root, "test")) == 0  # both test faces are inside the first 500
    monkeypatch.setattr(celebamask_hq, "VAL_COUNT", 1)
    assert [s.meta["face"] for s in CelebAMaskHQ(fixture.root, "test")] == [1]


def test_mask_of_another_size_names_the_file(fixture):
    bad = save(mask_path(fixture.root, 1, "nose"), np.zeros((6, 6), np.uint8))
    with pytest.raises(DatasetFormatError) as error:
        CelebAMaskHQ(fixture.root, "val")[1]
    assert error.value.path == bad


def test_unknown_part_file_stops_loading(fixture):
    bad = save(mask_path(fixture.root, 0, "beard"), np.zeros((8, 8), np.uint8))
    with pytest.raises(DatasetFormatError, match="part name") as error:
        CelebAMaskHQ(fixture.root, "val")
    assert error.value.path == bad
