"""doctor survives the import it diagnoses: the frameworks are imported in a child process first.

The stand-ins are real shared libraries in a `tensorflow-plugins/` folder, which TensorFlow loads
at import on Linux as on macOS: one binds a symbol TensorFlow does not export (a plugin built for
another TensorFlow), one aborts while it loads.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_helpers import segbench

from segbench import doctor
from segbench.doctor import probe
from segbench.doctor.gather import import_owners
from segbench.results import environment

needs_cc = pytest.mark.skipif(
    shutil.which("cc") is None, reason="needs a C compiler for the stand-in"
)

MISSING = "TF_SegbenchStandInMissing"
UNRESOLVED = f"extern int {MISSING}(void);\nint segbench_stand_in(void) {{ return {MISSING}(); }}\n"
ABORTS = (
    "#include <stdlib.h>\n"
    "__attribute__((constructor)) static void segbench_stand_in(void) { abort(); }\n"
)


def site_with_plugin(root: Path, source: str, owner: tuple[str, str] | None) -> Path:
    """A site-packages folder holding tensorflow-plugins/libmetal_plugin.so built from `source`,
    installed by the distribution `owner` (name, version) when given."""
    site = root / "site-packages"
    plugins = site / "tensorflow-plugins"
    plugins.mkdir(parents=True)
    (root / "plugin.c").write_text(source)
    library = plugins / "libmetal_plugin.so"
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-Wl,-z,now", "-o", str(library), str(root / "plugin.c")],
        check=True,
    )
    if owner is not None:
        name, version = owner
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "RECORD").write_text(
            f"tensorflow-plugins/{library.name},,\n{info.name}/METADATA,,\n"
        )
    return site


@needs_cc
@pytest.mark.slow
def test_plugin_built_for_another_tensorflow_is_a_fail_row_and_run_refuses(tmp_path):
    site = site_with_plugin(tmp_path, UNRESOLVED, ("tensorflow-metal", "1.1.0"))
    env = {"PYTHONPATH": str(site), "SEGBENCH_PROBE_CACHE": str(tmp_path / "probe")}

    found = segbench("doctor", "--preset", "smoke", "--json", cwd=tmp_path, env=env)
    assert found.returncode == 1, found.stderr
    assert "Traceback" not in found.stdout + found.stderr
    checks = {c["id"]: c for c in json.loads(found.stdout)["checks"]}
    # The whole table: every check has its row, the import one FAILs naming the pair.
    assert {"python", "import", "tensorflow", "keras", "disk", "memory", "power"} <= set(checks)
    row = checks["import"]
    assert row["status"] == "FAIL"
    assert f"undefined symbol: {MISSING}" in row["found"]
    assert "installed by tensorflow-metal 1.1.0" in row["found"]
    assert "does not load into tensorflow 2.19.1" in row["found"]
    assert "table: fails" in row["found"]  # 2.19 × 1.1.0 in segbench.doctor.metal_pairs
    assert "tensorflow-metal==1.2.0" in row["fix"]
    assert checks["compute"]["found"].startswith("not run")

    run = segbench("run", "--preset", "smoke", "--out", "out", cwd=tmp_path, env=env)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith("error: import tensorflow fails: undefined symbol")
    assert "tensorflow-metal 1.1.0" in lines[-1] and "fix: uv sync --locked" in lines[-1]
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()


@needs_cc
@pytest.mark.slow
def test_a_plugin_that_aborts_the_import_is_named_with_the_signal(tmp_path, monkeypatch):
    site = site_with_plugin(tmp_path, ABORTS, None)
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("SEGBENCH_PROBE_CACHE", str(tmp_path / "probe"))
    found = probe.probe("tensorflow")
    assert not found.ok
    assert found.failed_module == "tensorflow"
    assert found.error == "crashed (SIGABRT)"  # TensorFlow's start-up log lines are no cause
    check = doctor.check_import(found, {"tensorflow": "2.19.1"}, None)
    assert check.status == "FAIL"
    assert check.found == (
        "import tensorflow fails: crashed (SIGABRT); plugins loaded by this import: "
        f"{site / 'tensorflow-plugins' / 'libmetal_plugin.so'}"
    )
    assert check.fix.startswith("move the plugins aside one at a time")
    assert not list((tmp_path / "probe").glob("*.json"))  # a failure is never remembered


@pytest.mark.slow
def test_a_clean_import_is_remembered_until_the_environment_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_PROBE_CACHE", str(tmp_path / "probe"))
    first = probe.probe("tensorflow")
    assert first.ok and not first.cached
    import keras
    import tensorflow as tf

    assert first.versions == {"tensorflow": tf.__version__, "keras": keras.__version__}
    again = probe.probe("tensorflow")
    assert again.cached and again.versions == first.versions
    before = probe.environment_key("tensorflow")
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # decides what the import loads
    after = probe.environment_key("tensorflow")
    assert after != before
    assert probe._read_cache(after) is None and probe._read_cache(before) is not None


def test_what_an_import_writes_leaves_the_key_alone_and_an_install_changes_it(
    tmp_path, monkeypatch
):
    # A fresh virtual environment without PYTHONDONTWRITEBYTECODE: the first import writes
    # __pycache__ into each package folder, which changes the folder's modification time.
    site = tmp_path / "site"
    (site / "tensorflow").mkdir(parents=True)
    (site / "tensorflow" / "__init__.py").write_text("")
    (site / "tensorflow-2.19.1.dist-info").mkdir()
    (site / "tensorflow-2.19.1.dist-info" / "RECORD").write_text("tensorflow/__init__.py\n")
    (site / "six.py").write_text("")
    monkeypatch.setattr(sys, "path", [str(site)])
    before = probe.environment_key("tensorflow")
    (site / "tensorflow" / "__pycache__").mkdir()
    (site / "tensorflow" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"x")
    (site / "__pycache__").mkdir()
    (site / "__pycache__" / "six.cpython-311.pyc").write_bytes(b"x")
    (site / "notes.txt").write_text("not importable")
    assert probe.environment_key("tensorflow") == before
    (site / "tensorflow-plugins").mkdir()  # a plugin installed
    (site / "tensorflow-plugins" / "libmetal_plugin.so").write_bytes(b"x")
    with_plugin = probe.environment_key("tensorflow")
    assert with_plugin != before
    (site / "zz.pth").write_text(str(tmp_path))  # a path hook installed
    with_hook = probe.environment_key("tensorflow")
    assert with_hook != with_plugin
    stamp = (site / "six.py").stat().st_mtime_ns
    os.utime(site / "six.py", ns=(stamp + 10**9, stamp + 10**9))  # a module rewritten
    assert probe.environment_key("tensorflow") != with_hook


def test_child_output_is_read_into_one_line():
    stderr = (
        "Traceback (most recent call last):\n  File ...\n"
        "tensorflow.python.framework.errors_impl.NotFoundError: /x/site-packages/"
        "tensorflow-plugins/libmetal_plugin.dylib: Symbol not found: _TF_Foo\n"
    )
    found = probe.parse_child(1, "segbench-probe: import tensorflow\n", stderr)
    assert (found.ok, found.failed_module) == (False, "tensorflow")
    assert found.error == "Symbol not found: _TF_Foo"
    assert found.library == "/x/site-packages/tensorflow-plugins/libmetal_plugin.dylib"
    killed = probe.parse_child(-11, "segbench-probe: import keras\n", "")
    assert (killed.failed_module, killed.error) == ("keras", "crashed (SIGSEGV)")
    noise = (
        "2026-11-29 21:07:05.943382: I tensorflow/core/util/port.cc:153] oneDNN custom ops\n"
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "W0000 00:00:1795986425.999070    3951 computation_placer.cc:177] already registered\n"
    )
    exited = probe.parse_child(3, "segbench-probe: import tensorflow\n", noise)
    assert exited.error == "exit status 3"


def test_two_distributions_behind_one_import_name_fail(tmp_path, monkeypatch):
    other = tmp_path / "tensorflow_cpu-2.18.0.dist-info"
    other.mkdir()
    (other / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tensorflow-cpu\nVersion: 2.18.0\n"
    )
    (other / "top_level.txt").write_text("tensorflow\n")
    (other / "RECORD").write_text("tensorflow/__init__.py,,\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    owners = import_owners()
    assert owners["tensorflow"] == ["tensorflow 2.19.1", "tensorflow-cpu 2.18.0"]
    check = doctor.check_framework(
        "tensorflow",
        {"tensorflow": "2.19.1"},
        None,
        {},
        "tensorflow",
        {"tensorflow": "2.18.0"},
        owners,
    )
    assert check.status == "FAIL"
    assert check.found == (
        "tensorflow 2.19.1 and tensorflow-cpu 2.18.0 all install the tensorflow module; "
        "Python imports 2.18.0"
    )
    assert check.fix.startswith("pip uninstall -y tensorflow tensorflow-cpu")


def test_a_version_pip_lists_but_python_does_not_import_fails():
    check = doctor.check_framework(
        "tensorflow",
        {"tensorflow": "2.19.1"},
        {"tensorflow": "2.19.1"},
        {},
        "tensorflow",
        {"tensorflow": "2.18.0"},
        {"tensorflow": ["tensorflow 2.19.1"]},
    )
    assert (check.status, check.found) == ("FAIL", "pip lists 2.19.1, but Python imports 2.18.0")


def test_results_record_the_imported_version(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", SimpleNamespace(__version__="2.18.0"))
    assert environment.imported_versions({"tensorflow": "2.19.1", "numpy": "2.1.3"}) == {
        "tensorflow": "2.18.0",
        "numpy": "2.1.3",
    }


@pytest.mark.parametrize(("level", "shown"), [("3", False), ("0", True)])
@pytest.mark.slow
def test_tensorflow_checked_beside_another_backend_keeps_its_chatter_out(tmp_path, level, shown):
    # A run on jax or torch still checks that TensorFlow imports; TensorFlow's C++ start-up
    # lines (written to fd 2 before absl's logging starts) stay out unless asked for.
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "import os\nos.write(2, b'E0000 cuda_dnn.cc:8579] Unable to register cuDNN factory\\n')\n"
        "raise ImportError('a broken build')\n"  # so Keras's seeding tries it again
    )
    code = (
        "from segbench.doctor.gather import _import_errors; print(_import_errors(None)); "
        "from segbench.measure.backend import configure_determinism; configure_determinism(1, 0)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "KERAS_BACKEND": "numpy",
        "TF_CPP_MIN_LOG_LEVEL": level,
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'tensorflow': 'ImportError: a broken build'}"  # still found
    # Once by doctor's check, once by Keras's seeding: both quiet, or both shown.
    assert done.stderr.count("Unable to register cuDNN factory") == (2 if shown else 0)
