"""Forward+backward time per image of the sparse rasterizer on a 642-vertex sphere, with the
brute-force rasterize_dense at 64x64 as a reference in the same process."""

from __future__ import annotations

import argparse
import time
from typing import Callable

import torch
import trimesh

from inverse_graphics import (
    Fragments,
    RasterSettings,
    interpolate,
    look_at,
    project,
    rasterize,
    rasterize_dense,
    soft_silhouette,
)

Rasterizer = Callable[[torch.Tensor, torch.Tensor, RasterSettings], Fragments]


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--batch", type=int, default=8, help="images per forward+backward")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs, the median is reported")
    parser.add_argument("--device", default="cpu", help="torch device")
    return parser.parse_args()


def step(
    rasterizer: Rasterizer,
    verts: torch.Tensor,
    faces: torch.Tensor,
    colours: torch.Tensor,
    angles: tuple[torch.Tensor, torch.Tensor],
    settings: RasterSettings,
) -> None:
    """One forward+backward: project, rasterize, interpolate colours, soft silhouette, loss."""
    verts.grad = colours.grad = None
    batch = len(angles[0])
    cameras = look_at(angles[0], angles[1], 3.0, 40.0, settings.image_size)
    screen = project(verts.expand(batch, -1, -1), cameras)
    fragments = rasterizer(screen, faces, settings)
    image = interpolate(fragments, faces, colours.expand(batch, -1, -1))
    mask = soft_silhouette(screen, faces, fragments, settings)
    loss = image.square().mean() + (mask - 0.5).square().mean()
    loss.backward()


def ms_per_image(rasterizer: Rasterizer, size: int, args: argparse.Namespace) -> float:
    """Median milliseconds per image of step() over args.repeats runs after one warm-up."""
    torch.manual_seed(0)
    mesh = trimesh.creation.icosphere(subdivisions=3)
    device = torch.device(args.device)
    verts = torch.tensor(mesh.vertices, dtype=torch.float32, device=device)[None].requires_grad_()
    faces = torch.tensor(mesh.faces, dtype=torch.int64, device=device)
    colours = torch.rand(1, len(mesh.vertices), 3, device=device, requires_grad=True)
    angles = (
        torch.rand(args.batch, device=device) * 360,
        torch.rand(args.batch, device=device) * 60 - 20,
    )
    settings = RasterSettings(image_size=size)
    times = []
    for _ in range(args.repeats + 1):
        start = time.perf_counter()
        step(rasterizer, verts, faces, colours, angles, settings)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times[1:])[len(times[1:]) // 2] / args.batch


def main() -> None:
    """Print ms per image for the sparse path at 64 and 256 pixels and the dense reference."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    print(f"device={args.device} threads={args.threads} batch={args.batch} repeats={args.repeats}")
    fast = {size: ms_per_image(rasterize, size, args) for size in (64, 256)}
    for size, ms in fast.items():
        print(f"rasterize        {size:3d}x{size:<3d} {ms:8.2f} ms/image")
    dense = ms_per_image(rasterize_dense, 64, args)
    print(f"rasterize_dense   64x64  {dense:8.2f} ms/image  (fast/dense = {fast[64] / dense:.3f})")


if __name__ == "__main__":
    main()
