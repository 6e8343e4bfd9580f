"""Keypoint metrics (heatmap argmax, PCK, L2 heatmap loss) and their k-fold protocol, against hand-computed cases."""
import numpy as np
import pytest
import torch

from benchmark.metrics import heatmap_argmax, heatmap_l2, pck, pck_counts
from benchmark.protocol import cross_validate_keypoints, fold_sums, folds, keypoint_counts, selection_threshold
from datasetgan.interpreter import gaussian_heatmaps


def test_heatmap_argmax_is_the_centre_of_the_highest_pixel():
    maps = np.zeros((1, 2, 3, 4))
    maps[0, 0, 2, 1] = 5.0          # row 2, column 1 -> (1.5, 2.5)
    maps[0, 1, 0, 3] = maps[0, 1, 1, 0] = 1.0   # a tie: the first in row-major order, (3.5, 0.5)
    np.testing.assert_array_equal(heatmap_argmax(maps), [[[1.5, 2.5], [3.5, 0.5]]])


def test_pck_by_hand():
    truth = np.array([[[10.0, 10.0, 1], [20.0, 20.0, 1], [5.0, 5.0, 0]]])
    predicted = np.array([[[10.5, 10.0], [21.5, 22.0], [5.0, 5.0]]])
    # box side 20: thresholds 15, 10, 5 percent allow distances 3, 2, 1.
    # keypoint 0 is off by 0.5 (correct at all three), keypoint 1 by 2.5 (only at 15), keypoint 2 is hidden.
    counts = pck_counts(predicted, truth, np.array([20.0]), (15, 10, 5))
    np.testing.assert_array_equal(counts, [[2, 2, 1, 1]])
    np.testing.assert_allclose(pck(counts.sum(0)), [1.0, 0.5, 0.5])
    assert np.isnan(pck(np.array([0, 0]))).all()   # nothing visible: undefined, not 0


def test_pck_scales_with_each_images_box():
    truth = np.array([[[0.0, 0.0, 1]], [[0.0, 0.0, 1]]])
    predicted = np.array([[[3.0, 4.0]], [[3.0, 4.0]]])   # both off by 5
    np.testing.assert_array_equal(pck_counts(predicted, truth, np.array([50.0, 40.0]), (10,)), [[1, 1], [1, 0]])


def test_heatmap_l2_is_the_mean_squared_error_of_each_map():
    predicted = np.zeros((1, 2, 2, 2))
    target = np.stack([np.ones((2, 2)), np.array([[2.0, 0], [0, 0]])])[None]
    np.testing.assert_allclose(heatmap_l2(predicted, target), [[1.0, 1.0]])   # (4 * 1) / 4 and 4 / 4
    with pytest.raises(ValueError, match="differ in shape"):
        heatmap_l2(predicted, target[..., :1])


def test_a_perfect_heatmap_scores_zero_loss_and_full_pck():
    truth = torch.tensor([[[3.5, 2.5, 1.0], [1.5, 6.5, 1.0], [0.5, 0.5, 0.0]]], dtype=torch.float64)
    maps = gaussian_heatmaps(truth, 8, 8, 1.0).numpy()
    np.testing.assert_array_equal(heatmap_argmax(maps)[0, :2], truth[0, :2, :2].numpy())
    assert (heatmap_l2(maps, maps) == 0).all()


def test_keypoint_cross_validation_selects_by_pck_at_the_middle_threshold_not_by_l2():
    # 4 test images with one visible keypoint each at (50, 50), box 100; 3 checkpoints, folds [0, 1] and [2, 3].
    # Checkpoint 0 outputs nothing (argmax in the corner) with the lowest L2, as all-zero heatmaps do; 1 and 2
    # each place one fold's keypoints exactly and the other fold's 12 pixels off (inside 15%, outside 10%).
    truth = np.tile([[[50.0, 50.0, 1.0]]], (4, 1, 1))
    per_image = np.zeros((3, 4, 1, 3))
    per_image[..., :2] = 50.0
    per_image[0, :, 0] = [0.5, 0.5, 0.1]
    per_image[1, 2:, 0, 0] = 62.0
    per_image[1, :, 0, 2] = 0.3
    per_image[2, :2, 0, 0] = 62.0
    per_image[2, :, 0, 2] = 0.2
    counts = keypoint_counts(per_image, truth, np.full(4, 100.0), (15, 10, 5))
    assert counts.shape == (3, 4, 6)
    np.testing.assert_allclose(counts[1, 2], [1, 1, 0, 0, 0.3, 1])
    result = cross_validate_keypoints(fold_sums(counts, folds(4, 2)), (15, 10, 5))
    assert list(result) == ["l2", "pck@15", "pck@10", "pck@5"]
    assert selection_threshold((15, 10, 5)) == 10
    # fold 0 picks checkpoint 1 (its PCK@10 is 1 there) and reports fold 1 there, 12 px off; fold 1 picks 2.
    # Selecting by L2 would have picked checkpoint 0 for both, PCK 0.
    assert result["l2"].selected_checkpoints == (1, 2) == result["pck@10"].selected_checkpoints
    np.testing.assert_allclose(result["l2"].scores, [0.3, 0.2])
    np.testing.assert_allclose(result["pck@15"].scores, [1.0, 1.0])
    np.testing.assert_allclose(result["pck@10"].scores, [0.0, 0.0])
