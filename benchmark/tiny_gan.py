"""A stand-in for the shipped toy GAN and interpreter, made in seconds inside a run (the quick
profile and tests): an untrained tiny StyleGAN2, the human-labelled toy images inverted into it,
and a small interpreter trained on them through datasetgan.pipeline. It exercises every step of the
DatasetGAN variant; its figures say nothing about the method.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from datasetgan.backbone import Backbone
from datasetgan.gan_training import save_generator
from datasetgan.inversion import InversionSettings, invert
from datasetgan.stylegan2 import Generator, GeneratorConfig
from datasets.toy import ToyDataset


@dataclass(frozen=True)
class TinyGANSettings:
    """Sizes of the stand-in generator and interpreter."""

    width: int = 16              # channels of every synthesis block and of w
    inversion_steps: int = 20
    ensemble_size: int = 2
    max_epochs: int = 2
    pixels_per_image: int = 256
    seed: int = 0


def interpreter_config(labelled: ToyDataset, count: int, resolution: int, settings: TinyGANSettings,
                       folder: Path) -> dict:
    """Write the generator, the inverted latents of the first `count` labelled images and return an
    interpreter config (datasetgan.pipeline format) naming them and folder/interpreter.pt."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    cfg = GeneratorConfig(z_dim=settings.width, w_dim=settings.width, resolution=resolution,
                          channel_base=settings.width * resolution, channel_max=settings.width, mapping_layers=2)
    generator = Generator(cfg)
    save_generator(generator, folder / "generator.pt")
    names = [f"{i}.png" for i in labelled.ids[:count]]
    latents = folder / "latents.npy"
    if not latents.exists():
        images = torch.from_numpy(np.stack([labelled[i].image for i in range(count)])).permute(0, 3, 1, 2)
        inversion = InversionSettings(steps=settings.inversion_steps, mean_samples=64)
        result = invert(Backbone(generator), images.float() / 127.5 - 1, inversion, progress=False)
        (folder / "inversion.json").write_text(json.dumps({"images": names}))
        np.save(latents, result.ws.cpu().numpy())
    return {"generator": {"checkpoint": str(folder / "generator.pt")}, "classes": labelled.classes.name,
            "annotations": {"kind": "inverted", "latents": str(latents), "labels": str(labelled.root / "labels")},
            "interpreter": {"ensemble_size": settings.ensemble_size, "max_epochs": settings.max_epochs,
                            "pixels_per_image": settings.pixels_per_image},
            "checkpoint": str(folder / "interpreter.pt")}
