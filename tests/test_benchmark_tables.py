"""Tables are built from run records only, beside the paper's numbers from the one data file."""
import time

import pandas as pd
import pytest
from click.testing import CliRunner

from benchmark.cli import cli
from benchmark.configs import ConfigError
from benchmark.records import write_record
from benchmark.tables import build, paper_numbers, per_class, write_tables


def _cv(mean):
    return {"selected_checkpoints": [0, 0], "scores": [mean - 0.01, mean + 0.01], "mean": mean, "std": 0.01,
            "convention": "official"}


def _record(out, row, mean, column="toy-car-12", suite="parts", table="1", paper_column="ade-car-12", round=0,
            metrics=None, order=0, seed=0, **extra):
    metrics = metrics or {"miou": mean}
    record = {"suite": suite, "profile": "quick", "variant": row, "test_set": "toy-car-12", "order": order,
              "seed": seed, "cell": {"table": table, "row": row, "column": column, "round": round},
              "paper": {"tables": [table, "5"], "row": row, "column": paper_column},
              "metrics": list(metrics), "cross_validation": {k: _cv(v) for k, v in metrics.items()}, **extra}
    return write_record(out / "runs", f"{suite}-{table}-{row}-{column}", record, time.time())


def test_paper_numbers_file_holds_the_papers_tables():
    paper = paper_numbers()
    assert set(paper.columns) >= {"table", "row", "column", "metric", "value", "std"}
    hit = paper[(paper.table == "1") & (paper.row == "datasetgan") & (paper.column == "car-20")].iloc[0]
    assert (hit.value, hit["std"], hit.metric) == (62.33, 0.55, "miou")
    l2 = paper[(paper.table == "2") & (paper.row == "datasetgan") & (paper.column == "car-20") & (paper.metric == "l2")]
    assert l2.value.item() == pytest.approx(2.4e-4)
    assert set(paper.table) == {"1", "2", "3", "4", "5", "6", "readme"}
    assert not paper.duplicated(["table", "row", "column", "metric"]).any()


def test_table_rows_paper_figures_and_deltas(tmp_path):
    _record(tmp_path, "supervised", 0.70, order=2)
    _record(tmp_path, "datasetgan", 0.40, order=1)
    _record(tmp_path, "datasetgan", 0.50, order=1)   # a rerun: the latest record is shown
    _record(tmp_path, "transfer", 0.20, order=0)
    _record(tmp_path, "transfer", 0.90, suite="ablations")   # another suite: left out
    table = build(tmp_path, "parts")
    assert table.row.tolist() == ["transfer", "datasetgan", "supervised"]   # in the suite's run order
    row = table.set_index("row").loc["datasetgan"]
    assert row["mean"] == pytest.approx(50.0) and row.records == 2 and row.seeds == 1
    assert pd.isna(row.seed_std) and row.fold_std == pytest.approx(1.0)   # one seed: no +-; the fold std is kept
    assert row.paper == 45.64 and row.delta == pytest.approx(50.0 - 45.64) and row.paper_column == "ade-car-12"
    assert table.set_index("row").loc["transfer"].paper == 24.85
    assert pd.isna(table.set_index("row").loc["supervised"].paper)   # no published ADE-Car-12 figure
    csv, tex, _ = write_tables(tmp_path, "parts")
    tidy = pd.read_csv(csv)   # one row per cell, raw floats, the records it averages named
    assert tidy.shape[0] == 3 and tidy.set_index("row").loc["datasetgan", "mean"] == pytest.approx(50.0)
    assert tidy.set_index("row").loc["datasetgan", "record_ids"] == table.set_index("row").loc["datasetgan"].record_ids
    text = tex.read_text()
    assert "& 50.00 &" in text and "45.64" in text and "+4.36" in text and "\\begin{tabular}" in text
    assert "1 seed a cell" in text
    markdown = (csv.parent / "parts.md").read_text()
    assert "| datasetgan | 50.00" in markdown and "Part segmentation (paper Table 1): mIoU (%)" in markdown


def test_a_cell_is_the_mean_over_training_seeds_with_their_std_and_the_setups_ceiling(tmp_path):
    for seed, mean in enumerate((0.40, 0.50, 0.60)):
        _record(tmp_path, "supervised", mean, seed=seed, oracle_miou=0.999, output_grid=[32, 32])
    row = build(tmp_path, "parts").iloc[0]
    assert row["mean"] == pytest.approx(50.0) and row.seed_std == pytest.approx(10.0) and row.seeds == 3
    assert row.fold_std == pytest.approx(1.0) and row.oracle == pytest.approx(99.9)
    text = write_tables(tmp_path, "parts")[1].read_text()
    assert "50.00 $\\pm$ 10.00" in text and "3 seeds a cell" in text
    assert "oracle logits at its output grid): toy-car-12 99.9" in text


