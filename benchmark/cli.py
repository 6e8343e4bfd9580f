"""The `benchmark` command: one entry point for every job of the suite (examples in its --help)."""
from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import click
import yaml
from tqdm import tqdm

from benchmark import configs
from datasources.base import CheckpointFormatError, InputError
from datasources.classes import CLASS_SETS
from datasetgan.gan_training import TOY_GAN
from datasources.registry import DATASETS
from downstream.turntable import COLOR_BY
from inverse_graphics.losses import KEYPOINT_LOSSES
from inverse_graphics.template import TEMPLATE_SHAPES
from inverse_graphics.views import RENAME_REACH


def _writable_dir(path: str) -> Path:
    """Create `path` (and parents) or fail with a clean message (the probe file is unique: runs of several
    variants may share an output folder)."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as e:
        raise click.BadParameter(f"cannot write to {out}: {e.strerror or e}", param_hint="--out") from None
    return out


class InputErrorLine(click.ClickException):
    """How an InputError reaches the user: one `error: ...` line on stderr and exit status 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


class Commands(click.Group):
    """The command tree's root: an InputError raised anywhere below (a missing, damaged or foreign input file, a
    setting out of range; each names what it is about) becomes one clean line. Every other exception is a bug
    and keeps its traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as e:
            for bar in list(tqdm._instances):   # end the progress bars left open, so the message starts a line
                bar.close()
            raise InputErrorLine(str(e)) from None


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
def cli():
    """DatasetGAN benchmark suite: labelled data from a GAN, baselines, tables, 3D car assets.

    \b
    Examples:
      benchmark run --suite parts                      the paper's Table 1 on the embedded toy world
      benchmark run --suite parts --profile quick --dry-run
      benchmark toy --split test --n 16 --out toy16    16 toy samples with exact labels
      benchmark datasets check ade-car-12 --root /data/ADE20K_2021_17_01
    """


@cli.command()
@click.option("--suite", type=click.Choice(configs.names("suites")), required=True, help="Which tables to reproduce.")
@click.option("--profile", type=click.Choice(configs.names("profiles")), default="demo",
              help="quick: tiny, for tests; demo: the embedded toy world on a CPU; paper: the published protocol.")
@click.option("--config", "extra", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A YAML file merged last (shallowly) over suite and profile, e.g. with your own paths.")
@click.option("--out", default="results", help="Where run records and tables are written.")
@click.option("--seeds", type=click.IntRange(min=1), default=None,
              help="Train every cell with seeds 0..N-1; tables give mean +- seed std. Default: the config's `seeds`.")
@click.option("--variants", default=None,
              help="Only these variants, comma-separated (e.g. semi,supervised: one process per variant shares two "
                   "cores well). Default: the config's `variants`.")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and stop.")
def run(suite, profile, extra, out, seeds, variants, dry_run):
    """Run a benchmark suite: train every variant on every test set, cross-validate, write one record
    per run under OUT/runs (reruns add records), then build OUT/tables/<suite>.csv and .tex.

    \b
    Examples:
      benchmark run --suite parts --profile quick --out /tmp/quick     about a minute on 2 CPU cores
      benchmark run --suite parts --profile demo --out results --seeds 3
    """
    from benchmark.suites import run_suite
    from benchmark.tables import summary, write_tables
    from datasetgan.distributed import rank_and_world

    config = configs.resolve(suite, profile, extra)
    if seeds is not None:
        config["seeds"] = seeds
    if variants is not None:
        config["variants"] = [v.strip() for v in variants.split(",") if v.strip()]
    click.echo(yaml.safe_dump(config, sort_keys=False).rstrip())
    if dry_run:
        return
    out_dir = _writable_dir(out)
    test_sets = len(config.get("test_sets", []))
    what = (f"the ablation sweeps on {test_sets} test sets" if "ablations" in config
            else f"{len(config['variants'])} variants x {test_sets} test sets")
    what += f", {config.get('seeds', 1)} training seed(s) each"
    click.echo(f"\nplan: {what}, {config.get('folds', 5)}-fold evaluation, records under {out}/runs, "
               f"tables under {out}/tables")
    folders = run_suite(config, out_dir)
    if rank_and_world()[0] > 0:
        return   # under torchrun, rank 0 writes the records and tables
    click.echo(f"{len(folders)} run records written under {out_dir / 'runs'}")
    csv, tex, table = write_tables(out_dir, suite)
    click.echo(f"{summary(table)}\ntables: {csv}, {tex}")


@cli.command()
@click.option("--suite", type=click.Choice(configs.names("suites")), default="parts", help="Whose test sets.")
@click.option("--profile", type=click.Choice(configs.names("profiles")), default="demo", help="Whose setup.")
@click.option("--config", "extra", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A YAML file merged last, as for `benchmark run`.")
@click.option("--out", default="results", help="Where `benchmark run` keeps its data (toy splits are rendered there).")
def oracle(suite, profile, extra, out):
    """Print the ceiling of a segmentation setup on each test set: the mIoU of the best per-image logits its
    network's output grid can hold (fitted to the test labels), which no variant can exceed.

    \b
    Example: benchmark oracle --profile demo
    """
    from benchmark.sources import task_of
    from benchmark.suites import ceiling, check_run, test_images

    config = configs.resolve(suite, profile, extra)
    if task_of(config) != "segmentation":
        raise click.ClickException(f"suite {suite} is not a segmentation suite; the oracle ceiling is of label maps")
    check_run(config)
    for name in config["test_sets"]:
        test, _ = test_images(name, config, Path(out) / "data")
        result = ceiling(test, config, Path(out) / "work" / "shared")
        grid = "x".join(map(str, result["output_grid"]))
        click.echo(f"{name}: {len(test)} images, logits {grid} -> oracle mIoU {100 * result['oracle_miou']:.1f}")


@cli.command()
@click.option("--suite", type=click.Choice(configs.names("suites")), required=True, help="Which suite's records.")
@click.option("--out", default="results", help="The folder `benchmark run --out` wrote (its runs/ are read).")
def tables(suite, out):
    """Build OUT/tables/<suite>.csv (tidy), .tex and .md from the run records under OUT/runs, beside the paper's
    numbers; for segmentation records also <suite>-per-class.csv and .md, and a qualitative grid per table and test
    set in OUT/tables/qualitative/ (test images, ground truth, each variant's seed-0 prediction).

    \b
    Example: benchmark tables --suite parts --out results
    """
    from benchmark.tables import summary, write_tables

    csv, tex, table = write_tables(Path(out), suite)
    click.echo(f"{summary(table)}\ntables: {csv}, {tex}")


@cli.command()
@click.option("--split", type=click.Choice(["unlabelled", "labelled", "test"]), default="test",
              help="Which fixed, deterministic split of the toy world to write.")
@click.option("--n", "count", type=click.IntRange(min=1), default=None,
              help="How many samples (the first N of the split); default: the whole split.")
@click.option("--out", required=True, help="Output folder (created; an interrupted run resumes).")
@click.option("--resolution", type=click.IntRange(min=8), default=64, help="Image side in pixels.")
@click.option("--grid", type=click.Path(dir_okay=False), default=None,
              help="Also save a PNG grid of images beside their coloured label maps.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Rendering processes (default: one per CPU core; small splits render in this one).")
def toy(split, count, out, resolution, grid, workers):
    """Write samples of the procedural toy-car world: images, part labels, keypoints, cameras.

    \b
    Example: benchmark toy --split test --n 16 --out toy16 --grid toy16.png
    """
    from datasources.check import class_shares
    from datasources.toy import ToyDataset, ToySettings, write_split
    from datasources.visualize import save_label_grid

    root = _writable_dir(out)
    write_split(root, split, count, ToySettings(resolution=resolution), workers)
    dataset = ToyDataset(root)
    click.echo(f"{len(dataset)} samples in {root}; per class, the share of all pixels and of images showing it:")
    for name, (pixels, images) in class_shares(dataset).items():
        click.echo(f"  {name:15s} {100 * pixels:6.2f} % of pixels, in {100 * images:5.1f} % of images")
    if grid:
        save_label_grid(dataset, grid)
        click.echo(f"grid: {grid}")


def _existing_file(path: str, option: str) -> Path:
    """`path` if it is a file, else a clean usage error naming the option."""
    if not Path(path).is_file():
        raise click.BadParameter(f"no such file: {path}", param_hint=option)
    return Path(path)


def _existing_record(folder: str, option: str) -> dict:
    """The run record in `folder` (its record.json), else a clean usage error naming the option."""
    return json.loads(_existing_file(str(Path(folder) / "record.json"), option).read_text())


def parse_seeds(text: str) -> list[int]:
    """'0-7' or '1,5,9' or '0-3,10' -> a list of seeds."""
    seeds = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a seed list like 0-31 or 1,5,9", param_hint="--seeds") from None
    return seeds


CHECKPOINT_OPTION = click.option(
    "--checkpoint", default=str(TOY_GAN), show_default=True, type=click.Path(dir_okay=False),
    help="A generator: ours (.pt), a stylegan2-ada/stylegan3 pickle, or a rosinality .pt.")
STARTS_OPTION = click.option(
    "--starts", type=click.IntRange(min=1), default=1, show_default=True,
    help="Inversion starts: the mean w and the w of z seeds 0..N-2; each image goes on from the one that fits it "
         "best after 50 steps (against poor local minima).")


@cli.group()
def gan():
    """Train and sample the StyleGAN2 generator of the toy world (or of your own images)."""


@gan.command("train")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False),
              help="A folder of square images, or a toy split folder (its images/ are used).")
@click.option("--run", "run_dir", required=True, help="Run folder: checkpoints and sample grids; rerun to resume.")
@click.option("--iterations", type=click.IntRange(min=1), default=20000, help="Total iterations.")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop (with a checkpoint) after this much wall-clock time; rerun to go on.")
@click.option("--device", default="cpu", help="cpu or cuda.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for PyTorch.")
@click.option("--batch", type=click.IntRange(min=2), default=None, help="Batch size (default: TrainOptions').")
@click.option("--r1-gamma", type=click.FloatRange(min=0), default=None,
              help="R1 weight (default: TrainOptions').")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Adam learning rate of G and D (default: TrainOptions').")
@click.option("--pack", type=click.IntRange(min=1), default=None,
              help="PacGAN: D judges packs of this many images (default: TrainOptions'); divides the batch.")
@click.option("--anchors", type=click.IntRange(min=0), default=None,
              help="Mode anchors: training images paired with fixed latents that G must also redraw at low "
                   "resolution, against mode collapse (default: TrainOptions'; 0 = plain StyleGAN2).")
@click.option("--anchor-weight", type=click.FloatRange(min=0), default=None,
              help="Weight of the anchors' MSE in G's loss (default: TrainOptions').")
@click.option("--anchor-resolution", type=click.IntRange(min=1), default=None,
              help="Resolution at which the anchors are compared (default: TrainOptions').")
@click.option("--anchor-warmup", type=click.IntRange(min=0), default=None,
              help="First iterations that fit G to the anchors alone, with no D (default: TrainOptions').")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=250,
              help="Iterations between checkpoints (each logs the layout and colour diversity of seeds 0-63).")
@click.option("--resume-from", type=click.Path(dir_okay=False), default=None,
              help="A training state to start from when RUN has none: another run's training.pt or the compact "
                   "training-bf16.pt each run also writes (e.g. checkpoints/toy-gan-training-bf16.pt); --lr may "
                   "differ from its run's (recorded as a branch in RUN/log.json).")
def gan_train(data, run_dir, iterations, minutes, device, threads, batch, r1_gamma, lr, pack, anchors,
              anchor_weight, anchor_resolution, anchor_warmup, checkpoint_every, resume_from):
    """Train the toy StyleGAN2 (64x64); resumes from RUN/training.pt (or --resume-from). Batch, R1 weight,
    learning rate, pack and anchors are part of the run's options, so a resume must repeat them; a new RUN started
    with --resume-from may change the learning rate (a branch, e.g. going on at a lower rate). When it stops
    it also writes RUN/training-bf16.pt, the same state at half the size, to carry the run to another machine.

    \b
    Example: benchmark gan train --data data/toy-unlabelled --run runs/toy-gan --minutes 60
    """
    import dataclasses

    import torch

    from datasetgan.gan_training import GANTrainer, TrainOptions, load_images
    from datasources.files import image_files

    if threads:
        torch.set_num_threads(threads)
    changes = {k: v for k, v in {"batch": batch, "r1_gamma": r1_gamma, "lr": lr, "pack": pack, "anchors": anchors,
                                 "anchor_weight": anchor_weight, "anchor_resolution": anchor_resolution,
                                 "anchor_warmup": anchor_warmup}.items()
               if v is not None}
    options = dataclasses.replace(TrainOptions(), **changes)
    images = load_images(image_files(Path(data)), options.generator.resolution)
    resume_from = _existing_file(resume_from, "--resume-from") if resume_from else None
    trainer = GANTrainer(_writable_dir(run_dir), images, options, device, resume_from)
    if trainer.iteration:
        click.echo(f"resuming {run_dir} at iteration {trainer.iteration}", err=True)
    for branch in trainer.branches:
        click.echo(f"branched at iteration {branch['iteration']} from {branch['from']}: " +
                   ", ".join(f"{k} {old:g} -> {new:g}" for k, (old, new) in branch["changed"].items()), err=True)
    trainer.train(iterations, checkpoint_every=checkpoint_every, minutes=minutes)
    trend = ", ".join(f"{e['iteration']}: {e['layout_diversity']:.3f} / {e.get('colour_diversity', float('nan')):.3f}"
                      for e in trainer.log[-5:])
    click.echo(f"generator: {Path(run_dir) / 'generator.pt'} (iteration {trainer.iteration}); layout / colour "
               f"diversity by iteration (toy renders: about 0.65 / 0.20; falling toward 0 is mode collapse): "
               f"{trend or 'n/a'}")


@gan.command("sample")
@CHECKPOINT_OPTION
@click.option("--n", "count", type=click.IntRange(min=1), default=None, help="Seeds 0..N-1 (instead of --seeds).")
@click.option("--seeds", default="0-31", help="Seeds, e.g. 0-31 or 1,5,9.")
@click.option("--psi", type=float, default=1.0, help="Truncation psi (1 = none).")
@click.option("--out", required=True,
              help="A .png path for one grid, or a folder for one PNG per seed (resumable; split across torchrun ranks).")
@click.option("--real", type=click.Path(exists=True, file_okay=False), default=None,
              help="With a .png --out: as many images of this folder (sorted) above the samples, to compare.")
def gan_sample(checkpoint, count, seeds, psi, out, real):
    """Draw generated images, each reproducible from its seed.

    \b
    Examples:
      benchmark gan sample --n 16 --out grid.png
      benchmark gan sample --n 16 --out compare.png --real data/toy-test-32
      torchrun --nproc_per_node 4 -m benchmark gan sample --seeds 0-9999 --out samples/
    """
    from datasetgan.distributed import rank_and_world, shard
    import torch

    from datasetgan.gan_training import load_images, sample_images, save_grid, save_images
    from datasetgan.loaders import load_generator_any
    from datasources.files import image_files

    G = load_generator_any(_existing_file(checkpoint, "--checkpoint"))
    seed_list = list(range(count)) if count else parse_seeds(seeds)
    if out.endswith(".png"):
        images = sample_images(G, seed_list, psi)
        if real:
            shown = load_images(image_files(Path(real))[:len(seed_list)], images.shape[-1]).float() / 127.5 - 1
            blank = torch.ones(-len(shown) % 8 + 8, *images.shape[1:])   # white up to the row's end, one row more
            images = torch.cat([shown, blank, images])
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        save_grid(images, Path(out))
        click.echo(f"wrote {out}")
        return
    mine = shard(seed_list, *rank_and_world())
    written = save_images(G, mine, psi, _writable_dir(out))
    click.echo(f"wrote {written} new images of {len(mine)} seeds to {out}")


@gan.command("project")
@CHECKPOINT_OPTION
@click.option("--images", required=True, type=click.Path(exists=True, file_okay=False),
              help="A folder of images at the generator's resolution, or a toy split folder.")
@click.option("--n", "count", type=click.IntRange(min=1), default=None, help="Only the first N images (sorted).")
@click.option("--steps", type=click.IntRange(min=1), default=300, help="Adam steps.")
@STARTS_OPTION
@click.option("--space", type=click.Choice(["w", "w+"]), default="w",
              help="w: one latent for every layer, where the factory samples; w+: one per layer (closer, off it).")
@click.option("--noise", is_flag=True,
              help="Optimise the noise maps too, for a closer reconstruction to look at (the maps are not saved, "
                   "so the latents cannot be annotations).")
@click.option("--out", required=True, help="Folder for latents.npy, inversion.json and reconstructions.png.")
def gan_project(checkpoint, images, count, steps, starts, space, noise, out):
    """Invert images into the generator so it redraws them: image i (sorted) under the noise of seed i, the
    factory's noise mode; inversion.json names the images and their noise seeds.

    \b
    Example: benchmark gan project --checkpoint checkpoints/toy-car-gan.pt --images toy16 --out inv16
    """
    import numpy as np
    import torch

    from datasetgan.backbone import Backbone
    from datasetgan.gan_training import load_images, save_grid
    from datasources.files import image_files
    from datasetgan.inversion import InversionSettings, invert
    from datasetgan.loaders import load_generator_any

    out = _writable_dir(out)
    backbone = Backbone(load_generator_any(_existing_file(checkpoint, "--checkpoint")))
    files = image_files(Path(images))[:count]
    targets = load_images(files, backbone.resolution).float() / 127.5 - 1
    settings = InversionSettings(steps=steps, space=space, optimize_noise=noise, starts=starts)
    result = invert(backbone, targets, settings, noise_seeds=list(range(len(files))))
    np.save(out / "latents.npy", result.ws.cpu().numpy())
    save_grid(torch.cat([targets, result.image.cpu()]), out / "reconstructions.png", columns=len(targets))
    report = {"checkpoint": str(checkpoint), "settings": asdict(settings), "images": [p.name for p in files],
              **({} if noise else {"noise_seeds": result.noise_seeds}),
              "start": result.start.tolist(), "mse": result.mse.tolist(), "psnr": result.psnr.tolist(),
              "mean_mse": float(result.mse.mean()), "mean_psnr": float(result.psnr.mean())}
    (out / "inversion.json").write_text(json.dumps(report, indent=1))
    click.echo(f"{len(files)} images: mean MSE {report['mean_mse']:.4f} ([-1, 1] units), "
               f"mean PSNR {report['mean_psnr']:.2f} dB; wrote {out}")


@gan.command("quality")
@CHECKPOINT_OPTION
@click.option("--psi", type=float, default=1.0, help="Truncation psi of the generated images.")
@click.option("--out", default="results/gan", help="Where the run record is written (a new folder per run).")
def gan_quality(checkpoint, psi, out):
    """KID, precision and recall of a toy generator against toy renders, beside the real-vs-real figures
    (features of a small CNN trained here on toy renders), and its layout and colour diversity against the
    renders'; about 3 minutes on 2 cores.

    \b
    Example: benchmark gan quality --checkpoint checkpoints/toy-car-gan.pt
    """
    import time

    from benchmark.records import write_record
    from datasetgan.gan_training import sample_images
    from datasetgan.loaders import load_generator_any
    from datasetgan.quality import toy_quality

    started = time.time()
    G = load_generator_any(_existing_file(checkpoint, "--checkpoint"))
    result = toy_quality(lambda seeds: sample_images(G, seeds, psi))
    folder = write_record(out, "toy-gan-quality", {"checkpoint": str(checkpoint), "psi": psi, **result}, started)
    gen, floor = result["kid_x1000_generated"], result["kid_x1000_real_vs_real"]
    (precision, recall), (ref_precision, ref_recall) = result["precision_recall"].values()
    layout, colour = result["layout_diversity"], result["colour_diversity"]
    click.echo(f"KID x1000: generated {gen[0]:.2f} +- {gen[1]:.2f}, real vs real {floor[0]:.2f} +- {floor[1]:.2f}\n"
               f"precision / recall: generated {precision:.3f} / {recall:.3f}, "
               f"real vs real {ref_precision:.3f} / {ref_recall:.3f}\n"
               f"layout diversity: generated {layout['generated']:.3f}, real {layout['real']:.3f}\n"
               f"colour diversity: generated {colour['generated']:.3f}, real {colour['real']:.3f}\n"
               f"record: {folder / 'record.json'}")


TOY_INTERPRETER_CONFIG = "configs/interpreter/toy-car-12.yaml"
INTERPRETER_ENTRIES = ("generator.checkpoint", "checkpoint")   # what every use of an interpreter config reads
INTERPRETER_TRAIN_ENTRIES = (*INTERPRETER_ENTRIES, "annotations")


@cli.group()
def interpreter():
    """The Style Interpreter: an ensemble of per-pixel MLPs on GAN features."""


@cli.group()
def annotate():
    """Annotate samples of one's own GAN: prepare the images, their latents and a config."""


@annotate.command("prepare")
@CHECKPOINT_OPTION
@click.option("--n", "count", type=click.IntRange(min=1), default=16, help="How many samples (the paper: 16 cars).")
@click.option("--first-seed", type=click.IntRange(min=0), default=0)
@click.option("--classes", type=click.Choice(sorted(CLASS_SETS)), default="car-12",
              help="The class set the masks will use.")
@click.option("--truncation-psi", type=float, default=0.7, help="As the factory samples (the official code's 0.7).")
@click.option("--out", required=True, help="Folder for images/, labels/, latents.npy, inversion.json, config.yaml.")
def annotate_prepare(checkpoint, count, first_seed, classes, truncation_psi, out):
    """Write N samples of a generator to annotate, their latents and noise seeds, and an interpreter config that
    trains on them once labels/ holds one mask PNG per image (class indices, or the class set's palette colours;
    the image's name).

    \b
    Example: benchmark annotate prepare --checkpoint network.pkl --n 16 --out mine
             ... annotate mine/images/*.png into mine/labels/ ...
             benchmark interpreter train --config mine/config.yaml
    """
    from datasetgan.pipeline import prepare_annotation

    generator = {"checkpoint": str(_existing_file(checkpoint, "--checkpoint")), "truncation_psi": truncation_psi}
    seeds = list(range(first_seed, first_seed + count))
    config = prepare_annotation(generator, classes, seeds, _writable_dir(out))
    click.echo(f"{count} images to annotate in {Path(out) / 'images'}; put one mask per image, same name, in "
               f"{Path(out) / 'labels'}, then: benchmark interpreter train --config {config}")


@interpreter.command("train")
@click.option("--config", "config_path", default=TOY_INTERPRETER_CONFIG, show_default=True,
              type=click.Path(dir_okay=False), help="Interpreter config (generator, classes, annotations, checkpoint).")
@click.option("--device", default="cpu", help="cpu or cuda.")
def interpreter_train(config_path, device):
    """Train the ensemble on annotated GAN samples and save it where the config says.

    \b
    Example: benchmark interpreter train --config configs/interpreter/toy-car-12.yaml
    """
    from datasetgan.pipeline import project_path, train_from_config

    out = train_from_config(configs.load(project_path(config_path), INTERPRETER_TRAIN_ENTRIES), device)
    click.echo(f"interpreter: {out}")


@interpreter.command("import")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Interpreter config: its generator, classes and interpreter settings describe the members; the "
                   "ensemble is written to its checkpoint.")
