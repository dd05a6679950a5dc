"""Statistics of a measurement: the summary block of a result, and the test that says whether
two results differ. Computes from the per-step samples; never prints.

The tests come from scipy.stats: a percentile bootstrap for confidence intervals (seeded, so
the same file always gives the same interval; order statistics above 10,000 steps), Spearman's
rank correlation and a Theil–Sen slope (on at most 2,000 evenly spaced steps) for drift,
Mann–Whitney U for "is B really faster than A". Every one is at most O(n log n) in time and O(n)
in memory. They run after timing, never inside it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from segbench.benchmark.config import RunConfig
from segbench.measure.run.runner import (
    COMPILE,
    TIMED,
    TRAIN,
    WARMUP,
    EpochRecord,
    Measurement,
    StepRecord,
)
from segbench.results.schema import NON_NEGATIVE, OPTIONAL, OPTIONAL_POSITIVE, POSITIVE

IMAGES_PER_EXTRAPOLATION = 100_000
CONFIDENCE = 0.95
RESAMPLES = 2000
BOOTSTRAP_SEED = 20211030  # fixed: the same samples always give the same interval
ALPHA = 0.01  # significance level of the drift and two-sample tests
OUTLIER_MAD_SIGMAS = 5.0  # a step this many robust σ from the median is an outlier
MIN_DRIFT_STEPS = 5  # fewer steps cannot show a trend
MIN_DRIFT_PCT = 2.0  # a significant trend smaller than this is called steady
# Bounds that keep every statistic at most O(n log n) in time and O(n) in memory, so a result of
# 200,000 steps is summarised and compared in seconds (benchmarks/statistics_scaling.py):
BOOTSTRAP_MAX_STEPS = 10_000  # above: the median's interval from order statistics
BOOTSTRAP_ELEMENTS = 4_000_000  # values resampled at a time (32 MB of float64)
THEIL_SEN_POINTS = 2_000  # Theil–Sen slope on at most this many evenly spaced steps
STEADY, SLOWING, SPEEDING_UP = "steady", "slowing", "speeding-up"
FASTER, SLOWER, NO_DIFFERENCE = "faster", "slower", "no significant difference"
# Samples so small that even a complete separation gives p ≥ ALPHA (4 and 4 steps: p ≥ 0.029).
TOO_FEW_STEPS = "too few steps to tell"
PAIR = {"items": 2}  # a [low, high] interval


@dataclass(frozen=True, kw_only=True)
class Outliers:
    """Timed steps beyond median ± 5 MAD-σ (kept in the samples, counted here)."""

    count: int = field(metadata=NON_NEGATIVE)
    low_ms: float  # steps faster than this are outliers
    high_ms: float  # steps slower than this are outliers


@dataclass(frozen=True, kw_only=True)
class Drift:
    """Step time against step index over the timed steps."""

    verdict: str = field(metadata={"enum": (STEADY, SLOWING, SPEEDING_UP)})
    # First to last timed step along the Theil–Sen line, as a share of the median.
    change_pct: float
    p_value: float = field(metadata={"non_negative": True, "maximum": 1})  # Spearman's ρ test


@dataclass(frozen=True, kw_only=True)
class Repeats:
    """The repeats of the protocol (the article: 5 runs with cool-downs in between)."""

    median_ms: list[float] = field(metadata=POSITIVE)  # each repeat's median step
    # Mean of the repeat medians without the best and the worst (with ≥ 3 repeats), as MLPerf.
    olympic_mean_ms: float = field(metadata=POSITIVE)
    cv_pct: float = field(metadata=NON_NEGATIVE)  # between-repeat coefficient of variation


@dataclass(frozen=True, kw_only=True)
class Summary:
    """Per-step statistics of the timed steps and the throughput derived from their median."""

    steps: int = field(metadata=NON_NEGATIVE)  # timed steps the statistics are made of
    median_ms: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    # 95 % bootstrap interval of the median; absent with fewer than 2 steps and in version 1.
    median_ci95_ms: list[float] | None = field(default=None, metadata={**OPTIONAL_POSITIVE, **PAIR})
    mean_ms: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    stdev_ms: float | None = field(default=None, metadata={"non_negative": True, **OPTIONAL})
    p10_ms: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    p90_ms: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    min_ms: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    max_ms: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    ms_per_image: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)  # median ÷ batch
    images_per_s: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    seconds_per_100k_images: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    tflops: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)  # achieved, from median
    outliers: Outliers | None = field(default=None, metadata=OPTIONAL)  # version 2
    drift: Drift | None = field(default=None, metadata=OPTIONAL)  # version 2, ≥ 5 timed steps
    compile_ms: list[float] = field(default_factory=list, metadata=NON_NEGATIVE)
    warmup_ms: list[float] = field(default_factory=list, metadata=NON_NEGATIVE)
    # The epoch protocol only: wall time of each training and validation pass.
    epoch_train_s: list[float] | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    epoch_validation_s: list[float] | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    epoch_ms_per_image_median: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    # Several repeats only. Version 1 wrote the medians alone (repeat_median_ms).
    repeats: Repeats | None = field(default=None, metadata=OPTIONAL)
    repeat_median_ms: list[float] | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    # Version 5: how the interval and the drift were computed (bounded for long runs), and
    # any statistic that could not be computed (the steps are kept regardless).
    methods: str | None = field(default=None, metadata=OPTIONAL)

    def validate(self) -> None:
        """ValueError when a statistic is missing although steps were timed."""
        if not self.steps:
            return
        for name in TIMED_FIELDS:
            if getattr(self, name) is None:
                raise ValueError(f"{name} is missing with {self.steps} timed steps")

    @property
    def spread(self) -> float:
        """(p90 − p10) / median: how much the step times spread, as a share of the median."""
        if not self.steps:
            return 0.0
        return (self.p90_ms - self.p10_ms) / self.median_ms


TIMED_FIELDS = (
    "median_ms",
    "mean_ms",
    "stdev_ms",
    "p10_ms",
    "p90_ms",
    "min_ms",
    "max_ms",
    "ms_per_image",
    "images_per_s",
    "seconds_per_100k_images",
    "tflops",
)


# Mann–Whitney's exact distribution up to this many pairs of steps (len(a) × len(b)); above,
# the normal approximation (mann_whitney).
EXACT_MAX_PAIRS = 20_000


def _rng() -> np.random.Generator:
    return np.random.default_rng(BOOTSTRAP_SEED)


def _bootstrap(samples: tuple[np.ndarray, ...], statistic) -> tuple[float, float] | None:
    """95 % percentile-bootstrap interval of `statistic` over independent `samples`, resampled
    in batches so that memory stays bounded (BOOTSTRAP_ELEMENTS values at a time)."""
    from scipy import stats

    if any(len(s) < 2 for s in samples):
        return None
    if all(np.ptp(s) == 0 for s in samples):  # no spread: the interval is the value itself
        value = float(statistic(*samples, axis=-1))
        return (value, value)
    found = stats.bootstrap(
        samples,
        statistic,
        n_resamples=RESAMPLES,
        batch=max(1, BOOTSTRAP_ELEMENTS // sum(len(s) for s in samples)),
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,
        rng=_rng(),
    )
    return (float(found.confidence_interval.low), float(found.confidence_interval.high))


def _order_statistic_ci(arr: np.ndarray) -> tuple[float, float]:
    """95 % distribution-free interval of the median from order statistics (the binomial's
    normal approximation: ranks n/2 ∓ 1.96 √n / 2), for samples too large to resample."""
    n = len(arr)
    half = 1.959964 * math.sqrt(n) / 2
    low = max(0, math.floor(n / 2 - half) - 1)
    high = min(n - 1, math.ceil(n / 2 + half))
    ordered = np.partition(arr, (low, high))
    return float(ordered[low]), float(ordered[high])


def ci_method(n: int) -> str:
    """How the intervals of a sample of `n` steps are computed (results and reports say it)."""
    if n > BOOTSTRAP_MAX_STEPS:
        return f"order statistics of the median (more than {BOOTSTRAP_MAX_STEPS:,} steps)"
    return f"percentile bootstrap, {RESAMPLES} resamples"


def median_ci(ms: Sequence[float]) -> tuple[float, float] | None:
    """95 % confidence interval of the median (bootstrap; order statistics above
    BOOTSTRAP_MAX_STEPS samples); None with fewer than 2 samples."""
    arr = np.asarray(ms, dtype=float)
    if len(arr) > BOOTSTRAP_MAX_STEPS:
        return _order_statistic_ci(arr)
    return _bootstrap((arr,), lambda a, axis: np.median(a, axis=axis))


def outliers(ms: Sequence[float]) -> Outliers:
    """Steps beyond median ± 5 σ, σ from the median absolute deviation (robust to the outliers
    themselves)."""
    from scipy import stats

    arr = np.asarray(ms, dtype=float)
    median = float(np.median(arr))
    sigma = float(stats.median_abs_deviation(arr, scale="normal"))
    low, high = median - OUTLIER_MAD_SIGMAS * sigma, median + OUTLIER_MAD_SIGMAS * sigma
    return Outliers(count=int(np.sum((arr < low) | (arr > high))), low_ms=low, high_ms=high)


def drift(ms: Sequence[float]) -> Drift | None:
    """Whether step time trends with step index: Spearman's ρ for significance, the Theil–Sen
    slope for the size (first to last step, % of the median). None below 5 steps."""
    from scipy import stats

    if len(ms) < MIN_DRIFT_STEPS:
        return None
    arr = np.asarray(ms, dtype=float)
    index = np.arange(len(arr))
    median = float(np.median(arr))
    if np.ptp(arr) == 0:
        return Drift(verdict=STEADY, change_pct=0.0, p_value=1.0)
    p_value = float(stats.spearmanr(index, arr).pvalue)
    # Theil–Sen takes every pair of points: on at most THEIL_SEN_POINTS evenly spaced steps.
    kept = np.unique(np.linspace(0, len(arr) - 1, min(len(arr), THEIL_SEN_POINTS)).round())
    kept = kept.astype(int)
    slope = float(stats.theilslopes(arr[kept], index[kept]).slope)
    change_pct = 100.0 * slope * (len(arr) - 1) / median
    verdict = STEADY
    if p_value < ALPHA and abs(change_pct) >= MIN_DRIFT_PCT:
        verdict = SLOWING if change_pct > 0 else SPEEDING_UP
    return Drift(verdict=verdict, change_pct=change_pct, p_value=p_value)


def olympic_mean(values: Sequence[float]) -> float:
    """Mean without the best and the worst value when there are at least 3 values."""
    ordered = sorted(values)
    kept = ordered[1:-1] if len(ordered) >= 3 else ordered
    return statistics.fmean(kept)


def repeats(medians: Sequence[float]) -> Repeats:
    """The repeats block from each repeat's median step."""
    mean = statistics.fmean(medians)
    cv = 100.0 * statistics.stdev(medians) / mean if len(medians) > 1 else 0.0
    return Repeats(median_ms=list(medians), olympic_mean_ms=olympic_mean(medians), cv_pct=cv)


