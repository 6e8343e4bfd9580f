"""The viewpoint regressor: a small CNN from an image to its camera, trained on toy renders (whose
cameras are known) and used to give cameras to generated images.

From one image only the apparent size d tan(fov / 2) is identifiable, not distance d and field of
view apart, so estimated cameras use a fixed fov (ViewpointConfig.fov) and the distance that gives
that apparent size. Outputs are (cos az, sin az, elevation / 30 deg, log(d tan(fov / 2))), so the
azimuth wraps around without a jump.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from datasets.base import CheckpointFormatError
from datasets.files import atomic_write, read_torch

from .camera import assert_shape
from .views import Views

ELEVATION_SCALE = 30.0  # degrees per unit of the elevation output


@dataclass(frozen=True)
class ViewpointConfig:
    """Architecture of the regressor and the fov of the cameras it gives."""

    image_size: int = 64
    channels: tuple[int, ...] = (32, 64, 128, 256)  # one stride-2 conv block each
    fov: float = 32.5  # degrees: the middle of the toy world's range


class ViewpointRegressor(nn.Module):
    """image -> (cos az, sin az, elevation / 30, log apparent size)."""

    def __init__(self, config: ViewpointConfig = ViewpointConfig()):
        super().__init__()
        self.config = config
        blocks, previous = [], 3
        for width in config.channels:
            blocks += [nn.Conv2d(previous, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            previous = width
        self.features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(previous, 4)

    def forward(self, images: Tensor) -> Tensor:
        """images: float (B, 3, S, S) RGB in [0, 1] -> float (B, 4)."""
        size = self.config.image_size
        assert_shape(images, (None, 3, size, size), "images")
        return self.head(self.features((images - 0.5) * 4))


def encode(cameras: Tensor) -> Tensor:
    """cameras: float (N, 4) azimuth, elevation, distance, fov -> float (N, 4) regression targets."""
    az, el, dist, fov = cameras.unbind(1)
    az = torch.deg2rad(az)
    apparent = dist * torch.tan(torch.deg2rad(fov) / 2)
    return torch.stack([az.cos(), az.sin(), el / ELEVATION_SCALE, torch.log(apparent)], 1)


def decode(outputs: Tensor, fov: float) -> Tensor:
    """outputs: float (N, 4) -> cameras float (N, 4): azimuth in [0, 360), elevation, distance at `fov`."""
    az = torch.rad2deg(torch.atan2(outputs[:, 1], outputs[:, 0])) % 360
    distance = torch.exp(outputs[:, 3]) / math.tan(math.radians(fov) / 2)
    return torch.stack([az, outputs[:, 2] * ELEVATION_SCALE, distance, torch.full_like(az, fov)], 1)


def train_viewpoint(views: Views, steps: int, config: ViewpointConfig = ViewpointConfig(), batch: int = 32,
                    lr: float = 1e-3, seed: int = 0, device: str | torch.device = "cpu") -> ViewpointRegressor:
    """Fit the regressor to the views' cameras (mean squared error on the encoded targets)."""
    torch.manual_seed(seed)
    model = ViewpointRegressor(config).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    targets = encode(views.cameras)
    rng = torch.Generator().manual_seed(seed)
    bar = tqdm(range(steps), desc="viewpoint regressor", unit="step")
    for _ in bar:
        index = torch.randint(len(views), (batch,), generator=rng)
        loss = F.mse_loss(model(views.batch(index, device).images), targets[index].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    return model.eval()


@torch.no_grad()
def estimate_cameras(model: ViewpointRegressor, images: Tensor, batch: int = 256) -> Tensor:
    """images: uint8 (N, S, S, 3) -> cameras float (N, 4) azimuth, elevation, distance, fov (CPU)."""
    model.eval()
    device = next(model.parameters()).device
    outputs = [model(chunk.permute(0, 3, 1, 2).float().div(255).to(device)).cpu() for chunk in images.split(batch)]
    return decode(torch.cat(outputs), model.config.fov)


def azimuth_error(estimated: Tensor, truth: Tensor) -> Tensor:
    """estimated, truth: float (N, 4) cameras -> float (N,) absolute azimuth difference in [0, 180] degrees."""
    diff = (estimated[:, 0] - truth[:, 0]) % 360
    return torch.minimum(diff, 360 - diff)


def save_viewpoint(path: str | Path, model: ViewpointRegressor) -> None:
    """Write the config and weights atomically."""
    saved = {"config": asdict(model.config), "state_dict": model.state_dict()}
    atomic_write(Path(path), lambda tmp: torch.save(saved, tmp))


def load_viewpoint(path: str | Path, device: str | torch.device = "cpu") -> ViewpointRegressor:
    """Rebuild what save_viewpoint wrote; anything else fails with CheckpointFormatError naming the file."""
    path = Path(path)
    saved = read_torch(path, "viewpoint regressor checkpoint")
    try:
        config = saved["config"]
        model = ViewpointRegressor(ViewpointConfig(**{**config, "channels": tuple(config["channels"])}))
        model.load_state_dict(saved["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:  # missing keys, foreign config or weights
        raise CheckpointFormatError(f"{path}: not a viewpoint regressor checkpoint ({error})") from None
    return model.to(device).eval()
