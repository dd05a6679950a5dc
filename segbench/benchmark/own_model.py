"""A user's own Keras 3 model for `segbench run --model SPEC --model-arg key=value`.

SPEC names a function that builds the model:
- `package.module:function` (imported as Python imports it, the current folder searched last),
- `path/to/file.py:function` (a relative path is read from the current folder),
- a name from reference_models.py (`resnet50`).

The function is called with the `--model-arg` values as keyword arguments and returns one of:
- a Keras 3 model (uncompiled): the loss is the default for its output activation;
- a compiled Keras 3 model: its loss, optimizer and metrics are kept and recorded;
- `(model, loss)`: a loss as `model.compile` takes one (a name, a keras.losses.Loss, a function);
- `{"model": model, "loss": ..., "optimizer": ..., "metrics": [...]}` ("model" alone is enough).

The model needs exactly one input and one output, both with static shapes (only the batch
dimension may be None). Default losses by output activation: sigmoid → binary cross-entropy,
softmax → categorical cross-entropy, anything else ("linear") → mean squared error.

Every problem is a ModelError (BadInput, exit 2) whose one-line message names the spec and
what to change.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import keyword
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segbench.benchmark.model_architecture import model_digest, stable_repr
from segbench.benchmark.model_spec import (
    _REAL_EXIT,
    UserExit,
    exit_guarded,
    first_line,
    resolve_spec,
    spec_error,
)
from segbench.benchmark.triangles import Split
from segbench.errors import BadInput, raised_by_user_code

if TYPE_CHECKING:  # keras is imported once a model is built, after the backend is chosen
    import keras

ACTIVATIONS = ("sigmoid", "softmax", "linear")
DEFAULT_LOSSES = {
    "sigmoid": "binary_crossentropy",
    "softmax": "categorical_crossentropy",
    "linear": "mean_squared_error",
}
RETURN_FORMS = 'a keras.Model, (model, loss) or {"model": ..., "loss": ..., "optimizer": ...}'
_DICT_KEYS = ("model", "loss", "optimizer", "metrics")
# Layers that move or copy values without changing them: the output activation is looked
# for behind them.
_PASS_THROUGH = frozenset(
    {"Reshape", "Flatten", "Permute", "Identity", "Dropout", "Cropping1D", "Cropping2D"}
    | {"Cropping3D", "ActivityRegularization", "SpatialDropout2D", "GaussianDropout"}
)


@dataclass(frozen=True)
class OwnModel:
    """A built user model and what a result records about it.

    `source`/`source_sha256`: the file the function comes from (None for a module without
    one); `loss_origin`: "function" (returned with the model), "compiled" (the model was
    compiled) or "default" (from the output activation); `digest`: sha256 over the source
    digest, the spec, the sorted arguments and the architecture (layer names left out), for
    caching and for `compare`.
    """

    model: keras.Model
    spec: str
    function: str
    source: Path | None
    source_sha256: str | None
    args: dict[str, Any]
    parameters: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    activation: str
    loss: Any
    loss_name: str
    loss_origin: str
    optimizer: Any
    metrics: list | None
    digest: str

    @property
    def optimizer_given(self) -> bool:
        """True when the function chose the optimizer (compiled model or returned dict)."""
        return self.optimizer is not None

    def record(self) -> dict[str, Any]:
        """The JSON-ready description a result file keeps (no model object)."""
        return {
            "spec": self.spec,
            "function": self.function,
            "source": None if self.source is None else str(self.source),
            "source_sha256": self.source_sha256,
            "args": {k: _jsonable(v) for k, v in sorted(self.args.items())},
            "parameters": self.parameters,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "activation": self.activation,
            "loss": self.loss_name,
            "loss_origin": self.loss_origin,
            "optimizer": None if self.optimizer is None else _name_of(self.optimizer),
            "optimizer_given": self.optimizer_given,
            "metrics": None if self.metrics is None else [_name_of(m) for m in self.metrics],
            "digest": self.digest,
        }


def parse_model_args(items: list[str]) -> dict[str, Any]:
    """`--model-arg key=value` strings as keyword arguments. Values are Python literals where
    they parse as one (8, 0.5, (128, 128), 'text'), true/false/none in any case are booleans
    and None, anything else is the string as given; BadInput for a malformed item."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier() or keyword.iskeyword(key):
            raise BadInput(
                f"--model-arg {item!r}: expected key=value with a Python name as the key, "
                "e.g. --model-arg base_filters=8"
            )
        if key in parsed:
            raise BadInput(f"--model-arg {key} is given twice: keep one")
        parsed[key] = _literal(text.strip())
    return parsed