@click.option("--official", required=True, type=click.Path(exists=True, file_okay=False),
              help="The official train_interpreter.py's output folder (model_0.pth, model_1.pth, ...).")
@click.option("--device", default="cpu", help="cpu or cuda.")
def interpreter_import(config_path, official, device):
    """Bring an ensemble trained by the official DatasetGAN code under one of our configs, to generate with it.

    \b
    Example: benchmark interpreter import --config mine.yaml --official model_dir/car_20
    """
    from datasetgan.pipeline import import_official_from_config, project_path

    out = import_official_from_config(configs.load(project_path(config_path), INTERPRETER_ENTRIES), Path(official),
                                      device)
    click.echo(f"interpreter: {out}")


@interpreter.command("eval")
@click.option("--config", "config_path", default=TOY_INTERPRETER_CONFIG, show_default=True,
              type=click.Path(dir_okay=False), help="Interpreter config (its trained checkpoint is evaluated).")
@click.option("--toy", "toy_root", required=True, type=click.Path(exists=True, file_okay=False),
              help="A toy split folder with exact labels (benchmark toy --split test ...).")
@click.option("--n", "count", type=click.IntRange(min=1), default=32, help="How many of its images.")
@click.option("--steps", type=click.IntRange(min=1), default=300, help="Inversion steps.")
@STARTS_OPTION
@click.option("--out", default="results/interpreter", help="Where the run record is written (a new folder per run).")
def interpreter_eval(config_path, toy_root, count, steps, starts, out):
    """Label held-out toy images through inversion and score them against their exact labels (mIoU).

    \b
    Example: benchmark interpreter eval --toy data/toy-test --n 32
    """
    import time

    from benchmark.records import write_record
    from datasetgan.inversion import InversionSettings
    from datasetgan.pipeline import evaluate_by_inversion, project_path
    from datasources.toy import ToyDataset

    started = time.time()
    config = configs.load(project_path(config_path), INTERPRETER_ENTRIES)
    result = evaluate_by_inversion(config, ToyDataset(toy_root), count, InversionSettings(steps=steps, starts=starts))
    folder = write_record(out, "toy-interpreter-eval", {"config": config, "toy": str(toy_root), **result}, started)
    click.echo(f"mIoU {100 * result['miou_official']:.1f} over {result['images']} inverted images "
               f"(inversion PSNR {result['inversion']['mean_psnr']:.1f} dB); record: {folder / 'record.json'}")


