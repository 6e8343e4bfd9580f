"""Shared file helpers: pairing, splits, boxes and readers that fail with the file's name."""
import pickle
from pathlib import Path

import numpy as np
import pytest

from datasources.base import DatasetFormatError
from datasources.files import (check_split, crop, file_index, mask_box, pair_by_sorted_name, read_pickle, read_rgb,
                            take_split)
from fixtures.images import photo, save, truncate


def test_pairing_by_index_in_sorted_image_order():
    images = [Path(n) for n in ("image_10.png", "image_2.png", "image_1.png", "image_7.png")]
    labels = [Path(n) for n in ("mask_1.npy", "mask_2.npy", "mask_10.npy", "mask_9.npy")]
    problems = []
    pairs = pair_by_sorted_name(images, labels, problems.append)
    assert [(i.name, m.name) for i, m in pairs] == [
        ("image_1.png", "mask_1.npy"), ("image_10.png", "mask_10.npy"), ("image_2.png", "mask_2.npy")]
    assert [p.path.name for p in problems] == ["image_7.png", "mask_9.npy"]


def test_file_index():
    assert [file_index(n) for n in ("image_mask12.npy", "image_012.jpg", "plain.png")] == ["12", "12", "plain"]


def test_splits():
    assert take_split(list(range(5)), "val", 2) == [0, 1] and take_split(list(range(5)), "test", 2) == [2, 3, 4]
    with pytest.raises(ValueError, match="valid: train, test"):
        check_split("dev", ("train", "test"))


def test_box_and_crop():
    mask = np.zeros((5, 6), bool)
    mask[1:3, 2:5] = True
    assert mask_box(mask) == (2, 1, 5, 3) and mask_box(np.zeros((2, 2), bool)) is None
    assert crop(np.arange(30).reshape(5, 6), (2, 1, 5, 3)).tolist() == [[8, 9, 10], [14, 15, 16]]


def test_truncated_png_fails_with_its_name(tmp_path):
    path = truncate(save(tmp_path / "a.png", photo(32, 32, 0)))
    with pytest.raises(DatasetFormatError, match="a readable image") as error:
        read_rgb(path)
    assert error.value.path == path


def test_missing_file_fails_with_its_name(tmp_path):
    with pytest.raises(DatasetFormatError, match="missing image") as error:
        read_rgb(tmp_path / "gone.jpg")
    assert error.value.path == tmp_path / "gone.jpg"


class _Payload:
    pass


def test_pickle_reader_takes_numpy_and_refuses_code(tmp_path):
    good, bad = tmp_path / "good.pkl", tmp_path / "bad.pkl"
    good.write_bytes(pickle.dumps({"filename": ["a.jpg"], "objectPresence": np.eye(2)}))
    bad.write_bytes(pickle.dumps(_Payload()))
    assert read_pickle(good, "index")["objectPresence"].tolist() == [[1, 0], [0, 1]]
    with pytest.raises(DatasetFormatError, match="refusing"):
        read_pickle(bad, "index")
