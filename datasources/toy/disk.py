"""Fixed toy splits, and the on-disk layout the toy world is written in and read back from.

Layout of a split folder (all indices zero-padded to 6 digits, `i` = position in the split):

    dataset.json              {"split", "settings", "classes", "palette", "keypoint_names", "ids"}
    images/000000.png         RGB, uint8
    labels/000000.png         one channel, uint8 class index in ADE-Car-12 (see dataset.json)
    annotations/000000.json   {"seed", "keypoints": [[x, y, visible], ...], "camera", "params"}

Every file is written to a temporary name and renamed, so an interrupted run leaves only whole
samples; rerunning the same command renders only the samples that are missing.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from datasources.base import DatasetFormatError, PartDataset, Sample
from datasources.classes import CAR_12
from datasources.files import atomic_write, read_image_and_labels, read_json
from datasources.toy.car import KEYPOINT_NAMES
from datasources.toy.world import ToySettings, render_sample

# Disjoint seed ranges: (first seed, size). Sample i of a split is drawn from seed first + i.
SPLITS = {
    "test": (0, 250),
    "labelled": (1_000_000, 2_000),
    "unlabelled": (2_000_000, 10_000),
}
SAMPLES_PER_WORKER = 32  # write_split starts a rendering process only for at least this many samples


def split_seeds(split: str, count: int | None = None) -> list[int]:
    """The seeds of the first `count` samples of `split` (default: all of it)."""
    if split not in SPLITS:
        raise KeyError(f"unknown toy split {split!r}; valid: {', '.join(SPLITS)}")
    first, size = SPLITS[split]
    count = size if count is None else count
    if not 0 < count <= size:
        raise ValueError(f"the {split} split has {size} samples, asked for {count}")
    return list(range(first, first + count))


def _save_png(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda tmp: Image.fromarray(array).save(tmp, format="PNG"))


def _save_json(path: Path, data: dict) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1)))


def write_split(root: str | Path, split: str, count: int | None = None,
                settings: ToySettings = ToySettings(), workers: int | None = None) -> Path:
    """Render the first `count` samples of `split` into `root` (resumable); returns `root`. workers: processes
    that render in parallel (default: one per CPU core), used only where each gets at least
    SAMPLES_PER_WORKER samples (starting one costs about as much as that many renders)."""
    root = Path(root)
    seeds = split_seeds(split, count)
    header = json.loads(json.dumps({"split": split, "settings": asdict(settings), "classes": CAR_12.names,
                                    "palette": CAR_12.palette, "keypoint_names": KEYPOINT_NAMES}))
    index = root / "dataset.json"
    if index.exists():
        old = read_json(index, "toy split index", ())
        if {k: old.get(k) for k in header} != header:
            raise DatasetFormatError(index, f"an existing toy split with other settings; use another --out "
                                            f"(found split={old.get('split')!r}, settings={old.get('settings')})")
    for sub in ("images", "labels", "annotations"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    _write_index(root, header)
    todo = [(i, seed) for i, seed in enumerate(seeds) if not (root / "annotations" / f"{i:06d}.json").exists()]
    workers = min(workers or _cores(), len(todo) // SAMPLES_PER_WORKER)
    write = partial(_write_sample, root, settings=settings)
    progress = partial(tqdm, desc=f"toy {split}", unit="img", total=len(seeds), initial=len(seeds) - len(todo))
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=torch.set_num_threads,
                                 initargs=(1,)) as pool:
            for _ in progress(pool.map(write, *zip(*todo), chunksize=8)):
                pass
    else:
        for i, seed in progress(todo):
            write(i, seed)
    _write_index(root, header)
    return root


def _cores() -> int:
    """CPU cores this process may use (all of the machine's where the platform cannot say)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _write_sample(root: Path, i: int, seed: int, settings: ToySettings) -> None:
    """Render sample i of a split (its seed) into root; the annotation, written last, marks it whole."""
    sample = render_sample(seed, settings)
    name = f"{i:06d}"
    _save_png(root / "images" / f"{name}.png", sample.image)
    _save_png(root / "labels" / f"{name}.png", sample.labels.astype(np.uint8))
    _save_json(root / "annotations" / f"{name}.json", {
        "seed": seed, "keypoints": sample.keypoints.tolist(),
        "camera": sample.meta["camera"], "params": sample.meta["params"]})


def _write_index(root: Path, header: dict) -> None:
    """dataset.json lists the samples that are whole (their annotation, written last, exists)."""
    ids = sorted(p.stem for p in (root / "annotations").glob("[0-9]*.json"))
    _save_json(root / "dataset.json", {**header, "ids": ids})


class ToyDataset(PartDataset):
    """A toy split written by `write_split`, read back as Samples (ADE-Car-12 labels, 16 keypoints)."""

    classes = CAR_12
    keypoint_names = KEYPOINT_NAMES

    def __init__(self, root: str | Path):
        self.root = Path(root)
        index = self.root / "dataset.json"
        if not index.is_file():
            raise DatasetFormatError(index, "missing; expected the index written by `benchmark toy`")
        header = read_json(index, "toy split index", ("classes", "ids", "split"))
        if header["classes"] != list(CAR_12.names):
            raise DatasetFormatError(index, f"classes must be {list(CAR_12.names)}")
        self.ids = header["ids"]
        self.split = header["split"]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Sample:
        name = self.ids[index]
        image, labels = read_image_and_labels(self.root / "images" / f"{name}.png",
                                              self.root / "labels" / f"{name}.png")
        if labels.max() >= len(CAR_12):
            raise DatasetFormatError(self.root / "labels" / f"{name}.png", f"class indices must be < {len(CAR_12)}")
        ann_path = self.root / "annotations" / f"{name}.json"
        ann = read_json(ann_path, "toy annotation", ("keypoints",))
        return Sample(image=image, labels=labels, keypoints=np.asarray(ann["keypoints"], np.float32),
                      meta={"id": name, "split": self.split, **ann})