def summarize_ms(ms: list[float], batch_size: int, training_flops_per_image: float) -> Summary:
    """Statistics of per-step wall times (ms) and the throughput figures derived from the median."""
    if not ms:
        return Summary(steps=0)
    arr = np.asarray(ms, dtype=float)
    median = float(np.median(arr))
    ms_per_image = median / batch_size
    failed: list[str] = []
    ci = _guarded(median_ci, arr, "the median's interval", failed)
    found_outliers = _guarded(outliers, arr, "outliers", failed)
    found_drift = _guarded(drift, arr, "drift", failed)
    n = len(arr)
    methods = (
        f"median CI: {ci_method(n)}; drift: Spearman's ρ on all {n} steps, Theil–Sen slope on "
        f"{min(n, THEIL_SEN_POINTS)}" + (f"; not computed: {', '.join(failed)}" if failed else "")
    )
    return Summary(
        steps=len(ms),
        median_ms=median,
        median_ci95_ms=None if ci is None else list(ci),
        mean_ms=float(arr.mean()),
        stdev_ms=float(arr.std(ddof=1)) if len(ms) > 1 else 0.0,
        p10_ms=float(np.percentile(arr, 10)),
        p90_ms=float(np.percentile(arr, 90)),
        min_ms=float(arr.min()),
        max_ms=float(arr.max()),
        ms_per_image=ms_per_image,
        images_per_s=1000.0 / ms_per_image,
        seconds_per_100k_images=ms_per_image * IMAGES_PER_EXTRAPOLATION / 1000.0,
        tflops=training_flops_per_image * batch_size / (median / 1000.0) / 1e12,
        outliers=found_outliers,
        drift=found_drift,
        methods=methods,
    )


