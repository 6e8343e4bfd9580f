"""The ablation suite (paper Tables 3 to 6 and Fig. 6) on the toy world: a list of runs of the shared
variants, each filling one cell of one table.

- Table 3, synthetic set size: DatasetGAN trained on the first N generated samples, unfiltered (the
  paper's 10K entry, 44.60, is its Table 4's 0%).
- Table 4, filter ratio: the first `filter_num` samples with each ratio of the most uncertain dropped.
  Both read views of one generated set (datasources.synthetic.SyntheticDataset), never generating twice.
- Table 5, against fully supervised: DatasetGAN and the whole labelled pool on `supervised_test_sets`.
- Table 6, data selection: which labelled images the interpreter learns from, drawn from the first
  `selection_pool` images of the labelled split: random (`random_rounds` draws, averaged), or active
  learning as the paper does it (datasetgan.selection): start from the pool image whose inverted latent
  is nearest the pool's mean (the paper's "mean of 10k random samples"), then per round train the
  interpreter, score every pool image's uncertainty (the ensemble's JS divergence) through its inverted
  latent, and add the first coreset centres (embeddings: the inverted latents, flattened) of the
  uncertainty band. The starting image is no active-learning choice (no uncertainty has been measured
  yet), so, as in the paper's table, active learning has no cell at the first count: every cell it fills
  comes from uncertainty-driven rounds. The paper's third strategy, a person's choice, is not modelled.
- Fig. 6, annotated images vs mIoU: the few-label variants with the first N labelled images, and the
  fully supervised line.

The paper's figure beside ours: filter ratios and selection counts where the value is the paper's;
synthetic set sizes by position (the toy sweep is smaller: its i-th size stands for `size_paper`'s i-th).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark.configs import ConfigError
from benchmark.sources import ToyData, settings_from, toy_split
from benchmark.suites import Run, device_of, execute, paper_columns
from benchmark.variants import DatasetGANSettings
from datasources.toy import ToySettings


@dataclass(frozen=True)
class AblationSettings:
    """The sweeps (defaults: the paper's)."""

    test_set: str = "toy-car-12"                       # ADE-Car-12's stand-in, as in the paper
    size: tuple[int, ...] = (3000, 5000, 10000, 20000)
    size_paper: tuple[str, ...] = ("3k", "5k", "10k", "20k")   # the paper's column each size stands for
    filter_num: int = 10000
    filter: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2)
    supervised_test_sets: tuple[str, ...] = ("toy-car-5",)
    selection_pool: int = 64
    selection_counts: tuple[int, ...] = (1, 7, 13, 19)
    random_rounds: int = 5
    centres: int = 12     # the paper's N
    k: float = 10.0       # the paper's k (percent)
    annotated: tuple[int, ...] = (1, 4, 8, 16)
    annotated_variants: tuple[str, ...] = ("transfer", "semi", "datasetgan")

    def __post_init__(self):
        counts = self.selection_counts
        if list(counts) != sorted(set(counts)) or not counts or counts[0] < 1 or counts[-1] > self.selection_pool:
            raise ConfigError(f"ablations.selection_counts must rise from 1 up to selection_pool "
                              f"({self.selection_pool}), got {list(counts)}")
        if any(b - a > self.centres for a, b in zip(counts, counts[1:])):
            raise ConfigError(f"ablations.selection_counts: active learning adds at most `centres` "
                              f"({self.centres}) images a round")
        if self.filter_num > max(self.size, default=self.filter_num):
            raise ConfigError("ablations.filter_num must not exceed the largest ablations.size (one generated set)")


def _paper(table: str, row: str, column: str | None) -> dict | None:
    return None if column is None else {"tables": [table], "row": row, "column": column}


