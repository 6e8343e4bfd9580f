"""What a reconstructor learns beyond the toy world's mean car. Prints (1) the untrained templates (the ellipsoid and
the mean-car sphere: a fresh network predicts its template exactly) beside the mean car itself, scored as `3d eval`
scores, and (2) for each checkpoint, its 3D keypoint error per keypoint and how many of its keypoints lie within 0.1
car lengths of the true keypoint, of its left-right mirror, or of its front-rear counterpart: a model that swaps
names shows counts on the swaps, one that spreads its keypoints shows few near any.

    python bench/reconstructor_prior.py --checkpoint runs/recon-toy-seed0/reconstructor.pt \\
        --checkpoint runs/recon-gan-seed0/reconstructor.pt
"""
from __future__ import annotations

import argparse

import numpy as np

from datasources.toy import KEYPOINT_NAMES, CarParams, build_car, render_sample
from datasources.toy.car import swapped_keypoints
from inverse_graphics.evaluation import evaluate
from inverse_graphics.reconstructor import Reconstructor, ReconstructorConfig, load_reconstructor, reconstruct
from inverse_graphics.template import TemplateSettings

SHOWN = ("chamfer_over_length", "keypoint_error_over_length", "silhouette_iou_input", "silhouette_iou_novel")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", default=[], help="reconstructor checkpoint(s)")
    parser.add_argument("--n", type=int, default=50, help="toy test images (seeds 0..n-1)")
    parser.add_argument("--points", type=int, default=2000, help="surface points per mesh for Chamfer")
    parser.add_argument("--subdivisions", type=int, action="append", default=None,
                        help="the untrained templates' icosphere subdivisions (repeat for several; default: 3, the "
                             "reconstructor's 642 vertices)")
    args = parser.parse_args()
    seeds = list(range(args.n))
    untrained = {f"untrained, {shape} template, {level} subdivisions": Reconstructor(ReconstructorConfig(
        encoder="resnet10", template=TemplateSettings(subdivisions=level, shape=shape)))
        for level in args.subdivisions or [3] for shape in ("ellipsoid", "mean-car")}
    for name, model in [*((name, m.eval()) for name, m in untrained.items()), ("mean car", None)]:
        result = evaluate(model, seeds, points=args.points)
        print(f"{name:<46}" + "  ".join(f"{k} {result[k]:.3f}" for k in SHOWN))
    swaps = {"true": list(range(len(KEYPOINT_NAMES))), "left-right": swapped_keypoints("left", "right"),
             "front-rear": swapped_keypoints("front", "rear")}
    for path in args.checkpoint:
        model, errors, near = load_reconstructor(path), [], dict.fromkeys(swaps, 0)
        for seed in seeds:
            sample = render_sample(seed)
            params = CarParams(**sample.meta["params"])
            truth, predicted = build_car(params).keypoints, reconstruct(model, sample.image)["keypoints"]
            errors.append(np.linalg.norm(predicted - truth, axis=1) / params.length)
            for key, index in swaps.items():
                near[key] += int((np.linalg.norm(predicted - truth[index], axis=1) / params.length < 0.1).sum())
        print(f"{path}: keypoint error {np.mean(errors):.3f}; of {len(seeds) * len(KEYPOINT_NAMES)} keypoints within "
              "0.1 lengths of " + ", ".join(f"the {k} one: {v}" for k, v in near.items()))
        print("  " + ", ".join(f"{n} {e:.2f}" for n, e in zip(KEYPOINT_NAMES, np.mean(errors, 0))))


if __name__ == "__main__":
    main()