@cli.command()
@click.option("--config", "config_path", default=TOY_INTERPRETER_CONFIG, show_default=True,
              type=click.Path(dir_okay=False), help="Interpreter config whose trained checkpoint labels the samples.")
@click.option("--num", type=click.IntRange(min=1), required=True, help="How many samples (seeds first-seed..).")
@click.option("--first-seed", type=click.IntRange(min=0), default=0)
@click.option("--out", required=True, help="Output folder (an interrupted run resumes).")
@click.option("--filter-ratio", type=click.FloatRange(0, 1, max_open=True), default=0.1,
              help="Fraction of the most uncertain images left out of index.json.")
@click.option("--filter-rule", type=click.Choice(["paper", "official"]), default="paper",
              help="paper: drop that fraction, most uncertain first; official: the released script's slice (also "
                   "drops the 30 most certain, as many in all).")
@click.option("--format", "fmt", type=click.Choice(["png", "coco", "voc", "hf"]), default="png",
              help="coco also writes coco.json; voc also writes OUT/voc, a CVAT 'Segmentation mask 1.1' folder; hf "
                   "also writes OUT/hf, a Hugging Face datasets folder (datasets.load_from_disk).")
@click.option("--shard-size", type=click.IntRange(min=1), default=100)
@click.option("--keypoints-config", type=click.Path(dir_okay=False), default=None,
              help="A keypoint interpreter config on the same generator: each sample also gets its keypoints "
                   "(what `3d train --generated` needs).")
