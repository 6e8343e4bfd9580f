"""Whether the keypoint interpreter's heatmap peak tells its right labels from its wrong ones on what the GAN draws.
Labelled toy renders that no annotation, reader or viewpoint regressor uses (1,250-) are inverted into the GAN as
the annotations are and redrawn; the keypoint interpreter labels each redraw, and every keypoint it calls visible
is scored against the render's exact keypoint: pixel error where the render shows it, a false find where it does
not. The labels are split by their peak over the keypoint's calibrated threshold (generate's visibility rule)
into quarters over all keypoints, and per keypoint into the half with the stronger peaks and the rest.

    python bench/keypoint_confidence.py --held-out 128
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmark import configs
from datasetgan.interpreter import predict
from datasetgan.pipeline import load_backbone, load_ensemble, project_path
from datasources.toy import KEYPOINT_NAMES
from gan_cameras import FIRST_HELD_OUT, SIZE, held_out_inversions  # bench/, beside this script

FAR = 8.0  # pixels (of 64): a label this far from the truth counts as wrong


def summary(errors: np.ndarray) -> str:
    """errors: float (N,) pixel errors, inf for a find where the render shows no keypoint."""
    found = np.isfinite(errors)
    if not len(errors):
        return "no labels"
    return (f"{len(errors):5d} labels, false finds {1 - found.mean():.2f}, median error "
            f"{np.median(errors[found]) if found.any() else float('nan'):5.1f} px, "
            f"more than {FAR:.0f} px off or false {(errors > FAR).mean():.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keypoints-config", default="configs/interpreter/toy-car-keypoints.yaml",
                        help="the keypoint interpreter (and, through it, the GAN)")
    parser.add_argument("--held-out", type=int, default=128, help="labelled renders inverted")
    parser.add_argument("--data", default="data", help="where toy splits are rendered")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = configs.load(args.keypoints_config)
    backbone, *_ = load_backbone(config["generator"])
    ensemble, cfg = load_ensemble(project_path(config["checkpoint"]))
    renders, inverted = held_out_inversions(backbone, args.data, args.held_out)
    with torch.no_grad():
        prediction = predict(ensemble, backbone.synthesize(inverted.ws, seeds=inverted.noise_seeds).features, cfg)
    scale = SIZE / cfg.grid.shape[1]
    xy, peaks = prediction.keypoints.cpu().numpy() * scale, prediction.peaks.float().cpu().numpy()
    strength = peaks / np.array(cfg.visible_peaks, np.float32)   # (N, K): 1 or more is a visible label
    truth = np.stack([s.keypoints for s in renders])              # (N, K, 3) in render pixels
    errors = np.where(truth[..., 2] > 0, np.linalg.norm(xy - truth[..., :2], axis=-1), np.inf)
    called = strength >= 1
    print(f"{args.held_out} inverted labelled renders ({FIRST_HELD_OUT}-), keypoints the interpreter calls visible; "
          f"it misses {((truth[..., 2] > 0) & ~called).sum()} of the {(truth[..., 2] > 0).sum()} the renders show")
    print(f"  all: {summary(errors[called])}")
    edges = np.quantile(strength[called], [0, 0.25, 0.5, 0.75, 1])
    for q, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        chosen = called & (strength >= low) & (strength <= high)
        print(f"  peak / threshold {low:5.2f}-{high:5.2f} (quarter {q + 1}): {summary(errors[chosen])}")
    print("per keypoint, the stronger half of its labels | the weaker half:")
    for k, name in enumerate(KEYPOINT_NAMES):
        mine = called[:, k]
        median = np.median(strength[mine, k]) if mine.any() else 0
        strong, weak = mine & (strength[:, k] >= median), mine & (strength[:, k] < median)
        print(f"  {name:<18} {summary(errors[strong, k])} | {summary(errors[weak, k])}")


if __name__ == "__main__":
    main()
