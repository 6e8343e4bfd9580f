"""Pascal-VOC-style segmentation folders in CVAT's "Segmentation mask 1.1" layout, written and read back.

    labelmap.txt                     "# label:color_rgb:parts:actions", then one `name:r,g,b::` line per class
    ImageSets/Segmentation/default.txt   the sample names, without extension
    JPEGImages/<name>.png            the images (PNG: generated pixels are kept exactly)
    SegmentationClass/<name>.png     RGB masks, each pixel the colour of its class in labelmap.txt

CVAT imports the labelmap and masks of such a folder (zipped) as "Segmentation mask 1.1"; its colour-coded
masks hold no ignore value, so pixels labelled 255 are written as background.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from datasources.base import IGNORE, ClassSet, DatasetFormatError, PartDataset, sample_name
from datasources.files import atomic_write, list_files, read_rgb, read_text

LABELMAP_HEADER = "# label:color_rgb:parts:actions"


def write_voc(dataset: PartDataset, out: Path) -> Path:
    """Write every sample of `dataset` (images and label maps) to `out` in the layout above; returns `out`. A sample
    is named by `sample_name`."""
    classes = dataset.classes
    if len(set(classes.palette)) != len(classes.palette):
        raise ValueError(f"{classes.name}: two classes share a colour; a colour-coded mask could not tell them apart")
    out = Path(out)
    for sub in ("ImageSets/Segmentation", "JPEGImages", "SegmentationClass"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    palette = np.array(classes.palette, np.uint8)
    names = []
    for i in tqdm(range(len(dataset)), desc="voc export", unit="img"):
        sample = dataset[i]
        stem = sample_name(sample, i)
        labels = np.where(sample.labels == IGNORE, 0, sample.labels)
        atomic_write(out / "JPEGImages" / f"{stem}.png", lambda tmp: Image.fromarray(sample.image).save(tmp, "PNG"))
        atomic_write(out / "SegmentationClass" / f"{stem}.png",
                     lambda tmp: Image.fromarray(palette[labels]).save(tmp, "PNG"))
        names.append(stem)
    lines = [LABELMAP_HEADER] + [f"{n}:{','.join(map(str, c))}::" for n, c in zip(classes.names, classes.palette)]
    atomic_write(out / "labelmap.txt", lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    atomic_write(out / "ImageSets" / "Segmentation" / "default.txt", lambda tmp: tmp.write_text("\n".join(names) + "\n"))
    return out


def read_labelmap(path: Path) -> dict[tuple[int, int, int], str]:
    """labelmap.txt -> {colour: label name}, in file order (comment lines skipped)."""
    colours = {}
    for number, line in enumerate(read_text(path, "labelmap").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(":")
        try:
            colour = tuple(int(v) for v in fields[1].split(","))
            if len(colour) != 3 or not all(0 <= v <= 255 for v in colour):
                raise ValueError(colour)
        except (IndexError, ValueError):
            raise DatasetFormatError(path, f"line {number}: `name:r,g,b:parts:actions`, got {line!r}") from None
        colours[colour] = fields[0]
    return colours


def read_voc(root: Path, classes: ClassSet) -> dict[str, np.ndarray]:
    """A Segmentation-mask folder (ours, or a CVAT export) -> {stem: labels int64 (H, W)} in `classes`, whose names
    the labelmap's must be among; a mask colour missing from the labelmap fails naming the file."""
    root = Path(root)
    colours = read_labelmap(root / "labelmap.txt")
    unknown = sorted(set(colours.values()) - set(classes.names))
    if unknown:
        raise DatasetFormatError(root / "labelmap.txt", f"labels among {classes.name}'s classes, got {unknown}")
    codes = {(r << 16) | (g << 8) | b: classes.names.index(n) for (r, g, b), n in colours.items()}
    out = {}
    for path in list_files(root / "SegmentationClass", (".png",), "class masks"):
        rgb = read_rgb(path, "class mask").astype(np.int64)
        code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        found = np.unique(code)
        missing = [f"{c >> 16},{(c >> 8) & 255},{c & 255}" for c in found if c not in codes]
        if missing:
            raise DatasetFormatError(path, f"colours of labelmap.txt, got {', '.join(missing)}")
        lookup = np.array([codes[c] for c in found], np.int64)
        out[path.stem] = lookup[np.searchsorted(found, code)]
    return out
