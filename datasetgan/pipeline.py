"""From one interpreter config (configs/interpreter/*.yaml) to a trained Style Interpreter and a
labelled synthetic dataset: which generator, which class set, which annotations, which settings.

A config is a mapping with:
    generator:   {checkpoint: PATH}                         ours, a stylegan2-ada pickle or a rosinality .pt
                 {stylegan1: cat|car|face, checkpoint: PATH, avg_latent: PATH (optional)}
    classes:     a class-set name (datasets.classes.CLASS_SETS)
    annotations: {kind: inverted, latents: PATH.npy, labels: DIR}   w+ from `benchmark gan project` (the image
                      names in inversion.json beside the latents) and label PNGs of the same names in DIR
                 {kind: release, root: DIR, name: car-20|face-34|cat-16|...}   the DatasetGAN release (z codes)
                 {kind: masks|labelme, files: DIR, latents: PATH.npy, latent: z|ws}   one latent row per sorted file
    interpreter: InterpreterConfig fields to override (e.g. ensemble_size)
    checkpoint:  where the trained ensemble is written
Relative paths are taken from the project root.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from datasetgan.annotations import Annotation, check_labels, features_of, read_labelme, read_mask_png
from datasetgan.backbone import Backbone, Truncation
from datasetgan.interpreter import InterpreterConfig, load_ensemble, predict, save_ensemble, train_ensemble
from datasetgan.loaders import load_generator_any
from datasetgan.stylegan1 import STYLEGAN1_PRESETS, load_stylegan1
from datasets.base import ClassSet, DatasetFormatError
from datasets.classes import CLASS_SETS
from datasets.files import list_files, read_npy

ROOT = Path(__file__).resolve().parents[1]


def project_path(path: str | Path) -> Path:
    """A config path: absolute as given, relative ones from the project root."""
    path = Path(path)
    return path if path.is_absolute() else ROOT / path


def _require(spec: dict, key: str, where: str):
    if key not in spec:
        raise DatasetFormatError(where, f"a '{key}' entry")
    return spec[key]


def load_backbone(spec: dict, device: str = "cpu") -> tuple[Backbone, int, tuple[int, int] | None]:
    """The generator of a config's `generator` entry -> (backbone, label resolution, crop rows)."""
    checkpoint = project_path(_require(spec, "checkpoint", "generator"))
    if "stylegan1" in spec:
        preset = STYLEGAN1_PRESETS[spec["stylegan1"]]
        avg = read_npy(project_path(spec["avg_latent"]), "mean w") if "avg_latent" in spec else None
        generator = load_stylegan1(checkpoint, preset, avg)
        backbone = Backbone(generator, Truncation(preset.truncation_psi, preset.truncation_cutoff), device)
        return backbone, preset.label_resolution, preset.crop_rows
    if not checkpoint.is_file():
        raise DatasetFormatError(checkpoint, "a generator checkpoint")
    backbone = Backbone(load_generator_any(checkpoint), device=device)
    return backbone, backbone.resolution, None


def class_set(name: str) -> ClassSet:
    if name not in CLASS_SETS:
        raise KeyError(f"unknown class set {name!r}; valid: {', '.join(CLASS_SETS)}")
    return CLASS_SETS[name]


def load_annotations(spec: dict, classes: ClassSet, size: tuple[int, int]) -> list[Annotation]:
    """The annotated latents of a config's `annotations` entry; labels checked against `size` (H, W)."""
    kind = _require(spec, "kind", "annotations")
    if kind == "inverted":
        latents = project_path(_require(spec, "latents", "annotations"))
        names = json.loads((latents.parent / "inversion.json").read_text())["images"]
        ws = torch.from_numpy(read_npy(latents, "inverted w+ latents")).float()
        if len(ws) != len(names):
            raise DatasetFormatError(latents, f"{len(names)} latents, one per image of inversion.json")
        folder = project_path(_require(spec, "labels", "annotations"))
        return [Annotation(check_labels(read_mask_png(folder / name, classes), size, classes, str(folder / name)),
                           str(folder / name), ws=w) for name, w in zip(names, ws)]
    if kind == "release":
        from datasets.datasetgan_release import RELEASES, ReleaseDataset

        release = RELEASES[_require(spec, "name", "annotations")]
        data = ReleaseDataset(project_path(_require(spec, "root", "annotations")), "train", release=release)
        return [Annotation(check_labels(s.labels, size, classes, s.meta["label_path"]), s.meta["label_path"],
                           z=np.asarray(s.meta["latent"], np.float32)) for s in data]
    if kind in ("masks", "labelme"):
        folder = project_path(_require(spec, "files", "annotations"))
        files = list_files(folder, (".png",) if kind == "masks" else (".json",), f"{kind} annotations")
        latents = read_npy(project_path(_require(spec, "latents", "annotations")), "latents")
        if len(latents) != len(files):
            raise DatasetFormatError(folder, f"one latent row per annotation file ({len(files)} files, "
                                             f"{len(latents)} latents)")
        read = read_mask_png if kind == "masks" else read_labelme
        as_ws = spec.get("latent", "z") == "ws"
        return [Annotation(check_labels(read(f, classes), size, classes, str(f)), str(f),
                           ws=torch.from_numpy(v).float() if as_ws else None, z=None if as_ws else v.astype(np.float32))
                for f, v in zip(files, latents)]
    raise DatasetFormatError("annotations", f"kind one of inverted, release, masks, labelme; got {kind!r}")


