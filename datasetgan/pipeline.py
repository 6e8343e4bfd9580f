"""From one interpreter config (configs/interpreter/*.yaml) to a trained Style Interpreter and a
labelled synthetic dataset: which generator, which class set, which annotations, which settings.

A config is a mapping with:
    generator:   {checkpoint: PATH, truncation_psi: 0.7}    ours, a stylegan2-ada pickle or a rosinality .pt; the
                                                            factory samples at truncation_psi (the official 0.7)
                 {stylegan1: cat|car|face, checkpoint: PATH, avg_latent: PATH (optional)}
    classes:     a class-set name (datasources.classes.CLASS_SETS)
    keypoints:   keypoint mode (interpreter: {mode: keypoints}) instead of classes: a KEYPOINT_SETS name
    annotations: {kind: inverted, latents: PATH.npy, labels: DIR}   latents from `benchmark gan project` (the image
                      names and their noise seeds in inversion.json beside the latents) and label PNGs of the
                      same names in DIR;
                      in keypoint mode `keypoints: DIR` instead of labels: <image stem>.json files holding
                      {"keypoints": [[x, y, visible], ...]} in label pixels (the toy world's annotations/)
                 {kind: release, root: DIR, name: car-20|face-34|cat-16|...}   the DatasetGAN release (z codes)
                 {kind: masks|labelme, files: DIR, latents: PATH.npy, latent: z|ws}   one latent row per sorted file
    interpreter: InterpreterConfig fields to override (e.g. ensemble_size)
    checkpoint:  where the trained ensemble is written
Relative paths are taken from the project root.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import yaml

from datasetgan.annotations import Annotation, check_labels, features_of, read_labelme, read_mask_png
from datasetgan.backbone import Backbone, Truncation
from datasetgan.interpreter import (InterpreterConfig, load_ensemble, load_official_members, predict, save_ensemble,
                                   train_ensemble)
from datasetgan.loaders import load_generator_any
from datasetgan.stylegan1 import STYLEGAN1_PRESETS, load_stylegan1
from datasources.base import ClassSet, DatasetFormatError
from datasources.classes import CLASS_SETS, CUB_KEYPOINTS
from datasources.coco import read_coco
from datasources.files import file_digest, list_files, read_json, read_npy
from datasources.label_studio import read_label_studio
from datasources.toy import KEYPOINT_NAMES
from datasources.voc import read_voc

if TYPE_CHECKING:
    from datasetgan.inversion import InversionSettings

ROOT = Path(__file__).resolve().parents[1]
KEYPOINT_SETS = {"toy-car": KEYPOINT_NAMES, "cub": CUB_KEYPOINTS}
TRUNCATION_PSI = 0.7  # the official code's, for sampling the factory's latents
VISIBLE_PEAK = 0.5  # uncalibrated: a generated keypoint is visible when the mean heatmap peaks at least this high


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
        psi = float(spec.get("truncation_psi", preset.truncation_psi))
        backbone = Backbone(generator, Truncation(psi, preset.truncation_cutoff), device)
        return backbone, preset.label_resolution, preset.crop_rows
    if not checkpoint.is_file():
        raise DatasetFormatError(checkpoint, "a generator checkpoint")
    truncation = Truncation(float(spec.get("truncation_psi", TRUNCATION_PSI)))
    backbone = Backbone(load_generator_any(checkpoint), truncation, device=device)
    return backbone, backbone.resolution, None


def class_set(name: str) -> ClassSet:
    if name not in CLASS_SETS:
        raise KeyError(f"unknown class set {name!r}; valid: {', '.join(CLASS_SETS)}")
    return CLASS_SETS[name]


def targets(config: dict) -> ClassSet | tuple[str, ...]:
    """What a config's interpreter predicts: its class set, or in keypoint mode its keypoint names."""
    if (config.get("interpreter") or {}).get("mode") != "keypoints":
        return class_set(_require(config, "classes", "config"))
    name = _require(config, "keypoints", "config (keypoint mode)")
    if name not in KEYPOINT_SETS:
        raise KeyError(f"unknown keypoint set {name!r}; valid: {', '.join(KEYPOINT_SETS)}")
    return KEYPOINT_SETS[name]


def _read_keypoints(path: Path, count: int) -> np.ndarray:
    """float32 (K, 3) (x, y, visible) from a JSON file's "keypoints", K = count."""
    data = read_json(path, "keypoint annotation", ("keypoints",))
    try:
        keypoints = np.asarray(data["keypoints"], np.float32)
    except (TypeError, ValueError) as e:
        raise DatasetFormatError(path, f"JSON with \"keypoints\": [[x, y, visible], ...] ({e})") from None
    if keypoints.shape != (count, 3):
        raise DatasetFormatError(path, f"{count} keypoints of (x, y, visible), got shape {keypoints.shape}")
    return keypoints


