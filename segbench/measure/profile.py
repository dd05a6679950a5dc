"""Where a training step's time goes: each op's self time from the framework's profiler,
attributed to the kind of layer that ran it (convolution, batch norm, …, optimizer update).

A large share in convolutions says the device is the limit; a large share of step time in
which no op ran (`Profile.unattributed_share`) says the framework is. TensorFlow's ops carry
their Keras layer's name scope, forward and backward ("gradient_tape/model/enc1_conv/…").
torch's aten ops carry no layer name, so each leaf layer's forward runs inside a
record_function range for the profiled steps, and each backward op is matched to the forward
op that made it through the autograd sequence number. jax is not attributed.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segbench.measure import backend
from segbench.results.privacy import public_text
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


def profile_steps(
    model: Any, train_step: Callable[[Any, Any], Any], batch: tuple[Any, Any], steps: int = 3
) -> Profile:
    """Run `steps` more training steps of a compiled, warmed-up `model` under the framework's
    profiler and share their op time out by layer kind. Never raises for the profiler's sake:
    a failure is a Profile with the reason."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    name = backend.backend_name() if _keras_3(model) else "tensorflow"
    try:
        if name == "tensorflow":
            return _tensorflow_profile(model, train_step, batch, steps)
        if name == "torch":
            return _torch_profile(model, train_step, batch, steps)
    except Exception as e:  # noqa: BLE001 - a profile is a finding; its failure must not end the run
        return _failed(steps, f"{name} profiler", f"profiling on {name} failed: {_one_line(e)}")
    return _failed(steps, f"{name}: none", f"no profiler attribution for the {name} backend")


TABLE_HEADER = ("kind", "ms per step", "share %")


def profile_table_rows(profile: Profile) -> list[tuple[str, str, str]]:
    """Rows under TABLE_HEADER, largest share first."""
    ordered = sorted(profile.kinds, key=lambda k: (-k.share, KINDS.index(k.kind)))
    return [(k.kind, f"{k.ms_per_step:.1f}", f"{100 * k.share:.1f}") for k in ordered]


def _failed(steps: int, source: str, reason: str) -> Profile:
    return Profile(steps=steps, source=source, kinds=[], reason=reason)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "(no message)"
    text = text if len(text) <= 300 else text[:297] + "..."
    return public_text(f"{type(error).__name__}: {text}")


def _keras_3(model: Any) -> bool:
    """Whether `model` is a Keras 3 model (else tf-keras's, which runs on TensorFlow only)."""
    import keras

    return isinstance(model, keras.Model)


def _shares(totals_ms: dict[str, float], steps: int) -> list[KindShare]:
    """Each kind's KindShare from its total op time, in KINDS order, zero kinds left out."""
    total = sum(totals_ms.values())
    if total <= 0:
        return []
    return [
        KindShare(kind=kind, ms_per_step=totals_ms[kind] / steps, share=totals_ms[kind] / total)
        for kind in KINDS
        if totals_ms.get(kind, 0.0) > 0
    ]


