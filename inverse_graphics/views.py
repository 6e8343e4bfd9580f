"""Training views for the reconstructor: images with part labels, keypoints and cameras, held as
tensors. Sources: toy renders (exact cameras, labels and keypoints; the upper bound); folders the
label factory wrote (interpreter labels and keypoints, cameras from the viewpoint regressor); and
several views of each generated car by style mixing (GANverse3D's multi-view data)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from tqdm import tqdm

from datasetgan.backbone import Backbone
from datasetgan.factory import Labeler, image_at_label_grid
from datasources.base import DatasetFormatError, PartDataset
from datasources.classes import CAR_12
from datasources.synthetic import SyntheticDataset
from datasources.toy import (KEYPOINT_LOOKALIKES, KEYPOINT_NAMES, ToyDataset, ToySettings, build_car, keypoints_in_view,
                             mean_params, render_sample)

from .camera import assert_shape

CAMERA_KEYS = ("azimuth", "elevation", "distance", "fov")
VIEW_SEEDS = 1_000_000_000  # first seed of the viewpoint donors of mixed_views
RENAME_REACH = 0.125  # match_keypoint_names: keeps 99.6% of exact render labels (bench/keypoint_sides.py)


@dataclass(frozen=True)
class Batch:
    """A training batch on the training device."""

    images: Tensor  # float (B, 3, S, S) RGB in [0, 1]
    labels: Tensor  # int64 (B, S, S) ADE-Car-12, 0 = background
    keypoints: Tensor  # float (B, P, 3) rows (x, y, visible) in pixels
    cameras: Tensor  # float (B, 4) azimuth, elevation (degrees), distance, fov (degrees)


@dataclass(frozen=True)
class Views:
    """N training views on the CPU; keypoints unknown to a source have visible = 0."""

    images: Tensor  # uint8 (N, S, S, 3)
    labels: Tensor  # int64 (N, S, S) ADE-Car-12
    keypoints: Tensor  # float (N, P, 3) rows (x, y, visible) in pixels
    cameras: Tensor  # float (N, 4) CAMERA_KEYS
    groups: Tensor | None = None  # int64 (N,) views of one car share a value; None: each view alone

    def __post_init__(self):
        n, size = self.images.shape[:2]
        assert_shape(self.images, (n, size, size, 3), "images")
        assert_shape(self.labels, (n, size, size), "labels")
        assert_shape(self.keypoints, (n, len(KEYPOINT_NAMES), 3), "keypoints")
        assert_shape(self.cameras, (n, len(CAMERA_KEYS)), "cameras")
        if self.groups is not None:
            assert_shape(self.groups, (n,), "groups")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_size(self) -> int:
        return self.images.shape[1]

    def take(self, rows: slice | Tensor) -> "Views":
        """The views of rows (a slice or int64 indices), groups included."""
        return Views(self.images[rows], self.labels[rows], self.keypoints[rows], self.cameras[rows],
                     None if self.groups is None else self.groups[rows])

    def batch(self, index: Tensor, device: torch.device | str = "cpu") -> Batch:
        """index: int64 (B,) rows -> a Batch on device."""
        return Batch(images=self.images[index].permute(0, 3, 1, 2).float().div(255).to(device),
                     labels=self.labels[index].to(device), keypoints=self.keypoints[index].to(device),
                     cameras=self.cameras[index].to(device))


def _stack(images: list[np.ndarray], labels: list[np.ndarray], keypoints: list[np.ndarray],
           cameras: list[list[float]], groups: list[int] | None = None) -> Views:
    """Per-view arrays -> Views."""
    return Views(images=torch.from_numpy(np.stack(images)), labels=torch.from_numpy(np.stack(labels)).long(),
                 keypoints=torch.from_numpy(np.stack(keypoints)).float(),
                 cameras=torch.tensor(cameras, dtype=torch.float32),
                 groups=None if groups is None else torch.tensor(groups, dtype=torch.int64))


def _resized(image: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (H, W, 3) and int (H, W) -> size x size: bilinear image, nearest labels."""
    image = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    return image, np.asarray(Image.fromarray(labels.astype(np.uint8)).resize((size, size), Image.NEAREST))