def _guarded(statistic, arr: np.ndarray, name: str, failed: list[str]):
    """`statistic(arr)`, or None (its name and error added to `failed`) when it cannot be
    computed: a statistic must never cost the measurement it describes."""
    try:
        return statistic(arr)
    except (MemoryError, ValueError, ArithmeticError, RuntimeError) as e:
        failed.append(f"{name} ({type(e).__name__})")
        return None


def timed_steps(config: RunConfig, steps: list[StepRecord]) -> list[StepRecord]:
    """The steps the statistics are made of: timed steps, or full training batches in epochs."""
    wanted = TRAIN if config.epochs > 0 else TIMED
    return [s for s in steps if s.phase == wanted and s.images == config.batch_size]


def summarize_records(
    config: RunConfig,
    steps: list[StepRecord],
    epochs: list[EpochRecord],
    training_flops_per_image: float,
) -> Summary:
    """The summary block of a result, from its step and epoch records alone."""
    timed = timed_steps(config, steps)
    summary = summarize_ms([s.ms for s in timed], config.batch_size, training_flops_per_image)
    extra: dict = {
        "compile_ms": [s.ms for s in steps if s.phase == COMPILE],
        "warmup_ms": [s.ms for s in steps if s.phase == WARMUP],
    }
    if epochs:
        per_image = [e.train_s * 1000 / e.train_images for e in epochs]
        extra["epoch_train_s"] = [e.train_s for e in epochs]
        extra["epoch_validation_s"] = [e.validation_s for e in epochs]
        extra["epoch_ms_per_image_median"] = float(np.median(per_image))
    numbers = sorted({s.repeat for s in timed})
    if len(numbers) > 1:
        extra["repeats"] = repeats(
            [float(np.median([s.ms for s in timed if s.repeat == r])) for r in numbers]
        )
    return replace(summary, **extra)


