"""Damaged inputs, command by command, as a user meets them (half-copied files, the wrong file in the right place,
empty folders, missing sidecars, counts that do not match): every (command, damaged input) pair exits with status
2 (`datasets check`: 1, its report) and one clean message naming the damaged file, raises nothing but the
project's InputError (no traceback), and leaves no output file behind."""
from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

from benchmark.cli import cli
from datasources.toy import ToySettings, write_split
from fixtures import cub, pascal_part
from fixtures.annotated import build_annotated, invoke
from fixtures.images import truncate


@pytest.fixture(scope="module")
def sound(tmp_path_factory) -> Path:
    """Sound inputs for every command, built once: a tiny generator, three annotated 16x16 images inverted into it,
    a trained interpreter and its config, a generated dataset, a toy split, a GAN run, a run record."""
    root = tmp_path_factory.mktemp("sound")
    build_annotated(root, train=True)
    invoke("generate", "--config", root / "config.yaml", "--num", "3", "--shard-size", "2", "--out", root / "synthetic")
    write_split(root / "toy", "test", 2, ToySettings(resolution=64))
    invoke("gan", "train", "--data", root / "toy", "--run", root / "ganrun", "--iterations", "1")
    (root / "results" / "runs" / "r1").mkdir(parents=True)
    (root / "results" / "runs" / "r1" / "record.json").write_text(json.dumps({"suite": "parts", "cell": {}}))
    return root


def _copy(sound: Path, tmp: Path, *names: str) -> None:
    for name in names:
        (shutil.copytree if (sound / name).is_dir() else shutil.copy)(sound / name, tmp / name)


def _interp_config(sound: Path, tmp: Path, **changes) -> Path:
    """The sound interpreter config with some entries changed (paths into tmp; the checkpoint, unless changed, goes
    to tmp/out/i.pt, an output), written to tmp/interp.yaml."""
    config = yaml.safe_load((sound / "config.yaml").read_text())
    config["checkpoint"] = str(tmp / "out" / "i.pt")
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            config[section][field] = value
        else:
            config[key] = value
    (tmp / "interp.yaml").write_text(yaml.safe_dump(config))
    return tmp / "interp.yaml"


