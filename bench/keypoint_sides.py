"""Do generated keypoint labels keep the car's sides apart, and does naming them by the camera fix it? In the toy
world's views (elevation 0 to 20 degrees) the two wheels of one axle, or two diagonal wheels, are never both
visible; a side view shows one side's two. Prints, for each pair of wheel keypoints, how often both are visible in
a generated set's labels (the keypoint interpreter's), the same after `match_keypoint_names` under the viewpoint
regressor's cameras (what `3d train --generated` trains on), and in the exact labels of toy renders: a labeller
that mixes up left and right, or front and rear, shows pairs the renders never have. Then, on the renders under
the regressor's cameras: the share of visible keypoints whose name matching keeps, and whose name it restores
after every left and right name (and front and rear wheel) is swapped. Last, how far the labels that remain
lie from where the mean car shows their keypoint under the camera: the noise that names cannot fix, with and
without the trainer's --rename-reach (a keypoint the camera renames is dropped when it lies farther than that from
its new name).

    python bench/keypoint_sides.py --generated data/synthetic-toy-2000 --toy data/toy-labelled
"""
from __future__ import annotations

import argparse
import functools
from itertools import combinations

import numpy as np

from datasources.toy import KEYPOINT_NAMES
from datasources.toy.car import swapped_keypoints
from inverse_graphics.viewpoint import estimate_cameras, load_viewpoint
from inverse_graphics.views import (RENAME_REACH, match_keypoint_names, mean_car_keypoints, synthetic_views,
                                   toy_folder_views)

SIZE = 64  # the reconstructor's and viewpoint regressor's views


def swapped_names() -> list[int]:
    """Index map that calls every left keypoint right (and back), and every front wheel a rear one (and back)."""
    sides, ends = swapped_keypoints("left", "right"), swapped_keypoints("front", "rear")
    return [ends[sides[k]] if name.startswith("wheel") else sides[k] for k, name in enumerate(KEYPOINT_NAMES)]


def kept_share(matched: np.ndarray, truth: np.ndarray) -> float:
    """Share of truth's visible keypoints that matched holds under the same name at the same place."""
    visible = truth[..., 2] > 0
    same = (matched[..., 2] > 0) & (np.abs(matched[..., :2] - truth[..., :2]).max(-1) < 1e-4)
    return float((same & visible).sum() / visible.sum())


def offsets(keypoints: np.ndarray, cameras: np.ndarray) -> np.ndarray:
    """Pixel distance of each labelled keypoint float (N, P, 3) from the mean car's under cameras float (N, 4);
    NaN where it is not labelled visible."""
    expected = mean_car_keypoints(cameras, SIZE)
    return np.where(keypoints[..., 2] > 0, np.linalg.norm(keypoints[..., :2] - expected[..., :2], axis=-1), np.nan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generated", required=True, help="a `benchmark generate --keypoints-config` folder")
    parser.add_argument("--toy", required=True, help="a toy split folder (exact keypoints and cameras)")
    parser.add_argument("--viewpoint", default="checkpoints/toy-viewpoint.pt", help="benchmark 3d viewpoint")
    parser.add_argument("--n", type=int, default=1000, help="samples of each")
    parser.add_argument("--rename-reach", type=float, default=RENAME_REACH, help="as 3d train's (inf: no limit)")
    args = parser.parse_args()
    cameras = functools.partial(estimate_cameras, load_viewpoint(args.viewpoint))
    generated = synthetic_views(args.generated, cameras, SIZE, match_names=False).take(slice(0, args.n))
    generated_kp = generated.keypoints.numpy()
    matched = match_keypoint_names(generated_kp, generated.cameras.numpy(), SIZE, args.rename_reach)
    renders = toy_folder_views(args.toy).take(slice(0, args.n))
    truth, estimated = renders.keypoints.numpy(), cameras(renders.images).numpy()
    sets = {"generated": generated_kp > 0, "matched": matched > 0, "renders": truth > 0}
    wheels = [i for i, name in enumerate(KEYPOINT_NAMES) if name.startswith("wheel_")]
    print(f"both visible (share of images)   generated   matched   renders   ({len(generated)} / {len(renders)} images)")
    for a, b in combinations(wheels, 2):
        shares = [(v[:, a, 2] & v[:, b, 2]).mean() for v in sets.values()]
        print(f"{KEYPOINT_NAMES[a] + ' + ' + KEYPOINT_NAMES[b]:<38}" + "".join(f"{s:10.2f}" for s in shares))
    restored = match_keypoint_names(truth[:, swapped_names()], estimated, SIZE, args.rename_reach)
    print(f"renders, regressor's cameras: names kept "
          f"{kept_share(match_keypoint_names(truth, estimated, SIZE, args.rename_reach), truth):.3f}, "
          f"restored after a swap {kept_share(restored, truth):.3f}")
    far = {"generated, renamed anywhere": offsets(match_keypoint_names(generated_kp, generated.cameras.numpy(), SIZE),
                                                  generated.cameras.numpy()),
           f"generated, renamed within {args.rename_reach:g}": offsets(matched, generated.cameras.numpy()),
           "renders": offsets(match_keypoint_names(truth, estimated, SIZE, args.rename_reach), estimated)}
    print("labels named by camera, more than 4 / 8 pixels from the mean car's keypoint (share; labels):")
    for name, d in far.items():
        shown = d[~np.isnan(d)]
        print(f"  {name:<36} {np.mean(shown > 4):.3f} / {np.mean(shown > 8):.3f}   {len(shown)}")
    print("median distance (pixels) per keypoint, " + " / ".join(far) + ":")
    print("\n".join(f"  {name:<18}" + " / ".join(f"{np.nanmedian(d[:, k]):4.1f}" for d in far.values())
                    for k, name in enumerate(KEYPOINT_NAMES)))

if __name__ == "__main__":
    main()
