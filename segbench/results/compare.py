"""Comparison of results from any machines: rows, speedups, comparability, and the caveats
that make a figure less trustworthy, each with what to do. Judges; never prints."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from segbench.benchmark.config import PUBLISHED_SETUP, is_published_setup
from segbench.benchmark.cvnet import published_training_gflop_per_image
from segbench.benchmark.references import M1_GPU_LABEL, PUBLISHED_KERAS, REFERENCES, Reference
from segbench.doctor.types import PASS
from segbench.errors import BadInput
from segbench.results.result import Result, recompute
from segbench.results.stats import (
    ALPHA,
    IMAGES_PER_EXTRAPOLATION,
    SLOWER,
    SLOWING,
    SPEEDING_UP,
    STEADY,
    difference,
    timed_steps,
)

# Results that differ in these measure different work: refused unless --force.
MUST_MATCH: dict[str, Callable[[Result], Any]] = {
    # CV-net, or a user's model (--model) by the digest of its source, arguments and layers.
    "model": lambda r: f"{r.model.own.spec} {r.model.own.digest[:12]}" if r.model.own else "cvnet",
    "width": lambda r: r.config.width if r.model.own is None else None,
    "image_size": lambda r: r.config.image_size if r.model.own is None else None,
    # Images per step: the global batch of a data-parallel run (README: "More than one GPU").
    "batch_size": lambda r: r.config.batch_size,
}
# Results that differ in these are comparable but not like for like: a warning.
SHOULD_MATCH: dict[str, Callable[[Result], Any]] = {
    "tensorflow": lambda r: r.environment.packages.get("tensorflow"),
    "precision": lambda r: r.config.precision,
    "backend": lambda r: r.environment.keras_backend,
    "keras": lambda r: r.config.keras_generation,
    "replicas": lambda r: r.distribution.replicas if r.distribution else 1,
}
# A spread above this share of the median makes the numbers hard to compare.
NOISY_SPREAD = 0.10
FEW_STEPS = 10
MANY_OUTLIERS = 0.05  # share of the timed steps
NOISY_REPEATS_PCT = 5.0


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
    verdict: str | None = None  # "faster" | "slower" | "no significant difference"
    j_per_image: float | None = None  # energy over the timed steps (telemetry), measured rows
    images_per_kj: float | None = None
    # What the file says makes its figure less trustworthy: short labels (result_caveats).
    caveats: list[str] = field(default_factory=list)
    # The caveats that undermine the verdict, one entry per row that has them (the baseline's
    # first), e.g. ["#1 drift +7.0 %", "#2 battery, low power"].
    undermined_by: list[str] = field(default_factory=list)
    no_verdict: str | None = None  # why no verdict is given, e.g. "loss diverged"
    steps: int | None = None  # timed steps of a measured row: the samples of its test

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


def measured_row(result: Result, source: str | None = None) -> Row:
    s = result.summary
    batch = result.config.batch_size
    ci = s.median_ci95_ms
    energy = result.telemetry if result.telemetry and result.telemetry.available else None
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
    )


def diverged_loss(result: Result) -> str | None:
    """How the loss diverged in the timed steps, "NaN" or "inf"; None when every one is finite."""
    losses = [s.loss for s in timed_steps(result.config, result.steps)]
    if all(map(math.isfinite, losses)):
        return None
    if any(math.isnan(loss) for loss in losses):
        return "NaN"
    if any(math.isinf(loss) for loss in losses):
        return "inf"
    return None


def power_state(result: Result) -> str | None:
    """The power the run had, "mains" or "battery", with ", Low Power Mode" when it was on:
    the telemetry's record, else the doctor's power check; None when the file records neither."""
    t = result.telemetry
    source = t.power_source.split(" (")[0] if t and t.power_source else None
    low_power = bool(t and (t.low_power_mode or energy_mode(result) == "low power"))
    check = next((c for c in result.doctor or [] if c.id == "power"), None)
    if check is not None:
        if source is None and check.found.startswith("on battery"):
            source = "battery"
        elif source is None and check.status == PASS:
            source = "mains"
        low_power = low_power or "low power" in check.found.lower()
    if low_power:
        return f"{source or 'power source not recorded'}, Low Power Mode"
    return source


def energy_mode(result: Result) -> str | None:
    """The macOS energy mode the telemetry recorded ("automatic", "low power", "high power")."""
    # getattr: files and versions from before the field have none.
    return getattr(result.telemetry, "energy_mode", None)


def result_caveats(result: Result) -> list[str]:
    """Short labels of what the file says about itself that undermines its speed figure and
    any verdict drawn from it; the warnings (run_caveats) say the same at length, with the fix."""
    labels = []
    loss = diverged_loss(result)
    if loss:
        labels.append(f"diverged ({loss} loss)")
    if result.numerics and result.numerics.status == "deviates":
        labels.append("numerics deviate")
    if result.status == "interrupted":
        labels.append("interrupted")
    if result.forced:
        labels.append("forced")
    s = result.summary
    if s.drift and s.drift.verdict != STEADY:
        labels.append(f"drift {s.drift.change_pct:+.1f} %")
    if s.outliers and s.outliers.count >= max(2, MANY_OUTLIERS * s.steps):
        labels.append(f"outliers {s.outliers.count}/{s.steps}")
    t = result.telemetry
    if t and t.throttle and t.throttle.events:
        labels.append(f"throttled {100 * t.throttle.fraction_of_timed_steps:.0f} %")
    power = power_state(result)
    if power and power.startswith("battery"):
        labels.append("battery")
    if power and power.endswith("Low Power Mode"):
        labels.append("low power")
    return labels


# Software facts that make a speed difference partly the software's: a row whose value differs
# from the baseline's carries it as a caveat, e.g. "tensorflow 2.18.0 (baseline 2.19.1)".
STACK: dict[str, Callable[[Result], Any]] = {
    "tensorflow": lambda r: r.environment.packages.get("tensorflow"),
    "keras": lambda r: r.environment.packages.get("keras"),
    "backend": lambda r: r.environment.keras_backend,
    "Keras generation": lambda r: r.config.keras_generation,
    "precision": lambda r: r.config.precision,
    "driver": lambda r: r.environment.gpu_stack.get("nvidia_driver"),
    "cuDNN": lambda r: r.environment.gpu_stack.get("cudnn_version"),
    "tensorflow-metal": lambda r: r.environment.gpu_stack.get("tensorflow_metal"),
}


def stack_caveats(result: Result, baseline: Result) -> list[str]:
    """Labels for the software facts in which `result` differs from the `baseline`."""
    both_tensorflow = result.environment.keras_backend == baseline.environment.keras_backend
    return [
        f"{name} {value(result) or 'none'} (baseline {value(baseline) or 'none'})"
        for name, value in STACK.items()
        if value(result) != value(baseline)
        # On another backend TensorFlow's version is beside the point: the backend is named.
        and not (name == "tensorflow" and not both_tensorflow)
    ]


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
        return replace(row, verdict=None, p_value=None, no_verdict=reason)
    if row.verdict is None:
        return row
    undermined_by = [
        f"#{n} {', '.join(caveats)}"
        for n, caveats in ((baseline_number, baseline.caveats), (number, row.caveats))
        if caveats
    ]
    return replace(row, undermined_by=undermined_by)


def diverged(row: Row) -> bool:
    return any(c.startswith("diverged") for c in row.caveats)


@dataclass(frozen=True)
class EnvironmentDifference:
    """A recorded fact that differs between the results: its value in each, in row order
    (None: the file does not record it)."""

    fact: str
    values: list[str | None]


def environment_facts(result: Result) -> dict[str, str | None]:
    """Every fact a result records about the software and the conditions it ran under."""
    env = result.environment
    facts: dict[str, str | None] = {
        "segbench": result.segbench_version,
        "git commit": result.git_commit,
        "uv.lock sha256": env.uv_lock_sha256,
        "python": env.python,
        "os": f"{env.os.system} {env.os.release}",
        "backend": env.keras_backend,
        "keras generation": str(result.config.keras_generation),
        "precision": result.config.precision,
        "compile (asked)": "on" if result.config.xla else "off",
        "compiled (used)": result.model.compiled,
        "batchnorm": result.model.batchnorm or result.config.batchnorm,
        "power": power_state(result),
        "energy mode": energy_mode(result),
    }
    facts |= dict(sorted(env.packages.items()))
    facts |= {k.replace("_", " "): v for k, v in sorted(env.gpu_stack.items())}
    # The settings that change the computation (Keras's, environment variables), in files
    # that record them (getattr: older versions have no such field).
    settings = getattr(env, "settings", None) or {}
    facts |= {f"setting {k}": v for k, v in sorted(settings.items())}
    return facts


def environment_differences(results: list[Result]) -> list[EnvironmentDifference]:
    """The facts whose value is not the same in every result (asv's and ReBench's "what
    changed between these runs"), in the order environment_facts lists them."""
    each = [environment_facts(r) for r in results]
    names = list(dict.fromkeys(name for facts in each for name in facts))
    found = [EnvironmentDifference(n, [facts.get(n) for facts in each]) for n in names]
    return [d for d in found if len(set(d.values)) > 1]


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
) -> Comparison:
    """Rows for the results (and references), with speedups over the baseline row.

    Statistics are recomputed from each result's steps (`sources` names the files in the
    warning when a stored summary disagrees with them)."""
    sources = sources or [device_label(r) for r in results]
    recomputed = [recompute(r) for r in results]
    results = [r.result for r in recomputed]
    must, should = differences(results)
    if len({r.data.sha256 for r in results if r.data.sha256}) > 1:
        should.append("data")  # other images: the same work per image, not the same run
    if must and not force:
        detail = ", ".join(
            f"{f} ({' vs '.join(sorted({str(MUST_MATCH[f](r)) for r in results}))})" for f in must
        )
        raise CompareError(f"results differ in {detail}: not comparable (--force compares anyway)")
    rows = [measured_row(r, source) for r, source in zip(results, sources, strict=True)]
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
                f"{n} and {m} steps (the smallest p possible is {min_p_value(n, m):.2g}), "
                f"need at least {need} each for p < {ALPHA:g}; rerun with --steps {need} "
                f"or more (it is {slowdown:.1f} % slower by the medians)"
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


