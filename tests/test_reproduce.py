"""`segbench reproduce FILE`: the run a result records, rerun on this machine and judged — on
the fake trainer (the rerun's real path is `segbench run`'s, tested on its own)."""

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_helpers import cached_data, error_lines, fake, segbench

from segbench.errors import BadInput
from segbench.results.result import load_result

STEADY = fake(step_ms=[100.0, 101.0, 99.0, 100.0, 102.0])


@pytest.fixture
def original(tmp_path, triangles_dir) -> Path:
    """A fake smoke result of 20 timed steps, made in `tmp_path`."""
    cached_data(tmp_path, triangles_dir)
    done = segbench("run", "--preset", "smoke", "--steps", "20", "--out", "orig", cwd=tmp_path,
                    env=STEADY)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (path,) = (tmp_path / "orig").glob("*.json")
    return path


def _edited(path: Path, edit) -> Path:
    data = json.loads(path.read_text())
    edit(data)
    edited = path.with_name("edited.json")
    edited.write_text(json.dumps(data, allow_nan=True))
    return edited


def test_a_rerun_on_the_same_machine_is_reproduced(tmp_path, original):
    done = segbench("reproduce", str(original), "--out", "again", cwd=tmp_path, env=STEADY)
    assert done.returncode == 0, done.stderr
    assert "speed: reproduced: +0.0 % in time per image" in done.stdout
    assert "numerics: " in done.stdout
    (rerun,) = (tmp_path / "again").glob("*.json")
    result, first = load_result(rerun), load_result(original)
    assert result.config == first.config and result.summary.median_ms == first.summary.median_ms
    assert result.command[:2] == ["reproduce", str(original)]
    # The rerun names the file it reran, byte for byte, and that its configuration is the file's.
    assert result.reproduces.file == original.name and result.reproduces.same_configuration
    assert result.reproduces.sha256 == hashlib.sha256(original.read_bytes()).hexdigest()
    # Before anything ran: the file beside this machine, every row judged, power and threads.
    before = done.stdout.index("│ segbench ")  # the facts table's first row
    rerun_line = done.stdout.index("segbench reproduce — rerunning")
    assert "before the rerun" in " ".join(done.stdout[:before].split())  # its title
    assert before < rerun_line
    table = done.stdout[before:rerun_line]
    for row in ("segbench", "uv.lock", "python", "keras", "device", "cpu", "cores", "memory",
                "data", "deterministic", "power", "threads"):  # fmt: skip
        assert f"│ {row} " in table, row
    assert "differs" not in table  # the same machine and software, a moment later
    assert "every fact the file records is the same in the rerun" in done.stdout


def test_an_older_file_says_what_cannot_be_checked(tmp_path, original):
    """A file from before schema 5 records no settings (threads, keras.json, TF_ variables):
    one row each says it cannot be checked."""

    def older(data):
        data["schema_version"] = 4
        for key in ("command", "source_url"):
            data.pop(key, None)
        data["environment"].pop("settings", None)

    done = segbench("reproduce", str(_edited(original, older)), "--out", "again", cwd=tmp_path,
                    env=STEADY)  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = done.stdout[: done.stdout.index("segbench reproduce — rerunning")]
    unchecked = [line for line in table.splitlines() if "cannot be checked" in line]
    assert {line.split("│")[1].strip() for line in unchecked} == {
        "threads",
        "keras.json, TF_/XLA_ variables",
    }, table


def test_a_number_20_percent_faster_than_this_machine_is_not_reproduced(tmp_path, original):
    def faster(data):
        for step in data["steps"]:
            step["ms"] = round(step["ms"] / 1.25, 6)
        data["environment"]["packages"]["tensorflow"] = "2.20.0"

    done = segbench("reproduce", str(_edited(original, faster)), "--out", "again", cwd=tmp_path,
                    env=STEADY)  # fmt: skip
    assert done.returncode == 3, done.stderr
    (line,) = error_lines(done.stderr)[-1:]
    assert "not reproduced: 25.0 % slower" in line and line.endswith(
        "facts that differ: tensorflow"
    )
    assert list((tmp_path / "again").glob("*.json"))  # the rerun is kept


