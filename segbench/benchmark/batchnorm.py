"""BatchNormalization on the framework's fused kernel (--batchnorm keras|fused).

Keras 3's BatchNormalization is element-wise arithmetic on every backend: `ops.moments`, then
`ops.batch_normalization` (keras-core #225, never fixed). Its torch backend called the fused
`torch.nn.functional.batch_norm` in 3.0.0 and went back to element-wise arithmetic in 3.0.5
(keras #19102): its op took the batch statistics from `ops.moments` and had to pass them
detached, as running statistics, so no gradient reached the input through them.
Keras 2 (tf-keras) calls TensorFlow's fused kernel, one reason it trains CV-net faster.

`FusedBatchNormalization` is Keras's layer (weights, config, parameter count, moving
statistics, float32 arithmetic under mixed precision, the `training` flag) whose call runs:
- tensorflow: `tf.compat.v1.nn.fused_batch_norm` (FusedBatchNormV3, what Keras 2 runs), NHWC
  or, for channels_first (axis 1), NCHW;
- torch: `torch.nn.functional.batch_norm` in training mode (on a channels-last view of an NHWC
  tensor, or the NCHW tensor itself), so autograd differentiates through the batch statistics;
- any other backend (jax: XLA fuses Keras's arithmetic already), and any input the kernels do
  not take (not 4-D, axis neither last nor 1, a mask, synchronized=True, float64, epsilon below
  cuDNN's 1e-5): Keras's own call.
The default stays Keras's layer: the benchmark measures what a Keras user runs.

The backend-specific kernels live here and nowhere else.
"""

from __future__ import annotations

import keras

KINDS = ("keras", "fused")
_MIN_EPSILON = 1.001e-5  # cuDNN refuses epsilon below 1e-5 (CUDNN_BN_MIN_EPSILON)
_FUSED_DTYPES = ("float16", "bfloat16", "float32")  # computed in float32, as Keras's layer


def _tensorflow_kernel(x, gamma, beta, mean, variance, epsilon, training: bool, nchw: bool):
    """(output, batch mean, biased batch variance) from TensorFlow's FusedBatchNormV3."""
    import tensorflow as tf

    layout = "NCHW" if nchw else "NHWC"
    if not training:
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, mean, variance, epsilon=epsilon, is_training=False, data_format=layout
        )
        return y, None, None
    y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
        x, gamma, beta, epsilon=epsilon, is_training=True, data_format=layout
    )
    # The kernel normalises with the biased batch variance, as Keras does, but returns it
    # Bessel-corrected, × n/max(n−1, 1) for n = N·H·W values a channel, for its own moving
    # average. Keras averages the biased variance into its moving variance: undo the factor.
    n = tf.cast(tf.size(x) // tf.shape(x)[1 if nchw else -1], tf.float32)
    return y, mean, variance * (tf.maximum(n - 1.0, 1.0) / n)


def _torch_kernel(x, gamma, beta, mean, variance, epsilon, training: bool, nchw: bool):
    """(output, batch mean, biased batch variance) from torch's batch_norm."""
    import torch

    # torch takes NCHW: an NHWC tensor goes in as a channels-last NCHW view (no copy).
    layout = (lambda t: t) if nchw else (lambda t: t.permute(0, 2, 3, 1))
    x_nchw = x if nchw else x.permute(0, 3, 1, 2)
    if not training:
        y = torch.nn.functional.batch_norm(
            x_nchw, mean, variance, gamma, beta, training=False, eps=epsilon
        )
        return layout(y), None, None
    # Training mode normalises with the batch's own statistics and differentiates through
    # them (Keras 3.0.0 passed them in with training=False: no gradient through them).
    # Momentum 1 makes the running buffers this batch's mean and unbiased variance.
    batch_mean = torch.zeros_like(mean)
    batch_variance = torch.ones_like(variance)
    y = torch.nn.functional.batch_norm(
        x_nchw, batch_mean, batch_variance, gamma, beta, training=True, momentum=1.0, eps=epsilon
    )
    n = x.numel() // x_nchw.shape[1]
    # torch normalises with the biased variance and stores the unbiased one, × n/(n−1);
    # Keras averages the biased one into its moving variance: undo the factor.
    return layout(y), batch_mean, batch_variance * ((n - 1) / n)


_KERNELS = {"tensorflow": _tensorflow_kernel, "torch": _torch_kernel}


@keras.saving.register_keras_serializable(package="segbench")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """Keras's BatchNormalization computed by the backend's fused kernel where it has one."""

    def call(self, inputs, training=None, mask=None):
        kernel = _KERNELS.get(keras.backend.backend())
        if kernel is None or not self._fusable(inputs, mask, bool(training and self.trainable)):
            return super().call(inputs, training=training, mask=mask)
        # From here Keras's own call, with its two steps (moments, normalisation) in one kernel.
        x = keras.ops.cast(inputs, "float32")  # Keras's layer: float32 for 16-bit inputs
        moving_mean = keras.ops.cast(self.moving_mean, "float32")
        moving_variance = keras.ops.cast(self.moving_variance, "float32")
        nchw = self.axis == 1
        channels = x.shape[1 if nchw else -1]
        gamma = keras.ops.cast(self.gamma, "float32") if self.scale else keras.ops.ones(channels)
        beta = keras.ops.cast(self.beta, "float32") if self.center else keras.ops.zeros(channels)
        if training and self.trainable:
            y, mean, variance = kernel(
                x, gamma, beta, moving_mean, moving_variance, self.epsilon, True, nchw
            )
            self.moving_mean.assign(moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
        else:
            y, _, _ = kernel(
                x, gamma, beta, moving_mean, moving_variance, self.epsilon, False, nchw
            )
        return keras.ops.cast(y, self.compute_dtype)

    def _fusable(self, inputs, mask, training: bool) -> bool:
        """Whether the fused kernels take this call; otherwise Keras's own call runs."""
        shape = tuple(inputs.shape)
        if (
            mask is not None
            or self.synchronized
            or len(shape) != 4
            or self.axis not in (-1, 1, 3)
            or self.epsilon < _MIN_EPSILON
            or keras.backend.standardize_dtype(inputs.dtype) not in _FUSED_DTYPES
        ):
            return False
        # One value a channel: torch refuses to train on it; Keras's variance is 0.
        spatial = (shape[0], *shape[2:]) if self.axis == 1 else shape[:3]
        known = [d for d in spatial if d is not None]
        return not (training and len(known) == 3 and known[0] * known[1] * known[2] == 1)


def batch_normalization_layer(kind: str) -> type[keras.layers.BatchNormalization]:
    """The Keras 3 BatchNormalization class for `kind`: "keras" (Keras's) or "fused"."""
    if kind == "keras":
        return keras.layers.BatchNormalization
    if kind == "fused":
        return FusedBatchNormalization
    raise ValueError(f"batchnorm must be one of {', '.join(KINDS)}, got {kind!r}")
