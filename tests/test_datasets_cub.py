"""CUB-200-2011 on a fixture: foreground masks, 15 keypoints with visibility, boxes and the split."""
import numpy as np
import pytest

from datasources.base import DatasetFormatError
from datasources.classes import CUB_KEYPOINTS
from datasources.cub import CUBBirds
from fixtures.cub import IMAGES, build
from fixtures.images import decoded


@pytest.fixture
def fixture(tmp_path):
    return build(tmp_path)


@pytest.mark.parametrize("split, ids", [("test", [1, 3]), ("train", [2])])
def test_masks_keypoints_and_boxes(fixture, split, ids):
    ds = CUBBirds(fixture.root, split)
    assert ds.keypoint_names == CUB_KEYPOINTS and len(ds) == len(ids)
    for sample, image_id in zip(ds, ids):
        np.testing.assert_array_equal(sample.labels, fixture.labels[image_id])
        np.testing.assert_allclose(sample.keypoints, fixture.keypoints[image_id], atol=1e-5)
        assert sample.keypoints.dtype == np.float32 and sample.meta["bbox"] == fixture.boxes[image_id]
        np.testing.assert_array_equal(sample.image, decoded(fixture.root / "images" / IMAGES[image_id]))


def test_invisible_keypoints_keep_zero_and_flag(fixture):
    keypoints = CUBBirds(fixture.root, "test")[0].keypoints
    hidden = keypoints[:, 2] == 0
    assert hidden.any() and (keypoints[hidden, :2] == 0).all()


def test_missing_segmentation_names_the_file(fixture):
    mask = fixture.root / "segmentations" / IMAGES[3].replace(".jpg", ".png")
    mask.unlink()
    with pytest.raises(DatasetFormatError) as error:
        CUBBirds(fixture.root, "test")[1]
    assert error.value.path == mask