def load_annotations(spec: dict, classes: ClassSet | tuple[str, ...], size: tuple[int, int]) -> list[Annotation]:
    """The annotated latents of a config's `annotations` entry; labels checked against `size` (H, W).
    classes: the class set, or the keypoint names in keypoint mode (inverted annotations only)."""
    kind = _require(spec, "kind", "annotations")
    if kind == "inverted":
        latents = project_path(_require(spec, "latents", "annotations"))
        inversion = read_json(latents.parent / "inversion.json", "inversion record (written beside the latents by "
                              "`benchmark gan project`)", ("images",))
        names = inversion["images"]
        seeds = inversion.get("noise_seeds") or [None] * len(names)   # None: inverted under the constant noise
        ws = torch.from_numpy(read_npy(latents, "inverted w+ latents")).float()
        if len(ws) != len(names):
            raise DatasetFormatError(latents, f"{len(names)} latents, one per image of inversion.json")
        if not isinstance(classes, ClassSet):
            folder = project_path(_require(spec, "keypoints", "annotations (keypoint mode)"))
            return [Annotation(_read_keypoints(folder / f"{Path(name).stem}.json", len(classes)),
                               str(folder / f"{Path(name).stem}.json"), ws=w, noise_seed=seed)
                    for name, w, seed in zip(names, ws, seeds)]
        where = project_path(_require(spec, "labels", "annotations"))
        masks = _annotation_masks(where, names, classes, latents.parent / "inversion.json",
                                  strict=bool(inversion.get("prepared")))
        return [Annotation(check_labels(masks[Path(name).stem], size, classes, f"{where}: {name}"), f"{where}: {name}",
                           ws=w, noise_seed=seed) for name, w, seed in zip(names, ws, seeds)]
    if kind == "release":
        from datasources.datasetgan_release import RELEASES, ReleaseDataset

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
    if not isinstance(classes, ClassSet):
        raise DatasetFormatError("annotations", f"kind inverted in keypoint mode; got {kind!r}")
    raise DatasetFormatError("annotations", f"kind one of inverted, release, masks, labelme; got {kind!r}")


def _annotation_masks(where: Path, names: list[str], classes: ClassSet, index: Path,
                      strict: bool) -> dict[str, np.ndarray]:
    """image stem -> labels int64 (H, W) of every image `names` lists, from a COCO file (`.json`, e.g. CVAT's "COCO
    1.0" export), a Label Studio JSON export of brush labels (`.json`, a list of tasks), a Segmentation-mask folder
    (labelmap.txt and SegmentationClass/, CVAT's "Segmentation mask 1.1"), or a folder of mask PNGs named as the
    images (class indices or the class set's palette colours). A named image without a mask fails naming the file;
    so does, when `strict` (a set `annotate prepare` wrote), a mask of an image `index` does not name (elsewhere the
    masks may cover more images than were inverted)."""
    wanted = {Path(name).stem for name in names}
    if where.suffix == ".json":
        read = read_label_studio if isinstance(read_json(where, "annotation file"), list) else read_coco
        masks = {Path(name).stem: labels for name, labels in read(where, classes).items()}
    elif (where / "labelmap.txt").is_file():
        masks = read_voc(where, classes)
    else:
        files = list_files(where, (".png",), "annotation masks")
        strays = [p for p in files if p.stem not in wanted]
        if strays and strict:
            raise DatasetFormatError(strays[0], f"a mask of an image {index} names ({len(strays)} such in {where})")
        missing = sorted(wanted - {p.stem for p in files})
        if missing:
            raise DatasetFormatError(where / f"{missing[0]}.png", f"missing mask PNG ({len(missing)} missing)")
        masks = {p.stem: read_mask_png(p, classes) for p in files if p.stem in wanted}
    strays, missing = sorted(set(masks) - wanted) if strict else [], sorted(wanted - set(masks))
    if strays or missing:
        what = f"a mask of {strays[0]}, an image {index} does not name" if strays else f"a mask of {missing[0]}"
        raise DatasetFormatError(where, f"{what} ({len(strays)} extra, {len(missing)} missing)")
    return masks


def interpreter_config(config: dict, backbone: Backbone, resolution: int, crop_rows,
                       classes: ClassSet | tuple[str, ...]) -> InterpreterConfig:
    """InterpreterConfig for this backbone's feature layout and label grid (one output per class or keypoint),
    with the config's overrides."""
    probe = backbone.sample([0]).features
    return InterpreterConfig(num_classes=len(classes), feature_channels=tuple(f.shape[1] for f in probe),
                             resolution=resolution, crop_rows=tuple(crop_rows) if crop_rows else None,
                             **config.get("interpreter", {}))


