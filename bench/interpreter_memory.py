"""Peak memory of training the Style Interpreter on 16 annotated images at the StyleGAN1 face setting (18 maps,
5088 channels, 1024-pixel maps, 512x512 labels, 34 classes), from random features of the real shapes made one image
at a time and random part-like labels. The official code needs about 160 GB for this (its README); the goal here
is at most 4 GB.

Peak memory is the process's peak resident size (VmHWM in /proc/self/status), also given above the resident size
before training (imports done). Figures measured on a shared machine: time is noisy, memory is not.
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from dataclasses import replace

import torch
import torch.nn.functional as F

from datasetgan.interpreter import InterpreterConfig, train_ensemble
from datasetgan.stylegan1 import STYLEGAN1_PRESETS
from procstatus import memory_mb

SETTING, CLASSES = "face", 34


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16, help="annotated images")
    parser.add_argument("--members", type=int, default=10, help="ensemble size")
    parser.add_argument("--max-epochs", type=int, help="epoch cap (default: InterpreterConfig's)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="one member, one epoch: the memory peak is the same")
    args = parser.parse_args()
    if args.quick:
        args.members, args.max_epochs = 1, 1
    return args


def features(count: int) -> Iterator[list[torch.Tensor]]:
    """Per image, per layer float (C_l, R_l, R_l) random features of the face setting's shapes, made on demand."""
    cfg = STYLEGAN1_PRESETS[SETTING].config
    for i in range(count):
        generator = torch.Generator().manual_seed(i)
        yield [torch.randn(cfg.channels(r), r, r, generator=generator)
               for r in cfg.block_resolutions for _ in range(2)]


def labels(count: int, size: int) -> list[torch.Tensor]:
    """int64 (size, size) label maps of 32 x 32-pixel blocks of random classes."""
    generator = torch.Generator().manual_seed(1000)
    blocks = torch.randint(0, CLASSES, (count, 1, size // 32, size // 32), generator=generator)
    return list(F.interpolate(blocks.float(), size=(size, size), mode="nearest")[:, 0].long())


def main() -> None:
    """Train on random data and print the peak resident memory and time."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    config = replace(InterpreterConfig.for_stylegan1(SETTING, CLASSES), ensemble_size=args.members)
    if args.max_epochs:
        config = replace(config, max_epochs=args.max_epochs)
    targets = labels(args.images, config.resolution)
    before = memory_mb("VmRSS")
    start = time.perf_counter()
    train_ensemble(features(args.images), targets, config)
    seconds = time.perf_counter() - start
    peak = memory_mb("VmHWM")
    print(f"{args.images} images, {sum(config.feature_channels)} channels, {config.grid.shape} labels, "
          f"{config.pixels_per_image} training pixels per image (+ class floors), {args.members} members, "
          f"max_epochs={config.max_epochs}, threads={args.threads}, load average {os.getloadavg()[0]:.2f}")
    print(f"peak resident memory {peak / 1024:.2f} GB ({(peak - before) / 1024:.2f} GB above the start), "
          f"{seconds:.0f} s (official: about 160 GB)")


if __name__ == "__main__":
    main()
