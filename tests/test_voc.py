"""CVAT 'Segmentation mask 1.1' folders: a generated set written as one reads back to the same label maps through
its labelmap.txt, with the layout CVAT documents; foreign colours and labels fail naming the file."""
import numpy as np
import pytest
from PIL import Image

from datasetgan.factory import FactorySettings, generate
from datasources.base import DatasetFormatError
from datasources.classes import CAR_5, CAR_12
from datasources.synthetic import SyntheticDataset
from datasources.voc import LABELMAP_HEADER, read_labelmap, read_voc, write_voc
from test_factory import _backbone, brightness_labeler


@pytest.fixture
def voc(tmp_path):
    generate(_backbone(), brightness_labeler, CAR_5, tmp_path / "gen", FactorySettings(num=6, shard_size=4),
             label_size=(8, 8))
    data = SyntheticDataset(tmp_path / "gen")
    return data, write_voc(data, tmp_path / "voc")


def test_a_generated_set_reads_back_through_the_labelmap(voc):
    data, root = voc
    lines = (root / "labelmap.txt").read_text().splitlines()
    assert lines[0] == LABELMAP_HEADER and lines[1] == "background:0,0,0::" and len(lines) == 1 + len(CAR_5)
    assert read_labelmap(root / "labelmap.txt") == {tuple(c): n for n, c in zip(CAR_5.names, CAR_5.palette)}
    names = (root / "ImageSets" / "Segmentation" / "default.txt").read_text().split()
    assert names == [f"seed{s:06d}" for s in data.seeds]
    back = read_voc(root, CAR_5)
    assert sorted(back) == sorted(names)
    for i, name in enumerate(names):
        sample = data[i]
        np.testing.assert_array_equal(back[name], sample.labels)
        np.testing.assert_array_equal(np.asarray(Image.open(root / "JPEGImages" / f"{name}.png")), sample.image)
        assert Image.open(root / "SegmentationClass" / f"{name}.png").mode == "RGB"


def test_a_cvat_labelmap_with_a_subset_of_classes_maps_onto_the_class_set(voc):
    """CVAT writes only the task's labels, in its own order: the names decide, not the line numbers."""
    _, root = voc
    (root / "labelmap.txt").write_text(f"{LABELMAP_HEADER}\nbackground:0,0,0::\nwheel:10,20,30::\n")
    mask = np.zeros((4, 4, 3), np.uint8)
    mask[1:3, 1:3] = (10, 20, 30)
    for old in (root / "SegmentationClass").iterdir():
        old.unlink()
    Image.fromarray(mask).save(root / "SegmentationClass" / "a.png")
    labels = read_voc(root, CAR_12)["a"]
    assert labels[1, 1] == CAR_12.index("wheel") and labels[0, 0] == 0 and labels.dtype == np.int64


def test_foreign_colours_and_labels_fail_naming_the_file(voc):
    _, root = voc
    mask = root / "SegmentationClass" / next(iter(sorted(p.name for p in (root / "SegmentationClass").iterdir())))
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(mask)
    with pytest.raises(DatasetFormatError, match=f"{mask.name}: colours of labelmap.txt, got 7,7,7"):
        read_voc(root, CAR_5)
    (root / "labelmap.txt").write_text(f"{LABELMAP_HEADER}\nspoiler:1,2,3::\n")
    with pytest.raises(DatasetFormatError, match=r"labelmap.txt: labels among car-5's classes, got \['spoiler'\]"):
        read_voc(root, CAR_5)
    (root / "labelmap.txt").write_text("wheel:1,2::\n")
    with pytest.raises(DatasetFormatError, match="line 1: `name:r,g,b:parts:actions`"):
        read_voc(root, CAR_5)
