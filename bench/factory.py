"""The label factory's interpreter stage: linear-first `predict` against the official computation
(`predict_naive`: resize every map, concatenate, run every member on every pixel) at the StyleGAN1 cat (256x256
labels, 4992 channels, 14 maps) and car (384x512 labels, 5056 channels, 16 maps) settings, with random weights:
labels per second and peak memory, for the interpreter stage on random features of the real shapes and end to end
from a random-weight StyleGAN1 generator (batch 1), beside the generator's synthesis alone (the end-to-end rate's
ceiling; the paper quotes 9 s a labelled pair), on the CPU or a GPU (--device cuda).

Every measurement runs in a fresh process. Peak memory is the peak resident size during the measured call minus
the resident size just before it (inputs, weights and generator already built), read from /proc/self/status
after resetting the peak with /proc/self/clear_refs (Linux); on a GPU, torch's peak allocated device memory
above what was allocated before. Ratios compare figures from the same run.
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
STAGES = ("interpreter", "end-to-end", "synthesis")   # synthesis: the generator alone, either path


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=list(CLASSES), choices=list(CLASSES))
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--members", type=int, default=10, help="ensemble size")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--strip-pixels", type=int, help="label pixels per strip (default: InterpreterConfig's)")
    parser.add_argument("--repeats", type=int, default=1, help="timed calls per measurement (median reported)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine")
    parser.add_argument("--quick", action="store_true", help="cat, interpreter stage only")
    args = parser.parse_args()
    if args.quick:
        args.settings, args.stages = ["cat"], ["interpreter"]
    return args


def measure(setting: str, path: str, stage: str, args: argparse.Namespace) -> tuple[float, float]:
    """(median seconds per label map, peak memory in MB above the resident size before the calls) of one path."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    preset = STYLEGAN1_PRESETS[setting]
    config = replace(InterpreterConfig.for_stylegan1(setting, CLASSES[setting]), ensemble_size=args.members)
    if args.strip_pixels:
        config = replace(config, strip_pixels=args.strip_pixels)
    ensemble = PixelEnsemble(config)
    for m, member in enumerate(ensemble.members):
        member.reset(torch.Generator().manual_seed(m))
    ensemble.eval().to(device)
    if stage == "interpreter":
        shapes = [(c, r) for r in preset.config.block_resolutions for c in [preset.config.channels(r)] * 2]
        features = [torch.randn(1, c, r, r, device=device) for c, r in shapes]
        labeler = lambda: PATHS[path](ensemble, features, config)
    else:
        backbone = Backbone(StyleGAN1Generator(preset.config), Truncation(preset.truncation_psi,
                                                                          preset.truncation_cutoff), device=device)
        labeler = (lambda: backbone.sample([0])) if stage == "synthesis" else (
            lambda: PATHS[path](ensemble, backbone.sample([0]).features, config))
    labeler()   # warm-up (CUDA kernels, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2 ** 20
    else:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # reset the peak resident size
        before = memory_mb("VmRSS")
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        labeler()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2 ** 20 if device.type == "cuda" else memory_mb("VmHWM")
    return sorted(times)[len(times) // 2], peak - before


def main() -> None:
    """Print labels per second and peak memory per setting, stage and path, and the naive / linear-first ratios."""
    args = parse_args()
    print(f"device={args.device} threads={args.threads} members={args.members} repeats={args.repeats} "
          f"load average at start={os.getloadavg()[0]:.2f} (figures measured on a shared machine are noisy)")
    print(f"{'setting':8s} {'stage':12s} {'path':13s} {'s/label':>9s} {'labels/s':>9s} {'peak MB':>9s}")
    for setting in args.settings:
        rates = {}
        for stage in args.stages:
            figures = {}
            for path in (["-"] if stage == "synthesis" else PATHS):
                with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as fresh:
                    figures[path] = fresh.submit(measure, setting, path, stage, args).result()
                seconds, peak = figures[path]
                rates[stage, path] = 1 / seconds
                print(f"{setting:8s} {stage:12s} {path:13s} {seconds:9.3f} {1 / seconds:9.3f} {peak:9.1f}")
            if stage != "synthesis":
                (fast_s, fast_mb), (naive_s, naive_mb) = figures["linear-first"], figures["naive"]
                print(f"{setting:8s} {stage:12s} naive / linear-first: {naive_s / fast_s:.1f}x time, "
                      f"{naive_mb / max(fast_mb, 1e-3):.1f}x peak memory")
        if ("end-to-end", "linear-first") in rates and ("synthesis", "-") in rates:
            print(f"{setting:8s} labelled pairs per second end to end / synthesis alone: "
                  f"{rates['end-to-end', 'linear-first'] / rates['synthesis', '-']:.2f}")


if __name__ == "__main__":
    main()
