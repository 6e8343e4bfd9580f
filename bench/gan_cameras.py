"""Cameras for GAN images: how far the viewpoint regressor (trained on toy renders) is off on what the GAN draws,
and whether keypoint labels can settle its confusions. Two parts:
  1. labelled toy renders that neither the reader of interpreter_limits.py nor any annotation uses (1,250-; the
     regressor trained on them, the first 1,800 labelled renders), inverted into the GAN as the annotations are and
     redrawn; the regressor's cameras on the redraws against the renders' true
     cameras (median azimuth error, share of views more than 90 degrees off); then the same after settling each view
     between the regressor's camera and one alternative (turned 180 degrees, or mirrored front to rear) by which of
     the two its keypoint labels fit better (misfit below), with the keypoint interpreter's labels of the redraw and,
     as an oracle, the render's exact keypoints;
  2. whether the regressor's certainty (inverse_graphics.viewpoint.azimuth_certainty) tells the redraws it turns
     round from the others: their share among the most certain redraws (inverse_graphics.viewpoint.most_certain);
  3. the share of views per azimuth sector: toy test renders (true cameras, the regressor's), and fresh GAN samples
     (seeds 0-, each --psi) under the regressor's cameras, all of them and the most certain.
Azimuth 0 looks at the car's right side, 90 at its front, 180 at its left side, 270 at its rear.

    python bench/gan_cameras.py --psi 0.7
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
from datasetgan.pipeline import labeler_from_config
from datasources.toy import ToySettings
from inverse_graphics.viewpoint import (azimuth_certainty, azimuth_error, decode, load_viewpoint, most_certain,
                                        viewpoint_outputs)
from inverse_graphics.views import CAMERA_KEYS, match_keypoint_names, mean_car_keypoints

SECTORS = {"right side": 0, "front": 90, "left side": 180, "rear": 270}  # centres of 90-degree sectors
SIZE = 64
FIRST_HELD_OUT = 1250  # labelled renders 1,000-1,249 train interpreter_limits.py's reader; the first 16 are annotated
FAR = 0.25  # misfit: a label this far off (share of the side), or left without a name, counts this far
KEPT = (0.9, 0.8, 0.7)  # shares of views kept by certainty (part 2 and 3)
ALTERNATIVES = {"turned 180 deg": lambda azimuth: azimuth + 180, "mirrored front to rear": lambda azimuth: -azimuth}


def held_out_inversions(backbone, data: str, count: int) -> tuple[list, object]:
    """The labelled renders FIRST_HELD_OUT.. (count of them, SIZE pixels) and their Inversion into the GAN, each
    under its own seeded noise (render i: seed i), as the annotations are inverted."""
    labelled = toy_split(data, "labelled", FIRST_HELD_OUT + count, ToySettings(resolution=SIZE))
    renders = [labelled[i] for i in range(FIRST_HELD_OUT, FIRST_HELD_OUT + count)]
    images = torch.from_numpy(np.stack([s.image for s in renders])).permute(0, 3, 1, 2).float() / 127.5 - 1
    seeds = list(range(FIRST_HELD_OUT, FIRST_HELD_OUT + count))
    return renders, invert(backbone, images, InversionSettings(), noise_seeds=seeds)


def misfit(keypoints: np.ndarray, cameras: np.ndarray) -> np.ndarray:
    """keypoints: float (N, P, 3) labels in pixels; cameras: float (N, 4) -> float (N,): mean over each view's
    labelled keypoints of the squared distance (share of the side, capped at FAR) from where the mean car shows the
    keypoint of the name match_keypoint_names gives it under the camera; a label left without a name costs FAR."""
    matched = match_keypoint_names(keypoints, cameras, SIZE)
    distance = np.linalg.norm(matched[..., :2] - mean_car_keypoints(cameras, SIZE)[..., :2], axis=-1) / SIZE
    cost = np.where(matched[..., 2] > 0, np.minimum(distance, FAR) ** 2, 0).sum(1)
    labelled, kept = (keypoints[..., 2] > 0).sum(1), (matched[..., 2] > 0).sum(1)
    return (cost + (labelled - kept) * FAR ** 2) / np.maximum(labelled, 1)


def settled(keypoints: np.ndarray, cameras: np.ndarray, fit: np.ndarray, alternative) -> np.ndarray:
    """cameras float (N, 4), whose misfit is fit (N,), each replaced by the one with alternative(azimuth) where its
    keypoints fit that better."""
    other = np.array(cameras, np.float32)
    other[:, 0] = alternative(other[:, 0]) % 360
    return np.where((misfit(keypoints, other) < fit)[:, None], other, cameras)


def regress(regressor, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """images: uint8 (N, S, S, 3) -> the regressor's cameras float (N, 4) and certainty float (N,)."""
    outputs = viewpoint_outputs(regressor, images)
    return decode(outputs, regressor.config).numpy(), azimuth_certainty(outputs, regressor.config).numpy()