def summarize(measurement: Measurement) -> Summary:
    """The summary block of a result file."""
    return summarize_records(
        measurement.config,
        measurement.steps,
        measurement.epochs,
        measurement.training_flops_per_image,
    )


def disagreements(stored: Summary, recomputed: Summary) -> list[str]:
    """The statistics of `stored` that its samples do not give (as in `recomputed`): fields
    present in both and different beyond rounding."""
    found = []
    for name in (*TIMED_FIELDS, "median_ci95_ms", "epoch_ms_per_image_median"):
        a, b = getattr(stored, name), getattr(recomputed, name)
        if a is None or b is None:
            continue
        pairs = zip(a, b, strict=True) if isinstance(a, list) else [(a, b)]
        if any(not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) for x, y in pairs):
            found.append(name)
    return found


@dataclass(frozen=True)
class Difference:
    """Two samples of ms per image compared: the speedup of B over A (> 1: B is faster)."""

    speedup: float  # median(A) / median(B)
    ci95: tuple[float, float] | None  # bootstrap of the ratio of medians; None: too few steps
    p_value: float | None  # Mann–Whitney U, two-sided
    verdict: str  # FASTER | SLOWER | NO_DIFFERENCE | TOO_FEW_STEPS
    p_method: str | None = None  # "exact" | "asymptotic": how p_value was computed

    @property
    def slowdown_pct(self) -> float:
        """How much longer B takes than A, in % (negative: B is faster)."""
        return 100.0 * (1.0 / self.speedup - 1.0)


