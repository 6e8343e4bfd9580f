"""GAN inversion on a tiny real generator: it must redraw images the generator can make."""
import pytest
import torch

from datasetgan.backbone import Backbone
from datasetgan.inversion import InversionSettings, invert, mean_ws
from datasetgan.stylegan2 import Generator, GeneratorConfig

TINY = GeneratorConfig(z_dim=16, w_dim=16, resolution=16, channel_base=128, channel_max=16, mapping_layers=2)


def _backbone():
    torch.manual_seed(0)
    G = Generator(TINY)
    G.synthesis.b4.conv1.noise_strength.data.fill_(0.3)  # make noise matter, as in a trained model
    return Backbone(G)


@pytest.mark.parametrize("space", ["w", "w+"])
def test_inversion_redraws_generated_images(space):
    backbone = _backbone()
    target = backbone.synthesize(backbone.ws(backbone.z([11, 12]))).image
    start = backbone.synthesize(mean_ws(backbone, 200)[None].repeat(2, 1, 1)).image
    start_mse = (start - target).square().mean([1, 2, 3])
    result = invert(backbone, target, InversionSettings(steps=150, lr=0.05, mean_samples=200, space=space),
                    progress=False)
    assert result.ws.shape == (2, backbone.num_ws, 16) and result.noise is None and result.noise_seeds is None
    assert (result.mse < 0.1 * start_mse).all(), (result.mse, start_mse)
    torch.testing.assert_close(result.mse, (result.image - target).square().mean([1, 2, 3]))
    assert (result.psnr > 20).all()
    if space == "w":   # one w for every layer, as the factory's samples have
        assert torch.equal(result.ws, result.ws[:, :1].expand_as(result.ws))


def test_inversion_into_w_under_seeded_noise_lands_on_a_sample_the_factory_could_draw():
    backbone = _backbone()
    target = backbone.sample([11, 12]).image   # the factory's samples: mapped w, noise from each seed
    result = invert(backbone, target, InversionSettings(steps=150, mean_samples=200), noise_seeds=[11, 12],
                    progress=False)
    assert result.noise_seeds == [11, 12] and (result.psnr > 20).all()
    redrawn = backbone.synthesize(result.ws, seeds=result.noise_seeds)   # how the interpreter reads its features
    torch.testing.assert_close(redrawn.image, result.image)
    with pytest.raises(ValueError, match="one noise seed per image"):
        invert(backbone, target, InversionSettings(steps=1), noise_seeds=[1], progress=False)
    with pytest.raises(ValueError, match="inversion space must be one of w, w\\+"):
        InversionSettings(space="z")


def test_inversion_with_noise_keeps_noise_unit_gaussian():
    backbone = _backbone()
    target = backbone.sample([3]).image
    result = invert(backbone, target, InversionSettings(steps=20, optimize_noise=True, mean_samples=50), progress=False)
    assert len(result.noise) == len(backbone.generator.synthesis.noise_shapes())
    for n in result.noise:
        assert abs(float(n.mean())) < 1e-4 and abs(float(n.std()) - 1) < 1e-3


def test_images_of_the_wrong_size_are_refused():
    with pytest.raises(ValueError, match=r"images: expected shape \('\*', 3, 16, 16\), got \(1, 3, 8, 8\)"):
        invert(_backbone(), torch.zeros(1, 3, 8, 8), InversionSettings(steps=1), progress=False)


def test_several_starts_let_each_image_go_on_from_the_one_that_fits_it():
    """An image drawn from the w of z seed 0 (start 1 of 3) is found from that start, which the probe picks for it,
    while the image drawn from the mean w keeps start 0; from the mean w alone, one step leaves the first far off."""
    backbone = _backbone()
    ws = torch.cat([backbone.generator.mapping(backbone.z([0])), mean_ws(backbone, 200)[None]])
    target = backbone.synthesize(ws, seeds=[5, 6]).image
    several = invert(backbone, target, InversionSettings(steps=1, lr=1e-4, mean_samples=200, starts=3, probe_steps=2),
                     noise_seeds=[5, 6], progress=False)
    assert several.start.tolist() == [1, 0] and (several.psnr > 40).all(), several.psnr
    one = invert(backbone, target, InversionSettings(steps=1, lr=1e-4, mean_samples=200), noise_seeds=[5, 6],
                 progress=False)
    assert one.start.tolist() == [0, 0] and one.psnr[0] < 30 < one.psnr[1], one.psnr
    with pytest.raises(ValueError, match="starts and probe_steps must be at least 1"):
        InversionSettings(starts=0)