@click.option("--truncation-psi", type=float, default=None,
              help="Sample at this truncation instead of the config's generator.truncation_psi (default 0.7, the "
                   "official); index.json records it.")
@click.option("--device", default="cpu", help="cpu or cuda.")
@click.option("--grid", type=click.Path(dir_okay=False), default=None,
              help="Also save a PNG grid of the first kept samples beside their label maps.")
def generate(config_path, num, first_seed, out, filter_ratio, filter_rule, fmt, shard_size, keypoints_config,
             truncation_psi, device, grid):
    """Generate labelled images: image, label, uncertainty, latent and seed per sample, filtered by
    uncertainty; split across ranks under torchrun.

    \b
    Examples:
      benchmark generate --num 1000 --out synthetic/toy --format coco
      benchmark generate --num 100 --out synthetic/cvat --format voc     then zip synthetic/cvat/voc for CVAT
      benchmark generate --num 1000 --out synthetic/hub --format hf      then load_from_disk("synthetic/hub/hf")
    """
    from datasetgan.distributed import rank_and_world
    from datasetgan.factory import FactorySettings
    from datasetgan.factory import generate as run_factory
    from datasetgan.pipeline import factory_source, labeler_from_config, project_path
    from datasources.base import ClassSet
    from datasources.synthetic import filter_uncertain

    try:
        filter_uncertain({i: 0.0 for i in range(num)}, filter_ratio, filter_rule)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--filter-rule") from None
    config = configs.load(project_path(config_path), INTERPRETER_ENTRIES)
    if truncation_psi is not None:
        config["generator"]["truncation_psi"] = truncation_psi
    backbone, labeler, classes, size, crop_rows = labeler_from_config(config, device)
    settings = FactorySettings(num=num, first_seed=first_seed, shard_size=shard_size, filter_ratio=filter_ratio,
                               filter_rule=filter_rule, coco=fmt == "coco")
    if fmt in ("voc", "hf") and not isinstance(classes, ClassSet):
        raise click.BadParameter(f"{fmt} is for segmentation labels; this interpreter gives keypoints",
                                 param_hint="--format")
    keypointer, keypoint_names, interpreters = None, (), [config]
    if keypoints_config:
        keypointer, keypoint_names, keypoints = _keypointer(config, project_path(keypoints_config), classes, size,
                                                            device)
        interpreters.append(keypoints)
    index = run_factory(backbone, labeler, classes, _writable_dir(out), settings, size, crop_rows, *rank_and_world(),
                        keypointer=keypointer, keypoint_names=keypoint_names, source=factory_source(*interpreters))
    if index is None:
        click.echo("this rank's shards are written; index.json comes when every shard exists")
        return
    click.echo(f"{len(index['kept'])} samples kept, {len(index['dropped'])} dropped as most uncertain: {out}")
    if fmt in ("voc", "hf"):
        from datasources.huggingface import write_hf
        from datasources.synthetic import SyntheticDataset
        from datasources.voc import write_voc

        write = write_voc if fmt == "voc" else write_hf
        click.echo(f"{fmt}: {write(SyntheticDataset(out), Path(out) / fmt)}")
    if grid:
        from datasources.synthetic import SyntheticDataset
        from datasources.visualize import save_label_grid

        save_label_grid(SyntheticDataset(out), grid)
        click.echo(f"grid: {grid}")


