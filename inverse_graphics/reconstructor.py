"""The single-image car reconstructor: a ResNet encoder predicting the template's vertex offsets, a
UV texture, a UV part-logit map (ADE-Car-12) and, per keypoint, a distribution over vertices whose
expectation is the 3D keypoint; plus its checkpoints and `reconstruct` for one uint8 image.

The predicted mesh lives in the world frame of camera.py (y up, front +x, right +z, metres): the
network must recognise the viewpoint itself, since training renders it through the true camera.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torchvision.models import resnet18
from torchvision.models.resnet import BasicBlock, ResNet

from datasources.base import CheckpointFormatError, DatasetFormatError
from datasources.classes import CAR_12
from datasources.files import atomic_write, read_torch
from datasources.toy.car import KEYPOINT_NAMES, swapped_keypoints

from .camera import assert_shape
from .render import sample_uv
from .template import Template, TemplateSettings

ENCODERS = {  # torchvision ResNets, randomly initialised (nothing is downloaded); all end in 512 channels
    "resnet18": lambda: resnet18(weights=None),
    "resnet10": lambda: ResNet(BasicBlock, [1, 1, 1, 1]),  # one block per stage: 4.9 M parameters
}
MIN_IMAGE_SIDE = 32  # smaller inputs are refused: too few pixels to show a car


@dataclass(frozen=True)
class ReconstructorConfig:
    """The network's architecture; stored in every checkpoint, which is rebuilt from it."""

    image_size: int = 64  # input images are S x S RGB
    encoder: str = "resnet10"  # a key of ENCODERS; resnet10 keeps a float16 checkpoint under 20 MB
    template: TemplateSettings = field(default_factory=TemplateSettings)
    texture_size: int = 32  # UV texture and part maps are T x T (a power of two >= 8)
    num_classes: int = len(CAR_12)
    num_keypoints: int = len(KEYPOINT_NAMES)
    symmetric: bool = True  # offsets mirrored across the car's z = 0 plane
    symmetric_keypoints: bool = True  # each keypoint's vertex weights are its mirror keypoint's, mirrored

    def __post_init__(self):
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; valid: {', '.join(ENCODERS)}")
        if self.texture_size < 8 or self.texture_size & (self.texture_size - 1):
            raise ValueError(f"texture_size must be a power of two >= 8, got {self.texture_size}")
        if self.symmetric_keypoints and self.num_keypoints != len(KEYPOINT_NAMES):
            raise ValueError(f"symmetric_keypoints pairs the toy car's {len(KEYPOINT_NAMES)} keypoints by name, "
                             f"got num_keypoints={self.num_keypoints}")

    @classmethod
    def from_dict(cls, data: dict) -> "ReconstructorConfig":
        """Inverse of dataclasses.asdict (nested template settings, tuples from lists)."""
        template = data["template"]   # checkpoints from before `shape` existed hold the ellipsoid
        data = {"symmetric_keypoints": False, **data}   # nor were keypoints tied before that option existed
        return cls(**{**data, "template": TemplateSettings(**{**template, "radii": tuple(template["radii"])})})


@dataclass(frozen=True)
class Prediction:
    """The network's output for a batch of B images."""

    vertices: Tensor  # float (B, V, 3) world positions: template + offsets
    offsets: Tensor  # float (B, V, 3) displacement of each template vertex
    texture: Tensor  # float (B, 3, T, T) RGB in [0, 1] over template UV
    part_logits: Tensor  # float (B, K, T, T) ADE-Car-12 logits over template UV
    keypoints: Tensor  # float (B, P, 3) expected vertex positions of each keypoint
    camera_delta: Tensor  # float (B, 3) in (-1, 1): refinement of azimuth, elevation, log distance


