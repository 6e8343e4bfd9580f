"""Our StyleGAN1 generator: the official DatasetGAN checkpoint layout (full size, on the meta device), and
behaviour on tiny random networks."""
import re

import pytest
import torch
import torch.nn.functional as F

from datasetgan.backbone import Backbone
from datasetgan.stylegan1 import (STYLEGAN1_PRESETS, StyleGAN1Config, StyleGAN1Generator, UpConv2d, load_stylegan1,
                                  resolve_config)
from fixtures.stylegan1_layout import CHECKPOINTS, FEATURE_CHANNELS, block_channels, official_layout

# fmap_base 128: channels 16, 16, 16, 8 at 4..32 pixels; fused upsampling from 16 pixels so both paths run.
TINY = StyleGAN1Config(resolution=32, z_dim=16, w_dim=16, fmap_base=128, fmap_max=16, mapping_layers=3,
                       fused_up_min_resolution=16)


def _tiny_generator(seed: int = 0) -> StyleGAN1Generator:
    """A tiny generator with every parameter random (the official init leaves noise weights at zero)."""
    torch.manual_seed(seed)
    G = StyleGAN1Generator(TINY)
    with torch.no_grad():
        for p in G.parameters():
            p.normal_()
    return G.eval()


@pytest.mark.parametrize("name", list(STYLEGAN1_PRESETS))
def test_full_size_state_dict_matches_official_layout(name):
    preset = STYLEGAN1_PRESETS[name]
    assert (preset.checkpoint, preset.config.resolution) == CHECKPOINTS[name]
    with torch.device("meta"):
        G = StyleGAN1Generator(preset.config)
    layout = [(k, tuple(v.shape)) for k, v in G.state_dict().items()]
    assert layout == list(official_layout(preset.config.resolution).items())  # the official order too
    assert G.num_ws == 2 * len(block_channels(preset.config.resolution))


@pytest.mark.parametrize("name", list(STYLEGAN1_PRESETS))
def test_feature_channels_sum_to_the_official_dims(name):
    cfg = STYLEGAN1_PRESETS[name].config
    from_rules = sum(2 * c for c in block_channels(cfg.resolution).values())
    assert sum(cfg.feature_channels) == from_rules == FEATURE_CHANNELS[name]
    with torch.device("meta"):  # a shape-only forward pass: nothing is computed
        G = StyleGAN1Generator(cfg)
        img, features = G.synthesis(torch.zeros(1, G.num_ws, cfg.w_dim))
    assert img.shape == (1, 3, cfg.resolution, cfg.resolution)
    assert [f.shape[1] for f in features] == cfg.feature_channels
    assert [f.shape[-1] for f in features] == [r for r in cfg.block_resolutions for _ in range(2)]


def test_presets_hold_the_datasetgan_settings():
    settings = {name: (p.truncation_psi, p.truncation_cutoff, p.label_resolution, p.crop_rows)
                for name, p in STYLEGAN1_PRESETS.items()}
    assert settings == {"cat": (0.7, 7, 256, None), "car": (0.7, 8, 512, (64, 448)), "face": (0.7, 8, 512, None)}
    assert STYLEGAN1_PRESETS["face"].config.num_ws == 18
    with pytest.raises(KeyError, match="valid: cat, car, face"):
        resolve_config("horse")


def test_features_are_the_block_outputs_and_raw_conv_outputs():
    G = _tiny_generator()
    raw, up_inputs = [], []
    for block in G.synthesis.blocks.values():
        getattr(block, block.conv_name).register_forward_hook(lambda m, args, out: raw.append(out))
        if not block.first:
            block.conv0_up.register_forward_pre_hook(lambda m, args: up_inputs.append(args[0]))
    with torch.no_grad():
        img, features = G.synthesis(G.mapping(torch.randn(2, TINY.z_dim)))
    assert img.shape == (2, 3, 32, 32)
    assert [tuple(f.shape[1:]) for f in features] == [(16, 4, 4), (16, 4, 4), (16, 8, 8), (16, 8, 8),
                                                      (16, 16, 16), (16, 16, 16), (8, 32, 32), (8, 32, 32)]
    for i in range(4):
        assert features[2 * i + 1] is raw[i]  # the last conv's output (bias added), before epi2
        if i < 3:
            assert features[2 * i] is up_inputs[i]  # the block output after epi2 feeds the next block
    torch.testing.assert_close(img, G.synthesis.torgb(features[-2]))


