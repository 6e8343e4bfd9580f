"""Loaders for StyleGAN2 generators saved by other projects: each reads its format without running code
from the file, checks every key and shape, rebuilds our `Generator` and copies the weights in.

- stylegan2-ada-pytorch / stylegan3 network pickles (`network-snapshot-*.pkl`): `pickle.dump` of a dict
  {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}. Each network is a `torch_utils.persistence`
  object pickled as `_reconstruct_persistent_obj(meta)`, meta = {type: 'class', version, module_src (the
  source of training/networks.py, which the original unpickler `exec`s), class_name, state (the module's
  __dict__: _parameters, _buffers, _modules, _init_args, _init_kwargs, ...)}. Tensors arrive through
  torch's reducers (`torch._utils._rebuild_tensor_v2` / `_rebuild_parameter`, storages through
  `torch.storage._load_from_bytes` of legacy `torch.save` bytes), kwargs as `dnnlib.util.EasyDict`, gains
  as numpy scalars. Our module has ada's parameter names and conventions, so tensors copy one to one.
- rosinality/stylegan2-pytorch checkpoints (`.pt`): `torch.save` of {'g_ema': state dict, ...}, from
  train.py (with 'g', 'd', optimisers, 'args' (an argparse.Namespace), 'ada_aug_p') or from
  convert_weight.py (with 'latent_avg'). See `_rosinality_pairs` for the key map.
"""
from __future__ import annotations

import argparse
import io
import pickle
import re
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import Tensor

from datasetgan.gan_training import load_generator
from datasetgan.stylegan2 import Generator, GeneratorConfig
from datasources.base import CheckpointFormatError
from datasources.files import read_torch


# ---------------------------------------------------------------------------------------------------
# stylegan2-ada-pytorch / stylegan3 network pickles


@dataclass(frozen=True)
class PersistentObject:
    """A `torch_utils.persistence` object as plain data: its class name and pickled __dict__; its
    module_src is dropped unread."""

    class_name: str
    state: dict


def _persistent_object(meta: dict) -> PersistentObject:
    """Stands in for `torch_utils.persistence._reconstruct_persistent_obj`: keeps the data, runs nothing."""
    return PersistentObject(meta["class_name"], meta["state"])


def _storage_from_bytes(data: bytes):
    """Stands in for `torch.storage._load_from_bytes`, reading the storage with weights_only=True."""
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _rebuild_tensor(storage, offset: int, size: tuple, stride: tuple, *_) -> Tensor:
    """Stands in for `torch._utils._rebuild_tensor_v2`, dropping requires_grad, hooks and metadata."""
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())


def _rebuild_parameter(data: Tensor, *_) -> Tensor:
    """Stands in for `torch._utils._rebuild_parameter`: parameters load as plain tensors."""
    return data


_NUMPY = {"_reconstruct": np.zeros(0).__reduce__()[0], "scalar": np.float64(0).__reduce__()[0]}

