"""Reconstructor training speed: iterations per second at batch 16, 64x64 (forward, render, losses,
backward, Adam step) on toy renders, per encoder, with the encoder-only forward+backward as a
reference in the same process (what the renderer and the heads add on top of it)."""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from inverse_graphics.reconstructor import ENCODERS, Reconstructor, ReconstructorConfig
from inverse_graphics.training import ReconstructorTrainer, TrainSettings
from inverse_graphics.views import toy_views


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--batch", type=int, default=16, help="images per iteration")
    parser.add_argument("--steps", type=int, default=10, help="timed iterations, after two warm-up ones")
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    parser.add_argument("--device", default="cpu", help="torch device: cpu, or cuda on a GPU machine")
    return parser.parse_args()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def iterations_per_second(encoder: str, views, args: argparse.Namespace) -> float:
    """Mean rate of args.steps full training iterations (toy views, Adam) after two warm-up ones."""
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as run:
        trainer = ReconstructorTrainer(run, views, ReconstructorConfig(encoder=encoder),
                                       TrainSettings(batch=args.batch), device)
        for _ in range(2):
            trainer.step()
        _sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            trainer.step()
        _sync(device)
    return args.steps / (time.perf_counter() - start)


def encoder_only(encoder: str, args: argparse.Namespace) -> float:
    """Iterations per second of the encoder's forward+backward alone on a random batch."""
    device = torch.device(args.device)
    net = Reconstructor(ReconstructorConfig(encoder=encoder)).encoder.to(device)
    images = torch.rand(args.batch, 3, 64, 64, device=device)
    for _ in range(2):
        net(images).sum().backward()
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        net(images).sum().backward()
    _sync(device)
    return args.steps / (time.perf_counter() - start)


def main() -> None:
    """Print training iterations per second per encoder and the encoder-only reference."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    print(f"device={args.device} threads={args.threads} batch={args.batch} steps={args.steps} image=64x64")
    views = toy_views(list(range(1_000_000, 1_000_000 + 2 * args.batch)))
    for encoder in args.encoders:
        full, alone = iterations_per_second(encoder, views, args), encoder_only(encoder, args)
        print(f"{encoder:9s} training {full:7.2f} it/s ({args.batch * full:7.1f} images/s); "
              f"encoder forward+backward alone {alone:7.2f} it/s (training/encoder = {full / alone:.3f})")


if __name__ == "__main__":
    main()