def min_p_value(n: int, m: int) -> float:
    """The smallest two-sided p Mann–Whitney's exact test can give for samples of n and m
    steps without ties, 2 / C(n + m, n): every step of one sample slower than every step of
    the other. 1 below two steps a side, where no test is made."""
    if min(n, m) < 2:
        return 1.0
    k = min(n, m, 40)  # C(max + 40, 40) ≥ C(80, 40) ≈ 1e23: no need to count further
    return min(1.0, 2 / math.comb(max(n, m) + k, k))


def steps_to_decide(n: int, m: int) -> int:
    """The fewest timed steps the shorter sample(s) need for p < ALPHA to be possible."""
    k = 2
    while min_p_value(max(n, k), max(m, k)) >= ALPHA:
        k += 1
    return k


def against_references(result: Result) -> Comparison:
    """One run against the published figures, the M1 GPU (the article's measurement) as the
    baseline, so speedups read "× the M1". A ResNet-50 run (--model resnet50) is the baseline
    of the other tools' published ResNet-50 figures."""
    if result.config.model == "resnet50":
        return compare([result])
    return compare([result], baseline=M1_GPU_LABEL)


def statistics_caveats(result: Result) -> list[str]:
    """What the outlier count, the drift test and the repeats say about a run, with the fix."""
    notes = []
    s = result.summary
    if s.outliers and s.outliers.count >= max(2, MANY_OUTLIERS * s.steps):
        notes.append(
            f"{s.outliers.count} of {s.steps} timed steps are outliers ("
            f"{outlier_bounds(s.outliers.low_ms, s.outliers.high_ms, 0)}, median ± 5 MAD-σ): "
            "another program or power management interrupted the run; close other programs, "
            "plug in the power and run again (they are kept in the samples; the median "
            "resists them)."
        )
    if s.drift and s.drift.verdict == SLOWING:
        notes.append(
            f"Steps slowed down by {s.drift.change_pct:.1f} % from the first to the last timed "
            f"step (p = {s.drift.p_value:.2g}): the device may be throttling (heat), a "
            "background job may have started, or the machine went into low-power mode; plug "
            "in, close other programs, let the machine cool (--cooldown) and run again."
        )
    if s.drift and s.drift.verdict == SPEEDING_UP:
        config = result.config
        fix = (
            f"raise --warmup (e.g. --warmup {max(2 * config.warmup, config.warmup + 5)})"
            if config.epochs == 0
            else "the article's protocol has no warm-up: compare the second epoch's time"
        )
        notes.append(
            f"Steps sped up by {-s.drift.change_pct:.1f} % over the timed steps (p = "
            f"{s.drift.p_value:.2g}): the device was still warming up; {fix}."
        )
    if s.repeats and s.repeats.cv_pct > NOISY_REPEATS_PCT:
        notes.append(
            f"The repeats' medians vary by {s.repeats.cv_pct:.1f} % (coefficient of "
            "variation): the machine's speed changed between repeats; lengthen --cooldown and "
            "close other programs."
        )
    return notes


