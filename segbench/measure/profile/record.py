"""The profile record: a training step's op time by the kind of layer that ran it (convolution,
batch norm, …, optimizer update), with the share of step time in which no op ran.

A large share in convolutions says the device is the limit; a large share of step time in
which no op ran (`Profile.unattributed_share`) says the framework is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from segbench.results.schema import NON_NEGATIVE, OPTIONAL, POSITIVE

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
    """The op time of one kind of layer in the profiled steps."""

    kind: str = field(metadata={"enum": KINDS})
    ms_per_step: float = field(metadata=NON_NEGATIVE)
    share: float = field(metadata=SHARE)  # of all attributed op (or GPU kernel) time, 0..1


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


TABLE_HEADER = ("kind", "ms per step", "share %")


def profile_table_rows(profile: Profile) -> list[tuple[str, str, str]]:
    """Rows under TABLE_HEADER, largest share first."""
    ordered = sorted(profile.kinds, key=lambda k: (-k.share, KINDS.index(k.kind)))
    return [(k.kind, f"{k.ms_per_step:.1f}", f"{100 * k.share:.1f}") for k in ordered]


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
