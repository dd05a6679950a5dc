"""What a process that runs many trials keeps between them: tune's workers (measure/tune_worker.py)
stage the data once and run the numerics check once per set of kernels. Off in a `segbench run`,
which runs once: everything is computed afresh, as before."""

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
