"""Hugging Face `datasets` folders, written with the library's own `save_to_disk`, so that
`datasets.load_from_disk(folder)` loads them:

    image   the generated image (PNG)
    mask    class indices, one uint8 PNG per image (255 where unlabelled)
    name    the sample's name (`seed000123`), as in the VOC export
    id2label.json   {"0": "background", ...}: the class names, as segmentation datasets on the Hub carry them
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from datasources.base import PartDataset, sample_name
from datasources.files import atomic_write, optional_library


def write_hf(dataset: PartDataset, out: Path) -> Path:
    """Write every sample of `dataset` to the folder `out` in the layout above; returns `out`."""
    hf = optional_library("datasets", "--format hf")
    features = hf.Features({"image": hf.Image(), "mask": hf.Image(), "name": hf.Value("string")})

    def rows():
        for i in tqdm(range(len(dataset)), desc="hf export", unit="img"):
            sample = dataset[i]
            yield {"image": Image.fromarray(sample.image), "mask": Image.fromarray(sample.labels.astype(np.uint8)),
                   "name": sample_name(sample, i)}

    out = Path(out)
    with tempfile.TemporaryDirectory() as cache:   # the library's build cache, not the user's ~/.cache
        hf.Dataset.from_generator(rows, features=features, cache_dir=cache).save_to_disk(str(out))
    id2label = {str(i): name for i, name in enumerate(dataset.classes.names)}
    atomic_write(out / "id2label.json", lambda tmp: tmp.write_text(json.dumps(id2label, indent=1) + "\n"))
    return out
