"""The numerics check: does this device compute the benchmark's training step correctly?

Before timing, `segbench run` trains the model at a narrow width (every op type of the full
model, dropout off) on a fixed batch of two triangles, from the seed's numpy-drawn weights:
the loss at the initial weights, then after each of a few SGD steps with the benchmark's
optimizer and loss — on the run's own device, backend and precision. The losses are held
against a reference computed with TensorFlow on the CPU in float32, shipped in the package
(numerics_reference.json; `just numerics-reference` remakes it). Measures and judges; never
prints.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from segbench import __version__, package_data
from segbench.atomic import write_text_atomic
from segbench.benchmark import triangles
from segbench.benchmark.config import PRESETS, RunConfig, learning_rate
from segbench.measure import backend, generation
from segbench.results.schema import NON_NEGATIVE, OPTIONAL

REFERENCE_FILE = "numerics_reference.json"  # inside the package
WIDTH = 1 / 16  # every op type of the full model, 87,311 parameters
BATCH = 2
STEPS = 3  # SGD steps after the initial loss
SEED = 42
# Largest relative difference from the float32 CPU reference that still "match"es, per
# precision, and per backend after the first update. Measured on the CPU with the check's own
# code (benchmarks/numerics_tolerance.py; x86-64, TensorFlow 2.19.1, JAX 0.10.2, Keras 3.12.4;
# README, "The numerics check"), the largest of the 4 losses' differences:
#   TensorFlow: float32 0, mixed_float16 3.6e-5, mixed_bfloat16 2.1e-4;
#   JAX: float32 2.8e-5, mixed_float16 1.8e-4, mixed_bfloat16 2.9e-5 at the first loss, then
#   1.3e-2, 3.6e-2, 6.8e-2 after updates 1-3 (JAX's bfloat16 training on the CPU updates the
#   weights differently: after two steps the output bias has moved 74 % off float32's update,
#   and the loss falls half as fast).
# Deliberately wrong computations: LeakyReLU slope 0.3 differs by 1.9e-2 at the first loss on
# every backend and precision; momentum 0.5 by 7.9e-3 after the first update (JAX bfloat16:
# 1.8e-2, 4.4e-2, 8.8e-2, inside that drift, so there only the first loss can tell it).
# The limits sit between, with room for a GPU's TF32 convolutions (on by default on Ampere and
# newer), not yet measured here; JAX bfloat16 after the first update: 2x the drift measured.
TOLERANCE = {"float32": 1e-3, "mixed_float16": 2e-3, "mixed_bfloat16": 3e-3}
AFTER_UPDATES = {("jax", "mixed_bfloat16"): 0.14}  # (backend, precision): from loss 1 on
DROPOUT_RATES = (0.25, 0.5)  # the model's (benchmark §1)
DROPOUT_SHAPE = (4, 128, 128, 8)  # 524,288 values a draw: the kept share within ±1 %
MATCH, DEVIATES, SKIPPED = "match", "deviates", "skipped"


@dataclass(frozen=True, kw_only=True)
class Numerics:
    """The numerics check of a run: its losses against the shipped CPU float32 reference."""

    status: str = field(metadata={"enum": (MATCH, DEVIATES, SKIPPED)})
    max_rel_diff: float | None = field(default=None, metadata={**NON_NEGATIVE, **OPTIONAL})
    # The first step whose loss is beyond the tolerance (0: the initial loss); when all match,
    # the step of the largest difference.
    at_step: int | None = field(default=None, metadata={**NON_NEGATIVE, **OPTIONAL})
    tolerance: float | None = field(default=None, metadata={**NON_NEGATIVE, **OPTIONAL})
    reference: str | None = field(default=None, metadata=OPTIONAL)  # what it was held against
    losses: list[float] | None = field(default=None, metadata=OPTIONAL)  # this device's
    reason: str | None = field(default=None, metadata=OPTIONAL)  # why it was skipped
    # The random path training uses: dropout masks at the benchmark's rates drawn on the run's
    # device (what was found; a constant or biased generator makes the status "deviates").
    # Version 5.
    random: str | None = field(default=None, metadata=OPTIONAL)
    random_ok: bool | None = field(default=None, metadata=OPTIONAL)


def probe_config(run: RunConfig) -> RunConfig:
    """The check's configuration: narrow, two images, the run's backend, precision and XLA."""
    return replace(
        PRESETS["smoke"],
        preset="numerics",
        width=WIDTH,
        batch_size=BATCH,
        seed=SEED,
        precision=run.precision,
        xla=run.xla,
        backend=run.backend,
        keras=run.keras,
        device=run.device,
        model=run.model,
        model_args=run.model_args,
        batchnorm=run.batchnorm,  # the kernel the run trains with is the one checked
        data_format=run.data_format,  # and the layout
    )


def fixed_batch(data_format: str = "channels_last") -> tuple[np.ndarray, np.ndarray]:
    """The first two triangles of the data recipe, as float32 (2, 512, 512, 1) in [0, 1], or
    (2, 1, 512, 512) for channels_first."""
    vertices, colours = triangles.triangle_recipe(BATCH)
    pairs = [triangles.render(vertices[i], colours[i]) for i in range(BATCH)]
    x = np.stack([image for image, _ in pairs])[..., None].astype(np.float32) / 255.0
    y = np.stack([mask for _, mask in pairs])[..., None].astype(np.float32) / 255.0
    return triangles.in_layout(x, data_format), triangles.in_layout(y, data_format)


def probe_losses(run: RunConfig, build=None) -> list[float]:
    """The loss at the seed's initial weights and after each of STEPS SGD steps (training
    mode: BN with the batch's statistics, no dropout), on the current keras.device; `build`
    replaces the model builder (the tests break it on purpose)."""
    from segbench.measure.run.compilation import compile_model

    config = probe_config(run)
    keras_generation = generation.load(config.keras_generation)
    keras_generation.keras.backend.clear_session()
    keras_generation.keras.mixed_precision.set_global_policy(config.precision)
    backend.configure_determinism(config.seed, deterministic=False)
    model = (build or compile_model)(config, learning_rate(0, 0), dropout=False)
    train_step, _ = keras_generation.step_functions(model, config.xla)
    batch = fixed_batch(config.layout) if run.model is None else own_batch(run)
    x, y = (backend.to_device(a) for a in batch)
    losses = []
    for _ in range(STEPS + 1):
        # A training step reports the loss of the weights it starts from: the initial loss,
        # then the loss after each update (the last update is not evaluated).
        model.reset_metrics()
        losses.append(float(train_step(x, y)["loss"]))
    backend.synchronize()
    keras_generation.keras.mixed_precision.set_global_policy("float32")
    return losses


def own_batch(run: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """BATCH synthetic samples of a user's model (--model), fixed by SEED, as float32."""
    from segbench.benchmark.own_model import own_model_of, synthetic_data

    return synthetic_data(own_model_of(run), BATCH, SEED)


