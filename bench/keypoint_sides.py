"""Do generated keypoint labels keep the car's sides apart? In the toy world's views (elevation 0 to 20 degrees) the
two wheels of one axle, or two diagonal wheels, are never both visible; a side view shows one side's two. Prints, for
each pair of wheel keypoints, how often both are visible in a generated set's labels (the keypoint interpreter's)
beside the exact labels of toy renders: a labeller that mixes up left and right, or front and rear, shows pairs
the renders never have.

    python bench/keypoint_sides.py --generated data/synthetic-toy-2000 --toy data/toy-labelled
"""
from __future__ import annotations

import argparse
from itertools import combinations

import numpy as np

from datasources.synthetic import SyntheticDataset
from datasources.toy import KEYPOINT_NAMES, ToyDataset


def visible(dataset, count: int) -> np.ndarray:
    """bool (N, K): which keypoints the first `count` samples label visible."""
    return np.stack([dataset[i].keypoints[:, 2] > 0.5 for i in range(min(count, len(dataset)))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generated", required=True, help="a `benchmark generate --keypoints-config` folder")
    parser.add_argument("--toy", required=True, help="a toy split folder (exact keypoints)")
    parser.add_argument("--n", type=int, default=1000, help="samples of each")
    args = parser.parse_args()
    generated, renders = visible(SyntheticDataset(args.generated), args.n), visible(ToyDataset(args.toy), args.n)
    wheels = [i for i, name in enumerate(KEYPOINT_NAMES) if name.startswith("wheel_")]
    print(f"both visible (share of images)   generated   renders   ({len(generated)} / {len(renders)} images)")
    for a, b in combinations(wheels, 2):
        pair = f"{KEYPOINT_NAMES[a]} + {KEYPOINT_NAMES[b]}"
        print(f"{pair:<38} {(generated[:, a] & generated[:, b]).mean():9.2f} {(renders[:, a] & renders[:, b]).mean():9.2f}")


if __name__ == "__main__":
    main()
