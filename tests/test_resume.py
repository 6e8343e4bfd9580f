"""Kill-and-resume for the long jobs: a real `benchmark` subprocess killed (SIGKILL) once it has written its first
checkpoint, then rerun, resumes where it stopped (it says so, and does not start over) and ends with the same
results as an uninterrupted run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from datasources.toy import ToySettings, write_split
from fixtures.annotated import build_annotated

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}   # one thread: the same arithmetic in every process


def _benchmark(*args) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "benchmark", *map(str, args)], capture_output=True, text=True, env=ENV)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def _seen(started) -> bool:
    """started(), or False when a folder it scans vanishes under it (a job's temporary folder renamed into place)."""
    try:
        return started()
    except FileNotFoundError:
        return False


def _kill_then_rerun(args: list, started, timeout: float = 300) -> str:
    """Start `benchmark args`, SIGKILL it as soon as started() is true, rerun it to the end; the rerun's output."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + timeout
    while not _seen(started):
        assert proc.poll() is None, "the job ended before it could be killed; give it more work"
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    run = _benchmark(*args)
    return run.stdout + run.stderr


def _same_state(a: Path, b: Path) -> None:
    """Two checkpoints hold the same tensors (their state dicts, nested under any keys)."""
    def tensors(obj, prefix=""):
        if isinstance(obj, torch.Tensor):
            yield prefix, obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                yield from tensors(v, f"{prefix}/{k}")
    left, right = dict(tensors(torch.load(a, weights_only=True))), dict(tensors(torch.load(b, weights_only=True)))
    assert left.keys() == right.keys() and left
    for key in left:
        assert torch.equal(left[key], right[key]), key


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return write_split(tmp_path_factory.mktemp("toy") / "toy", "test", 4, ToySettings(resolution=64))


def _run_twice(args: list, tmp_path: Path, unit: str) -> tuple[Path, int]:
    """A trainer with a --run folder run whole, then killed after its first training.pt and rerun: the killed run's
    folder and the `unit` (iteration, step) its rerun said it resumed at."""
    _benchmark(*args, "--run", tmp_path / "whole")
    killed = tmp_path / "killed"
    output = _kill_then_rerun([*args, "--run", killed], lambda: (killed / "training.pt").exists())
    return killed, int(output.split(f"resuming {killed} at {unit} ")[1].split()[0])


def test_gan_train_resumes_to_the_same_generator(toy, tmp_path):
    args = ["gan", "train", "--data", toy, "--iterations", 8, "--checkpoint-every", 2, "--threads", 1]
    killed, resumed_at = _run_twice(args, tmp_path, "iteration")
    assert 2 <= resumed_at < 8
    _same_state(tmp_path / "whole" / "generator.pt", killed / "generator.pt")
    logs = [torch.load(run / "training.pt", weights_only=True)["log"] for run in (tmp_path / "whole", killed)]
    assert [e["layout_diversity"] for e in logs[0]] == [e["layout_diversity"] for e in logs[1]]


def test_3d_train_resumes_to_the_same_reconstructor(toy, tmp_path):
    args = ["3d", "train", "--toy", toy, "--steps", 6, "--checkpoint-every", 2, "--batch", 2, "--threads", 1]
    killed, resumed_at = _run_twice(args, tmp_path, "step")
    assert 2 <= resumed_at < 6
    _same_state(tmp_path / "whole" / "reconstructor.pt", killed / "reconstructor.pt")


def test_generate_resumes_to_byte_identical_files(tmp_path):
    config = build_annotated(tmp_path, train=True)
    args = ["generate", "--config", config, "--num", 600, "--shard-size", 2]
    _benchmark(*args, "--out", tmp_path / "whole")
    killed = tmp_path / "killed"
    output = _kill_then_rerun([*args, "--out", killed], lambda: (killed / "shards" / "shard_000000").exists())
    assert "shards already written" in output and f"resuming {killed}: 300 of" not in output

    def files(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    assert files(tmp_path / "whole") == files(killed)


def test_benchmark_run_resumes_to_the_same_record(tmp_path):
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"variants": ["supervised"], "test_sets": ["toy-car-5"],
                                                        "segmentation": {"backbone": "dilated_resnet", "steps": 24,
                                                                         "evaluations": 6, "batch_size": 4,
                                                                         "resolution": 64}}))
    args = ["run", "--suite", "parts", "--profile", "quick", "--config", tmp_path / "mine.yaml"]
    _benchmark(*args, "--out", tmp_path / "whole")
    killed = tmp_path / "killed"
    written = lambda: any(not p.parent.name.startswith(".tmp")   # noqa: E731 (not a file still being written)
                          for p in (killed / "work").rglob("checkpoint_000.pt"))
    output = _kill_then_rerun([*args, "--out", killed], written)
    assert "resuming after optimiser step" in output
    records = [json.loads(next((root / "runs").glob("*/record.json")).read_text())
               for root in (tmp_path / "whole", killed)]
    for key in ("metrics", "cross_validation", "miou_per_checkpoint_all_images", "confusion_per_checkpoint_and_fold"):
        assert records[0][key] == records[1][key], key