def own_reference(run: RunConfig, digest: str, timeout_s: float = 900) -> tuple[dict, bool]:
    """(the CPU float32 reference of a user's model, whether it was computed now).

    Computed on first use in a child process (TensorFlow on the CPU, float32: the same
    reference as CV-net's, whatever the run's backend and device) and cached by the model's
    digest under segbench's cache (numerics/DIGEST.json), so later runs reuse it.
    Unavailable when the child fails.
    """
    import subprocess
    import sys

    from segbench.benchmark.triangles import cache_root
    from segbench.errors import Unavailable

    path = cache_root() / "numerics" / f"{digest}.json"
    try:
        document = json.loads(path.read_text())
        if document.get("provenance", {}).get("digest") == digest and len(
            document.get("losses", [])
        ) == (STEPS + 1):
            return document, False
    except (OSError, ValueError, AttributeError):
        pass  # absent or damaged: computed again
    command = [sys.executable, "-m", "segbench.measure.numerics", "--model", run.model or ""]
    for item in run.model_args or []:
        command += ["--model-arg", item]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": "-1"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise Unavailable(
            f"the CPU reference of --model {run.model} did not finish within {timeout_s:.0f} s: "
            "the model's code hangs, or it is far larger than a benchmark step needs"
        ) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise Unavailable(f"the CPU reference of --model {run.model} failed: {last[:300]}")
    try:
        document = json.loads(done.stdout)
    except ValueError:
        raise Unavailable(
            f"the CPU reference of --model {run.model} ended without a reference (exit 0, "
            "no output): the model's code ended the process (sys.exit or os._exit?)"
        ) from None
    if document["provenance"]["digest"] != digest:
        raise Unavailable(
            f"--model {run.model} built a different model in the reference process (digest "
            f"{document['provenance']['digest'][:12]} ≠ {digest[:12]}): make the function "
            "deterministic"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(document, indent=2) + "\n")
    return document, True