def test_one_row_per_variant_and_columns_per_test_set(tmp_path):
    _record(tmp_path, "datasetgan", 0.5, order=0)
    _record(tmp_path, "datasetgan", 0.6, column="toy-car-5", paper_column="ade-car-5", order=1)
    _record(tmp_path, "transfer", 0.2, column="toy-car-5", paper_column="ade-car-5", order=2)
    table = build(tmp_path, "parts").set_index(["row", "column"])
    # variants in the paper's order (transfer first), whichever order they ran in
    assert list(table.index) == [("transfer", "toy-car-5"), ("datasetgan", "toy-car-12"), ("datasetgan", "toy-car-5")]
    assert table.loc[("datasetgan", "toy-car-12"), "mean"] == pytest.approx(50.0)
    assert table.loc[("datasetgan", "toy-car-5"), "mean"] == pytest.approx(60.0)
    assert table.loc[("datasetgan", "toy-car-5"), "paper"] == 57.77   # transfer was not run on toy-car-12
    _, tex, _ = write_tables(tmp_path, "parts")
    assert "toy-car-5 (paper: ade-car-5)" in tex.read_text() and "\\multicolumn{3}{c}" in tex.read_text()


def test_keypoint_metrics_each_get_their_columns_and_units(tmp_path):
    _record(tmp_path, "datasetgan", None, column="toy-car-keypoints", suite="keypoints", table="2",
            paper_column="car-20", metrics={"l2": 0.003, "pck@15": 0.5}, l2_all_zero_heatmaps=0.0017)
    full = build(tmp_path, "keypoints")
    floor = full[full.row == "all-zero heatmaps"].iloc[0]   # the L2 a network that outputs nothing scores
    assert floor.metric == "l2" and floor["mean"] == pytest.approx(0.0017) and floor.column == "toy-car-keypoints"
    table = full[full.row == "datasetgan"].set_index("metric")
    assert table.loc["l2", "mean"] == pytest.approx(0.003) and table.loc["l2", "paper"] == pytest.approx(2.4e-4)
    assert table.loc["pck@15", "mean"] == pytest.approx(50.0)   # PCK in percent, L2 as is
    assert table.loc["pck@15", "delta"] == pytest.approx(50 - 79.91)
    text = write_tables(tmp_path, "keypoints")[1].read_text()
    assert "3.00e-03 &" in text and "1.70e-03" in text and "toy-car-keypoints pck@15 (paper: car-20)" in text


def test_rounds_are_averaged_and_fig6_is_drawn(tmp_path):
    for r, mean in enumerate((0.40, 0.44)):
        _record(tmp_path, "random", mean, column="7", suite="ablations", table="6", paper_column="7", round=r)
    for i, (n, mean) in enumerate((("1", 0.2), ("4", 0.3))):
        _record(tmp_path, "datasetgan", mean, column=n, suite="ablations", table="fig6", paper_column=n, order=i)
    _record(tmp_path, "supervised", 0.5, column="pool", suite="ablations", table="fig6", paper_column="pool")
    table = build(tmp_path, "ablations")
    random = table[table.row == "random"].iloc[0]
    assert random["mean"] == pytest.approx(42.0) and random.seed_std == pytest.approx(2 * 2 ** 0.5)
    assert random.rounds == 2 and random.seeds == 1
    assert random.paper == 40.06 and random.paper_std == 1.32
    write_tables(tmp_path, "ablations")
    assert (tmp_path / "tables" / "ablations-fig6.png").stat().st_size > 1000


def test_no_records_is_a_clean_error(tmp_path):
    with pytest.raises(ConfigError, match="no run records"):
        build(tmp_path, "parts")
    result = CliRunner().invoke(cli, ["tables", "--suite", "parts", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "no run records" in result.output and "Traceback" not in result.output


def test_tables_command(tmp_path):
    _record(tmp_path, "datasetgan", 0.5)
    result = CliRunner().invoke(cli, ["tables", "--suite", "parts", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "datasetgan" in result.output and (tmp_path / "tables" / "parts.tex").exists()


def test_per_class_iou_pools_each_folds_held_out_images_at_its_checkpoint(tmp_path):
    # 2 checkpoints, 2 folds, 2 classes; fold 0 selected checkpoint 1 (scored on fold 1), fold 1 checkpoint 0.
    confusion = [[[[5, 0], [0, 0]], [[3, 1], [2, 4]]],      # checkpoint 0: fold 0, fold 1
                 [[[6, 2], [0, 2]], [[4, 0], [0, 6]]]]      # checkpoint 1
    for seed in (0, 1):
        _record(tmp_path, "supervised", 0.5, seed=seed, classes=["background", "body"],
                confusion_per_checkpoint_and_fold=confusion,
                cross_validation={"miou": {**_cv(0.5), "selected_checkpoints": [1, 0]}})
    table = per_class(tmp_path, "parts").set_index("class")
    # held out: fold 1 at checkpoint 1 [[4, 0], [0, 6]] + fold 0 at checkpoint 0 [[5, 0], [0, 0]] = [[9, 0], [0, 6]]
    assert table.loc["background", "iou_mean"] == pytest.approx(100.0) == table.loc["body", "iou_mean"]
    assert table.loc["body", "records"] == 2 and table.loc["body", "iou_seed_std"] == pytest.approx(0.0)
    write_tables(tmp_path, "parts")
    assert (tmp_path / "tables" / "parts-per-class.csv").exists()