def _unlabelled_keypoints(count: int) -> list[np.ndarray]:
    """count zero keypoint arrays (visible 0): the source has no keypoints."""
    return [np.zeros((len(KEYPOINT_NAMES), 3), np.float32)] * count


def toy_views(seeds: list[int], settings: ToySettings = ToySettings()) -> Views:
    """Render the toy samples of `seeds` in memory (about 60 ms each at 64x64)."""
    samples = [render_sample(seed, settings) for seed in tqdm(seeds, desc="toy renders", unit="img", leave=False)]
    return _stack([s.image for s in samples], [s.labels for s in samples], [s.keypoints for s in samples],
                  [[s.meta["camera"][k] for k in CAMERA_KEYS] for s in samples])


def dataset_views(dataset: PartDataset) -> Views:
    """Every sample of a dataset whose meta holds its camera (a toy split folder: benchmark toy)."""
    samples = [dataset[i] for i in tqdm(range(len(dataset)), desc="reading views", unit="img", leave=False)]
    if not samples:
        raise ValueError("the dataset is empty")
    return _stack([s.image for s in samples], [s.labels for s in samples], [s.keypoints for s in samples],
                  [[s.meta["camera"][k] for k in CAMERA_KEYS] for s in samples])


def toy_folder_views(root: str | Path) -> Views:
    """A toy split written by `benchmark toy` (exact cameras, labels and keypoints)."""
    return dataset_views(ToyDataset(root))


def mean_car_keypoints(cameras: np.ndarray, size: int) -> np.ndarray:
    """cameras: float (N, 4) CAMERA_KEYS -> float (N, P, 3): where the toy world's mean car shows its keypoints
    (x, y, visible) in size x size views under each camera."""
    car = build_car(mean_params())
    return np.stack([keypoints_in_view(car, dict(zip(CAMERA_KEYS, map(float, c))), size) for c in cameras])


def match_keypoint_names(keypoints: np.ndarray, cameras: np.ndarray, size: int,
                         rename_reach: float | None = None) -> np.ndarray:
    """keypoints: float (N, P, 3) rows (x, y, visible) in pixels of size x size views; cameras: float (N, 4)
    CAMERA_KEYS. Returns them renamed within each group of KEYPOINT_LOOKALIKES: a view's visible keypoints of a
    group go to those of the group's names that the toy world's mean car shows under the view's camera, by a
    min-cost assignment on the squared pixel distance to where the mean car shows them; keypoints left over
    (more found than shown) are marked hidden, and so, with rename_reach (a share of the side), is a keypoint
    given another name than its own that lies farther than that from where the mean car shows the new name.
    Why: an interpreter that finds a wheel can still call it the wrong one (GAN features barely tell a car's
    sides apart); the camera the reconstructor trains with decides the names. But a keypoint found where the
    camera hides its name may be no keypoint at all, and renaming it should not make it a far-off label."""
    index = {name: k for k, name in enumerate(KEYPOINT_NAMES)}
    groups = [np.array([index[name] for name in group]) for group in KEYPOINT_LOOKALIKES]
    out = np.array(keypoints, np.float32)
    for view, expected in zip(out, mean_car_keypoints(cameras, size)):
        for names in groups:
            found, shown = names[view[names, 2] > 0], names[expected[names, 2] > 0]
            labelled, chosen = linear_sum_assignment(
                np.square(view[found, None, :2] - expected[None, shown, :2]).sum(-1))
            rows = view[found[labelled]]
            if rename_reach is not None:
                far = np.linalg.norm(rows[:, :2] - expected[shown[chosen], :2], axis=1) > rename_reach * size
                rows[far & (found[labelled] != shown[chosen]), 2] = 0
            view[names, 2] = 0
            view[shown[chosen]] = rows
    return out


