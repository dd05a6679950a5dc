"""Does segbench's harness cost time? Compare its median step with a minimal Keras loop.

The minimal loop is what anyone would write by hand: the same model, loss and optimizer,
batches already in memory as tensors, `train_on_batch` in a loop, the device synchronised
after each step. Both are run alternately (A B A B …) in one process so drift hits both.

    uv run python benchmarks/harness_overhead.py --width 0.25 --batch-size 16 --steps 20
"""

from __future__ import annotations

import argparse
import statistics
import time

from segbench import backend


def minimal_loop(width: float, batch_size: int, warmup: int, steps: int) -> list[float]:
    """Per-step ms of a hand-written train_on_batch loop (first step and warm-up dropped)."""
    import keras

    from segbench.config import MOMENTUM
    from segbench.cvnet import build_cvnet
    from segbench.losses import dice, iou, iou_mse_loss
    from segbench.triangles import ensure_data, load_split

    keras.utils.set_random_seed(42)
    train = load_split(ensure_data(None) / "train.csv")
    x = keras.ops.convert_to_tensor(train.x[:batch_size])
    y = keras.ops.convert_to_tensor(train.y[:batch_size])
    if backend.backend_name() == "tensorflow":
        import tensorflow as tf

        x, y = tf.identity(x), tf.identity(y)
    model = build_cvnet(width)
    model.compile(
        optimizer=keras.optimizers.SGD(0.25, momentum=MOMENTUM, nesterov=True),
        loss=iou_mse_loss,
        metrics=[iou, dice],
        jit_compile=False,
    )
    times = []
    for _ in range(1 + warmup + steps):
        start = time.perf_counter_ns()
        model.train_on_batch(x, y)
        backend.synchronize()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times[1 + warmup :]


def segbench_loop(width: float, batch_size: int, warmup: int, steps: int) -> list[float]:
    """Per-step ms of the timed steps of segbench's own runner on the same configuration."""
    from segbench.config import PRESETS
    from segbench.runner import TIMED, run_benchmark
    from segbench.triangles import ensure_data, load_dataset

    config = PRESETS["quick"].with_overrides(
        width=width, batch_size=batch_size, warmup=warmup, steps=steps
    )
    train, validation = load_dataset(ensure_data(None))
    m = run_benchmark(config, backend.choose_device("auto"), train, validation)
    return [s.ms for s in m.steps if s.phase == TIMED]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="A/B alternations")
    parser.add_argument("--backend", default="tensorflow")
    args = parser.parse_args()
    backend.select_backend(args.backend)
    shape = (args.width, args.batch_size, args.warmup, args.steps)
    minimal, harness = [], []
    for _ in range(args.rounds):
        minimal += minimal_loop(*shape)
        harness += segbench_loop(*shape)
    a, b = statistics.median(minimal), statistics.median(harness)
    print(
        f"backend {backend.backend_name()}, device {backend.choose_device('auto').description}, "
        f"width {args.width}, batch {args.batch_size}, {len(minimal)} timed steps each"
    )
    print(f"minimal Keras loop: median {a:.2f} ms/step")
    print(f"segbench runner:    median {b:.2f} ms/step")
    print(f"segbench / minimal = {b / a:.4f} ({100 * (b / a - 1):+.2f} %)")


if __name__ == "__main__":
    main()
