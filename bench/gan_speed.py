"""Training speed of the toy StyleGAN2 (benchmark gan train's step: G and D updates, anchors, lazy R1) with every
convolution's input in channels-last memory, beside PyTorch's default layout, in one process on this machine.

    python bench/gan_speed.py --threads 2                       # the toy GAN's options, from its committed state

Prints seconds per iteration for each layout (the median of --repeats timings of --steps iterations, after warm-up)
and their ratio.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch

from datasetgan import stylegan2
from datasetgan.gan_training import GANTrainer, TrainOptions


def seconds_per_iteration(options: TrainOptions, state: Path, steps: int, repeats: int) -> float:
    """Median over repeats of the mean seconds of one training iteration, on random images, from `state`."""
    images = torch.randint(0, 256, (options.anchors, 3, 64, 64), dtype=torch.uint8)
    with tempfile.TemporaryDirectory() as run:
        trainer = GANTrainer(Path(run), images, options, "cpu", state)
        trainer.step()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(steps):
                trainer.step()
            times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", default="checkpoints/toy-gan-training-bf16.pt", help="Training state to start from.")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # The shipped toy GAN's options (Makefile GAN_OPTIONS), past the anchor warm-up.
    options = dataclasses.replace(TrainOptions(), anchors=512, anchor_weight=50, anchor_warmup=2000)
    results = {}
    for name, layout in (("channels-last", torch.channels_last), ("default (NCHW)", torch.contiguous_format)):
        stylegan2.CONV_MEMORY_FORMAT = layout
        results[name] = seconds_per_iteration(options, Path(args.state), args.steps, args.repeats)
        print(f"{name:15s} {results[name]:.3f} s/iteration ({args.threads} threads)")
    stylegan2.CONV_MEMORY_FORMAT = torch.channels_last
    print(f"speed-up: {results['default (NCHW)'] / results['channels-last']:.2f}x")


if __name__ == "__main__":
    main()
