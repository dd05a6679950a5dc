"""Comparison of results from any machines: one row per result or published reference, the
speedups over a baseline with their significance, and the regression gate. Judges; never
prints."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from segbench.benchmark.config import PUBLISHED_SETUP, is_published_setup
from segbench.benchmark.cvnet import published_training_gflop_per_image
from segbench.benchmark.references import M1_GPU_LABEL, PUBLISHED_KERAS, REFERENCES, Reference
from segbench.errors import BadInput
from segbench.results.caveats import diverged_loss, recorded_caveats, result_caveats
from segbench.results.comparability import (
    MUST_MATCH,
    EnvironmentDifference,
    differences,
    environment_differences,
    stack_caveats,
)
from segbench.results.result import Recomputed, Result, recompute
from segbench.results.stats import (
    ALPHA,
    IMAGES_PER_EXTRAPOLATION,
    SLOWER,
    difference,
    min_p_value,
    steps_to_decide,
    timed_steps,
)


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
    source: str | None = None  # the result file of a measured row
    ms_per_image_ci95: tuple[float, float] | None = None  # 95 % CI of the median, measured rows
    # (low, typical, high) vs the baseline: the 95 % CI where both rows are measured, else the
    # range spanned by both rows' spreads (p10–p90, or a published range).
    speedup: tuple[float, float, float] = (1.0, 1.0, 1.0)
    speedup_ci95: tuple[float, float] | None = None  # both rows measured: bootstrap CI
    p_value: float | None = None  # Mann–Whitney U of both rows' step samples
    p_method: str | None = None  # "exact" | "asymptotic" (stats.mann_whitney)
    verdict: str | None = None  # stats: FASTER | SLOWER | NO_DIFFERENCE | TOO_FEW_STEPS
    j_per_image: float | None = None  # energy over the timed steps (telemetry), measured rows
    images_per_kj: float | None = None
    # What the file says makes its figure less trustworthy: short labels (result_caveats).
    caveats: list[str] = field(default_factory=list)
    # The caveats that undermine the verdict, one entry per row that has them (the baseline's
    # first), e.g. ["#1 drift +7.0 %", "#2 battery, low power"].
    undermined_by: list[str] = field(default_factory=list)
    no_verdict: str | None = None  # why no verdict is given, e.g. "loss diverged"
    steps: int | None = None  # timed steps of a measured row: the samples of its test
    # The loss became NaN or inf in the timed steps (judged from the steps, not the labels).
    diverged: bool = field(default=False, metadata={"export": False})

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
    limit = f" (container: {cpu.container_cpus:g})" if cpu.container_cpus else ""
    return f"CPU: {cpu.model} × {cpu.logical_cores}{limit}"


# How a row names the setting it was forced past (compare --force), e.g. "width 0.5, batch 8".
_FORCED_NAMES = {"model": "", "width": "width ", "image_size": "image ", "batch_size": "batch "}


def forced_setting(result: Result, fields: list[str]) -> str:
    """The values of `fields` (MUST_MATCH names) of `result`, as a row's label shows them."""
    values = ((f, MUST_MATCH[f](result)) for f in fields)
    return ", ".join(f"{_FORCED_NAMES[f]}{_number(v)}" for f, v in values if v is not None)


def _number(value: object) -> str:
    """A float as short as tells it apart (0.0625, 1, 0.06250001), anything else as str."""
    if not isinstance(value, float):
        return str(value)
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def measured_row(result: Result, source: str | None = None, forced: list[str] | None = None) -> Row:
    """A result's row; `forced`: the MUST_MATCH fields it was compared past (--force), shown
    after the device, which alone would not tell the rows apart."""
    s = result.summary
    batch = result.config.batch_size
    ci = s.median_ci95_ms
    energy = result.telemetry if result.telemetry and result.telemetry.available else None
    label = device_label(result)
    return Row(
        label=f"{label} · {forced_setting(result, forced)}" if forced else label,
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
            + (
                [f"{result.distribution.replicas} replicas ({result.distribution.strategy})"]
                if result.distribution
                else []
            )
        ),
        source=source,
        ms_per_image_ci95=None if ci is None else (ci[0] / batch, ci[1] / batch),
        j_per_image=energy.j_per_image if energy else None,
        images_per_kj=energy.images_per_kj if energy else None,
        caveats=result_caveats(result),
        steps=s.steps,
        diverged=diverged_loss(result) is not None,
    )