def throttle_caveats(result: Result) -> list[str]:
    """A warning naming the reasons when the device throttled during the timed steps."""
    t = result.telemetry
    if t is None or t.throttle is None or not t.throttle.events:
        return []
    return [
        f"The device throttled during {100 * t.throttle.fraction_of_timed_steps:.0f} % of the "
        f"timed steps ({', '.join(t.throttle.reasons)}): the figures are below what it does "
        "unthrottled; let it cool between runs (--cooldown), improve its airflow, plug in the "
        "power, and check its power limit (NVIDIA: nvidia-smi -q -d PERFORMANCE)."
    ]


def diverged_caveats(result: Result) -> list[str]:
    """A warning when the loss became NaN or inf during the timed steps."""
    loss = diverged_loss(result)
    if loss is None:
        return []
    steps = timed_steps(result.config, result.steps)
    bad = [i for i, s in enumerate(steps, start=1) if not math.isfinite(s.loss)]
    return [
        f"The loss became {loss} in {len(bad)} of {len(steps)} timed steps (the first: timed "
        f"step {bad[0]}): the run diverged, so its step times measure a broken computation and "
        "no verdict is given for it. "
        + (
            "Run the same command with --device cpu to see whether the device is at fault, "
            "and check --precision."
            if result.device.kind != "cpu"
            else "Check --precision and the environment's settings (segbench doctor); a "
            "float32 run on the CPU should not diverge: report it with the result file."
        )
    ]