def dropout_draws(precision: str = "float32", shape=DROPOUT_SHAPE) -> list[tuple[float, list]]:
    """Two successive draws of a training-mode Dropout layer (as the model's) at each of the
    benchmark's rates, on the current keras.device: (rate, [first, second]) as numpy arrays."""
    import keras

    keras.mixed_precision.set_global_policy(precision)
    try:
        ones = backend.to_device(np.ones(shape, dtype=np.float32))
        found = []
        for rate in DROPOUT_RATES:
            layer = keras.layers.Dropout(rate, seed=SEED)
            draws = [keras.ops.convert_to_numpy(layer(ones, training=True)) for _ in range(2)]
            found.append((rate, [d.astype(np.float32) for d in draws]))
        return found
    finally:
        keras.mixed_precision.set_global_policy("float32")


def judge_dropout(draws: list[tuple[float, list]]) -> tuple[bool, str]:
    """(fine?, what was found): each draw keeps 1 − rate of its values (within 6 σ of the
    binomial, at least 1 %), scaled by 1 / (1 − rate), two draws are independent (they agree
    at (1 − rate)² + rate² of the positions, ± 5 %), and so are neighbouring values of one
    mask (no pattern such as every other value)."""
    problems, seen = [], []
    for rate, (first, second) in draws:
        n = first.size
        kept = float(np.count_nonzero(first)) / n
        allowed = max(6 * math.sqrt(rate * (1 - rate) / n), 0.01)
        agree = float(np.mean((first != 0) == (second != 0)))
        independent = (1 - rate) ** 2 + rate**2
        values = first[first != 0]
        scale = 1 / (1 - rate)
        seen.append(f"rate {rate:g} keeps {100 * kept:.1f} %")
        if abs(kept - (1 - rate)) > allowed:
            problems.append(
                f"dropout at rate {rate:g} keeps {100 * kept:.1f} % of the values, "
                f"not {100 * (1 - rate):.0f} % (a biased random generator)"
            )
        if abs(agree - independent) > 0.05:
            what = "are identical" if agree == 1.0 else f"agree at {100 * agree:.0f} % of positions"
            problems.append(
                f"two dropout draws at rate {rate:g} {what} (independent draws agree at "
                f"{100 * independent:.0f} %): the random generator repeats itself"
            )
        kept_mask = (first != 0).ravel()
        neighbours = float(np.mean(kept_mask[1:] == kept_mask[:-1]))
        if abs(neighbours - independent) > 0.05:
            problems.append(
                f"a dropout mask at rate {rate:g} has a pattern: neighbouring values agree at "
                f"{100 * neighbours:.0f} % (independent: {100 * independent:.0f} %)"
            )
        if values.size and not np.allclose(values, scale, rtol=1e-2):
            problems.append(
                f"dropout at rate {rate:g} scales kept values to {float(values.mean()):.3g}, "
                f"not {scale:.3g}"
            )
    if problems:
        return False, "; ".join(problems)
    return True, "dropout masks: " + ", ".join(seen) + "; successive draws independent"


def with_random(found: Numerics, fine: bool, what: str) -> Numerics:
    """`found` with the random path's verdict: a broken generator makes it "deviates"."""
    status = found.status if fine or found.status == SKIPPED else DEVIATES
    return replace(found, status=status, random=what, random_ok=fine)


def tolerances(backend_name: str, precision: str) -> list[float]:
    """The limit of each loss's relative difference: the initial loss, then after each update."""
    first = TOLERANCE[precision]
    return [first] + [AFTER_UPDATES.get((backend_name, precision), first)] * STEPS


def judge(
    losses: list[float], precision: str, reference: dict, backend_name: str = "tensorflow"
) -> Numerics:
    """ "match" when every loss is within its tolerance (tolerances()) of the reference's;
    the tolerance recorded is the one at `at_step`."""
    expected = reference["losses"]
    limits = tolerances(backend_name, precision)
    diffs = [
        abs(a - b) / max(abs(b), 1e-12) if math.isfinite(a) else math.inf
        for a, b in zip(losses, expected, strict=True)
    ]
    beyond = [i for i, (d, limit) in enumerate(zip(diffs, limits, strict=True)) if d > limit]
    worst = max(range(len(diffs)), key=lambda i: diffs[i] / limits[i])
    at_step = beyond[0] if beyond else worst
    return Numerics(
        status=DEVIATES if beyond else MATCH,
        max_rel_diff=max(diffs) if math.isfinite(max(diffs)) else None,  # None: a NaN loss
        at_step=at_step,
        tolerance=limits[at_step],
        reference=_describe(reference),
        losses=losses,
    )


