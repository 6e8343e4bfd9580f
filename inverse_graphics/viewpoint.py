"""The viewpoint regressor: a small CNN from an image to its camera, trained on toy renders (whose
cameras are known) and used to give cameras to generated images.

From one image only the apparent size d tan(fov / 2) is identifiable, not distance d and field of
view apart, so estimated cameras use a fixed fov (ViewpointConfig.fov) and the distance that gives
that apparent size. The azimuth is classified into bins and refined by an offset within the bin: a front and a
rear view look alike at 64 pixels, and a classifier keeps both guesses apart where a regression of (cos, sin)
averages them into a third, wrong one. Training mirrors half of each batch left to right: the toy cars are
symmetric, and a mirrored view of azimuth a is the view of azimuth 180 - a.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from datasources.base import CheckpointFormatError
from datasources.files import atomic_write, read_torch

from .camera import assert_shape
from .views import Views

ELEVATION_SCALE = 30.0  # degrees per unit of the elevation output


@dataclass(frozen=True)
class ViewpointConfig:
    """Architecture of the regressor and the fov of the cameras it gives."""

    image_size: int = 64
    channels: tuple[int, ...] = (32, 64, 128, 256)  # one stride-2 conv block each
    fov: float = 27.5  # degrees: the middle of the toy world's range
    azimuth_bins: int = 24  # 15 degrees each

    @property
    def outputs(self) -> int:
        """Bin logits, in-bin offsets (one per bin), elevation / 30, log apparent size."""
        return 2 * self.azimuth_bins + 2


class ViewpointRegressor(nn.Module):
    """image -> float (B, config.outputs): azimuth bin logits, in-bin offsets, elevation / 30, log apparent size."""

    def __init__(self, config: ViewpointConfig = ViewpointConfig()):
        super().__init__()
        self.config = config
        blocks, previous = [], 3
        for width in config.channels:
            blocks += [nn.Conv2d(previous, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            previous = width
        self.features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(previous, config.outputs)

    def forward(self, images: Tensor) -> Tensor:
        """images: float (B, 3, S, S) RGB in [0, 1] -> float (B, config.outputs)."""
        size = self.config.image_size
        assert_shape(images, (None, 3, size, size), "images")
        return self.head(self.features((images - 0.5) * 4))


def encode(cameras: Tensor, bins: int) -> tuple[Tensor, Tensor, Tensor]:
    """cameras: float (N, 4) azimuth, elevation, distance, fov -> targets: azimuth bin int64 (N,), offset from the
    bin's centre float (N,) in bin widths ([-0.5, 0.5)), and (elevation / 30, log apparent size) float (N, 2)."""
    az, el, dist, fov = cameras.unbind(1)
    position = (az % 360) / (360 / bins)   # in bin widths; bin k spans [k, k + 1)
    apparent = dist * torch.tan(torch.deg2rad(fov) / 2)
    return position.long() % bins, position - position.floor() - 0.5, torch.stack([el / ELEVATION_SCALE,
                                                                                  torch.log(apparent)], 1)


def decode(outputs: Tensor, config: ViewpointConfig) -> Tensor:
    """outputs: float (N, config.outputs) -> cameras float (N, 4): azimuth in [0, 360) (the likeliest bin's centre
    plus its offset), elevation, distance at config.fov."""
    bins = config.azimuth_bins
    best = outputs[:, :bins].argmax(1)
    offset = outputs[:, bins:2 * bins].gather(1, best[:, None])[:, 0].clamp(-0.5, 0.5)
    az = ((best + 0.5 + offset) * (360 / bins)) % 360
    distance = torch.exp(outputs[:, -1]) / math.tan(math.radians(config.fov) / 2)
    return torch.stack([az, outputs[:, -2] * ELEVATION_SCALE, distance, torch.full_like(az, config.fov)], 1)


def mirrored(images: Tensor, cameras: Tensor) -> tuple[Tensor, Tensor]:
    """Left-right mirror images float (B, 3, S, S) of a symmetric car, and their cameras float (B, 4): the mirror
    of the view from azimuth a is the view from azimuth 180 - a (the world mirrored through the car's middle)."""
    return images.flip(-1), torch.cat([((180 - cameras[:, :1]) % 360), cameras[:, 1:]], 1)


def viewpoint_loss(outputs: Tensor, cameras: Tensor, bins: int) -> Tensor:
    """Cross-entropy of the azimuth bin, plus the squared errors of the true bin's offset and of elevation and
    apparent size."""
    bin_, offset, rest = encode(cameras, bins)
    predicted_offset = outputs[:, bins:2 * bins].gather(1, bin_[:, None])[:, 0]
    return (F.cross_entropy(outputs[:, :bins], bin_) + F.mse_loss(predicted_offset, offset)
            + F.mse_loss(outputs[:, -2:], rest))


def train_viewpoint(views: Views, steps: int, config: ViewpointConfig = ViewpointConfig(), batch: int = 32,
                    lr: float = 1e-3, seed: int = 0, device: str | torch.device = "cpu") -> ViewpointRegressor:
    """Fit the regressor to the views' cameras (viewpoint_loss), half of every batch mirrored."""
    torch.manual_seed(seed)
    model = ViewpointRegressor(config).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rng = torch.Generator().manual_seed(seed)
    bar = tqdm(range(steps), desc="viewpoint regressor", unit="step")
    for _ in bar:
        index = torch.randint(len(views), (batch,), generator=rng)
        images, cameras = views.batch(index, device).images, views.cameras[index].to(device)
        flip = torch.arange(batch, device=device) < batch // 2
        flipped_images, flipped_cameras = mirrored(images, cameras)
        images = torch.where(flip[:, None, None, None], flipped_images, images)
        cameras = torch.where(flip[:, None], flipped_cameras, cameras)
        loss = viewpoint_loss(model(images), cameras, config.azimuth_bins)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    return model.eval()


def azimuth_certainty(outputs: Tensor, config: ViewpointConfig) -> Tensor:
    """outputs: float (N, config.outputs) -> float (N,) in (0, 1]: the softmax mass of the azimuth bins within 90
    degrees of the likeliest one. Low where the regressor cannot tell a view from the one turned round (a front
    and a rear view), which a camera decoded from the likeliest bin does not show."""
    bins = config.azimuth_bins
    probability = outputs[:, :bins].softmax(1)
    offset = (torch.arange(bins) - probability.argmax(1, keepdim=True)) % bins   # (N, bins) in bins from the best
    near = torch.minimum(offset, bins - offset) * (360 / bins) < 90
    return (probability * near).sum(1)


@torch.no_grad()
def viewpoint_outputs(model: ViewpointRegressor, images: Tensor, batch: int = 256) -> Tensor:
    """images: uint8 (N, S, S, 3) -> the regressor's outputs float (N, config.outputs) (CPU)."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(chunk.permute(0, 3, 1, 2).float().div(255).to(device)).cpu()
                      for chunk in images.split(batch)])


def estimate_cameras(model: ViewpointRegressor, images: Tensor, batch: int = 256) -> Tensor:
    """images: uint8 (N, S, S, 3) -> cameras float (N, 4) azimuth, elevation, distance, fov (CPU)."""
    return decode(viewpoint_outputs(model, images, batch), model.config)


def most_certain(certainty: Tensor, share: float) -> Tensor:
    """certainty: float (N,) (azimuth_certainty) -> int64 (K,) rows, in order, of the views whose azimuth the
    regressor is surest of, K = round(share * N), at least 1: drops the views it may have turned round."""
    kept = max(1, round(share * len(certainty)))
    return certainty.argsort(descending=True, stable=True)[:kept].sort().values


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