def runs(config: dict, active: dict[int, list[int]] | None = None) -> list[Run]:
    """Every run of the suite whose variant is one of the config's `variants` (`benchmark run --variants` splits
    the suite across processes). active: count -> the labelled indices active learning chose (None: the first
    `count`, a stand-in with the same shape, for checking the configs before anything is trained)."""
    a = settings_from(AblationSettings, config, "ablations")
    base = {k: v for k, v in config.items() if k != "ablations"}
    gan = dict(config.get("datasetgan") or {})
    out = []
    for i, num in enumerate(a.size):
        cfg = {**base, "datasetgan": {**gan, "num": max(a.size), "view": num, "filter_ratio": 0.0}}
        paper = _paper("3", "datasetgan", a.size_paper[i] if i < len(a.size_paper) else None)
        out.append(Run("datasetgan", a.test_set, cfg, "3", "datasetgan", str(num), paper))
    for ratio in a.filter:
        cfg = {**base, "datasetgan": {**gan, "num": max(a.size), "view": a.filter_num, "filter_ratio": ratio}}
        column = f"{100 * ratio:g}%"
        out.append(Run("datasetgan", a.test_set, cfg, "4", "datasetgan", column, _paper("4", "datasetgan", column)))
    for test_set in a.supervised_test_sets:
        for variant in ("supervised", "datasetgan"):
            out.append(Run(variant, test_set, base, "5", variant, test_set,
                           {"tables": ["5"], "row": variant, "column": paper_columns(config).get(test_set, test_set)}))
    from datasetgan.selection import select_random

    for count in a.selection_counts:
        paper = _paper("6", "random", str(count))
        for r in range(a.random_rounds):
            chosen = select_random(a.selection_pool, count, seed=r)
            out.append(Run("datasetgan", a.test_set, {**base, "labelled": chosen}, "6", "random", str(count), paper,
                           round=r, facts={"selection": "random", "round": r}))
        if count == a.selection_counts[0]:
            continue   # the shared start (the image nearest the pool mean), not an active-learning choice
        chosen = (active or {}).get(count, list(range(count)))
        out.append(Run("datasetgan", a.test_set, {**base, "labelled": chosen}, "6", "active", str(count),
                       _paper("6", "active", str(count)), facts={"selection": "active", "rounds_of_js_uncertainty":
                                                                 a.selection_counts.index(count)}))
    toy = dict(config.get("toy") or {})
    for count in a.annotated:
        for variant in a.annotated_variants:
            out.append(Run(variant, a.test_set, {**base, "toy": {**toy, "labelled": count}}, "fig6", variant,
                           str(count)))
    out.append(Run("supervised", a.test_set, base, "fig6", "supervised", "pool"))
    return [run for run in out if run.variant in config["variants"]]


def active_selection(config: dict, out: Path) -> dict[int, list[int]]:
    """count -> the labelled-pool indices active learning has chosen once it holds `count` images."""
    from benchmark.toy_interpreter import (ToyInterpreterSettings, generator_file, interpreter_config,
                                           invert_labelled, trained)
    from datasetgan.pipeline import labeler_from_config
    from datasetgan.selection import k_center_greedy, select_active

    a = settings_from(AblationSettings, config, "ablations")
    device = device_of(config)
    toy = settings_from(ToyData, config, "toy")
    interp = settings_from(ToyInterpreterSettings,
                           {"t": settings_from(DatasetGANSettings, config, "datasetgan").toy_interpreter}, "t")
    folder = out / "work" / "shared" / "interpreters"
    pool = list(range(a.selection_pool))
    labelled = toy_split(out / "data", "labelled", len(pool), ToySettings(resolution=toy.resolution))
    generator = generator_file(interp, toy.resolution, folder)
    latents = torch.from_numpy(np.load(invert_labelled(generator, labelled, pool, interp, folder))).float()
    embeddings = latents.flatten(1)
    chosen = [k_center_greedy(embeddings, 1)[0]]
    selections = {}
    for count, following in zip(a.selection_counts, [*a.selection_counts[1:], None]):
        selections[count] = list(chosen[:count])
        if following is None:
            break
        cfg = trained(interpreter_config(labelled, chosen, interp, folder), device)
        backbone, labeler, *_ = labeler_from_config(cfg, device)
        with torch.no_grad():   # pool image i was inverted under the noise of seed i
            scores = torch.cat([labeler(backbone.synthesize(batch.to(backbone.device), seeds=seeds.tolist()))[2].cpu()
                                for batch, seeds in zip(latents.split(8), torch.arange(len(pool)).split(8))])
        candidates = [i for i in pool if i not in chosen]
        centres = select_active(scores[candidates], embeddings[candidates], a.centres, a.k)
        chosen += [candidates[c] for c in centres][:following - len(chosen)]
    return selections


def run_ablations(config: dict, out: Path) -> list[Path]:
    """Choose the active-learning sets, then run every cell; returns the record folders written."""
    a = settings_from(AblationSettings, config, "ablations")
    active = active_selection(config, out) if a.selection_counts and "datasetgan" in config["variants"] else None
    return execute(runs(config, active), out)
