"""The DatasetGAN release (nv-tlabs/datasetGAN_release's dataset_release/ folder) as shipped.

'test': annotation/testing_data/<name>_class/, a flat folder of images (.png/.jpg) and .npy labels;
'train': annotation/training_data/<category>_processed/ (image_{i}.jpg + image_mask{i}.npy) with the
z codes of training_latent/<name>/latent_stylegan1.npy (N x 512, row i for image i) and the mean w
of the same folder (avg_latent_stylegan1.npy; the cat config names avg_latent_cat.npy).
Files pair by the last number in their names (image_3.png + mask_3.npy; inferred, the official code
pairs the two sorted lists by position) and items follow sorted image names as the official folds do.
Labels may be stored 3-D: singleton axes are squeezed and a (H, W, C) array gives channel 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasources.base import ClassSet, DatasetFormatError, PartDataset, Sample
from datasources.classes import BEDROOM_19, BIRD_11, CAR_20, CAT_16, FACE_34
from datasources.files import (IMAGE_SUFFIXES, OnError, check_split, file_index, list_files, pair_by_sorted_name,
                            raise_error, read_npy, read_rgb)


@dataclass(frozen=True)
class Release:
    """Where one category lives in the release: class set, folder names and the mean-latent file."""

    classes: ClassSet
    name: str
    category: str
    avg_latent: str = "avg_latent_stylegan1.npy"


# Folder names of the released car/face/cat sets; bird and bedroom (never released) follow the pattern.
RELEASES = {
    "car-20": Release(CAR_20, "car_20", "car"),
    "face-34": Release(FACE_34, "face_34", "face"),
    "cat-16": Release(CAT_16, "cat_16", "cat", "avg_latent_cat.npy"),
    "bird-11": Release(BIRD_11, "bird_11", "bird"),
    "bedroom-19": Release(BEDROOM_19, "bedroom_19", "bedroom"),
}


def read_label(path: Path, hw: tuple[int, int], classes: ClassSet) -> np.ndarray:
    """A release .npy label -> labels: int64 (H, W) in [0, K), checked against the image size `hw`."""
    array = np.squeeze(read_npy(path, "label map"))
    if array.ndim == 3:
        array = array[..., 0]
    if array.ndim != 2:
        raise DatasetFormatError(path, f"a 2-D label map (or 3-D with channels last), got shape {array.shape}")
    if array.shape != tuple(hw):
        raise DatasetFormatError(path, f"labels of size {array.shape[1]}x{array.shape[0]} to match its image, "
                                       f"{hw[1]}x{hw[0]}")
    if not np.issubdtype(array.dtype, np.number) or (array != np.round(array)).any() \
            or array.min() < 0 or array.max() >= len(classes):
        raise DatasetFormatError(path, f"integer labels in [0, {len(classes)}) ({classes.name})")
    return array.astype(np.int64)


def read_latents(path: Path, what: str) -> np.ndarray:
    """A latent .npy -> float32 (..., 512), failing on any other last axis."""
    latents = read_npy(path, what)
    if latents.ndim not in (1, 2) or latents.shape[-1] != 512:
        raise DatasetFormatError(path, f"{what} of shape (N, 512), got {latents.shape}")
    return latents.astype(np.float32)


class ReleaseDataset(PartDataset):
    """One DatasetGAN release set; 'train' items carry meta['latent'] (512,) and the set `avg_latent`."""

    SPLITS = ("train", "test")

    def __init__(self, root: Path, split: str = "test", *, release: Release, on_error: OnError = raise_error):
        check_split(split, self.SPLITS)
        self.root = Path(root)
        self.classes = release.classes
        annotation = self.root / "annotation"
        if split == "test":
            folder = annotation / "testing_data" / f"{release.name}_class"
        else:
            folder = annotation / "training_data" / f"{release.category}_processed"
        files = list_files(folder, IMAGE_SUFFIXES + (".npy",), f"{release.name} {split} images and labels")
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        labels = [p for p in files if p.suffix.lower() == ".npy"]
        self.pairs = pair_by_sorted_name(images, labels, on_error)
        self.latents = self.avg_latent = None
        if split == "train":
            latent_folder = self.root / "training_latent" / release.name
            self.latent_path = latent_folder / "latent_stylegan1.npy"
            self.latents = read_latents(self.latent_path, "z codes")
            self.avg_latent = read_latents(latent_folder / release.avg_latent, "mean w")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> Sample:
        """The i-th pair: image uint8 (H, W, 3), labels int64 (H, W); 'train' adds meta['latent']: float32 (512,)."""
        image_path, label_path = self.pairs[i]
        image = read_rgb(image_path)
        labels = read_label(label_path, image.shape[:2], self.classes)
        meta = {"path": str(image_path), "label_path": str(label_path)}
        if self.latents is not None:
            row = file_index(image_path.name)
            if not row.isdigit() or int(row) >= len(self.latents):
                rows = len(self.latents)
                raise DatasetFormatError(self.latent_path, f"a row {row} for {image_path.name} (has {rows} rows)")
            meta["latent"] = self.latents[int(row)]
        return Sample(image, labels, meta=meta)
