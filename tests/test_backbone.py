"""The backbone interface: samples are pure functions of their seeds, for StyleGAN2 and StyleGAN1 alike."""
import subprocess
import sys

import numpy as np
import torch

from datasetgan.backbone import Backbone, Truncation
from datasetgan.stylegan1 import StyleGAN1Config, StyleGAN1Generator
from datasetgan.stylegan2 import Generator, GeneratorConfig

TINY2 = GeneratorConfig(z_dim=16, w_dim=16, resolution=16, channel_base=128, channel_max=16, mapping_layers=2)
TINY1 = StyleGAN1Config(resolution=16, z_dim=16, w_dim=16, fmap_base=64, fmap_max=16, mapping_layers=2)

SCRIPT = """
import sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))  # same thread count as the test: float sums depend on it
from datasetgan.backbone import Backbone
from datasetgan.stylegan2 import Generator, GeneratorConfig
torch.manual_seed(0)
G = Generator(GeneratorConfig(z_dim=16, w_dim=16, resolution=16, channel_base=128, channel_max=16, mapping_layers=2))
G.synthesis.b16.conv1.noise_strength.data.fill_(0.5)
np.save(sys.argv[1], Backbone(G).sample([7, 8]).image.numpy())
"""


def _stylegan2():
    torch.manual_seed(0)
    G = Generator(TINY2)
    G.synthesis.b16.conv1.noise_strength.data.fill_(0.5)  # noise matters, as in a trained model
    return G


def test_same_seed_same_sample_in_another_process(tmp_path):
    here = Backbone(_stylegan2()).sample([7, 8]).image.numpy()
    subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "x.npy"), str(torch.get_num_threads())], check=True)
    np.testing.assert_array_equal(here, np.load(tmp_path / "x.npy"))


def test_a_sample_does_not_depend_on_its_batch():
    backbone = Backbone(_stylegan2())
    pair, single = backbone.sample([3, 4]), backbone.sample([4])
    torch.testing.assert_close(pair.image[1:], single.image, atol=1e-5, rtol=0)
    for a, b in zip(pair.features, single.features):
        torch.testing.assert_close(a[1:], b, atol=1e-5, rtol=0)
    assert not torch.allclose(pair.image[0], pair.image[1])


def test_truncation_pulls_toward_the_average():
    G = _stylegan2()
    G.mapping.w_avg.normal_()
    full, half = Backbone(G).sample([1]), Backbone(G, Truncation(0.5, cutoff=2)).sample([1])
    w_avg = G.mapping.w_avg
    torch.testing.assert_close(half.ws[:, :2] - w_avg, 0.5 * (full.ws[:, :2] - w_avg))
    torch.testing.assert_close(half.ws[:, 2:], full.ws[:, 2:])


def test_bfloat16_autocast_stays_close_to_float32():
    G = _stylegan2()
    fp32 = Backbone(G).sample([2]).image
    bf16 = Backbone(G, dtype=torch.bfloat16).sample([2]).image
    assert bf16.dtype == torch.float32 and (bf16 - fp32).abs().mean() < 0.05 * fp32.abs().mean() + 1e-3


def test_stylegan1_runs_behind_the_same_interface():
    torch.manual_seed(0)
    backbone = Backbone(StyleGAN1Generator(TINY1))
    out = backbone.sample([0, 1])
    assert out.image.shape == (2, 3, 16, 16) and out.ws.shape == (2, backbone.num_ws, 16)
    assert len(out.features) == 2 * 3  # two maps per block: 4, 8, 16
    torch.testing.assert_close(out.image, backbone.sample([0, 1]).image, rtol=0, atol=0)
