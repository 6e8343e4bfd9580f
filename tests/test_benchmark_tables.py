"""Tables are built from run records only, beside the paper's numbers from the one data file."""
import time

import pandas as pd
import pytest
from click.testing import CliRunner

from benchmark.cli import cli
from benchmark.configs import ConfigError
from benchmark.records import write_record
from benchmark.tables import build, paper_numbers, wide, write_tables

CONFIG = {"variants": ["transfer", "datasetgan", "supervised"], "paper_tables": ["1", "5"],
          "paper_columns": {"toy-car-12": "ade-car-12"}}


def _record(out, variant, mean, test_set="toy-car-12", suite="parts"):
    record = {"suite": suite, "profile": "quick", "variant": variant, "test_set": test_set, "config": CONFIG,
              "cross_validation": {"selected_epochs": [0, 0], "scores": [mean - 0.01, mean + 0.01], "mean": mean,
                                   "std": 0.01, "convention": "official"}}
    return write_record(out / "runs", f"{suite}-{test_set}-{variant}", record, time.time())


def test_paper_numbers_file_holds_table_1():
    paper = paper_numbers()
    assert set(paper.columns) >= {"table", "row", "column", "value", "std"}
    hit = paper[(paper.table == "1") & (paper.row == "datasetgan") & (paper.column == "car-20")].iloc[0]
    assert (hit.value, hit["std"]) == (62.33, 0.55)
    assert not paper.duplicated(["table", "row", "column"]).any()


def test_table_rows_paper_figures_and_deltas(tmp_path):
    _record(tmp_path, "supervised", 0.70)
    _record(tmp_path, "datasetgan", 0.40)
    _record(tmp_path, "datasetgan", 0.50)   # a rerun: the latest record is shown
    _record(tmp_path, "transfer", 0.20)
    _record(tmp_path, "transfer", 0.90, suite="ablations")   # another suite: left out
    table = build(tmp_path, "parts")
    assert table.variant.tolist() == ["transfer", "datasetgan", "supervised"]
    row = table.set_index("variant").loc["datasetgan"]
    assert row.miou_mean == pytest.approx(50.0) and row.miou_std == pytest.approx(1.0) and row.records == 2
    assert row.paper == 45.64 and row.delta == pytest.approx(50.0 - 45.64) and row.paper_column == "ade-car-12"
    assert table.set_index("variant").loc["transfer"].paper == 24.85
    assert pd.isna(table.set_index("variant").loc["supervised"].paper)   # no published ADE-Car-12 figure
    csv, tex, _ = write_tables(tmp_path, "parts")
    assert pd.read_csv(csv).shape[0] == 3
    text = tex.read_text()
    assert "50.00 $\\pm$ 1.00" in text and "45.64" in text and "+4.36" in text and "\\begin{tabular}" in text


def test_one_row_per_variant_and_columns_per_test_set(tmp_path):
    _record(tmp_path, "datasetgan", 0.5)
    _record(tmp_path, "datasetgan", 0.6, test_set="toy-car-5")
    _record(tmp_path, "transfer", 0.2, test_set="toy-car-5")
    table = wide(build(tmp_path, "parts"))
    assert table.variant.tolist() == ["transfer", "datasetgan"]
    row = table.set_index("variant").loc["datasetgan"]
    assert row["toy-car-12:miou_mean"] == pytest.approx(50.0) and row["toy-car-5:miou_mean"] == pytest.approx(60.0)
    assert pd.isna(table.set_index("variant").loc["transfer", "toy-car-12:miou_mean"])   # not run there
    _, tex, _ = write_tables(tmp_path, "parts")
    assert "toy-car-5 (paper: toy-car-5)" in tex.read_text() and "\\multicolumn{3}{c}" in tex.read_text()


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
