"""The procedural toy-car world: the embedded default data source, with exact labels."""
from datasources.toy.car import KEYPOINT_LOOKALIKES, KEYPOINT_NAMES, CarMesh, CarParams, build_car, mean_params, sample_params
from datasources.toy.disk import SPLITS, ToyDataset, split_seeds, write_split
from datasources.toy.world import ToySettings, keypoints_in_view, render_sample

__all__ = ["KEYPOINT_LOOKALIKES", "KEYPOINT_NAMES", "CarMesh", "CarParams", "build_car", "mean_params", "sample_params",
           "SPLITS", "ToyDataset", "split_seeds", "write_split", "ToySettings", "keypoints_in_view", "render_sample"]
