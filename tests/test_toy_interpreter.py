"""The in-run toy interpreter: each labelled image is inverted once and shared by every set that holds it,
and its config trains an interpreter for part labels or keypoints."""
import numpy as np

from benchmark.sources import toy_split
from benchmark.toy_interpreter import (ToyInterpreterSettings, generator_file, interpreter_config, invert_labelled,
                                       trained)
from datasetgan.interpreter import load_ensemble
from datasources.toy import KEYPOINT_NAMES, ToySettings

TINY = ToyInterpreterSettings(generator="tiny", inversion_steps=2, mean_samples=16, ensemble_size=1, max_epochs=1,
                              pixels_per_image=64)


def test_each_image_is_inverted_once_and_shared_by_sets(tmp_path):
    labelled = toy_split(tmp_path / "data", "labelled", 3, ToySettings(resolution=16))
    generator = generator_file(TINY, 16, tmp_path / "work")
    first = np.load(invert_labelled(generator, labelled, [0, 1], TINY, tmp_path / "work"))
    cache = next((tmp_path / "work").glob("inverted-*"))
    stamp = (cache / f"{labelled.ids[1]}.npy").stat().st_mtime_ns
    second = np.load(invert_labelled(generator, labelled, [1, 2], TINY, tmp_path / "work"))
    assert sorted(p.name for p in cache.glob("*.npy")) == [f"{i}.npy" for i in labelled.ids]
    assert (cache / f"{labelled.ids[1]}.npy").stat().st_mtime_ns == stamp   # image 1 not inverted again
    np.testing.assert_array_equal(first[1], second[0])


def test_configs_train_part_and_keypoint_interpreters(tmp_path):
    labelled = toy_split(tmp_path / "data", "labelled", 2, ToySettings(resolution=16))
    for mode, outputs in (("segmentation", len(labelled.classes)), ("keypoints", len(KEYPOINT_NAMES))):
        config = trained(interpreter_config(labelled, [0, 1], TINY, tmp_path / "work", mode), "cpu")
        _, settings = load_ensemble(config["checkpoint"])
        assert settings.mode == mode and settings.num_classes == outputs
