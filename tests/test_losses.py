import keras
import numpy as np
import pytest

from segbench.benchmark.losses import dice, iou, iou_mse_loss


def _eval(fn, t, p):
    return keras.ops.convert_to_numpy(fn(np.asarray(t, np.float32), np.asarray(p, np.float32)))


def _image(values):
    """A (1, h, w, 1) batch from a 2-D list."""
    return np.asarray(values, np.float32)[None, :, :, None]


T = _image([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
# Two of the four mask pixels found, plus two false positives at 0.5.
P = _image([[1, 0, 0.5, 0], [1, 0, 0.5, 0], [0, 0, 0, 0], [0, 0, 0, 0]])


def test_perfect_prediction_scores_one_and_costs_nothing():
    assert _eval(iou, T, T) == pytest.approx([1.0])
    assert _eval(dice, T, T) == pytest.approx([1.0])
    assert _eval(iou_mse_loss, T, T) == pytest.approx([0.0])


def test_empty_mask_weighs_nothing():
    empty = np.zeros_like(T)
    assert _eval(iou_mse_loss, empty, P) == pytest.approx([0.0])
    assert _eval(iou, empty, P) == pytest.approx([0.0])
    assert _eval(dice, empty, empty) == pytest.approx([0.0])


def test_partial_overlap_matches_hand_computation():
    # T = 4, P = 3, U = 4 + 0.5 + 0.5 = 5; overlap T + P − U = 2.
    # IoU = 2/5, Dice = 4/7, mse = (1 + 1 + 0.25 + 0.25)/5 = 0.5, loss = 0.5 + 1 − 0.16.
    assert _eval(iou, T, P) == pytest.approx([0.4])
    assert _eval(dice, T, P) == pytest.approx([4 / 7])
    assert _eval(iou_mse_loss, T, P) == pytest.approx([1.34])


def test_values_outside_unit_range_are_clipped():
    assert _eval(iou_mse_loss, T * 3, P * 1.0) == pytest.approx(_eval(iou_mse_loss, T, P))
    assert _eval(iou, T, np.clip(P * 5, -1, 5)) == pytest.approx(
        _eval(iou, T, np.clip(P * 5, 0, 1))
    )


def test_channels_are_weighted_by_mask_presence_and_images_kept_apart():
    # Channel 0 is the partial-overlap case; channel 1 has an empty mask and must not count.
    t = np.concatenate([T, np.zeros_like(T)], axis=-1)
    p = np.concatenate([P, np.ones_like(P)], axis=-1)
    assert _eval(iou_mse_loss, t, p) == pytest.approx([1.34])
    batch_t = np.concatenate([T, T])
    batch_p = np.concatenate([T, P])
    assert _eval(iou_mse_loss, batch_t, batch_p) == pytest.approx([0.0, 1.34])
    assert _eval(iou, batch_t, batch_p) == pytest.approx([1.0, 0.4])


def test_keras_2_loss_and_metrics_equal_keras_3s():
    """The loss written with TensorFlow's functions (Keras 2) computes what keras.ops computes."""
    from segbench.benchmark.losses import loss_and_metrics
    from segbench.measure.generation import load

    rng = np.random.default_rng(3)
    t = (rng.random((4, 32, 32, 1)) > 0.6).astype("float32")
    t[1] = 0.0  # an empty mask: weight 0
    p = rng.random((4, 32, 32, 1)).astype("float32")
    for k3, k2 in zip(loss_and_metrics(load(3).ops), loss_and_metrics(load(2).ops), strict=True):
        assert k2.__name__ == k3.__name__
        np.testing.assert_allclose(np.asarray(k2(t, p)), np.asarray(k3(t, p)), rtol=1e-6)
