"""Shared file readers and helpers for the real-dataset adapters; every failure names its file.

Boxes are `(x0, y0, x1, y1)` integer pixel bounds, x0/y0 inclusive and x1/y1 exclusive (0-based).
Every adapter's constructor takes an `on_error` callback for the problems it meets while indexing
per-image files: the default raises at once (loading), `datasources.check` passes one that collects
(checking). Adapters that index from a single file (CUB, Stanford Cars) accept it for the shared
signature and never call it. Arrays returned here are writable copies.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import pickle
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import scipy.io
import torch
from PIL import Image

from datasources.base import CheckpointFormatError, DatasetFormatError, InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
OnError = Callable[[DatasetFormatError], None]


def optional_library(module: str, purpose: str):
    """Import a library only some formats need (Hugging Face `datasets`, `label_studio_converter`); when it is
    missing, one clear error saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"{purpose} needs the {module} library: pip install 'datasetgan-benchmark[formats]'") from None


def raise_error(error: DatasetFormatError) -> None:
    """The loading policy: stop at the first problem."""
    raise error


def check_split(split: str, valid: Sequence[str]) -> None:
    """Fail with the list of valid splits when `split` is not one of them."""
    if split not in valid:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(valid)}")


def take_split(items: list, split: str, n_val: int) -> list:
    """The paper's protocol on a sorted list: the first `n_val` items are 'val', the rest 'test'."""
    check_split(split, ("val", "test"))
    return items[:n_val] if split == "val" else items[n_val:]


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call write(temporary path) then rename that file onto `path`: readers never see half a file. The
    temporary file has `path`'s own name (formats that read the name, such as torch.save's archive name,
    give the same bytes) inside a folder of this process's own beside it, so processes writing the same
    file at once (torchrun ranks preparing the same data) never share one; the last rename wins whole."""
    path = Path(path)
    folder = path.parent / f".tmp-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / path.name
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()


def file_digest(path: Path) -> str:
    """The first 8 hex digits of a file's SHA-256."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:8]


def require_file(path: Path, what: str) -> Path:
    """`path` if it is an existing file, else a DatasetFormatError saying what was expected there."""
    if not path.is_file():
        raise DatasetFormatError(path, f"missing {what}")
    return path


def _open_image(path: Path, what: str) -> Image.Image:
    """Open and fully decode an image, so a truncated or foreign file fails here with its name."""
    require_file(path, what)
    try:
        image = Image.open(path)
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetFormatError(path, f"a readable {what} ({e})") from None
    return image


def read_rgb(path: Path, what: str = "image") -> np.ndarray:
    """path -> image: uint8 (H, W, 3) RGB (alpha and palettes are dropped)."""
    return np.array(_open_image(path, what).convert("RGB"))


def read_gray(path: Path, what: str) -> np.ndarray:
    """path -> uint8 (H, W), the file's single channel (colour files are converted to luminance)."""
    return np.array(_open_image(path, what).convert("L"))