def sector_shares(azimuths: np.ndarray) -> str:
    """Share of azimuths (degrees) within 45 degrees of each SECTORS centre, formatted."""
    return "".join(f"{np.mean(np.abs((azimuths - c + 180) % 360 - 180) < 45):12.2f}" for c in SECTORS.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keypoints-config", default="configs/interpreter/toy-car-keypoints.yaml",
                        help="the keypoint interpreter (and, through it, the GAN)")
    parser.add_argument("--viewpoint", default="checkpoints/toy-viewpoint.pt", help="benchmark 3d viewpoint")
    parser.add_argument("--held-out", type=int, default=64, help="labelled renders inverted (part 1)")
    parser.add_argument("--psi", type=float, action="append", default=None, help="truncation (repeat; default 0.7)")
    parser.add_argument("--samples", type=int, default=1000, help="GAN samples per psi (part 2)")
    parser.add_argument("--data", default="data", help="where toy splits are rendered")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    regressor = load_viewpoint(args.viewpoint)
    backbone, labeler, *_ = labeler_from_config(configs.load(args.keypoints_config))
    label_keypoints = lambda sample: labeler(sample)[0].cpu().numpy()  # noqa: E731, (B, P, 3) in label pixels
    settings = ToySettings(resolution=SIZE)

    renders, inverted = held_out_inversions(backbone, args.data, args.held_out)
    truth = torch.tensor([[s.meta["camera"][k] for k in CAMERA_KEYS] for s in renders])
    with torch.no_grad():
        redrawn = backbone.synthesize(inverted.ws, seeds=inverted.noise_seeds)
    cameras, certainty = regress(regressor, image_at_label_grid(redrawn.image, (SIZE, SIZE)))
    labels = {"keypoint interpreter": label_keypoints(redrawn), "renders' exact keypoints": np.stack(
        [s.keypoints for s in renders])}
    print(f"{args.held_out} inverted labelled renders, azimuth error against the true cameras:")
    on_renders = regress(regressor, torch.from_numpy(np.stack([s.image for s in renders])))[0]
    fits = {source: misfit(keypoints, cameras) for source, keypoints in labels.items()}
    estimates = {"regressor on the renders themselves": on_renders, "regressor": cameras}
    for turn, alternative in ALTERNATIVES.items():
        for source, keypoints in labels.items():
            estimates[f"settled, {turn}, by the {source}"] = settled(keypoints, cameras, fits[source], alternative)
    for name, estimate in estimates.items():
        error = azimuth_error(torch.from_numpy(estimate), truth)
        print(f"  {name:<66} median {error.median():5.1f} deg, more than 90 deg off {(error > 90).float().mean():.2f}")
    off = azimuth_error(torch.from_numpy(cameras), truth) > 90
    turned = azimuth_error(torch.from_numpy(cameras), truth + torch.tensor([180.0, 0, 0, 0])) < 45
    rear = torch.abs((truth[:, 0] - 270 + 180) % 360 - 180) < 45
    print(f"  of the {int(off.sum())} redraws more than 90 deg off: {int((off & turned).sum())} within 45 deg of their "
          f"camera turned 180 deg, {int((off & rear).sum())} rear views (true azimuth within 45 deg of 270)")
    off = off.numpy()
    print(f"  certainty: median {np.median(certainty[off]):.3f} on those, {np.median(certainty[~off]):.3f} on the rest")
    for share in KEPT:
        kept = most_certain(torch.from_numpy(certainty), share).numpy()
        print(f"  the {share:.0%} most certain ({len(kept)} views): more than 90 deg off "
              f"{off[kept].mean():.2f}, of all those off {off[kept].sum() / max(off.sum(), 1):.2f} kept")

    test = toy_split(args.data, "test", 250, settings)
    test_images = torch.from_numpy(np.stack([s.image for s in test]))
    print(f"{'share of views by azimuth':<44}" + "".join(f"{name:>12}" for name in SECTORS))
    print(f"{'250 test renders, true cameras':<44}"
          + sector_shares(np.array([s.meta["camera"]["azimuth"] for s in test])))
    print(f"{'250 test renders, regressor':<44}" + sector_shares(regress(regressor, test_images)[0][:, 0]))
    for psi in args.psi or [0.7]:
        backbone.truncation = Truncation(psi)
        cameras, certainty = [], []
        for start in tqdm(range(0, args.samples, 50), desc=f"samples psi {psi}", unit="batch"):
            sample = backbone.sample(list(range(start, min(start + 50, args.samples))))
            estimated = regress(regressor, image_at_label_grid(sample.image, (SIZE, SIZE)))
            cameras.append(estimated[0]), certainty.append(estimated[1])
        azimuths, certainty = np.concatenate(cameras)[:, 0], np.concatenate(certainty)
        print(f"{f'{args.samples} GAN samples psi {psi}, regressor':<44}" + sector_shares(azimuths))
        for share in KEPT:
            kept = most_certain(torch.from_numpy(certainty), share).numpy()
            print(f"{f'  the {share:.0%} most certain':<44}" + sector_shares(azimuths[kept]))


if __name__ == "__main__":
    main()
