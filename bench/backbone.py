"""Images per second (with all per-layer features) of the toy GAN and of a random-weight StyleGAN1
at the DatasetGAN car setting (512x512, batch 4), through the Backbone interface."""
from __future__ import annotations

import argparse
import time

import torch

from datasetgan.backbone import Backbone, Truncation
from datasetgan.gan_training import TOY_GAN, load_generator
from datasetgan.stylegan1 import STYLEGAN1_PRESETS, StyleGAN1Generator


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    return parser.parse_args()


def images_per_second(backbone: Backbone, batch: int, repeats: int) -> float:
    """Median over repeats of batch / seconds for sample(seeds), after one warm-up call."""
    times = []
    for r in range(repeats + 1):
        start = time.perf_counter()
        backbone.sample(list(range(r * batch, (r + 1) * batch)))
        if backbone.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return batch / sorted(times[1:])[len(times[1:]) // 2]


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    print(f"device={args.device} threads={args.threads} batch={args.batch} dtype={args.dtype}")
    toy = Backbone(load_generator(TOY_GAN), device=args.device, dtype=dtype)
    print(f"toy GAN 64x64 (ours, StyleGAN2)      {images_per_second(toy, args.batch, args.repeats):9.2f} images/s")
    preset = STYLEGAN1_PRESETS["car"]
    torch.manual_seed(0)
    car = Backbone(StyleGAN1Generator(preset.config), Truncation(preset.truncation_psi, preset.truncation_cutoff),
                   device=args.device, dtype=dtype)
    print(f"StyleGAN1 car 512x512 (random init)  {images_per_second(car, args.batch, args.repeats):9.2f} images/s")


if __name__ == "__main__":
    main()
