"""The 5-fold protocol on hand-computed folds and confusion matrices."""
import numpy as np
import pytest

from benchmark.protocol import cross_validate, fold_sums, folds


def test_folds_are_contiguous_in_sorted_order():
    assert [f.tolist() for f in folds(10, 5)] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert [len(f) for f in folds(12, 5)] == [3, 3, 2, 2, 2]
    assert np.concatenate(folds(250, 5)).tolist() == list(range(250))
    with pytest.raises(ValueError, match="cannot make 5 folds"):
        folds(3, 5)
    with pytest.raises(ValueError, match="at least 2 folds"):
        folds(10, 1)


def _conf(tp0, fn0, fp0, tp1):
    """2-class confusion: rows truth, columns prediction."""
    return np.array([[tp0, fn0], [fp0, tp1]])


def test_each_fold_selects_its_epoch_and_the_others_report():
    # 3 folds, 2 epochs. Fold 0 prefers epoch 1, folds 1 and 2 prefer epoch 0.
    per_fold = np.zeros((2, 3, 2, 2), np.int64)
    per_fold[0, 0] = _conf(1, 1, 1, 1)   # IoU 1/3, 1/3 -> 0.333
    per_fold[1, 0] = _conf(2, 0, 0, 2)   # perfect -> 1.0
    per_fold[0, 1] = _conf(3, 0, 0, 1)   # perfect
    per_fold[1, 1] = _conf(2, 1, 0, 1)   # c0 2/3, c1 1/2
    per_fold[0, 2] = _conf(2, 0, 0, 2)   # perfect
    per_fold[1, 2] = _conf(0, 2, 2, 0)   # zero
    result = cross_validate(per_fold)
    assert result.selected_checkpoints == (1, 0, 0)
    # fold 0 reports folds 1 + 2 at epoch 1: [[2,3],[2,1]] -> c0 2/(5+4-2), c1 1/(3+4-1)
    # fold 1 reports folds 0 + 2 at epoch 0: [[3,1],[1,3]] -> c0 3/5, c1 3/5
    # fold 2 reports folds 0 + 1 at epoch 0: [[4,1],[1,2]] -> c0 4/6, c1 2/4
    expected = [(2 / 7 + 1 / 6) / 2, 0.6, (4 / 6 + 0.5) / 2]
    np.testing.assert_allclose(result.scores, expected)
    assert result.mean == pytest.approx(np.mean(expected)) and result.std == pytest.approx(np.std(expected))


def test_fold_sums_add_each_folds_images():
    per_image = np.arange(2 * 4 * 2 * 2).reshape(2, 4, 2, 2)
    out = fold_sums(per_image, folds(4, 2))
    assert out.shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(out[1, 1], per_image[1, 2] + per_image[1, 3])


def test_conventions_differ_on_absent_classes():
    per_fold = np.zeros((1, 2, 3, 3), np.int64)
    per_fold[0, :, 0, 0] = 4
    per_fold[0, :, 1, 1] = 4   # class 2 absent everywhere
    assert cross_validate(per_fold, "official").mean == pytest.approx(2 / 3)
    assert cross_validate(per_fold, "mmseg").mean == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown mIoU convention"):
        cross_validate(per_fold, "nope")


def test_ties_go_to_the_earliest_epoch():
    per_fold = np.zeros((3, 2, 2, 2), np.int64)
    per_fold[:, :] = _conf(1, 0, 0, 1)
    assert cross_validate(per_fold).selected_checkpoints == (0, 0)