def _log_ratio_ci(a: np.ndarray, b: np.ndarray, ratio: float) -> tuple[float, float] | None:
    """95 % interval of median(a) / median(b) from each median's order-statistic interval,
    combined on the log scale (the delta method), for samples too large to resample."""
    widths = []
    for arr in (a, b):
        low, high = _order_statistic_ci(arr) if len(arr) > 2 else (arr.min(), arr.max())
        if low <= 0:
            return None
        widths.append((math.log(high) - math.log(low)) / 2)
    half = math.hypot(*widths)
    return (ratio * math.exp(-half), ratio * math.exp(half))


def difference(a_ms: Sequence[float], b_ms: Sequence[float]) -> Difference:
    """Is B faster than A? Significant when Mann–Whitney's p < 0.01 and the 95 % interval of
    the speedup excludes 1."""
    a, b = np.asarray(a_ms, dtype=float), np.asarray(b_ms, dtype=float)
    speedup = float(np.median(a) / np.median(b))
    if max(len(a), len(b)) > BOOTSTRAP_MAX_STEPS and min(len(a), len(b)) >= 2:
        ci = _log_ratio_ci(a, b, speedup)
    else:
        ci = _bootstrap(
            (a, b), lambda x, y, axis: np.median(x, axis=axis) / np.median(y, axis=axis)
        )
    p_value = p_method = None
    verdict = NO_DIFFERENCE
    if len(a) >= 2 and len(b) >= 2:
        p_value, p_method = mann_whitney(a, b)
        if p_value < ALPHA and ci is not None and not ci[0] <= 1.0 <= ci[1]:
            verdict = FASTER if speedup > 1 else SLOWER
    if verdict == NO_DIFFERENCE and min_p_value(len(a), len(b)) >= ALPHA:
        verdict = TOO_FEW_STEPS  # "no difference" would claim what the test cannot see
    return Difference(speedup=speedup, ci95=ci, p_value=p_value, verdict=verdict, p_method=p_method)


def mann_whitney(a: np.ndarray, b: np.ndarray) -> tuple[float, str]:
    """Two-sided Mann–Whitney U p-value and its method: scipy's exact distribution where
    scipy would choose it ("auto") and the samples' product is at most EXACT_MAX_PAIRS,
    else the normal approximation with tie and continuity corrections. The exact method's
    time grows faster than the larger sample (10,000 vs 4 steps: 68 s), so a pair of any
    size is bounded: 20,000 pairs take about 0.1 s."""
    from scipy import stats

    tied = len(np.unique(np.concatenate([a, b]))) < len(a) + len(b)
    exact = min(len(a), len(b)) <= 8 and not tied and len(a) * len(b) <= EXACT_MAX_PAIRS
    method = "exact" if exact else "asymptotic"
    return float(stats.mannwhitneyu(a, b, alternative="two-sided", method=method).pvalue), method


def min_p_value(n: int, m: int) -> float:
    """The smallest two-sided p Mann–Whitney's exact test can give for samples of n and m
    steps without ties, 2 / C(n + m, n): every step of one sample slower than every step of
    the other. 1 below two steps a side, where no test is made."""
    if min(n, m) < 2:
        return 1.0
    if not (min(n, m) <= 8 and n * m <= EXACT_MAX_PAIRS):  # mann_whitney's normal approximation
        # U = 0, with the continuity correction: z = (nm/2 − 1/2) / √(nm(n + m + 1) / 12)
        z = (n * m / 2 - 0.5) / math.sqrt(n * m * (n + m + 1) / 12)
        return min(1.0, math.erfc(z / math.sqrt(2)))
    k = min(n, m, 40)  # C(max + 40, 40) ≥ C(80, 40) ≈ 1e23: no need to count further
    return min(1.0, 2 / math.comb(max(n, m) + k, k))


def steps_to_decide(n: int, m: int) -> int:
    """The fewest timed steps the shorter sample(s) need for p < ALPHA to be possible."""
    k = 2
    while min_p_value(max(n, k), max(m, k)) >= ALPHA:
        k += 1
    return k