def check_interpreter_settings(config: dict) -> None:
    """The config's `interpreter` overrides checked against InterpreterConfig (names and values, e.g. a negative
    small-class rule), before anything is loaded or trained."""
    try:
        InterpreterConfig(num_classes=2, feature_channels=(1,), resolution=8, **(config.get("interpreter") or {}))
    except (TypeError, ValueError) as e:
        raise DatasetFormatError("interpreter config's 'interpreter' entry", f"valid settings ({e})") from None


def train_from_config(config: dict, device: str = "cpu") -> Path:
    """Train the ensemble a config describes and write it to the config's `checkpoint`; returns that path."""
    check_interpreter_settings(config)
    backbone, resolution, crop_rows = load_backbone(_require(config, "generator", "config"), device)
    classes = targets(config)
    cfg = interpreter_config(config, backbone, resolution, crop_rows, classes)
    annotations = load_annotations(_require(config, "annotations", "config"), classes, cfg.grid.shape)
    ensemble = train_ensemble(features_of(backbone, annotations), [torch.from_numpy(a.labels) for a in annotations],
                              cfg, device)
    if cfg.mode == "keypoints":
        cfg = replace(cfg, visible_peaks=calibrate_visibility(ensemble, cfg, backbone, annotations))
    out = project_path(_require(config, "checkpoint", "config"))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_ensemble(out, ensemble, cfg)
    return out


