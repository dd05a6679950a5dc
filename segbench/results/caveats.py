"""Caveats of a result: what its file says makes its figures less trustworthy (a diverged loss,
deviating numerics, drift, outliers, throttling, battery power, the warnings doctor recorded
before the run), as short labels for a comparison's rows and as warnings that each say what to
do. Judges; never prints."""

from __future__ import annotations

import math

from segbench.benchmark.config import PUBLISHED_SETUP, is_published_setup
from segbench.benchmark.references import PUBLISHED_KERAS
from segbench.doctor.types import FAIL, PASS, WARN, Check
from segbench.results.result import Result
from segbench.results.stats import SLOWING, SPEEDING_UP, STEADY, timed_steps

# A spread above this share of the median makes the numbers hard to compare.
NOISY_SPREAD = 0.10
FEW_STEPS = 10
MANY_OUTLIERS = 0.05  # share of the timed steps
NOISY_REPEATS_PCT = 5.0
# Doctor's checks of one kind of GPU stack: their warnings concern a run only on a GPU. The
# power check's are told apart as "battery" and "low power" (power_state).
GPU_CHECKS = ("nvidia", "cuda-libs", "metal")
TOLD_APART = ("power",)


def recorded_warnings(result: Result) -> list[Check]:
    """The checks that WARNed (or FAILed: a forced run) before the run and concern its device
    (a CPU run is not undermined by an NVIDIA driver it never used)."""
    on_gpu = result.device.kind == "gpu"
    return [
        c
        for c in result.doctor or []
        if c.status in (WARN, FAIL)
        and c.id not in TOLD_APART
        and (on_gpu or c.id not in GPU_CHECKS)
    ]


def warning_caveats(result: Result) -> list[str]:
    """Each warning doctor recorded before the run (a busy machine, a CPU clock held low…),
    with its fix."""
    return [
        f"Doctor {'warned' if c.status == WARN else 'failed a check'} before the run "
        f"({c.id}: {c.found}): the figures may not show what the machine can do"
        + (f"; {c.fix}, and run again." if c.fix else ".")
        for c in recorded_warnings(result)
    ]


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
    return power_state_of(check, source, low_power)


def power_state_of(
    check: Check | None, source: str | None = None, low_power: bool = False
) -> str | None:
    """The power state doctor's power check found ("mains", "battery", "…, Low Power Mode"),
    with the telemetry's `source` and `low_power` where the run recorded them."""
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
    if any(d.endswith("(fake trainer)") for d in result.environment.devices):
        labels.append("fake trainer")  # made by the test seam: no measurement of anything
    power = power_state(result)
    if power and power.startswith("battery"):
        labels.append("battery")
    if power and power.endswith("Low Power Mode"):
        labels.append("low power")
    labels += [f"{c.id} {c.status}" for c in recorded_warnings(result)]
    return labels


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
    if result.status == "interrupted" and result.interrupted_by == "killed":
        notes.append(
            "The run was killed (SIGKILL: the OOM killer, kill -9 or a lost machine) and "
            "recovered from its journal: the figures cover only the steps journalled before."
        )
    elif result.status == "interrupted":
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
        + warning_caveats(result)
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