class UVDecoder(nn.Module):
    """A feature vector -> C maps of T x T: a 4 x 4 seed upsampled by conv blocks whose width halves
    after the first (down to 16), so each resolution costs about the same."""

    def __init__(self, in_features: int, out_channels: int, size: int, channels: int = 64):
        super().__init__()
        self.seed = nn.Linear(in_features, channels * 16)
        blocks, width = [], channels
        for i in range(int(math.log2(size // 4))):
            out = width if i == 0 else max(16, width // 2)
            blocks += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       nn.Conv2d(width, out, 3, padding=1), nn.ReLU()]
            width = out
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, features: Tensor) -> Tensor:
        """features: float (B, D) -> float (B, C, T, T)."""
        return self.out(self.blocks(self.seed(features).view(features.shape[0], -1, 4, 4)))


class Reconstructor(nn.Module):
    """image -> Prediction; the template's fixed tensors are non-persistent buffers."""

    def __init__(self, config: ReconstructorConfig = ReconstructorConfig()):
        super().__init__()
        self.config = config
        self.extra: dict = {}  # how it was trained (step, settings, source), set by load_reconstructor
        self.template = Template(config.template)
        t = self.template
        for name in ("vertices", "faces", "face_uvs", "vertex_uvs", "edge_faces", "mirror", "laplacian"):
            self.register_buffer(f"template_{name}", getattr(t, name), persistent=False)
        self.register_buffer("keypoint_mirror", torch.tensor(swapped_keypoints("left", "right")), persistent=False)
        n_vertices, width = t.num_vertices, 512
        self.encoder = ENCODERS[config.encoder]()
        self.encoder.fc = nn.Identity()
        self.shape = nn.Sequential(nn.Linear(width, 256), nn.ReLU(), nn.Linear(256, n_vertices * 3))
        self.uv = UVDecoder(width, 3 + config.num_classes, config.texture_size)
        self.keypoints = nn.Sequential(nn.Linear(width, 64), nn.ReLU(),
                                       nn.Linear(64, config.num_keypoints * n_vertices))
        self.camera = nn.Linear(width, 3)
        for last in (self.shape[-1], self.keypoints[-1], self.camera):  # start at the template, uniform keypoints
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, images: Tensor) -> Prediction:
        """images: float (B, 3, S, S) RGB in [0, 1]."""
        size = self.config.image_size
        assert_shape(images, (None, 3, size, size), "images")
        batch = images.shape[0]
        features = self.encoder((images - 0.5) * 4)  # (B, 512), inputs roughly unit scale
        offsets = self.shape(features).view(batch, -1, 3)
        if self.config.symmetric:
            mirrored = offsets[:, self.template_mirror] * offsets.new_tensor([1.0, 1.0, -1.0])
            offsets = (offsets + mirrored) / 2
        vertices = self.template_vertices + offsets
        maps = self.uv(features)
        weights = self.keypoints(features).view(batch, self.config.num_keypoints, -1).softmax(-1)  # (B, P, V)
        if self.config.symmetric_keypoints:  # a left keypoint learns from the right one's labels too, and back
            weights = (weights + weights[:, self.keypoint_mirror][..., self.template_mirror]) / 2
        return Prediction(vertices=vertices, offsets=offsets, texture=torch.sigmoid(maps[:, :3]),
                          part_logits=maps[:, 3:], keypoints=weights @ vertices,
                          camera_delta=torch.tanh(self.camera(features)))


def save_reconstructor(path: str | Path, model: Reconstructor, extra: dict | None = None) -> None:
    """Write the config, the template signature and the weights in float16 (half the size; loaded
    back as float32), atomically."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    saved = {"config": asdict(model.config), "template": model.template.signature, "state_dict": state,
             "extra": extra or {}}
    atomic_write(Path(path), lambda tmp: torch.save(saved, tmp))


def load_reconstructor(path: str | Path, device: str | torch.device = "cpu") -> Reconstructor:
    """Rebuild a model save_reconstructor wrote; a file of another format or another template fails
    with CheckpointFormatError naming it."""
    path = Path(path)
    saved = read_torch(path, "reconstructor checkpoint")
    if not isinstance(saved, dict) or not {"config", "template", "state_dict"} <= set(saved):
        raise CheckpointFormatError(f"{path}: expected a reconstructor checkpoint (keys config, template, state_dict)")
    try:
        config = ReconstructorConfig.from_dict(saved["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointFormatError(f"{path}: config is not a ReconstructorConfig ({error})") from None
    model = Reconstructor(config)
    if saved["template"] != model.template.signature:
        raise CheckpointFormatError(
            f"{path}: trained on another template (signature {saved['template']}); the config's template "
            f"{config.template} builds {model.template.signature} here ({model.template.num_vertices} vertices)")
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in saved["state_dict"].items()})
    except RuntimeError as error:
        raise CheckpointFormatError(f"{path}: weights do not fit the saved config and template ({error})") from None
    model.extra = saved.get("extra", {})
    return model.to(device).eval()


def read_image(path: str | Path) -> np.ndarray:
    """An image file -> uint8 (H, W, 3) RGB (alpha dropped); an unreadable file, a grayscale image or
    one too small for a car fails with DatasetFormatError naming the file."""
    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()
            mode, image = opened.mode, np.asarray(opened.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetFormatError(path, f"a readable image file ({error})") from None
    if mode in ("1", "L", "LA", "I", "I;16", "F"):
        raise DatasetFormatError(path, f"an RGB image, got a grayscale one (mode {mode})")
    try:
        check_image(image)
    except ValueError as error:
        raise DatasetFormatError(path, str(error)) from None
    return image


def check_image(image: np.ndarray) -> None:
    """Raise ValueError unless image is uint8 (H, W, 3) with H and W >= MIN_IMAGE_SIDE."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got shape {image.shape}"
                         + (" (grayscale?)" if image.ndim == 2 or image.shape[-1] in (1, 2) else ""))
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if min(image.shape[:2]) < MIN_IMAGE_SIDE:
        raise ValueError(f"image of {image.shape[1]}x{image.shape[0]} pixels is too small for a car; "
                         f"expected at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}")


