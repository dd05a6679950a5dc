"""Global settings that change what a run computes, and what segbench does with each.

Keras reads `keras.json` (under $KERAS_HOME, else ~/.keras) at import: another `floatx` makes
every layer compute in it while the run says float32, another `image_data_format` breaks the
channels-last model. segbench pins those to Keras's defaults for the run (KERAS_DEFAULTS) and
records what the file asked. Environment variables are read by the frameworks at import or at
graph construction, too late to pin from here: those that silently change the precision or the
compiled program are refused (the run says which and how to unset it; --force measures anyway,
recorded); those that tune a legitimate choice (oneDNN, TF32, determinism, threads) are kept,
shown by doctor and recorded in the result.

Sources: keras/src/backend/config.py (keras.json keys and defaults); TensorFlow's
auto_mixed_precision.cc (TF_ENABLE_AUTO_MIXED_PRECISION*), xla/tf_xla flags (TF_XLA_FLAGS
--tf_xla_auto_jit), util/port.cc (TF_ENABLE_ONEDNN_OPTS); NVIDIA's TF32 override
(NVIDIA_TF32_OVERRIDE); JAX's jax_enable_x64 / jax_default_matmul_precision flags; PyTorch's
TORCH_ALLOW_TF32_CUBLAS_OVERRIDE. Reads the environment and files only; never imports a framework.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# keras.json keys that change what is computed, with Keras's defaults (pinned for the run).
KERAS_DEFAULTS: dict[str, Any] = {
    "floatx": "float32",
    "epsilon": 1e-7,
    "image_data_format": "channels_last",
}

# Variables that change the precision or the compiled program behind the run's back: refused.
REFUSED: dict[str, str] = {
    "TF_ENABLE_AUTO_MIXED_PRECISION": "rewrites float32 graphs to float16",
    "TF_ENABLE_AUTO_MIXED_PRECISION_GRAPH_REWRITE": "rewrites float32 graphs to float16",
    "TF_ENABLE_AUTO_MIXED_PRECISION_MKL": "rewrites float32 graphs to bfloat16 on the CPU",
    "TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_LEVEL": "tunes the float16 graph rewrite",
    "JAX_ENABLE_X64": "makes JAX compute in 64-bit floats",
    "KERAS_MAX_EPOCHS": "caps Keras's training loops",
    "KERAS_MAX_STEPS_PER_EPOCH": "caps Keras's training loops",
}
# TF_XLA_FLAGS is refused when it turns on XLA auto-clustering (--xla is how to ask for XLA).
_AUTO_JIT = re.compile(r"--(tf_xla_auto_jit|tf_xla_cpu_global_jit)(?:=(\S+))?")
_OFF = ("", "0", "-1", "false", "no", "off")  # what the frameworks read as off (lower-cased)


def _off(value: str) -> bool:
    return value.strip().lower() in _OFF


# Variables kept as they are, shown by doctor and recorded (they tune a legitimate choice).
RECORDED = (
    "TF_ENABLE_ONEDNN_OPTS",  # oneDNN kernels on x86 (speed and round-off)
    "NVIDIA_TF32_OVERRIDE",  # 0 turns TF32 off on Ampere and newer
    "TF_DETERMINISTIC_OPS",
    "TF_CUDNN_DETERMINISTIC",
    "TF_CUDNN_USE_AUTOTUNE",
    "TF_XLA_FLAGS",
    "XLA_FLAGS",
    "TF_USE_LEGACY_KERAS",  # tf.keras becomes Keras 2 (segbench imports keras itself)
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
    "TF_GPU_ALLOCATOR",
    "TF_FORCE_GPU_ALLOW_GROWTH",
    "JAX_DEFAULT_MATMUL_PRECISION",
    "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE",
    "KERAS_HOME",
)


@dataclass(frozen=True)
class Settings:
    """What the environment asks for: keras.json values that will be pinned, variables that
    are refused (name → why), and variables kept and recorded (name → value)."""

    keras_json: str | None = None  # the file read, "~" for the home folder
    keras_file: dict[str, Any] = field(default_factory=dict)  # its non-default values
    refused: dict[str, str] = field(default_factory=dict)
    recorded: dict[str, str] = field(default_factory=dict)
    unreadable: str | None = None  # why keras.json could not be read (Keras ignores it)
    # keras.json values Keras itself rejects at import (it then fails to import): key → why.
    invalid: dict[str, str] = field(default_factory=dict)

    def effective(self) -> dict[str, str]:
        """What the run computes with, for the result: Keras's pinned values (with what the
        file asked) and every variable set."""
        found = {}
        for key, default in KERAS_DEFAULTS.items():
            asked = self.keras_file.get(key)
            found[f"keras.{key}"] = str(default) + (
                f" (pinned; {self.keras_json} asks {asked})" if asked is not None else ""
            )
        for name, why in self.refused.items():
            found[name] = f"{os.environ.get(name, '')} (refused: {why}; run with --force)"
        found.update(self.recorded)
        return found


def keras_json_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where Keras reads its configuration: $KERAS_HOME/keras.json, else ~/.keras/keras.json."""
    environ = os.environ if environ is None else environ
    home = environ.get("KERAS_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".keras")
    return Path(home) / "keras.json"


def survey(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings this environment asks for (reads keras.json and the variables)."""
    environ = os.environ if environ is None else environ
    path = keras_json_path(environ)
    shown = _shown(path, environ)
    keras_file: dict[str, Any] = {}
    unreadable = None
    invalid: dict[str, str] = {}
    try:
        document = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError) as e:
        document = {}
        unreadable = f"{shown}: {e.__class__.__name__}: {e}"[:200]
    if not isinstance(document, dict):
        invalid["(file)"] = f"holds a JSON {type(document).__name__}, not an object"
        document = {}
    keras_file = {
        k: document[k] for k, v in KERAS_DEFAULTS.items() if k in document and document[k] != v
    }
    invalid.update(_rejected(document))
    refused = {name: why for name, why in REFUSED.items() if not _off(environ.get(name, ""))}
    flags = _AUTO_JIT.findall(environ.get("TF_XLA_FLAGS", ""))
    if any(not value or not _off(value) for _, value in flags):  # a bare flag is on
        refused["TF_XLA_FLAGS"] = "turns on XLA auto-clustering (use --xla to compile)"
    recorded = {n: environ[n] for n in RECORDED if n in environ and n not in refused}
    if environ.get("KERAS_BACKEND", "tensorflow").strip() != "tensorflow":
        # Keras sets it itself on another backend (keras/src/backend/config.py), so that a
        # TensorFlow imported beside it leaves the GPU's memory alone: not the user's setting.
        recorded.pop("TF_FORCE_GPU_ALLOW_GROWTH", None)
    return Settings(
        shown if path.is_file() else None, keras_file, refused, recorded, unreadable, invalid
    )


def _rejected(document: dict) -> dict[str, str]:
    """keras.json values that make Keras's import fail (keras/src/backend/config.py asserts
    them): key → what is wrong."""
    found = {}
    floatx = document.get("floatx", "float32")
    if floatx not in ("float16", "bfloat16", "float32", "float64"):
        found["floatx"] = f"{floatx!r} is not float16, bfloat16, float32 or float64"
    epsilon = document.get("epsilon", 1e-7)
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)):
        found["epsilon"] = f"{epsilon!r} is not a number"
    image_format = document.get("image_data_format", "channels_last")
    if image_format not in ("channels_last", "channels_first"):
        found["image_data_format"] = f"{image_format!r} is not channels_last or channels_first"
    if not isinstance(document.get("backend", ""), str):
        found["backend"] = f"{document['backend']!r} is not a backend's name"
    return found


def invalid_line(found: Settings) -> str | None:
    """One line naming keras.json and what in it Keras rejects, or None."""
    if not found.invalid:
        return None
    what = "; ".join(f"{k}: {why}" for k, why in found.invalid.items())
    where = found.keras_json or "keras.json"
    return f"{where}: {what} — Keras will not import with it; correct or remove {where}"


def _shown(path: Path, environ: Mapping[str, str]) -> str:
    home = environ.get("HOME") or str(Path.home())
    text = str(path)
    return "~" + text[len(home) :] if home and text.startswith(home.rstrip("/") + "/") else text


def pin_keras(keras: Any) -> None:
    """Set Keras's global configuration to KERAS_DEFAULTS (Keras 3's keras.config or Keras 2's
    keras.backend), whatever keras.json said."""
    config = getattr(keras, "config", None)
    target = config if config is not None and hasattr(config, "set_floatx") else keras.backend
    target.set_floatx(KERAS_DEFAULTS["floatx"])
    target.set_epsilon(KERAS_DEFAULTS["epsilon"])
    target.set_image_data_format(KERAS_DEFAULTS["image_data_format"])
