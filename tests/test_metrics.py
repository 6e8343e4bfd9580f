"""mIoU against a confusion matrix computed by hand."""
import numpy as np
import pytest

from benchmark.metrics import confusion, iou_per_class, mean_iou


def test_confusion_and_miou_by_hand():
    truth = np.array([[0, 0, 1, 1], [0, 2, 2, 255]])
    pred = np.array([[0, 1, 1, 1], [0, 2, 0, 3]])
    m = confusion(pred, truth, 4)
    # truth 0: predicted 0,1,0 ; truth 1: 1,1 ; truth 2: 2,0 ; the 255 pixel is ignored.
    expected = np.array([[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(m, expected)
    # IoU: c0 = 2 / (3 + 3 - 2) = 0.5; c1 = 2 / (2 + 3 - 2) = 2/3; c2 = 1 / (2 + 1 - 1) = 0.5; c3 absent: NaN.
    np.testing.assert_allclose(iou_per_class(m)[:3], [0.5, 2 / 3, 0.5])
    assert np.isnan(iou_per_class(m)[3])
    assert mean_iou(m) == pytest.approx((0.5 + 2 / 3 + 0.5 + 0) / 4)
    assert mean_iou(m, "mmseg") == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)


def test_sums_over_the_set_not_means_over_images():
    a = confusion(np.array([1, 1]), np.array([1, 1]), 2)        # perfect on class 1
    b = confusion(np.array([0, 0, 0, 0]), np.array([1, 1, 1, 1]), 2)  # all of class 1 missed
    assert mean_iou(a + b) == pytest.approx((0 + 2 / 6) / 2)


def test_bad_input():
    with pytest.raises(ValueError, match="differ in shape"):
        confusion(np.zeros((2, 2)), np.zeros((2, 3)), 2)
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        confusion(np.full(3, 2), np.zeros(3), 2)
    with pytest.raises(ValueError, match="valid: official, mmseg"):
        mean_iou(np.eye(2), "voc")
