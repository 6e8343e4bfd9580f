"""The registry's names and splits, and the paper-profile configs that name only a data root."""
from pathlib import Path

import pytest
import yaml

from datasources.registry import DATASETS, load, splits

NAMES = ["ade-car-12", "ade-car-5", "pascal-car-5", "celeba-mask-8", "cub-bird", "car-20", "face-34", "bird-11",
         "cat-16", "bedroom-19", "stanford-cars", "kaggle-cats"]
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "datasets"


def test_names():
    assert sorted(DATASETS) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_config_names_only_a_root(name):
    config = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    assert list(config) == ["root"] and Path(config["root"]).is_absolute()


def test_every_config_is_a_dataset():
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(NAMES)


def test_unknown_name_and_split_list_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="valid: ade-car-12"):
        load("ade-car-13", tmp_path)
    with pytest.raises(ValueError, match="valid: train, val, test"):
        load("celeba-mask-8", tmp_path, "dev")
    assert splits("kaggle-cats") == ("train", "test", "all")
