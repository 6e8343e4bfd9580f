"""`datasets check`: sound fixtures pass, each kind of damage is named with its file, and the CLI exits 0 / 1."""
from functools import partial

import numpy as np
import pytest
from click.testing import CliRunner

from benchmark.cli import cli
from datasources.base import DatasetFormatError
from datasources.check import check_dataset
from datasources.registry import DATASETS
from fixtures import ade20k, celebamask, cub, datasetgan, kaggle_cats, pascal_part, stanford_cars
from fixtures.images import save, truncate

SOUND = {
    "ade-car-12": ade20k.build_2021,
    "ade-car-5": ade20k.build_2016,
    "pascal-car-5": pascal_part.build,
    "celeba-mask-8": celebamask.build,
    "cub-bird": cub.build,
    **{name: partial(datasetgan.build, name=name) for name in datasetgan.FOLDERS},
    "stanford-cars": stanford_cars.build,
    "kaggle-cats": kaggle_cats.build,
}


def test_every_registered_dataset_has_a_fixture():
    assert set(SOUND) == set(DATASETS)


@pytest.mark.parametrize("name", list(SOUND))
def test_sound_fixture_checks_ok(tmp_path, name):
    SOUND[name](tmp_path)
    report = check_dataset(name, tmp_path)
    assert report.ok, report.format()
    assert sum(read for read, _ in report.counts.values()) >= 3
    assert all(read == listed for read, listed in report.counts.values())


def _release_damage(root):
    """An image without its mask, a mask of another size, a truncated PNG."""
    folder = datasetgan.release_test_dir(root, "car-20")
    (folder / "mask_2.npy").unlink()
    np.save(folder / "mask_10.npy", np.zeros((3, 3), np.uint8))
    truncate(folder / "image_1.png")
    return ["image_2.png: exactly one label file", "mask_10.npy: labels of size 3x3", "image_1.png: a readable image"]


def _ade_missing_index(root):
    (root / "index_ade20k.pkl").unlink()
    return ["index_ade20k.pkl: missing ADE20K index"]


def _ade_truncated_mask(root):
    truncate(next(root.rglob("instance_010_ADE_val_00000001.png")))
    return ["instance_010_ADE_val_00000001.png: a readable instance mask"]


def _pascal_unknown_part(root):
    pascal_part.add_unknown_part(root)
    return ["2008_000002.mat: a known car part name (got 'spoiler_1'"]


def _celeba_damage(root):
    """An unknown part file, a face with no part file, a mask whose size does not divide its image."""
    save(celebamask.mask_path(root, 0, "beard"), np.zeros((8, 8), np.uint8))
    for path in celebamask.mask_path(root, 1, "skin").parent.glob("00001_*.png"):
        path.unlink()
    save(celebamask.mask_path(root, 2001, "skin"), np.zeros((6, 6), np.uint8))
    return ["00000_beard.png: a part name among", "00001_<part>.png: part masks for image 1.jpg",
            "02001_skin.png: size 6x6 to divide"]


def _cub_missing_mask(root):
    (root / "segmentations" / cub.IMAGES[3].replace(".jpg", ".png")).unlink()
    return ["Laysan_Albatross_0001_545.png: missing segmentation mask"]


DAMAGE = {
    "release": ("car-20", SOUND["car-20"], _release_damage),
    "ade-index": ("ade-car-12", ade20k.build_2021, _ade_missing_index),
    "ade-mask": ("ade-car-5", ade20k.build_2021, _ade_truncated_mask),
    "pascal": ("pascal-car-5", pascal_part.build, _pascal_unknown_part),
    "celeba": ("celeba-mask-8", celebamask.build, _celeba_damage),
    "cub": ("cub-bird", cub.build, _cub_missing_mask),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damage_is_named_with_its_file(tmp_path, case):
    name, build, damage = DAMAGE[case]
    build(tmp_path)
    expected = damage(tmp_path)
    report = check_dataset(name, tmp_path)
    text = report.format()
    assert not report.ok and len(report.problems) == len(expected), text
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in:\n{text}"


def test_report_lists_counts_and_classes(tmp_path):
    datasetgan.build(tmp_path, "cat-16")
    text = check_dataset("cat-16", tmp_path).format()
    assert "cat-16 at" in text and ": ok" in text
    assert "train: 3 of 3 items read" in text and "test: 3 of 3 items read" in text
    assert "classes present (16 of 16): background, limbus" in text


def test_unknown_name_lists_the_valid_ones(tmp_path):
    with pytest.raises(DatasetFormatError, match="ade-car-12, ade-car-5"):
        check_dataset("ade-car-13", tmp_path)


def test_cli_exit_codes(tmp_path):
    sound, damaged = tmp_path / "sound", tmp_path / "damaged"
    for root in (sound, damaged):
        datasetgan.build(root, "car-20")
    _release_damage(damaged)
    runner = CliRunner()
    ok = runner.invoke(cli, ["datasets", "check", "car-20", "--root", str(sound)])
    assert ok.exit_code == 0, ok.output
    assert "car-20" in ok.output and ": ok" in ok.output
    bad = runner.invoke(cli, ["datasets", "check", "car-20", "--root", str(damaged)])
    assert bad.exit_code == 1, bad.output
    assert "3 problems" in bad.output and "mask_10.npy" in bad.output


def test_class_shares_count_pixels_and_images():
    from datasources.base import IGNORE, PartDataset, Sample
    from datasources.check import class_shares
    from datasources.classes import CAR_5

    class Two(PartDataset):
        classes = CAR_5

        def __len__(self):
            return 2

        def __getitem__(self, i):
            labels = np.zeros((2, 4), np.int64)
            labels[0, :i + 1] = 4          # image 0: one wheel pixel, image 1: two
            labels[1, 3] = IGNORE          # not counted
            return Sample(np.zeros((2, 4, 3), np.uint8), labels)

    shares = class_shares(Two())
    assert shares["wheel"] == (3 / 14, 1.0) and shares["background"] == (11 / 14, 1.0) and shares["body"] == (0, 0)
