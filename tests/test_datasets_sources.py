"""Image and keypoint sources: Stanford Cars (devkit boxes) and Kaggle CAT (.cat keypoints)."""
import numpy as np
import pytest

from datasources.base import DatasetFormatError
from datasources.classes import CAT_KEYPOINTS
from datasources.kaggle_cats import KaggleCats
from datasources.stanford_cars import StanfordCars
from fixtures import kaggle_cats, stanford_cars
from fixtures.images import decoded


def test_stanford_cars_boxes_become_zero_based_exclusive(tmp_path):
    root = stanford_cars.build(tmp_path)
    train = StanfordCars(root, "train")
    assert [s.meta["path"].split("/")[-1] for s in train] == ["00001.jpg", "00002.jpg"]
    first, second = train[0], train[1]
    assert first.meta["box"] == (0, 0, 14, 10) and first.meta["class_name"] == stanford_cars.CLASS_NAMES[0]
    assert second.meta["box"] == (2, 1, 12, 9) and second.meta["class_name"] == stanford_cars.CLASS_NAMES[2]
    assert first.labels is None and first.keypoints is None
    np.testing.assert_array_equal(first.image, decoded(root / "cars_train" / "00001.jpg"))
    (test,) = list(StanfordCars(root, "test"))
    assert test.meta["box"] == (1, 2, 8, 7) and test.meta["class_name"] is None


@pytest.mark.parametrize("split, names", [("train", ["00000001_000.jpg", "00000001_005.jpg"]),
                                          ("test", ["00001472_019.jpg"])])
def test_kaggle_cats_keypoints(tmp_path, split, names):
    root = kaggle_cats.build(tmp_path)
    ds = KaggleCats(root, split)
    assert ds.keypoint_names == CAT_KEYPOINTS and len(ds) == len(names)
    for sample, name in zip(ds, names):
        relative = next(r for r in kaggle_cats.PHOTOS if r.endswith(name))
        expected = np.concatenate([kaggle_cats.points(kaggle_cats.PHOTOS[relative]), np.ones((9, 1))], axis=1)
        np.testing.assert_array_equal(sample.keypoints, expected.astype(np.float32))
        np.testing.assert_array_equal(sample.image, decoded(root / relative))


def test_kaggle_cat_without_keypoint_file(tmp_path):
    root = kaggle_cats.build(tmp_path)
    (root / "CAT_06" / "00001472_019.jpg.cat").unlink()
    with pytest.raises(DatasetFormatError, match="00001472_019.jpg.cat"):
        KaggleCats(root, "test")[0]
