"""The procedural toy-car world: the embedded default data source, with exact labels."""
from datasources.toy.car import KEYPOINT_NAMES, CarMesh, CarParams, build_car, sample_params
from datasources.toy.disk import SPLITS, ToyDataset, split_seeds, write_split
from datasources.toy.world import ToySettings, render_sample

__all__ = ["KEYPOINT_NAMES", "CarMesh", "CarParams", "build_car", "sample_params", "SPLITS", "ToyDataset",
           "split_seeds", "write_split", "ToySettings", "render_sample"]
