"""`segbench run --model`: a user's model through the whole run, its result, and compare."""

import json
from pathlib import Path

import pytest
from cli_helpers import error_lines, fake, segbench

from segbench.results.compare import CompareError, compare
from segbench.results.result import Result, load_result

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = f"{ROOT}/examples/unet.py:build"
TINY = ["--model-arg", "base_filters=4", "--model-arg", "depth=2", "--model-arg", "image_size=32"]
RUN = ["run", "--preset", "smoke", "--steps", "2", "--warmup", "0", "--no-peak"]


@pytest.fixture(scope="module")
def example_run(tmp_path_factory) -> tuple[Path, dict]:
    """The example U-Net, smoke-sized, through `segbench run` (numerics check included)."""
    folder = tmp_path_factory.mktemp("own")
    done = segbench(
        *RUN,
        "--model",
        EXAMPLE,
        *TINY,
        "--profile",
        "--json",
        cwd=folder,
        env={"SEGBENCH_CACHE": str(folder / "cache")},
    )
    assert done.returncode == 0, done.stderr
    (path,) = (folder / "results").glob("segbench-smoke-*.json")
    return path, json.loads(path.read_text())


@pytest.mark.slow
def test_the_example_model_runs_end_to_end_and_its_result_validates(example_run):
    path, data = example_run
    result = load_result(path)  # the typed reader and the shipped JSON Schema
    own = result.model.own
    assert result.model.name == "build" and own.spec == EXAMPLE
    assert own.args == ["base_filters=4", "depth=2", "image_size=32"]
    assert (own.input_shape, own.output_shape, own.activation) == (
        [32, 32, 1],
        [32, 32, 1],
        "sigmoid",
    )
    assert own.loss == "binary_crossentropy" and own.loss_origin == "default"
    assert (
        own.source_sha256
        == __import__("hashlib").sha256((ROOT / "examples/unet.py").read_bytes()).hexdigest()
    )
    assert result.config.model == EXAMPLE and result.data.folder == "synthetic"
    assert result.summary.steps == 2 and all(s["images"] == 2 for s in data["steps"])
    # FLOPs from the architecture, the same count the module gives for the model.
    from segbench.benchmark.own_model import build_own_model, parse_model_args
    from segbench.measure.flops import count_flops

    built = build_own_model(EXAMPLE, parse_model_args(TINY[1::2]))
    assert result.model.training_gflop_per_image == pytest.approx(
        count_flops(built.model).training_per_sample / 1e9
    )
    assert result.model.parameters == built.parameters
    # --profile: a few more steps under TensorFlow's profiler, shared out by layer kind.
    shares = {k.kind: k.share for k in result.profile.kinds}
    assert shares["convolution"] > 0 and shares["batch norm"] > 0
    assert sum(shares.values()) == pytest.approx(1.0)
    # Held against its own CPU float32 reference, computed in a child and cached by digest.
    assert result.numerics.status == "match", result.numerics
    assert result.numerics.reference.startswith(f"the CPU float32 reference of --model {EXAMPLE}")
    cached = path.parent.parent / "cache" / "numerics" / f"{own.digest}.json"
    assert json.loads(cached.read_text())["losses"] == pytest.approx(result.numerics.losses)


@pytest.mark.slow
def test_compare_refuses_two_different_models_unless_forced(example_run):
    path, _data = example_run
    cvnet = Result.from_dict(
        json.loads((ROOT / "docs/results/segbench-quick-cpu-20261126T112703Z.json").read_text())
    )
    own = load_result(path)
    with pytest.raises(CompareError, match=r"results differ in model \(.*build.* vs cvnet\)"):
        compare([own, cvnet])
    forced = compare([own, cvnet], force=True)
    assert any(w.startswith("Forced: results differ in model") for w in forced.warnings)
    labels = [r.label for r in forced.rows[:2]]
    device, model = labels[0].split(" · ")[0], own.model.own
    assert (
        labels[0] == f"{device} · {model.spec} {model.digest[:12]}, batch {own.config.batch_size}"
    )
    # The committed CV-net result was made on another machine: its own device, then the setting.
    assert labels[1] == "CPU: Intel(R) Xeon(R) Processor × 2 · cvnet, width 1, image 512, batch 16"
    # Two runs of the same model and arguments compare; no CV-net reference beside them.
    same = compare([own, own])
    assert [r.kind for r in same.rows] == ["measured", "measured"]


@pytest.mark.slow  # it reads the example model's real run
def test_resnet50_rows_stand_beside_other_tools_figures_labelled_as_such(example_run):
    _, data = example_run
    data["config"]["model"] = "resnet50"
    data["config"]["model_args"] = None
    data["model"]["name"] = data["model"]["own"]["function"] = "resnet50"
    data["model"]["own"]["spec"] = "resnet50"
    rows = compare([Result.from_dict(data)]).rows
    others = [r for r in rows if r.kind == "published"]
    assert others and all(r.label.endswith("(other tool, other method)") for r in others)
    assert any("tf-metal-experiments" in r.conditions for r in others)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--model", "nowhere.py:build"], "--model nowhere.py:build: "),
        (["--model", EXAMPLE, "--width", "0.5"], "--width is CV-net's"),
        (["--model", EXAMPLE, "--keras", "2"], "--model is for Keras 3 models"),
        (["--model-arg", "a=1"], "--model-arg needs --model"),
        (
            ["--model", EXAMPLE, "--model-arg", "channels=3", "--data", "somewhere"],
            f"--data with --model {EXAMPLE}: a data folder holds grayscale square images",
        ),
    ],
)
def test_a_model_that_cannot_run_is_refused_in_one_line_with_exit_2(tmp_path, args, said):
    # Refused before a model is built: above the framework. With --data the model is built
    # (its own Keras import), so that case runs on the real path.
    done = segbench(*RUN, *args, cwd=tmp_path, env=None if "--data" in args else fake())
    lines = error_lines(done.stderr)
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert said in lines[0]
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_the_models_numerics_reference_is_computed_once_then_reused(example_run, monkeypatch):
    import subprocess

    from segbench.measure import numerics

    path, _ = example_run
    result = load_result(path)
    monkeypatch.setenv("SEGBENCH_CACHE", str(path.parent.parent / "cache"))

    def no_child(*args, **kwargs):
        raise AssertionError("the cached reference was computed again")

    monkeypatch.setattr(subprocess, "run", no_child)
    document, computed = numerics.own_reference(result.config, result.model.own.digest)
    assert not computed and document["provenance"]["digest"] == result.model.own.digest
    assert document["losses"] == pytest.approx(result.numerics.losses)


