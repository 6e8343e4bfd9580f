"""The label factory: seeds -> GAN images with labels and uncertainty, on disk, filtered.

Layout of an output folder:

    shards/shard_000000/   one folder per `shard_size` consecutive seeds, renamed into place whole:
        seed000000.png         the image (at label resolution)
        seed000000_label.png   uint8 class indices (segmentation)
        seed000000_js.npy      float16 (H, W) per-pixel JS divergence of the ensemble (segmentation)
        samples.json           per seed: z, image uncertainty score, and keypoints [[x, y, visible], ...]
                               in label pixels (a keypoint labeler, or a keypointer beside a segmentation one)
    index.json              written once every shard exists: the kept seeds after dropping the
                            `filter_ratio` most uncertain images (datasources.synthetic.filter_uncertain),
                            with the settings and the class names and/or keypoint names
    coco.json               with --format coco: the kept samples as COCO, one RLE mask per class
    source.json             what draws and labels the samples: the truncation and whatever the caller names
                            (the generator's and interpreter's file digests); a folder begun by another source
                            is refused rather than resumed with a mix

An interrupted run resumes: finished shards are never redone, a half-written one is redone, and so
is a shorter last shard of a run with fewer samples.
Under torchrun each rank writes the shards i with i % WORLD_SIZE == RANK.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from datasetgan.backbone import Backbone, Synthesized
from datasources.base import ClassSet, DatasetFormatError
from datasources.coco import to_coco
from datasources.files import atomic_write, read_gray, read_json
from datasources.synthetic import filter_uncertain, shard_file

# A labeler maps generated samples to (labels int64 (B, H, W), js float (B, H, W), score float (B,)), higher
# scores less certain; a keypoint labeler to (keypoints float (B, K, 3) (x, y, visible) in label pixels, None, score).
Labeler = Callable[[Synthesized], tuple[Tensor, Tensor | None, Tensor]]


@dataclass(frozen=True)
class FactorySettings:
    """What to generate and how to filter it."""

    num: int
    first_seed: int = 0
    shard_size: int = 100
    batch: int = 4
    filter_ratio: float = 0.1   # fraction of the most uncertain images left out of index.json
    filter_rule: str = "paper"  # datasources.synthetic.filter_uncertain: "paper" or the official script's "official"
    coco: bool = False


def image_at_label_grid(image: Tensor, size: tuple[int, int], crop_rows: tuple[int, int] | None = None) -> Tensor:
    """image: float (B, 3, R, R) in [-1, 1] -> uint8 (B, H, W, 3): resized to the square label
    resolution when it differs (area averaging), then cropped to rows [r0, r1) when asked (car 64:448)."""
    side = size[1]
    if image.shape[-1] != side:
        image = F.interpolate(image, size=(side, side), mode="area")
    if crop_rows is not None:
        image = image[:, :, crop_rows[0]:crop_rows[1]]
    return ((image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1)


def generate(backbone: Backbone, labeler: Labeler, classes: ClassSet | tuple[str, ...], out: Path,
             settings: FactorySettings, label_size: tuple[int, int], crop_rows: tuple[int, int] | None = None,
             rank: int = 0, world: int = 1, keypointer: Labeler | None = None,
             keypoint_names: tuple[str, ...] = (), source: dict | None = None) -> dict | None:
    """Write this rank's shards, then (if every shard exists) index.json and coco.json. `classes`: the class
    set of a segmentation labeler, or the keypoint names of a keypoint labeler. keypointer: a keypoint labeler
    on the same generator and label grid whose keypoints (named keypoint_names) every sample of a segmentation
    labeler records too. source: JSON-able facts that name the generator and labelers (e.g. file digests),
    recorded with the truncation in source.json; resuming a folder whose source.json differs raises
    DatasetFormatError. Returns the index when it was written."""
    out = Path(out)
    _claim(out, {"truncation": asdict(backbone.truncation), **(source or {})})
    if settings.coco and not isinstance(classes, ClassSet):
        raise ValueError("COCO export is for segmentation labels; this labeler gives keypoints")
    if keypointer is not None and not (isinstance(classes, ClassSet) and keypoint_names):
        raise ValueError("a keypointer adds named keypoints to a segmentation labeler's samples")
    seeds = list(range(settings.first_seed, settings.first_seed + settings.num))
    shards = [seeds[i:i + settings.shard_size] for i in range(0, len(seeds), settings.shard_size)]
    ours = [i for i in range(len(shards)) if i % world == rank]
    mine = [i for i in ours if not _finished(out, i, len(shards[i]))]
    if len(mine) < len(ours):
        tqdm.write(f"resuming {out}: {len(ours) - len(mine)} of {len(ours)} shards already written", file=sys.stderr)
    bar = tqdm(total=sum(len(shards[i]) for i in mine), desc="labelled pairs", unit="pair", disable=not mine)
    for i in mine:
        tmp = out / "shards" / f".tmp-shard_{i:06d}"
        shutil.rmtree(tmp, ignore_errors=True)  # a half-written shard from an interrupted run
        tmp.mkdir(parents=True)
        records = {}
        for j in range(0, len(shards[i]), settings.batch):
            chunk = shards[i][j:j + settings.batch]
            sample = backbone.sample(chunk)
            labels, js, score = labeler(sample)
            keypoints = keypointer(sample)[0] if keypointer is not None else None
            images = image_at_label_grid(sample.image, label_size, crop_rows).cpu().numpy()
            for k, seed in enumerate(chunk):
                name = f"seed{seed:06d}"
                Image.fromarray(images[k]).save(tmp / f"{name}.png")
                records[str(seed)] = {"score": float(score[k]), "z": backbone.z([seed])[0].cpu().tolist()}
                if keypoints is not None:
                    records[str(seed)]["keypoints"] = keypoints[k].cpu().tolist()
                if js is None:
                    records[str(seed)]["keypoints"] = labels[k].cpu().tolist()
                    continue
                Image.fromarray(labels[k].cpu().numpy().astype(np.uint8)).save(tmp / f"{name}_label.png")
                np.save(tmp / f"{name}_js.npy", js[k].cpu().numpy().astype(np.float16))
            bar.update(len(chunk))
        (tmp / "samples.json").write_text(json.dumps(records))
        shutil.rmtree(_shard_dir(out, i), ignore_errors=True)  # a shorter last shard of a smaller run
        os.replace(tmp, _shard_dir(out, i))
    bar.close()
    if not all(_finished(out, i, len(shards[i])) for i in range(len(shards))):
        return None
    return _write_index(out, shards, classes, settings, keypoint_names if keypointer is not None else ())


def _claim(out: Path, source: dict) -> None:
    """Record `source` in out/source.json, or check it against the one there (a folder from before source.json
    was written is taken as it is)."""
    path = out / "source.json"
    if path.exists():
        theirs = read_json(path, "factory source record", ())
        if theirs != json.loads(json.dumps(source)):
            raise DatasetFormatError(out, f"a folder begun with {theirs}, not {source}: use a new folder (or delete "
                                          f"this one) rather than mix samples")
        return
    out.mkdir(parents=True, exist_ok=True)
    if any((out / "shards").glob("shard_*")):
        return   # written before source.json existed: nothing to check against, nothing claimed
    _atomic_text(path, json.dumps(source, indent=1))


def _shard_dir(out: Path, index: int) -> Path:
    return out / "shards" / f"shard_{index:06d}"


def _finished(out: Path, index: int, size: int) -> bool:
    """Shard `index` exists whole with at least `size` seeds (a run with fewer samples may end on a shorter one)."""
    samples = _shard_dir(out, index) / "samples.json"
    return samples.exists() and len(read_json(samples, "shard record", ())) >= size


def _write_index(out: Path, shards: list[list[int]], classes: ClassSet | tuple[str, ...],
                 settings: FactorySettings, keypoint_names: tuple[str, ...] = ()) -> dict:
    """Keep the images filter_uncertain keeps (filter_ratio, filter_rule) and record them."""
    scores = {}
    for i, seeds in enumerate(shards):
        samples = read_json(_shard_dir(out, i) / "samples.json", "shard record", ())
        scores.update({s: samples[str(s)]["score"] for s in seeds})
    kept, dropped = filter_uncertain(scores, settings.filter_ratio, settings.filter_rule)
    names = {"classes": list(classes.names)} if isinstance(classes, ClassSet) else {"keypoint_names": list(classes)}
    if keypoint_names:
        names["keypoint_names"] = list(keypoint_names)
    index = {"settings": asdict(settings), **names, "kept": kept, "dropped": dropped,
             "files": {str(s): shard_file(s, settings.first_seed, settings.shard_size) for s in kept}}
    _atomic_text(out / "index.json", json.dumps(index, indent=1))
    if settings.coco:
        images = {seed: (index["files"][str(seed)] + ".png",
                         read_gray(out / f"{index['files'][str(seed)]}_label.png", "label map")) for seed in index["kept"]}
        _atomic_text(out / "coco.json", json.dumps(to_coco(images, classes)))
    return index


def _atomic_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))