def _busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of (start, end) intervals."""
    busy, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    return busy


def _unattributed(intervals: list[tuple[float, float]], wall_s: float) -> float | None:
    if wall_s <= 0 or not intervals:
        return None
    return min(1.0, max(0.0, 1.0 - _busy_seconds(intervals) / wall_s))


# --- layer kinds ---------------------------------------------------------------------------

# Keras layer classes by kind; a subclass (segbench's fused BatchNormalization, a user's
# Conv2D) takes the kind of the first class of its MRO found here.
_LAYER_KINDS = {
    **dict.fromkeys(
        (
            "Conv1D",
            "Conv2D",
            "Conv3D",
            "SeparableConv1D",
            "SeparableConv2D",
            "DepthwiseConv1D",
            "DepthwiseConv2D",
        ),
        CONVOLUTION,
    ),
    **dict.fromkeys(("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"), TRANSPOSED),
    **dict.fromkeys(("BatchNormalization", "SyncBatchNormalization"), BATCH_NORM),
    **dict.fromkeys(
        (
            "Activation",
            "ReLU",
            "LeakyReLU",
            "PReLU",
            "ELU",
            "Softmax",
            "Dropout",
            "SpatialDropout1D",
            "SpatialDropout2D",
            "SpatialDropout3D",
            "GaussianDropout",
            "AlphaDropout",
        ),
        ACTIVATION,
    ),
    # Padding and cropping move data as concatenation and upsampling do.
    **dict.fromkeys(
        (
            "Concatenate",
            "Add",
            "UpSampling1D",
            "UpSampling2D",
            "UpSampling3D",
            "ZeroPadding1D",
            "ZeroPadding2D",
            "ZeroPadding3D",
            "Cropping1D",
            "Cropping2D",
            "Cropping3D",
        ),
        CONCATENATION,
    ),
}
_LOSS_SCOPES = frozenset({"compile_loss", "compile_metrics", "loss", "metrics"})
_OPTIMIZER_SCOPES = frozenset({"update", "optimizer"})
_UNIQUE_SUFFIX = re.compile(r"_\d+$")  # TensorFlow makes a repeated name scope unique: conv_1


def layer_kind(layer: Any) -> str | None:
    """The kind of a Keras layer; None for a layer made of other layers (a nested model)."""
    for cls in type(layer).__mro__:
        if cls.__name__ in _LAYER_KINDS:
            return _LAYER_KINDS[cls.__name__]
    return None if _sublayers(layer) else OTHER


def _sublayers(layer: Any) -> list[Any]:
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _names(loss: Any) -> Iterator[str]:
    """The lowercase names of a compiled loss: a name, a function, or a list or dict of them."""
    if isinstance(loss, dict):
        loss = list(loss.values())
    if isinstance(loss, (list, tuple)):
        for item in loss:
            yield from _names(item)
    elif isinstance(loss, str):
        yield loss.lower()
    elif loss is not None:
        yield str(getattr(loss, "name", None) or getattr(loss, "__name__", "")).lower()


@dataclass(frozen=True)
class _Scopes:
    """What the name scopes in a model's op names stand for."""

    layers: dict[str, str | None]  # layer name → kind (None: a layer of layers)
    optimizer: frozenset[str]  # lowercase
    loss: frozenset[str]  # lowercase
    # Keras 3 on TensorFlow scopes a layer's ops "<name>_1" ("enc1_conv_1/convolution"),
    # tf-keras "<name>": which reading of "conv_1" is tried first.
    suffixed: bool = True

    @staticmethod
    def of(model: Any) -> _Scopes:
        layers = {
            layer.name: layer_kind(layer)
            for layer in model._flatten_layers(include_self=False, recursive=True)
        }
        optimizer = set(_OPTIMIZER_SCOPES)
        opt = getattr(model, "optimizer", None)
        while opt is not None:  # a LossScaleOptimizer wraps the one that updates
            optimizer |= {str(getattr(opt, "name", "")).lower(), type(opt).__name__.lower()}
            opt = getattr(opt, "inner_optimizer", None)
        optimizer.discard("")
        # tf-keras scopes the loss and each metric by its own name ("iou_mse_loss/…").
        loss = set(_LOSS_SCOPES) | set(_names(getattr(model, "loss", None)))
        loss |= {str(getattr(m, "name", "")).lower() for m in getattr(model, "metrics", [])}
        loss.discard("")
        return _Scopes(layers, frozenset(optimizer), frozenset(loss), _keras_3(model))

    def kind(self, op_name: str, op_type: str) -> str:
        """The kind of an op from its full name ("scope/…/op") and type."""
        for scope in op_name.split("/")[:-1]:
            bare = _UNIQUE_SUFFIX.sub("", scope)
            for name in (bare, scope) if self.suffixed else (scope, bare):
                if name in self.layers:
                    kind = self.layers[name]
                    if kind is not None:
                        return kind
                    break  # a nested model: its layers are further down the name
                if name.lower() in self.optimizer:
                    return OPTIMIZER
                if name.lower() in self.loss:
                    return LOSS
        if op_type.startswith(("ResourceApply", "ApplyGradient")):
            return OPTIMIZER
        return OTHER


# --- TensorFlow ----------------------------------------------------------------------------

# An op's event on the host: "full/op/name:OpType" (TensorFlow's TraceMe for an op kernel).
_TF_OP_EVENT = re.compile(r"^([^\s:]+):([A-Za-z_][\w]*)$")
_XLA_REASON = (
    "XLA (--compile) ran the step as one program: on the CPU its profile names XLA's fused "
    "operations, not Keras layers (profile without --compile)"
)
# Stats of a GPU kernel event that may name the TensorFlow op that launched it.
_KERNEL_OP_STATS = ("tf_op", "kernel_annotation", "level 0")


def _tensorflow_profile(model: Any, train_step: Callable, batch: tuple, steps: int) -> Profile:
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
    return _attribute_xspace(space, _Scopes.of(model), steps, wall_s, gpu)


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
    space: Any, scopes: _Scopes, steps: int, wall_s: float, gpu_present: bool = False
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
        return _failed(steps, source, "the profile names no TensorFlow op of any GPU kernel")
    if not kernels and any("hlo_op" in _stat_names(p).values() for p in host):
        return _failed(steps, source, _XLA_REASON)
    totals: dict[str, float] = {}
    intervals = []
    for op_name, op_type, start_s, self_s, duration_s in events:
        kind = scopes.kind(op_name, op_type)
        totals[kind] = totals.get(kind, 0.0) + self_s * 1000
        intervals.append((start_s, start_s + duration_s))
    kinds = _shares(totals, steps)
    if not kinds:
        return _failed(steps, source, "the profile holds no op events")
    return Profile(
        steps=steps, source=source, kinds=kinds, unattributed_share=_unattributed(intervals, wall_s)
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


# --- torch ---------------------------------------------------------------------------------

_RANGE = "segbench "  # the record_function ranges segbench opens: "segbench <kind>"
_TORCH_OPTIMIZER_OPS = ("aten::_foreach_",)


def _torch_profile(model: Any, train_step: Callable, batch: tuple, steps: int) -> Profile:
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
    kinds = _shares(totals, steps)
    what = "CUDA kernel" if cuda else "CPU op"
    device = "CUDA" if cuda else "MPS: host time, no GPU kernels traced" if mps else "CPU"
    source = (
        f"torch profiler (aten {what} self time, by layer forward range and autograd "
        f"sequence number), {device}"
    )
    if not kinds:
        return _failed(steps, source, "the profile holds no op events")
    return Profile(
        steps=steps, source=source, kinds=kinds, unattributed_share=_unattributed(intervals, wall_s)
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
