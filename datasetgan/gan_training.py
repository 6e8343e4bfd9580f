"""Training a StyleGAN2 generator on a folder of images: non-saturating logistic loss, lazy R1,
style mixing, an EMA copy of the generator and, optionally, PacGAN packs and mode anchors (a few
hundred training images that fixed latents must keep redrawing, against mode collapse).
Resumable: one checkpoint holds everything.

A run folder holds `training.pt` (generators, discriminator, optimisers, iteration, options),
`generator.pt` (the EMA generator alone: what the rest of the suite loads) and sample grids.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from tqdm import tqdm

from datasetgan.backbone import Backbone, Truncation
from datasetgan.quality import colour_diversity, layout_diversity
from datasetgan.stylegan2 import LRELU_GAIN, FullyConnected, Generator, GeneratorConfig, conv_input
from datasources.base import CheckpointFormatError, DatasetFormatError
from datasources.files import atomic_write, read_rgb, read_torch


TOY_GAN = Path(__file__).resolve().parents[1] / "checkpoints" / "toy-car-gan.pt"  # shipped with the code
BRANCHABLE = ("lr",)  # options a run may change when it branches off another run's state (resume_from, new folder)


@dataclass(frozen=True)
class TrainOptions:
    """Optimisation settings. The defaults are plain StyleGAN2 with DiffAugment and R1; the shipped toy GAN
    (checkpoints/toy-car-gan.pt, Makefile `toy-gan`) adds mode anchors, without which it collapsed."""

    generator: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(
        z_dim=128, w_dim=128, resolution=64, channel_base=1024, channel_max=128, mapping_layers=4))
    d_channel_base: int = 1024
    d_channel_max: int = 128
    batch: int = 16
    lr: float = 0.0025
    r1_gamma: float = 1.0
    augment: bool = True            # DiffAugment (colour, translation) on every D input, for small datasets
    pack: int = 1                   # PacGAN (Lin et al. 2018): D judges `pack` images at once, against mode collapse
    anchors: int = 0                # mode anchors: this many training images, each paired with a fixed latent,
    anchor_weight: float = 1.0      # ... which G must also redraw (MSE at anchor_resolution), so that its
    anchor_resolution: int = 16     # latents keep covering the data's layouts (0 anchors: plain StyleGAN2)
    anchor_warmup: int = 0          # iterations at the start that fit G to the anchors alone, with no D
    r1_every: int = 16              # lazy regularisation interval
    style_mixing: float = 0.9
    ema_half_life_images: int = 5000
    w_avg_beta: float = 0.995
    seed: int = 0


class Conv2dLayer(nn.Module):
    """Conv with equalised learning rate (unit-scale weights, scaled at run time), as in StyleGAN2."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.gain = 1 / math.sqrt(in_channels * kernel * kernel)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(conv_input(x), self.weight * self.gain, self.bias, padding=self.weight.shape[-1] // 2)


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convs and a 2x average-pool downsampling, with a scaled residual path."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3)
        self.conv1 = Conv2dLayer(in_channels, out_channels, 3)
        self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        y = F.avg_pool2d(_lrelu(self.conv1(_lrelu(self.conv0(x)))), 2)
        return (y + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)  # pool first: the same, on a quarter of the pixels


