"""Layered YAML configs: configs/suites/<suite>.yaml, then configs/profiles/<profile>.yaml, then a
user file, merged shallowly (a later layer replaces whole top-level keys). A profile's `per_suite:
{suite: {...}}` entry is the one exception, spelled out: the entry of the suite being resolved is
merged (shallowly) right after the profile's own keys, so a profile can give each suite its test
sets and sizes."""
from __future__ import annotations

from pathlib import Path

import yaml

from datasources.base import InputError

CONFIG_ROOT = Path(__file__).resolve().parents[1] / "configs"


class ConfigError(InputError):
    """A config file is missing, unreadable or not a mapping; the message names it."""


def names(kind: str) -> list[str]:
    """The config names available under configs/<kind>/ (e.g. suites, profiles)."""
    return sorted(p.stem for p in (CONFIG_ROOT / kind).glob("*.yaml"))


def load(path: str | Path, required: tuple[str, ...] = ()) -> dict:
    """Read one YAML mapping, failing with the file name on any problem; `required` entries (dotted for nested
    ones, as "generator.checkpoint") must be present."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read config ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at top level")
    for key in required:
        entry = data
        for part in key.split("."):
            entry = entry.get(part) if isinstance(entry, dict) else None
        if entry is None:
            raise ConfigError(f"{path}: a '{key}' entry is required")
    return data


def resolve(suite: str, profile: str, extra: str | Path | None = None) -> dict:
    """Suite, then profile, then an optional user file; the result names its layers."""
    layers = [CONFIG_ROOT / "suites" / f"{suite}.yaml", CONFIG_ROOT / "profiles" / f"{profile}.yaml"]
    if extra is not None:
        layers.append(Path(extra))
    config = {"suite": suite, "profile": profile}
    for layer in layers:
        data = load(layer)
        per_suite = data.pop("per_suite", None) or {}
        if not isinstance(per_suite, dict) or not isinstance(per_suite.get(suite, {}), dict):
            raise ConfigError(f"{layer}: per_suite must map suite names to mappings")
        config.update(data)
        config.update(per_suite.get(suite, {}))
    config["layers"] = [_display(p) for p in layers]
    return config


def _display(path: Path) -> str:
    """A layer's path relative to the project when it lies inside it (stable across clones)."""
    path = path.resolve()
    return str(path.relative_to(CONFIG_ROOT.parent)) if path.is_relative_to(CONFIG_ROOT.parent) else str(path)