# (module, name) -> what the unpickler gets instead; everything else is refused.
_PICKLE_GLOBALS = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_object,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,  # module state under pickle protocol 3 (Python 3.7, the ada release)
    ("dnnlib.util", "EasyDict"): dict,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(f"numpy.{core}.multiarray", name): fn for core in ("core", "_core") for name, fn in _NUMPY.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in `_PICKLE_GLOBALS`, to our safe stand-ins."""

    def __init__(self, file, path: Path):
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_GLOBALS:
            raise CheckpointFormatError(f"{self.path}: refusing to load {module}.{name}: a network pickle "
                                        "holds only networks, tensors and plain data")
        return _PICKLE_GLOBALS[module, name]


def _read_network_pickle(path: Path) -> dict:
    """The pickled snapshot dict, networks as `PersistentObject`s."""
    with open(path, "rb") as f:
        try:
            data = _RestrictedUnpickler(f, path).load()
        except CheckpointFormatError:
            raise
        except Exception as e:
            raise CheckpointFormatError(f"{path}: not a readable network pickle ({type(e).__name__}: {e})") from e
    if not isinstance(data, dict):
        raise CheckpointFormatError(f"{path}: expected a dict of networks, found {type(data).__name__}")
    return data


def _module_state(obj, path: Path, name: str) -> dict:
    """The state of a pickled network module, checked to be one."""
    state = obj.state if isinstance(obj, PersistentObject) else None
    if not isinstance(state, dict) or not {"_parameters", "_buffers", "_modules"} <= state.keys():
        raise CheckpointFormatError(f"{path}: {name} is not a network module")
    return state


def _named_tensors(obj: PersistentObject, path: Path, prefix: str = "") -> dict[str, Tensor]:
    """Every parameter and buffer under a pickled module, by state-dict name."""
    state = _module_state(obj, path, prefix.rstrip(".") or "the network")
    tensors = {prefix + k: v for k, v in {**state["_parameters"], **state["_buffers"]}.items()}
    for name, child in state["_modules"].items():
        tensors |= _named_tensors(child, path, f"{prefix}{name}.")
    return tensors


def _init_kwargs(obj: PersistentObject, path: Path, name: str) -> dict:
    return _module_state(obj, path, name).get("_init_kwargs", {})


def _unsupported(path: Path, why: str) -> CheckpointFormatError:
    return CheckpointFormatError(f"{path}: not supported: {why}; only unconditional StyleGAN2 generators "
                                 "(architecture 'skip') load into our Generator")


def _submodule(obj: PersistentObject, dotted: str, path: Path) -> PersistentObject:
    """The pickled module at a dotted path below obj, e.g. 'b4.conv1'."""
    for name in dotted.split("."):
        modules = _module_state(obj, path, dotted)["_modules"]
        if name not in modules:
            raise CheckpointFormatError(f"{path}: missing module {dotted}")
        obj = modules[name]
    return obj


def _check_stylegan2(mapping: PersistentObject, synthesis: PersistentObject, path: Path) -> None:
    """Refuse what our Generator cannot compute: labels, other architectures or activations, StyleGAN3."""
    m, s = _init_kwargs(mapping, path, "mapping"), _init_kwargs(synthesis, path, "synthesis")
    if m.get("c_dim", 0):
        raise _unsupported(path, f"a conditional generator (c_dim={m['c_dim']})")
    for kwargs, name, ours in ((s, "architecture", "skip"), (s, "activation", "lrelu"), (m, "activation", "lrelu")):
        if kwargs.get(name, ours) != ours:
            raise _unsupported(path, f"{name}={kwargs[name]!r}")
    blocks = list(_module_state(synthesis, path, "synthesis")["_modules"])
    if not all(re.fullmatch(r"b\d+", b) for b in blocks):
        raise _unsupported(path, f"synthesis layers {blocks[:3]} are not StyleGAN2 blocks (a StyleGAN3 network?)")


def _ada_config(mapping: PersistentObject, synthesis: PersistentObject, path: Path) -> GeneratorConfig:
    """Our config from the mapping and synthesis init kwargs (the classes' defaults where absent), and
    conv_clamp as the layers hold it: its default is None in stylegan2-ada but 256 in the stylegan3 repo."""
    m, s = _init_kwargs(mapping, path, "mapping"), _init_kwargs(synthesis, path, "synthesis")
    try:
        return GeneratorConfig(
            z_dim=int(m["z_dim"]), w_dim=int(m["w_dim"]), resolution=int(s["img_resolution"]),
            img_channels=int(s["img_channels"]), channel_base=int(s.get("channel_base", 32768)),
            channel_max=int(s.get("channel_max", 512)), mapping_layers=int(m.get("num_layers", 8)),
            mapping_lr_multiplier=float(m.get("lr_multiplier", 0.01)),
            conv_clamp=_submodule(synthesis, "b4.conv1", path).state["conv_clamp"])
    except KeyError as e:
        raise CheckpointFormatError(f"{path}: the generator does not record {e}") from e


def _copy_strict(G: Generator, tensors: dict[str, Tensor], path: Path) -> Generator:
    """Load tensors (our key -> tensor) into G; a missing, unexpected or misshapen key fails naming it."""
    own = G.state_dict()
    for kind, keys in (("missing", own.keys() - tensors.keys()), ("unexpected", tensors.keys() - own.keys())):
        if keys:
            raise CheckpointFormatError(f"{path}: {kind} tensors {sorted(keys)} for {G.cfg}")
    for key, tensor in tensors.items():
        if not isinstance(tensor, Tensor) or tensor.shape != own[key].shape:
            found = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
            raise CheckpointFormatError(f"{path}: {key} has shape {found}, expected {tuple(own[key].shape)}")
    G.load_state_dict(tensors)
    return G.eval().requires_grad_(False)


def load_stylegan2_pkl(path: Path | str, key: str = "G_ema") -> Generator:
    """Our Generator from a stylegan2-ada-pytorch (or stylegan3-repo StyleGAN2) network pickle, read
    without importing or running anything from it; `key` picks the network ('G_ema', or 'G')."""
    path = Path(path)
    data = _read_network_pickle(path)
    if key not in data:
        raise CheckpointFormatError(f"{path}: no network {key!r}; the pickle holds {sorted(map(str, data))}")
    net = data[key]
    modules = _module_state(net, path, key)["_modules"]
    if net.class_name != "Generator" or not {"mapping", "synthesis"} <= modules.keys():
        raise _unsupported(path, f"{key} is a {net.class_name}, not a Generator with mapping and synthesis")
    _check_stylegan2(modules["mapping"], modules["synthesis"], path)
    cfg = _ada_config(modules["mapping"], modules["synthesis"], path)
    return _copy_strict(Generator(cfg), _named_tensors(net, path), path)


# ---------------------------------------------------------------------------------------------------
# rosinality/stylegan2-pytorch checkpoints


class _Pair(NamedTuple):
    """One of our tensors, the rosinality key it comes from, that key's shape given ours, and a gain."""

    ours: str
    theirs: str
    their_shape: Callable[[tuple], tuple]
    gain: float = 1.0


def _same(shape: tuple) -> tuple:
    return shape


def _batched(shape: tuple) -> tuple:
    return (1, *shape)


def _plane(shape: tuple) -> tuple:
    return (1, 1, *shape)


def _rgb_bias(shape: tuple) -> tuple:
    return (1, *shape, 1, 1)


def _styled_conv(ours: str, theirs: str) -> list[_Pair]:
    """StyledConv -> SynthesisLayer. modulation is an EqualLinear(lr_mul 1, bias_init 1) = our affine.
    conv.weight (1, O, I, k, k) is stored unit-scale like ours; rosinality multiplies it by 1/sqrt(I k k)
    before demodulating, which cancels except inside the 1e-8 epsilon. noise.weight (1,) is our scalar
    noise_strength; activate is FusedLeakyReLU: lrelu(x + bias, 0.2) * sqrt(2), as our bias + lrelu."""
    return [_Pair(f"{ours}.affine.weight", f"{theirs}.conv.modulation.weight", _same),
            _Pair(f"{ours}.affine.bias", f"{theirs}.conv.modulation.bias", _same),
            _Pair(f"{ours}.weight", f"{theirs}.conv.weight", _batched),
            _Pair(f"{ours}.noise_strength", f"{theirs}.noise.weight", _batched),
            _Pair(f"{ours}.bias", f"{theirs}.activate.bias", _same)]


def _to_rgb(ours: str, theirs: str) -> list[_Pair]:
    """ToRGB -> ToRGBLayer: rosinality scales the weight by 1/sqrt(I), we scale the styles: the same
    product. bias (1, 3, 1, 1) is our (3,)."""
    return [_Pair(f"{ours}.affine.weight", f"{theirs}.conv.modulation.weight", _same),
            _Pair(f"{ours}.affine.bias", f"{theirs}.conv.modulation.bias", _same),
            _Pair(f"{ours}.weight", f"{theirs}.conv.weight", _batched),
            _Pair(f"{ours}.bias", f"{theirs}.bias", _rgb_bias)]


def _rosinality_pairs(cfg: GeneratorConfig) -> list[_Pair]:
    """Every tensor of a rosinality g_ema onto ours. style.{i+1} (EqualLinear, lr_mul 0.01: weight stored
    divided by lr_mul, scaled by lr_mul/sqrt(in) and bias by lr_mul at run time, as ours) is fc{i};
    input.input (1, C, 4, 4) is b4.const; conv1/to_rgb1 are b4's; convs.{2j}, convs.{2j+1}, to_rgbs.{j}
    are the next blocks' conv0, conv1, torgb; noises.noise_{k} (1, 1, R, R) is the k-th conv's noise_const.
    Their blur kernels (the normalised [1, 3, 3, 1] filter times the upsampling gain 4) are our
    resample_filters, which hold the filter at unit gain."""
    pairs = [_Pair(f"mapping.fc{i}.{p}", f"style.{i + 1}.{p}", _same)
             for i in range(cfg.mapping_layers) for p in ("weight", "bias")]
    pairs += [_Pair("synthesis.b4.const", "input.input", _batched)]
    pairs += _styled_conv("synthesis.b4.conv1", "conv1") + _to_rgb("synthesis.b4.torgb", "to_rgb1")
    for j, res in enumerate(cfg.block_resolutions[1:]):
        block = f"synthesis.b{res}"
        pairs += _styled_conv(f"{block}.conv0", f"convs.{2 * j}") + _styled_conv(f"{block}.conv1", f"convs.{2 * j + 1}")
        pairs += _to_rgb(f"{block}.torgb", f"to_rgbs.{j}")
        pairs += [_Pair(f"{block}.conv0.resample_filter", f"convs.{2 * j}.conv.blur.kernel", _same, 0.25),
                  _Pair(f"{block}.resample_filter", f"to_rgbs.{j}.upsample.kernel", _same, 0.25)]
    convs = [f"synthesis.b{r}.conv{i}" for r in cfg.block_resolutions for i in ((1,) if r == 4 else (0, 1))]
    return pairs + [_Pair(f"{conv}.noise_const", f"noises.noise_{k}", _plane) for k, conv in enumerate(convs)]


def _get(state: dict, key: str, path: Path) -> Tensor:
    if key not in state:
        raise CheckpointFormatError(f"{path}: missing key {key}")
    return state[key]


def _rosinality_config(state: dict, path: Path) -> GeneratorConfig:
    """Architecture from the tensors: mapping depth from style.*, resolution from the number of convs,
    channels from the conv shapes (as our channel_base / channel_max where they follow that rule, as with
    channel multipliers 1 and 2; else listed per block), lr_mul 0.01 (train.py's)."""
    n_mlp = len([k for k in state if re.fullmatch(r"style\.\d+\.weight", k)])
    n_blocks = len([k for k in state if re.fullmatch(r"convs\.\d+\.conv\.weight", k)]) // 2
    channels = {4: _get(state, "input.input", path).shape[1]}
    channels |= {4 * 2 ** (j + 1): _get(state, f"convs.{2 * j}.conv.weight", path).shape[1] for j in range(n_blocks)}
    style = _get(state, "style.1.weight", path)
    cfg = GeneratorConfig(
        z_dim=style.shape[1], w_dim=style.shape[0], resolution=4 * 2 ** n_blocks,
        img_channels=_get(state, "to_rgb1.conv.weight", path).shape[1],
        channel_base=max(r * c for r, c in channels.items()), channel_max=max(channels.values()),
        mapping_layers=n_mlp, mapping_lr_multiplier=0.01, conv_clamp=None)
    if any(cfg.channels(r) != c for r, c in channels.items()):
        cfg = replace(cfg, channel_list=tuple(channels[r] for r in sorted(channels)))
    return cfg


def _check_rosinality_keys(state: dict, pairs: list[_Pair], path: Path) -> None:
    """Every key we need is there and nothing else is."""
    needed = {p.theirs for p in pairs}
    for kind, keys in (("missing", needed - state.keys()), ("unexpected", state.keys() - needed)):
        if keys:
            raise CheckpointFormatError(f"{path}: {kind} keys {sorted(keys)} in the rosinality generator")


def _mean_w(G: Generator, n: int = 4096) -> Tensor:
    """Mean mapping output of n seeded z: what rosinality's generate.py uses as the truncation centre."""
    z = torch.randn(n, G.cfg.z_dim, generator=torch.Generator().manual_seed(0))
    return torch.cat([G.mapping(chunk)[:, 0] for chunk in z.split(256)]).mean(0)


def _rosinality_tensors(state: dict, G: Generator, path: Path) -> dict[str, Tensor]:
    """A state dict for G from a rosinality g_ema state dict, all but mapping.w_avg."""
    pairs, own = _rosinality_pairs(G.cfg), G.state_dict()
    _check_rosinality_keys(state, pairs, path)
    tensors = {}
    for p in pairs:
        expected = p.their_shape(tuple(own[p.ours].shape))
        if tuple(state[p.theirs].shape) != expected:
            raise CheckpointFormatError(f"{path}: {p.theirs} has shape {tuple(state[p.theirs].shape)}, expected "
                                        f"{expected} (for our {p.ours})")
        tensors[p.ours] = state[p.theirs].reshape(own[p.ours].shape) * p.gain
    # b4 and every conv1 never resample; rosinality has no filter for them and ours keep the default.
    return tensors | {k: own[k] for k in own.keys() - tensors.keys() if k.endswith("resample_filter")}


def _rosinality_generator(checkpoint, path: Path, key: str) -> Generator:
    """Our Generator from a loaded rosinality checkpoint dict."""
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get(key), dict):
        raise CheckpointFormatError(f"{path}: no {key!r} state dict in this rosinality checkpoint")
    G = Generator(_rosinality_config(checkpoint[key], path))
    tensors = _rosinality_tensors(checkpoint[key], G, path)
    w_avg = checkpoint.get("latent_avg")
    if w_avg is not None and tuple(w_avg.shape) != (G.cfg.w_dim,):
        raise CheckpointFormatError(f"{path}: latent_avg has shape {tuple(w_avg.shape)}, expected ({G.cfg.w_dim},)")
    tensors["mapping.w_avg"] = G.mapping.w_avg if w_avg is None else w_avg
    G = _copy_strict(G, tensors, path)
    if w_avg is None:
        G.mapping.w_avg.copy_(_mean_w(G))
    return G


