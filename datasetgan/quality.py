"""Reproducible quality figures for generators of the toy world: the kernel inception distance (KID,
Binkowski et al. 2018) and precision / recall (Kynkaanniemi et al. 2019), both on features of a small
CNN that our code trains on toy renders, since no pretrained Inception network can be downloaded here.

The feature network learns, from labelled toy renders, each image's camera azimuth (as sin, cos)
and the fraction of pixels of each part class; its 128-d pooled features are what KID compares.
KID(real, generated) is reported beside KID(real, other real): the floor a perfect generator reaches.
Beside them, `layout_diversity` and `colour_diversity` put numbers on mode collapse that need no
feature network at all.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from datasources.toy import ToySettings, render_sample, split_seeds


@dataclass(frozen=True)
class QualitySettings:
    """Which toy samples train the feature net and serve as the two real sets; KID subset sizes; the
    neighbourhood size of precision and recall."""

    train_images: int = 1000    # labelled[0:train_images] train the feature network
    reference_images: int = 250  # labelled[train_images : train_images + N]: real set B
    real_images: int = 250      # the next N of the labelled split: real set A, held out from every choice (the
    #                             test split is not used, so a generator chosen by KID is not chosen on it)
    generated_images: int = 250
    epochs: int = 8
    subsets: int = 50
    subset_size: int = 100
    neighbours: int = 3          # k of the k-NN balls of precision and recall (Kynkaanniemi et al. use 3)
    seed: int = 0


class FeatureNet(nn.Module):
    """image float (B, 3, 64, 64) in [-1, 1] -> features float (B, 128); heads predict azimuth and part fractions."""

    def __init__(self, classes: int):
        super().__init__()
        widths = [3, 32, 64, 128, 128]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(widths, widths[1:]))
        self.norms = nn.ModuleList(nn.GroupNorm(8, b) for b in widths[1:])
        self.head = nn.Linear(128, 2 + classes)

    def feature_maps(self, x: Tensor) -> list[Tensor]:
        """The activations after each of the 4 blocks: float (B, C, H / 2^l, W / 2^l) for l = 1..4."""
        maps = []
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x)))
            maps.append(x)
        return maps

    def features(self, x: Tensor) -> Tensor:
        return self.feature_maps(x)[-1].mean([2, 3])

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def _render(seeds: list[int], desc: str) -> tuple[Tensor, Tensor]:
    """Toy images float (N, 3, 64, 64) in [-1, 1] and targets float (N, 2 + 12): sin, cos, part fractions."""
    images, targets = [], []
    for seed in tqdm(seeds, desc=desc, unit="img", leave=False):
        s = render_sample(seed, ToySettings())
        az = np.radians(s.meta["camera"]["azimuth"])
        fractions = np.bincount(s.labels.ravel(), minlength=12) / s.labels.size
        images.append(s.image)
        targets.append(np.concatenate([[np.sin(az), np.cos(az)], fractions]))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, torch.tensor(np.stack(targets), dtype=torch.float32)


def train_feature_net(settings: QualitySettings) -> FeatureNet:
    """Train the feature network on labelled toy renders (deterministic for a seed)."""
    torch.manual_seed(settings.seed)
    images, targets = _render(split_seeds("labelled", settings.train_images), "feature-net data")
    net = FeatureNet(targets.shape[1] - 2)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    order = torch.Generator().manual_seed(settings.seed)
    for _ in tqdm(range(settings.epochs), desc="feature net", unit="epoch", leave=False):
        for idx in torch.randperm(len(images), generator=order).split(32):
            pred = net(images[idx])
            loss = F.mse_loss(pred[:, :2], targets[idx, :2]) + 10 * F.mse_loss(pred[:, 2:], targets[idx, 2:])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return net.eval().requires_grad_(False)


def kid(a: Tensor, b: Tensor, subsets: int, subset_size: int, seed: int) -> tuple[float, float]:
    """a: (N, D), b: (M, D) features -> (mean, std) over random subsets of the unbiased MMD^2 with
    the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3."""
    rng = np.random.RandomState(seed)
    d = a.shape[1]
    m = min(subset_size, len(a), len(b))
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)].double()
        y = b[rng.choice(len(b), m, replace=False)].double()
        kxx, kyy, kxy = ((p @ q.T / d + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        values.append(float(_off_diagonal_mean(kxx) + _off_diagonal_mean(kyy) - 2 * kxy.mean()))
    return float(np.mean(values)), float(np.std(values))


def _off_diagonal_mean(k: Tensor) -> Tensor:
    """Mean of a square kernel matrix without its diagonal (the unbiased within-set term)."""
    m = k.shape[0]
    return (k.sum() - k.diagonal().sum()) / (m * (m - 1))


def layout_diversity(images: Tensor, cells: int = 8) -> float:
    """How much the coarse layout varies across images float (N, 3, H, W): each image as a cells x cells
    greyscale thumbnail standardised to zero mean and unit std (so colour and contrast shifts do not
    count), then the std across images per cell, averaged. A generator collapsed onto one layout
    scores near 0 whatever its colours; compare with the real images' figure."""
    g = F.adaptive_avg_pool2d(images.float().mean(1, keepdim=True), cells)[:, 0]
    g = (g - g.mean((1, 2), keepdim=True)) / (g.std((1, 2), keepdim=True) + 1e-6)
    return float(g.std(0).mean())