def test_a_file_from_another_commit_names_its_version_and_exact_refuses(tmp_path, original):
    def elsewhere(data):
        data["git_commit"] = "0123456789abcdef0123456789abcdef01234567"
        data["source_url"] = "https://github.com/example/segbench.git"

    other = _edited(original, elsewhere)
    exact = segbench("reproduce", str(other), "--exact", "--out", "again", cwd=tmp_path, env=STEADY)
    assert exact.returncode == 1
    (line,) = error_lines(exact.stderr)
    assert line.startswith(f"error: --exact: {other} was made by segbench 0.1.0 at commit 0123456")
    assert (
        "git clone -- https://github.com/example/segbench.git segbench-0123456789ab && cd "
        "segbench-0123456789ab && git checkout 0123456789abcdef0123456789abcdef01234567" in line
    )
    assert not (tmp_path / "again").exists()
    done = segbench("reproduce", str(other), "--out", "again", cwd=tmp_path, env=STEADY)
    assert done.returncode == 0 and "note: " in done.stderr and "git checkout" in done.stderr


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda d: d["config"].update(steps=40), "its config says 40 timed step(s) × 1 repeat"),
        (lambda d: d["data"].update(sha256="ab" * 32), "its triangles have sha256 abababababab"),
        (
            lambda d: d["data"].update(generated=False, folder="/data/mine"),
            "it trained on its own data (/data/mine): give that folder with --data DIR",
        ),
    ],
    ids=["edited-config", "other-data", "own-data"],
)
def test_a_file_that_cannot_be_rerun_as_it_was_is_one_line_and_exit_2(
    tmp_path, original, edit, said
):
    edited = _edited(original, edit)
    done = segbench("reproduce", str(edited), "--out", "again", cwd=tmp_path, env=STEADY)
    assert done.returncode == 2, done.stderr
    (line,) = error_lines(done.stderr)
    assert line.startswith(f"error: {edited}: {said}")
    assert not (tmp_path / "again").exists()


def test_other_data_given_with_data_is_refused_naming_both_digests(
    tmp_path, original, small_dataset
):
    edited = _edited(original, lambda d: d["data"].update(generated=False))
    done = segbench("reproduce", str(edited), "--data", str(small_dataset), "--out", "again",
                    cwd=tmp_path, env=STEADY)  # fmt: skip
    assert done.returncode == 2
    (line,) = error_lines(done.stderr)
    assert line.startswith(f"error: --data {small_dataset}: sha256 ")
    assert line.endswith("…: not the data that was measured")


def test_a_gpu_result_on_a_machine_without_one_names_the_nearest_run(tmp_path, original):
    def on_gpu(data):
        data["device"] = {"kind": "gpu", "keras_name": "gpu", "description": "NVIDIA H100"}

    gpu = _edited(original, on_gpu)
    done = segbench("reproduce", str(gpu), "--out", "again", cwd=tmp_path, env=STEADY)
    assert done.returncode == 1
    (line,) = error_lines(done.stderr)
    assert line.startswith(f"error: {gpu} ran on NVIDIA H100; ")
    assert line.endswith("--device cpu makes the nearest run (not the same configuration: no "
                         "reproduction verdict)")  # fmt: skip
    nearest = segbench("reproduce", str(gpu), "--device", "cpu", "--out", "again", cwd=tmp_path,
                       env=STEADY)  # fmt: skip
    assert nearest.returncode == 0, nearest.stderr
    assert "speed: not the same configuration (--device cpu)" in nearest.stdout
    (rerun,) = (tmp_path / "again").glob("*.json")
    marked = load_result(rerun).reproduces  # the result file says so too
    assert (marked.same_configuration, marked.changed) == (False, ["device: gpu → cpu"])


