"""Our StyleGAN2 generator and its training loop, on tiny real networks."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from datasetgan.gan_training import GANTrainer, TrainOptions, load_generator, sample_images, save_generator
from datasetgan.backbone import Backbone
from datasetgan.stylegan2 import Generator, GeneratorConfig, _blur_filter, _filter2d, modulated_conv2d, upsample2d

TINY = GeneratorConfig(z_dim=16, w_dim=16, resolution=16, channel_base=128, channel_max=16, mapping_layers=2)


def _per_sample_reference(x, weight, styles, demodulate, up):
    """The obvious twin: build each sample's modulated weight and convolve it alone."""
    out = []
    for xi, si in zip(x, styles):
        w = weight * si[None, :, None, None]
        if demodulate:
            w = w * (w.square().sum([1, 2, 3], keepdim=True) + 1e-8).rsqrt()
        if up:
            y = F.conv_transpose2d(xi[None], w.transpose(0, 1), stride=2)
            y = _filter2d(y, _blur_filter().double(), (1, 1), gain=4.0)
        else:
            y = F.conv2d(xi[None], w, padding=w.shape[-1] // 2)
        out.append(y)
    return torch.cat(out)


def test_modulated_conv_matches_per_sample_weights():
    g = torch.Generator().manual_seed(0)
    x, weight, styles = (torch.randn(s, generator=g, dtype=torch.float64) for s in ((3, 5, 6, 6), (4, 5, 3, 3), (3, 5)))
    for demodulate, up in ((True, False), (True, True), (False, False)):
        fast = modulated_conv2d(x, weight, styles, demodulate, up, _blur_filter().double())
        torch.testing.assert_close(fast, _per_sample_reference(x, weight, styles, demodulate, up))
    assert fast.shape == (3, 4, 6, 6)
    assert modulated_conv2d(x, weight, styles, True, True, _blur_filter().double()).shape == (3, 4, 12, 12)


def test_upsample_keeps_constants_and_doubles_size():
    x = torch.full((1, 2, 5, 5), 3.0)
    y = upsample2d(x, _blur_filter())
    assert y.shape == (1, 2, 10, 10)
    torch.testing.assert_close(y[..., 2:-2, 2:-2], torch.full_like(y[..., 2:-2, 2:-2], 3.0))


def test_generator_features_and_truncation():
    torch.manual_seed(0)
    G = Generator(TINY)
    z = torch.randn(2, TINY.z_dim)
    ws = G.mapping(z)
    assert ws.shape == (2, G.num_ws, TINY.w_dim) and G.num_ws == 1 + 2 + 2 + 1  # convs of b4, b8, b16, then the last torgb
    img, feats = G.synthesis(ws, Backbone(G).noise([0, 1]))
    assert img.shape == (2, 3, 16, 16)
    assert [tuple(f.shape[1:]) for f in feats] == [(16, 4, 4), (16, 4, 4), (16, 8, 8), (16, 8, 8), (8, 16, 16), (8, 16, 16)]
    G.mapping.w_avg.normal_()
    trunc = G.mapping(z, psi=0.0, cutoff=3)
    torch.testing.assert_close(trunc[:, :3], G.mapping.w_avg.expand(2, 3, -1))
    torch.testing.assert_close(trunc[:, 3:], ws[:, 3:])


def test_seeded_noise_is_fixed_per_seed():
    G = Generator(TINY)
    a, b = Backbone(G).noise([3, 4]), Backbone(G).noise([4])
    assert all(torch.equal(x[1:], y) for x, y in zip(a, b))
    assert not torch.equal(a[0][0], a[0][1])


def _tiny_trainer(run_dir, resume_from=None, **changes):
    data = torch.randint(0, 256, (12, 3, 16, 16), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    options = TrainOptions(generator=TINY, d_channel_base=128, d_channel_max=16, batch=4, r1_every=2, **changes)
    return GANTrainer(run_dir, data, options, resume_from=resume_from)


def test_training_steps_change_weights_and_resume_exactly(tmp_path):
    straight = _tiny_trainer(tmp_path / "a")
    before = [p.clone() for p in straight.G.parameters()]
    straight.train(4, checkpoint_every=2, grid_every=4)
    assert any(not torch.equal(p, q) for p, q in zip(before, straight.G.parameters()))
    assert (tmp_path / "a" / "samples-000004.png").exists() and len(straight.log) == 2
    assert all(entry["layout_diversity"] > 0 for entry in straight.log)   # logged with the losses

    interrupted = _tiny_trainer(tmp_path / "b")
    interrupted.train(2, checkpoint_every=2, grid_every=100)
    resumed = _tiny_trainer(tmp_path / "b")  # a new process would do exactly this
    assert resumed.iteration == 2
    resumed.train(4, checkpoint_every=2, grid_every=100)
    for p, q in zip(straight.G_ema.state_dict().values(), resumed.G_ema.state_dict().values()):
        torch.testing.assert_close(p, q)


def test_a_run_carried_in_bfloat16_resumes_elsewhere(tmp_path):
    """The compact state a run writes when it stops starts a run in another folder at the same iteration, with
    weights equal up to bfloat16 rounding, and trains on from there."""
    first = _tiny_trainer(tmp_path / "a")
    first.train(2, checkpoint_every=2, grid_every=100)
    compact = tmp_path / "a" / "training-bf16.pt"
    assert compact.stat().st_size < 0.6 * (tmp_path / "a" / "training.pt").stat().st_size
    log = json.loads((tmp_path / "a" / "log.json").read_text())
    assert log["iteration"] == 2 and log["log"] == first.log and log["options"]["batch"] == 4
    carried = _tiny_trainer(tmp_path / "b", resume_from=compact)
    assert carried.iteration == 2 and carried.log == first.log
    for p, q in zip(first.G.parameters(), carried.G.parameters()):
        assert q.dtype == torch.float32
        torch.testing.assert_close(p, q, rtol=1e-2, atol=1e-3)
    carried.train(3, checkpoint_every=1, grid_every=100)
    assert carried.iteration == 3 and (tmp_path / "b" / "training.pt").exists()


def test_a_branch_goes_on_at_another_learning_rate_and_records_where(tmp_path):
    """A run started in a new folder from another run's state may change the learning rate (and only that); the
    optimisers take the new rate, the branch point is recorded, and the branch resumes in its own folder."""
    _tiny_trainer(tmp_path / "a").train(2, checkpoint_every=2, grid_every=100)
    parent = tmp_path / "a" / "training.pt"
    branch = _tiny_trainer(tmp_path / "b", resume_from=parent, lr=0.0005)
    assert branch.iteration == 2 and branch.opt_G.param_groups[0]["lr"] == 0.0005
    assert branch.opt_D.param_groups[0]["lr"] == pytest.approx(0.0005 * 2 / 3)   # r1_every 2
    assert branch.branches == [{"iteration": 2, "from": str(parent), "changed": {"lr": [0.0025, 0.0005]}}]
    branch.train(3, checkpoint_every=1, grid_every=100)
    assert json.loads((tmp_path / "b" / "log.json").read_text())["branches"] == branch.branches
    again = _tiny_trainer(tmp_path / "b", lr=0.0005)
    assert again.iteration == 3 and again.branches == branch.branches and again.opt_G.param_groups[0]["lr"] == 0.0005
    with pytest.raises(ValueError, match="other options"):   # its own folder: the options must match
        _tiny_trainer(tmp_path / "b")
    with pytest.raises(ValueError, match="may change only lr"):
        _tiny_trainer(tmp_path / "c", resume_from=parent, r1_gamma=2.0)


def test_pacgan_discriminator_judges_packs_of_consecutive_images(tmp_path):
    trainer = _tiny_trainer(tmp_path / "a", pack=2, augment=False)
    assert trainer.D.fromrgb.weight.shape[1] == 6
    images = torch.arange(4.0)[:, None, None, None].expand(4, 3, 16, 16)
    packed = trainer._d_input(images)
    assert packed.shape == (2, 6, 16, 16)
    assert packed[:, :, 0, 0].tolist() == [[0, 0, 0, 1, 1, 1], [2, 2, 2, 3, 3, 3]]
    before = [p.clone() for p in trainer.D.parameters()]
    trainer.train(2, checkpoint_every=2, grid_every=100)   # R1 runs at iteration 0 (r1_every=2)
    assert all(not torch.equal(p, q) for p, q in zip(before, trainer.D.parameters()))
    with pytest.raises(ValueError, match="other options"):
        _tiny_trainer(tmp_path / "a", pack=1, augment=False)
    with pytest.raises(ValueError, match="multiple of pack"):
        _tiny_trainer(tmp_path / "b", pack=3)


def test_anchors_are_fixed_by_the_seed_and_pull_the_generator_onto_their_images(tmp_path):
    options = dict(anchors=4, anchor_weight=100.0, anchor_resolution=4, anchor_warmup=20)
    trainer, again = _tiny_trainer(tmp_path / "a", **options), _tiny_trainer(tmp_path / "b", **options)
    assert torch.equal(trainer.anchor_z, again.anchor_z) and torch.equal(trainer.anchor_images, again.anchor_images)
    assert trainer.anchor_z.shape == (4, TINY.z_dim) and trainer.anchor_images.shape == (4, 3, 4, 4)

    def anchor_error():
        with torch.no_grad():
            redrawn = trainer.G.synthesis(trainer.G.mapping(trainer.anchor_z))[0]
        return (trainer._anchor_view(redrawn) - trainer.anchor_images).square().mean().item()

    start, d_start = anchor_error(), [p.clone() for p in trainer.D.parameters()]
    trainer.train(20, checkpoint_every=20, grid_every=100)   # the warm-up: G alone, on the anchors
    warmed = anchor_error()
    assert warmed < 0.5 * start and all(torch.equal(p, q) for p, q in zip(d_start, trainer.D.parameters()))
    trainer.train(30, checkpoint_every=10, grid_every=100)   # adversarial, the anchors still in G's loss
    assert not all(torch.equal(p, q) for p, q in zip(d_start, trainer.D.parameters()))
    assert anchor_error() < start and trainer.log[-1]["anchor"] > 0
    resumed = _tiny_trainer(tmp_path / "a", **options)   # the anchors are redrawn from the seed, not stored
    assert torch.equal(resumed.anchor_z, trainer.anchor_z) and resumed.iteration == 30
    with pytest.raises(ValueError, match="13 anchors"):
        _tiny_trainer(tmp_path / "c", anchors=13)


def test_runs_saved_before_an_option_existed_resume_with_its_default(tmp_path):
    _tiny_trainer(tmp_path).train(2, checkpoint_every=2, grid_every=100)
    state = torch.load(tmp_path / "training.pt", weights_only=True)
    del state["options"]["pack"], state["options"]["generator"]["conv_clamp"]  # as if both were added since
    torch.save(state, tmp_path / "training.pt")
    assert _tiny_trainer(tmp_path).iteration == 2


def test_generator_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    G = Generator(TINY)
    save_generator(G, tmp_path / "g.pt")
    loaded = load_generator(tmp_path / "g.pt")
    torch.testing.assert_close(sample_images(G, [5, 6]), sample_images(loaded, [5, 6]), rtol=0, atol=0)
    assert not np.allclose(sample_images(G, [5]).numpy(), sample_images(G, [6]).numpy())


def test_diff_augment_is_seeded_differentiable_and_translates_whole_pixels():
    from datasetgan.gan_training import diff_augment

    x = torch.zeros(4, 3, 16, 16)
    x[:, :, 7, 7] = 1.0
    a = diff_augment(x.clone().requires_grad_(True), torch.Generator().manual_seed(0))
    b = diff_augment(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(a.detach(), b)
    a.sum().backward()
    for img in b:  # the spike stays one pixel, moved by at most 16 / 8 = 2 pixels
        spike = (img[0] - img[0].median()).abs()
        y, x_ = divmod(int(spike.argmax()), 16)
        assert abs(y - 7) <= 2 and abs(x_ - 7) <= 2
