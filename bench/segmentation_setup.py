"""How the CPU profiles' segmentation network was chosen: candidate DeepLabV3 setups trained as the fully supervised
variant (the toy labelled pool, toy-car-12 at 64 px, Adam 1e-3, batch 8) for the same number of steps, printing
for each its output grid, the oracle ceiling there (benchmark.oracle), seconds per optimiser step and the test
mIoU at evenly spaced steps (all 250 test images, no fold selection: a learning curve, not a table figure).

    python bench/segmentation_setup.py --steps 1200 --threads 1
    python bench/segmentation_setup.py --setups shipped,os4 --steps 300
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from benchmark.dilated_resnet import deeplabv3_dilated_resnet
from benchmark.metrics import mean_iou
from benchmark.oracle import oracle_miou, output_grid
from benchmark.segmentation import SegmentationSettings, build_network, fit, load_images
from benchmark.sources import toy_split
from datasources.toy import ToySettings

SETUPS = {   # name -> (description, builder(num_classes))
    "mobilenet": ("torchvision DeepLabV3-MobileNetV3-Large, output stride 16",
                  lambda k: build_network(SegmentationSettings(backbone="mobilenet_v3_large"), k)),
    "os4": ("dilated ResNet 16-32-64-128, ASPP 64, output stride 4",
            lambda k: deeplabv3_dilated_resnet(num_classes=k, widths=(16, 32, 64, 128), dilations=(1, 1, 2, 4),
                                               strides=(1, 2, 1, 1), aspp_channels=64)),
    "os2-wide": ("dilated ResNet 16-32-64-128, ASPP 64, output stride 2",
                 lambda k: deeplabv3_dilated_resnet(num_classes=k, widths=(16, 32, 64, 128), aspp_channels=64)),
    "os2-mid": ("dilated ResNet 16-32-48-96, ASPP 48, output stride 2",
                lambda k: deeplabv3_dilated_resnet(num_classes=k, widths=(16, 32, 48, 96), aspp_channels=48)),
    "shipped": ("dilated ResNet 16-24-48-64, ASPP 32, output stride 2 (segmentation.backbone: dilated_resnet)",
                lambda k: deeplabv3_dilated_resnet(num_classes=k)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setups", default=",".join(SETUPS), help=f"comma-separated, of {', '.join(SETUPS)}")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--evaluations", type=int, default=4)
    parser.add_argument("--pool", type=int, default=250, help="training images (the demo's fully supervised pool)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data", default="results/data", help="where toy splits are rendered (or found)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    world = ToySettings(resolution=64)
    train = load_images(toy_split(Path(args.data), "labelled", args.pool, world), args.pool)
    test = load_images(toy_split(Path(args.data), "test", 250, world), 250)
    settings = SegmentationSettings(backbone="dilated_resnet", steps=args.steps, evaluations=args.evaluations)
    for name in args.setups.split(","):
        description, builder = SETUPS[name]
        net = builder(len(test.classes))
        grid = output_grid(net, 64)
        ceiling = oracle_miou(test.labels, len(test.classes), grid)
        started = time.time()
        with tempfile.TemporaryDirectory() as work:
            figures = fit(net, train, test, settings, Path(work), desc=name)
        per_step = (time.time() - started) / args.steps
        curve = ", ".join(f"{s}: {100 * mean_iou(f.sum(0)):.1f}" for s, f in zip(settings.evaluated_steps, figures))
        print(f"{name} ({description}): logits {grid[0]}x{grid[1]}, oracle {100 * ceiling:.1f}; "
              f"{per_step:.3f} s/step with evaluations; test mIoU by step {curve}", flush=True)


if __name__ == "__main__":
    main()
