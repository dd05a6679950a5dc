"""The profile record: a training step's op time by the kind of layer that ran it (convolution,
batch norm, …, optimizer update), with the share of step time in which no op ran.

A large share in convolutions says the device is the limit; a large share of step time in
which no op ran (`Profile.unattributed_share`) says the framework is. Each kind's counted
training FLOPs over its op time give its achieved TFLOP/s, and against the run's measured
matmul ceiling, how far from the device's best its kernels run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from segbench.results.schema import NON_NEGATIVE, OPTIONAL, OPTIONAL_POSITIVE, POSITIVE

CONVOLUTION = "convolution"
TRANSPOSED = "transposed convolution"
BATCH_NORM = "batch norm"
ACTIVATION = "activation/dropout"
CONCATENATION = "concatenation/upsampling"
LOSS = "loss/metrics"
OPTIMIZER = "optimizer update"
OTHER = "other"
KINDS = (CONVOLUTION, TRANSPOSED, BATCH_NORM, ACTIVATION, CONCATENATION, LOSS, OPTIMIZER, OTHER)

SHARE = {**NON_NEGATIVE, "maximum": 1.0}
SHARES_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True, kw_only=True)
class KindShare:
    """The op time of one kind of layer in the profiled steps, and what it achieved.

    The FLOP fields are absent for kinds that count no FLOPs, and in files made before them.
    """

    kind: str = field(metadata={"enum": KINDS})
    ms_per_step: float = field(metadata=NON_NEGATIVE)
    share: float = field(metadata=SHARE)  # of all attributed op (or GPU kernel) time, 0..1
    # the kind's layers' training FLOPs per step: 3 × forward × batch (flops.py's count)
    gflop_per_step: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    # what the kind's op time achieved: gflop_per_step ÷ ms_per_step
    achieved_tflops: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    # achieved_tflops as a % of the run's measured matmul ceiling (peak.measured_tflops)
    achieved_pct_of_measured: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)


@dataclass(frozen=True, kw_only=True)
class Profile:
    """Op time by layer kind over `steps` extra training steps under the framework's profiler.

    `kinds` holds the kinds that took any time, in KINDS order, shares summing to 1; it is
    empty with a `reason` when there is no profile (jax, or the profiler failed).
    `unattributed_share`: the share of the steps' wall time in which no op (on the CPU) or no
    kernel (on a GPU) ran: the framework's own time, Python and waiting.
    """

    steps: int = field(metadata=POSITIVE)
    source: str  # the profiler, what it timed and on which device
    kinds: list[KindShare]
    # of the steps' wall time: no op or kernel ran
    unattributed_share: float | None = field(default=None, metadata={**OPTIONAL, **SHARE})
    reason: str | None = field(default=None, metadata=OPTIONAL)  # why `kinds` is empty

    def validate(self) -> None:
        """Raise ValueError when the kinds repeat, are unknown or their shares do not add up."""
        names = [k.kind for k in self.kinds]
        if len(set(names)) != len(names):
            raise ValueError(f"a layer kind appears twice: {', '.join(names)}")
        if self.kinds and abs(sum(k.share for k in self.kinds) - 1.0) > SHARES_SUM_TOLERANCE:
            raise ValueError("the kinds' shares do not add up to 1")
        if not self.kinds and self.reason is None:
            raise ValueError("a profile without kinds says why (reason)")


TABLE_HEADER = ("kind", "ms per step", "share %", "TFLOP/s", "% of measured ceiling")


ALL_KINDS = "all kinds"


def profile_table_rows(profile: Profile) -> list[tuple[str, ...]]:
    """Rows under TABLE_HEADER, largest share first, then ALL_KINDS where FLOPs were counted;
    "—" where a kind counts no FLOPs or the ceiling was not measured."""
    ordered = sorted(profile.kinds, key=lambda k: (-k.share, KINDS.index(k.kind)))
    rows = [(k.kind, f"{k.ms_per_step:.1f}", f"{100 * k.share:.1f}", *_compute(k)) for k in ordered]
    total = op_time_totals(profile)
    if total is not None:
        rows.append((ALL_KINDS, f"{total.ms_per_step:.1f}", "100.0", *_compute(total)))
    return rows


def _compute(k: KindShare | OpTimeTotals) -> tuple[str, str]:
    tflops, pct = k.achieved_tflops, k.achieved_pct_of_measured
    return ("—" if tflops is None else f"{tflops:.3g}", "—" if pct is None else f"{pct:.1f}")


@dataclass(frozen=True)
class OpTimeTotals:
    """Every kind of a profile together (not kept in the result: made from its kinds)."""

    ms_per_step: float
    gflop_per_step: float
    achieved_tflops: float
    achieved_pct_of_measured: float | None


def op_time_totals(profile: Profile) -> OpTimeTotals | None:
    """The counted FLOPs over all op time: each kind's TFLOP/s (and % of the ceiling)
    weighted by its share of op time; None where no FLOPs were counted. Times
    (1 − unattributed_share) where ops never overlap (a GPU's one stream), it is the
    profiled steps' own achieved TFLOP/s."""
    counted = [k for k in profile.kinds if k.achieved_tflops is not None]
    if not counted:
        return None
    pcts = [k.achieved_pct_of_measured for k in counted]
    return OpTimeTotals(
        ms_per_step=sum(k.ms_per_step for k in profile.kinds),
        gflop_per_step=sum(k.gflop_per_step for k in counted),
        achieved_tflops=sum(k.share * k.achieved_tflops for k in counted),
        achieved_pct_of_measured=None
        if None in pcts
        else sum(k.share * pct for k, pct in zip(counted, pcts, strict=True)),
    )


def failed(steps: int, source: str, reason: str) -> Profile:
    """A Profile without kinds, saying why."""
    return Profile(steps=steps, source=source, kinds=[], reason=reason)


def kind_shares(totals_ms: dict[str, float], steps: int) -> list[KindShare]:
    """Each kind's KindShare from its total op time, in KINDS order, zero kinds left out."""
    total = sum(totals_ms.values())
    if total <= 0:
        return []
    return [
        KindShare(kind=kind, ms_per_step=totals_ms[kind] / steps, share=totals_ms[kind] / total)
        for kind in KINDS
        if totals_ms.get(kind, 0.0) > 0
    ]


def with_flops(profile: Profile, forward_flops: dict[str, float], batch_size: int) -> Profile:
    """`profile` with each kind's training GFLOP per step (3 × `forward_flops`, one sample's
    forward FLOPs by kind, × `batch_size`) and its achieved TFLOP/s over its op time. A kind
    that took no op time is not in the profile, nor are its FLOPs."""
    kinds = []
    for k in profile.kinds:
        gflop = 3.0 * forward_flops.get(k.kind, 0.0) * batch_size / 1e9
        if gflop > 0 and k.ms_per_step > 0:  # GFLOP per ms is TFLOP/s
            k = replace(k, gflop_per_step=gflop, achieved_tflops=gflop / k.ms_per_step)
        kinds.append(k)
    return replace(profile, kinds=kinds)


def with_ceiling(profile: Profile, ceiling_tflops: float | None) -> Profile:
    """`profile` with each counted kind's TFLOP/s as a % of the measured matmul ceiling."""
    if ceiling_tflops is None or ceiling_tflops <= 0:
        return profile
    kinds = [
        k
        if k.achieved_tflops is None
        else replace(k, achieved_pct_of_measured=100 * k.achieved_tflops / ceiling_tflops)
        for k in profile.kinds
    ]
    return replace(profile, kinds=kinds)


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of (start, end) intervals."""
    busy, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    return busy


def unattributed_share(intervals: list[tuple[float, float]], wall_s: float) -> float | None:
    """The share of `wall_s` (seconds) that no interval covers; None without intervals or time."""
    if wall_s <= 0 or not intervals:
        return None
    return min(1.0, max(0.0, 1.0 - busy_seconds(intervals) / wall_s))