def _keypointer(config: dict, path: Path, classes, size: tuple[int, int], device: str):
    """(keypoint labeler, keypoint names, the loaded config) of the keypoint interpreter config at `path`, checked to
    fit the part interpreter's `config`: the same generator, the same label grid, keypoints rather than parts."""
    from datasetgan.pipeline import labeler_from_config, project_path
    from datasources.base import ClassSet

    keypoints = configs.load(path, INTERPRETER_ENTRIES)
    if not isinstance(classes, ClassSet):
        raise configs.ConfigError("--keypoints-config goes with a part interpreter's --config")
    if project_path(keypoints["generator"]["checkpoint"]) != project_path(config["generator"]["checkpoint"]):
        raise configs.ConfigError(f"{path}: generator.checkpoint must be the part interpreter's "
                                  f"({config['generator']['checkpoint']})")
    _, keypointer, names, grid, _ = labeler_from_config(keypoints, device)
    if isinstance(names, ClassSet) or tuple(grid) != tuple(size):
        raise configs.ConfigError(f"{path}: a keypoint interpreter on the part interpreter's {size[0]}x{size[1]} "
                                  f"label grid")
    return keypointer, names, keypoints


@cli.group()
def datasets():
    """Real-dataset adapters."""


@datasets.command("check")
@click.argument("name", type=click.Choice(list(DATASETS)))
@click.option("--root", required=True, type=click.Path(), help="The dataset's root folder, as its publisher ships it.")
def datasets_check(name, root):
    """Report counts, classes present and every problem found in a dataset install.

    \b
    Example: benchmark datasets check ade-car-12 --root /data/ADE20K_2021_17_01
    """
    from datasources.check import check_dataset

    report = check_dataset(name, Path(root))
    click.echo(report.format())
    if not report.ok:
        sys.exit(1)


