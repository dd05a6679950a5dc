"""Comparison of result files from any machines: rows, speedups, comparability. Never prints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segbench.references import REFERENCES, Reference
from segbench.result import IMAGES_PER_EXTRAPOLATION, SCHEMA_VERSION

# Results that differ in these measure different work: refused unless --force.
MUST_MATCH = ("width", "image_size", "batch_size")
# Results that differ in these are comparable but not like for like: a warning.
SHOULD_MATCH = ("tensorflow", "precision", "backend")
PUBLISHED_GFLOP_PER_IMAGE = 129.3979104  # the published model (width 1)


class CompareError(ValueError):
    """A result file cannot be compared; the message names the file and the problem."""


@dataclass(frozen=True)
class Row:
    """One line of the comparison: a measured result or a published reference."""

    label: str
    kind: str  # "measured" | "published" | "estimate"
    backend: str
    precision: str
    ms_per_step: float | None
    p10_ms: float | None
    p90_ms: float | None
    ms_per_image: float  # for a published range: its middle
    ms_per_image_range: tuple[float, float]  # (fast, slow)
    tflops: float | None
    conditions: str
    speedup: tuple[float, float, float] = (1.0, 1.0, 1.0)  # (low, typical, high) vs baseline

    @property
    def images_per_s(self) -> float:
        return 1000.0 / self.ms_per_image

    @property
    def seconds_per_100k(self) -> float:
        return self.ms_per_image * IMAGES_PER_EXTRAPOLATION / 1000.0


def load_result(path: Path) -> dict[str, Any]:
    """A segbench result file, checked enough to compare; CompareError naming the problem."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise CompareError(f"{path}: cannot read ({e.__class__.__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CompareError(
            f"{path}: not valid JSON (truncated or corrupt at line {e.lineno})"
        ) from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise CompareError(f"{path}: not a segbench result (no schema_version)")
    version = data["schema_version"]
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise CompareError(
            f"{path}: schema_version {version} is newer than this segbench reads "
            f"({SCHEMA_VERSION}); upgrade segbench"
        )
    for key in ("config", "summary", "environment", "device", "model"):
        if not isinstance(data.get(key), dict):
            raise CompareError(f"{path}: not a segbench result (no {key!r} section)")
    if not data["summary"].get("steps"):
        raise CompareError(f"{path}: holds no timed step (the run was stopped before timing)")
    return data


def device_label(result: dict[str, Any]) -> str:
    """A readable name for the machine a result came from."""
    device = result["device"]
    if device["kind"] == "gpu":
        return device["description"]
    cpu = result["environment"]["cpu"]
    return f"CPU: {cpu['model']} × {cpu['logical_cores']}"


def measured_row(result: dict[str, Any]) -> Row:
    s = result["summary"]
    config = result["config"]
    per_image = s["ms_per_image"]
    batch = config["batch_size"]
    return Row(
        label=device_label(result),
        kind="measured",
        backend=result["environment"]["keras_backend"],
        precision=config["precision"],
        ms_per_step=s["median_ms"],
        p10_ms=s["p10_ms"],
        p90_ms=s["p90_ms"],
        ms_per_image=per_image,
        ms_per_image_range=(s["p10_ms"] / batch, s["p90_ms"] / batch),
        tflops=s["tflops"],
        conditions=", ".join(
            [config["preset"], _framework(result)]
            + (["interrupted"] if result.get("status") == "interrupted" else [])
            + (["forced"] if result.get("forced") else [])
        ),
    )


def _framework(result: dict[str, Any]) -> str:
    """e.g. "TensorFlow 2.19.1", or "torch 2.11.0, Keras 3.12.4" for another backend."""
    packages = result["environment"]["packages"]
    backend = result["environment"]["keras_backend"]
    if backend == "tensorflow":
        return f"TensorFlow {packages.get('tensorflow', '?')}"
    return f"{backend} {packages.get(backend, '?')}, Keras {packages.get('keras', '?')}"


def reference_row(ref: Reference) -> Row:
    middle = (ref.ms_per_image_low + ref.ms_per_image_high) / 2
    return Row(
        label=ref.label,
        kind="estimate" if ref.estimate else "published",
        backend="tensorflow",
        precision="float32",
        ms_per_step=None,
        p10_ms=None,
        p90_ms=None,
        ms_per_image=middle,
        ms_per_image_range=(ref.ms_per_image_low, ref.ms_per_image_high),
        tflops=PUBLISHED_GFLOP_PER_IMAGE / middle,
        conditions=ref.conditions,
    )


def with_speedup(row: Row, baseline: Row) -> Row:
    """`row` with its speedup over `baseline` (> 1: faster), low–high from both spreads."""
    fast, slow = row.ms_per_image_range
    base_fast, base_slow = baseline.ms_per_image_range
    typical = baseline.ms_per_image / row.ms_per_image
    low, high = base_fast / slow, base_slow / fast
    return Row(**{**row.__dict__, "speedup": (min(low, typical), typical, max(high, typical))})


def differences(results: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(fields that must match but differ, fields that should match but differ)."""

    def values(field: str) -> set[Any]:
        if field == "tensorflow":
            return {r["environment"]["packages"].get("tensorflow") for r in results}
        if field == "backend":
            return {r["environment"]["keras_backend"] for r in results}
        return {r["config"].get(field) for r in results}

    must = [f for f in MUST_MATCH if len(values(f)) > 1]
    should = [f for f in SHOULD_MATCH if len(values(f)) > 1]
    return must, should


def find_baseline(rows: list[Row], choice: str | None) -> int:
    """Index of the baseline row: a 1-based number, or a label (substring, case-insensitive)."""
    if choice is None:
        return 0
    if choice.isdigit():
        index = int(choice) - 1
        if not 0 <= index < len(rows):
            raise CompareError(f"--baseline {choice}: choose 1 to {len(rows)}")
        return index
    matches = [i for i, row in enumerate(rows) if choice.lower() in row.label.lower()]
    if len(matches) != 1:
        labels = "; ".join(row.label for row in rows)
        found = "no row" if not matches else f"{len(matches)} rows"
        raise CompareError(f"--baseline {choice!r}: {found} match (rows: {labels})")
    return matches[0]


@dataclass(frozen=True)
class Comparison:
    rows: list[Row]
    baseline: int
    forced_fields: list[str]
    warnings: list[str]


def compare(
    results: list[dict[str, Any]],
    baseline: str | None = None,
    references: bool = True,
    force: bool = False,
) -> Comparison:
    """Rows for the results (and references), with speedups over the baseline row."""
    must, should = differences(results)
    if must and not force:
        detail = ", ".join(
            f"{f} ({' vs '.join(sorted({str(r['config'].get(f)) for r in results}))})" for f in must
        )
        raise CompareError(f"results differ in {detail}: not comparable (--force compares anyway)")
    rows = [measured_row(r) for r in results]
    if references:
        rows += [reference_row(ref) for ref in REFERENCES]
    base = find_baseline(rows, baseline)
    rows = [row if i == base else with_speedup(row, rows[base]) for i, row in enumerate(rows)]
    warnings = []
    if should:
        warnings.append(
            "Results differ in " + ", ".join(should) + ": comparable work, but not like for like."
        )
    if references and any(
        r["config"]["width"] != 1 or r["config"]["batch_size"] != 16 for r in results
    ):
        warnings.append(
            "The published references are for width 1, batch 16; these results are not."
        )
    if must:
        warnings.append("Forced: results differ in " + ", ".join(must) + ".")
    return Comparison(rows, base, must, warnings)
