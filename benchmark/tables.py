"""Tables from run records only: <out>/tables/<suite>.csv, tidy: one row per (table, row, column, metric) cell
with raw floats (mIoU and PCK in percent, the L2 heatmap loss as is: rounded only when formatted), and, made
from it, .tex and .md: one table per paper table, rows as the paper's (variants, or selection strategies), a
column group per test set or sweep value and metric, with the paper's figure beside ours where one exists;
the ablations also get the paper's Fig. 6 as a PNG.

Every record names its cell (table, row, column, round), its training seed and where the paper's
figure is looked up (benchmark/paper_numbers.csv: table, row, column, metric, value, std, source; a
profile's `paper_columns` says which paper column a toy test set stands in for). A cell takes the
latest record of each (round, seed) and shows the mean of their k-fold means, +- their standard
deviation (ddof 1: over training seeds, and over Table 6's random draws where a cell has several),
and how many seeds; the spread over folds of one training (fold_std, the mean of the records') is kept
beside it but is not the +-: it is not training noise. Segmentation records carry their setup's
ceiling (benchmark.oracle), which the captions quote; keypoint records the L2 of all-zero heatmaps,
shown as its own row beside the L2 column.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.configs import ConfigError
from benchmark.metrics import iou_per_class
from benchmark.qualitative import write_grids
from benchmark.variants import variant_rank
from datasources.files import read_json

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.csv")
CAPTIONS = {"1": "Part segmentation (paper Table 1): mIoU (\\%)",
            "2": "Keypoint detection (paper Table 2): L2 heatmap loss, PCK (\\%) at t percent of the object's box",
            "3": "Synthetic dataset size (paper Table 3; unfiltered): mIoU (\\%)",
            "4": "Filtering ratio (paper Table 4): mIoU (\\%)",
            "5": "Against fully supervised (paper Table 5): mIoU (\\%)",
            "6": "Data selection (paper Table 6; random: over draws and seeds): mIoU (\\%)",
            "fig6": "Annotated images against mIoU (\\%) (the data of paper Fig. 6)"}
RAW_METRICS = ("l2",)   # shown as computed; every other metric is a fraction shown in percent

def load_records(out: Path, suite: str) -> list[dict]:
    """Every record.json under out/runs of `suite`, oldest first."""
    records = []
    for path in sorted((Path(out) / "runs").glob("*/record.json")):
        record = read_json(path, "run record")
        if record.get("suite") == suite and "cell" in record:
            records.append({**record, "path": str(path.parent)})
    return sorted(records, key=lambda r: (r["finished_utc"], r["path"]))


def paper_numbers() -> pd.DataFrame:
    return pd.read_csv(PAPER_NUMBERS, dtype={"table": str, "column": str})


def _paper_figure(paper: pd.DataFrame, where: dict | None, metric: str) -> pd.Series | None:
    for table in (where or {}).get("tables", []):
        hit = paper[(paper.table == str(table)) & (paper.row == where["row"]) & (paper.column == where["column"])
                    & (paper.metric == metric)]
        if len(hit):
            return hit.iloc[0]
    return None


def _unit(metric: str) -> float:
    return 1.0 if metric in RAW_METRICS else 100.0


ALL_ZERO_ROW = "all-zero heatmaps"


def latest_per_cell(records: list[dict]) -> tuple[dict, dict]:
    """records (oldest first) -> ({(table, row, column): {(round, seed): its latest record}}, {cell: how many
    records it has})."""
    latest, counts = {}, {}
    for r in records:
        c = r["cell"]
        key = (c["table"], c["row"], c["column"])
        latest.setdefault(key, {})[c["round"], r.get("seed", 0)] = r
        counts[key] = counts.get(key, 0) + 1
    return latest, counts


def per_class(out: Path, suite: str) -> pd.DataFrame:
    """One row per (table, row, column, class) of the suite's segmentation cells: the class's IoU (%) in the k-fold
    evaluation (each fold's held-out images at the checkpoint the fold selected, pooled), the mean and the
    std (ddof 1) over the cell's records (seeds, and rounds where there are several)."""
    rows = []
    for (table, row, column), cell in latest_per_cell(load_records(out, suite))[0].items():
        ious = []
        for r in cell.values():
            if "confusion_per_checkpoint_and_fold" not in r:
                continue   # a keypoint record, or one written before the protocol named checkpoints so
            confusion = np.asarray(r["confusion_per_checkpoint_and_fold"], np.int64)   # (E, F, K, K)
            total = confusion.sum(1)
            selected = r["cross_validation"]["miou"]["selected_checkpoints"]
            held = sum(total[e] - confusion[e, f] for f, e in enumerate(selected))
            ious.append(100 * iou_per_class(held))
        if ious:
            ious = np.stack(ious)
            for k, name in enumerate(cell[next(iter(cell))]["classes"]):
                rows.append({"table": table, "row": row, "column": column, "class": name,
                             "iou_mean": float(np.nanmean(ious[:, k])) if not np.isnan(ious[:, k]).all() else np.nan,
                             "iou_seed_std": float(np.nanstd(ious[:, k], ddof=1)) if len(ious) > 1 else np.nan,
                             "records": len(ious)})
    return pd.DataFrame(rows)


def per_class_markdown(classes: pd.DataFrame, suite: str) -> str:
    """per_class() as one Markdown table per (table, test set): a row per class, a column per variant (in the
    paper's order), IoU (%) mean +- seed std."""
    parts = []
    for (table, column), part in classes.groupby(["table", "column"], sort=False):
        shown = part.assign(iou=[_format("miou", m, s, " ± ") for m, s in zip(part.iou_mean, part.iou_seed_std)])
        frame = shown.pivot(index="class", columns="row", values="iou").reindex(part["class"].unique())
        frame = frame[sorted(part.row.unique(), key=variant_rank)]
        parts.append(f"**Suite {suite}, table {table}, {column}: IoU per class (%), mean ± std over training seeds**"
                     f"\n\n{frame.reset_index().to_markdown(index=False, disable_numparse=True)}\n")
    return "\n".join(parts)


def build(out: Path, suite: str) -> pd.DataFrame:
    """The tidy table: one row per (table, row, column, metric) cell, variants in the paper's order (VARIANTS), other
    rows in the suite's run order (each record's `order`): ours (mean, seed std, seeds, fold std), the paper's figure for it, ours minus the paper's, how
    many records and rounds it comes from, the folders of the records its figure averages (record_ids), and
    the setup's ceiling (oracle mIoU, segmentation only). Keypoint tables get a row ALL_ZERO_ROW with the L2
    of all-zero heatmaps on each test set."""
    records = load_records(out, suite)
    if not records:
        raise ConfigError(f"no run records of suite {suite!r} under {Path(out) / 'runs'}; run `benchmark run` first")
    paper = paper_numbers()
    latest, counts = latest_per_cell(records)
    rows, floors = [], {}
    for (table, row, column), cell in latest.items():
        last = max(cell.values(), key=lambda r: (r["finished_utc"], r["path"]))
        for metric in last["metrics"]:
            unit = _unit(metric)
            means = [unit * r["cross_validation"][metric]["mean"] for r in cell.values()]
            figure = _paper_figure(paper, last.get("paper"), metric)
            mean = float(np.mean(means))
            rows.append({"table": table, "row": row, "column": column, "metric": metric, "mean": mean,
                         "seed_std": float(np.std(means, ddof=1)) if len(means) > 1 else np.nan,
                         "seeds": len({seed for _, seed in cell}), "rounds": len({rnd for rnd, _ in cell}),
                         "fold_std": float(np.mean([unit * r["cross_validation"][metric]["std"]
                                                    for r in cell.values()])),
                         "variant": last["variant"], "test_set": last["test_set"], "profile": last["profile"],
                         "oracle": unit * last["oracle_miou"] if metric == "miou" and "oracle_miou" in last else np.nan,
                         "paper_column": (last.get("paper") or {}).get("column"),
                         "paper": np.nan if figure is None else float(figure.value),
                         "paper_std": np.nan if figure is None or pd.isna(figure["std"]) else float(figure["std"]),
                         "paper_source": None if figure is None else figure.source,
                         "delta": np.nan if figure is None else mean - float(figure.value),
                         "records": counts[(table, row, column)],
                         "record_ids": " ".join(sorted(Path(r["path"]).name for r in cell.values())),
                         "_order": (variant_rank(row), last.get("order", 0))})
        if "l2_all_zero_heatmaps" in last:
            floors[table, column] = (last["l2_all_zero_heatmaps"], last["test_set"], last["profile"])
    for (table, column), (l2, test_set, profile) in floors.items():
        rows.append({"table": table, "row": ALL_ZERO_ROW, "column": column, "metric": "l2", "mean": l2,
                     "seeds": 0, "rounds": 0, "test_set": test_set, "profile": profile, "records": 0,
                     "_order": (variant_rank(ALL_ZERO_ROW) + 1, 0)})
    return pd.DataFrame(rows).sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


def _format(metric: str, mean, std, pm: str) -> str:
    """mean (and `pm` std when known), rounded as the metric is shown; "--" when there is no figure."""
    if pd.isna(mean):
        return "--"
    number = "{:.2e}" if metric in RAW_METRICS else "{:.2f}"
    text = number.format(mean)
    return text if pd.isna(std) else f"{text}{pm}{number.format(std)}"


def _delta(metric: str, delta) -> str:
    if pd.isna(delta):
        return "--"
    return f"{delta:+.2e}" if metric in RAW_METRICS else f"{delta:+.2f}"


def _shown(table: pd.DataFrame, pm: str):
    """(paper table name, its rows, frame of formatted cells with (column head, Ours/Paper/Delta) columns) per paper
    table: rows as the paper's, per column and metric ours (mean `pm` std), the paper's figure for the column it
    stands in for, and ours minus the paper's."""
    for name in dict.fromkeys(table.table):
        part = table[table.table == name]
        rows = list(dict.fromkeys(part.row))
        shown = {("", "Row"): rows}
        metrics = list(dict.fromkeys(part.metric))
        for column, metric in dict.fromkeys(zip(part.column, part.metric)):
            cells = part[(part.column == column) & (part.metric == metric)].set_index("row").reindex(rows)
            stands = [c for c in dict.fromkeys(cells.paper_column) if isinstance(c, str) and c != column]
            head = f"{column}{' ' + metric if len(metrics) > 1 else ''}"
            head += f" (paper: {', '.join(stands)})" if stands else ""
            shown[(head, "Ours")] = [_format(metric, m, s, pm) for m, s in zip(cells["mean"], cells["seed_std"])]
            shown[(head, "Paper")] = [_format(metric, m, s, pm) for m, s in zip(cells.paper, cells.paper_std)]
            shown[(head, "Delta")] = [_delta(metric, d) for d in cells.delta]
        yield name, part, pd.DataFrame(shown)


def to_latex(table: pd.DataFrame, suite: str) -> str:
    """One LaTeX table per paper table (_shown), its caption saying what the +- is and the setup's ceilings."""
    parts = []
    for name, part, frame in _shown(table, " $\\pm$ "):
        frame.columns = pd.MultiIndex.from_tuples([(head.replace("%", "\\%"), kind) for head, kind in frame.columns])
        caption = CAPTIONS.get(name, f"Table {name}")
        parts.append(frame.to_latex(index=False, escape=False, multicolumn_format="c",
                                    caption=f"Suite {suite}. {caption}; {_spread(part)}, the paper's figure where "
                                            f"one exists.{_ceilings(part)}"))
    return "\n".join(parts)


def to_markdown(table: pd.DataFrame, suite: str) -> str:
    """The same tables in Markdown, each under its caption (LaTeX markup dropped)."""
    parts = []
    for name, part, frame in _shown(table, " ± "):
        frame.columns = [f"{head}: {kind.lower()}" if head else kind for head, kind in frame.columns]
        caption = f"{CAPTIONS.get(name, f'Table {name}')}; {_spread(part)}.{_ceilings(part)}"
        parts.append(f"**Suite {suite}. {caption.replace(chr(92), '').replace('$pm$', '±')}**\n\n"
                     f"{frame.to_markdown(index=False, disable_numparse=True)}\n")
    return "\n".join(parts)


def _spread(part: pd.DataFrame) -> str:
    """What the table's +- is: the seed std, and over how many seeds."""
    seeds = sorted({int(n) for n in part.seeds if n > 0})
    count = "/".join(map(str, seeds)) + (" seed" if seeds == [1] else " seeds")
    return f"mean $\\pm$ std over training seeds ({count} a cell; none with one)"


def _ceilings(part: pd.DataFrame) -> str:
    """The setups' ceilings (oracle mIoU at the network's output grid) of the table's test sets, for its caption."""
    known = part.dropna(subset=["oracle"]).drop_duplicates("test_set")
    if known.empty:
        return ""
    listed = ", ".join(f"{t} {o:.1f}" for t, o in zip(known.test_set, known.oracle))
    return f" Ceiling of the segmentation setup (oracle logits at its output grid): {listed}."


def summary(table: pd.DataFrame) -> str:
    """The table's main columns as plain text for a terminal."""
    columns = ["table", "row", "column", "metric", "mean", "seed_std", "seeds", "fold_std", "paper", "delta", "records"]
    return table[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}")


def plot_fig6(table: pd.DataFrame, path: Path) -> Path:
    """Paper Fig. 6 from the long table's `fig6` rows: mIoU against the number of annotated images, one line
    per few-label variant (mean +- std over training seeds), the fully supervised run as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    part = table[(table.table == "fig6") & (table.metric == "miou")]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for row in dict.fromkeys(part.row):
        line = part[part.row == row]
        if row == "supervised":
            ax.axhline(line["mean"].iloc[0], color="red", linestyle="--", label="fully supervised (whole pool)")
            continue
        x = line.column.astype(int)
        ax.errorbar(x, line["mean"], yerr=line["seed_std"].fillna(0), marker="o", capsize=3, label=row)
    ax.set_xlabel("number of annotated images")
    ax.set_ylabel("mIoU (%)")
    ax.set_title(f"annotated images vs mIoU ({', '.join(dict.fromkeys(part.test_set))})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_tables(out: Path, suite: str) -> tuple[Path, Path, pd.DataFrame]:
    """Write out/tables/<suite>.csv (build(), tidy), .tex and .md from the records, out/tables/<suite>-per-class.csv
    and .md (per_class) when the suite has segmentation records, out/tables/qualitative/ (benchmark.qualitative:
    a grid per table and test set) when its records hold predictions, and out/tables/<suite>-fig6.png when the
    records hold Fig. 6's runs; returns the CSV and LaTeX paths and the tidy table."""
    table = build(out, suite)
    folder = Path(out) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    csv, tex = folder / f"{suite}.csv", folder / f"{suite}.tex"
    table.to_csv(csv, index=False)
    tex.write_text(to_latex(table, suite))
    (folder / f"{suite}.md").write_text(to_markdown(table, suite))
    classes = per_class(out, suite)
    if not classes.empty:
        classes.to_csv(folder / f"{suite}-per-class.csv", index=False)
        (folder / f"{suite}-per-class.md").write_text(per_class_markdown(classes, suite))
    write_grids(latest_per_cell(load_records(out, suite))[0], out, suite)
    if (table.table == "fig6").any():
        plot_fig6(table, folder / f"{suite}-fig6.png")
    return csv, tex, table
