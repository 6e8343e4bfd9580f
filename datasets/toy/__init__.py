"""The procedural toy-car world: the embedded default data source, with exact labels."""
from datasets.toy.car import KEYPOINT_NAMES, CarMesh, CarParams, build_car, sample_params
from datasets.toy.disk import SPLITS, ToyDataset, split_seeds, write_split
from datasets.toy.world import ToySettings, render_sample

__all__ = ["KEYPOINT_NAMES", "CarMesh", "CarParams", "build_car", "sample_params", "SPLITS", "ToyDataset",
           "split_seeds", "write_split", "ToySettings", "render_sample"]