def prepare_image(image: np.ndarray, size: int) -> Tensor:
    """image: uint8 (H, W, 3) RGB, H and W >= MIN_IMAGE_SIDE -> float (1, 3, size, size) in [0, 1].
    A non-square image is padded to a square by repeating its border, then resized (bilinear,
    antialiased); anything else fails with ValueError (check_image)."""
    image = np.asarray(image)
    check_image(image)
    h, w = image.shape[:2]
    pad_h, pad_w = (max(h, w) - h) // 2, (max(h, w) - w) // 2
    square = np.pad(image, ((pad_h, max(h, w) - h - pad_h), (pad_w, max(h, w) - w - pad_w), (0, 0)), mode="edge")
    resized = np.asarray(Image.fromarray(square).resize((size, size), Image.BILINEAR))
    return torch.from_numpy(resized.copy()).permute(2, 0, 1)[None].float() / 255


@torch.no_grad()
def reconstruct(model: Reconstructor, image: np.ndarray) -> dict:
    """One car image uint8 (H, W, 3) -> plain arrays (world frame of camera.py, metres):

    vertices float32 (V, 3); faces int64 (F, 3) counter-clockwise from outside;
    face_labels int64 (F,) ADE-Car-12 indices in [1, K): the UV part map at each face's centroid
    (background excluded); vertex_colors float32 (V, 3) RGB in [0, 1]: the texture at each vertex;
    texture uint8 (T, T, 3) and face_uvs float32 (F, 3, 2) for textured export (u may exceed 1 on
    faces across the seam: sample with wrap-around); keypoints float32 (P, 3) named keypoint_names.
    """
    model.eval()
    device = model.template_vertices.device
    pred = model(prepare_image(image, model.config.image_size).to(device))
    centroid_uv = model.template_face_uvs.mean(1)[None]  # (1, F, 2)
    face_logits = sample_uv(pred.part_logits, centroid_uv)[0]  # (F, K)
    vertex_colors = sample_uv(pred.texture, model.template_vertex_uvs[None])[0]  # (V, 3)
    return {
        "vertices": pred.vertices[0].cpu().numpy(),
        "faces": model.template_faces.cpu().numpy(),
        "face_labels": (face_logits[:, 1:].argmax(1) + 1).cpu().numpy(),
        "vertex_colors": vertex_colors.clamp(0, 1).cpu().numpy(),
        "texture": (pred.texture[0].permute(1, 2, 0) * 255).round().byte().cpu().numpy(),
        "face_uvs": model.template_face_uvs.cpu().numpy(),
        "keypoints": pred.keypoints[0].cpu().numpy(),
        "keypoint_names": KEYPOINT_NAMES,
    }
