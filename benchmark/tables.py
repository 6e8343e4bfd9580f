"""Tables from run records only: <out>/tables/<suite>.csv (raw floats, mIoU in percent) and .tex
(rounded when formatted), one row per variant and a group of columns per test set, with the
paper's figure beside ours where one exists.

The paper's numbers live in one file, benchmark/paper_numbers.csv (table, row, column, value, std,
source); a suite's `paper_tables` says which tables to look in, in order, and a profile's
`paper_columns` says which paper column a test set stands in for (the toy world's test set for
ADE-Car-12, say). When several records exist for one variant and test set, the latest is used and
the number of records is shown.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from benchmark.configs import ConfigError

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.csv")


def load_records(out: Path, suite: str) -> list[dict]:
    """Every record.json under out/runs of `suite`, oldest first."""
    records = []
    for path in sorted((Path(out) / "runs").glob("*/record.json")):
        record = json.loads(path.read_text())
        if record.get("suite") == suite and "cross_validation" in record:
            records.append({**record, "path": str(path.parent)})
    return sorted(records, key=lambda r: (r["finished_utc"], r["path"]))


def paper_numbers() -> pd.DataFrame:
    return pd.read_csv(PAPER_NUMBERS, dtype={"table": str})


def _paper_figure(paper: pd.DataFrame, tables: list[str], row: str, column: str) -> pd.Series | None:
    for table in tables:
        hit = paper[(paper.table == table) & (paper.row == row) & (paper.column == column)]
        if len(hit):
            return hit.iloc[0]
    return None


def build(out: Path, suite: str) -> pd.DataFrame:
    """One row per (variant, test set), latest record each: ours (mean, std over folds, percent), the
    paper's figure for the column the test set stands in for, ours minus the paper's."""
    records = load_records(out, suite)
    if not records:
        raise ConfigError(f"no run records of suite {suite!r} under {Path(out) / 'runs'}; run `benchmark run` first")
    paper = paper_numbers()
    latest, counts = {}, {}
    for r in records:
        key = (r["variant"], r["test_set"])
        latest[key] = r
        counts[key] = counts.get(key, 0) + 1
    rows = []
    for (variant, test_set), r in latest.items():
        cv = r["cross_validation"]
        column = (r["config"].get("paper_columns") or {}).get(test_set, test_set)
        figure = _paper_figure(paper, [str(t) for t in r["config"].get("paper_tables", [])], variant, column)
        mean, std = 100 * cv["mean"], 100 * cv["std"]
        rows.append({"variant": variant, "test_set": test_set, "profile": r["profile"], "miou_mean": mean,
                     "miou_std": std, "convention": cv["convention"], "folds": len(cv["scores"]),
                     "paper_column": column, "paper": None if figure is None else figure.value,
                     "paper_std": None if figure is None or pd.isna(figure["std"]) else figure["std"],
                     "paper_source": None if figure is None else figure.source,
                     "delta": None if figure is None else mean - figure.value,
                     "records": counts[(variant, test_set)], "latest_record": r["path"]})
    table = pd.DataFrame(rows)
    table[["paper", "paper_std", "delta"]] = table[["paper", "paper_std", "delta"]].astype(float)
    keys = []   # the latest run's config order, then names it does not list
    for column, listed in (("variant", "variants"), ("test_set", "test_sets")):
        order = {v: i for i, v in enumerate(records[-1]["config"].get(listed, []))}
        table[f"_{column}"] = table[column].map(lambda v: (order.get(v, len(order)), v))
        keys.append(f"_{column}")
    return table.sort_values(keys).drop(columns=keys).reset_index(drop=True)


WIDE_FIELDS = ("miou_mean", "miou_std", "paper", "paper_std", "delta", "paper_column", "records")


def wide(table: pd.DataFrame) -> pd.DataFrame:
    """The long table (one row per variant and test set) as one row per variant, columns
    '<test set>:<field>' for each of WIDE_FIELDS (raw floats, mIoU in percent)."""
    variants = list(dict.fromkeys(table.variant))
    out = pd.DataFrame({"variant": variants})
    for test_set in dict.fromkeys(table.test_set):
        part = table[table.test_set == test_set].set_index("variant").reindex(variants)
        for name in WIDE_FIELDS:
            out[f"{test_set}:{name}"] = part[name].to_numpy()
    return out


def _pm(mean, std) -> str:
    if pd.isna(mean):
        return "--"
    return f"{mean:.2f}" if pd.isna(std) else f"{mean:.2f} $\\pm$ {std:.2f}"


def to_latex(table: pd.DataFrame, suite: str) -> str:
    """A LaTeX table, rows variants; per test set: ours (mean +- std over folds), the paper's figure
    for the column it stands in for, and ours minus the paper's."""
    variants = list(dict.fromkeys(table.variant))
    shown = {("", "Variant"): variants}
    for test_set in dict.fromkeys(table.test_set):
        part = table[table.test_set == test_set].set_index("variant").reindex(variants)
        columns = [c for c in dict.fromkeys(part.paper_column) if isinstance(c, str)]
        head = f"{test_set} (paper: {', '.join(columns)})"
        shown[(head, "Ours")] = [_pm(m, s) for m, s in zip(part.miou_mean, part.miou_std)]
        shown[(head, "Paper")] = [_pm(m, s) for m, s in zip(part.paper, part.paper_std)]
        shown[(head, "Delta")] = ["--" if pd.isna(d) else f"{d:+.2f}" for d in part.delta]
    frame = pd.DataFrame(shown)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame.to_latex(index=False, escape=False, multicolumn_format="c",
                          caption=f"Suite {suite}: mIoU (\\%), mean $\\pm$ std over folds; the paper's figure "
                                  f"where one exists.")


def summary(table: pd.DataFrame) -> str:
    """The table's main columns as plain text for a terminal."""
    columns = ["variant", "test_set", "miou_mean", "miou_std", "paper", "delta", "records"]
    return table[columns].to_string(index=False, float_format=lambda v: f"{v:.2f}")


def write_tables(out: Path, suite: str) -> tuple[Path, Path, pd.DataFrame]:
    """Write out/tables/<suite>.csv (wide(), one row per variant) and .tex from the records; returns
    both paths and the long table."""
    table = build(out, suite)
    folder = Path(out) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    csv, tex = folder / f"{suite}.csv", folder / f"{suite}.tex"
    wide(table).to_csv(csv, index=False)
    tex.write_text(to_latex(table, suite))
    return csv, tex, table