def _literal(text: str) -> Any:
    named = {"true": True, "false": False, "none": None}
    if text.lower() in named:
        return named[text.lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def build_own_model(spec: str, args: dict[str, Any] | None = None) -> OwnModel:
    """Call the function SPEC names with `args` as keyword arguments and describe the model
    it returns; ModelError (exit 2) for anything that cannot be benchmarked."""
    args = dict(args or {})
    function, source = resolve_spec(spec)
    if function is _REAL_EXIT:  # --model os:_exit: it would end the process, exit 0
        raise spec_error(spec, "names os._exit, which ends the process; name a model builder")
    name = getattr(function, "__name__", spec.rpartition(":")[2])
    _check_arguments(spec, function, name, args)
    try:
        with exit_guarded():
            returned = function(**args)
    except (SystemExit, UserExit) as e:  # sys.exit or os._exit in the user's code: no model
        kind = "sys.exit" if isinstance(e, SystemExit) else "os._exit"
        raise spec_error(
            spec,
            f"{name}({_call_text(args)}) called {kind}({e.code!r}) instead of returning a "
            "model; return the model from the function",
        ) from None
    except (Exception, KeyboardInterrupt) as e:
        if isinstance(e, KeyboardInterrupt) and not raised_by_user_code(e):
            raise  # a Ctrl-C that arrived while the model was built
        raise spec_error(
            spec,
            f"{name}({_call_text(args)}) raised {type(e).__name__}: {first_line(e)}; "
            "fix the function or its --model-arg values",
        ) from e
    model, loss, optimizer, metrics = _unpack(spec, name, returned)
    input_shape, output_shape = _shapes(spec, model)
    activation = output_activation(model)
    loss_origin = "function" if loss is not None else None
    if getattr(model, "compiled", False):
        compiled = getattr(getattr(model, "_compile_config", None), "config", {})
        if loss is None and model.loss is not None:
            loss, loss_origin = model.loss, "compiled"
        optimizer = optimizer if optimizer is not None else model.optimizer
        metrics = metrics if metrics is not None else compiled.get("metrics")
    if loss is None:
        loss, loss_origin = default_loss(activation), "default"
    source_sha256 = None if source is None else hashlib.sha256(source.read_bytes()).hexdigest()
    return OwnModel(
        model=model,
        spec=spec,
        function=name,
        source=source,
        source_sha256=source_sha256,
        args=args,
        parameters=int(model.count_params()),
        input_shape=input_shape,
        output_shape=output_shape,
        activation=activation,
        loss=loss,
        loss_name=_name_of(loss),
        loss_origin=loss_origin,
        optimizer=optimizer,
        metrics=None if metrics is None else list(metrics),
        digest=model_digest(source_sha256, spec, args, model),
    )


def default_loss(activation: str) -> Any:
    """The loss for an output activation when the function gives none (a keras.losses.Loss)."""
    import keras

    return {
        "sigmoid": keras.losses.BinaryCrossentropy,
        "softmax": keras.losses.CategoricalCrossentropy,
    }.get(activation, keras.losses.MeanSquaredError)()


def synthetic_split(own: OwnModel, count: int, seed: int) -> Split:
    """`count` random samples for `own`, held as uint8 like the triangles (Split.batch scales
    both by 1/255): images of the input shape; targets of the output shape, binary masks for
    sigmoid, one-hot classes for softmax, values in [0, 1] for linear. Fixed by `seed`."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, *own.input_shape), dtype=np.uint8)
    shape = (count, *own.output_shape)
    if own.activation == "sigmoid":
        targets = rng.integers(0, 2, size=shape, dtype=np.uint8) * np.uint8(255)
    elif own.activation == "softmax":
        classes = rng.integers(0, shape[-1], size=shape[:-1])
        targets = np.eye(shape[-1], dtype=np.uint8)[classes] * np.uint8(255)
    else:
        targets = rng.integers(0, 256, size=shape, dtype=np.uint8)
    digest = hashlib.sha256(images.tobytes() + targets.tobytes()).hexdigest()
    return Split(images, targets, digest)


def synthetic_data(own: OwnModel, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) as float32 arrays in [0, 1]: `synthetic_split`, scaled."""
    return synthetic_split(own, count, seed).batch(slice(None))


def output_activation(model: keras.Model) -> str:
    """ "sigmoid", "softmax" or "linear" (any other activation): the activation of the layer
    that makes the model's output, looked for behind reshapes, crops and dropout."""
    from keras import layers

    tensor = model.outputs[0]
    for _ in range(1000):
        history = tensor._keras_history
        layer = history.operation
        if isinstance(layer, layers.Softmax):
            return "softmax"
        activation = getattr(layer, "activation", None)
        if activation is not None:
            name = getattr(activation, "__name__", "")
            return name if name in ("sigmoid", "softmax") else "linear"
        if getattr(layer, "outputs", None):  # a nested model: its own output
            tensor = layer.outputs[0]
            continue
        if type(layer).__name__ not in _PASS_THROUGH:
            return "linear"
        inputs = layer._inbound_nodes[history.node_index].input_tensors
        if len(inputs) != 1:
            return "linear"
        tensor = inputs[0]
    return "linear"


def _check_arguments(spec: str, function: Callable, name: str, args: dict[str, Any]) -> None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: let the call tell
        return
    try:
        signature.bind(**args)
    except TypeError as e:
        takes = ", ".join(signature.parameters) or "no arguments"
        raise spec_error(
            spec, f"{name}() {e} (it takes: {takes}); change the --model-arg values"
        ) from None


def _unpack(spec: str, name: str, returned: Any) -> tuple[Any, Any, Any, Any]:
    """(model, loss, optimizer, metrics) from what the function returned."""
    model, loss, optimizer, metrics = returned, None, None, None
    if isinstance(returned, dict):
        extra = sorted(set(returned) - set(_DICT_KEYS))
        if "model" not in returned or extra:
            raise spec_error(
                spec,
                f"{name}() returned a dict with keys {sorted(returned)}; expected 'model' and "
                "optionally 'loss', 'optimizer', 'metrics'",
            )
        model = returned["model"]
        loss, optimizer, metrics = (returned.get(k) for k in _DICT_KEYS[1:])
    elif isinstance(returned, (tuple, list)):
        if len(returned) != 2:
            raise spec_error(
                spec, f"{name}() returned {len(returned)} values; expected {RETURN_FORMS}"
            )
        model, loss = returned
    _check_model(spec, name, model)
    return model, loss, optimizer, metrics


def _check_model(spec: str, name: str, model: Any) -> None:
    import keras

    if isinstance(model, keras.Model):
        return
    kind = type(model)
    if kind.__module__.startswith(("tf_keras", "keras.engine", "keras.src.engine")):
        raise spec_error(
            spec,
            f"{name}() returned a Keras 2 model ({kind.__module__}); build it with "
            "`import keras` (Keras 3)",
        )
    if isinstance(model, keras.Layer):
        raise spec_error(
            spec,
            f"{name}() returned a layer ({kind.__name__}), not a model; return "
            "keras.Model(inputs, layer(inputs))",
        )
    raise spec_error(
        spec, f"{name}() returned a value of type {kind.__name__}; expected {RETURN_FORMS}"
    )


def _shapes(spec: str, model: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The static input and output shapes (batch left out), or ModelError."""
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError):
        inputs, outputs = [], []
    if not inputs or not outputs:
        raise spec_error(
            spec,
            "the model has no input shape: build it on keras.Input(shape=(...)) (for a "
            "Sequential model, make keras.Input its first layer)",
        )
    if len(inputs) != 1:
        raise spec_error(
            spec,
            f"the model takes {len(inputs)} inputs; segbench feeds one image tensor: "
            "return a model with one input",
        )
    if len(outputs) != 1:
        raise spec_error(
            spec,
            f"the model has {len(outputs)} outputs; segbench trains one: return a model with "
            "one output",
        )
    shapes = []
    for what, tensor in (("input", inputs[0]), ("output", outputs[0])):
        shape = tuple(tensor.shape)
        if len(shape) < 2 or any(d is None for d in shape[1:]):
            hint = (
                "give keras.Input every dimension but the batch, e.g. shape=(128, 128, 3)"
                if what == "input"
                else "make every output dimension but the batch fixed"
            )
            raise spec_error(spec, f"the {what} shape {shape} is not static: {hint}")
        shapes.append(tuple(int(d) for d in shape[1:]))
    return shapes[0], shapes[1]


def _call_text(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def _name_of(thing: Any) -> str:
    """A loss, optimizer or metric as a short name."""
    if isinstance(thing, str):
        return thing
    return str(getattr(thing, "name", None) or getattr(thing, "__name__", type(thing).__name__))


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return stable_repr(value)


def without_dropout(model: Any) -> None:
    """Turn off every dropout and noise layer of `model` (the numerics check: no randomness):
    rate (or stddev) 0, read by the layers when the step is traced."""
    for layer in model._flatten_layers(include_self=False):
        if "Dropout" in type(layer).__name__ and hasattr(layer, "rate"):
            layer.rate = 0.0
        elif type(layer).__name__ == "GaussianNoise":
            layer.stddev = 0.0


def own_model_of(config: Any) -> OwnModel:
    """The model a run's --model and --model-arg items name, built and described."""
    return build_own_model(config.model, parse_model_args(list(config.model_args or [])))
