"""Where does Keras 3 lose time against Keras 2 on the same TensorFlow? One variant at a time.

Each variant trains the CV-net (segbench's model, loss and optimizer) on the same batches held
in memory as tensors, times every step with the device synchronised, and reports the median
of the timed steps (first step and warm-up dropped). Variants:

- keras3, keras2: `train_on_batch` under Keras 3 and under tf-keras (which wraps every call's
  batch in a tf.data iterator and waits for its threads when it is destroyed);
- keras2-step: tf-keras's `train_step` in a tf.function, no tf.data (segbench's `--keras 2`);
- keras2-step-unfused-bn: the same with BatchNormalization(fused=False), the unfused arithmetic
  Keras 3 uses on TensorFlow (Keras 2 picks the fused kernel for 4-D inputs);
- keras2-fit, keras3-fit: the same steps through `Model.fit` (the author's program uses fit),
  each batch timed by a callback.

    uv run python benchmarks/keras_generations.py --width 1 --batch-size 16 --steps 8 \\
        --out keras-generations.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from types import SimpleNamespace

from segbench.measure import backend

VARIANTS = (
    "keras3",
    "keras2",
    "keras2-step",
    "keras2-step-unfused-bn",
    "keras3-fit",
    "keras2-fit",
)


def _generation(variant: str):
    """(the variant's Keras generation, the module to build the model with)."""
    from segbench.measure.generation import load

    generation = load(2 if variant.startswith("keras2") else 3)
    if not variant.endswith("unfused-bn"):
        return generation, generation.keras
    layers = generation.keras.layers
    patched = SimpleNamespace(**{n: getattr(layers, n) for n in dir(layers) if n[0].isupper()})
    patched.BatchNormalization = lambda *a, **k: layers.BatchNormalization(*a, fused=False, **k)
    module = SimpleNamespace(
        layers=patched, Input=generation.keras.Input, Model=generation.keras.Model
    )
    return generation, module


def time_variant(variant: str, width: float, batch_size: int, warmup: int, steps: int) -> list:
    """Per-step ms of the timed steps of one variant."""
    import keras

    from segbench.benchmark.config import MOMENTUM
    from segbench.benchmark.cvnet import build_cvnet
    from segbench.benchmark.losses import loss_and_metrics
    from segbench.benchmark.triangles import ensure_data, load_split

    generation, build_with = _generation(variant)
    keras.utils.set_random_seed(42)
    generation.keras.backend.clear_session()
    total = 1 + warmup + steps
    train = load_split(ensure_data(None) / "train.csv")
    rows = [i % len(train) for i in range(total * batch_size)]
    model = build_cvnet(width, keras_module=build_with)
    loss, iou, dice = loss_and_metrics(generation.ops)
    model.compile(
        optimizer=generation.keras.optimizers.SGD(0.25, momentum=MOMENTUM, nesterov=True),
        loss=loss,
        metrics=[iou, dice],
        jit_compile=False,
    )
    if variant.endswith("-fit"):
        marks: list[int] = []

        class Timer(generation.keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                marks.append(time.perf_counter_ns())

            def on_train_batch_end(self, batch, logs=None):
                backend.synchronize()
                marks.append(time.perf_counter_ns())

        model.fit(
            *train.batch(rows),
            batch_size=batch_size,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[Timer()],
        )
        times = [(end - start) / 1e6 for start, end in zip(marks[::2], marks[1::2], strict=True)]
    else:
        batches = [
            tuple(
                backend.to_device(a)
                for a in train.batch(rows[i * batch_size : (i + 1) * batch_size])
            )
            for i in range(total)
        ]
        if "-step" in variant:
            import tensorflow as tf

            compiled = tf.function(model.train_step)
            step = lambda x, y: compiled((x, y))  # noqa: E731
        else:
            step = lambda x, y: model.train_on_batch(x, y, return_dict=True)  # noqa: E731
        times = []
        for x, y in batches:
            start = time.perf_counter_ns()
            logs = step(x, y)
            float(logs["loss"])
            backend.synchronize()
            times.append((time.perf_counter_ns() - start) / 1e6)
    return times[1 + warmup :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--out", help="write the per-step times as JSON")
    args = parser.parse_args()
    backend.select_backend("tensorflow")

    report = {}
    for variant in args.variants:
        try:
            ms = time_variant(variant, args.width, args.batch_size, args.warmup, args.steps)
        except Exception as e:  # noqa: BLE001 - report it and go on with the other variants
            print(f"{variant:24s} failed: {e.__class__.__name__}: {e}", flush=True)
            continue
        report[variant] = {"median_ms": statistics.median(ms), "ms": ms}
        print(f"{variant:24s} median {statistics.median(ms):9.1f} ms/step", flush=True)
    base = report.get("keras2", {}).get("median_ms")
    if base:
        for variant, figures in report.items():
            print(f"{variant:24s} {figures['median_ms'] / base:6.3f} × keras2")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "variants": report}, f, indent=2)


if __name__ == "__main__":
    main()
