"""Comparability of results: the facts that must match for two results to measure the same
work, those that should match for like-for-like figures, the software differences a row
carries as caveats, and every recorded fact that differs between the files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from segbench.results.caveats import energy_mode, power_state
from segbench.results.result import Result

# Results that differ in these measure different work: refused unless --force.
MUST_MATCH: dict[str, Callable[[Result], Any]] = {
    # CV-net, or a user's model (--model) by the digest of its source, arguments and layers.
    "model": lambda r: f"{r.model.own.spec} {r.model.own.digest[:12]}" if r.model.own else "cvnet",
    "width": lambda r: r.config.width if r.model.own is None else None,
    "image_size": lambda r: r.config.image_size if r.model.own is None else None,
    # Images per step: the global batch of a data-parallel run (README: "More than one GPU").
    "batch_size": lambda r: r.config.batch_size,
}
# Results that differ in these are comparable but not like for like: a warning.
SHOULD_MATCH: dict[str, Callable[[Result], Any]] = {
    "tensorflow": lambda r: r.environment.packages.get("tensorflow"),
    "precision": lambda r: r.config.precision,
    "backend": lambda r: r.environment.keras_backend,
    "keras": lambda r: r.config.keras_generation,
    "replicas": lambda r: r.distribution.replicas if r.distribution else 1,
}


# Software facts that make a speed difference partly the software's: a row whose value differs
# from the baseline's carries it as a caveat, e.g. "tensorflow 2.18.0 (baseline 2.19.1)".
STACK: dict[str, Callable[[Result], Any]] = {
    "tensorflow": lambda r: r.environment.packages.get("tensorflow"),
    "keras": lambda r: r.environment.packages.get("keras"),
    "backend": lambda r: r.environment.keras_backend,
    "Keras generation": lambda r: r.config.keras_generation,
    "precision": lambda r: r.config.precision,
    "driver": lambda r: r.environment.gpu_stack.get("nvidia_driver"),
    "cuDNN": lambda r: r.environment.gpu_stack.get("cudnn_version"),
    "tensorflow-metal": lambda r: r.environment.gpu_stack.get("tensorflow_metal"),
}


def stack_caveats(result: Result, baseline: Result) -> list[str]:
    """Labels for the software facts in which `result` differs from the `baseline`."""
    both_tensorflow = result.environment.keras_backend == baseline.environment.keras_backend
    return [
        f"{name} {value(result) or 'none'} (baseline {value(baseline) or 'none'})"
        for name, value in STACK.items()
        if value(result) != value(baseline)
        # On another backend TensorFlow's version is beside the point: the backend is named.
        and not (name == "tensorflow" and not both_tensorflow)
    ]


@dataclass(frozen=True)
class EnvironmentDifference:
    """A recorded fact that differs between the results: its value in each, in row order
    (None: the file does not record it)."""

    fact: str
    values: list[str | None]


def environment_facts(result: Result) -> dict[str, str | None]:
    """Every fact a result records about the software and the conditions it ran under."""
    env = result.environment
    facts: dict[str, str | None] = {
        "segbench": result.segbench_version,
        "git commit": result.git_commit,
        "uv.lock sha256": env.uv_lock_sha256,
        "python": env.python,
        "os": f"{env.os.system} {env.os.release}",
        "backend": env.keras_backend,
        "keras generation": str(result.config.keras_generation),
        "precision": result.config.precision,
        "compile (asked)": "on" if result.config.xla else "off",
        "compiled (used)": result.model.compiled,
        "batchnorm": result.model.batchnorm or result.config.batchnorm,
        "data format": result.config.layout if result.model.own is None else None,
        "power": power_state(result),
        "energy mode": energy_mode(result),
    }
    facts |= dict(sorted(env.packages.items()))
    facts |= {k.replace("_", " "): v for k, v in sorted(env.gpu_stack.items())}
    # The settings that change the computation (Keras's, environment variables), in files
    # that record them (getattr: older versions have no such field).
    settings = getattr(env, "settings", None) or {}
    facts |= {f"setting {k}": v for k, v in sorted(settings.items())}
    return facts


def environment_differences(results: list[Result]) -> list[EnvironmentDifference]:
    """The facts whose value is not the same in every result (asv's and ReBench's "what
    changed between these runs"), in the order environment_facts lists them."""
    each = [environment_facts(r) for r in results]
    names = list(dict.fromkeys(name for facts in each for name in facts))
    found = [EnvironmentDifference(n, [facts.get(n) for facts in each]) for n in names]
    return [d for d in found if len(set(d.values)) > 1]


def differences(results: list[Result]) -> tuple[list[str], list[str]]:
    """(fields that must match but differ, fields that should match but differ)."""
    must = [f for f, value in MUST_MATCH.items() if len({value(r) for r in results}) > 1]
    should = [f for f, value in SHOULD_MATCH.items() if len({value(r) for r in results}) > 1]
    return must, should
