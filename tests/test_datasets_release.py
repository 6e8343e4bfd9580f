"""The DatasetGAN release format: flat test folders and training annotations with latents."""
import numpy as np
import pytest

from datasources.base import DatasetFormatError
from datasources.classes import BEDROOM_19, BIRD_11, CAR_20, CAT_16, FACE_34
from datasources.datasetgan_release import RELEASES, ReleaseDataset
from fixtures.datasetgan import FOLDERS, build, release_test_dir
from fixtures.images import decoded

CLASSES = {"car-20": CAR_20, "face-34": FACE_34, "cat-16": CAT_16, "bird-11": BIRD_11, "bedroom-19": BEDROOM_19}


@pytest.mark.parametrize("name", list(FOLDERS))
def test_test_set_pairs_by_index_in_sorted_order(tmp_path, name):
    fixture = build(tmp_path, name)
    ds = ReleaseDataset(tmp_path, "test", release=RELEASES[name])
    assert ds.classes is CLASSES[name]
    assert [s.meta["path"].split("/")[-1] for s in ds] == ["image_1.png", "image_10.png", "image_2.png"]
    for sample, (image, labels) in zip(ds, fixture.test):
        np.testing.assert_array_equal(sample.labels, labels)  # image_10's labels are stored 3-D
        np.testing.assert_array_equal(sample.image, decoded(release_test_dir(tmp_path, name) / image)[..., :3])


@pytest.mark.parametrize("name", list(FOLDERS))
def test_training_annotations_carry_latents(tmp_path, name):
    fixture = build(tmp_path, name)
    ds = ReleaseDataset(tmp_path, "train", release=RELEASES[name])
    np.testing.assert_allclose(ds.avg_latent, fixture.avg_latent.astype(np.float32))
    assert len(ds) == 3
    for k, (sample, (image, labels)) in enumerate(zip(ds, fixture.train)):
        assert sample.meta["path"].endswith(image)
        np.testing.assert_array_equal(sample.labels, labels)  # image_mask1 is stored (1, H, W) float
        np.testing.assert_allclose(sample.meta["latent"], fixture.latents[k].astype(np.float32))


def test_label_outside_the_class_set_names_the_file(tmp_path):
    build(tmp_path, "cat-16")
    bad = release_test_dir(tmp_path, "cat-16") / "mask_1.npy"
    np.save(bad, np.full((6, 8), 16, np.uint8))
    with pytest.raises(DatasetFormatError, match=r"\[0, 16\)") as error:
        ReleaseDataset(tmp_path, "test", release=RELEASES["cat-16"])[0]
    assert error.value.path == bad


def test_image_without_label_stops_loading(tmp_path):
    build(tmp_path)
    (release_test_dir(tmp_path, "car-20") / "mask_2.npy").unlink()
    with pytest.raises(DatasetFormatError, match="image_2.png"):
        ReleaseDataset(tmp_path, "test", release=RELEASES["car-20"])
