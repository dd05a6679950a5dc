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
_FASTEST_MS_PER_IMAGE = float("inf")  # of the timed steps since stop_timing_above


def stop_timing_above(ms_per_image: float | None) -> None:
    """The next run of this process ends its timed steps as soon as every timed step so far is
    slower than `ms_per_image` (None: every step asked for): a tune trial that cannot win."""
    global _STOP_ABOVE_MS_PER_IMAGE, _FASTEST_MS_PER_IMAGE
    _STOP_ABOVE_MS_PER_IMAGE = ms_per_image
    _FASTEST_MS_PER_IMAGE = float("inf")


def far_too_slow(ms: float, images: int) -> bool:
    """Whether a timed step of `ms` for `images` ends the timed steps: it and every timed
    step before it slower than stop_timing_above's limit (one slow step after a fast one
    does not)."""
    global _FASTEST_MS_PER_IMAGE
    limit = _STOP_ABOVE_MS_PER_IMAGE
    if limit is None or images <= 0:
        return False
    _FASTEST_MS_PER_IMAGE = min(_FASTEST_MS_PER_IMAGE, ms / images)
    return limit < _FASTEST_MS_PER_IMAGE
