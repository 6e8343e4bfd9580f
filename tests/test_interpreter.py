"""The Style Interpreter: the linear-first path against the official (naive) computation at the real StyleGAN1
feature layouts, training on tiny learnable data, the official rules (early stopping, small classes, vote, JS),
keypoint mode, and checkpoints."""
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from datasetgan.interpreter import (EarlyStopping, InterpreterConfig, PixelEnsemble, drop_small_classes,
                                    gaussian_heatmaps, image_score, js_divergence, load_ensemble, majority_vote,
                                    naive_member_outputs, predict, predict_naive, sample_pixels, save_ensemble,
                                    train_ensemble)
from datasetgan.linear_first import gather_features, member_outputs_in_strips
from datasetgan.stylegan1 import STYLEGAN1_PRESETS
from datasources.base import IGNORE

# Real channel layouts and resize factors; a band of label rows keeps the naive twin quick. The bands cover the
# top border (cat), the last rows of the car's 64:448 crop, and the bottom border (face, whose 1024 maps shrink).
BANDS = {"cat": (0, 6), "car": (442, 448), "face": (506, 512)}

# A small layout with every case: maps coarser than, equal to and finer than the 16 x 16 label grid.
SMALL_CHANNELS, SMALL_RESOLUTIONS = (6, 6, 4, 4, 3, 3, 2), (4, 4, 8, 8, 16, 16, 32)


def _random_ensemble(config: InterpreterConfig, seed: int = 0) -> PixelEnsemble:
    """Every weight random (scaled to keep activations near 1) and batch-norm statistics random, so that the
    folded batch norm is exercised."""
    torch.manual_seed(seed)
    ensemble = PixelEnsemble(config)
    with torch.no_grad():
        for module in ensemble.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.normal_(0, module.in_features ** -0.5)
                module.bias.normal_(0, 0.1)
            elif isinstance(module, torch.nn.BatchNorm1d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.3)
                module.running_var.uniform_(0.5, 2.0)
    return ensemble.eval()


def _stylegan1_features(name: str, batch: int = 1) -> list[torch.Tensor]:
    cfg = STYLEGAN1_PRESETS[name].config
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(batch, cfg.channels(r), r, r, generator=generator)
            for r in cfg.block_resolutions for _ in range(2)]


@pytest.mark.parametrize("name", list(BANDS))
def test_linear_first_matches_naive_at_stylegan1_settings(name):
    config = replace(InterpreterConfig.for_stylegan1(name, {"cat": 16, "car": 20, "face": 34}[name]),
                     crop_rows=BANDS[name], ensemble_size=3, strip_pixels=1024)  # strips of 2 or 4 rows
    features = _stylegan1_features(name)
    assert sum(f.shape[1] for f in features) == {"cat": 4992, "car": 5056, "face": 5088}[name]
    ensemble = _random_ensemble(config)
    naive = naive_member_outputs(ensemble, features, config)
    fast = torch.cat([out for _, _, out in member_outputs_in_strips(ensemble.folded(), features, config.grid,
                                                                    config.strip_pixels)], 1)
    assert fast.shape == naive.shape == (3, 6 * config.resolution, config.num_classes)
    assert naive.abs().max() > 1  # logits of a useful size
    torch.testing.assert_close(fast, naive, rtol=0, atol=1e-4)
    got = predict(ensemble, features, config)
    assert torch.equal(got.labels.flatten(), majority_vote(naive.argmax(-1), config.num_classes))
    torch.testing.assert_close(got.js.flatten(), js_divergence(naive), rtol=0, atol=1e-5)