def test_fused_upsampling_equals_nearest_upsampling_and_flipped_conv():
    torch.manual_seed(0)
    conv = UpConv2d(3, 4, fused=True).double()
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    weight = (conv.weight * conv.weight_gain).flip([2, 3])
    twin = F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), weight, padding=1)
    twin = conv.intermediate(twin) + conv.bias[None, :, None, None]
    torch.testing.assert_close(conv(x), twin)
    assert conv(x).shape == (2, 4, 10, 10)


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    G = _tiny_generator()
    G.mapping.set_avg_latent(torch.randn(TINY.w_dim))
    torch.save(G.state_dict(), tmp_path / "tiny.for_g_all.pt")
    loaded = load_stylegan1(tmp_path / "tiny.for_g_all.pt", TINY, avg_latent=G.mapping.avg_latent)
    z, noise = torch.randn(2, TINY.z_dim), Backbone(G).noise([0, 1])
    with torch.no_grad():
        for model_ws in (G.mapping(z, 0.7, 5), loaded.mapping(z, 0.7, 5)):
            torch.testing.assert_close(model_ws, G.mapping(z, 0.7, 5), rtol=0, atol=0)
        (img_a, feats_a), (img_b, feats_b) = G.synthesis(G.mapping(z), noise), loaded.synthesis(G.mapping(z), noise)
    torch.testing.assert_close(img_a, img_b, rtol=0, atol=0)
    for a, b in zip(feats_a, feats_b, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_loading_without_average_estimates_it_from_the_mapping(tmp_path):
    G = _tiny_generator()
    torch.save(G.state_dict(), tmp_path / "g.pt")
    loaded = load_stylegan1(tmp_path / "g.pt", TINY)
    expected = G.mapping.estimate_avg_latent()
    torch.testing.assert_close(loaded.mapping.avg_latent, expected.expand(G.num_ws, -1))
    z = torch.randn(10_000, TINY.z_dim, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(expected, G.mapping(z)[:, 0].mean(0), atol=0.05 * expected.abs().max(), rtol=0)


def test_same_noise_same_sample_and_other_noise_other_image():
    G = _tiny_generator()
    backbone = Backbone(G)
    a, b = backbone.sample([3, 4]), backbone.sample([3, 4])
    torch.testing.assert_close(a.image, b.image, rtol=0, atol=0)
    assert all(torch.equal(x, y) for x, y in zip(a.features, b.features))
    ws = a.ws[:1].expand(2, -1, -1)  # the same w, two noise seeds
    other = backbone.synthesize(ws, seeds=[3, 5])
    torch.testing.assert_close(other.image[0], a.image[0], rtol=0, atol=0)
    assert (other.image[1] - other.image[0]).abs().max() > 1e-3
    H = _tiny_generator(seed=1)
    with torch.no_grad():  # no noise: the constant noise, the same in any generator of this config
        first, second = G.synthesis(ws), H.synthesis(ws)
        torch.testing.assert_close(first[0], G.synthesis(ws)[0], rtol=0, atol=0)
    for i in range(len(G.synthesis.noise_shapes())):
        assert torch.equal(getattr(G.synthesis, f"noise_const{i}"), getattr(H.synthesis, f"noise_const{i}"))
    assert not torch.equal(first[0], second[0])  # other weights


@pytest.mark.parametrize("damage", ["missing", "shape", "unexpected"])
def test_bad_state_dict_names_the_file_and_the_key(tmp_path, damage):
    state = _tiny_generator().state_dict()
    key = "g_synthesis.blocks.8x8.epi2.style_mod.lin.weight"
    if damage == "missing":
        del state[key]
    elif damage == "shape":
        state[key] = torch.zeros(3, 3)
    else:
        key = "g_synthesis.blocks.8x8.epi2.top_epi.noise.noise"
        state[key] = torch.zeros(1, 1, 8, 8)
    path = tmp_path / "bad.for_g_all.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match=re.escape(str(path))) as error:
        load_stylegan1(path, TINY)
    assert f"{damage}" in str(error.value) and key in str(error.value)


def test_wrong_preset_lists_every_problem(tmp_path):
    torch.save(_tiny_generator().state_dict(), tmp_path / "tiny.pt")
    with pytest.raises(ValueError, match="does not fit a StyleGAN1 generator of 256 pixels") as error:
        load_stylegan1(tmp_path / "tiny.pt", "cat")
    assert "missing: g_synthesis.blocks.256x256.conv1.weight (64, 64, 3, 3)" in str(error.value)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt: not a readable"):
        load_stylegan1(tmp_path / "junk.pt", TINY)


def test_truncation_moves_only_the_first_cutoff_layers():
    G = _tiny_generator()
    z = torch.randn(3, TINY.z_dim)
    avg = torch.randn(18, TINY.w_dim)  # the release's mean w has 18 rows; the first num_ws are used
    G.mapping.set_avg_latent(avg)
    with torch.no_grad():
        ws = G.mapping(z)
        torch.testing.assert_close(G.mapping(z, psi=1.0, cutoff=3), ws, rtol=0, atol=0)
        trunc = G.mapping(z, psi=0.0, cutoff=3)
        half = G.mapping(z, psi=0.5)
    assert ws.shape == (3, G.num_ws, TINY.w_dim) and G.num_ws == 8
    torch.testing.assert_close(trunc[:, :3], avg[:3].expand(3, -1, -1))
    torch.testing.assert_close(trunc[:, 3:], ws[:, 3:], rtol=0, atol=0)
    torch.testing.assert_close(half, (ws + avg[:8]) / 2)
    G.mapping.set_avg_latent(avg[None].numpy())   # (1, 18, w_dim), as the official make_mean_latent returns
    torch.testing.assert_close(G.mapping.avg_latent, avg[:8])
    with pytest.raises(ValueError, match=r"expected \(16,\) or \(N >= 8, 16\)"):
        G.mapping.set_avg_latent(torch.zeros(4, TINY.w_dim))