def status_caveats(result: Result) -> list[str]:
    """A warning when the run was forced past failed checks or interrupted."""
    notes = []
    if result.forced:
        failed = ", ".join(result.failed_checks)
        notes.append(
            f"Run with --force despite failed checks{f' ({failed})' if failed else ''}: "
            "the figures may not be comparable."
        )
    if result.status == "interrupted":
        notes.append("The run was interrupted: the figures cover only the steps that finished.")
    return notes


def power_caveats(result: Result) -> list[str]:
    """A warning when the run was made on battery or in Low Power Mode."""
    power = power_state(result) or ""
    how = (["on battery power"] if power.startswith("battery") else []) + (
        ["in Low Power Mode"] if power.endswith("Low Power Mode") else []
    )
    if not how:
        return []
    return [
        f"The run was made {' '.join(how)}: the OS may have slowed the CPU and GPU down; plug "
        "in the charger, turn Low Power Mode off (System Settings → Battery) and run again."
    ]


def recorded_caveats(result: Result) -> list[str]:
    """What a result file says about itself that makes its figures less trustworthy, at
    length and with the fix: the warnings `compare` prints for each file."""
    return (
        diverged_caveats(result)
        + numerics_caveats(result)
        + status_caveats(result)
        + statistics_caveats(result)
        + throttle_caveats(result)
        + power_caveats(result)
    )


