"""Foreign StyleGAN2 checkpoints: stylegan2-ada network pickles and rosinality .pt files load into our
Generator with the same images and features, and nothing in a pickle runs."""
import dataclasses
import os

import pytest
import torch

from datasetgan.gan_training import save_generator
from datasetgan.loaders import load_generator_any, load_rosinality_pt, load_stylegan2_pkl
from datasetgan.stylegan2 import Generator, GeneratorConfig
from datasources.base import CheckpointFormatError
from fixtures.stylegan2_formats import (MODULE_SRC, ada_network, ada_snapshot, rosinality_forward,
                                              rosinality_state_dict, stylegan3_network, write_pickle,
                                              write_rosinality_pt)

TINY = GeneratorConfig(z_dim=8, w_dim=8, resolution=16, channel_base=64, channel_max=16, mapping_layers=2)


def random_generator(cfg: GeneratorConfig = TINY, seed: int = 0) -> Generator:
    """A generator with every tensor random (noise strengths, biases and w_avg too), filters kept."""
    torch.manual_seed(seed)
    G = Generator(cfg).eval().requires_grad_(False)
    for name, tensor in G.state_dict().items():
        if not name.endswith("resample_filter"):
            tensor.copy_(torch.randn_like(tensor))
    return G


def make_noise(G: Generator, batch: int, seed: int = 0) -> list[torch.Tensor]:
    """Unit Gaussian noise (B, 1, R, R) for every conv layer."""
    rng = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, *shape, generator=rng) for shape in G.synthesis.noise_shapes()]


def outputs(G: Generator, noise: list | None, psi: float) -> list[torch.Tensor]:
    """Image then every per-layer feature for four fixed z."""
    z = torch.randn(4, G.cfg.z_dim, generator=torch.Generator().manual_seed(1))
    image, features = G.synthesis(G.mapping(z, psi=psi), noise)
    return [image, *features]


def assert_same_generator(loaded: Generator, source: Generator, psi: float = 0.7) -> None:
    """Same config, and bit-identical images and features, with given and with stored constant noise."""
    assert loaded.cfg == source.cfg
    for noise in (make_noise(source, 4), None):
        for a, b in zip(outputs(loaded, noise, psi), outputs(source, noise, psi), strict=True):
            assert torch.equal(a, b)


def ada_pickle(tmp_path, G, protocol=4):
    return write_pickle(tmp_path / "network-snapshot-000100.pkl", ada_snapshot(ada_network(G)), protocol)


def state_of(net, dotted: str) -> dict:
    """The pickled state of a submodule of a fixture network, e.g. 'synthesis.b8.conv0'."""
    for name in dotted.split("."):
        net = net.state["_modules"][name]
    return net.state


# ---------------------------------------------------------------------------------------------------
# stylegan2-ada network pickles


@pytest.mark.parametrize("protocol", [3, 4, 5])  # 3: Python 3.7, the ada release (sets via builtins.set)
def test_ada_pickle_reproduces_images_and_features(tmp_path, protocol):
    G = random_generator()
    path = ada_pickle(tmp_path, G, protocol)
    assert MODULE_SRC.encode() in path.read_bytes()  # the module source is in the file, and raises if run
    loaded = load_stylegan2_pkl(path)
    assert_same_generator(loaded, G)
    assert loaded.cfg.conv_clamp == 256 and not loaded.training


@pytest.mark.parametrize("conv_clamp", [None, 256])
def test_ada_conv_clamp_comes_from_the_layers(tmp_path, conv_clamp):
    """Without the kwarg the class default applies, which is None in stylegan2-ada, 256 in stylegan3's copy."""
    G = random_generator(dataclasses.replace(TINY, conv_clamp=conv_clamp), seed=1)
    net = ada_network(G)
    del net.state["_init_kwargs"]["synthesis_kwargs"]["conv_clamp"]
    del state_of(net, "synthesis")["_init_kwargs"]["conv_clamp"]
    path = write_pickle(tmp_path / "network.pkl", ada_snapshot(net, ada_network(G)))
    assert_same_generator(load_stylegan2_pkl(path), G)
    assert_same_generator(load_stylegan2_pkl(path, key="G"), G)


