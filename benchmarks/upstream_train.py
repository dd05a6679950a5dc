"""Run the author's own benchmark program, unmodified, and report it as segbench reports epochs.

The published figures come from tkshirakawa/benchmark_TensorFlow_macOS (`Train.py`, MIT
licence, Copyright (c) 2021 Takashi Shirakawa). This script does not ship or change that
program: point it at a checkout of the repository, and at a Python with its environment
(benchmarks/upstream-requirements.txt: TensorFlow 2.19.1, tf-keras, numpy < 2, opencv,
joblib). Each run copies the checkout to a temporary folder, unpacks the author's 600 images
(data/case_20211030), runs

    Train.py -n neural_networks/CV_net_Benchmark512.py -t data/dataset_training.csv
             -v data/dataset_validation.csv -o results --update_val_metrics_for_epoch

under TF_USE_LEGACY_KERAS=1, and reads the per-epoch lines it prints: training time and
ms/batch of each epoch, and the validation mean IoU after it. The segbench-comparable figure
is ms per training image of each epoch (epoch seconds × 1000 / 500 images), the same as
`summary.epoch_ms_per_image_median` of `segbench run --preset article`.

    uv venv /tmp/upstream-env -p 3.11
    VIRTUAL_ENV=/tmp/upstream-env uv pip install -r benchmarks/upstream-requirements.txt
    uv run python benchmarks/upstream_train.py --upstream PATH/TO/benchmark_TensorFlow_macOS \\
        --python /tmp/upstream-env/bin/python --runs 3 --out upstream.json \\
        --segbench results/segbench-article-*.json

`--from-log LOG…` reads saved Train.py logs instead of running it again. Each segbench
result is set against the program's batches with compare's statistics (speedup, its 95 % CI,
Mann–Whitney verdict; < 1: segbench is slower).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

TRAIN_IMAGES = 500
BATCH = 16
COMMAND = [
    "Train.py",
    "-n",
    "neural_networks/CV_net_Benchmark512.py",
    "-t",
    "data/dataset_training.csv",
    "-v",
    "data/dataset_validation.csv",
    "-o",
    "results",
    "--update_val_metrics_for_epoch",
]
# "\r32/32 [||||…] - 211.0 s, 6594 ms/batch : Loss …" (the last such line of an epoch)
EPOCH_LINE = re.compile(r"(\d+)/(\d+) \[[^\]]*\] - ([\d.]+) s, (\d+) ms/batch")
VAL_IOU = re.compile(r"\[Averaged\s+\]\s+mIoU ([\d.]+)")


def parse_output(text: str) -> dict:
    """Per-epoch training seconds, ms/batch and validation mean IoU from Train.py's output,
    and the time of each batch (the differences of its running epoch clock, 0.1 s steps).

    `step_ms` holds the batches segbench's summary is made of: full batches of 16, without
    the first batch of the first epoch (it includes building the graph, as segbench's
    compile step does)."""
    epochs: list[tuple[float, float]] = []
    batches: list[list[float]] = []
    for chunk in re.split(r"-{16} Epoch \d+/\d+ -{16}", text)[1:]:
        lines = list(EPOCH_LINE.finditer(chunk))
        done = [m for m in lines if m.group(1) == m.group(2)]
        if not done:
            continue
        epochs.append((float(done[-1].group(3)), float(done[-1].group(4))))
        clock = {int(m.group(1)): float(m.group(3)) for m in lines}  # batch → seconds so far
        complete = sorted(clock) == list(range(1, int(done[-1].group(2)) + 1))
        batches.append(
            [round(1000.0 * (clock[n] - clock.get(n - 1, 0.0)), 1) for n in sorted(clock)]
            if complete
            else []  # a batch line is missing: no per-batch times for this epoch
        )
    val_iou = [float(v) for v in VAL_IOU.findall(text)]
    if not epochs:
        raise ValueError("no finished epoch found in Train.py's output")
    full = TRAIN_IMAGES // BATCH  # batches of 16; the last one holds the 4 images left over
    step_ms = [ms for i, epoch in enumerate(batches) for ms in epoch[(i == 0) : full]]
    return {
        "epoch_train_s": [s for s, _ in epochs],
        "ms_per_batch": [b for _, b in epochs],
        "epoch_ms_per_image": [s * 1000 / TRAIN_IMAGES for s, _ in epochs],
        "val_iou": val_iou[: len(epochs)],
        "batch_ms": batches,
        "step_ms": step_ms,
    }


def prepare(upstream: Path, work: Path) -> Path:
    """A private copy of the checkout with the author's images unpacked where the CSVs expect."""
    train = upstream / "Train.py"
    if not train.is_file() or "MIT license" not in train.read_text(errors="replace"):
        sys.exit(f"--upstream {upstream}: no Train.py under the MIT licence header found there")
    copy = work / "upstream"
    shutil.copytree(upstream, copy, ignore=shutil.ignore_patterns(".git", "results"))
    case = copy / "data" / "case_20211030"
    for name in ("x", "y"):
        with zipfile.ZipFile(case / f"{name}.zip") as archive:
            archive.extractall(case)
    if not (case / "x" / "0001.png").is_file():
        sys.exit(f"{case}: x.zip did not unpack to x/0001.png")
    return copy


