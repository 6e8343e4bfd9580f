"""Reader of a labelled synthetic dataset written by the label factory (`benchmark generate`): the
samples index.json kept after uncertainty filtering, with their seeds, scores and JS maps."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from datasets.base import DatasetFormatError, PartDataset, Sample
from datasets.classes import CLASS_SETS
from datasets.files import read_image_and_labels, read_npy


class SyntheticDataset(PartDataset):
    """Kept samples of a factory output folder; meta holds the seed and the path of its JS map."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        index = self.root / "index.json"
        if not index.is_file():
            raise DatasetFormatError(index, "missing; `benchmark generate` writes it once every shard is done")
        data = json.loads(index.read_text())
        names = tuple(data["classes"])
        match = [c for c in CLASS_SETS.values() if c.names == names]
        if not match:
            raise DatasetFormatError(index, f"a known class set, got classes {list(names)}")
        self.classes = match[0]
        self.seeds = data["kept"]
        self.files = data["files"]

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, i: int) -> Sample:
        seed = self.seeds[i]
        stem = self.root / self.files[str(seed)]
        image, labels = read_image_and_labels(Path(f"{stem}.png"), Path(f"{stem}_label.png"))
        return Sample(image, labels, meta={"seed": seed, "js": str(stem) + "_js.npy"})

    def js(self, i: int) -> np.ndarray:
        """float16 (H, W): the ensemble's per-pixel JS divergence of sample i."""
        return read_npy(Path(self.__getitem__(i).meta["js"]), "JS map")