@pytest.mark.parametrize("mode", ["segmentation", "keypoints"])
@pytest.mark.parametrize("crop_rows", [None, (3, 14)])
def test_linear_first_matches_naive_on_whole_small_grids(mode, crop_rows):
    config = InterpreterConfig(5, SMALL_CHANNELS, 16, crop_rows=crop_rows, mode=mode, ensemble_size=3,
                               strip_pixels=48)  # 3-row strips, the last one shorter
    generator = torch.Generator().manual_seed(2)
    features = [torch.randn(2, c, r, r, generator=generator) for c, r in zip(SMALL_CHANNELS, SMALL_RESOLUTIONS)]
    ensemble = _random_ensemble(config)
    got = predict(ensemble, features, config, keep_maps=True)
    want = predict_naive(ensemble, features, config, keep_maps=True)
    torch.testing.assert_close(got.maps, want.maps, rtol=0, atol=1e-6)
    if mode == "segmentation":
        assert got.labels.shape == (2, *config.grid.shape)
        assert torch.equal(got.labels, want.labels)
        torch.testing.assert_close(got.js, want.js, rtol=0, atol=1e-6)
        torch.testing.assert_close(got.score, want.score, rtol=0, atol=1e-6)
    else:
        assert got.labels is None and got.keypoints.shape == (2, 5, 2)
        assert torch.equal(got.keypoints, want.keypoints)


