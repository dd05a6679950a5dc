"""The tune block of a result file (segbench tune): every trial and the session's verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field

from segbench.benchmark.config import DATA_FORMATS
from segbench.measure.profile.record import Profile
from segbench.results.schema import NON_NEGATIVE, OPTIONAL, POSITIVE

RAN, DEVIATES, FAILED, SKIPPED, NOT_RUN = "ran", "deviates", "failed", "skipped", "not run"
# Measured with a few short steps only (successive halving): it could not reach the best, or
# the session was stopped (a signal, the budget) before or during its full trial. Its figures
# are those steps' (a median, no CI); it never wins. Version 5.
PRUNED = "pruned"
STATUSES = (RAN, DEVIATES, FAILED, SKIPPED, NOT_RUN, PRUNED)


@dataclass(frozen=True, kw_only=True)
class TuneTrial:
    """One trial: its setting, what became of it, and its figures (per image)."""

    backend: str
    precision: str
    compile: bool
    batchnorm: str
    batch_size: int = field(metadata=POSITIVE)
    # --data-format; absent in files made before it (channels_last).
    data_format: str | None = field(default=None, metadata={**OPTIONAL, "enum": DATA_FORMATS})
    # ran: in full; pruned: short steps only; deviates: numerics deviate (or the loss
    # diverged); failed; skipped: cannot work here; not run: the budget, a signal or --trials.
    status: str = field(metadata={"enum": STATUSES})
    reason: str | None = field(default=None, metadata=OPTIONAL)  # why skipped, pruned, …
    command: str  # the `segbench run` command line of the trial
    compiled: str | None = field(default=None, metadata=OPTIONAL)  # what Keras really did
    wall_s: float | None = field(default=None, metadata={**OPTIONAL, **NON_NEGATIVE})
    ms_per_image: float | None = field(default=None, metadata={**OPTIONAL, **POSITIVE})
    ci95_ms_per_image: list[float] | None = field(default=None, metadata=OPTIONAL)
    images_per_s: float | None = field(default=None, metadata={**OPTIONAL, **POSITIVE})
    j_per_image: float | None = field(default=None, metadata={**OPTIONAL, **POSITIVE})
    numerics: str | None = field(default=None, metadata=OPTIONAL)  # match | deviates | skipped
    samples_ms_per_image: list[float] | None = field(default=None, metadata=OPTIONAL)

    @property
    def eligible(self) -> bool:
        """Can win: it ran, and its numerics did not deviate."""
        return self.status == RAN and self.images_per_s is not None


@dataclass(frozen=True, kw_only=True)
class TuneInfo:
    """A tune session: every trial, the default's and the winners' places, the winner's
    speedup over the default (with its bootstrap 95 % CI) and its command line."""

    preset: str
    budget_s: float = field(metadata=POSITIVE)
    elapsed_s: float = field(metadata=NON_NEGATIVE)
    stopped_by: str | None = field(default=None, metadata=OPTIONAL)  # "budget", "SIGINT", …
    trials: list[TuneTrial]
    default: int = field(metadata=NON_NEGATIVE)  # index of the default setting's trial
    fastest: int | None = field(default=None, metadata=OPTIONAL)
    most_efficient: int | None = field(default=None, metadata=OPTIONAL)  # lowest J/image
    speedup: float | None = field(default=None, metadata=OPTIONAL)  # fastest vs default
    speedup_ci95: list[float] | None = field(default=None, metadata=OPTIONAL)
    command: str | None = field(default=None, metadata=OPTIONAL)  # the fastest's `segbench run`
    # Where the default setting's step time goes (the winner's is its result's own profile).
    default_profile: Profile | None = field(default=None, metadata=OPTIONAL)