def test_ada_pickle_written_with_numpy_1(tmp_path):
    """numpy < 2 pickles its scalars and arrays as numpy.core.multiarray.*; protocol 3 names them in text."""
    G = random_generator(seed=2)
    path = ada_pickle(tmp_path, G, protocol=3)
    data = path.read_bytes()
    assert b"numpy._core.multiarray\nscalar" in data
    path.write_bytes(data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    assert_same_generator(load_stylegan2_pkl(path), G)


def test_ada_missing_network_lists_keys(tmp_path):
    with pytest.raises(CheckpointFormatError, match=r"network-snapshot-000100\.pkl.*'G_ema'.*'augment_pipe'"):
        load_stylegan2_pkl(ada_pickle(tmp_path, random_generator()), key="G_avg")


class _Global:
    """Pickles as a call of an arbitrary global, as a malicious pickle would."""

    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return self.fn, (self.arg,)


@pytest.mark.parametrize("fn, name", [(os.system, "system"), (eval, "builtins.eval")])
def test_ada_refuses_other_globals(tmp_path, fn, name):
    marker = tmp_path / "pwned"
    snapshot = ada_snapshot(ada_network(random_generator()))
    snapshot["G_ema"].state["evil"] = _Global(fn, f"open({str(marker)!r}, 'w')" if fn is eval else f"touch {marker}")
    path = write_pickle(tmp_path / "evil.pkl", snapshot)
    with pytest.raises(CheckpointFormatError, match=rf"evil\.pkl: refusing to load .*{name}"):
        load_stylegan2_pkl(path)
    assert not marker.exists()


@pytest.mark.parametrize("tamper, message", [
    (lambda net: state_of(net, "synthesis.b8.conv0")["_parameters"].pop("weight"),
     r"missing tensors \['synthesis\.b8\.conv0\.weight'\]"),
    (lambda net: state_of(net, "mapping")["_buffers"].__setitem__("w_std", torch.ones(8)),
     r"unexpected tensors \['mapping\.w_std'\]"),
    (lambda net: state_of(net, "synthesis.b16.torgb")["_parameters"].__setitem__("bias", torch.zeros(4)),
     r"synthesis\.b16\.torgb\.bias has shape \(4,\), expected \(3,\)"),
])
def test_ada_checks_keys_and_shapes(tmp_path, tamper, message):
    net = ada_network(random_generator())
    tamper(net)
    with pytest.raises(CheckpointFormatError, match=r"bad\.pkl: " + message):
        load_stylegan2_pkl(write_pickle(tmp_path / "bad.pkl", ada_snapshot(net)))


@pytest.mark.parametrize("make, key, why", [
    (lambda G: ada_network(G, c_dim=4), "G_ema", r"conditional generator \(c_dim=4\)"),
    (lambda G: ada_network(G, architecture="resnet"), "G_ema", r"architecture='resnet'"),
    (stylegan3_network, "G_ema", r"synthesis layers \['input', 'L0_36_4', 'L1_16_3'\].*StyleGAN3"),
    (ada_network, "D", r"D is a Discriminator, not a Generator"),
], ids=["conditional", "resnet", "stylegan3", "discriminator"])
def test_ada_unsupported_networks(tmp_path, make, key, why):
    path = write_pickle(tmp_path / "other.pkl", ada_snapshot(make(random_generator())))
    with pytest.raises(CheckpointFormatError, match=r"other\.pkl: not supported: .*" + why):
        load_stylegan2_pkl(path, key=key)


def test_not_a_pickle(tmp_path):
    path = tmp_path / "broken.pkl"
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(CheckpointFormatError, match=r"broken\.pkl: not a readable network pickle"):
        load_stylegan2_pkl(path)


# ---------------------------------------------------------------------------------------------------
# rosinality/stylegan2-pytorch checkpoints

ROSINALITY = dataclasses.replace(TINY, conv_clamp=None)  # rosinality's generator never clamps


def test_rosinality_reproduces_images_and_features(tmp_path):
    G = random_generator(ROSINALITY)
    loaded = load_rosinality_pt(write_rosinality_pt(tmp_path / "stylegan2-car-config-f.pt", G))
    assert_same_generator(loaded, G)


def test_rosinality_matches_its_own_formulas(tmp_path):
    """Against a slow twin of rosinality's forward: its weight scaling, demodulation, blur and layout."""
    G = random_generator(ROSINALITY, seed=2)
    loaded = load_rosinality_pt(write_rosinality_pt(tmp_path / "g.pt", G))
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(3))
    noise = make_noise(loaded, 3)
    expected = rosinality_forward(rosinality_state_dict(G), z, noise)
    torch.testing.assert_close(loaded.synthesis(loaded.mapping(z), noise)[0], expected, rtol=1e-5, atol=1e-5)


