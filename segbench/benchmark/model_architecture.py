"""A Keras model's architecture as data, and the digest that identifies a user's model by its
source, spec, arguments and architecture (for caching and for `compare`).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras


def model_digest(
    source_sha256: str | None, spec: str, args: dict[str, Any], model: keras.Model
) -> str:
    """sha256 over the source digest, the spec, the sorted arguments and the architecture."""
    payload = json.dumps(
        {
            "source_sha256": source_sha256,
            "spec": spec,
            "args": [[k, repr(v)] for k, v in sorted(args.items())],
            "architecture": architecture(model),
        },
        sort_keys=True,
        default=stable_repr,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def architecture(model: Any) -> list[dict[str, Any]]:
    """The graph as data: each call in order with its layer class, configuration (names left
    out: Keras numbers unnamed layers per process), inputs as positions, output shapes and
    weight shapes; a nested model as its own list."""
    graph = getattr(model, "_functional", None) or model
    by_depth = getattr(graph, "_nodes_by_depth", None)
    if by_depth is None:  # a subclassed model: its weights are what can be described
        return [{"class": type(model).__name__, "weights": _weight_shapes(model)}]
    nodes = [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]
    position = {id(node): i for i, node in enumerate(nodes)}
    rows = []
    for node in nodes:
        layer = node.operation
        row: dict[str, Any] = {
            "class": type(layer).__name__,
            "inputs": [_producer(t, position) for t in node.input_tensors],
            "outputs": [list(t.shape) for t in node.outputs],
        }
        if getattr(layer, "_nodes_by_depth", None) or getattr(layer, "_functional", None):
            row["model"] = architecture(layer)
        else:
            row["config"] = _config(layer)
            row["weights"] = _weight_shapes(layer)
        rows.append(row)
    return rows


def _producer(tensor: Any, position: dict[int, int]) -> list[Any]:
    history = tensor._keras_history
    node = history.operation._inbound_nodes[history.node_index]
    return [position.get(id(node)), history.tensor_index]


def _config(layer: Any) -> Any:
    try:
        config = dict(layer.get_config())
    except Exception:  # noqa: BLE001 - a custom layer without a usable get_config
        return None
    config.pop("name", None)
    return config


def _weight_shapes(layer: Any) -> list[list[int]]:
    return [list(w.shape) for w in layer.weights]


def stable_repr(value: Any) -> str:
    """repr(value) without memory addresses."""
    # Object reprs carry memory addresses, which differ from run to run.
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))