class Discriminator(nn.Module):
    """images float (B, C, R, R) in [-1, 1] -> realness logit float (B,); residual, with minibatch std.
    C is 3, or 3 x pack when each input is a pack of images stacked along channels (PacGAN)."""

    def __init__(self, resolution: int, channel_base: int, channel_max: int, in_channels: int = 3):
        super().__init__()
        channels = {r: min(channel_base // r, channel_max) for r in (2 ** i for i in range(2, 11))}
        self.fromrgb = Conv2dLayer(in_channels, channels[resolution], 1)
        self.blocks = nn.Sequential(*[DiscriminatorBlock(channels[r], channels[r // 2])
                                      for r in (2 ** i for i in range(int(math.log2(resolution)), 2, -1))])
        self.conv = Conv2dLayer(channels[4] + 1, channels[4], 3)
        self.fc = FullyConnected(channels[4] * 16, channels[4], "lrelu")
        self.out = FullyConnected(channels[4], 1)

    def forward(self, img: Tensor) -> Tensor:
        x = self.blocks(_lrelu(self.fromrgb(img)))
        group = math.gcd(4, x.shape[0])
        std = x.reshape(group, -1, *x.shape[1:]).std(0).mean([1, 2, 3])  # minibatch std per group member
        x = torch.cat([x, std.repeat(group)[:, None, None, None].expand(-1, 1, 4, 4)], 1)
        return self.out(self.fc(_lrelu(self.conv(x)).flatten(1))).squeeze(1)


def diff_augment(x: Tensor, rng: torch.Generator) -> Tensor:
    """Differentiable augmentation (Zhao et al. 2020) of x: float (B, 3, R, R): random brightness,
    saturation and contrast, then a random translation by up to 1/8 of the image (zero fill).
    Applied to real and generated images alike, it keeps D from memorising a small training set."""
    b, _, r, _ = x.shape
    brightness, saturation, contrast = torch.rand(3, b, 1, 1, 1, generator=rng).to(x)
    x = x + (brightness - 0.5)
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * (saturation * 2) + mean
    mean = x.mean([1, 2, 3], keepdim=True)
    x = (x - mean) * (contrast + 0.5) + mean
    pad = r // 8
    shift = torch.randint(-pad, pad + 1, (2, b, 1), generator=rng).to(x.device)  # whole pixels (dy, dx)
    steps = torch.arange(r, device=x.device)[None]
    rows, cols = steps + pad - shift[0], steps + pad - shift[1]  # (B, R) source rows and columns
    padded = F.pad(x, [pad, pad, pad, pad])
    # Plain indexing (not grid_sample): it stays twice differentiable on every device, as R1 needs.
    batch, channel = torch.arange(b, device=x.device), torch.arange(x.shape[1], device=x.device)
    return padded[batch[:, None, None, None], channel[:, None, None], rows[:, None, :, None], cols[:, None, None, :]]


def load_images(files: list[Path], resolution: int) -> Tensor:
    """Image files -> uint8 (N, 3, R, R); every image must be R x R."""
    images = []
    for path in tqdm(files, desc="loading images", unit="img", leave=False):
        image = read_rgb(path)
        if image.shape[:2] != (resolution, resolution):
            raise DatasetFormatError(path, f"a {resolution}x{resolution} image, got {image.shape[1]}x{image.shape[0]}")
        images.append(image)
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def save_grid(images: Tensor, path: Path, columns: int = 8) -> None:
    """images: float (B, 3, R, R) in [-1, 1] -> a PNG grid, `columns` wide (a short last row is padded white)."""
    if len(images) > columns and len(images) % columns:
        images = torch.cat([images, images.new_ones(columns - len(images) % columns, *images.shape[1:])])
    arr = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    rows = [np.concatenate(list(arr[i:i + columns]), 1) for i in range(0, len(arr), columns)]
    Image.fromarray(np.concatenate(rows, 0)).save(path)


def _atomic_save(obj, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


class GANTrainer:
    """Holds the networks and optimisers of one run; `train(iterations)` continues from where it stopped."""

    def __init__(self, run_dir: Path, data: Tensor, options: TrainOptions, device: str | torch.device = "cpu",
                 resume_from: Path | None = None):
        """data: uint8 (N, 3, R, R). All random draws come from one CPU generator, so a run (and its
        resume) is the same sequence of batches on any device. resume_from: a training state (training.pt, or
        the compact training-bf16.pt that train() also writes) to start from when run_dir holds none."""
        self.run_dir, self.opt, self.device = Path(run_dir), options, torch.device(device)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data = data.to(self.device)
        torch.manual_seed(options.seed)
        cfg = options.generator
        self.G = Generator(cfg).to(self.device)
        self.G_ema = Generator(cfg).requires_grad_(False).to(self.device)
        self.G_ema.load_state_dict(self.G.state_dict())
        if options.batch % options.pack:
            raise ValueError(f"batch {options.batch} is not a multiple of pack {options.pack}")
        self.D = Discriminator(cfg.resolution, options.d_channel_base, options.d_channel_max,
                               cfg.img_channels * options.pack).to(self.device)
        self.r1_ratio = options.r1_every / (options.r1_every + 1)  # lazy-regularisation correction of D's Adam
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=options.lr, betas=(0.0, 0.99))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=options.lr * self.r1_ratio,
                                      betas=(0.0, 0.99 ** self.r1_ratio))
        self.iteration = 0
        self.rng = torch.Generator().manual_seed(options.seed)
        self.log: list[dict] = []
        self.branches: list[dict] = []  # where this run (or one it descends from) branched off with other options
        self.anchor_z, self.anchor_images = self._anchors()
        if (self.run_dir / "training.pt").exists():
            self._resume(self.run_dir / "training.pt")
        elif resume_from is not None:
            self._resume(Path(resume_from), branch=True)

    def _resume(self, path: Path, branch: bool = False) -> None:
        """Load a training state; a bfloat16 one is cast back to each tensor's own dtype by load_state_dict. A
        branch (another run's state, started in a new folder) may change the BRANCHABLE options, e.g. to go on at a
        lower learning rate; the change is recorded in `branches`."""
        state = read_torch(path, "GAN training state", map_location=self.device)
        if not isinstance(state, dict) or not isinstance(state.get("options"), dict):
            raise CheckpointFormatError(f"{path}: not a training state of this trainer (no options)")
        stored, mine = _with_defaults(state["options"], _options_dict(TrainOptions())), _options_dict(self.opt)
        free = BRANCHABLE if branch else ()
        if any(stored[k] != mine[k] for k in mine if k not in free):
            raise CheckpointFormatError(f"{path}: a run with other options; use another run folder" +
                                        (f" (a branch may change only {', '.join(free)})" if branch else ""))
        try:
            for name in ("G", "G_ema", "D", "opt_G", "opt_D"):
                getattr(self, name).load_state_dict(state[name])
            self.iteration, self.log = state["iteration"], state["log"]
            self.rng.set_state(state["rng"].cpu())
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise CheckpointFormatError(f"{path}: not a training state of this trainer ({error})") from None
        self.branches = list(state.get("branches", []))
        changed = {k: [stored[k], mine[k]] for k in free if stored[k] != mine[k]}
        if changed:
            self.branches.append({"iteration": self.iteration, "from": str(path), "changed": changed})
            for opt, scale in ((self.opt_G, 1.0), (self.opt_D, self.r1_ratio)):
                for group in opt.param_groups:   # the loaded optimiser state carries the old rate
                    group["lr"] = self.opt.lr * scale

    def _state(self) -> dict:
        return {"options": _options_dict(self.opt), "iteration": self.iteration, "log": self.log,
                "branches": self.branches, "rng": self.rng.get_state(), **{n: getattr(self, n).state_dict()
                                                for n in ("G", "G_ema", "D", "opt_G", "opt_D")}}

    def checkpoint(self) -> None:
        """Write training.pt (everything) and generator.pt (EMA weights + config), atomically."""
        _atomic_save(self._state(), self.run_dir / "training.pt")
        save_generator(self.G_ema, self.run_dir / "generator.pt", extra={"iteration": self.iteration,
                                                                        "images_seen": self.iteration * self.opt.batch})

    def _anchors(self) -> tuple[Tensor, Tensor]:
        """The anchor latents z (A, z_dim) and their images float (A, 3, r, r) at anchor_resolution: a fixed random
        choice of training images, each with its own fixed z. Drawn from the seed alone, so a resume redraws them."""
        count = self.opt.anchors
        if count > len(self.data):
            raise ValueError(f"{count} anchors asked for, but only {len(self.data)} training images")
        rng = torch.Generator().manual_seed(self.opt.seed + 1)
        z = torch.randn(count, self.opt.generator.z_dim, generator=rng).to(self.device)
        idx = torch.randperm(len(self.data), generator=rng)[:count].to(self.device)
        return z, self._anchor_view(self.data[idx].float() / 127.5 - 1)

    def _anchor_view(self, images: Tensor) -> Tensor:
        """images float (B, 3, R, R) -> (B, 3, r, r) averaged down to anchor_resolution: the layout, not the detail."""
        return F.adaptive_avg_pool2d(images, self.opt.anchor_resolution)

    def _latents(self, batch: int) -> Tensor:
        """ws (B, num_ws, w_dim) from fresh z, mixing two latents at a random layer with prob style_mixing."""
        z = torch.randn(2, batch, self.opt.generator.z_dim, generator=self.rng).to(self.device)
        ws = self.G.mapping(z[0])
        if torch.rand([], generator=self.rng) < self.opt.style_mixing:
            cut = int(torch.randint(1, self.G.num_ws, [], generator=self.rng))
            ws = torch.cat([ws[:, :cut], self.G.mapping(z[1])[:, cut:]], 1)
        return ws

    def _d_input(self, images: Tensor) -> Tensor:
        """What D sees of images (B, C, R, R): each DiffAugmented when enabled (drawing from the trainer's
        generator, so resuming stays exact), then packs of consecutive images stacked: (B / pack, C x pack, R, R)."""
        images = diff_augment(images, self.rng) if self.opt.augment else images
        return images.reshape(-1, images.shape[1] * self.opt.pack, *images.shape[2:])

    def _anchor_loss(self, noise: list[Tensor]) -> Tensor:
        """MSE between the anchor images and G's redrawing of them (a batch of anchors, at anchor_resolution)."""
        if not self.opt.anchors:
            return torch.zeros([], device=self.device)
        pick = torch.randint(self.opt.anchors, [len(noise[0])], generator=self.rng).to(self.device)
        redrawn = self.G.synthesis(self.G.mapping(self.anchor_z[pick]), noise)[0]
        return (self._anchor_view(redrawn) - self.anchor_images[pick]).square().mean()

    def step(self) -> dict:
        """One generator and one discriminator update (plus R1 every r1_every steps); during the anchor
        warm-up, one generator update on the anchors alone."""
        b = self.opt.batch
        idx = torch.randint(len(self.data), [b], generator=self.rng).to(self.device)
        real = self.data[idx].float() / 127.5 - 1
        noise = [torch.randn(b, *s, generator=self.rng).to(self.device) for s in self.G.synthesis.noise_shapes()]
        self.G.requires_grad_(True), self.D.requires_grad_(False)
        if self.iteration < self.opt.anchor_warmup:
            anchor = self._anchor_loss(noise)
            self.opt_G.zero_grad(set_to_none=True)
            anchor.backward()
            self.opt_G.step()
            self._end_step()
            return {"anchor": anchor.item()}

        # Generator: non-saturating loss (plus the anchors).
        ws = self._latents(b)
        fake = self.G.synthesis(ws, noise)[0]
        loss_g = F.softplus(-self.D(self._d_input(fake))).mean()
        anchor = self._anchor_loss(noise)
        self.opt_G.zero_grad(set_to_none=True)
        (loss_g + self.opt.anchor_weight * anchor).backward()
        self.opt_G.step()
        with torch.no_grad():
            self.G.mapping.w_avg.lerp_(ws[:, 0].mean(0), 1 - self.opt.w_avg_beta)

        # Discriminator: logistic loss, plus lazy R1 on reals.
        self.G.requires_grad_(False), self.D.requires_grad_(True)
        r1 = self.iteration % self.opt.r1_every == 0
        real = real.detach().requires_grad_(r1)
        logits_real = self.D(self._d_input(real))
        loss_d = F.softplus(self.D(self._d_input(fake.detach()))).mean() + F.softplus(-logits_real).mean()
        penalty = torch.zeros([], device=self.device)
        if r1:
            grad, = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
            penalty = grad.square().sum() / len(logits_real)  # per D input (a pack of images when pack > 1)
            loss_d = loss_d + penalty * (self.opt.r1_gamma / 2) * self.opt.r1_every
        self.opt_D.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_D.step()
        self._end_step()
        return {"loss_g": loss_g.item(), "loss_d": loss_d.item(), "r1": penalty.item(), "anchor": anchor.item()}

    def _end_step(self) -> None:
        """End an iteration: move the EMA generator toward G and count the iteration."""
        beta = 0.5 ** (self.opt.batch / self.opt.ema_half_life_images)
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.lerp_(p, 1 - beta)
            for b_ema, buf in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(buf)
        self.iteration += 1

    def train(self, iterations: int, checkpoint_every: int = 250, grid_every: int = 500,
              minutes: float | None = None) -> None:
        """Train until `iterations` in total (not more), or until `minutes` of wall-clock time have
        passed, checkpointing and drawing sample grids on the way (and once more at the end)."""
        bar = tqdm(total=iterations, initial=self.iteration, desc="gan", unit="it")
        start = time.time()
        deadline = start + 60 * minutes if minutes is not None else float("inf")
        stats = None
        while self.iteration < iterations and time.time() < deadline:
            stats = self.step()
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in stats.items()})
            if self.iteration % checkpoint_every == 0:
                self._log_and_checkpoint(stats, start)
            if self.iteration % grid_every == 0:
                self._grid()
        bar.close()
        if stats is not None and self.iteration % checkpoint_every:
            self._log_and_checkpoint(stats, start)
        if stats is not None and self.iteration % grid_every:
            self._grid()
        self._save_stopping_files()

    def _save_stopping_files(self) -> None:
        """What a run leaves when it stops: training-bf16.pt (the state at half the size, to carry the run to
        another machine) and log.json (the log, readable without torch)."""
        _atomic_save(_to_bfloat16(self._state()), self.run_dir / "training-bf16.pt")
        atomic_write(self.run_dir / "log.json", lambda tmp: tmp.write_text(json.dumps(
            {"options": _options_dict(self.opt), "iteration": self.iteration, "branches": self.branches,
             "log": self.log}, indent=1)))

    def _log_and_checkpoint(self, stats: dict, start: float) -> None:
        """Log the step's losses and the EMA generator's layout and colour diversity (seeds 0-63; falling toward 0
        is mode collapse, datasetgan.quality), then checkpoint."""
        samples = sample_images(self.G_ema, list(range(64)))
        self.log.append({"iteration": self.iteration, **stats, "layout_diversity": layout_diversity(samples),
                         "colour_diversity": colour_diversity(samples), "seconds": time.time() - start})
        self.checkpoint()

    def _grid(self) -> None:
        """samples-<iteration>.png: the EMA generator's images of seeds 0-31."""
        save_grid(sample_images(self.G_ema, list(range(32))), self.run_dir / f"samples-{self.iteration:06d}.png")


def _to_bfloat16(obj):
    """A state with every floating-point tensor in bfloat16 (fp32's exponent range, so Adam's tiny second moments
    survive, unlike in float16): half the size, for carrying a run to another machine in the repository."""
    if isinstance(obj, Tensor):
        return obj.to(torch.bfloat16) if obj.is_floating_point() else obj
    if isinstance(obj, dict):
        return {k: _to_bfloat16(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_bfloat16(v) for v in obj]
    return obj


def _options_dict(options: TrainOptions) -> dict:
    """Options as plain data (for checkpoints: comparable, and loadable with weights_only)."""
    return json.loads(json.dumps(asdict(options)))


def _with_defaults(stored: dict, defaults: dict) -> dict:
    """A run's stored options with the fields added since (also inside the generator's) at their defaults."""
    merged = {**defaults, **stored}
    return {k: _with_defaults(v, defaults[k]) if isinstance(defaults.get(k), dict) else v for k, v in merged.items()}


def save_generator(G: Generator, path: Path, extra: dict | None = None) -> None:
    """Our own generator checkpoint: the config dataclass as a dict plus the state dict."""
    state = {k: v.cpu() for k, v in G.state_dict().items()}
    _atomic_save({"format": "datasetgan-stylegan2", "config": G.cfg.to_dict(), "state_dict": state, **(extra or {})},
                 path)


def load_generator(path: Path) -> Generator:
    """Rebuild a generator saved by `save_generator` (read with weights_only=True: no code runs)."""
    state = read_torch(path, "generator checkpoint")
    if not isinstance(state, dict) or state.get("format") != "datasetgan-stylegan2":
        raise CheckpointFormatError(f"{path}: not a generator checkpoint written by this project")
    try:
        G = Generator(GeneratorConfig(**state["config"]))
        G.load_state_dict(state["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointFormatError(f"{path}: the generator cannot be rebuilt from it ({error})") from None
    return G.eval().requires_grad_(False)


def save_images(G: Generator, seeds: list[int], psi: float, folder: Path, batch: int = 16) -> int:
    """Write seed{seed:06d}.png per seed into folder, skipping those already there; returns how many were new."""
    todo = [s for s in seeds if not (folder / f"seed{s:06d}.png").exists()]
    for i in tqdm(range(0, len(todo), batch), desc="sampling", unit="batch"):
        chunk = todo[i:i + batch]
        images = ((sample_images(G, chunk, psi).clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        for seed, image in zip(chunk, images):
            atomic_write(folder / f"seed{seed:06d}.png", lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))
    return len(todo)


def sample_images(G: Generator, seeds: list[int], psi: float = 1.0) -> Tensor:
    """Images float (B, 3, R, R) on the CPU of the given seeds, with their fixed per-seed z and noise,
    drawn on whatever device G is on."""
    return Backbone(G, Truncation(psi), device=next(G.parameters()).device).sample(seeds).image.cpu()