TOY_RECONSTRUCTOR = Path(__file__).resolve().parents[1] / "checkpoints" / "toy-car-reconstructor.pt"


@cli.command("export-car")
@click.option("--image", required=True, type=click.Path(dir_okay=False), help="A car image (RGB, at least 32x32).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .glb file to write.")
@click.option("--checkpoint", default=str(TOY_RECONSTRUCTOR), type=click.Path(dir_okay=False),
              help="A reconstructor checkpoint.")
@click.option("--turntable", type=click.Path(dir_okay=False), default=None,
              help="Also write a PNG of the reconstruction seen from 8 azimuths.")
@click.option("--color-by", type=click.Choice(COLOR_BY), default="vertex",
              help="Turntable colours: the reconstructed ones, or the ADE-Car-12 part palette.")
@click.option("--gif", type=click.Path(dir_okay=False), default=None,
              help="Also write an animated GIF of the exported car playing its drive clip (our renderer).")
def export_car(image, out, checkpoint, turntable, color_by, gif):
    """Reconstruct a car from one image and write it as an animatable GLB: one node per part (glass
    windows, glowing lamps), each wheel on its own node pivoted at its centre under the body, part
    names in node extras.

    \b
    Example: benchmark export-car --image toy16/images/000000.png --out car.glb --turntable car.png --gif car.gif
    """
    from downstream.drive import save_drive_gif
    from downstream.export import export_glb
    from downstream.turntable import TurntableSettings, save_turntable
    from inverse_graphics.reconstructor import load_reconstructor, read_image, reconstruct

    if Path(out).suffix.lower() != ".glb":
        raise click.BadParameter(f"{out} is not a .glb path", param_hint="--out")
    for path in filter(None, (out, turntable, gif)):
        _writable_dir(str(Path(path).parent))
    recon = reconstruct(load_reconstructor(checkpoint), read_image(image))
    scene = export_glb(recon, out)
    click.echo(f"wrote {out}: nodes {', '.join(scene.graph.nodes_geometry)}")
    if turntable:
        save_turntable(recon, turntable, TurntableSettings(color_by=color_by))
        click.echo(f"wrote {turntable}")
    if gif:
        save_drive_gif(recon, gif)
        click.echo(f"wrote {gif}")


TOY_VIEWPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "toy-viewpoint.pt"


@cli.group("3d")
def three_d():
    """Inverse graphics: one car image -> mesh, texture, 3D part map and 3D keypoints."""


@three_d.command("viewpoint")
@click.option("--toy", "toy_root", required=True, type=click.Path(exists=True, file_okay=False),
              help="A toy split folder (benchmark toy); its last 10% are held out to report the error.")