def test_rosinality_of_any_channel_multiplier_loads(tmp_path):
    """Channel multiplier 3 and up give widths that no min(base // r, max) rule makes (rosinality's 64-pixel blocks
    widen past the 512 of the coarse ones): the loader lists them per block, and our checkpoint keeps the list."""
    wide = dataclasses.replace(ROSINALITY, channel_list=(16, 16, 24), channel_base=16 * 24, channel_max=24)
    G = random_generator(wide, seed=6)   # (base and max: what the loader reads off the widths; unused beside a list)
    loaded = load_rosinality_pt(write_rosinality_pt(tmp_path / "wide.pt", G))
    assert loaded.cfg.channel_list == (16, 16, 24)
    assert_same_generator(loaded, G)
    save_generator(loaded, tmp_path / "ours.pt")
    assert_same_generator(load_generator_any(tmp_path / "ours.pt"), G)
    assert load_rosinality_pt(write_rosinality_pt(tmp_path / "rule.pt", random_generator(ROSINALITY))).cfg.channel_list is None


def test_rosinality_training_checkpoint_estimates_w_avg(tmp_path):
    G = random_generator(ROSINALITY, seed=4)
    loaded = load_rosinality_pt(write_rosinality_pt(tmp_path / "010000.pt", G, training=True))
    assert_same_generator(loaded, G, psi=1)  # no latent_avg: only the truncation centre differs
    ws = G.mapping(torch.randn(4096, 8, generator=torch.Generator().manual_seed(5)))[:, 0]
    torch.testing.assert_close(loaded.mapping.w_avg, ws.mean(0), rtol=0, atol=8 * ws.std(0).max().item() / 64)


@pytest.mark.parametrize("tamper, message", [
    (lambda sd: sd.pop("convs.1.noise.weight"), r"missing keys \['convs\.1\.noise\.weight'\]"),
    (lambda sd: sd.__setitem__("convs.1.extra", torch.zeros(1)), r"unexpected keys \['convs\.1\.extra'\]"),
    (lambda sd: sd.__setitem__("to_rgbs.0.bias", torch.zeros(3)),
     r"to_rgbs\.0\.bias has shape \(3,\), expected \(1, 3, 1, 1\) \(for our synthesis\.b8\.torgb\.bias\)"),
    (lambda sd: sd.pop("input.input"), r"missing key input\.input"),
])
def test_rosinality_checks_keys_and_shapes(tmp_path, tamper, message):
    sd = rosinality_state_dict(random_generator(ROSINALITY))
    tamper(sd)
    torch.save({"g_ema": sd}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointFormatError, match=r"bad\.pt: " + message):
        load_rosinality_pt(tmp_path / "bad.pt")


# ---------------------------------------------------------------------------------------------------
# any format


def test_load_generator_any_dispatches(tmp_path):
    ours, ada, rosinality = random_generator(), random_generator(seed=1), random_generator(ROSINALITY, seed=2)
    save_generator(ours, tmp_path / "generator.pt")
    assert_same_generator(load_generator_any(tmp_path / "generator.pt"), ours)
    assert_same_generator(load_generator_any(ada_pickle(tmp_path, ada)), ada)
    assert_same_generator(load_generator_any(write_rosinality_pt(tmp_path / "r.pt", rosinality)), rosinality)


def test_load_generator_any_refuses_other_checkpoints(tmp_path):
    torch.save({"model": {"weight": torch.zeros(1)}}, tmp_path / "classifier.pt")
    with pytest.raises(CheckpointFormatError, match=r"classifier\.pt: not a generator checkpoint we know"):
        load_generator_any(tmp_path / "classifier.pt")