def ms_per_image_samples(result: Result) -> list[float]:
    """The timed steps' times per image: the samples a measured row's statistics come from."""
    return [s.ms / s.images for s in timed_steps(result.config, result.steps)]


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


def model_references(results: list[Result]) -> list[Row]:
    """The published rows for the results' model: CV-net's (the article), ResNet-50's (other
    tools' tables: other method, labelled so), none for any other model."""
    names = {r.model.own.function if r.model.own else "cvnet" for r in results}
    if names == {"cvnet"}:
        return [reference_row(ref) for ref in REFERENCES]
    if names == {"resnet50"} and all(r.config.model == "resnet50" for r in results):
        from segbench.benchmark.reference_models import RESNET50_PUBLISHED

        return [other_tool_row(ref) for ref in RESNET50_PUBLISHED]
    return []


def other_tool_row(ref) -> Row:
    """A ResNet-50 training throughput another tool published (reference_models.py)."""
    ms = 1000.0 / ref.images_per_second
    batch = f"batch {ref.batch_size}" if ref.batch_size else "batch not stated"
    return Row(
        label=f"{ref.device} (other tool, other method)",
        kind="published",
        backend=ref.framework,
        precision=ref.precision,
        ms_per_step=None,
        p10_ms=None,
        p90_ms=None,
        ms_per_image=ms,
        ms_per_image_range=(ms, ms),
        tflops=None,
        conditions=f"{batch}; {ref.clock}; {ref.source}",
    )


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


def with_speedup(
    row: Row,
    baseline: Row,
    samples: list[float] | None = None,
    baseline_samples: list[float] | None = None,
) -> Row:
    """`row` with its speedup over `baseline` (> 1: faster). With both rows' samples: the
    bootstrap CI and the verdict of the significance test; otherwise low–high from both
    spreads (a published row has no samples, only its range)."""
    if samples and baseline_samples:
        found = difference(baseline_samples, samples)
        low, high = found.ci95 or (found.speedup, found.speedup)
        return replace(
            row,
            speedup=(low, found.speedup, high),
            speedup_ci95=found.ci95,
            p_value=found.p_value,
            p_method=found.p_method,
            verdict=found.verdict,
        )
    fast, slow = row.ms_per_image_range
    base_fast, base_slow = baseline.ms_per_image_range
    typical = baseline.ms_per_image / row.ms_per_image
    low, high = base_fast / slow, base_slow / fast
    return replace(row, speedup=(min(low, typical), typical, max(high, typical)))


def with_caveats(row: Row, number: int, baseline: Row, baseline_number: int) -> Row:
    """`row` with what the caveats of both rows do to its verdict: none when a loss diverged
    (a diverged run's speed is no speed figure), else the caveats that undermine it."""
    if row.kind != "measured":
        return row
    if diverged(row) or diverged(baseline):
        reason = "loss diverged" if diverged(row) else "the baseline's loss diverged"
        return replace(row, verdict=None, p_value=None, p_method=None, no_verdict=reason)
    if row.verdict is None:
        return row
    undermined_by = [
        f"#{n} {', '.join(caveats)}"
        for n, caveats in ((baseline_number, baseline.caveats), (number, row.caveats))
        if caveats
    ]
    return replace(row, undermined_by=undermined_by)


def diverged(row: Row) -> bool:
    return row.diverged