def test_ctrl_c_during_the_rerun_keeps_its_partial_result_like_run(tmp_path, original):
    stop = fake(step_ms=[100.0], signal={"at": "timed", "step": 3, "name": "SIGINT"})
    done = segbench("reproduce", str(original), "--out", "again", cwd=tmp_path, env=stop)
    assert done.returncode == 130
    (kept,) = (tmp_path / "again").glob("*.json")
    assert load_result(kept).status == "interrupted"
    assert "speed:" not in done.stdout  # no verdict on a partial rerun


def test_a_changed_model_source_is_named_with_both_digests(tmp_path, monkeypatch):
    from segbench.cli.reproduce import _check_model

    model = tmp_path / "mine.py"
    model.write_text("def build():\n    pass\n")
    own = SimpleNamespace(spec=f"{model}:build", source_sha256="0" * 64)
    with pytest.raises(BadInput) as refused:
        _check_model(SimpleNamespace(model=SimpleNamespace(own=own)), Path("r.json"))
    said = str(refused.value)
    assert said.startswith(f"r.json: --model {model}:build: {model} has sha256 ")
    assert said.endswith("the file's model 000000000000…: not the model that was measured")


def test_deterministic_cpu_reruns_of_the_same_software_compare_losses_bit_for_bit():
    from dataclasses import replace

    from segbench.results.reproduction import numerics_line

    docs = Path(__file__).parents[1] / "docs" / "results"
    first = load_result(sorted(docs.glob("segbench-quick-cpu-*.json"))[0])
    first = replace(
        first,
        git_commit="0123456789abcdef0123456789abcdef01234567",
        config=replace(first.config, deterministic=True),
    )
    assert numerics_line(first, first).startswith("numerics: identical losses, bit for bit")
    steps = list(first.steps)
    timed = [i for i, s in enumerate(steps) if s.phase == "timed"]
    steps[timed[2]] = replace(steps[timed[2]], loss=steps[timed[2]].loss + 1e-7)
    moved = replace(first, steps=steps)
    assert numerics_line(first, moved).startswith(
        "numerics: the losses first differ at timed step 3"
    )


def test_the_facts_name_the_frameworks_the_run_used_not_every_one_installed():
    from dataclasses import replace

    from segbench.results.reproduction import facts

    docs = Path(__file__).parents[1] / "docs" / "results"
    first = load_result(sorted(docs.glob("segbench-quick-cpu-*.json"))[0])
    packages = {**first.environment.packages, "jax": "0.10.2"}  # installed, not used
    here = replace(first, environment=replace(first.environment, packages=packages))
    names = {f.name for f in facts(first, here)}
    assert "jax" not in names and {"tensorflow", "keras", "numpy"} <= names
    torch = replace(
        here,
        environment=replace(here.environment, keras_backend="torch", packages={**packages,
                            "torch": "2.11.0"}),
    )  # fmt: skip
    found = {f.name: f for f in facts(first, torch)}
    assert not found["keras backend"].same and found["torch"].original == "—"


@pytest.mark.parametrize(
    ("commit", "url"),
    [
        ("abc; rm -rf ~ \x1b[2J", "https://github.com/a/b"),
        ("0123456789abcdef0123456789abcdef01234567", "--upload-pack=touch /tmp/x"),
        ("--upload-pack=touch /tmp/x", "https://github.com/a/b"),
    ],
    ids=["shell-in-commit", "option-as-url", "option-as-commit"],
)
def test_a_hostile_commit_or_url_never_becomes_a_command(tmp_path, original, commit, url):
    edited = _edited(original, lambda d: d.update(git_commit=commit, source_url=url))
    done = segbench("reproduce", str(edited), "--exact", "--out", "again", cwd=tmp_path,
                    env=STEADY)  # fmt: skip
    assert done.returncode == 1
    (line,) = error_lines(done.stderr)
    assert line.endswith(
        "no exact version can be fetched (no clean commit and source URL recorded)"
    )
    assert "\x1b" not in done.stderr and "git clone" not in line


