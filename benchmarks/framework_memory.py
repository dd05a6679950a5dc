"""How much host memory TensorFlow's own CV-net training step needs on the CPU.

Apart from anything segbench holds: the floor under a run's peak RSS.

For each batch size, a fresh child process builds and compiles the benchmark's model exactly as
`segbench run` does (512×512, width 1 unless --width, the run's loss, metrics and SGD), with
TensorFlow's BFC allocator on the CPU (`TF_CPU_ALLOCATOR_USE_BFC=true`) so that TensorFlow
counts its own tensors, and runs 2 training steps on one in-memory batch. It prints, in GiB:

- *before*: the process's peak RSS before the first step (Python, TensorFlow, Keras, the model);
- *tensors*: the most bytes TensorFlow's allocator held at once (activations, gradients,
  weights, optimizer slots: `tf.config.experimental.get_memory_info("CPU:0")["peak"]`);
- *peak RSS*: the process's peak resident memory (getrusage);
- *outside*: peak RSS − before − tensors: memory neither counted by TensorFlow's allocator nor
  there before the step (oneDNN's own buffers, allocator rounding).

    uv run python benchmarks/framework_memory.py --batch-sizes 4 8 16
    uv run python benchmarks/framework_memory.py --batch-sizes 16 --precision mixed_bfloat16
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable

GIB = 1024**3


def child(batch: int, width: float, precision: str, batchnorm: str) -> None:
    """In the child: build, compile and step the model; print one JSON line of bytes."""
    import resource
    from dataclasses import replace

    import keras
    import numpy as np
    import tensorflow as tf

    from segbench.benchmark.config import PRESETS
    from segbench.measure.run.compilation import compile_model

    keras.mixed_precision.set_global_policy(precision)
    config = replace(PRESETS["quick"], batch_size=batch, width=width, batchnorm=batchnorm)
    model = compile_model(config, lr=0.01)
    rng = np.random.default_rng(0)
    x = rng.random((batch, config.image_size, config.image_size, 1), dtype=np.float32)
    y = (x > 0.5).astype(np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    for _ in range(2):
        model.train_on_batch(x, y)
    tensors = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"before": before, "tensors": tensors, "peak": peak}))


def main() -> None:
    from segbench.benchmark.config import PRECISIONS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=_positive(int), nargs="+", default=[4, 8, 16])
    parser.add_argument(
        "--width", type=_positive(float), default=1.0, help="1: the published model"
    )
    parser.add_argument("--precision", choices=PRECISIONS, default="float32")
    parser.add_argument("--batchnorm", choices=["keras", "fused"], default="keras")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.width, args.precision, args.batchnorm)
        return
    env = {
        **os.environ,
        "KERAS_BACKEND": "tensorflow",
        "TF_CPU_ALLOCATOR_USE_BFC": "true",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
    }
    setting = f"width {args.width:g}, 512×512, {args.precision}, {args.batchnorm} BN"
    print(f"TensorFlow on the CPU, {setting}")
    print(f"{'batch':>5} {'before':>8} {'tensors':>8} {'outside':>8} {'peak RSS':>9}  (GiB)")
    failed = False
    for batch in args.batch_sizes:
        command = [sys.executable, __file__, "--child", str(batch)]
        command += ["--width", str(args.width), "--precision", args.precision]
        command += ["--batchnorm", args.batchnorm]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            print(f"{batch:>5} failed (exit {done.returncode}): {last[:200]}")
            failed = True
            continue
        got = json.loads(done.stdout.strip().splitlines()[-1])
        outside = got["peak"] - got["before"] - got["tensors"]
        print(
            f"{batch:>5} {got['before'] / GIB:8.2f} {got['tensors'] / GIB:8.2f} "
            f"{outside / GIB:8.2f} {got['peak'] / GIB:9.2f}"
        )
    if failed:
        sys.exit(1)


def _positive(kind: type) -> Callable[[str], float]:
    """An argparse type: a number of `kind` greater than 0."""

    def parse(text: str) -> float:
        value = kind(text)
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{text}: give a number greater than 0")
        return value

    parse.__name__ = kind.__name__  # argparse's "invalid int value: 'x'"
    return parse


if __name__ == "__main__":
    main()