@pytest.mark.slow
def test_a_model_of_the_data_sets_shapes_trains_on_the_data_folder(small_dataset, tmp_path):
    model = ["--model", EXAMPLE, "--model-arg", "base_filters=2", "--model-arg", "depth=2"]
    done = segbench(
        *RUN,
        *model,
        "--model-arg",
        "image_size=512",
        "--data",
        str(small_dataset),
        "--no-check-numerics",
        "--steps",
        "1",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    (path,) = (tmp_path / "results").glob("segbench-smoke-*.json")
    result = load_result(path)
    assert result.model.own.input_shape == [512, 512, 1]
    assert (result.data.folder, result.data.generated) == (str(small_dataset), False)


EXITING = """
import os
import sys


def quits():
    sys.exit(0)


def says(text="no GPU here"):
    sys.exit(text)


def leaves():
    os._exit(0)  # no exception, no clean-up: the process would end with 0
"""


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ("exiting.py:quits", "quits() called sys.exit(0) instead of returning a model"),
        ("exiting.py:says", "says() called sys.exit('no GPU here') instead of returning a model"),
        ("sys:exit", "exit() called sys.exit(None) instead of returning a model"),
        ("exiting.py:leaves", "leaves() called os._exit(0) instead of returning a model"),
    ],
)
def test_a_model_function_that_exits_is_never_a_success(tmp_path, target, said):
    (tmp_path / "exiting.py").write_text(EXITING)
    done = segbench(*RUN, "--model", target, cwd=tmp_path, env=fake())
    lines = error_lines(done.stderr)
    assert done.returncode == 2, done.stderr
    assert lines == [f"error: --model {target}: {said}; return the model from the function"]
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ("os:_exit", "names os._exit, which ends the process; name a model builder"),
        ("leaving.py:build", "importing "),  # os._exit(0) at import: named, exit 2
    ],
)
def test_a_model_spec_that_would_end_the_process_is_refused(tmp_path, target, said):
    (tmp_path / "leaving.py").write_text("import os\nos._exit(0)\n")
    done = segbench(*RUN, "--model", target, cwd=tmp_path, env=fake())
    lines = error_lines(done.stderr)
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: --model {target}: {said}")
    if target.startswith("leaving"):
        assert lines[0].endswith("raised UserExit: os._exit(0)")
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("source", "target", "said"),
    [
        ("raise KeyboardInterrupt('no')\n", "stops.py:build", "importing "),
        (
            "def build():\n    raise KeyboardInterrupt\n",
            "stops.py:build",
            "build() raised KeyboardInterrupt: ",
        ),
    ],
)
def test_user_code_raising_keyboardinterrupt_is_the_models_fault_not_a_ctrl_c(
    tmp_path, source, target, said
):
    """A KeyboardInterrupt that the model's code raises itself (at import or in the builder)
    is not a Ctrl-C: exit 2 naming --model, not 130 'interrupted'."""
    (tmp_path / "stops.py").write_text(source)
    done = segbench(*RUN, "--model", target, cwd=tmp_path, env=fake())
    lines = error_lines(done.stderr)
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: --model {target}: {said}"), lines
    assert "KeyboardInterrupt" in lines[0]
    assert not (tmp_path / "results").exists()


def test_a_real_ctrl_c_while_the_model_imports_is_still_a_ctrl_c(tmp_path):
    """The other side: a Ctrl-C that arrives while the model's file imports is the user's."""
    import signal
    import time

    from cli_helpers import start

    marker = tmp_path / "importing"
    (tmp_path / "slow.py").write_text(
        f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(60)\n"
    )
    child = start(*RUN, "--model", "slow.py:build", cwd=tmp_path, env=fake())
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr
    assert error_lines(stderr) == ["error: interrupted"]


def test_a_reference_child_that_ends_without_a_reference_is_the_models_fault(tmp_path, monkeypatch):
    """Stand-in for user code that ends the reference process with exit 0 (os._exit) or
    hangs: the numerics check names the model, never 'the framework'."""
    import subprocess

    from segbench.benchmark.config import PRESETS
    from segbench.errors import Unavailable
    from segbench.measure import numerics

    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path))
    run = PRESETS["smoke"].with_overrides(model="mine.py:build")
    silent = subprocess.CompletedProcess([], 0, stdout="", stderr="")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: silent)
    with pytest.raises(Unavailable, match=r"--model mine.py:build ended without a reference"):
        numerics.own_reference(run, "0" * 64)

    def hangs(*args, timeout, **kwargs):
        raise subprocess.TimeoutExpired(args[0], timeout)

    monkeypatch.setattr(subprocess, "run", hangs)
    with pytest.raises(Unavailable, match=r"did not finish within 900 s: the model's code hangs"):
        numerics.own_reference(run, "0" * 64)