def _text(path: Path, text: str = "not what you expected\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _cut(path: Path) -> Path:
    return truncate(path)


# Each case: (sound, tmp) -> (args, the damaged file's name that the message must contain). Outputs go under
# tmp/out, which must hold no file afterwards.
def gan_sample_truncated_pt(s, t):
    _copy(s, t, "g.pt")
    return ["gan", "sample", "--checkpoint", _cut(t / "g.pt"), "--n", 2, "--out", t / "out" / "s.png"], "g.pt"


def gan_sample_png_as_pt(s, t):
    shutil.copy(s / "images" / "000000.png", t / "g.pt")
    return ["gan", "sample", "--checkpoint", t / "g.pt", "--n", 2, "--out", t / "out" / "s.png"], "g.pt"


def gan_sample_truncated_pkl(s, t):
    _copy(s, t, "g.pt")
    (t / "g.pt").rename(t / "network.pkl")
    return ["gan", "sample", "--checkpoint", _cut(t / "network.pkl"), "--n", 2, "--out", t / "out"], "network.pkl"


def gan_sample_empty_pt(s, t):
    return ["gan", "sample", "--checkpoint", _text(t / "g.pt", ""), "--n", 2, "--out", t / "out" / "s.png"], "g.pt"


def gan_project_truncated_png(s, t):
    _copy(s, t, "images")
    return ["gan", "project", "--checkpoint", s / "g.pt", "--images", t / "images", "--steps", 1,
            "--out", t / "out"], _cut(t / "images" / "000001.png").name


def gan_project_text_as_jpg(s, t):
    _text(t / "images" / "photo.jpg")
    return ["gan", "project", "--checkpoint", s / "g.pt", "--images", t / "images", "--out", t / "out"], "photo.jpg"


def gan_project_empty_folder(s, t):
    (t / "images").mkdir()
    return ["gan", "project", "--checkpoint", s / "g.pt", "--images", t / "images", "--out", t / "out"], "images"


def gan_project_truncated_pt(s, t):
    _copy(s, t, "g.pt")
    return ["gan", "project", "--checkpoint", _cut(t / "g.pt"), "--images", s / "images", "--out", t / "out"], "g.pt"


def gan_quality_truncated_pt(s, t):
    _copy(s, t, "g.pt")
    return ["gan", "quality", "--checkpoint", _cut(t / "g.pt"), "--out", t / "out"], "g.pt"


def gan_train_truncated_png(s, t):
    _copy(s, t, "toy")
    return ["gan", "train", "--data", t / "toy", "--run", t / "out", "--iterations", 1], \
        _cut(t / "toy" / "images" / "000001.png").name


def gan_train_empty_folder(s, t):
    (t / "data").mkdir()
    return ["gan", "train", "--data", t / "data", "--run", t / "out", "--iterations", 1], "data"


def gan_train_truncated_state(s, t):
    _copy(s, t, "ganrun")
    _cut(t / "ganrun" / "training.pt")
    return ["gan", "train", "--data", s / "toy", "--run", t / "ganrun", "--iterations", 2], "training.pt"


def gan_train_json_as_state(s, t):
    _copy(s, t, "ganrun")
    _text(t / "ganrun" / "training.pt", '{"iteration": 1}')
    return ["gan", "train", "--data", s / "toy", "--run", t / "ganrun", "--iterations", 2], "training.pt"


def annotate_prepare_truncated_pt(s, t):
    _copy(s, t, "g.pt")
    return ["annotate", "prepare", "--checkpoint", _cut(t / "g.pt"), "--n", 2, "--out", t / "out"], "g.pt"


def interpreter_train_truncated_yaml(s, t):
    _text(t / "c.yaml", "generator: {checkpoint: g.pt\nclasses: [car")
    return ["interpreter", "train", "--config", t / "c.yaml"], "c.yaml"


def interpreter_train_yaml_list(s, t):
    _text(t / "c.yaml", "- generator\n- classes\n")
    return ["interpreter", "train", "--config", t / "c.yaml"], "c.yaml"


def interpreter_train_truncated_generator(s, t):
    _copy(s, t, "g.pt")
    _cut(t / "g.pt")
    return ["interpreter", "train", "--config", _interp_config(s, t, generator={"checkpoint": str(t / "g.pt")})], "g.pt"


def _train_on_damaged_inversion(s, t, damage) -> list:
    """`interpreter train` on a copy of the sound inversion folder after damage(folder)."""
    _copy(s, t, "inv")
    damage(t / "inv")
    config = _interp_config(s, t, annotations__latents=str(t / "inv" / "latents.npy"))
    return ["interpreter", "train", "--config", config]


def interpreter_train_truncated_latents(s, t):
    return _train_on_damaged_inversion(s, t, lambda inv: _cut(inv / "latents.npy")), "latents.npy"


def interpreter_train_no_inversion_json(s, t):
    return _train_on_damaged_inversion(s, t, lambda inv: (inv / "inversion.json").unlink()), "inversion.json"


def interpreter_train_truncated_inversion_json(s, t):
    return _train_on_damaged_inversion(s, t, lambda inv: _cut(inv / "inversion.json")), "inversion.json"


def interpreter_train_fewer_latents(s, t):
    def fewer(inv):
        np.save(inv / "latents.npy", np.load(inv / "latents.npy")[:2])
    return _train_on_damaged_inversion(s, t, fewer), "latents.npy"


def interpreter_train_truncated_label(s, t):
    _copy(s, t, "labels")
    _cut(t / "labels" / "000002.png")
    config = _interp_config(s, t, annotations__labels=str(t / "labels"))
    return ["interpreter", "train", "--config", config], "000002.png"


def interpreter_train_label_of_another_size(s, t):
    _copy(s, t, "labels")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(t / "labels" / "000001.png")
    config = _interp_config(s, t, annotations__labels=str(t / "labels"))
    return ["interpreter", "train", "--config", config], "000001.png"


def interpreter_train_missing_labels_folder(s, t):
    config = _interp_config(s, t, annotations__labels=str(t / "labels"))
    return ["interpreter", "train", "--config", config], "labels"


def interpreter_import_truncated_member(s, t):
    (t / "official").mkdir()
    shutil.copy(s / "interp.pt", t / "official" / "model_0.pth")
    _cut(t / "official" / "model_0.pth")
    return ["interpreter", "import", "--config", _interp_config(s, t),
            "--official", t / "official"], "model_0.pth"


def interpreter_eval_no_dataset_json(s, t):
    _copy(s, t, "toy")
    (t / "toy" / "dataset.json").unlink()
    return ["interpreter", "eval", "--config", s / "config.yaml", "--toy", t / "toy", "--n", 2, "--steps", 1,
            "--out", t / "out"], "dataset.json"


def interpreter_eval_truncated_dataset_json(s, t):
    _copy(s, t, "toy")
    _cut(t / "toy" / "dataset.json")
    return ["interpreter", "eval", "--config", s / "config.yaml", "--toy", t / "toy", "--n", 2, "--steps", 1,
            "--out", t / "out"], "dataset.json"


def interpreter_eval_truncated_checkpoint(s, t):
    _copy(s, t, "interp.pt")
    _cut(t / "interp.pt")
    config = _interp_config(s, t, checkpoint=str(t / "interp.pt"))
    return ["interpreter", "eval", "--config", config, "--toy", s / "toy", "--n", 2, "--steps", 1,
            "--out", t / "out"], "interp.pt"


def generate_truncated_interpreter(s, t):
    _copy(s, t, "interp.pt")
    _cut(t / "interp.pt")
    return ["generate", "--config", _interp_config(s, t, checkpoint=str(t / "interp.pt")), "--num", 2,
            "--out", t / "out"], "interp.pt"


def generate_generator_as_interpreter(s, t):
    shutil.copy(s / "g.pt", t / "interp.pt")
    return ["generate", "--config", _interp_config(s, t, checkpoint=str(t / "interp.pt")), "--num", 2,
            "--out", t / "out"], "interp.pt"


def generate_truncated_shard_record(s, t):
    _copy(s, t, "synthetic")
    (t / "synthetic" / "index.json").unlink()
    shard = next((t / "synthetic" / "shards").glob("*/samples.json"))
    return ["generate", "--config", s / "config.yaml", "--num", 3, "--shard-size", 2, "--out", t / "synthetic"], \
        _cut(shard).name


def generate_config_without_generator(s, t):
    config = yaml.safe_load((s / "config.yaml").read_text())
    del config["generator"]
    _text(t / "c.yaml", yaml.safe_dump(config))
    return ["generate", "--config", t / "c.yaml", "--num", 2, "--out", t / "out"], "c.yaml"


def generate_part_config_as_keypoints(s, t):
    shutil.copy(s / "config.yaml", t / "kp.yaml")
    return ["generate", "--config", s / "config.yaml", "--keypoints-config", t / "kp.yaml", "--num", 2,
            "--out", t / "out"], "kp.yaml"


def tables_truncated_record(s, t):
    _copy(s, t, "results")
    record = _cut(t / "results" / "runs" / "r1" / "record.json")
    return ["tables", "--suite", "parts", "--out", t / "results"], record.name


def run_truncated_yaml(s, t):
    _text(t / "mine.yaml", "folds: [3\n")
    return ["run", "--suite", "parts", "--profile", "quick", "--config", t / "mine.yaml", "--out", t / "out"], \
        "mine.yaml"


def run_truncated_weights(s, t):
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, t / "resnet.pth")
    _cut(t / "resnet.pth")
    _text(t / "mine.yaml", yaml.safe_dump({"segmentation": {"backbone": "resnet50", "pretrained": str(t / "resnet.pth"),
                                                           "steps": 1, "evaluations": 1}}))
    return ["run", "--suite", "parts", "--profile", "quick", "--config", t / "mine.yaml", "--out", t / "out"], \
        "resnet.pth"


