"""How the CPU profiles' training recipe was chosen, without the test split: the shipped network trained as the fully
supervised variant (the demo's 250-image labelled pool, toy-car-12, batch 8) under recipe candidates for the same
number of steps, scored on a validation set of 250 other labelled renders (the last 250 of the labelled split,
which no profile's pool reaches). Prints validation mIoU at evenly spaced steps and the final IoU per class.
--synthetic trains on a generated set instead (the DatasetGAN variant's data), to check a recipe on it too.

    python bench/training_recipe.py --recipes constant,lr4,weighted,lr4-weighted --seed 1 --threads 1
    python bench/training_recipe.py --recipes constant,lr4-weighted --synthetic data/synthetic-toy-2000
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from benchmark.metrics import iou_per_class, mean_iou
from benchmark.segmentation import LabelledImages, SegmentationSettings, build_network, fit, load_images
from benchmark.sources import toy_split
from datasources.synthetic import SyntheticDataset
from datasources.toy import SPLITS, ToySettings

RECIPES = {   # name -> SegmentationSettings fields beside the dilated ResNet's defaults (Adam 1e-3, unweighted)
    "constant": {},
    "lr2": {"lr": 2e-3},
    "lr4": {"lr": 4e-3},
    "lr8": {"lr": 8e-3},
    "weighted": {"class_weighting": "inverse_sqrt_frequency"},
    "lr2-weighted": {"lr": 2e-3, "class_weighting": "inverse_sqrt_frequency"},
    "lr4-weighted": {"lr": 4e-3, "class_weighting": "inverse_sqrt_frequency"},
}
VALIDATION = 250


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, of {', '.join(RECIPES)}")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--evaluations", type=int, default=4)
    parser.add_argument("--pool", type=int, default=250, help="training images (the demo's fully supervised pool)")
    parser.add_argument("--synthetic", default=None,
                        help="train on this generated set's first 500 samples, the 10%% most uncertain left out (the "
                             "demo's DatasetGAN variant), instead of the labelled pool")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data", default="results/data", help="where toy splits are rendered (or found)")
    args = parser.parse_args()
    size = SPLITS["labelled"][1]
    if not 0 < args.pool <= size - VALIDATION:
        parser.error(f"--pool must be in 1..{size - VALIDATION} (the last {VALIDATION} labelled renders validate)")
    unknown = set(args.recipes.split(",")) - set(RECIPES)
    if unknown:
        parser.error(f"unknown recipes {', '.join(sorted(unknown))}; valid: {', '.join(RECIPES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    labelled = load_images(toy_split(Path(args.data), "labelled", size, ToySettings(resolution=64)), size)
    train = LabelledImages(labelled.images[:args.pool], labelled.labels[:args.pool], labelled.classes)
    if args.synthetic:
        train = load_images(SyntheticDataset(args.synthetic, 500, 0.1))
    valid = LabelledImages(labelled.images[-VALIDATION:], labelled.labels[-VALIDATION:], labelled.classes)
    for name in args.recipes.split(","):
        settings = SegmentationSettings(backbone="dilated_resnet", steps=args.steps, evaluations=args.evaluations,
                                        seed=args.seed, **RECIPES[name])
        net = build_network(settings, len(valid.classes))
        started = time.time()
        with tempfile.TemporaryDirectory() as work:
            figures = fit(net, train, valid, settings, Path(work), desc=name)
        per_step = (time.time() - started) / args.steps
        curve = ", ".join(f"{s}: {100 * mean_iou(f.sum(0)):.1f}" for s, f in zip(settings.evaluated_steps, figures))
        classes = ", ".join(f"{c} {100 * v:.1f}" for c, v in zip(valid.classes.names, iou_per_class(figures[-1].sum(0))))
        print(f"{name} (seed {args.seed}{', synthetic' if args.synthetic else ''}): {per_step:.3f} s/step; "
              f"validation mIoU by step {curve}; last: {classes}", flush=True)


if __name__ == "__main__":
    main()
