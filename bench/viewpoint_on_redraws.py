"""Would a viewpoint regressor that has seen the GAN's pictures give GAN images better cameras? The shipped regressor
learnt from toy renders only; the GAN redraws rear views without red tail lights, and the regressor turns 20% of the
GAN's redraws round (bench/gan_cameras.py). This trains a second regressor with the same budget on the same renders
plus the GAN's redraws of other labelled renders (inverted as the annotations are) under those renders' true
cameras, and compares the two on 64 labelled renders and their redraws (median azimuth error, share more than 90
degrees off) and on fresh samples (share of rear views; renders: 28%). Both learn from the same renders, the first
90% of --toy as `benchmark 3d viewpoint` takes them, which hold the 64 renders; neither sees their redraws.

    python bench/viewpoint_on_redraws.py --redraws 320
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm import tqdm

from benchmark import configs
from benchmark.sources import toy_split
from datasetgan.backbone import Truncation
from datasetgan.factory import image_at_label_grid
from datasetgan.inversion import InversionSettings, invert
from datasetgan.pipeline import load_backbone
from datasources.toy import KEYPOINT_NAMES, ToySettings
from inverse_graphics.viewpoint import azimuth_error, estimate_cameras, load_viewpoint, train_viewpoint
from inverse_graphics.views import CAMERA_KEYS, Views, toy_folder_views

SIZE = 64
HELD_OUT = range(1250, 1314)  # as bench/gan_cameras.py: neither the reader's renders (1,000-1,249) nor annotated
FIRST_REDRAWN = 1400


def redraws(backbone, dataset, indices: list[int], batch: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """The GAN's redraws of the renders at indices: uint8 (N, S, S, 3), with the renders' cameras float (N, 4)."""
    images, cameras = [], []
    for start in tqdm(range(0, len(indices), batch), desc="redraws", unit="batch"):
        samples = [dataset[i] for i in indices[start:start + batch]]
        pixels = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).float() / 127.5 - 1
        seeds = indices[start:start + batch]
        inverted = invert(backbone, pixels, InversionSettings(), noise_seeds=seeds, progress=False)
        images.append(image_at_label_grid(inverted.image, (SIZE, SIZE)))   # redrawn under the seeds' noise
        cameras.append(torch.tensor([[s.meta["camera"][k] for k in CAMERA_KEYS] for s in samples]))
    return torch.cat(images), torch.cat(cameras)


def camera_only_views(images: torch.Tensor, cameras: torch.Tensor) -> Views:
    """Views with images uint8 (N, S, S, 3) and cameras float (N, 4), no labels or keypoints."""
    n = len(images)
    return Views(images, torch.zeros(n, SIZE, SIZE, dtype=torch.int64), torch.zeros(n, len(KEYPOINT_NAMES), 3), cameras)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/interpreter/toy-car-12.yaml", help="its generator redraws")
    parser.add_argument("--viewpoint", default="checkpoints/toy-viewpoint.pt", help="the shipped regressor")
    parser.add_argument("--toy", default="data/toy-labelled", help="the renders it was trained on (benchmark toy)")
    parser.add_argument("--redraws", type=int, default=320, help="labelled renders (1,400-) redrawn for training")
    parser.add_argument("--steps", type=int, default=3000, help="as `benchmark 3d viewpoint` (the shipped one)")
    parser.add_argument("--samples", type=int, default=1000, help="fresh GAN samples, psi 0.7")
    parser.add_argument("--data", default="data")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    backbone, _, _ = load_backbone(configs.load(args.config)["generator"])
    labelled = toy_split(args.data, "labelled", FIRST_REDRAWN + args.redraws, ToySettings(resolution=SIZE))
    train_images, train_cameras = redraws(backbone, labelled, list(range(FIRST_REDRAWN, FIRST_REDRAWN + args.redraws)))
    test_images, test_cameras = redraws(backbone, labelled, list(HELD_OUT))
    renders = torch.from_numpy(np.stack([labelled[i].image for i in HELD_OUT]))
    rendered = toy_folder_views(args.toy)
    rendered = rendered.take(slice(0, len(rendered) - max(1, len(rendered) // 10)))   # as `benchmark 3d viewpoint`
    both = camera_only_views(torch.cat([rendered.images, train_images]), torch.cat([rendered.cameras, train_cameras]))
    regressors = {"shipped (renders)": load_viewpoint(args.viewpoint),
                  f"renders + {args.redraws} redraws": train_viewpoint(both, args.steps)}
    backbone.truncation = Truncation(0.7)
    samples = torch.cat([image_at_label_grid(backbone.sample(list(range(s, min(s + 50, args.samples)))).image,
                                             (SIZE, SIZE)) for s in range(0, args.samples, 50)])
    print(f"{'regressor':<30}{'64 renders':>30}{'their redraws':>30}{'rear views, samples':>22}")
    for name, model in regressors.items():
        cells = []
        for images in (renders, test_images):
            error = azimuth_error(estimate_cameras(model, images), test_cameras)
            cells.append(f"{error.median():.1f} deg, >90: {(error > 90).float().mean():.2f}")
        azimuth = estimate_cameras(model, samples)[:, 0]
        rear = (torch.abs((azimuth - 270 + 180) % 360 - 180) < 45).float().mean()
        print(f"{name:<30}" + "".join(f"{c:>30}" for c in cells) + f"{rear:22.2f}")


if __name__ == "__main__":
    main()
