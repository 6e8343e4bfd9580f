"""Seed sharding across ranks: every seed exactly once, contiguous blocks, and the CLI honours it."""
import pytest
import torch
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
