"""torch's profiler for segbench's profile: each leaf layer's forward inside a record_function
range named by its kind, each backward op matched to the forward op that made it through the
autograd sequence number, and each op's self time (CUDA kernels, else CPU) shared by kind.

torch's aten ops carry no layer name, so the ranges are opened only for the profiled steps.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from segbench.measure import backend
from segbench.measure.profile.layer_kinds import layer_kind
from segbench.measure.profile.record import (
    LOSS,
    OPTIMIZER,
    OTHER,
    Profile,
    failed,
    kind_shares,
    unattributed_share,
)

_RANGE = "segbench "  # the record_function ranges segbench opens: "segbench <kind>"
_TORCH_OPTIMIZER_OPS = ("aten::_foreach_",)


def torch_profile(model: Any, train_step: Callable, batch: tuple, steps: int) -> Profile:
    """Run `steps` training steps under torch's profiler and share their op time by kind."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available()
    mps = not cuda and torch.backends.mps.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    x, y = batch
    with _torch_ranges(model), profile(activities=activities, record_shapes=False) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            train_step(x, y)
        backend.synchronize()
        wall_s = time.perf_counter() - start
    events = prof.events()
    cuda = cuda and any(_is_kernel(e) for e in events)  # else the model ran on the CPU
    totals, intervals = _attribute_torch_events(events, cuda)
    kinds = kind_shares(totals, steps)
    what = "CUDA kernel" if cuda else "CPU op"
    device = "CUDA" if cuda else "MPS: host time, no GPU kernels traced" if mps else "CPU"
    source = (
        f"torch profiler (aten {what} self time, by layer forward range and autograd "
        f"sequence number), {device}"
    )
    if not kinds:
        return failed(steps, source, "the profile holds no op events")
    return Profile(
        steps=steps,
        source=source,
        kinds=kinds,
        unattributed_share=unattributed_share(intervals, wall_s),
    )


@contextlib.contextmanager
def _torch_ranges(model: Any) -> Iterator[None]:
    """Each leaf layer's forward, the loss and metrics, and the optimizer's update inside a
    record_function range named by kind, for the duration; the hooks and wrappers are removed
    afterwards. The backward ops are matched to these later (sequence numbers)."""
    from torch.autograd.profiler import record_function

    opened: dict[int, list[Any]] = {}

    def enter(kind: str) -> Callable:
        def pre_hook(module: Any, args: Any) -> None:
            context = record_function(_RANGE + kind)
            context.__enter__()
            opened.setdefault(id(module), []).append(context)

        return pre_hook

    def leave(module: Any, args: Any, output: Any) -> None:
        if opened.get(id(module)):
            opened[id(module)].pop().__exit__(None, None, None)

    def wrapped(function: Callable, kind: str) -> Callable:
        def run(*args: Any, **kwargs: Any) -> Any:
            with record_function(_RANGE + kind):
                return function(*args, **kwargs)

        return run

    handles = []
    patched: list[tuple[Any, str]] = []
    try:
        for layer in model._flatten_layers(include_self=False, recursive=True):
            kind = layer_kind(layer)
            if kind is not None:  # a layer of layers: its own layers are hooked
                handles.append(layer.register_forward_pre_hook(enter(kind)))
                handles.append(layer.register_forward_hook(leave))
        for owner, method, kind in (
            (model, "compute_loss", LOSS),
            (model, "compute_metrics", LOSS),
            (getattr(model, "optimizer", None), "apply", OPTIMIZER),
        ):
            if owner is not None and callable(getattr(owner, method, None)):
                setattr(owner, method, wrapped(getattr(owner, method), kind))
                patched.append((owner, method))
        yield
    finally:
        for handle in handles:
            handle.remove()
        for owner, method in patched:
            with contextlib.suppress(AttributeError):
                delattr(owner, method)  # the class's method shows through again


def _attribute_torch_events(
    events: list[Any], cuda: bool
) -> tuple[dict[str, float], list[tuple[float, float]]]:
    """(ms by kind, busy intervals in seconds) of torch's FunctionEvents.

    An op's kind is that of the nearest enclosing segbench range; a backward op's is that of
    the forward op whose autograd node it runs (same sequence number); the optimizer's
    foreach ops are updates wherever they run; the rest is "other"."""
    forward_kind: dict[int, str] = {}
    ranged: dict[int, str | None] = {}

    def range_kind(event: Any) -> str | None:
        """The kind of the nearest enclosing segbench range, found once per event."""
        key = id(event)
        if key not in ranged:
            if event.name.startswith(_RANGE):
                ranged[key] = event.name[len(_RANGE) :]
            else:
                parent = event.cpu_parent
                ranged[key] = range_kind(parent) if parent is not None else None
        return ranged[key]

    ops = [e for e in events if not e.name.startswith(_RANGE) and not _is_kernel(e)]
    for event in ops:
        kind = range_kind(event)
        if kind is not None and getattr(event, "sequence_nr", -1) >= 0:
            forward_kind.setdefault(event.sequence_nr, kind)

    backward: dict[int, str | None] = {}

    def backward_kind(event: Any) -> str | None:
        """The kind of the forward op of the nearest enclosing autograd node, if any."""
        key = id(event)
        if key not in backward:
            kind = None
            if "evaluate_function" in event.name or event.name.endswith("Backward0"):
                kind = forward_kind.get(getattr(event, "sequence_nr", -1))
            if kind is None and event.cpu_parent is not None:
                kind = backward_kind(event.cpu_parent)
            backward[key] = kind
        return backward[key]

    totals: dict[str, float] = {}
    for event in ops:
        kind = range_kind(event) or backward_kind(event)
        if kind is None:
            kind = OPTIMIZER if event.name.startswith(_TORCH_OPTIMIZER_OPS) else OTHER
        self_us = _self_device_us(event) if cuda else event.self_cpu_time_total
        totals[kind] = totals.get(kind, 0.0) + self_us / 1000
    busy = [e for e in events if _is_kernel(e)] if cuda else ops
    intervals = [(e.time_range.start / 1e6, e.time_range.end / 1e6) for e in busy]
    return totals, intervals


def _is_kernel(event: Any) -> bool:
    return "CUDA" in str(getattr(event, "device_type", "CPU"))


def _self_device_us(event: Any) -> float:
    """An op's own GPU kernel time (torch 2.4 renamed cuda to device)."""
    value = getattr(event, "self_device_time_total", None)
    return float(value if value is not None else event.self_cuda_time_total)
