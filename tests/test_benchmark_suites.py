"""The keypoints and ablations suites end to end on reduced quick configs (a tiny stand-in GAN, a few images,
two epochs): records, tables, the Fig. 6 plot, and the cells each run fills."""
import json

from click.testing import CliRunner

from benchmark.cli import cli
from datasources.synthetic import SyntheticDataset
from datasources.toy import KEYPOINT_NAMES
from fixtures.suites import REDUCED, cells, run_quick


def _records(out):
    return [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/record.json"))]


def test_keypoint_suite_writes_table_2(tmp_path):
    result = run_quick(tmp_path, REDUCED, suite="keypoints")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    table = cells(out / "tables" / "keypoints.csv")
    assert list(dict.fromkeys(table.index.get_level_values("row"))) == ["transfer", "datasetgan", "supervised",
                                                                       "all-zero heatmaps"]
    for metric in ("pck@15", "pck@10", "pck@5"):
        assert table.xs(metric, level="metric")["mean"].between(0, 100).all()
    assert (table.xs("l2", level="metric")["mean"] > 0).all()
    assert table.loc[("datasetgan", "toy-car-keypoints", "l2"), "paper"] == 2.4e-4
    assert "PCK" in (out / "tables" / "keypoints.tex").read_text()
    record = next(r for r in _records(out) if r["variant"] == "datasetgan")
    assert record["metrics"] == ["l2", "pck@15", "pck@10", "pck@5"] and record["keypoints"] == list(KEYPOINT_NAMES)
    assert record["cell"]["table"] == "2" and len(record["cross_validation"]["pck@10"]["scores"]) == 5
    assert record["selected_by"] == "pck@10" and 0 < record["l2_all_zero_heatmaps"] < 1
    synthetic = SyntheticDataset(record["facts"]["synthetic"])
    assert synthetic.keypoint_names == KEYPOINT_NAMES and synthetic[0].keypoints.shape == (16, 3)


ABLATIONS = {**REDUCED, "paper_columns": {"toy-car-12": "ade-car-12", "toy-car-5": "ade-car-5"},
             "ablations": {"size": [4, 8], "size_paper": ["3k", "5k"], "filter_num": 8, "filter": [0.0, 0.25],
                           "selection_pool": 4, "selection_counts": [1, 2], "random_rounds": 1, "centres": 2,
                           "annotated": [1, 2], "annotated_variants": ["transfer", "datasetgan"]}}


def test_ablation_suite_fills_tables_3_to_6_and_fig6(tmp_path):
    result = run_quick(tmp_path, ABLATIONS, suite="ablations")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    records = _records(out)
    filled = {(r["cell"]["table"], r["cell"]["row"], r["cell"]["column"]) for r in records}
    assert filled == {("3", "datasetgan", "4"), ("3", "datasetgan", "8"), ("4", "datasetgan", "0%"),
                     ("4", "datasetgan", "25%"), ("5", "supervised", "toy-car-5"), ("5", "datasetgan", "toy-car-5"),
                     ("6", "random", "1"), ("6", "random", "2"), ("6", "active", "2"),
                     ("fig6", "transfer", "1"), ("fig6", "transfer", "2"), ("fig6", "datasetgan", "1"),
                     ("fig6", "datasetgan", "2"), ("fig6", "supervised", "pool")}
    size = {r["cell"]["column"]: r for r in records if r["cell"]["table"] == "3"}
    assert size["4"]["facts"]["synthetic_kept"] == 4 and size["8"]["facts"]["synthetic_kept"] == 8
    assert size["4"]["facts"]["synthetic"] == size["8"]["facts"]["synthetic"]   # one generation, two views
    kept = {r["cell"]["column"]: r["facts"]["synthetic_kept"] for r in records if r["cell"]["table"] == "4"}
    assert kept == {"0%": 8, "25%": 6}
    # active learning has no cell at the start (one image, nearest the pool mean): its cells come from JS rounds
    active = [r for r in records if r["cell"]["row"] == "active"]
    assert len(active) == 1 and active[0]["facts"]["rounds_of_js_uncertainty"] == 1
    assert len(set(active[0]["labelled"])) == 2 and max(active[0]["labelled"]) < 4
    tables = out / "tables" / "ablations.csv"
    assert cells(tables, "3").loc[("datasetgan", "4", "miou"), "paper"] == 43.34   # the first size stands for 3K
    assert cells(tables, "4").loc[("datasetgan", "0%", "miou"), "paper"] == 44.60
    assert (out / "tables" / "ablations-fig6.png").stat().st_size > 1000
    (out / "tables" / "ablations-fig6.png").unlink()
    rebuilt = CliRunner().invoke(cli, ["tables", "--suite", "ablations", "--out", str(out)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert (out / "tables" / "ablations-fig6.png").exists()
    assert (out / "tables" / "ablations.tex").read_text().count("\\begin{tabular}") == 5


def test_ablation_runs_keep_only_the_variants_asked_for():
    # `benchmark run --suite ablations --variants semi` in one process and the rest in another must not share a cell
    # (two processes writing one synthetic set collide).
    from benchmark import configs
    from benchmark.ablations import runs

    config = configs.resolve("ablations", "quick")
    every = runs(config)
    assert {r.variant for r in every} == {"transfer", "semi", "datasetgan", "supervised"}
    semi = runs({**config, "variants": ["semi"]})
    rest = runs({**config, "variants": ["transfer", "datasetgan", "supervised"]})
    assert semi and {r.variant for r in semi} == {"semi"}
    def cells_of(rs):
        return sorted((r.variant, r.test_set, r.table, r.row, r.column, r.round) for r in rs)

    assert cells_of(semi + rest) == cells_of(every)
