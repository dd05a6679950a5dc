"""Comparison of results from any machines: rows, speedups, comparability, and the caveats
that make a figure less trustworthy, each with what to do. Judges; never prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from segbench.config import PUBLISHED_SETUP, is_published_setup
from segbench.cvnet import published_training_gflop_per_image
from segbench.errors import BadInput
from segbench.references import M1_GPU_LABEL, PUBLISHED_KERAS, REFERENCES, Reference
from segbench.result import Result
from segbench.stats import IMAGES_PER_EXTRAPOLATION

# Results that differ in these measure different work: refused unless --force.
MUST_MATCH: dict[str, Callable[[Result], Any]] = {
    "width": lambda r: r.config.width,
    "image_size": lambda r: r.config.image_size,
    "batch_size": lambda r: r.config.batch_size,
}
# Results that differ in these are comparable but not like for like: a warning.
SHOULD_MATCH: dict[str, Callable[[Result], Any]] = {
    "tensorflow": lambda r: r.environment.packages.get("tensorflow"),
    "precision": lambda r: r.config.precision,
    "backend": lambda r: r.environment.keras_backend,
    "keras": lambda r: r.config.keras_generation,
}
# A spread above this share of the median makes the numbers hard to compare.
NOISY_SPREAD = 0.10
FEW_STEPS = 10


class CompareError(BadInput):
    """Results cannot be compared as asked; the message says why and what to do."""


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


def device_label(result: Result) -> str:
    """A readable name for the machine a result came from."""
    if result.device.kind == "gpu":
        return result.device.description
    cpu = result.environment.cpu
    return f"CPU: {cpu.model} × {cpu.logical_cores}"


def measured_row(result: Result) -> Row:
    s = result.summary
    batch = result.config.batch_size
    return Row(
        label=device_label(result),
        kind="measured",
        backend=result.environment.keras_backend,
        precision=result.config.precision,
        ms_per_step=s.median_ms,
        p10_ms=s.p10_ms,
        p90_ms=s.p90_ms,
        ms_per_image=s.ms_per_image,
        ms_per_image_range=(s.p10_ms / batch, s.p90_ms / batch),
        tflops=s.tflops,
        conditions=", ".join(
            [result.config.preset, _framework(result)]
            + (["interrupted"] if result.status == "interrupted" else [])
            + (["forced"] if result.forced else [])
        ),
    )


def _framework(result: Result) -> str:
    """e.g. "TensorFlow 2.19.1", or "torch 2.11.0, Keras 3.12.4" for another backend."""
    packages = result.environment.packages
    backend = result.environment.keras_backend
    if backend == "tensorflow" and result.config.keras_generation == 2:
        return (
            f"TensorFlow {packages.get('tensorflow', '?')}, "
            f"tf-keras {packages.get('tf-keras', '?')} (Keras 2)"
        )
    if backend == "tensorflow":
        return f"TensorFlow {packages.get('tensorflow', '?')}, Keras {packages.get('keras', '?')}"
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
        tflops=published_training_gflop_per_image() / middle,
        conditions=ref.conditions,
    )


def with_speedup(row: Row, baseline: Row) -> Row:
    """`row` with its speedup over `baseline` (> 1: faster), low–high from both spreads."""
    fast, slow = row.ms_per_image_range
    base_fast, base_slow = baseline.ms_per_image_range
    typical = baseline.ms_per_image / row.ms_per_image
    low, high = base_fast / slow, base_slow / fast
    return replace(row, speedup=(min(low, typical), typical, max(high, typical)))


def differences(results: list[Result]) -> tuple[list[str], list[str]]:
    """(fields that must match but differ, fields that should match but differ)."""
    must = [f for f, value in MUST_MATCH.items() if len({value(r) for r in results}) > 1]
    should = [f for f, value in SHOULD_MATCH.items() if len({value(r) for r in results}) > 1]
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
    results: list[Result],
    baseline: str | None = None,
    references: bool = True,
    force: bool = False,
) -> Comparison:
    """Rows for the results (and references), with speedups over the baseline row."""
    must, should = differences(results)
    if len({r.data.sha256 for r in results if r.data.sha256}) > 1:
        should.append("data")  # other images: the same work per image, not the same run
    if must and not force:
        detail = ", ".join(
            f"{f} ({' vs '.join(sorted({str(MUST_MATCH[f](r)) for r in results}))})" for f in must
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
    if references and any(r.config.keras_generation != PUBLISHED_KERAS for r in results):
        warnings.append(
            f"The published figures were measured with Keras {PUBLISHED_KERAS} (tf.keras, "
            "TensorFlow 2.6); Keras 3 rows are comparable but not like for like with them: "
            "segbench run --keras 2 measures with the article's Keras generation."
        )
    if references and not all(is_published_setup(r.config) for r in results):
        warnings.append(
            f"The published references are for {PUBLISHED_SETUP}; these results are not."
        )
    if must:
        warnings.append("Forced: results differ in " + ", ".join(must) + ".")
    return Comparison(rows, base, must, warnings)


def against_references(result: Result) -> Comparison:
    """One run against the published figures, the M1 GPU (the article's measurement) as the
    baseline, so speedups read "× the M1"."""
    return compare([result], baseline=M1_GPU_LABEL)


def run_caveats(result: Result) -> list[str]:
    """Things that make a run's figures less trustworthy, each with what to do."""
    notes = []
    s = result.summary
    if result.forced:
        notes.append(
            f"Run with --force despite failed checks ({', '.join(result.failed_checks)}): "
            "the figures may not be comparable."
        )
    if result.status == "interrupted":
        notes.append("The run was interrupted: the figures cover only the steps that finished.")
    if s.spread > NOISY_SPREAD:
        notes.append(
            f"Step times spread by {100 * s.spread:.0f} % of the "
            "median (p10–p90): close other programs, plug in the power, or raise --steps."
        )
    if 0 < s.steps < FEW_STEPS:
        notes.append(f"Only {s.steps} timed steps: raise --steps for a stable median.")
    if result.config.keras_generation != PUBLISHED_KERAS:
        notes.append(
            f"The published figures were measured with Keras {PUBLISHED_KERAS}; this run used "
            f"Keras {result.config.keras_generation}: add --keras {PUBLISHED_KERAS} to compare "
            "with them like for like."
        )
    if not is_published_setup(result.config):
        notes.append(
            f"Width or batch size differ from the published model ({PUBLISHED_SETUP}): "
            "the references are not like-for-like."
        )
    return notes
