"""Well-known models that `--model NAME` builds, and the training throughputs other tools
have published for them.

Those figures come from other programs (other frameworks, data pipelines, model variants,
precisions and clocks): each is labelled with its source and conditions and flagged as
"other tool, other method". They place a result, they are not a like-for-like comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RESNET50_IMAGE_SIZE = 224
RESNET50_CLASSES = 1000
RESNET50_PARAMETERS = 25_636_712  # keras.applications.ResNet50(weights=None), 224², 1000 classes

# --model NAME → the function in this module that builds it.
REFERENCE_MODELS = {"resnet50": "resnet50"}


def resnet50(image_size: int = RESNET50_IMAGE_SIZE, classes: int = RESNET50_CLASSES) -> Any:
    """keras.applications.ResNet50 without weights (v1: the stride is in each stage's first
    1×1 convolution), softmax over `classes`, with categorical cross-entropy."""
    import keras

    model = keras.applications.ResNet50(
        weights=None,
        input_shape=(image_size, image_size, 3),
        classes=classes,
        classifier_activation="softmax",
    )
    return model, keras.losses.CategoricalCrossentropy()


@dataclass(frozen=True)
class PublishedThroughput:
    """A training throughput another tool published, with what it measured.

    `images_per_second` is the source's figure, or derived from it as `derived` says;
    `clock` is what the source's timing included; `model` the variant it trained.
    """

    device: str
    images_per_second: float
    framework: str
    precision: str
    batch_size: int | None
    model: str
    clock: str
    source: str
    derived: str = ""
    other_method: bool = True  # other tool, other method: never a like-for-like comparison


_TLKH = "https://github.com/tlkh/tf-metal-experiments"
_TLKH_CLOCK = (
    "model.fit over 3 epochs × 30 steps after a warm-up epoch, on one synthetic in-memory "
    "batch repeated (train_benchmark.py, model_library.py), a W&B callback attached"
)
_TLKH_MODEL = "keras.applications ResNet50 (include_top=False) + GAP + Dense(8), 224²×3"
_LAMBDA = "https://github.com/lambdal/deeplearning-benchmark"
_LAMBDA_CLOCK = (
    "NVIDIA DeepLearningExamples' own throughput over 100 profiled steps, synthetic data, "
    "training only (pytorch/scripts/config_v1), NGC PyTorch container"
)
_LAMBDA_MODEL = "NVIDIA DeepLearningExamples ResNet-50 v1.5 (PyTorch), 224²×3, 1000 classes"
_LAMBDA_FP32 = f"{_LAMBDA}/blob/master/pytorch/pytorch-train-throughput-fp32.csv"
_LAMBDA_FP16 = f"{_LAMBDA}/blob/master/pytorch/pytorch-train-throughput-fp16.csv"
_BOURKE = "https://github.com/mrdbourke/mac-ml-speed-test"
_BOURKE_CLOCK = (
    "whole model.fit of 3 epochs over Food-101's training split through a tf.data pipeline "
    "(decode, resize, shuffle), first-epoch tracing included (tensorflow_test_computer_"
    "vision_food101.py), average seconds per epoch"
)
_BOURKE_MODEL = "keras.applications ResNet50 (weights=None), 224²×3, 101 classes, Adam"
_BOURKE_DERIVED = (
    "75,750 training images (101 classes × 750) ÷ {:.1f} s per epoch, the average the "
    "source's CSV gives"
)


def _bourke(device: str, seconds_per_epoch: float, machine: str) -> PublishedThroughput:
    return PublishedThroughput(
        device=device,
        images_per_second=round(75_750 / seconds_per_epoch, 1),
        framework="TensorFlow + tensorflow-metal (Keras)"
        if device.startswith("Apple")
        else "TensorFlow (Keras), CUDA",
        precision="FP32",
        batch_size=128,
        model=_BOURKE_MODEL,
        clock=_BOURKE_CLOCK,
        source=f"{_BOURKE}/blob/main/results/results_tensorflow_cv/"
        f"{machine}_FOOD101_ResNet50_224_tensorflow_results.csv",
        derived=_BOURKE_DERIVED.format(seconds_per_epoch),
    )


RESNET50_PUBLISHED = (
    PublishedThroughput(
        "Apple M1 Max GPU (32-core)",
        140.0,
        "TensorFlow + tensorflow-metal (Keras)",
        "FP32",
        128,
        _TLKH_MODEL,
        _TLKH_CLOCK,
        f"{_TLKH}#readme",
    ),
    PublishedThroughput(
        "Apple M1 Pro GPU (16-core)",
        72.8,
        "TensorFlow + tensorflow-metal (Keras)",
        "FP32",
        64,
        _TLKH_MODEL,
        _TLKH_CLOCK,
        f"{_TLKH}#readme",
    ),
    PublishedThroughput(
        "Apple M1 Pro GPU (16-core)",
        55.8,
        "TensorFlow + tensorflow-metal (Keras)",
        "FP32",
        128,
        _TLKH_MODEL,
        _TLKH_CLOCK,
        f"{_TLKH}#readme",
    ),
    PublishedThroughput(
        "NVIDIA GeForce RTX 3090 (400 W limit)",
        1100.0,
        "TensorFlow (Keras) with XLA",
        "mixed FP16",
        128,
        _TLKH_MODEL,
        _TLKH_CLOCK + "; 100 steps per epoch on the 3090",
        f"{_TLKH}#readme",
    ),
    PublishedThroughput(
        "NVIDIA GeForce RTX 3090 (400 W limit)",
        1185.0,
        "TensorFlow (Keras) with XLA",
        "mixed FP16",
        256,
        _TLKH_MODEL,
        _TLKH_CLOCK + "; 100 steps per epoch on the 3090",
        f"{_TLKH}#readme",
    ),
    PublishedThroughput(
        "NVIDIA GeForce RTX 4090",
        721.0,
        "PyTorch",
        "FP32 (TF32)",
        224,
        _LAMBDA_MODEL,
        _LAMBDA_CLOCK,
        _LAMBDA_FP32,
    ),
    PublishedThroughput(
        "NVIDIA GeForce RTX 4090",
        1301.0,
        "PyTorch",
        "AMP (FP16)",
        448,
        _LAMBDA_MODEL,
        _LAMBDA_CLOCK,
        _LAMBDA_FP16,
    ),
    PublishedThroughput(
        "NVIDIA A100 80GB SXM4",
        1066.0,
        "PyTorch",
        "FP32 (TF32)",
        640,
        _LAMBDA_MODEL,
        _LAMBDA_CLOCK,
        _LAMBDA_FP32,
    ),
    PublishedThroughput(
        "NVIDIA A100 80GB SXM4",
        1582.0,
        "PyTorch",
        "AMP (FP16)",
        1280,
        _LAMBDA_MODEL,
        _LAMBDA_CLOCK,
        _LAMBDA_FP16,
    ),
    PublishedThroughput(
        "NVIDIA H100 80GB SXM5",
        1753.0,
        "PyTorch",
        "FP32 (TF32)",
        None,
        _LAMBDA_MODEL,
        _LAMBDA_CLOCK,
        _LAMBDA_FP32,
    ),
    PublishedThroughput(
        "NVIDIA H100 80GB SXM5",
        2616.0,
        "PyTorch",
        "AMP (FP16)",
        None,
        _LAMBDA_MODEL,
        _LAMBDA_CLOCK,
        _LAMBDA_FP16,
    ),
    _bourke("Apple M3 Max GPU", 646.8598695833352, "Apple_M3_Max"),
    _bourke("Apple M1 Pro GPU", 926.6391786109986, "Apple_M1_Pro"),
    _bourke("NVIDIA TITAN RTX", 313.0237473415521, "NVIDIA_TITAN_RTX"),
)

PUBLISHED = {"resnet50": RESNET50_PUBLISHED}