def find_baseline(rows: list[Row], choice: str | None) -> int:
    """Index of the baseline row: a 1-based number, or a label (substring, case-insensitive;
    a whole part of a label first)."""
    if choice is None:
        return 0
    if choice.isdigit():
        index = int(choice) - 1
        if not 0 <= index < len(rows):
            raise CompareError(f"--baseline {choice}: choose 1 to {len(rows)}")
        return index
    wanted = choice.strip().lower()
    matches = [i for i, row in enumerate(rows) if wanted in row.label.lower()]
    # A whole part of a label ("width 0.1" of "… · width 0.1, batch 8") wins over a substring
    # of another ("width 0.125").
    whole = [i for i in matches if wanted in re.split(r" · |, ", rows[i].label.lower())]
    matches = whole or matches
    if not matches:
        labels = "; ".join(f"{i}: {row.label}" for i, row in enumerate(rows, start=1))
        raise CompareError(f"--baseline {choice!r}: no row matches (rows {labels})")
    if len(matches) > 1:
        numbers = ", ".join(str(i + 1) for i in matches)
        raise CompareError(
            f"--baseline {choice!r}: rows {numbers} match; give the row's number instead "
            f"(--baseline {matches[0] + 1})"
        )
    return matches[0]


@dataclass(frozen=True)
class Comparison:
    rows: list[Row]
    baseline: int
    forced_fields: list[str]
    warnings: list[str]
    # One value per result file: the first len(values) rows.
    environment_differences: list[EnvironmentDifference] = field(default_factory=list)


def compare(
    results: list[Result],
    baseline: str | None = None,
    references: bool = True,
    force: bool = False,
    sources: list[str] | None = None,
    recomputed: list[Recomputed] | None = None,
) -> Comparison:
    """Rows for the results (and references), with speedups over the baseline row.

    Statistics are recomputed from each result's steps (`sources` names the files in the
    warning when a stored summary disagrees with them), or taken from `recomputed` where the
    caller has recomputed them already."""
    sources = sources or [device_label(r) for r in results]
    recomputed = recomputed or [recompute(r) for r in results]
    results = [r.result for r in recomputed]
    must, should = differences(results)
    if len({r.data.sha256 for r in results if r.data.sha256}) > 1:
        should.append("data")  # other images: the same work per image, not the same run
    if must and not force:
        detail = ", ".join(
            f"{f} ({' vs '.join(sorted({str(MUST_MATCH[f](r)) for r in results}))})" for f in must
        )
        raise CompareError(f"results differ in {detail}: not comparable (--force compares anyway)")
    rows = [measured_row(r, source, must) for r, source in zip(results, sources, strict=True)]
    samples: list[list[float] | None] = [ms_per_image_samples(r) for r in results]
    if references:
        published = model_references(results)
        rows += published
        samples += [None] * len(published)
    base = find_baseline(rows, baseline)
    if base < len(results):  # a measured baseline: what else differs is a caveat of the row
        rows = [
            replace(row, caveats=row.caveats + stack_caveats(results[i], results[base]))
            if i < len(results) and i != base
            else row
            for i, row in enumerate(rows)
        ]
    rows = [
        row if i == base else with_speedup(row, rows[base], samples[i], samples[base])
        for i, row in enumerate(rows)
    ]
    rows = [
        row if i == base else with_caveats(row, i + 1, rows[base], base + 1)
        for i, row in enumerate(rows)
    ]
    warnings = [
        f"{source}: the summary in the file disagrees with its steps "
        f"({', '.join(r.disagreeing)}): shown here as recomputed from the steps."
        for source, r in zip(sources, recomputed, strict=True)
        if r.disagreeing
    ]
    warnings += [
        f"{source}: {note}"
        for source, r in zip(sources, results, strict=True)
        for note in recorded_caveats(r)
    ]
    if should:
        warnings.append(
            "Results differ in " + ", ".join(should) + ": comparable work, but not like for like."
        )
    cvnet = all(r.model.own is None for r in results)
    if references and cvnet and any(r.config.keras_generation != PUBLISHED_KERAS for r in results):
        warnings.append(
            f"The published figures were measured with Keras {PUBLISHED_KERAS} (tf.keras, "
            "TensorFlow 2.6); Keras 3 rows are comparable but not like for like with them: "
            "segbench run --keras 2 measures with the article's Keras generation."
        )
    if (
        references
        and all(r.model.own is None for r in results)
        and not all(is_published_setup(r.config) for r in results)
    ):
        warnings.append(
            f"The published references are for {PUBLISHED_SETUP}; these results are not."
        )
    if must:
        warnings.append("Forced: results differ in " + ", ".join(must) + ".")
    return Comparison(rows, base, must, warnings, environment_differences(results))


