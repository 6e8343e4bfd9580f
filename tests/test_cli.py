"""The `benchmark` command line: subcommands, config resolution, and clean errors on bad input."""
import subprocess
import sys

from click.testing import CliRunner

from benchmark.cli import cli


def test_help_lists_subcommands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("run", "toy", "datasets"):
        assert name in result.output


def test_run_dry_run_prints_resolved_config():
    result = CliRunner().invoke(cli, ["run", "--suite", "parts", "--profile", "quick", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "suite: parts" in result.output and "profile: quick" in result.output
    assert "configs/profiles/quick.yaml" in result.output


def test_run_takes_variants_and_seeds_from_the_command_line(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--suite", "parts", "--variants", "semi, supervised", "--seeds", "2",
                                      "--dry-run"])
    assert result.exit_code == 0 and "variants:\n- semi\n- supervised\n" in result.output and "seeds: 2" in result.output
    result = CliRunner().invoke(cli, ["run", "--suite", "parts", "--variants", "bogus", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "variants ['bogus'] unknown" in result.output


def test_run_merges_a_user_config_last(tmp_path):
    user = tmp_path / "mine.yaml"
    user.write_text("folds: 3\n")
    result = CliRunner().invoke(cli, ["run", "--suite", "parts", "--config", str(user), "--dry-run"])
    assert result.exit_code == 0 and "folds: 3" in result.output


def test_oracle_prints_each_test_sets_ceiling_and_refuses_a_keypoint_suite(tmp_path):
    user = tmp_path / "mobilenet.yaml"   # the previous CPU network: 4x4 logits at 64 px
    user.write_text("segmentation: {backbone: mobilenet_v3_large, steps: 4, evaluations: 2, resolution: 64}\n")
    result = CliRunner().invoke(cli, ["oracle", "--profile", "quick", "--config", str(user), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert "toy-car-12: 20 images, logits 4x4 -> oracle mIoU " in line
    assert float(line.rsplit(" ", 1)[1]) < 60
    result = CliRunner().invoke(cli, ["oracle", "--suite", "keypoints", "--profile", "quick", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "not a segmentation suite" in result.output


def test_bad_input_gives_one_message_and_nonzero_exit(tmp_path):
    runner = CliRunner()
    for args, message in (
        (["run", "--suite", "nope"], "'nope' is not one of"),
        (["run", "--suite", "parts", "--profile", "huge"], "'huge' is not one of"),
        (["toy", "--out", str(tmp_path), "--resolution", "0"], "0 is not in the range"),
        (["toy", "--out", str(tmp_path), "--resolution", "abc"], "'abc' is not a valid integer"),
        (["toy", "--out", str(tmp_path), "--n", "-3"], "-3 is not in the range"),
        (["toy", "--out", str(tmp_path), "--bogus"], "No such option"),
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(cli, ["toy", "--out", str(blocker / "sub"), "--n", "1"])
    assert result.exit_code == 2 and "cannot write to" in result.output


def test_toy_command_writes_samples_and_grid(tmp_path):
    grid = tmp_path / "grid.png"
    result = CliRunner().invoke(cli, ["toy", "--n", "3", "--resolution", "24", "--out", str(tmp_path / "t"),
                                      "--grid", str(grid)])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "t" / "images").glob("*.png"))) == 3 and grid.stat().st_size > 0
    shares = dict(line.split(maxsplit=1) for line in result.output.splitlines() if line.startswith("  background"))
    assert "% of pixels, in 100.0 % of images" in shares["background"]   # every image has background


def test_python_m_benchmark_is_the_same_command():
    out = subprocess.run([sys.executable, "-m", "benchmark", "--help"], capture_output=True, text=True, check=True)
    assert "toy" in out.stdout


def test_gan_train_one_iteration_records_its_options(tmp_path):
    import torch

    from datasources.toy import ToySettings, write_split

    write_split(tmp_path / "pool", "unlabelled", 4, ToySettings(resolution=64))
    result = CliRunner().invoke(cli, ["gan", "train", "--data", str(tmp_path / "pool"), "--run", str(tmp_path / "run"),
                                      "--iterations", "1", "--r1-gamma", "0.3", "--lr", "0.001"])
    assert result.exit_code == 0, result.output
    state = torch.load(tmp_path / "run" / "training.pt", weights_only=True)
    assert state["iteration"] == 1 and state["options"]["r1_gamma"] == 0.3 and state["options"]["lr"] == 0.001
    assert (tmp_path / "run" / "generator.pt").exists() and (tmp_path / "run" / "samples-000001.png").exists()
    assert f"1: {state['log'][-1]['layout_diversity']:.3f}" in result.output
