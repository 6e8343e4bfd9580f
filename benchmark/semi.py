"""s4GAN (Mittal et al., TPAMI 2019), the semi-supervised baseline of the paper's Table 1, as an
objective for the shared trainer. Its MLMT branch gates logits by image-level class presence; with
one object category every image holds the category, so it reduces to s4GAN (left out).

Deviation: the segmenter uses the shared trainer's Adam and step budget (every variant has the same network,
optimiser and number of optimiser steps), not the reference's SGD (momentum 0.9, weight decay 5e-4, poly
decay, 10x head learning rate, 40,000 iterations); the discriminator keeps Adam 1e-4. Each run record says
so (facts.optimiser).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.segmentation import to_input
from datasetgan.distributed import average_gradients
from datasources.base import IGNORE
from inverse_graphics.camera import assert_shape


@dataclass(frozen=True)
class S4GANSettings:
    """Loss weights and thresholds of the reference implementation."""

    unlabelled: int = 10_000      # images of the unlabelled pool (ours: the toy world's unlabelled split)
    feature_matching: float = 0.1
    self_training: float = 1.0
    threshold: float = 0.6        # self-training uses unlabelled predictions the discriminator scores above this
    d_lr: float = 1e-4


class Discriminator(nn.Module):
    """x: float (B, K + 3, H, W) class probabilities (or one-hot truth) beside the image
    -> (score float (B,) in (0, 1), features float (B, 512) before the last layer)."""

    def __init__(self, num_classes: int):
        super().__init__()
        widths = (num_classes + 3, 64, 128, 256, 512)
        layers = []
        for i in range(4):
            layers += [nn.Conv2d(widths[i], widths[i + 1], 4, 2, 1), nn.LeakyReLU(0.2)]
            if i < 3:
                layers.append(nn.Dropout2d(0.5))
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(512, 1)
        self.num_classes = num_classes

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        assert_shape(x, (None, self.num_classes + 3, None, None), "x")
        features = self.convs(x).mean((2, 3))
        return torch.sigmoid(self.fc(features))[:, 0], features


def one_hot(labels: Tensor, num_classes: int) -> Tensor:
    """labels: int64 (B, H, W) with IGNORE -> float (B, K, H, W); ignored pixels are all zero."""
    valid = labels != IGNORE
    return F.one_hot(labels.where(valid, 0), num_classes).permute(0, 3, 1, 2).float() * valid[:, None]


class S4GAN:
    """Segmenter loss = CE(labelled) + 0.1 feature matching (L1 between the discriminator's mean
    features on truth and on unlabelled predictions) + 1.0 self-training (CE on the argmax of the
    unlabelled predictions the discriminator scores above 0.6); the discriminator is trained after
    each segmenter step with BCE (truth 1, prediction 0).

    unlabelled: uint8 (M, H, W, 3), the pool; batches of it are drawn with a seeded generator. class_weight: float
    (K,) weights of the labelled cross-entropy, as every variant's (datasources.classes.class_weights), or None."""

    def __init__(self, unlabelled: Tensor, num_classes: int, settings: S4GANSettings, device: torch.device,
                 seed: int = 0, class_weight: Tensor | None = None):
        self.unlabelled = unlabelled
        self.class_weight = None if class_weight is None else class_weight.to(device)
        self.settings = settings
        self.device = device
        self.k = num_classes
        torch.manual_seed(seed)
        self.D = Discriminator(num_classes).to(device)
        self.d_optimizer = torch.optim.Adam(self.D.parameters(), lr=settings.d_lr, betas=(0.9, 0.99))
        self.generator = torch.Generator().manual_seed(seed)
        self._pending = None

    def loss(self, net: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
        """images: float (B, 3, H, W) normalised; labels: int64 (B, H, W) -> scalar segmenter loss."""
        ce = F.cross_entropy(net(images)["out"], labels, weight=self.class_weight, ignore_index=IGNORE)
        idx = torch.randint(len(self.unlabelled), (len(images),), generator=self.generator)
        unlabelled = to_input(self.unlabelled[idx].to(self.device))
        logits = net(unlabelled)["out"]
        prob = F.softmax(logits, dim=1)
        fake = torch.cat([prob, unlabelled], 1)
        real = torch.cat([one_hot(labels, self.k), images], 1)
        score, fake_features = self.D(fake)
        with torch.no_grad():   # the truth's features are a constant for the segmenter
            _, real_features = self.D(real)
        fm = (real_features.mean(0) - fake_features.mean(0)).abs().mean()
        confident = score.detach() > self.settings.threshold
        st = F.cross_entropy(logits[confident], prob.detach().argmax(1)[confident]) if confident.any() \
            else logits.sum() * 0
        self._pending = (fake.detach(), real.detach())
        return ce + self.settings.feature_matching * fm + self.settings.self_training * st

    def after_step(self) -> None:
        """One discriminator step on the last batch (its gradients from the segmenter loss are dropped)."""
        fake, real = self._pending
        self.d_optimizer.zero_grad(set_to_none=True)
        d_fake, _ = self.D(fake)
        d_real, _ = self.D(real)
        loss = F.binary_cross_entropy(d_fake, torch.zeros_like(d_fake)) + \
            F.binary_cross_entropy(d_real, torch.ones_like(d_real))
        loss.backward()
        average_gradients(self.D)   # under torchrun the ranks keep one discriminator
        self.d_optimizer.step()

    def state_dict(self) -> dict:
        return {"D": self.D.state_dict(), "d_optimizer": self.d_optimizer.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.D.load_state_dict(state["D"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])
        self.generator.set_state(state["generator"])