def test_an_unknown_preset_is_refused_before_anything_runs(tmp_path, original):
    edited = _edited(original, lambda d: d["config"].update(preset="../../escaped"))
    done = segbench("reproduce", str(edited), "--out", "again", cwd=tmp_path, env=STEADY)
    assert done.returncode == 2
    (line,) = error_lines(done.stderr)
    assert line.startswith(f"error: {edited}: its preset '../../escaped' is none of smoke")
    assert not (tmp_path / "again").exists()


def test_a_partial_file_is_said_and_one_step_gets_no_verdict(tmp_path, triangles_dir):
    cached_data(tmp_path, triangles_dir)
    stop = fake(step_ms=[100.0], signal={"at": "timed", "step": 2, "name": "SIGTERM"})
    segbench("run", "--preset", "smoke", "--out", "orig", cwd=tmp_path, env=stop)
    (partial,) = (tmp_path / "orig").glob("*.json")
    done = segbench("reproduce", str(partial), "--out", "again", cwd=tmp_path, env=STEADY)
    assert done.returncode == 0, done.stderr
    assert f"note: {partial} is partial (interrupted by SIGTERM after 1 timed step(s))" in (
        done.stderr
    )
    assert "no reproduction verdict: fewer than 2 timed steps on a side" in done.stdout


def test_a_tune_file_says_only_its_winner_is_rerun(tmp_path, original):
    committed = Path(__file__).resolve().parents[1] / "docs/results/tune"
    session = json.loads(next(committed.glob("*.json")).read_text())["tune"]

    def from_tune(data):
        data["tune"] = session

    done = segbench("reproduce", str(_edited(original, from_tune)), "--out", "again",
                    cwd=tmp_path, env=STEADY)  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert (
        f"is a segbench tune session's result: this reruns its winner only (one run of its "
        f"setting), not the {len(session['trials'])} trials; `segbench tune --preset smoke` "
        "searches again"
    ) in said


def test_a_deterministic_rerun_from_a_clean_commit_is_reproduced_with_identical_losses(
    tmp_path, triangles_dir
):
    """The whole loop as a user meets it: run with --deterministic, reproduce that file, and
    the losses are compared bit for bit (the same software: a clean commit is needed)."""
    from segbench.results.environment import git_commit

    commit = git_commit()
    if commit is None or commit.endswith("-dirty"):
        pytest.skip("the checkout has uncommitted changes: bit for bit needs a clean commit")
    cached_data(tmp_path, triangles_dir)
    made = segbench("run", "--preset", "smoke", "--steps", "20", "--deterministic", "--out",
                    "orig", cwd=tmp_path, env=STEADY)  # fmt: skip
    assert made.returncode == 0, made.stderr
    (first,) = (tmp_path / "orig").glob("*.json")
    done = segbench("reproduce", str(first), "--out", "again", cwd=tmp_path, env=STEADY)
    assert done.returncode == 0, done.stderr
    assert "speed: reproduced: +0.0 % in time per image" in done.stdout
    assert "numerics: identical losses, bit for bit (20 timed steps)" in done.stdout


def test_a_file_without_a_data_digest_is_rerun_saying_that_cannot_be_checked(tmp_path, original):
    """Files older than data digests (four of docs/results): a note and a `cannot be checked`
    row, then the rerun (a TypeError ended it)."""
    done = segbench("reproduce", str(_edited(original, lambda d: d["data"].pop("sha256"))),
                    "--out", "again", cwd=tmp_path, env=STEADY)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "records no data digest (an older file)" in " ".join(done.stderr.split())
    (row,) = [line for line in done.stdout.splitlines() if line.startswith("│ data ")]
    assert "not recorded" in row and "cannot be checked" in row