def interpreter_config(config: dict, backbone: Backbone, resolution: int, crop_rows, classes: ClassSet) -> InterpreterConfig:
    """InterpreterConfig for this backbone's feature layout and label grid, with the config's overrides."""
    probe = backbone.sample([0]).features
    return InterpreterConfig(num_classes=len(classes), feature_channels=tuple(f.shape[1] for f in probe),
                             resolution=resolution, crop_rows=tuple(crop_rows) if crop_rows else None,
                             **config.get("interpreter", {}))


def train_from_config(config: dict, device: str = "cpu") -> Path:
    """Train the ensemble a config describes and write it to the config's `checkpoint`; returns that path."""
    backbone, resolution, crop_rows = load_backbone(_require(config, "generator", "config"), device)
    classes = class_set(_require(config, "classes", "config"))
    cfg = interpreter_config(config, backbone, resolution, crop_rows, classes)
    annotations = load_annotations(_require(config, "annotations", "config"), classes, cfg.grid.shape)
    ensemble = train_ensemble(features_of(backbone, annotations), [torch.from_numpy(a.labels) for a in annotations],
                              cfg, device)
    out = project_path(_require(config, "checkpoint", "config"))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_ensemble(out, ensemble, cfg)
    return out


def labeler_from_config(config: dict, device: str = "cpu"):
    """(backbone, labeler, classes, label size, crop rows) for the factory, from a config and its trained ensemble."""
    backbone, _, crop_rows = load_backbone(_require(config, "generator", "config"), device)
    ensemble, cfg = load_ensemble(project_path(_require(config, "checkpoint", "config")), device)

    def labeler(sample):
        p = predict(ensemble, sample.features, cfg)
        return p.labels, p.js, p.score

    return backbone, labeler, class_set(config["classes"]), cfg.grid.shape, cfg.crop_rows


def evaluate_by_inversion(config: dict, dataset, count: int, steps: int, device: str = "cpu") -> dict:
    """How well the trained interpreter labels held-out real images: invert the first `count` items of a
    labelled dataset, label the inverted latents' features, and score against the exact labels (mIoU
    over the set, official convention). Returns plain data for a run record."""
    from benchmark.metrics import confusion, iou_per_class, mean_iou
    from datasetgan.inversion import InversionSettings, invert

    backbone, labeler, classes, size, _ = labeler_from_config(config, device)
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    images = torch.from_numpy(np.stack([s.image for s in items])).permute(0, 3, 1, 2).float() / 127.5 - 1
    settings = InversionSettings(steps=steps)
    inverted = invert(backbone, images, settings)
    with torch.no_grad():
        labels = labeler(backbone.synthesize(inverted.ws))[0].cpu().numpy()
    matrix = sum(confusion(p, s.labels, len(classes)) for p, s in zip(labels, items))
    iou = iou_per_class(matrix)
    return {"images": len(items), "inversion": {**vars(settings), "mean_mse": float(inverted.mse.mean()),
                                                 "mean_psnr": float(inverted.psnr.mean())},
            "miou_official": mean_iou(matrix), "miou_mmseg": mean_iou(matrix, "mmseg"),
            "iou_per_class": {name: (None if np.isnan(v) else float(v)) for name, v in zip(classes.names, iou)},
            "confusion": matrix.tolist()}