@pytest.mark.parametrize("name", list(BANDS))
@torch.no_grad()
def test_gathered_training_features_match_naive_resized_features(name):
    config = InterpreterConfig.for_stylegan1(name, 20)
    features = [f[0] for f in _stylegan1_features(name)]
    h, w = config.grid.shape
    labels = torch.zeros(h, w, dtype=torch.int64)
    labels[h // 3:h // 2, w // 4:w // 2] = 1
    pixels = sample_pixels([(labels.flatten() == c).nonzero()[:, 0] for c in (0, 1)], 300, 50,
                           torch.Generator().manual_seed(0))
    pixels = torch.cat([pixels, torch.tensor([0, w - 1, (h - 1) * w, h * w - 1])])  # the four corners
    ys, xs = pixels // w, pixels % w
    gathered = gather_features(features, ys, xs, config.grid)
    assert gathered.shape == (len(pixels), sum(config.feature_channels))
    start = 0
    for chunk in (chunk for f in features for chunk in f.split(8)):  # the whole (C, H, W) tensor would take 5 GB
        resized = F.interpolate(chunk[None], size=(config.resolution,) * 2, mode="bilinear", align_corners=False)[0]
        want = resized[:, config.grid.top:config.grid.bottom][:, ys, xs].T
        torch.testing.assert_close(gathered[:, start:start + len(chunk)], want, rtol=0, atol=2e-6)
        start += len(chunk)


def test_stylegan1_settings_give_the_official_label_grids():
    grids = {name: (InterpreterConfig.for_stylegan1(name, 20).grid.shape,
                    sum(InterpreterConfig.for_stylegan1(name, 20).feature_channels)) for name in BANDS}
    assert grids == {"cat": ((256, 256), 4992), "car": ((384, 512), 5056), "face": ((512, 512), 5088)}


def test_architecture_and_init_follow_the_class_count():
    for classes, widths in ((16, [(128, 300), (32, 128), (16, 32)]), (34, [(256, 300), (128, 256), (34, 128)])):
        config = InterpreterConfig(classes, (100, 200), 8)
        member = PixelEnsemble(config).members[0]
        member.reset(torch.Generator().manual_seed(0))
        linears = [layer for layer in member.layers if isinstance(layer, torch.nn.Linear)]
        assert [tuple(layer.weight.shape) for layer in linears] == widths
        assert [type(layer).__name__ for layer in member.layers] == [
            "Linear", "ReLU", "BatchNorm1d", "Linear", "ReLU", "BatchNorm1d", "Linear"]
        assert abs(linears[0].weight.std().item() - 0.02) < 0.001
        assert all(not layer.bias.any() for layer in linears)
        assert list(member.state_dict())[:2] == ["layers.0.weight", "layers.0.bias"]  # the official keys


def _learnable_data(count: int, seed: int, rarity: float = 0.0) -> tuple[list[list[torch.Tensor]], list[torch.Tensor]]:
    """Random native-resolution features and labels = argmax of a fixed linear map of the resized features
    (3 classes on a 16 x 16 grid); `rarity` lowers class 2's logit, making it rare."""
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(3, 12, generator=torch.Generator().manual_seed(99))
    features, labels = [], []
    for _ in range(count):
        maps = [torch.randn(4, r, r, generator=generator) for r in (4, 8, 16)]
        resized = torch.cat([F.interpolate(m[None], size=(16, 16), mode="bilinear", align_corners=False)[0]
                             for m in maps])
        logits = torch.einsum("kc,chw->khw", mixing, resized)
        logits[2] -= rarity
        features.append(maps)
        labels.append(logits.argmax(0))
    return features, labels


def test_training_reaches_high_pixel_accuracy():
    config = InterpreterConfig(3, (4, 4, 4), 16, ensemble_size=3, max_epochs=6, pixels_per_image=128,
                               min_samples_per_region=16)
    features, labels = _learnable_data(16, seed=0)
    ensemble = train_ensemble(iter(features), labels, config, progress=False)
    assert not ensemble.training
    test_features, test_labels = _learnable_data(4, seed=1)
    batched = [torch.stack(maps) for maps in zip(*test_features)]
    prediction = predict(ensemble, batched, config)
    accuracy = (prediction.labels == torch.stack(test_labels)).float().mean().item()
    assert accuracy > 0.9
    assert (prediction.js >= -1e-6).all()
    again = train_ensemble(features, labels, config, progress=False)  # same seed, same weights
    assert all(torch.equal(a, b) for a, b in zip(ensemble.state_dict().values(), again.state_dict().values()))


def test_class_weighting_finds_a_rare_class_the_unweighted_loss_misses():
    """Class 2 on 0.5% of the pixels (a toy car's head light: 0.23%): unweighted, the ensemble finds half of its
    pixels; weighted by frequency^-1/2 (datasources.classes.class_weights), nearly all."""
    features, labels = _learnable_data(16, seed=0, rarity=9.0)
    test_features, test_labels = _learnable_data(32, seed=1, rarity=9.0)
    rare = torch.stack(test_labels) == 2
    assert 0.003 < (torch.stack(labels) == 2).float().mean().item() < 0.008
    recall = {}
    for rule in ("none", "inverse_sqrt_frequency"):
        config = InterpreterConfig(3, (4, 4, 4), 16, ensemble_size=3, max_epochs=6, pixels_per_image=128,
                                   min_samples_per_region=16, class_weighting=rule)
        ensemble = train_ensemble(iter(features), labels, config, progress=False)
        prediction = predict(ensemble, [torch.stack(maps) for maps in zip(*test_features)], config).labels
        recall[rule] = ((prediction == 2) & rare).sum().item() / rare.sum().item()
    assert recall["inverse_sqrt_frequency"] > 0.85 and recall["none"] < 0.6
    with pytest.raises(ValueError, match="class_weighting 'focal'; valid: none, inverse_sqrt_frequency"):
        InterpreterConfig(3, (4,), 16, class_weighting="focal")


def test_keypoint_mode_finds_the_keypoints_and_their_visibility():
    """Two keypoints; one feature channel per keypoint carries a blob around it (at half resolution), the rest
    is noise: the ensemble must learn to read the blobs. Where the second keypoint is hidden (its blob absent,
    visible 0), its target is all zero, so the mean heatmap's peak tells visibility."""
    config = InterpreterConfig(2, (2, 3), 16, mode="keypoints", ensemble_size=2, max_epochs=15,
                               pixels_per_image=None, heatmap_sigma=1.5)
    generator = torch.Generator().manual_seed(0)

    def sample(hidden):
        kps = torch.cat([torch.randint(2, 14, (2, 2), generator=generator).float() + 0.5, torch.ones(2, 1)], 1)
        kps[1, 2] = 0.0 if hidden else 1.0
        centres = (torch.stack(torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="xy"), -1) + 0.5) * 2
        blobs = torch.exp(-(centres[None] - kps[:, None, None, :2]).square().sum(-1) / 8)  # (2, 8, 8)
        return [blobs * kps[:, 2, None, None], torch.randn(3, 16, 16, generator=generator) * 0.1], kps

    train = [sample(hidden=i % 3 == 0) for i in range(12)]
    ensemble = train_ensemble([f for f, _ in train], [k for _, k in train], config, progress=False)
    test = [sample(hidden=i == 2) for i in range(3)]
    batched = [torch.stack(maps) for maps in zip(*[f for f, _ in test])]
    prediction = predict(ensemble, batched, config)
    truth = torch.stack([k[:, :2] for _, k in test])
    assert prediction.keypoints.shape == (3, 2, 2) and prediction.peaks.shape == (3, 2)
    error = (prediction.keypoints - truth).abs()
    assert error[:2].max() <= 1.0 and error[2, 0].max() <= 1.0   # the hidden keypoint's location is not scored
    assert (prediction.peaks[:2] > 0.5).all() and prediction.peaks[2, 0] > 0.5 and prediction.peaks[2, 1] < 0.5


