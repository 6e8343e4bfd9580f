"""Run records: every figure the suite reports is written once, with what is needed to trust it
(the resolved config, seeds, package versions, git commit, time), into a new folder per run."""
from __future__ import annotations

import json
import platform
import subprocess
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "torchvision", "numpy", "scipy", "pandas", "trimesh", "pycocotools")


def environment() -> dict:
    """Python, platform, package versions and the git commit of the working tree (dirty or not)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": versions,
            "git_commit": _git("rev-parse", "HEAD") or None,
            "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


def _git(*args: str) -> str:
    """Output of a git command run in the project (empty when git or the repository is missing)."""
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
    except OSError:
        return ""
    return out.stdout.strip()


def write_record(parent: str | Path, name: str, record: dict, started: float) -> Path:
    """Write parent/<UTC time>-<name>/record.json (never overwriting) and return its folder."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(parent) / f"{stamp}-{name}"
    suffix = 1
    while folder.exists():
        folder = Path(parent) / f"{stamp}-{name}-{suffix}"
        suffix += 1
    folder.mkdir(parents=True)
    full = {**record, "seconds": time.time() - started, "finished_utc": stamp, "environment": environment()}
    (folder / "record.json").write_text(json.dumps(full, indent=1))
    return folder
