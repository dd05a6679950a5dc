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
    """Per-epoch training seconds, ms/batch and validation mean IoU from Train.py's output."""
    epochs: list[tuple[float, float]] = []
    for chunk in re.split(r"-{16} Epoch \d+/\d+ -{16}", text)[1:]:
        done = [m for m in EPOCH_LINE.finditer(chunk) if m.group(1) == m.group(2)]
        if done:
            epochs.append((float(done[-1].group(3)), float(done[-1].group(4))))
    val_iou = [float(v) for v in VAL_IOU.findall(text)]
    if not epochs:
        raise ValueError("no finished epoch found in Train.py's output")
    return {
        "epoch_train_s": [s for s, _ in epochs],
        "ms_per_batch": [b for _, b in epochs],
        "epoch_ms_per_image": [s * 1000 / TRAIN_IMAGES for s, _ in epochs],
        "val_iou": val_iou[: len(epochs)],
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
    """The same figures from segbench article results (training epochs, validation IoU)."""
    figures = []
    for path in paths:
        data = json.loads(path.read_text())
        epochs = data["epochs"]
        figures.append(
            {
                "file": str(path),
                "keras": data["config"].get("keras") or 3,
                "seed": data["seed"],
                "epoch_train_s": [e["train_s"] for e in epochs],
                "epoch_ms_per_image": [e["train_s"] * 1000 / e["train_images"] for e in epochs],
                "val_iou": [e["validation_iou"] for e in epochs],
            }
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", type=Path, required=True, help="checkout of the program")
    parser.add_argument("--python", default=sys.executable, help="interpreter with its env")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    parser.add_argument("--segbench", type=Path, nargs="*", default=[], help="article results")
    args = parser.parse_args()

    runs = []
    with tempfile.TemporaryDirectory(prefix="segbench-upstream-") as tmp:
        copy = prepare(args.upstream.resolve(), Path(tmp))
        for i in range(args.runs):
            log = (args.out.parent if args.out else Path(tmp)) / f"upstream-run{i + 1}.log"
            runs.append(run_once(args.python, copy, log))
            r = runs[-1]
            print(
                f"run {i + 1}: epochs {', '.join(f'{s:.1f} s' for s in r['epoch_train_s'])}; "
                f"val IoU {', '.join(f'{v:.3f}' for v in r['val_iou'])}",
                flush=True,
            )
    per_image = [v for r in runs for v in r["epoch_ms_per_image"]]
    report = {
        "program": "tkshirakawa/benchmark_TensorFlow_macOS Train.py (unmodified, MIT)",
        "environment": versions(args.python),
        "runs": runs,
        "epoch_ms_per_image_median": statistics.median(per_image),
        "segbench": segbench_figures(args.segbench),
    }
    print(f"upstream: {report['epoch_ms_per_image_median']:.1f} ms per training image (median)")
    for figure in report["segbench"]:
        ratio = (
            statistics.median(figure["epoch_ms_per_image"]) / report["epoch_ms_per_image_median"]
        )
        print(f"segbench Keras {figure['keras']}, seed {figure['seed']}: {ratio:.3f} × upstream")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