@click.option("--steps", type=click.IntRange(min=1), default=3000, help="Adam steps at batch 32.")
@click.option("--out", default=str(TOY_VIEWPOINT), type=click.Path(dir_okay=False), help="Checkpoint to write.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for PyTorch.")
def three_d_viewpoint(toy_root, steps, out, threads):
    """Train the viewpoint regressor that gives cameras to generated images, on toy renders.

    \b
    Example: benchmark 3d viewpoint --toy data/toy-labelled --steps 3000
    """
    import torch

    from inverse_graphics.viewpoint import azimuth_error, estimate_cameras, save_viewpoint, train_viewpoint
    from inverse_graphics.views import toy_folder_views

    if threads:
        torch.set_num_threads(threads)
    views = toy_folder_views(toy_root)
    cut = len(views) - max(1, len(views) // 10)
    model = train_viewpoint(views.take(slice(0, cut)), steps)
    held = views.take(slice(cut, None))
    _writable_dir(str(Path(out).parent))
    save_viewpoint(out, model)
    error = azimuth_error(estimate_cameras(model, held.images), held.cameras)
    click.echo(f"{out}: median azimuth error {error.median():.1f} deg over {len(held)} held-out views")


@three_d.command("train")
@click.option("--toy", "toy_root", type=click.Path(exists=True, file_okay=False), default=None,
              help="Source: a toy split folder (exact cameras, labels and keypoints).")
@click.option("--generated", type=click.Path(exists=True, file_okay=False), default=None,
              help="Source: a `benchmark generate` folder (car-12 labels), cameras from --viewpoint.")
@click.option("--mixed", "cars", type=click.IntRange(min=1), default=None,
              help="Source: N generated cars (seeds 0..N-1), --views-per-car views each by style mixing, "
                   "labelled by the --config interpreter, cameras from --viewpoint.")
@click.option("--views-per-car", type=click.IntRange(min=2), default=4)
@click.option("--view-layers", type=click.IntRange(min=1), default=4, help="w+ layers taken from the viewpoint donor.")
@click.option("--config", "config_path", default=TOY_INTERPRETER_CONFIG, type=click.Path(dir_okay=False),
              help="Interpreter config for --mixed.")
@click.option("--viewpoint", default=str(TOY_VIEWPOINT), type=click.Path(dir_okay=False),
              help="Viewpoint regressor for --generated and --mixed (benchmark 3d viewpoint).")
@click.option("--run", "run_dir", required=True, help="Run folder: training.pt and reconstructor.pt; rerun to resume.")
@click.option("--steps", type=click.IntRange(min=1), default=3000, help="Total steps.")
@click.option("--batch", type=click.IntRange(min=1), default=16)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-4)
@click.option("--encoder", default="resnet10", help="resnet10 (a checkpoint under 20 MB) or resnet18 (about 26 MB).")
@click.option("--template", type=click.Choice(TEMPLATE_SHAPES), default="ellipsoid", show_default=True,
              help="The sphere's rest shape: an ellipsoid, or shrink-wrapped onto the toy world's mean car.")
@click.option("--refine-camera/--fixed-camera", default=None,
              help="Let the network correct each view's camera (within 15 degrees of azimuth, 10 of elevation, 10% of "
                   "distance): the default for --generated and --mixed, whose cameras are estimated; fixed for --toy.")
@click.option("--camera-keep", type=click.FloatRange(min=0, max=1, min_open=True), default=1.0, show_default=True,
              help="--generated, --mixed: train on this share of the views only, those whose azimuth the viewpoint "
                   "regressor is surest of (inverse_graphics.viewpoint.most_certain): fewer cameras turned round.")
@click.option("--keypoint-names", type=click.Choice(["camera", "interpreter"]), default="camera", show_default=True,
              help="--generated: rename each sample's wheels, lamps and roof corners to agree with its camera "
                   "(inverse_graphics.views.match_keypoint_names), or keep the keypoint interpreter's names.")
@click.option("--rename-reach", type=click.FloatRange(min=0, min_open=True), default=RENAME_REACH, show_default=True,
              help="--keypoint-names camera: drop a keypoint given another name than the interpreter's when it lies "
                   "farther than this share of the image side from where the mean car shows the new name (the "
                   "default keeps 99.6% of exact render labels; inf keeps every renamed keypoint).")
@click.option("--keypoint-loss", type=click.Choice(KEYPOINT_LOSSES), default="cauchy", show_default=True,
              help="Projected keypoints: Cauchy (labels beyond --keypoint-scale hardly pull: the optimum is where "
                   "most labels agree), mean pixel distance (median-seeking), or mean squared distance.")
@click.option("--keypoint-scale", type=click.FloatRange(min=0, min_open=True), default=0.05, show_default=True,
              help="--keypoint-loss cauchy: the distance where a label pulls most, a share of the image side.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Training seed (initialisation and batches); `3d eval` averages a source's seeds.")