def precision_recall(real: Tensor, fake: Tensor, k: int) -> tuple[float, float]:
    """real: (N, D), fake: (M, D) features -> (precision, recall) of Kynkaanniemi et al. 2019: the fraction of
    fake samples inside the union of the real samples' k-NN balls, and of real samples inside the fake ones'."""

    def inside(points: Tensor, support: Tensor) -> float:
        radii = torch.cdist(support, support).kthvalue(k + 1, dim=1).values  # k+1: a point is its own 0th neighbour
        return float((torch.cdist(points, support) <= radii[None]).any(1).float().mean())

    real, fake = real.double(), fake.double()
    return inside(fake, real), inside(real, fake)


def colour_diversity(images: Tensor, box: tuple[float, float, float, float] = (0.4, 0.6, 0.3, 0.7)) -> float:
    """The spread of the car's mean colour over images float (N, 3, H, W): the mean RGB of a central box
    (rows, then columns, as fractions of the image; the car covers it in nearly every toy render, whose cars
    are centred), then the std across images per channel, averaged. Compare with the real images' figure."""
    h, w = images.shape[-2:]
    crop = images[..., int(box[0] * h):int(box[1] * h), int(box[2] * w):int(box[3] * w)]
    return float(crop.float().mean((2, 3)).std(0).mean())


def toy_quality(generate, settings: QualitySettings = QualitySettings()) -> dict:
    """KID and precision / recall of generated toy images against held-out toy renders (never the test split),
    beside the real-vs-real figures (another held-out set in place of the generator).

    generate: callable(seeds: list[int]) -> float (B, 3, 64, 64) images in [-1, 1].
    Returns plain data: both KIDs (mean, std, x 1000 as usually printed), precision and recall of the generated
    and the reference set, the layout and colour diversity of the real, reference and generated sets, and the
    settings.
    """
    net = train_feature_net(settings)
    first, labelled = settings.train_images, split_seeds("labelled")
    reference, _ = _render(labelled[first:first + settings.reference_images], "reference set")
    first += settings.reference_images
    real, _ = _render(labelled[first:first + settings.real_images], "real set")
    seeds = list(range(settings.generated_images))
    fake = torch.cat([generate(seeds[i:i + 25]) for i in range(0, len(seeds), 25)])
    f_real, f_ref, f_fake = (net.features(x) for x in (real, reference, fake))
    gen = kid(f_real, f_fake, settings.subsets, settings.subset_size, settings.seed)
    floor = kid(f_real, f_ref, settings.subsets, settings.subset_size, settings.seed)
    sets = {"real": real, "reference": reference, "generated": fake}
    return {"kid_x1000_generated": [1000 * v for v in gen], "kid_x1000_real_vs_real": [1000 * v for v in floor],
            "precision_recall": {"generated": precision_recall(f_real, f_fake, settings.neighbours),
                                 "reference": precision_recall(f_real, f_ref, settings.neighbours)},
            "layout_diversity": {name: layout_diversity(x) for name, x in sets.items()},
            "colour_diversity": {name: colour_diversity(x) for name, x in sets.items()},
            "settings": asdict(settings)}