def numerics_caveats(result: Result) -> list[str]:
    """A warning when the device's training step deviated from the CPU reference."""
    n = result.numerics
    if n is None or n.status != "deviates":
        return []
    from segbench.measure.numerics import advice as numerics_advice

    # Never "--device cpu" for a run already on the CPU.
    advice = numerics_advice(result.device.kind, result.config.backend, result.config.precision)
    notes = []
    losses_off = n.tolerance is not None and (
        n.max_rel_diff is None or n.max_rel_diff > n.tolerance
    )
    if losses_off:
        size = (
            "a NaN loss" if n.max_rel_diff is None else f"relative difference {n.max_rel_diff:.2g}"
        )
        notes.append(
            f"The numerics check deviates from the CPU float32 reference from step {n.at_step} "
            f"on ({size}, tolerance {n.tolerance:g}): the speed figure may come from a wrong "
            f"computation. {advice}"
        )
    if getattr(n, "random_ok", None) is False:
        notes.append(
            f"The numerics check found the device's random generator broken ({n.random}): "
            f"dropout, and so the training computed, is not the model's. {advice}"
        )
    return notes or [f"The numerics check deviates. {advice}"]


def outlier_bounds(low_ms: float, high_ms: float, decimals: int) -> str:
    """ "beyond 12.0 … 30.5 ms", or "above 30.5 ms" when the low bound is below zero (a step
    time cannot be negative: on a wide spread only slow outliers exist)."""
    if low_ms <= 0:
        return f"above {high_ms:.{decimals}f} ms"
    return f"beyond {low_ms:.{decimals}f} … {high_ms:.{decimals}f} ms"


def run_caveats(result: Result) -> list[str]:
    """Things that make a run's figures less trustworthy, each with what to do."""
    notes = status_caveats(result)
    s = result.summary
    config = result.config
    # The smoke preset checks that the benchmark runs: a few steps of a narrow model, whose
    # spread and distance from the published setup are expected; said once, not four times.
    smoke = config.preset == "smoke" and not is_published_setup(config)
    if s.spread > NOISY_SPREAD and not smoke:
        notes.append(
            f"Step times spread by {100 * s.spread:.0f} % of the "
            "median (p10–p90): close other programs, plug in the power, or raise --steps."
        )
    if 0 < s.steps < FEW_STEPS and not smoke:
        notes.append(f"Only {s.steps} timed steps: raise --steps for a stable median.")
    notes += statistics_caveats(result)
    notes += throttle_caveats(result)
    if result.model.compile_note:
        notes.append(f"{result.model.compile_note}: the steps ran uncompiled.")
    # First: they question every other figure.
    notes = diverged_caveats(result) + numerics_caveats(result) + notes
    own = result.model.own
    if smoke:
        what = f"--model {own.spec}" if own else f"width {config.width:g}"
        published = "" if own else " and have no speedup against the published ones"
        notes.append(
            f"A smoke run ({what}, batch {config.batch_size}, {s.steps} timed steps) checks "
            f"that the benchmark runs; its figures are no speed measurement{published}: run "
            "--preset quick for those."
        )
        return notes
    if own is not None:
        if own.flops_not_counted:
            notes.append(
                f"The training FLOPs leave out {len(own.flops_not_counted)} layer(s) whose cost "
                f"segbench cannot count ({', '.join(own.flops_not_counted[:3])}): TFLOP/s and "
                "% of peak are lower bounds."
            )
        return notes  # the published figures are CV-net's: no speedup against them
    if config.keras_generation != PUBLISHED_KERAS:
        notes.append(
            f"The published figures were measured with Keras {PUBLISHED_KERAS}; this run used "
            f"Keras {config.keras_generation}: add --keras {PUBLISHED_KERAS} to compare "
            "with them like for like."
        )
    if not is_published_setup(config):
        notes.append(
            f"No speedup against the published figures: they are of the published model "
            f"({PUBLISHED_SETUP}), this run is width {config.width:g}, batch "
            f"{config.batch_size}."
        )
    return notes
