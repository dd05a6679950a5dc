"""What a process that runs many trials keeps between them: tune's workers (measure/tune_worker.py)
stage the data once and run the numerics check once per set of kernels, and may tell a trial to
stop timing after a step far slower than the best found so far. Off in a `segbench run`, which
runs once: everything is computed afresh, and every step asked for is timed."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

_KEPT: dict[tuple[str, Hashable], object] | None = None  # None: off


def keep_between_runs() -> None:
    """Turn reuse on for the rest of this process (a tune worker, at its start)."""
    global _KEPT
    if _KEPT is None:
        _KEPT = {}


def once(kind: str, key: Hashable, compute: Callable[[], T]) -> T:
    """compute(), or, in a process that keeps things between runs, what it returned for the same
    (kind, key) before. An exception is never kept: the next run computes again."""
    if _KEPT is None:
        return compute()
    if (kind, key) not in _KEPT:
        _KEPT[kind, key] = compute()
    return _KEPT[kind, key]  # type: ignore[return-value]


_STOP_ABOVE_MS_PER_IMAGE: float | None = None


def stop_timing_above(ms_per_image: float | None) -> None:
    """The next runs of this process end their timed steps after the first step slower than
    `ms_per_image` (None: every step asked for): a tune trial that cannot win."""
    global _STOP_ABOVE_MS_PER_IMAGE
    _STOP_ABOVE_MS_PER_IMAGE = ms_per_image


def far_too_slow(ms: float, images: int) -> bool:
    """Whether a timed step of `ms` for `images` ends the timed steps (stop_timing_above)."""
    limit = _STOP_ABOVE_MS_PER_IMAGE
    return limit is not None and images > 0 and ms / images > limit
