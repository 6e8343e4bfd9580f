"""What caps the Style Interpreter on the toy world: what the GAN draws, or what the interpreter makes of it.

A segmenter trained on 250 labelled renders (the demo's network and recipe; renders 1,000-1,249, which are neither
annotated nor tested) reads what an image shows. Beside the interpreter (the demo's: the first 16 labelled renders
inverted into the GAN's W, 10 members), it labels
  - 32 test renders (what the reader itself gets right),
  - their inversions into the GAN, scored against the renders' exact labels: how much of each part the GAN redraws
    where it is, as a reader that knows the renders sees it (the interpreter is scored on these same images),
  - the 16 annotated inversions, against their exact labels: how far the training annotations match what the GAN
    drew (and the interpreter's fit of them),
  - fresh samples (seeds 100000-, psi 1 and 0.7): each class's pixel share by reader and interpreter, and their
    agreement (IoU of one's labels against the other's).
Prints one row per class (IoU % and pixel share %) and the mean over classes (official convention).
--held-out validation puts 32 labelled renders (1,250-1,281) in the test renders' place, to choose interpreter
settings (--class-weighting) without the test split.

    python bench/interpreter_limits.py --threads 1                       # the shipped GAN
    python bench/interpreter_limits.py --gan runs/toy-gan/generator.pt   # another toy GAN, its own interpreter
    python bench/interpreter_limits.py --held-out validation --class-weighting inverse_sqrt_frequency
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from benchmark.metrics import confusion, iou_per_class, mean_iou
from benchmark.segmentation import (LabelledImages, SegmentationSettings, build_network, fit, load_images,
                                    predict_labels)
from benchmark.sources import toy_split
from benchmark.toy_interpreter import ToyInterpreterSettings, interpreter_config, trained
from datasetgan.backbone import Synthesized, Truncation
from datasetgan.factory import image_at_label_grid
from datasetgan.inversion import InversionSettings, invert
from datasetgan.pipeline import labeler_from_config
from datasources.classes import CLASS_WEIGHTINGS
from datasources.toy import ToySettings

ANNOTATED = 16
HELD_OUT = 32
READER_IMAGES = range(1000, 1250)
VALIDATION_IMAGES = range(1250, 1250 + HELD_OUT)
READER = {"lr": 4e-3, "class_weighting": "inverse_sqrt_frequency", "steps": 1200}   # the demo recipe


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """float (B, 3, H, W) in about [-1, 1] -> uint8 (B, H, W, 3), as the factory writes images."""
    return image_at_label_grid(images, images.shape[-2:])


def scores(pred: np.ndarray, truth: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """(per-class IoU (%), mIoU (%), official convention) of label maps pred against truth (both (N, H, W)), pooled
    over the set."""
    matrix = sum(confusion(p, t, k) for p, t in zip(pred, truth))
    return 100 * np.nan_to_num(iou_per_class(matrix)), 100 * mean_iou(matrix)


def shares(labels: np.ndarray, k: int) -> np.ndarray:
    """Pixel share (%) of each class in label maps (N, H, W)."""
    return 100 * np.bincount(labels.ravel(), minlength=k) / labels.size


def trained_reader(labelled, k: int, folder: Path, seed: int) -> torch.nn.Module:
    """The reader: the demo's segmenter trained on READER_IMAGES (resumed, or reloaded, from folder)."""
    data = load_images(labelled, READER_IMAGES.stop)
    train = LabelledImages(data.images[READER_IMAGES.start:], data.labels[READER_IMAGES.start:], data.classes)
    settings = SegmentationSettings(backbone="dilated_resnet", evaluations=1, seed=seed, **READER)
    net = build_network(settings, k)
    fit(net, train, None, settings, folder, desc="reader")
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gan", default="checkpoints/toy-car-gan.pt")
    parser.add_argument("--held-out", choices=("test", "validation"), default="test",
                        help="the images inverted and scored: the first 32 of the test split, or labelled renders "
                             f"{VALIDATION_IMAGES.start}-{VALIDATION_IMAGES.stop - 1}")
    parser.add_argument("--class-weighting", choices=CLASS_WEIGHTINGS, default="none",
                        help="the interpreter's cross-entropy class weights")
    parser.add_argument("--inversion-steps", type=int, default=ToyInterpreterSettings.inversion_steps,
                        help="of every inversion, annotated and held out")
    parser.add_argument("--inversion-starts", type=int, default=ToyInterpreterSettings.inversion_starts,
                        help="starts of every inversion (datasetgan.inversion.InversionSettings.starts)")
    parser.add_argument("--samples", type=int, default=64, help="fresh samples per truncation")
    parser.add_argument("--seed", type=int, default=0, help="the reader's training seed")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data", default="results/data", help="where toy splits are rendered (or found)")
    parser.add_argument("--work", default="build/interpreter-limits",
                        help="reader, inversions and interpreter, kept for reruns")
    parser.add_argument("--out", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--write-config", default=None,
                        help="also write the interpreter's config (YAML) here, for `benchmark generate --config`")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    work = Path(args.work)
    labelled = toy_split(Path(args.data), "labelled", VALIDATION_IMAGES.stop, ToySettings(resolution=64))
    if args.held_out == "test":
        held_out = load_images(toy_split(Path(args.data), "test", HELD_OUT, ToySettings(resolution=64)), HELD_OUT)
    else:
        data = load_images(labelled, VALIDATION_IMAGES.stop)
        held_out = LabelledImages(data.images[VALIDATION_IMAGES.start:], data.labels[VALIDATION_IMAGES.start:],
                              data.classes)
    classes = held_out.classes
    k = len(classes)
    reader = trained_reader(labelled, k, work / f"reader-seed{args.seed}", args.seed)

    settings = ToyInterpreterSettings(generator=args.gan, class_weighting=args.class_weighting,
                                      inversion_steps=args.inversion_steps, inversion_starts=args.inversion_starts)
    config = trained(interpreter_config(labelled, list(range(ANNOTATED)), settings, work / "interpreter"), "cpu")
    if args.write_config:
        Path(args.write_config).write_text(yaml.safe_dump(config))
    backbone, labeler, _, _, _ = labeler_from_config(config)
    read = lambda images: predict_labels(reader, images, torch.device("cpu"))   # noqa: E731
    interpret = lambda s: labeler(s)[0].cpu().numpy()                            # noqa: E731

    rows, means = {}, {}

    def add(name: str, pred: np.ndarray, truth: np.ndarray) -> None:
        rows[name], means[name] = scores(pred, truth, k)

    add(f"reader on {args.held_out} renders", read(held_out.images), held_out.labels.numpy())
    images = held_out.images.permute(0, 3, 1, 2).float() / 127.5 - 1
    inversion = InversionSettings(steps=settings.inversion_steps, starts=settings.inversion_starts)
    inverted = invert(backbone, images, inversion, noise_seeds=list(range(HELD_OUT)))
    redrawn = backbone.synthesize(inverted.ws, seeds=inverted.noise_seeds)
    add(f"reader on {args.held_out} inversions", read(as_uint8(redrawn.image)), held_out.labels.numpy())
    add(f"interpreter on {args.held_out} inversions", interpret(redrawn), held_out.labels.numpy())

    ann = load_images(labelled, ANNOTATED)
    ws = torch.from_numpy(np.load(config["annotations"]["latents"])).float()
    annotated = backbone.synthesize(ws, seeds=list(range(ANNOTATED)))
    add("reader on annotated inversions", read(as_uint8(annotated.image)), ann.labels.numpy())
    add("interpreter on annotated inversions", interpret(annotated), ann.labels.numpy())

    share = {f"{args.held_out} renders (exact)": shares(held_out.labels.numpy(), k)}
    seeds = list(range(100_000, 100_000 + args.samples))
    for psi in (1.0, 0.7):
        backbone.truncation = Truncation(psi)
        sample: Synthesized = backbone.sample(seeds)
        by_reader, by_interpreter = read(as_uint8(sample.image)), interpret(sample)
        add(f"interpreter vs reader, samples psi {psi}", by_interpreter, by_reader)
        share[f"reader, samples psi {psi}"] = shares(by_reader, k)
        share[f"interpreter, samples psi {psi}"] = shares(by_interpreter, k)

    print(f"GAN {args.gan}; interpreter class weighting {args.class_weighting}; {args.inversion_steps} inversion "
          f"steps from {args.inversion_starts} start(s); {args.held_out} inversion PSNR "
          f"{float(inverted.psnr.mean()):.1f} dB; {time.time() - started:.0f} s\n")
    print("IoU (%) | " + " | ".join(classes.names) + " | mean")
    for name, row in rows.items():
        print(f"{name} | " + " | ".join(f"{v:.1f}" for v in row) + f" | {means[name]:.1f}")
    print("\npixel share (%) | " + " | ".join(classes.names))
    for name, row in share.items():
        print(f"{name} | " + " | ".join(f"{v:.2f}" for v in row))
    if args.out:
        Path(args.out).write_text(json.dumps({
            "gan": args.gan, "held_out": args.held_out, "class_weighting": args.class_weighting,
            "inversion_steps": args.inversion_steps, "inversion_starts": args.inversion_starts,
            "classes": list(classes.names), "inversion_psnr": float(inverted.psnr.mean()),
            "iou": {n: r.tolist() for n, r in rows.items()}, "miou": means,
            "pixel_share": {n: r.tolist() for n, r in share.items()}}, indent=1))


if __name__ == "__main__":
    main()
