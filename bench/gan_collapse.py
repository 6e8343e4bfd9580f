"""Where the toy GAN's mode collapse comes from: first fit the generator, without a discriminator, to map
256 fixed random latents onto 256 real toy images (plain pixel regression), and print the layout diversity
(datasetgan.quality) of its outputs on those latents and on fresh seeds; then continue from that diverse
generator with ordinary adversarial training (TrainOptions, changed by --set) and watch the trainer's logged
layout diversity. Real toy renders score about 0.57.

Example: python bench/gan_collapse.py --run runs/warm --minutes 20 --set r1_gamma=0.05 --set augment=False
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from datasetgan.gan_training import GANTrainer, TrainOptions, load_images, sample_images
from datasetgan.quality import layout_diversity
from datasets.files import image_files


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/toy-unlabelled", help="image folder (a toy split folder works)")
    parser.add_argument("--run", required=True, help="run folder of the adversarial phase (rerun to resume it)")
    parser.add_argument("--fit-images", type=int, default=256, help="real images (and latents) of the fit")
    parser.add_argument("--fit-steps", type=int, default=2500, help="Adam steps of the fit, batch 16")
    parser.add_argument("--minutes", type=float, default=20, help="wall-clock budget of the adversarial phase")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                        help="a TrainOptions field, e.g. r1_gamma=0.05, augment=false, pack=2")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return parser.parse_args()


def fit_to_images(G: torch.nn.Module, images: torch.Tensor, steps: int, seed: int = 0) -> torch.Tensor:
    """Regress G(z_i) onto images[i] (float (N, 3, R, R) in [-1, 1]) for fixed random z_i; returns G's outputs."""
    z = torch.randn(len(images), G.cfg.z_dim, generator=torch.Generator().manual_seed(seed))
    adam = torch.optim.Adam(G.parameters(), lr=0.0025, betas=(0.0, 0.99))
    order = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(images), [16], generator=order)
        loss = (G.synthesis(G.mapping(z[idx]))[0] - images[idx]).square().mean()
        adam.zero_grad(set_to_none=True)
        loss.backward()
        adam.step()
    with torch.no_grad():
        return torch.cat([G.synthesis(G.mapping(chunk))[0] for chunk in z.split(64)])


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    changes = dict(item.split("=", 1) for item in args.set)
    options = dataclasses.replace(TrainOptions(), **{k: json.loads(v) for k, v in changes.items()})
    data = load_images(image_files(Path(args.data)), options.generator.resolution)
    trainer = GANTrainer(Path(args.run), data, options)
    if trainer.iteration == 0:
        real = data[:args.fit_images].float() / 127.5 - 1
        fitted = fit_to_images(trainer.G, real, args.fit_steps)
        trainer.G_ema.load_state_dict(trainer.G.state_dict())
        print(f"real images: layout diversity {layout_diversity(real):.3f}; after the fit, on their latents "
              f"{layout_diversity(fitted):.3f}, on fresh seeds 0-63 "
              f"{layout_diversity(sample_images(trainer.G_ema, list(range(64)))):.3f}", flush=True)
    trainer.train(10 ** 9, minutes=args.minutes)
    print("adversarial phase, layout diversity by iteration:",
          ", ".join(f"{e['iteration']}: {e['layout_diversity']:.3f}" for e in trainer.log))


if __name__ == "__main__":
    main()