def run_synthetic_without_index(s, t):
    _copy(s, t, "synthetic")
    (t / "synthetic" / "index.json").unlink()
    _text(t / "mine.yaml", yaml.safe_dump({"variants": ["datasetgan"], "test_sets": ["toy-car-5"],
                                           "datasetgan": {"synthetic": str(t / "synthetic")}}))
    return ["run", "--suite", "parts", "--profile", "quick", "--config", t / "mine.yaml", "--out", t / "out"], \
        "index.json"


def run_truncated_synthetic_index(s, t):
    _copy(s, t, "synthetic")
    _cut(t / "synthetic" / "index.json")
    _text(t / "mine.yaml", yaml.safe_dump({"variants": ["datasetgan"], "test_sets": ["toy-car-5"],
                                           "datasetgan": {"synthetic": str(t / "synthetic")}}))
    return ["run", "--suite", "parts", "--profile", "quick", "--config", t / "mine.yaml", "--out", t / "out"], \
        "index.json"


def oracle_truncated_yaml(s, t):
    _text(t / "mine.yaml", "segmentation: {steps: 1\n")
    return ["oracle", "--profile", "quick", "--config", t / "mine.yaml", "--out", t / "out"], "mine.yaml"


def toy_truncated_dataset_json(s, t):
    _copy(s, t, "toy")
    _cut(t / "toy" / "dataset.json")
    return ["toy", "--n", 3, "--resolution", 64, "--out", t / "toy"], "dataset.json"