def test_gaussian_heatmaps_by_hand():
    keypoints = torch.tensor([[[1.5, 0.5, 1.0], [0.5, 0.5, 0.0]]])   # one image: a visible and a hidden keypoint
    maps = gaussian_heatmaps(keypoints, 2, 3, sigma=1.0)
    assert maps.shape == (1, 2, 2, 3)
    # pixel centres (0.5, 0.5), (1.5, 0.5), (2.5, 0.5) / (.., 1.5): squared distances 1, 0, 1 / 2, 1, 2
    e = math.exp
    torch.testing.assert_close(maps[0, 0], torch.tensor([[e(-0.5), 1.0, e(-0.5)], [e(-1.0), e(-0.5), e(-1.0)]]))
    assert (maps[0, 1] == 0).all()


def test_early_stopping_is_the_official_rule():
    stopping = EarlyStopping(start_epoch=4, patience=50)
    assert not any(stopping.step(epoch, 1.0) for epoch in range(4) for _ in range(100))  # epochs 0-3 never count
    assert not stopping.step(4, 1.0)  # the first counted loss is a new best
    assert not any(stopping.step(4, 1.0) for _ in range(50))  # 50 minibatches without a new best: go on
    assert not stopping.step(4, 0.5)  # a new best resets the count
    assert not any(stopping.step(5, 0.5) for _ in range(50))  # equal is not better
    assert stopping.step(5, 0.7)  # the 51st: stop


def test_classes_with_fewer_than_30_pixels_become_background():
    labels = torch.zeros(10, 10, dtype=torch.int64)
    labels.view(-1)[:29] = 1  # 29 pixels: dropped
    labels.view(-1)[29:59] = 2  # 30 pixels: kept
    labels.view(-1)[59:61] = IGNORE  # ignore stays
    out = drop_small_classes(labels, 30)
    assert out.view(-1)[:29].eq(0).all() and out.view(-1)[29:59].eq(2).all()
    assert out.view(-1)[59:61].eq(IGNORE).all() and out.view(-1)[61:].eq(0).all()


def test_the_small_class_rule_scales_with_label_area_and_the_fixed_official_rule_stays_an_option():
    # A hand-made 64x64 toy label map: a 3-pixel handle (class 8), a 1-pixel mirror (11), a 40-pixel door (7).
    labels = torch.zeros(64, 64, dtype=torch.int64)
    labels[10, 10:13] = 8
    labels[20, 20] = 11
    labels[30:35, 30:38] = 7
    scaled = InterpreterConfig(12, (4,), 64)
    assert scaled.small_class_pixels == pytest.approx(30 * 64 * 64 / (384 * 512))   # 0.625 pixels
    kept = drop_small_classes(labels, scaled.small_class_pixels)
    assert torch.equal(kept, labels)   # every part survives at 64x64
    fixed = InterpreterConfig(12, (4,), 64, small_class_rule="fixed")
    dropped = drop_small_classes(labels, fixed.small_class_pixels)
    assert set(dropped.unique().tolist()) == {0, 7}   # the official 30 pixels delete the handle and the mirror
    # at the official 384x512 car map (512 grid, rows 64:448) both rules are the official 30 pixels
    car = InterpreterConfig(12, (4,), 512, crop_rows=(64, 448))
    assert car.small_class_pixels == 30.0 == replace(car, small_class_rule="fixed").small_class_pixels
    for bad in ({"min_pixels": -1}, {"small_class_rule": "area"}):
        with pytest.raises(ValueError, match="small-class rule"):
            InterpreterConfig(12, (4,), 64, **bad)