def prepare_annotation(generator: dict, classes: str, seeds: list[int], out: Path, device: str = "cpu") -> Path:
    """Everything needed to annotate GAN samples of one's own generator: out/images/seed{S}.png (the samples of
    `seeds` at the label grid, as the factory draws them: truncated z, each seed's own noise), out/latents.npy
    (their w+, float32 (N, num_ws, w_dim)) and out/inversion.json (image names and noise seeds, the layout `gan
    project` writes, so the annotations' kind is `inverted`), an empty out/labels/ for one mask PNG per image
    (class indices, or the class set's palette colours; same names), and out/config.yaml, an interpreter config
    naming them all; returns the config's path."""
    from PIL import Image

    from datasetgan.factory import image_at_label_grid

    class_set(classes)   # an unknown name fails here, before anything is written
    backbone, resolution, crop_rows = load_backbone(generator, device)
    size = (crop_rows[1] - crop_rows[0], resolution) if crop_rows else (resolution, resolution)
    with torch.no_grad():
        ws = backbone.ws(backbone.z(seeds))
    images = image_at_label_grid(backbone.synthesize(ws, seeds=seeds).image, size, crop_rows).cpu().numpy()
    for sub in ("images", "labels"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    names = [f"seed{seed:06d}.png" for seed in seeds]
    for name, image in zip(names, images):
        Image.fromarray(image).save(out / "images" / name)
    np.save(out / "latents.npy", ws.cpu().numpy().astype(np.float32))
    (out / "inversion.json").write_text(json.dumps({"checkpoint": str(generator["checkpoint"]), "prepared": True,
                                                    "images": names, "noise_seeds": seeds}, indent=1))
    config = {"generator": generator, "classes": classes,
              "annotations": {"kind": "inverted", "latents": str(out / "latents.npy"), "labels": str(out / "labels")},
              "interpreter": {}, "checkpoint": str(out / "interpreter.pt")}
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return out / "config.yaml"


def import_official_from_config(config: dict, folder: Path, device: str = "cpu") -> Path:
    """Bring the official code's trained members (folder/model_{i}.pth) under a config: its generator, classes and
    `interpreter` settings give the ensemble's layout; written to the config's `checkpoint`, which it returns."""
    check_interpreter_settings(config)
    backbone, resolution, crop_rows = load_backbone(_require(config, "generator", "config"), device)
    cfg = interpreter_config(config, backbone, resolution, crop_rows, targets(config))
    out = project_path(_require(config, "checkpoint", "config"))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_ensemble(out, load_official_members(folder, cfg), cfg)
    return out


def labeler_from_config(config: dict, device: str = "cpu"):
    """(backbone, labeler, classes, label size, crop rows) for the factory, from a config and its trained ensemble.
    In keypoint mode `classes` is the keypoint names and the labeler gives keypoints (see keypoint_labels)."""
    backbone, _, crop_rows = load_backbone(_require(config, "generator", "config"), device)
    ensemble, cfg = load_ensemble(project_path(_require(config, "checkpoint", "config")), device)

    def labeler(sample):
        p = predict(ensemble, sample.features, cfg)
        return keypoint_labels(p, cfg.visible_peaks) if cfg.mode == "keypoints" else (p.labels, p.js, p.score)

    return backbone, labeler, targets(config), cfg.grid.shape, cfg.crop_rows


def factory_source(*configs: dict) -> dict:
    """What the label factory records as the source of a synthetic folder labelled by these interpreter configs
    (the part interpreter's, then a keypoint interpreter's on the same generator): file digests of the generator
    and of each trained interpreter."""
    return {"generator": file_digest(project_path(configs[0]["generator"]["checkpoint"])),
            "interpreters": [file_digest(project_path(c["checkpoint"])) for c in configs]}


def keypoint_labels(prediction, visible_peaks: tuple[float, ...] | None = None) -> tuple[torch.Tensor, None, torch.Tensor]:
    """A keypoint-mode Prediction -> (keypoints float (B, K, 3) (x, y, visible), None, score float (B,)):
    keypoint k is visible where the mean heatmap peaks at visible_peaks[k] or more (VISIBLE_PEAK when not
    calibrated); the image's uncertainty score (ours, the paper defines none for keypoints) is 1 minus its
    mean peak clipped to [0, 1]: weak peaks, unsure labels."""
    thresholds = torch.tensor(visible_peaks if visible_peaks is not None else [VISIBLE_PEAK], dtype=torch.float32,
                              device=prediction.peaks.device)
    visible = (prediction.peaks >= thresholds).float()
    score = 1 - prediction.peaks.clamp(0, 1).mean(1)
    return torch.cat([prediction.keypoints, visible[..., None]], -1), None, score


def calibrate_visibility(ensemble, cfg: InterpreterConfig, backbone: Backbone, annotations: list[Annotation],
                         batch: int = 32) -> tuple[float, ...]:
    """Per keypoint, the heatmap peak above which generated samples show it as often as the annotated images do:
    the (1 - rate) quantile of its peaks over seeds 0..calibration_samples-1. Why: the ensemble learns on the
    annotated latents (inverted w+ for the toy world), whose features can sit off the generator's own
    distribution, and its peaks on samples then fall far below 1 while their locations stay sound; a fixed
    threshold would then mark nearly every generated keypoint hidden. Assumes the generator shows each
    keypoint about as often as the annotated images do."""
    rates = torch.tensor(np.stack([a.labels[:, 2] > 0 for a in annotations]).mean(0), dtype=torch.float32)
    peaks = []
    for start in range(0, cfg.calibration_samples, batch):
        seeds = list(range(start, min(start + batch, cfg.calibration_samples)))
        peaks.append(predict(ensemble, backbone.sample(seeds).features, cfg).peaks.float().cpu())
    peaks = torch.cat(peaks)
    thresholds = [float(torch.quantile(peaks[:, k], 1 - float(rate))) if rate > 0 else float("inf")
                  for k, rate in enumerate(rates)]
    return tuple(thresholds)


def evaluate_by_inversion(config: dict, dataset, count: int, settings: InversionSettings, device: str = "cpu") -> dict:
    """How well the trained interpreter labels held-out real images: invert the first `count` items of a
    labelled dataset into W, each under its own seeded noise (image i: seed i), as the annotations are, label
    the inverted latents' features, and score against the exact labels (mIoU over the set, official
    convention). settings: those the annotations were inverted with.
    Returns plain data for a run record."""
    from benchmark.metrics import confusion, iou_per_class, mean_iou
    from datasetgan.inversion import invert

    backbone, labeler, classes, size, _ = labeler_from_config(config, device)
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    images = torch.from_numpy(np.stack([s.image for s in items])).permute(0, 3, 1, 2).float() / 127.5 - 1
    inverted = invert(backbone, images, settings, noise_seeds=list(range(len(items))))
    with torch.no_grad():
        labels = labeler(backbone.synthesize(inverted.ws, seeds=inverted.noise_seeds))[0].cpu().numpy()
    matrix = sum(confusion(p, s.labels, len(classes)) for p, s in zip(labels, items))
    iou = iou_per_class(matrix)
    return {"images": len(items), "inversion": {**vars(settings), "mean_mse": float(inverted.mse.mean()),
                                                 "mean_psnr": float(inverted.psnr.mean())},
            "miou_official": mean_iou(matrix), "miou_mmseg": mean_iou(matrix, "mmseg"),
            "iou_per_class": {name: (None if np.isnan(v) else float(v)) for name, v in zip(classes.names, iou)},
            "confusion": matrix.tolist()}
