"""The label factory's interpreter stage: linear-first `predict` against the official computation
(`predict_naive`: resize every map, concatenate, run every member on every pixel) at the StyleGAN1 cat (256x256
labels, 4992 channels, 14 maps) and car (384x512 labels, 5056 channels, 16 maps) settings, with random weights:
labels per second and peak memory, for the interpreter stage on random features of the real shapes and end to end
from a random-weight StyleGAN1 generator (batch 1).

Every measurement runs in a fresh process. Peak memory is the peak resident size during the measured call minus
the resident size just before it (inputs, weights and generator already built), read from /proc/self/status
after resetting the peak with /proc/self/clear_refs (Linux). Ratios compare figures from the same run.
"""
from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context

import torch

from datasetgan.backbone import Backbone, Truncation
from datasetgan.interpreter import InterpreterConfig, PixelEnsemble, predict, predict_naive
from datasetgan.stylegan1 import STYLEGAN1_PRESETS, StyleGAN1Generator
from procstatus import memory_mb

CLASSES = {"cat": 16, "car": 20}  # Cat-16 and Car-20
PATHS = {"linear-first": predict, "naive": predict_naive}
STAGES = ("interpreter", "end-to-end")


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=list(CLASSES), choices=list(CLASSES))
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--members", type=int, default=10, help="ensemble size")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--strip-pixels", type=int, help="label pixels per strip (default: InterpreterConfig's)")
    parser.add_argument("--repeats", type=int, default=1, help="timed calls per measurement (median reported)")
    parser.add_argument("--quick", action="store_true", help="cat, interpreter stage only")
    args = parser.parse_args()
    if args.quick:
        args.settings, args.stages = ["cat"], ["interpreter"]
    return args


def measure(setting: str, path: str, stage: str, args: argparse.Namespace) -> tuple[float, float]:
    """(median seconds per label map, peak memory in MB above the resident size before the calls) of one path."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    preset = STYLEGAN1_PRESETS[setting]
    config = replace(InterpreterConfig.for_stylegan1(setting, CLASSES[setting]), ensemble_size=args.members)
    if args.strip_pixels:
        config = replace(config, strip_pixels=args.strip_pixels)
    ensemble = PixelEnsemble(config)
    for m, member in enumerate(ensemble.members):
        member.reset(torch.Generator().manual_seed(m))
    ensemble.eval()
    if stage == "interpreter":
        shapes = [(c, r) for r in preset.config.block_resolutions for c in [preset.config.channels(r)] * 2]
        features = [torch.randn(1, c, r, r) for c, r in shapes]
        labeler = lambda: PATHS[path](ensemble, features, config)
    else:
        backbone = Backbone(StyleGAN1Generator(preset.config), Truncation(preset.truncation_psi,
                                                                          preset.truncation_cutoff))
        labeler = lambda: PATHS[path](ensemble, backbone.sample([0]).features, config)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak resident size
    before = memory_mb("VmRSS")
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        labeler()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], memory_mb("VmHWM") - before


def main() -> None:
    """Print labels per second and peak memory per setting, stage and path, and the naive / linear-first ratios."""
    args = parse_args()
    print(f"threads={args.threads} members={args.members} repeats={args.repeats} "
          f"load average at start={os.getloadavg()[0]:.2f} (figures measured on a shared machine are noisy)")
    print(f"{'setting':8s} {'stage':12s} {'path':13s} {'s/label':>9s} {'labels/s':>9s} {'peak MB':>9s}")
    for setting in args.settings:
        for stage in args.stages:
            figures = {}
            for path in PATHS:
                with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as fresh:
                    figures[path] = fresh.submit(measure, setting, path, stage, args).result()
                seconds, peak = figures[path]
                print(f"{setting:8s} {stage:12s} {path:13s} {seconds:9.3f} {1 / seconds:9.3f} {peak:9.1f}")
            (fast_s, fast_mb), (naive_s, naive_mb) = figures["linear-first"], figures["naive"]
            print(f"{setting:8s} {stage:12s} naive / linear-first: {naive_s / fast_s:.1f}x time, "
                  f"{naive_mb / max(fast_mb, 1e-3):.1f}x peak memory")


if __name__ == "__main__":
    main()
