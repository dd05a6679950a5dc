"""The published reference figures (benchmark §5), the only ones there are, with conditions."""

from __future__ import annotations

from dataclasses import dataclass

M1_GPU_MS_PER_IMAGE = 328.0
M1_GPU_LABEL = "Apple M1 GPU (8-core)"
PUBLISHED_KERAS = 2  # the author's program used tf.keras (Keras 2) in TensorFlow 2.6


@dataclass(frozen=True)
class Reference:
    """A published figure as a range of ms per image (low == high for a single value)."""

    label: str
    ms_per_image_low: float
    ms_per_image_high: float
    conditions: str
    estimate: bool = False


REFERENCES = (
    Reference(
        M1_GPU_LABEL,
        M1_GPU_MS_PER_IMAGE,
        M1_GPU_MS_PER_IMAGE,
        "published: macOS 12, TensorFlow 2.6 (Keras 2) + tensorflow-metal, 2 epochs, FP32",
    ),
    Reference(
        "Apple M1 CPU",
        2 * M1_GPU_MS_PER_IMAGE,
        2 * M1_GPU_MS_PER_IMAGE,
        "published: about 2× slower than the M1 GPU (TensorFlow 2.6, Keras 2)",
    ),
    Reference(
        "NVIDIA Quadro RTX 6000",
        M1_GPU_MS_PER_IMAGE / 20,
        M1_GPU_MS_PER_IMAGE / 10,
        "published: Windows, 10–20× faster than the M1 GPU (FP32 and AMP; Keras 2)",
    ),
    Reference(
        "Apple M1 Max GPU (32-core)",
        M1_GPU_MS_PER_IMAGE / 4,
        M1_GPU_MS_PER_IMAGE / 4,
        "author's estimate (M1 time ÷ 4), not a measurement",
        estimate=True,
    ),
)
