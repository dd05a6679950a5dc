"""Does segbench's harness cost time? Compare its median step with a minimal Keras loop.

The minimal loop is what anyone would write by hand: the same model, loss and optimizer,
batches already in memory as tensors, `train_on_batch` in a loop, the device synchronised
after each step. With --telemetry, segbench's runner also runs with the telemetry sampler
reading its source ten times a second (the real one where this machine has one; else the
Linux sysfs reader over a tree of the same files written to a temporary folder, so the
sampler's thread and file reads are paid for). All are run alternately (A B C A B C …) in one
process so drift hits each.

    uv run python benchmarks/harness_overhead.py --width 0.25 --batch-size 16 --steps 20
    uv run python benchmarks/harness_overhead.py --width 0.25 --steps 20 --telemetry
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from segbench.measure import backend


def minimal_loop(width: float, batch_size: int, warmup: int, steps: int) -> list[float]:
    """Per-step ms of a hand-written train_on_batch loop (first step and warm-up dropped)."""
    import keras

    from segbench.benchmark.config import MOMENTUM
    from segbench.benchmark.cvnet import build_cvnet
    from segbench.benchmark.losses import dice, iou, iou_mse_loss
    from segbench.benchmark.triangles import ensure_data, load_split

    keras.utils.set_random_seed(42)
    train = load_split(ensure_data(None) / "train.csv")
    x, y = (keras.ops.convert_to_tensor(a) for a in train.batch(slice(0, batch_size)))
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


def sysfs_tree(root: Path) -> Path:
    """RAPL package and DRAM counters, two cores' cpufreq and a coretemp sensor under `root`,
    laid out as Linux lays them out under /sys."""
    files = {
        "class/powercap/intel-rapl:0/name": "package-0",
        "class/powercap/intel-rapl:0/energy_uj": "123456789",
        "class/powercap/intel-rapl:0/max_energy_range_uj": "262143328850",
        "class/powercap/intel-rapl:0:0/name": "dram",
        "class/powercap/intel-rapl:0:0/energy_uj": "2345678",
        "class/powercap/intel-rapl:0:0/max_energy_range_uj": "262143328850",
        "devices/system/cpu/cpu0/cpufreq/scaling_cur_freq": "2100000",
        "devices/system/cpu/cpu1/cpufreq/scaling_cur_freq": "2100000",
        "class/hwmon/hwmon0/name": "coretemp",
        "class/hwmon/hwmon0/temp1_input": "55000",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    return root


@contextlib.contextmanager
def telemetry_sampler(kind: str):
    """The sampler segbench run uses, reading this machine's source (or the sysfs stand-in)."""
    from segbench.measure.telemetry import Sampler, open_source
    from segbench.measure.telemetry.linux import LinuxCpu

    source, _ = open_source(kind)
    with tempfile.TemporaryDirectory() as folder:
        if source is None:
            source = LinuxCpu(sysfs_tree(Path(folder)))
        with Sampler(source) as sampler:
            yield sampler


def segbench_loop(
    width: float, batch_size: int, warmup: int, steps: int, telemetry: bool = False
) -> list[float]:
    """Per-step ms of the timed steps of segbench's own runner on the same configuration."""
    from segbench.benchmark.config import PRESETS
    from segbench.benchmark.triangles import ensure_data, load_dataset
    from segbench.measure.run.runner import TIMED, run_benchmark

    config = PRESETS["quick"].with_overrides(
        width=width, batch_size=batch_size, warmup=warmup, steps=steps
    )
    train, validation = load_dataset(ensure_data(None))
    device = backend.choose_device("auto")
    with telemetry_sampler(device.kind) if telemetry else contextlib.nullcontext() as sampler:
        m = run_benchmark(config, device, train, validation)
    if sampler is not None:
        print(
            f"  sampler: {len(sampler.readings)} readings of {sampler.source.name}, "
            f"{1000 * sampler.read_s / max(1, len(sampler.readings)):.3f} ms each"
        )
    return [s.ms for s in m.steps if s.phase == TIMED]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="A/B alternations")
    parser.add_argument("--backend", default="tensorflow")
    parser.add_argument(
        "--telemetry", action="store_true", help="also time segbench with the telemetry sampler"
    )
    args = parser.parse_args()
    backend.select_backend(args.backend)
    shape = (args.width, args.batch_size, args.warmup, args.steps)
    minimal, harness, sampled = [], [], []
    for _ in range(args.rounds):
        minimal += minimal_loop(*shape)
        harness += segbench_loop(*shape)
        if args.telemetry:
            sampled += segbench_loop(*shape, telemetry=True)
    a, b = statistics.median(minimal), statistics.median(harness)
    print(
        f"backend {backend.backend_name()}, device {backend.choose_device('auto').description}, "
        f"width {args.width}, batch {args.batch_size}, {len(minimal)} timed steps each"
    )
    print(f"minimal Keras loop: median {a:.2f} ms/step")
    print(f"segbench runner:    median {b:.2f} ms/step")
    print(f"segbench / minimal = {b / a:.4f} ({100 * (b / a - 1):+.2f} %)")
    if sampled:
        c = statistics.median(sampled)
        print(f"segbench + telemetry: median {c:.2f} ms/step")
        print(f"segbench + telemetry / minimal = {c / a:.4f} ({100 * (c / a - 1):+.2f} %)")


if __name__ == "__main__":
    main()
