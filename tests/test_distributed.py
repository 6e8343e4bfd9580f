"""Seed sharding across ranks: every seed exactly once, contiguous blocks, and the CLI honours it."""
import numpy as np
import pytest
import torch
from PIL import Image
from click.testing import CliRunner

from benchmark.cli import cli
from datasetgan.distributed import rank_and_world, shard
from datasetgan.gan_training import save_generator
from datasetgan.stylegan2 import Generator, GeneratorConfig


@pytest.mark.parametrize("count,world", [(10, 3), (3, 4), (0, 2), (7, 1)])
def test_shards_cover_every_seed_once(count, world):
    seeds = list(range(100, 100 + count))
    blocks = [shard(seeds, rank, world) for rank in range(world)]
    assert sum(blocks, []) == seeds
    assert max(map(len, blocks)) - min(map(len, blocks)) <= 1


def test_rank_from_environment(monkeypatch):
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert rank_and_world() == (2, 4)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="RANK=4"):
        rank_and_world()


def test_sample_command_shards_and_resumes(tmp_path, monkeypatch):
    torch.manual_seed(0)
    ckpt = tmp_path / "g.pt"
    save_generator(Generator(GeneratorConfig(z_dim=8, w_dim=8, resolution=8, channel_base=32, channel_max=8,
                                             mapping_layers=1)), ckpt)
    out = tmp_path / "samples"
    runner = CliRunner()
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        result = runner.invoke(cli, ["gan", "sample", "--checkpoint", str(ckpt), "--seeds", "0-4", "--out", str(out)])
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [f"seed{s:06d}.png" for s in range(5)]
    result = runner.invoke(cli, ["gan", "sample", "--checkpoint", str(ckpt), "--seeds", "0-4", "--out", str(out)])
    assert "wrote 0 new images" in result.output
    grid = tmp_path / "grid.png"
    result = runner.invoke(cli, ["gan", "sample", "--checkpoint", str(ckpt), "--n", "4", "--out", str(grid)])
    assert result.exit_code == 0 and grid.stat().st_size > 0
    # beside real images: the folder's first 4 (one row, padded white), a white row, the 4 samples (padded white)
    result = runner.invoke(cli, ["gan", "sample", "--checkpoint", str(ckpt), "--n", "4", "--out", str(grid),
                                 "--real", str(out)])
    assert result.exit_code == 0, result.output
    shown = np.asarray(Image.open(grid))
    assert shown.shape == (3 * 8, 8 * 8, 3) and (shown[8:16] == 255).all() and (shown[:8, 32:] == 255).all()
    assert (shown[16:, 32:] == 255).all() and not (shown[16:, :32] == 255).all()
    assert (shown[:8, :8] == np.asarray(Image.open(out / "seed000000.png"))).all()


def test_ranks_split_every_steps_batch_so_a_step_is_the_same_global_batch():
    from benchmark.segmentation import BatchSchedule

    whole = BatchSchedule(12, 4, seed=3)
    ranks = [BatchSchedule(12, 4, seed=3, rank=r, world=2) for r in range(2)]
    for step in range(7):
        shares = [r(step).tolist() for r in ranks]
        assert all(len(s) == 2 for s in shares)
        assert sorted(shares[0] + shares[1]) == sorted(whole(step).tolist())
    # a batch smaller than two a rank: each rank still takes two (batch norm needs two samples)
    assert [len(BatchSchedule(10, 2, seed=0, rank=r, world=2)(0)) for r in range(2)] == [2, 2]


def test_a_suite_under_torchrun_trains_data_parallel_and_writes_one_record(tmp_path):
    """Two CPU ranks (Gloo) run the quick parts suite's datasetgan and supervised variants: rank 0 trains the
    interpreter, the ranks split the synthetic shards, DistributedDataParallel trains DeepLab, and rank 0
    writes one record per variant and the table."""
    import json
    import os
    import socket
    import subprocess
    import sys

    import yaml

    from fixtures.suites import REDUCED

    (tmp_path / "user.yaml").write_text(yaml.safe_dump({**REDUCED, "variants": ["datasetgan", "supervised"],
                                                        "test_sets": ["toy-car-12"]}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
               "-m", "benchmark", "run", "--suite", "parts", "--profile", "quick",
               "--config", str(tmp_path / "user.yaml"), "--out", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    records = list((tmp_path / "out" / "runs").glob("*/record.json"))
    assert len(records) == 2 and (tmp_path / "out" / "tables" / "parts.csv").exists()
    for record in map(json.loads, (p.read_text() for p in records)):
        assert 0 <= record["cross_validation"]["miou"]["mean"] <= 1 and record["data_parallel_ranks"] == 2
    synthetic = list((tmp_path / "out" / "work" / "shared").glob("synthetic-*/index.json"))
    assert len(synthetic) == 1   # one interpreter, one synthetic set, both ranks' shards in it