@click.option("--weight", "weights", multiple=True, metavar="NAME=VALUE",
              help="Override a loss weight (inverse_graphics.losses.LossWeights), e.g. --weight deformation=0.25.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=100)
@click.option("--device", default="cpu", help="cpu or cuda.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for PyTorch.")
def three_d_train(toy_root, generated, cars, views_per_car, view_layers, config_path, viewpoint, run_dir, steps,
                  batch, lr, encoder, template, refine_camera, camera_keep, keypoint_names, rename_reach, keypoint_loss,
                  keypoint_scale, seed, weights, checkpoint_every, device, threads):
    """Train the reconstructor through the differentiable renderer from exactly one source. The
    architecture and settings are part of the run, so a resume must repeat them.

    \b
    Examples:
      benchmark 3d train --toy data/toy-labelled --run runs/recon-toy --encoder resnet10
      benchmark 3d train --generated synthetic/toy --run runs/recon-gan
    """
    import dataclasses
    import functools

    import torch

    from inverse_graphics.losses import LossWeights
    from inverse_graphics.reconstructor import ReconstructorConfig
    from inverse_graphics.template import TemplateSettings
    from inverse_graphics.training import ReconstructorTrainer, TrainSettings
    from inverse_graphics.viewpoint import (azimuth_certainty, estimate_cameras, load_viewpoint, most_certain,
                                            viewpoint_outputs)
    from inverse_graphics.views import mixed_views, synthetic_views, toy_folder_views

    if threads:
        torch.set_num_threads(threads)
    if sum(x is not None for x in (toy_root, generated, cars)) != 1:
        raise click.UsageError("give exactly one source: --toy, --generated or --mixed")
    if refine_camera is None:
        refine_camera = not toy_root
    if toy_root and camera_keep < 1:
        raise click.UsageError("--camera-keep is for the sources whose cameras are estimated: --generated, --mixed")
    try:
        config = ReconstructorConfig(encoder=encoder, template=TemplateSettings(shape=template))
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--encoder") from None
    try:
        overrides = {name: float(value) for name, _, value in (w.partition("=") for w in weights)}
        loss_weights = dataclasses.replace(LossWeights(), **overrides)
    except (ValueError, TypeError) as e:
        raise click.BadParameter(f"{', '.join(weights)}: {e}", param_hint="--weight") from None
    if toy_root:
        views, source = toy_folder_views(toy_root), f"toy:{toy_root}"
    else:
        regressor = load_viewpoint(_existing_file(viewpoint, "--viewpoint"), device)
        if regressor.config.image_size != config.image_size:
            raise CheckpointFormatError(f"{viewpoint}: a viewpoint regressor for {config.image_size}-pixel views, "
                                        f"got one for {regressor.config.image_size}")
        cameras = functools.partial(estimate_cameras, regressor)
        if generated:
            views = synthetic_views(generated, cameras, config.image_size, need_keypoints=loss_weights.keypoints > 0,
                                    match_names=keypoint_names == "camera", rename_reach=rename_reach)
            source = f"generated:{generated}" + (", keypoint names by camera" if keypoint_names == "camera" else "")
            if keypoint_names == "camera":
                source += f", renamed within {rename_reach:g}"
        else:
            from datasetgan.pipeline import labeler_from_config, project_path

            interp = configs.load(project_path(config_path), INTERPRETER_ENTRIES)
            backbone, labeler, *_ = labeler_from_config(interp, device)
            views = mixed_views(backbone, labeler, cameras, list(range(cars)), views_per_car, view_layers,
                                config.image_size)
            source = f"mixed:{config_path}:{cars}x{views_per_car}"
        if camera_keep < 1:
            certainty = azimuth_certainty(viewpoint_outputs(regressor, views.images), regressor.config)
            views = views.take(most_certain(certainty, camera_keep))
            source += f", the {camera_keep:.0%} most certain cameras"
    settings = TrainSettings(batch=batch, lr=lr, seed=seed, refine_camera=refine_camera, keypoint_loss=keypoint_loss,
                             keypoint_scale=keypoint_scale, weights=loss_weights)
    trainer = ReconstructorTrainer(_writable_dir(run_dir), views, config, settings, device, source)
    if trainer.step_count:
        click.echo(f"resuming {run_dir} at step {trainer.step_count}", err=True)
    trainer.train(steps, checkpoint_every)
    click.echo(f"reconstructor: {Path(run_dir) / 'reconstructor.pt'} (step {trainer.step_count}, {len(views)} views)")


@three_d.command("eval")
@click.option("--checkpoint", "checkpoints", multiple=True, type=click.Path(dir_okay=False),
              help="Reconstructor checkpoint(s); one table row per source. Without --checkpoint, --record and "
                   "--mean-car: the shipped reconstructor.")
@click.option("--seeds", default="0-49", help="Toy seeds: the test split is 0-249; for choices, validate on seeds no "
                                              "model trains on, e.g. 2009000-2009099 (unlabelled split, past the "
                                              "GAN's 6,000).")
@click.option("--points", type=click.IntRange(min=100), default=5000, help="Surface points per mesh for Chamfer.")
@click.option("--out", default="results/3d", help="Where run records are written (a new folder per checkpoint).")
@click.option("--tables", "tables_dir", default="results/tables",
              help="Where 3d.csv, 3d.tex and 3d.md (one row per source, from these records) are written.")
@click.option("--mean-car", is_flag=True,
              help="Add a row for the toy world's mean car, the same for every image: the prior to beat.")
@click.option("--record", "record_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Earlier `3d eval` record folder(s) to add as they are, e.g. the render rows when only the GAN "
                   "changed; they must have scored the same --seeds. Records written before 2026-12-07 do not name "
                   "their template and are read as the ellipsoid's.")
def three_d_eval(checkpoints, seeds, points, out, tables_dir, mean_car, record_dirs):
    """Score reconstructions of toy test images against their true meshes: Chamfer distance and 3D
    keypoint error (in car lengths), silhouette IoU and part mIoU of the input and novel views. Checkpoints
    of one source (models trained with different --seed) make one table row: mean and std over them. Rows
    come in the order --record, --mean-car, --checkpoint.

    \b
    Example: benchmark 3d eval --checkpoint runs/recon-toy/reconstructor.pt --checkpoint runs/recon-gan/reconstructor.pt
    """
    import time

    from benchmark.records import write_record
    from inverse_graphics.evaluation import evaluate, seed_table, table_row
    from inverse_graphics.reconstructor import load_reconstructor

    seed_list = parse_seeds(seeds)
    if not (checkpoints or record_dirs or mean_car):
        checkpoints = [str(TOY_RECONSTRUCTOR)]
    records = []
    for folder in record_dirs:
        record = _existing_record(folder, "--record")
        if record["seeds"] != seed_list:
            raise click.UsageError(f"--record {folder} scored other seeds than --seeds {seeds}")
        records.append(table_row(record, folder))
    if mean_car:
        started = time.time()
        result = evaluate(None, seed_list, points=points)
        record = {"checkpoint": None, "trained": None, "template": None, **result}
        records.append(table_row(record, write_record(out, "toy-3d-eval", record, started)))
    for checkpoint in checkpoints:
        started = time.time()
        model = load_reconstructor(_existing_file(checkpoint, "--checkpoint"))
        result = evaluate(model, seed_list, points=points)
        record = {"checkpoint": checkpoint, "trained": model.extra, "template": model.config.template.shape, **result}
        records.append(table_row(record, write_record(out, "toy-3d-eval", record, started)))
    table, shown = seed_table(records)
    tables = _writable_dir(tables_dir)
    table.to_csv(tables / "3d.csv", index=False)
    (tables / "3d.tex").write_text(shown.to_latex(index=False, escape=True).replace("±", "$\\pm$"))
    (tables / "3d.md").write_text(shown.to_markdown(index=False, disable_numparse=True) + "\n")
    click.echo(shown.to_string(index=False))
    click.echo(f"tables: {tables / '3d.csv'}, {tables / '3d.tex'}, {tables / '3d.md'}")


def main():
    """Console entry point (`benchmark`, `python -m benchmark`)."""
    cli()