def regressions(comparison: Comparison, limit_pct: float) -> list[str]:
    """One line for each measured row significantly slower than the baseline by more than
    `limit_pct` % (the median time per image, the point estimate), and for each the gate
    cannot judge: no verdict, or too few steps for the test ever to be significant."""
    baseline = comparison.rows[comparison.baseline]
    if baseline.kind != "measured":
        raise CompareError(
            "--fail-if-slower needs a measured baseline: choose a result file with --baseline"
        )
    found = []
    for i, row in enumerate(comparison.rows):
        if i != comparison.baseline and row.kind == "measured" and row.no_verdict:
            # Not evaluable is not a pass: a diverged run would otherwise look fast.
            found.append(
                f"{row.source}: no verdict against {baseline.source} ({row.no_verdict}: a NaN "
                "or inf loss in the timed steps), so the gate cannot pass; find why the loss "
                "diverged and measure again"
            )
        if i == comparison.baseline or row.kind != "measured" or row.no_verdict:
            continue
        slowdown = 100.0 * (row.ms_per_image / baseline.ms_per_image - 1.0)
        n, m = row.steps or 0, baseline.steps or 0
        if slowdown > limit_pct and min_p_value(n, m) >= ALPHA:
            # The test cannot reach significance with so few steps: "ok" would be a guess.
            need = steps_to_decide(n, m)
            found.append(
                f"{row.source}: too few timed steps to decide against {baseline.source}: "
                f"{n} and {m} steps ({_smallest_p(n, m)}), "
                f"need at least {need} each for p < {ALPHA:g}; rerun {_short(row, baseline, need)} "
                f"with --steps {need} or more (it is {slowdown:.1f} % slower by the medians)"
            )
        elif row.verdict == SLOWER and slowdown > limit_pct:
            low, _, high = row.speedup
            undermined = (
                f"; undermined: {'; '.join(row.undermined_by)}" if row.undermined_by else ""
            )
            found.append(
                f"{row.source} is {slowdown:.1f} % slower than {baseline.source} "
                f"(speedup {row.speedup[1]:.3f}×, 95 % CI {low:.3f}–{high:.3f}, "
                f"p = {row.p_value:.2g}{undermined}): more than the {limit_pct:g} % allowed"
            )
    return found


def _smallest_p(n: int, m: int) -> str:
    if min(n, m) < 2:
        return "no test below 2 steps a side"
    return f"the smallest p possible is {min_p_value(n, m):.2g}"


def _short(row: Row, baseline: Row, need: int) -> str:
    """Which of the two runs needs more timed steps: "both", or the one file."""
    short = [r.source for r in (row, baseline) if (r.steps or 0) < need]
    return "both" if len(short) == 2 else str(short[0])


def against_references(result: Result) -> Comparison:
    """One run against the published figures, the M1 GPU (the article's measurement) as the
    baseline, so speedups read "× the M1". A ResNet-50 run (--model resnet50) is the baseline
    of the other tools' published ResNet-50 figures."""
    if result.config.model == "resnet50":
        return compare([result])
    return compare([result], baseline=M1_GPU_LABEL)