def test_sampling_covers_every_region_within_the_budget():
    regions = [torch.arange(0, 1000), torch.arange(1000, 1005), torch.arange(1005, 1100)]
    picked = sample_pixels(regions, 100, 20, torch.Generator().manual_seed(0))
    assert torch.equal(picked, picked.unique())
    counts = [int(((picked >= r[0]) & (picked <= r[-1])).sum()) for r in regions]
    assert counts == [91, 5, 20]  # proportional share, at least the floor or the whole small region
    assert torch.equal(sample_pixels(regions, None, 20, torch.Generator()), torch.arange(1100))


def test_majority_vote_and_js_divergence_by_hand():
    votes = torch.tensor([[0, 1, 2, 0], [1, 1, 2, 2], [1, 0, 0, 1]])
    assert majority_vote(votes, 3).tolist() == [1, 1, 2, 0]  # last pixel: a three-way tie goes to the smallest
    p1, p2 = torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1])
    logits = torch.stack([p1.log(), p2.log()])[:, None]  # (M=2, N=1, K=2)
    h_mean = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))
    mean_h = (math.log(2) - (0.9 * math.log(0.9) + 0.1 * math.log(0.1))) / 2
    assert js_divergence(logits).item() == pytest.approx(h_mean - mean_h, abs=1e-6)  # 0.1018
    assert js_divergence(torch.stack([p2.log(), p2.log()])[:, None]).item() == pytest.approx(0, abs=1e-7)
    js = torch.arange(40.0).view(2, 4, 5)
    assert image_score(js).tolist() == [(19 + 18) / 2, (39 + 38) / 2]  # top 10% of 20 pixels: 2


def test_checkpoint_round_trip(tmp_path):
    config = InterpreterConfig(4, SMALL_CHANNELS, 16, crop_rows=(2, 10), ensemble_size=2)
    ensemble = _random_ensemble(config)
    save_ensemble(tmp_path / "interpreter.pt", ensemble, config)
    loaded, loaded_config = load_ensemble(tmp_path / "interpreter.pt")
    assert loaded_config == config and not loaded.training
    features = [torch.randn(1, c, r, r) for c, r in zip(SMALL_CHANNELS, SMALL_RESOLUTIONS)]
    assert torch.equal(predict(loaded, features, config).labels, predict(ensemble, features, config).labels)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        load_ensemble(tmp_path / "bad.pt")


def test_bad_inputs_fail_with_a_clear_message():
    config = InterpreterConfig(3, (4, 4), 8)
    ensemble = PixelEnsemble(config).eval()
    with pytest.raises(ValueError, match=r"features\[1\]: expected shape \(1, 4, 8, 8\), got \(1, 5, 8, 8\)"):
        predict(ensemble, [torch.randn(1, 4, 4, 4), torch.randn(1, 5, 8, 8)], config)
    with pytest.raises(ValueError, match="expected 2 feature maps, got 1"):
        predict(ensemble, [torch.randn(1, 4, 4, 4)], config)
    with pytest.raises(ValueError, match=r"labels\[0\]: values must be in \[0, 3\) or 255, got \[7\]"):
        train_ensemble([], [torch.full((8, 8), 7)], config, progress=False)
    with pytest.raises(ValueError, match="valid: segmentation, keypoints"):
        InterpreterConfig(3, (4,), 8, mode="depth")