def advice(device_kind: str, backend_name: str, precision: str) -> str:
    """What to do about a check that deviates: on a GPU, run on the CPU to confirm; on the CPU
    (no other device to compare with), run as the reference was made."""
    if device_kind != "cpu":
        return (
            "Run the same command with --device cpu to confirm, update the GPU driver or plugin "
            "(tensorflow-metal, CUDA), and report it with the result file."
        )
    unlike = [
        *([f"--backend tensorflow (not {backend_name})"] if backend_name != "tensorflow" else []),
        *([f"--precision float32 (not {precision})"] if precision != "float32" else []),
    ]
    checks = "check the environment (segbench doctor) and report it with the result file."
    if not unlike:
        return "The run was on the CPU, as the reference was made: " + checks
    return (
        f"Run again with {' and '.join(unlike)}, as the reference was made, to see "
        f"whether that is the cause; {checks}"
    )


def _describe(reference: dict) -> str:
    made = reference["provenance"]
    if made.get("model"):
        return (
            f"the CPU float32 reference of --model {made['model']} (TensorFlow "
            f"{made['tensorflow']}, seed {made['seed']}, {made['steps']} steps, digest "
            f"{made['digest'][:12]})"
        )
    return (
        f"{REFERENCE_FILE}: TensorFlow {made['tensorflow']} on the CPU, float32, "
        f"width {made['width']}, seed {made['seed']}, {made['steps']} SGD steps"
    )


def shipped_reference() -> dict:
    """The reference shipped inside the package; PackageDataError when it is missing,
    truncated or edited."""
    return package_data.read_json(f"measure/{REFERENCE_FILE}")


def reference_document(losses: list[float]) -> dict:
    """The reference file: the losses and how they were made."""
    import keras
    import tensorflow as tf

    return {
        "provenance": {
            "made_with": "just numerics-reference (python -m segbench.measure.numerics)",
            "segbench": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "platform": f"{platform.system()} {platform.machine()}",
            "device": "CPU",
            "precision": "float32",
            "width": WIDTH,
            "batch": BATCH,
            "seed": SEED,
            "steps": STEPS,
        },
        "losses": losses,
    }


def reference_losses() -> list[float]:
    """The reference's losses, computed here and now (TensorFlow, CPU, float32, Keras 3)."""
    import keras

    backend.choose_device("cpu")
    with keras.device("cpu"):
        return probe_losses(PRESETS["smoke"])


def _own_main(spec: str, items: list[str]) -> None:
    """Print the CPU float32 reference of a user's model as JSON (own_reference's child)."""
    import keras

    from segbench.benchmark.own_model import own_model_of

    backend.select_backend("tensorflow")
    backend.choose_device("cpu")
    run = replace(PRESETS["smoke"], model=spec, model_args=items or None)
    with keras.device("cpu"):
        losses = probe_losses(run)
        digest = own_model_of(run).digest
    document = reference_document(losses)
    document["provenance"] |= {"model": spec, "model_args": items, "digest": digest}
    document["provenance"].pop("width")
    print(json.dumps(document))


def main(argv: list[str] | None = None) -> None:
    """Recompute the reference here and write it into the package (with --model SPEC
    [--model-arg K=V …]: print a user's model's reference instead; own_reference)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m segbench.measure.numerics",
        description="Recompute the numerics check's CPU float32 reference and write it into the "
        f"package ({REFERENCE_FILE}; `just numerics-reference`), or with --model print a user's "
        "model's reference as JSON.",
    )
    parser.add_argument("--model", metavar="SPEC", help="a user's model (segbench run --model)")
    parser.add_argument("--model-arg", metavar="KEY=VALUE", action="append", default=[])
    options = parser.parse_args(argv)
    if options.model is not None:
        import signal

        from segbench.errors import raise_sigint

        signal.signal(signal.SIGINT, raise_sigint)  # the model's own raise is then its fault
        _own_main(options.model, options.model_arg)
        return
    if options.model_arg:
        parser.error("--model-arg needs --model")
    backend.select_backend("tensorflow")
    document = reference_document(reference_losses())
    path = Path(__file__).with_name(REFERENCE_FILE)
    text = json.dumps(document, indent=2) + "\n"
    write_text_atomic(path, text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    print(f"{path}\nrecord its SHA-256 in segbench/package_data.py: {digest}")


if __name__ == "__main__":
    main()
