"""Qualitative figures (the paper's Fig. 7): test images, their ground truth and each variant's prediction, in
the class palette, with a legend.

fit() keeps the predicted classes of a few test images (segmentation.shown_indices) at every evaluation. Each
segmentation run's record folder then gets qualitative.npz: those images, their labels and, for each, the
prediction at a checkpoint the table scored it with (k-fold: every fold picks a checkpoint on itself and is
scored on the other folds; an image of fold g is shown at the pick of fold g + 1). `benchmark tables` draws one
grid per table and test set from the latest seed-0 records.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.segmentation import LabelledImages, shown_indices
from benchmark.variants import variant_rank
from datasources.base import IGNORE, ClassSet
from datasources.files import atomic_write

QUALITATIVE_FILE = "qualitative.npz"
SCALE = 2   # nearest-neighbour upscaling of small images, so their pixels stay visible


def save_shown(folder: Path, test: LabelledImages, predictions: np.ndarray, fold_indices: list[np.ndarray],
               selected: tuple[int, ...]) -> Path:
    """Write folder/qualitative.npz: images uint8 (S, H, W, 3), labels uint8 (S, H, W), predictions uint8
    (S, H, W), indices and checkpoints int64 (S,), the class names and palette uint8 (K, 3). predictions: uint8
    (E, S, H, W) at every evaluation; selected: each fold's pick."""
    shown = shown_indices(len(test))
    fold_of = np.empty(len(test), np.int64)
    for f, idx in enumerate(fold_indices):
        fold_of[idx] = f
    checkpoints = np.asarray(selected, np.int64)[(fold_of[shown] + 1) % len(fold_indices)]
    arrays = {"images": test.images[shown].numpy(), "labels": test.labels[shown].numpy().astype(np.uint8),
              "predictions": predictions[checkpoints, np.arange(len(shown))], "indices": shown,
              "checkpoints": checkpoints, "class_names": np.array(test.classes.names),
              "palette": np.array(test.classes.palette, np.uint8)}
    path = Path(folder) / QUALITATIVE_FILE
    atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))
    return path


def colorize(labels: np.ndarray, classes: ClassSet) -> np.ndarray:
    """uint8 (..., H, W) classes -> uint8 (..., H, W, 3) in the class palette, IGNORE white."""
    palette = np.full((256, 3), 255, np.uint8)
    palette[:len(classes)] = classes.palette
    labels = np.where(labels == IGNORE, 255, labels)
    return palette[labels]


def draw_grid(shown: dict[str, dict], classes: ClassSet, path: Path, title: str) -> Path:
    """One row per shown test image: the image, its ground truth, then each entry of `shown` (name -> a loaded
    qualitative.npz; all of the same test images) as a column; a legend of the classes underneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    first = next(iter(shown.values()))
    columns = {"image": first["images"], "ground truth": colorize(first["labels"], classes)}
    columns.update({name: colorize(data["predictions"], classes) for name, data in shown.items()})
    rows = len(first["labels"])
    width = max(1.2 * len(columns), 5.0)
    ncol = max(2, int(width / 1.1))
    legend = 0.2 * -(-len(classes) // ncol) + 0.1   # inches: the legend's rows
    fig, axes = plt.subplots(rows, len(columns), figsize=(width, 1.2 * rows + 0.4 + legend), squeeze=False)
    for c, (name, tiles) in enumerate(columns.items()):
        axes[0, c].set_title(name, fontsize=8)
        for r in range(rows):
            axes[r, c].imshow(np.repeat(np.repeat(tiles[r], SCALE, 0), SCALE, 1), interpolation="nearest")
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
    handles = [Patch(facecolor=np.array(colour) / 255, edgecolor="0.5", linewidth=0.5, label=name)
               for name, colour in zip(classes.names, classes.palette)]
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, legend / fig.get_figheight(), 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def write_grids(cells: dict, out: Path, suite: str) -> list[Path]:
    """cells: benchmark.tables.latest_per_cell's {(table, row, column): {(round, seed): record}} -> one grid per
    (table, column) from its rows' seed-0 round-0 records that hold qualitative.npz (variants in VARIANTS order),
    written to out/tables/qualitative/<suite>-<table>-<column>.png; returns the paths."""
    grids: dict[tuple[str, str], dict] = {}
    for (table, row, column), by_seed in cells.items():
        record = by_seed.get((0, 0))
        if record is not None and (Path(record["path"]) / QUALITATIVE_FILE).is_file():
            grids.setdefault((table, column), {})[row] = record
    written = []
    for (table, column), records in grids.items():
        rows = sorted(records, key=variant_rank)
        loaded = {row: dict(np.load(Path(records[row]["path"]) / QUALITATIVE_FILE)) for row in rows}
        indices = {tuple(d["indices"]) for d in loaded.values()}
        if len(indices) > 1:
            continue   # records of different test sets under one column name: nothing to put side by side
        data = next(iter(loaded.values()))
        palette = tuple(map(tuple, data["palette"].tolist()))
        classes = ClassSet(column, tuple(str(n) for n in data["class_names"]), palette)
        path = Path(out) / "tables" / "qualitative" / f"{suite}-{table}-{column}.png"
        written.append(draw_grid(loaded, classes, path, f"{suite}, table {table}, {column}: seed-0 predictions"))
    return written