def read_image_and_labels(image_path: Path, label_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image and its one-channel label PNG -> (uint8 (H, W, 3), int64 (H, W)), sizes checked."""
    image = read_rgb(image_path)
    labels = read_gray(label_path, "label map").astype(np.int64)
    check_size(label_path, labels.shape, image.shape[:2], "label map")
    return image, labels


def read_binary(path: Path, what: str) -> np.ndarray:
    """path -> bool (H, W): pixels of at least half intensity (>= 128), for binary and soft masks."""
    return read_gray(path, what) >= 128


def read_mat(path: Path, what: str) -> dict:
    """Load a MATLAB file with scipy's default layout (structs as record arrays, cells as object arrays)."""
    require_file(path, what)
    try:
        return scipy.io.loadmat(str(path))
    except (OSError, ValueError, TypeError, NotImplementedError) as e:
        raise DatasetFormatError(path, f"a readable MATLAB {what} ({e})") from None


def mat_field(record: np.ndarray, name: str, path: Path):
    """Field `name` of one MATLAB struct element, or a DatasetFormatError listing the fields present."""
    names = record.dtype.names or ()
    if name not in names:
        raise DatasetFormatError(path, f"a struct field {name!r} (fields present: {', '.join(names) or 'none'})")
    return record[name]


def mat_str(value) -> str:
    """A MATLAB char array (as loaded by scipy, e.g. array(['car'])) -> str; empty -> ''."""
    flat = np.asarray(value).ravel()
    return str(flat[0]) if flat.size else ""


def mat_strings(cell) -> list[str]:
    """A MATLAB cell array of strings -> list[str], in storage order."""
    return [mat_str(v) for v in np.asarray(cell, dtype=object).ravel()]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only, so a foreign index cannot run code on load."""

    _ALLOWED = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}

    def find_class(self, module, name):
        if module.split(".")[0] == "numpy" and name in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_pickle(path: Path, what: str):
    """Load a pickle holding only builtins and numpy arrays."""
    require_file(path, what)
    try:
        with path.open("rb") as f:
            return _NumpyOnlyUnpickler(f).load()
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError) as e:
        raise DatasetFormatError(path, f"a readable pickled {what} ({e})") from None


def read_npy(path: Path, what: str) -> np.ndarray:
    """Load a .npy array without pickled objects."""
    require_file(path, what)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DatasetFormatError(path, f"a readable .npy {what} ({e})") from None


def list_files(folder: Path, suffixes: tuple[str, ...], what: str) -> list[Path]:
    """The files in `folder` whose (lower-case) suffix is one of `suffixes`, sorted by name."""
    if not folder.is_dir():
        raise DatasetFormatError(folder, f"missing folder of {what}")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """The PNG/JPG files of a folder (of its images/ when it has one, as a toy split folder), sorted by path;
    `recursive` takes those of its subfolders too (CUB's images/<class>/). None is an error."""
    folder = folder / "images" if (folder / "images").is_dir() else folder
    if not recursive:
        files = list_files(folder, IMAGE_SUFFIXES, "images")
    elif folder.is_dir():
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        raise DatasetFormatError(folder, "missing folder of images")
    if not files:
        raise DatasetFormatError(folder, "PNG or JPG images (found none)")
    return files


def read_json(path: Path, what: str, keys: Sequence[str] | None = None):
    """A JSON file's content; with `keys`, it must be an object holding at least those keys."""
    try:
        data = json.loads(read_text(path, what))
    except json.JSONDecodeError as e:
        raise DatasetFormatError(path, f"a readable JSON {what} ({e})") from None
    if keys is not None:
        if not isinstance(data, dict):
            raise DatasetFormatError(path, f"a JSON object ({what}), found {type(data).__name__}")
        missing = [k for k in keys if k not in data]
        if missing:
            raise DatasetFormatError(path, f"a JSON {what} with keys {', '.join(keys)} (missing: {', '.join(missing)})")
    return data


def read_torch(path: Path, what: str, map_location="cpu"):
    """torch.load with weights_only=True (no pickled code runs), failing with a CheckpointFormatError naming the
    file when it is missing, truncated or not a PyTorch archive."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointFormatError(f"{path}: no such {what}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch.load raises many types: OSError, RuntimeError, EOFError, pickle and zip errors
        reason = str(e).split(". ")[0].strip() or "empty file"   # torch's zip errors go on for several sentences
        raise CheckpointFormatError(f"{path}: not a readable {what}: truncated, or not a PyTorch file "
                                    f"({type(e).__name__}: {reason})") from None


def read_text(path: Path, what: str) -> str:
    """A text file's content."""
    require_file(path, what)
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetFormatError(path, f"a readable {what} ({e})") from None


def read_lines(path: Path, what: str) -> list[list[str]]:
    """A whitespace-separated text table -> its non-empty lines split into fields."""
    return [line.split() for line in read_text(path, what).splitlines() if line.strip()]


def check_size(path: Path, shape: tuple[int, ...], expected_hw: tuple[int, int], what: str) -> None:
    """Fail unless an array read from `path` has the (H, W) of the image it annotates."""
    if tuple(shape[:2]) != tuple(expected_hw):
        raise DatasetFormatError(
            path, f"{what} of size {shape[1]}x{shape[0]} (W x H) to match its image, {expected_hw[1]}x{expected_hw[0]}"
        )


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """mask: bool (H, W) -> the box (x0, y0, x1, y1) of its true pixels, or None when it is empty."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def crop(array: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """array: (H, W, ...) -> the (y1 - y0, x1 - x0, ...) window of `box`, copied."""
    x0, y0, x1, y1 = box
    return array[y0:y1, x0:x1].copy()


def file_index(name: str) -> str:
    """The pairing key of a release file: its last run of digits ('image_mask12' -> '12'), else its stem."""
    stem = Path(name).stem
    digits = re.findall(r"\d+", stem)
    return str(int(digits[-1])) if digits else stem


def pair_by_sorted_name(images: list[Path], labels: list[Path], on_error: OnError) -> list[tuple[Path, Path]]:
    """Pair images and labels that share a `file_index`, ordered by sorted image name.

    A file without a partner, or two files with one key, is reported through `on_error` and left out.
    """
    by_key: dict[str, list[Path]] = {}
    for label in labels:
        by_key.setdefault(file_index(label.name), []).append(label)
    pairs, used = [], set()
    for image in sorted(images, key=lambda p: p.name):
        key = file_index(image.name)
        found = by_key.get(key, [])
        if len(found) != 1:
            on_error(DatasetFormatError(image, f"exactly one label file with index {key}, found {len(found)}"))
            continue
        if key in used:
            on_error(DatasetFormatError(image, f"the only image with index {key}"))
            continue
        used.add(key)
        pairs.append((image, found[0]))
    for label in sorted(labels, key=lambda p: p.name):
        if file_index(label.name) not in used and len(by_key[file_index(label.name)]) == 1:
            on_error(DatasetFormatError(label, "an image with the same index"))
    return pairs
