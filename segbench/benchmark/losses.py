"""Loss and metrics of benchmark §3, with keras.ops (every Keras backend runs them).

All work per image: sums over height and width with the channel axis kept, then a
channel average weighted by w = max(t), so an image whose mask is empty counts zero. Images
are (batch, height, width, channels), or (batch, channels, height, width) for channels_first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras


def loss_and_metrics(
    ops: Any, data_format: str = "channels_last"
) -> tuple[Callable, Callable, Callable]:
    """(loss, iou, dice) written with `ops`: keras.ops, or TensorFlow's functions of the same
    names under Keras 2 (generation.py), for images in `data_format`. The functions' names are
    the metric names logged."""
    axes = (1, 2) if data_format == "channels_last" else (2, 3)  # height and width

    def _safe_divide(num, den):
        """num / den, and 0 where den is 0."""
        nonzero = ops.not_equal(den, 0)
        return ops.where(
            nonzero, num / ops.where(nonzero, den, ops.ones_like(den)), ops.zeros_like(num)
        )

    def _terms(y_true, y_pred):
        """(T, P, U, w) of benchmark §3, each (batch, channels), computed in float32."""
        t = ops.clip(ops.cast(y_true, "float32"), 0.0, 1.0)
        p = ops.clip(ops.cast(y_pred, "float32"), 0.0, 1.0)
        u = ops.clip(t + p, 0.0, 1.0)
        return (
            ops.sum(t, axis=axes),
            ops.sum(p, axis=axes),
            ops.sum(u, axis=axes),
            ops.max(t, axis=axes),
            t,
            p,
        )

    def _weighted(values, w):
        """Channel average of `values` weighted by `w`, 0 where all weights are 0."""
        return _safe_divide(ops.sum(w * values, axis=-1), ops.sum(w, axis=-1))

    def iou(y_true, y_pred):
        """Per-image IoU = (T + P − U) / U, channels weighted by max(t)."""
        T, P, U, w, _, _ = _terms(y_true, y_pred)
        return _weighted(_safe_divide(T + P - U, U), w)

    def dice(y_true, y_pred):
        """Per-image Dice = 2 (T + P − U) / (T + P), channels weighted by max(t)."""
        T, P, U, w, _, _ = _terms(y_true, y_pred)
        return _weighted(_safe_divide(2.0 * (T + P - U), T + P), w)

    def iou_mse_loss(y_true, y_pred):
        """Per-image loss = Σ_c w (mse + 1 − IoU²) / Σ_c w with mse = Σ(p − t)² / U."""
        T, P, U, w, t, p = _terms(y_true, y_pred)
        score = _safe_divide(T + P - U, U)
        mse = _safe_divide(ops.sum(ops.square(p - t), axis=axes), U)
        return _weighted(mse + 1.0 - ops.square(score), w)

    return iou_mse_loss, iou, dice


# Keras 3, every backend: the functions compilation.py and the tests use by default.
iou_mse_loss, iou, dice = loss_and_metrics(keras.ops)
