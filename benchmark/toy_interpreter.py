"""The DatasetGAN variant's Style Interpreter on the toy world, made inside the run: the human-labelled
toy images (the same ones every few-label variant gets) are inverted into the generator, and an
ensemble is trained on them through datasetgan.pipeline, for part labels or for keypoints.

The generator is the shipped toy GAN, or with `generator: tiny` an untrained tiny StyleGAN2 built in
a second (the quick profile and tests: its figures check the plumbing, not the method).

Everything is written once under one folder of the run's work and reused by every suite, test set
and ablation that asks for the same thing: the stand-in generator, each inversion (keyed by the
generator's bytes, the images and the inversion settings) and each trained interpreter (keyed by its
whole config).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark.configs import ConfigError
from benchmark.sources import short_hash
from datasources.files import atomic_write, file_digest
from datasources.toy import ToyDataset


@dataclass(frozen=True)
class ToyInterpreterSettings:
    """Which generator the labelled toy images are inverted into, and how the ensemble is trained."""

    generator: str = "checkpoints/toy-car-gan.pt"  # or "tiny": an untrained stand-in made in the run
    tiny_width: int = 16               # the stand-in's channels (every block) and w size
    inversion_steps: int = 300
    inversion_starts: int = 1          # datasetgan.inversion.InversionSettings.starts
    mean_samples: int = 2000           # z samples averaged for the inversion's starting w
    ensemble_size: int = 10
    max_epochs: int = 100
    pixels_per_image: int | None = 8192
    class_weighting: str = "none"      # or "inverse_sqrt_frequency" (datasetgan.interpreter.InterpreterConfig)
    calibration_samples: int = 256     # keypoint mode: generated samples that calibrate keypoint visibility
    seed: int = 0


def generator_file(settings: ToyInterpreterSettings, resolution: int, folder: Path) -> Path:
    """The generator checkpoint: the configured file, or the stand-in written once under folder."""
    from datasetgan.pipeline import project_path

    if settings.generator != "tiny":
        path = project_path(settings.generator)
        if not path.is_file():
            raise ConfigError(f"datasetgan.toy_interpreter.generator: no such file {path}")
        return path
    from datasetgan.gan_training import save_generator
    from datasetgan.stylegan2 import Generator, GeneratorConfig

    w = settings.tiny_width
    path = Path(folder) / f"tiny-gan-{w}w-{resolution}px-seed{settings.seed}.pt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(settings.seed)
        save_generator(Generator(GeneratorConfig(z_dim=w, w_dim=w, resolution=resolution, channel_base=w * resolution,
                                                 channel_max=w, mapping_layers=2)), path)
    return path


def invert_labelled(generator: Path, labelled: ToyDataset, indices: list[int], settings: ToyInterpreterSettings,
                    folder: Path) -> Path:
    """Invert the labelled images at `indices` into the generator's W, image i under the noise of seed i (the
    factory's noise mode), and return their latents file, with inversion.json beside it naming the images and
    their noise seeds (datasetgan.pipeline's `inverted` annotations). Each image is inverted once (its latent
    cached alone; inversion optimises every image independently), so sets that share images (the ablations'
    selections) share the work."""
    from datasetgan.backbone import Backbone
    from datasetgan.inversion import InversionSettings, invert
    from datasetgan.loaders import load_generator_any

    inversion = InversionSettings(steps=settings.inversion_steps, mean_samples=settings.mean_samples,
                                  starts=settings.inversion_starts)
    cache = Path(folder) / f"inverted-{short_hash([file_digest(generator), labelled.root.name, vars(inversion)])}"
    ids = [labelled.ids[i] for i in indices]
    missing = [i for i, name in zip(indices, ids) if not (cache / f"{name}.npy").exists()]
    if missing:
        backbone = Backbone(load_generator_any(generator))
        images = np.stack([labelled[i].image for i in missing])
        if images.shape[1] != backbone.resolution:
            raise ConfigError(f"toy.resolution {images.shape[1]} differs from the generator's {backbone.resolution} "
                              f"({generator}); the labelled images are inverted into it")
        result = invert(backbone, torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1, inversion,
                        noise_seeds=missing)
        cache.mkdir(parents=True, exist_ok=True)
        for i, ws in zip(missing, result.ws.cpu().numpy()):
            atomic_write(cache / f"{labelled.ids[i]}.npy", lambda tmp, ws=ws: np.save(tmp, ws))
    latents = cache / f"set-{short_hash(ids)}" / "latents.npy"
    if not latents.exists():
        latents.parent.mkdir(parents=True, exist_ok=True)
        (latents.parent / "inversion.json").write_text(json.dumps({"images": [f"{name}.png" for name in ids],
                                                                   "noise_seeds": list(indices)}))
        atomic_write(latents, lambda tmp: np.save(tmp, np.stack([np.load(cache / f"{name}.npy") for name in ids])))
    return latents


def interpreter_config(labelled: ToyDataset, indices: list[int], settings: ToyInterpreterSettings, folder: Path,
                       mode: str = "segmentation") -> dict:
    """A datasetgan.pipeline config for an interpreter trained on the labelled toy images at `indices` (their
    part labels, or their keypoints in keypoint mode), its generator and latents written under folder."""
    generator = generator_file(settings, labelled[0].image.shape[0], folder)
    latents = invert_labelled(generator, labelled, indices, settings, folder)
    if mode == "keypoints":
        targets = {"keypoints": "toy-car"}
        annotations = {"kind": "inverted", "latents": str(latents), "keypoints": str(labelled.root / "annotations")}
    else:
        targets = {"classes": labelled.classes.name}
        annotations = {"kind": "inverted", "latents": str(latents), "labels": str(labelled.root / "labels")}
    interpreter = {"mode": mode, "ensemble_size": settings.ensemble_size, "max_epochs": settings.max_epochs,
                   "pixels_per_image": settings.pixels_per_image, "seed": settings.seed,
                   **({"class_weighting": settings.class_weighting} if mode == "segmentation" else {}),
                   **({"calibration_samples": settings.calibration_samples} if mode == "keypoints" else {})}
    config = {"generator": {"checkpoint": str(generator)}, **targets, "annotations": annotations,
              "interpreter": interpreter}
    key = short_hash([file_digest(generator), file_digest(latents), config])
    return {**config, "checkpoint": str(Path(folder) / f"interpreter-{mode}-{key}.pt")}


def trained(config: dict, device: str) -> dict:
    """Train the interpreter a config describes unless its checkpoint exists; returns the config."""
    from datasetgan.pipeline import train_from_config

    if not Path(config["checkpoint"]).exists():
        train_from_config(config, device)
    return config