def datasets_check_truncated_mat(s, t):
    pascal_part.build(t / "pascal")
    mat = _cut(next((t / "pascal").rglob("*.mat")))
    return ["datasets", "check", "pascal-car-5", "--root", t / "pascal"], mat.name


def datasets_check_truncated_text_index(s, t):
    cub.build(t / "cub")
    return ["datasets", "check", "cub-bird", "--root", t / "cub"], _cut(t / "cub" / "images.txt").name


def export_car_truncated_png(s, t):
    shutil.copy(s / "toy" / "images" / "000000.png", t / "car.png")
    return ["export-car", "--image", _cut(t / "car.png"), "--out", t / "out" / "car.glb"], "car.png"


def export_car_truncated_jpg(s, t):
    Image.open(s / "toy" / "images" / "000000.png").save(t / "car.jpg", quality=90)
    return ["export-car", "--image", _cut(t / "car.jpg"), "--out", t / "out" / "car.glb"], "car.jpg"


def export_car_text_as_png(s, t):
    return ["export-car", "--image", _text(t / "car.png"), "--out", t / "out" / "car.glb"], "car.png"


def export_car_truncated_checkpoint(s, t):
    shutil.copy(s / "g.pt", t / "recon.pt")
    return ["export-car", "--image", s / "toy" / "images" / "000000.png", "--checkpoint", _cut(t / "recon.pt"),
            "--out", t / "out" / "car.glb"], "recon.pt"


def export_car_generator_as_checkpoint(s, t):
    shutil.copy(s / "g.pt", t / "recon.pt")
    return ["export-car", "--image", s / "toy" / "images" / "000000.png", "--checkpoint", t / "recon.pt",
            "--out", t / "out" / "car.glb"], "recon.pt"


def viewpoint_no_dataset_json(s, t):
    _copy(s, t, "toy")
    (t / "toy" / "dataset.json").unlink()
    return ["3d", "viewpoint", "--toy", t / "toy", "--steps", 1, "--out", t / "out" / "v.pt"], "dataset.json"


def viewpoint_truncated_annotation(s, t):
    _copy(s, t, "toy")
    return ["3d", "viewpoint", "--toy", t / "toy", "--steps", 1, "--out", t / "out" / "v.pt"], \
        _cut(t / "toy" / "annotations" / "000001.json").name


def train_3d_truncated_image(s, t):
    _copy(s, t, "toy")
    return ["3d", "train", "--toy", t / "toy", "--run", t / "out", "--steps", 1, "--batch", 2], \
        _cut(t / "toy" / "images" / "000000.png").name


def train_3d_truncated_state(s, t):
    (t / "run").mkdir()
    shutil.copy(s / "ganrun" / "training.pt", t / "run" / "training.pt")
    _cut(t / "run" / "training.pt")
    return ["3d", "train", "--toy", s / "toy", "--run", t / "run", "--steps", 1, "--batch", 2], "training.pt"


