"""TensorFlow's profiler for segbench's profile: run the steps under it, read the XSpace it
writes, and share each op's self time (GPU kernels, else host op events) by layer kind.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from segbench.measure import backend
from segbench.measure.profile.layer_kinds import Scopes
from segbench.measure.profile.record import Profile, failed, kind_shares, unattributed_share

# An op's event on the host: "full/op/name:OpType" (TensorFlow's TraceMe for an op kernel).
_TF_OP_EVENT = re.compile(r"^([^\s:]+):([A-Za-z_][\w]*)$")
_XLA_REASON = (
    "XLA (--compile) ran the step as one program: on the CPU its profile names XLA's fused "
    "operations, not Keras layers (profile without --compile)"
)
# Stats of a GPU kernel event that may name the TensorFlow op that launched it.
_KERNEL_OP_STATS = ("tf_op", "kernel_annotation", "level 0")


def tensorflow_profile(model: Any, train_step: Callable, batch: tuple, steps: int) -> Profile:
    """Run `steps` training steps under TensorFlow's profiler and share their op time by kind."""
    import tensorflow as tf

    x, y = batch
    with tempfile.TemporaryDirectory(prefix="segbench-profile-") as logdir:
        tf.profiler.experimental.start(logdir)  # fails when another profile is running
        try:
            start = time.perf_counter()
            for _ in range(steps):
                train_step(x, y)
            backend.synchronize()
            wall_s = time.perf_counter() - start
        finally:
            tf.profiler.experimental.stop()
        space = _read_xspace(Path(logdir))
    gpu = bool(tf.config.list_logical_devices("GPU"))
    return _attribute_xspace(space, Scopes.of(model), steps, wall_s, gpu)


def _read_xspace(logdir: Path) -> Any:
    """The XSpace the profiler wrote under `logdir` (plugins/profile/<run>/<host>.xplane.pb)."""
    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError:  # where TensorFlow ships it under core
        from tensorflow.core.profiler.protobuf import xplane_pb2

    files = sorted(logdir.glob("plugins/profile/*/*.xplane.pb"))
    if not files:
        raise FileNotFoundError("the profiler wrote no .xplane.pb file")
    space = xplane_pb2.XSpace()
    space.ParseFromString(files[-1].read_bytes())
    return space


def _attribute_xspace(
    space: Any, scopes: Scopes, steps: int, wall_s: float, gpu_present: bool = False
) -> Profile:
    """Op self time by kind: GPU kernels where a GPU plane has any, else host op events
    (which on a GPU whose kernels are not traced, as Metal's, time the ops' host side)."""
    gpu = [p for p in space.planes if p.name.startswith("/device:GPU:")]
    host = [p for p in space.planes if p.name.startswith("/host:CPU")]
    kernels = [e for p in gpu for e in _kernel_events(p)]
    if kernels:
        events, where = kernels, "GPU kernels"
    else:
        events, where = [e for p in host for e in _host_op_events(p)], "host op events"
    device = "GPU" if kernels else "no GPU kernels traced" if gpu_present else "CPU"
    source = f"tensorflow profiler (XSpace {where}, by Keras layer name scope), {device}"
    if kernels and not any(op_name for op_name, *_ in kernels):
        return failed(steps, source, "the profile names no TensorFlow op of any GPU kernel")
    if not kernels and any("hlo_op" in _stat_names(p).values() for p in host):
        return failed(steps, source, _XLA_REASON)
    totals: dict[str, float] = {}
    intervals = []
    for op_name, op_type, start_s, self_s, duration_s in events:
        kind = scopes.kind(op_name, op_type)
        totals[kind] = totals.get(kind, 0.0) + self_s * 1000
        intervals.append((start_s, start_s + duration_s))
    kinds = kind_shares(totals, steps)
    if not kinds:
        return failed(steps, source, "the profile holds no op events")
    return Profile(
        steps=steps,
        source=source,
        kinds=kinds,
        unattributed_share=unattributed_share(intervals, wall_s),
    )


Event = tuple[str, str, float, float, float]  # op name, op type, start s, self s, duration s


def _stat_names(plane: Any) -> dict[int, str]:
    return {key: meta.name for key, meta in plane.stat_metadata.items()}


def _host_op_events(plane: Any) -> Iterator[Event]:
    """Op events on a host plane's threads, with self time: an op's time less that of the
    ops nested in it on the same thread (a function call's body)."""
    for line in plane.lines:
        ops = []
        for event in line.events:
            match = _TF_OP_EVENT.match(plane.event_metadata[event.metadata_id].name)
            if match:
                start_ps = line.timestamp_ns * 1000 + event.offset_ps
                ops.append((start_ps, event.duration_ps, match.group(1), match.group(2)))
        ops.sort(key=lambda op: (op[0], -op[1]))
        children_ps = [0] * len(ops)
        open_ops: list[int] = []  # indices of the ops that enclose the current one
        for i, (start, duration, _, _) in enumerate(ops):
            while open_ops and ops[open_ops[-1]][0] + ops[open_ops[-1]][1] <= start:
                open_ops.pop()
            if open_ops:
                children_ps[open_ops[-1]] += duration
            open_ops.append(i)
        for (start, duration, name, op_type), nested in zip(ops, children_ps, strict=True):
            yield name, op_type, start / 1e12, max(0, duration - nested) / 1e12, duration / 1e12


def _kernel_events(plane: Any) -> Iterator[Event]:
    """GPU kernel events (the plane's "Stream #…" lines), each named by the op that launched
    it where a stat says which; kernels do not nest."""
    stats = _stat_names(plane)
    for line in plane.lines:
        if not line.name.startswith("Stream"):
            continue  # derived lines ("TensorFlow Ops", "XLA Ops", …) repeat the kernels
        for event in line.events:
            op_name, op_type = "", ""
            for stat in event.stats:
                if stats.get(stat.metadata_id) in _KERNEL_OP_STATS:
                    text = stat.str_value or stats.get(stat.ref_value, "")
                    # annotations nest as "outer::inner"; an op is "name:type", maybe "#id=…#"
                    op = text.split("::")[-1].split("#")[0]
                    op_name, _, op_type = op.rpartition(":")
                    break
            start = line.timestamp_ns / 1e9 + event.offset_ps / 1e12
            duration = event.duration_ps / 1e12
            yield op_name, op_type, start, duration, duration