def _load_torch_checkpoint(path: Path):
    """torch.load with weights_only=True; rosinality's train.py also pickles its argparse.Namespace."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        return read_torch(path, "generator checkpoint")


def load_rosinality_pt(path: Path | str, key: str = "g_ema") -> Generator:
    """Our Generator from a rosinality/stylegan2-pytorch checkpoint (train.py's or convert_weight.py's).
    mapping.w_avg is 'latent_avg' when saved, else the mean of 4096 seeded mapping outputs."""
    path = Path(path)
    return _rosinality_generator(_load_torch_checkpoint(path), path, key)


def load_generator_any(path: Path | str) -> Generator:
    """Our Generator from any supported file: a network pickle (.pkl, stylegan2-ada), our own
    generator.pt ('datasetgan-stylegan2'), or a rosinality checkpoint (a dict with 'g_ema')."""
    path = Path(path)
    if path.suffix == ".pkl":
        return load_stylegan2_pkl(path)
    checkpoint = _load_torch_checkpoint(path)
    if isinstance(checkpoint, dict) and checkpoint.get("format") == "datasetgan-stylegan2":
        return load_generator(path)
    if isinstance(checkpoint, dict) and "g_ema" in checkpoint:
        return _rosinality_generator(checkpoint, path, "g_ema")
    raise CheckpointFormatError(f"{path}: not a generator checkpoint we know: expected a stylegan2-ada .pkl, "
                                "our generator.pt or a rosinality .pt with 'g_ema'")
