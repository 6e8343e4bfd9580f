"""Do style-mixed views change the viewpoint? For N generated cars, build the multi-view sets `3d train --mixed`
trains on (each car's coarse w+ layers swapped for a donor's) and let the viewpoint regressor say where each view
looks from. Prints, per number of swapped layers: the median azimuth change from a car's own view to its mixed
views, the share of mixed views turned by more than 30 degrees, and for comparison the same between the donors'
own (unmixed) samples and the car's; a mixed set whose views do not turn gives no new viewpoints to train on.

    python bench/mixed_views.py --cars 50 --views 4 --layers 2,4,6
"""
from __future__ import annotations

import argparse
import functools

import torch

from benchmark import configs
from benchmark.cli import INTERPRETER_ENTRIES, TOY_INTERPRETER_CONFIG, TOY_VIEWPOINT
from datasetgan.factory import image_at_label_grid
from datasetgan.pipeline import labeler_from_config, project_path
from inverse_graphics.viewpoint import azimuth_error, estimate_cameras, load_viewpoint
from inverse_graphics.views import VIEW_SEEDS, mixed_views


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=TOY_INTERPRETER_CONFIG, help="interpreter config (its generator)")
    parser.add_argument("--viewpoint", default=str(TOY_VIEWPOINT), help="viewpoint regressor checkpoint")
    parser.add_argument("--cars", type=int, default=50, help="identities (seeds 0..N-1)")
    parser.add_argument("--views", type=int, default=4, help="views per car (the first is the car's own)")
    parser.add_argument("--layers", default="2,4,6", help="comma-separated w+ layer counts taken from the donor")
    return parser.parse_args()


def turned(azimuths: torch.Tensor) -> torch.Tensor:
    """azimuths: float (C, V) degrees, view 0 a car's own -> float (C * (V - 1),) change of every other view."""
    own = azimuths[:, :1].expand(-1, azimuths.shape[1] - 1).reshape(-1)
    other = azimuths[:, 1:].reshape(-1)
    as_camera = lambda a: torch.stack([a, *torch.zeros(3, len(a))], 1)  # noqa: E731
    return azimuth_error(as_camera(other), as_camera(own))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    interp = configs.load(project_path(args.config), INTERPRETER_ENTRIES)
    backbone, labeler, *_ = labeler_from_config(interp, "cpu")
    regressor = load_viewpoint(args.viewpoint, "cpu")
    cameras = functools.partial(estimate_cameras, regressor)
    size = regressor.config.image_size
    looks = lambda seeds: cameras(image_at_label_grid(backbone.sample(seeds).image, (size, size)))[:, 0]  # noqa: E731
    identities = list(range(args.cars))
    donors = [VIEW_SEEDS + seed * args.views + k for seed in identities for k in range(1, args.views)]
    own, theirs = looks(identities), looks(donors).reshape(args.cars, args.views - 1)
    base = turned(torch.cat([own[:, None], theirs], 1))
    print(f"{args.cars} cars, {args.views} views each; azimuth change from a car's own view (regressor, degrees)")
    print(f"donors' own samples:   median {base.median():5.1f}, turned > 30: {(base > 30).float().mean():.0%}")
    for layers in (int(n) for n in args.layers.split(",")):
        views = mixed_views(backbone, labeler, cameras, identities, args.views, layers, size)
        change = turned(torch.as_tensor(views.cameras)[:, 0].reshape(args.cars, args.views))
        print(f"mixed, {layers} layers:     median {change.median():5.1f}, turned > 30: {(change > 30).float().mean():.0%}")


if __name__ == "__main__":
    main()
