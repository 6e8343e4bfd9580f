"""Reader of a labelled synthetic dataset written by the label factory (`benchmark generate`): the
samples index.json kept after uncertainty filtering, with their seeds, scores and JS maps (part
labels) or keypoints. A view of the first `num` samples filtered at another ratio reads the same
files (the ablations of the paper's Tables 3 and 4 need no new generation)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasources.base import DatasetFormatError, PartDataset, Sample
from datasources.classes import CLASS_SETS
from datasources.files import read_image_and_labels, read_json, read_npy, read_rgb


FILTER_RULES = ("paper", "official")
OFFICIAL_CERTAIN_DROPPED = 30   # the official script's slice also drops this many of the most certain images


def filter_uncertain(scores: dict[int, float], ratio: float, rule: str = "paper") -> tuple[list[int], list[int]]:
    """scores: seed -> image uncertainty (higher is less certain) -> (kept, dropped) sorted seeds, ties by the
    smaller seed first. rule "paper" (the paper's text): the round(ratio * N) most uncertain are dropped.
    rule "official" (the released train_deeplab.py's slice): with f = int(ratio * N), the 30 most certain and
    the f - 30 most uncertain are dropped, the same number in all; the official slice is empty when f <= 30,
    so that is refused here."""
    if rule not in FILTER_RULES:
        raise ValueError(f"filter rule must be one of {', '.join(FILTER_RULES)}, got {rule!r}")
    ranked = sorted(scores, key=lambda s: (-scores[s], s))   # most uncertain first
    if rule == "paper":
        dropped = ranked[:int(round(len(ranked) * ratio))]
    elif ratio == 0:
        dropped = []
    else:
        f = int(len(ranked) * ratio)
        if f <= OFFICIAL_CERTAIN_DROPPED:
            raise ValueError(f"the official filter slice keeps nothing unless int(ratio * N) > "
                             f"{OFFICIAL_CERTAIN_DROPPED}; got {f} for ratio {ratio} of {len(ranked)} images")
        dropped = ranked[:f - OFFICIAL_CERTAIN_DROPPED] + ranked[len(ranked) - OFFICIAL_CERTAIN_DROPPED:]
    return sorted(set(scores) - set(dropped)), sorted(dropped)


def shard_file(seed: int, first_seed: int, shard_size: int) -> str:
    """The stem of a seed's files, relative to the output folder."""
    return f"shards/shard_{(seed - first_seed) // shard_size:06d}/seed{seed:06d}"


class SyntheticDataset(PartDataset):
    """Kept samples of a factory output folder; meta holds the seed (and the path of its JS map).

    num, filter_ratio, filter_rule: a view of the first `num` generated samples (default: all) filtered by
    filter_uncertain with that ratio and rule (default: the index's own selection)."""

    def __init__(self, root: str | Path, num: int | None = None, filter_ratio: float | None = None,
                 filter_rule: str | None = None):
        self.root = Path(root)
        index = self.root / "index.json"
        if not index.is_file():
            raise DatasetFormatError(index, "missing; `benchmark generate` writes it once every shard is done")
        data = read_json(index, "generated dataset index", ("settings", "kept", "files"))
        self.keypoint_names = tuple(data.get("keypoint_names", ()))
        if "classes" in data or not self.keypoint_names:   # part labels, maybe keypoints too
            names = tuple(data.get("classes", ()))
            match = [c for c in CLASS_SETS.values() if c.names == names]
            if not match:
                raise DatasetFormatError(index, f"a known class set, got classes {list(names)}")
            self.classes = match[0]
        settings = data["settings"]
        self.first_seed, self.shard_size = settings["first_seed"], settings["shard_size"]
        if num is None and filter_ratio is None and filter_rule is None:
            self.seeds = data["kept"]
        else:
            num = settings["num"] if num is None else num
            if not 0 < num <= settings["num"]:
                raise DatasetFormatError(index, f"a view of 1..{settings['num']} samples, asked for {num}")
            ratio = settings["filter_ratio"] if filter_ratio is None else filter_ratio
            rule = settings.get("filter_rule", "paper") if filter_rule is None else filter_rule
            scores = {s: r["score"] for s, r in self._records(range(self.first_seed, self.first_seed + num)).items()}
            self.seeds = filter_uncertain(scores, ratio, rule)[0]

    def _records(self, seeds) -> dict[int, dict]:
        """seed -> its samples.json record (score, z, keypoints), read shard by shard."""
        out, shards = {}, {}
        for seed in seeds:
            shard = self.root / shard_file(seed, self.first_seed, self.shard_size)
            if shard.parent not in shards:
                shards[shard.parent] = read_json(shard.parent / "samples.json", "shard record", ())
            if str(seed) not in shards[shard.parent]:
                raise DatasetFormatError(shard.parent / "samples.json", f"a record of seed {seed}")
            out[seed] = shards[shard.parent][str(seed)]
        return out

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, i: int) -> Sample:
        seed = self.seeds[i]
        stem = self.root / shard_file(seed, self.first_seed, self.shard_size)
        keypoints = None
        if self.keypoint_names:
            keypoints = np.asarray(self._records([seed])[seed].get("keypoints", ()), np.float32)
            if keypoints.shape != (len(self.keypoint_names), 3):
                raise DatasetFormatError(stem.parent / "samples.json", f"{len(self.keypoint_names)} keypoints "
                                                                       f"(x, y, visible) for seed {seed}")
        if getattr(self, "classes", None) is None:
            return Sample(read_rgb(Path(f"{stem}.png")), None, keypoints, meta={"seed": seed})
        image, labels = read_image_and_labels(Path(f"{stem}.png"), Path(f"{stem}_label.png"))
        return Sample(image, labels, keypoints, meta={"seed": seed, "js": str(stem) + "_js.npy"})

    def js(self, i: int) -> np.ndarray:
        """float16 (H, W): the ensemble's per-pixel JS divergence of sample i."""
        return read_npy(Path(self.__getitem__(i).meta["js"]), "JS map")
