"""Result files: statistics of a measurement, the versioned JSON record, atomic writes."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from segbench import __version__
from segbench.runner import COMPILE, TIMED, TRAIN, WARMUP, Measurement, StepRecord

SCHEMA_VERSION = 1
IMAGES_PER_EXTRAPOLATION = 100_000


def summarize_ms(
    ms: list[float], batch_size: int, training_flops_per_image: float
) -> dict[str, Any]:
    """Statistics of per-step wall times (ms) and the throughput figures derived from the median."""
    if not ms:
        return {"steps": 0}
    arr = np.asarray(ms, dtype=float)
    median = float(np.median(arr))
    ms_per_image = median / batch_size
    return {
        "steps": len(ms),
        "median_ms": median,
        "mean_ms": float(arr.mean()),
        "stdev_ms": statistics.stdev(ms) if len(ms) > 1 else 0.0,
        "p10_ms": float(np.percentile(arr, 10)),
        "p90_ms": float(np.percentile(arr, 90)),
        "min_ms": float(arr.min()),
        "max_ms": float(arr.max()),
        "ms_per_image": ms_per_image,
        "images_per_s": 1000.0 / ms_per_image,
        "seconds_per_100k_images": ms_per_image * IMAGES_PER_EXTRAPOLATION / 1000.0,
        "tflops": training_flops_per_image * batch_size / (median / 1000.0) / 1e12,
    }


def timed_steps(measurement: Measurement) -> list[StepRecord]:
    """The steps the statistics are made of: timed steps, or full training batches in epochs."""
    batch = measurement.config.batch_size
    wanted = TRAIN if measurement.config.epochs > 0 else TIMED
    return [s for s in measurement.steps if s.phase == wanted and s.images == batch]


def summarize(measurement: Measurement) -> dict[str, Any]:
    """The summary block of a result file."""
    config = measurement.config
    timed = timed_steps(measurement)
    summary = summarize_ms(
        [s.ms for s in timed], config.batch_size, measurement.training_flops_per_image
    )
    summary["compile_ms"] = [s.ms for s in measurement.steps if s.phase == COMPILE]
    summary["warmup_ms"] = [s.ms for s in measurement.steps if s.phase == WARMUP]
    if measurement.epochs:
        per_image = [e.train_s * 1000 / e.train_images for e in measurement.epochs]
        summary["epoch_train_s"] = [e.train_s for e in measurement.epochs]
        summary["epoch_validation_s"] = [e.validation_s for e in measurement.epochs]
        summary["epoch_ms_per_image_median"] = float(np.median(per_image))
    repeats = sorted({s.repeat for s in timed})
    if len(repeats) > 1:
        summary["repeat_median_ms"] = [
            float(np.median([s.ms for s in timed if s.repeat == r])) for r in repeats
        ]
    return summary


def build_result(
    measurement: Measurement,
    environment: dict[str, Any],
    started_at: datetime,
    data: dict[str, Any],
    git_commit: str | None,
    doctor: list[dict[str, str]] | None = None,
    forced: bool = False,
) -> dict[str, Any]:
    """The complete, versioned record of one run; `forced` when it ran despite failed checks."""
    config = measurement.config
    training = [s for s in measurement.steps if s.training]
    return {
        "schema_version": SCHEMA_VERSION,
        "segbench_version": __version__,
        "git_commit": git_commit,
        "status": measurement.status,
        "forced": forced,
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": config.seed,
        "config": config.to_dict(),
        "model": {
            "name": "cvnet",
            "width": config.width,
            "parameters": measurement.parameters,
            "training_gflop_per_image": measurement.training_flops_per_image / 1e9,
        },
        "device": asdict(measurement.device),
        "data": data,
        "environment": environment,
        "doctor": doctor or [],
        "summary": summarize(measurement),
        "loss_trajectory": [s.loss for s in training],
        "iou_trajectory": [s.iou for s in training],
        "steps": [asdict(s) for s in measurement.steps],
        "epochs": [asdict(e) for e in measurement.epochs],
        "stage_s": measurement.stage_s,
    }


def result_filename(result: dict[str, Any]) -> str:
    """e.g. segbench-quick-gpu-20261126T101500Z.json"""
    stamp = datetime.fromisoformat(result["started_at"]).strftime("%Y%m%dT%H%M%SZ")
    return f"segbench-{result['config']['preset']}-{result['device']['kind']}-{stamp}.json"


def write_json_atomic(path: Path, document: dict[str, Any]) -> Path:
    """Write JSON so that `path` is either absent or complete, never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(document, f, indent=2, allow_nan=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes it private; a result is for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