def run_once(python: str, copy: Path, log: Path) -> dict:
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    done = subprocess.run(
        [python, *COMMAND], cwd=copy, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    log.write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    if done.returncode != 0:
        sys.exit(f"Train.py exited {done.returncode}; its output is in {log}")
    return {**parse_output(done.stdout), "wall_s": wall, "log": str(log)}


def versions(python: str) -> dict:
    code = (
        "import json, platform, numpy, tensorflow as tf, tf_keras; print(json.dumps({"
        "'python': platform.python_version(), 'tensorflow': tf.__version__, "
        "'tf-keras': tf_keras.__version__, 'numpy': numpy.__version__}))"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def segbench_figures(paths: list[Path]) -> list[dict]:
    """The same figures from segbench article results (training epochs, validation IoU, the
    timed steps)."""
    from segbench.results.result import load_result
    from segbench.results.stats import timed_steps

    figures = []
    for path in paths:
        result = load_result(path)
        epochs = result.epochs
        figures.append(
            {
                "file": str(path),
                "keras": result.config.keras_generation,
                "seed": result.seed,
                "epoch_train_s": [e.train_s for e in epochs],
                "epoch_ms_per_image": [e.train_s * 1000 / e.train_images for e in epochs],
                "val_iou": [e.validation_iou for e in epochs],
                "step_ms": [s.ms for s in timed_steps(result.config, result.steps)],
            }
        )
    return figures


def against_upstream(upstream_ms: list[float], figures: list[dict]) -> list[dict]:
    """Each segbench run's steps against all of the program's, with compare's statistics:
    the speedup (< 1: segbench slower), its 95 % CI and the verdict."""
    from segbench.results.stats import difference

    rows = []
    for figure in figures:
        found = difference(upstream_ms, figure["step_ms"])
        rows.append(
            {
                "file": figure["file"],
                "keras": figure["keras"],
                "seed": figure["seed"],
                "median_step_ms": statistics.median(figure["step_ms"]),
                "speedup": found.speedup,
                "speedup_ci95": found.ci95,
                "p_value": found.p_value,
                "verdict": found.verdict,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", type=Path, required=True, help="checkout of the program")
    parser.add_argument("--python", default=sys.executable, help="interpreter with its env")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    parser.add_argument("--segbench", type=Path, nargs="*", default=[], help="article results")
    parser.add_argument(
        "--from-log",
        type=Path,
        nargs="*",
        default=[],
        help="read these saved Train.py logs instead of running it (--upstream then unused)",
    )
    args = parser.parse_args()

    runs = [{**parse_output(log.read_text()), "log": str(log)} for log in args.from_log]
    if not args.from_log:
        with tempfile.TemporaryDirectory(prefix="segbench-upstream-") as tmp:
            copy = prepare(args.upstream.resolve(), Path(tmp))
            stem = args.out.stem if args.out else "upstream"
            for i in range(args.runs):
                log = (args.out.parent if args.out else Path(tmp)) / f"{stem}-run{i + 1}.log"
                runs.append(run_once(args.python, copy, log))
    for i, r in enumerate(runs, start=1):
        print(
            f"run {i}: epochs {', '.join(f'{s:.1f} s' for s in r['epoch_train_s'])}; "
            f"median batch {statistics.median(r['step_ms']) / 1000:.2f} s; "
            f"val IoU {', '.join(f'{v:.3f}' for v in r['val_iou'])}",
            flush=True,
        )
    per_image = [v for r in runs for v in r["epoch_ms_per_image"]]
    upstream_ms = [ms for r in runs for ms in r["step_ms"]]
    figures = segbench_figures(args.segbench)
    report = {
        "program": "tkshirakawa/benchmark_TensorFlow_macOS Train.py (unmodified, MIT)",
        "environment": versions(args.python),
        "runs": runs,
        "epoch_ms_per_image_median": statistics.median(per_image),
        "median_step_ms": statistics.median(upstream_ms),
        "segbench": figures,
        "segbench_against_upstream": against_upstream(upstream_ms, figures),
    }
    print(
        f"upstream: {report['epoch_ms_per_image_median']:.1f} ms per training image (median "
        f"epoch), {report['median_step_ms'] / 1000:.2f} s per batch (median of {len(upstream_ms)})"
    )
    for row in report["segbench_against_upstream"]:
        low, high = row["speedup_ci95"] or (row["speedup"], row["speedup"])
        print(
            f"segbench Keras {row['keras']}, seed {row['seed']}: median batch "
            f"{row['median_step_ms'] / 1000:.2f} s, speedup {row['speedup']:.3f}× "
            f"(95 % CI {low:.3f}–{high:.3f}) over the program: {row['verdict']}"
        )
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