def synthetic_views(root: str | Path, estimate_cameras, size: int, need_keypoints: bool = False,
                    match_names: bool = True, rename_reach: float | None = None) -> Views:
    """The kept samples of a label factory folder (`benchmark generate`), resized to size x size
    (bilinear images, nearest labels), cameras from estimate_cameras: uint8 (N, S, S, 3) -> float
    (N, 4); the samples' keypoints (generate --keypoints-config) scaled to size and, with match_names, renamed
    to agree with the cameras (match_keypoint_names, with rename_reach), or none (visible 0), which need_keypoints
    refuses before any work."""
    index = Path(root) / "index.json"
    dataset = SyntheticDataset(root)
    classes = getattr(dataset, "classes", None)  # keypoint-only folders have none
    if classes != CAR_12:
        raise DatasetFormatError(index, f"part labels in {CAR_12.name}, got "
                                        f"{classes.name if classes else 'keypoints only'}")
    if dataset.keypoint_names and dataset.keypoint_names != KEYPOINT_NAMES:
        raise DatasetFormatError(index, f"the toy car's keypoints {', '.join(KEYPOINT_NAMES)}")
    if need_keypoints and not dataset.keypoint_names:
        raise DatasetFormatError(index, "keypoints for the reconstructor's keypoint loss: generate the set with "
                                        "--keypoints-config, or train with --weight keypoints=0")
    if len(dataset) == 0:
        raise DatasetFormatError(index, "at least one kept sample")
    images, labels, keypoints = [], [], []
    for sample in (dataset[i] for i in range(len(dataset))):
        image, label = _resized(sample.image, sample.labels, size)
        images.append(image), labels.append(label)
        if sample.keypoints is None:
            keypoints.append(_unlabelled_keypoints(1)[0])
        else:   # label pixels -> view pixels (x, y scaled; visibility kept)
            keypoints.append(sample.keypoints * [size / sample.labels.shape[1], size / sample.labels.shape[0], 1])
    cameras = estimate_cameras(torch.from_numpy(np.stack(images))).numpy()
    if match_names and dataset.keypoint_names:
        keypoints = list(match_keypoint_names(np.stack(keypoints), cameras, size, rename_reach))
    return _stack(images, labels, keypoints, cameras.tolist())


def mixed_views(backbone: Backbone, labeler: Labeler, estimate_cameras, identities: list[int], views_per_car: int,
                view_layers: int = 4, size: int = 64) -> Views:
    """views_per_car views of the generated car of each identity seed: view 0 is its own sample, view
    k > 0 takes the first view_layers w+ layers (the coarse ones, which set the viewpoint; GANverse3D
    uses 4) from seed VIEW_SEEDS + identity * views_per_car + k. Noise stays the identity's. Labels
    from labeler, cameras from estimate_cameras (as synthetic_views), groups = identity index."""
    if not 0 < view_layers < backbone.num_ws:
        raise ValueError(f"view_layers must be in [1, {backbone.num_ws - 1}] for this generator, got {view_layers}")
    images, labels, groups = [], [], []
    for group, seed in enumerate(tqdm(identities, desc="style-mixed views", unit="car")):
        donors = [seed] + [VIEW_SEEDS + seed * views_per_car + k for k in range(1, views_per_car)]
        ws = backbone.ws(backbone.z(donors))  # (K, L, D)
        mixed = torch.cat([ws[:, :view_layers], ws[:1, view_layers:].expand(len(donors), -1, -1)], 1)
        sample = backbone.synthesize(mixed, seeds=[seed] * len(donors))
        car_labels = labeler(sample)[0].cpu().numpy()
        pictures = image_at_label_grid(sample.image, car_labels.shape[1:]).cpu().numpy()
        for picture, label in zip(pictures, car_labels):
            image, label = _resized(picture, label, size)
            images.append(image), labels.append(label), groups.append(group)
    cameras = estimate_cameras(torch.from_numpy(np.stack(images))).tolist()
    return _stack(images, labels, _unlabelled_keypoints(len(images)), cameras, groups)