def train_3d_generated_without_index(s, t):
    _copy(s, t, "synthetic")
    (t / "synthetic" / "index.json").unlink()
    return ["3d", "train", "--generated", t / "synthetic", "--config", s / "config.yaml", "--run", t / "out",
            "--steps", 1], "index.json"


def train_3d_truncated_viewpoint(s, t):
    shutil.copy(s / "g.pt", t / "v.pt")
    return ["3d", "train", "--generated", s / "synthetic", "--config", s / "config.yaml", "--viewpoint",
            _cut(t / "v.pt"), "--run", t / "out", "--steps", 1], "v.pt"


def train_3d_viewpoint_of_another_size(s, t):
    from inverse_graphics.viewpoint import ViewpointConfig, ViewpointRegressor, save_viewpoint

    save_viewpoint(t / "v32.pt", ViewpointRegressor(ViewpointConfig(image_size=32)))
    return ["3d", "train", "--generated", s / "synthetic", "--viewpoint", t / "v32.pt", "--run", t / "out",
            "--steps", 1], "v32.pt"


def eval_3d_truncated_checkpoint(s, t):
    shutil.copy(s / "g.pt", t / "recon.pt")
    return ["3d", "eval", "--checkpoint", _cut(t / "recon.pt"), "--seeds", "0-1", "--out", t / "out",
            "--tables", t / "out"], "recon.pt"


def eval_3d_generator_as_checkpoint(s, t):
    shutil.copy(s / "g.pt", t / "recon.pt")
    return ["3d", "eval", "--checkpoint", t / "recon.pt", "--seeds", "0-1", "--out", t / "out",
            "--tables", t / "out"], "recon.pt"


CASES = [f for f in list(globals().values())   # every function of (s, t) above
         if inspect.isfunction(f) and list(inspect.signature(f).parameters) == ["s", "t"]]
READS_FILES = {"run", "oracle", "tables", "toy", "datasets check", "gan train", "gan sample", "gan project",
               "gan quality", "annotate prepare", "interpreter train", "interpreter import", "interpreter eval",
               "generate", "export-car",
               "3d viewpoint", "3d train", "3d eval"}


def _command(args: list) -> str:
    """The subcommand an argument list invokes: 'gan sample', 'generate', ..."""
    grouped = ("gan", "annotate", "interpreter", "datasets", "3d")
    return " ".join(str(a) for a in args[:2]) if args[0] in grouped else str(args[0])


def test_the_sweep_covers_every_subcommand_that_reads_a_file(sound, tmp_path):
    commands = {name if not isinstance(cmd, click.Group) else f"{name} {sub}"
                for name, cmd in cli.commands.items() for sub in getattr(cmd, "commands", {None: None})}
    assert READS_FILES <= commands   # the list above names real subcommands
    covered = set()
    for i, case in enumerate(CASES):
        (tmp_path / str(i)).mkdir()
        covered.add(_command(case(sound, tmp_path / str(i))[0]))
    assert covered == READS_FILES and len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_damaged_input_gives_one_clean_line(sound, tmp_path, case):
    args, name = case(sound, tmp_path)
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert isinstance(result.exception, SystemExit), f"unexpected {result.exception!r}\n{result.output}"
    expected_status = 1 if args[0] == "datasets" else 2
    assert result.exit_code == expected_status, result.output
    assert name in result.output, result.output
    if args[0] != "datasets":
        lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1, result.output
    left = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert not left, f"files left behind: {sorted(map(str, left))}"


@pytest.mark.parametrize("case", [gan_sample_truncated_pt, generate_truncated_interpreter,
                                  interpreter_train_no_inversion_json], ids=lambda c: c.__name__)
def test_the_three_reported_cases_print_no_traceback(sound, tmp_path, case):
    """The three damaged inputs first reported with a traceback, through the real console entry point."""
    args, name = case(sound, tmp_path)
    run = subprocess.run([sys.executable, "-m", "benchmark", *map(str, args)], capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith("error: ") and name in run.stderr and run.stderr.count("\n") == 1, run.stderr
