"""`benchmark datasets check`: read a whole install and report counts, classes present and problems.

check_dataset never raises on a damaged install: every DatasetFormatError met while opening each
split or reading each item is collected (once per file and message); any other error from an item
is recorded against the root with the split and item number, as the file is then unknown. An
unknown dataset name is the one exception: it raises DatasetFormatError (a ValueError) listing the
valid names, which the CLI prints as a clean error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datasources.base import IGNORE, ClassSet, DatasetFormatError, PartDataset
from datasources.registry import DATASETS, load, splits


@dataclass
class CheckReport:
    """One pass over an install: per-split (items read, items listed), labels and keypoints seen, problems."""

    name: str
    root: Path
    classes: ClassSet | None = None
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    present: set[int] = field(default_factory=set)
    visible_keypoints: int = 0
    keypoints: int = 0
    problems: list[DatasetFormatError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, error: DatasetFormatError) -> None:
        """Record a problem unless the same file and message is already recorded."""
        if all((p.path, p.expected) != (error.path, error.expected) for p in self.problems):
            self.problems.append(error)

    def _class_name(self, index: int) -> str:
        if self.classes is not None and index < len(self.classes):
            return self.classes.names[index]
        return "ignore" if index == IGNORE else f"<unknown {index}>"

    def format(self) -> str:
        """A human-readable report: counts, classes present, keypoints, then every problem with its file."""
        count = len(self.problems)
        lines = [f"{self.name} at {self.root}: " + ("ok" if self.ok else f"{count} problem{'s' * (count != 1)}")]
        lines += [f"  {split}: {read} of {listed} items read" for split, (read, listed) in self.counts.items()]
        if self.present:
            total = f" of {len(self.classes)}" if self.classes is not None else ""
            names = ", ".join(self._class_name(i) for i in sorted(self.present))
            lines.append(f"  classes present ({len(self.present)}{total}): {names}")
        if self.keypoints:
            lines.append(f"  keypoints: {self.visible_keypoints} visible of {self.keypoints}")
        if self.problems:
            lines.append("problems:")
            lines += [f"  {p.path}: {p.expected}" for p in self.problems]
        return "\n".join(lines)


def class_shares(dataset: PartDataset) -> dict[str, tuple[float, float]]:
    """Per class of a labelled dataset: (the share of all its pixels, the share of its images that show the class),
    ignored pixels left out; what tells how small the small parts are."""
    k = len(dataset.classes)
    pixels, images = np.zeros(k), np.zeros(k)
    for i in range(len(dataset)):
        counts = np.bincount(dataset[i].labels[dataset[i].labels != IGNORE].ravel(), minlength=k)[:k]
        pixels += counts
        images += counts > 0
    return {name: (pixels[c] / max(pixels.sum(), 1), images[c] / max(len(dataset), 1))
            for c, name in enumerate(dataset.classes.names)}


def check_dataset(name: str, root: Path) -> CheckReport:
    """Open every split of dataset `name` at `root` and read every item, collecting all problems."""
    root = Path(root)
    if name not in DATASETS:
        raise DatasetFormatError(root, f"a dataset name among {', '.join(DATASETS)}; got {name!r}")
    report = CheckReport(name, root)
    for split in splits(name):
        try:
            dataset = load(name, root, split, on_error=report.add)
        except DatasetFormatError as e:
            report.add(e)
            continue
        report.classes = dataset.classes
        read = 0
        for i in range(len(dataset)):
            try:
                sample = dataset[i]
            except DatasetFormatError as e:
                report.add(e)
                continue
            except Exception as e:  # noqa: BLE001 - a damaged install must not stop the check
                report.add(DatasetFormatError(root, f"{split} item {i} readable ({type(e).__name__}: {e})"))
                continue
            read += 1
            if sample.labels is not None:
                report.present.update(int(v) for v in np.unique(sample.labels))
            if sample.keypoints is not None:
                report.keypoints += len(sample.keypoints)
                report.visible_keypoints += int((sample.keypoints[:, 2] > 0).sum())
        report.counts[split] = (read, len(dataset))
    if report.ok and not any(listed for _, listed in report.counts.values()):
        report.add(DatasetFormatError(root, "at least one item in some split (found none)"))
    return report
