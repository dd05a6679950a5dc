"""How far does the numerics check's training step drift from the CPU float32 reference, per
backend and precision, and how far do deliberately wrong computations? (numerics.TOLERANCE)

Runs the check's own code (numerics.probe_losses, the relative differences judge() takes) on
the CPU, for each precision: as shipped, with LeakyReLU's slope 0.3 (a wrong kernel) and with
momentum 0.5 (a wrong optimizer). One backend per process (Keras picks it at import):

    uv run python benchmarks/numerics_tolerance.py tensorflow
    JAX_PLATFORMS=cpu uv run python benchmarks/numerics_tolerance.py jax
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from segbench.measure import backend

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", choices=("tensorflow", "jax", "torch"))
    name = parser.parse_args().backend
    backend.select_backend(name)
    import keras

    from segbench.benchmark import cvnet
    from segbench.benchmark.config import PRESETS
    from segbench.measure.numerics import probe_losses, shipped_reference
    from segbench.measure.run import compilation

    expected = shipped_reference()["losses"]
    variants = {"shipped": None, "leaky_relu_0.3": (cvnet, "_LEAK", 0.3)}
    variants["momentum_0.5"] = (compilation, "MOMENTUM", 0.5)
    found = {}
    for precision in PRECISIONS:
        config = replace(PRESETS["smoke"], precision=precision, backend=name)
        for label, patch in variants.items():
            saved = getattr(patch[0], patch[1]) if patch else None
            if patch:
                setattr(patch[0], patch[1], patch[2])
            try:
                with keras.device("cpu"):
                    losses = probe_losses(config)
            finally:
                if patch:
                    setattr(patch[0], patch[1], saved)
            diffs = [abs(a - b) / abs(b) for a, b in zip(losses, expected, strict=True)]
            found[f"{name} {precision} {label}"] = [float(f"{d:.3g}") for d in diffs]
            print(f"{name:10} {precision:15} {label:15}", " ".join(f"{d:9.2e}" for d in diffs))
    print(json.dumps(found))


if __name__ == "__main__":
    main()
