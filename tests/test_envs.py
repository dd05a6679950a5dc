"""Drift checks: uv.lock against pyproject, the envs/ exports against the lock, the justfile."""

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENVS = ROOT / "envs"
TARGETS = ("macos-arm64-metal", "linux-x86_64-cuda", "linux-x86_64-cpu", "linux-aarch64-cpu")
UV = os.environ.get("UV") or shutil.which("uv")
JUST = shutil.which("just") or str(Path(sys.executable).with_name("just"))

needs_uv = pytest.mark.skipif(UV is None, reason="uv is not installed")


def pins(target: str) -> dict[str, str]:
    """name → version of every requirement in a target's export."""
    text = (ENVS / target / "requirements.txt").read_text()
    return dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", text, flags=re.M))


@needs_uv
def test_uv_lock_is_current():
    done = subprocess.run([UV, "lock", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@needs_uv
def test_stale_lock_is_reported_by_uv_naming_uv_lock(tmp_path):
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('"psutil>=5.9",', '"psutil>=5.9",\n    "tqdm",')
    )
    done = subprocess.run([UV, "lock", "--check"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0
    assert "run `uv lock`" in done.stderr


@needs_uv
def test_committed_exports_equal_fresh_exports(tmp_path):
    subprocess.run(
        [sys.executable, str(ENVS / "export.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        env={**os.environ, "UV": UV},
    )
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert len(fresh) == 2 * len(TARGETS) + 1
    for rel in fresh:
        assert (ENVS / rel).read_text() == (tmp_path / rel).read_text(), (
            f"envs/{rel} drifted: just lock"
        )


def test_every_target_pins_the_same_tensorflow_and_keras():
    for target in TARGETS:
        assert pins(target)["tensorflow"] == "2.19.1", target
        assert pins(target)["keras"] == pins("linux-x86_64-cpu")["keras"], target


def test_platform_specific_packages_are_where_they_belong():
    assert pins("macos-arm64-metal")["tensorflow-metal"] == "1.2.0"
    assert pins("linux-x86_64-cuda")["nvidia-cudnn-cu12"].startswith("9.3.")
    # CUDA libraries only in the CUDA export; the NVML binding (telemetry, pure Python, no CUDA)
    # on every Linux target and nowhere else.
    for target in ("linux-x86_64-cpu", "linux-aarch64-cpu", "macos-arm64-metal"):
        cuda = [
            name for name in pins(target) if name.startswith("nvidia-") and name != "nvidia-ml-py"
        ]
        assert not cuda, target
    for target in ("linux-x86_64-cpu", "linux-aarch64-cpu", "linux-x86_64-cuda"):
        assert "nvidia-ml-py" in pins(target), target
    assert "nvidia-ml-py" not in pins("macos-arm64-metal")
    for target in ("linux-x86_64-cpu", "linux-aarch64-cpu", "linux-x86_64-cuda"):
        assert "tensorflow-metal" not in pins(target), target


def test_every_requirement_is_hash_pinned():
    for target in TARGETS:
        entries = re.split(r"\n(?=\S)", (ENVS / target / "requirements.txt").read_text().strip())
        requirements = [e for e in entries if not e.startswith("#")]
        assert len(requirements) > 30, target
        for entry in requirements:
            assert re.match(r"^[A-Za-z0-9_.\-]+==\S+", entry), entry.splitlines()[0]
            assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), entry.splitlines()[0]


def test_conda_specs_install_their_hash_locked_requirements():
    for target in TARGETS:
        spec = (ENVS / target / "environment.yml").read_text()
        assert "  - conda-forge\n" in spec and "  - python=3.11\n" in spec
        assert "      - --require-hashes\n      - -r requirements.txt\n" in spec
    lock_input = (ENVS / "conda" / "python.yml").read_text()
    for platform_name in ("osx-arm64", "linux-64", "linux-aarch64"):
        assert f"  - {platform_name}\n" in lock_input


def test_conda_lock_writes_nothing_where_conda_forge_is_unreachable(tmp_path):
    sys.path.insert(0, str(ENVS))
    try:
        import conda_lock
    finally:
        sys.path.remove(str(ENVS))
    reachable, reason = conda_lock.conda_forge_reachable(timeout=5)
    if reachable:
        pytest.skip("conda-forge is reachable here: generating the lock takes minutes (just lock)")
    done = subprocess.run(
        [sys.executable, str(ENVS / "conda_lock.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    assert done.stdout.strip().splitlines() == [
        f"conda-lock skipped: {reason}; no conda lockfile written "
        "(run `just lock` where conda-forge is reachable)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_justfile_lists_every_routine_task():
    done = subprocess.run([JUST, "--list"], cwd=ROOT, capture_output=True, text=True, check=True)
    for recipe in (
        "bench-mac",
        "bench-cpu",
        "bench-cuda",
        "doctor",
        "data",
        "compare",
        "launch",
        "test",
        "lint",
        "lock",
        "schema",
        "numerics-reference",
        "docker-build-cpu",
        "docker-build-cuda",
        "nix-develop",
        "nix-check",
        "metal-pairs",
    ):
        line = next(line for line in done.stdout.splitlines() if line.split()[0] == recipe)
        assert "# " in line, f"{recipe} has no doc line"


@pytest.mark.skipif(platform.system() == "Darwin", reason="bench-mac runs there")
def test_bench_mac_elsewhere_says_so_in_one_line():
    done = subprocess.run([JUST, "bench-mac"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: bench-mac needs macOS on Apple silicon (this is {platform.system()} "
        f"{platform.machine()}); try: just bench-cpu"
    ]


@pytest.mark.slow
@needs_uv
@pytest.mark.skipif(
    (sys.platform, platform.machine()) != ("linux", "x86_64"),
    reason="the export is for Linux x86_64",
)
def test_fresh_venv_from_the_cpu_export_runs_the_smoke_preset(tmp_path, small_dataset):
    # The export alone (every requirement pinned with its hashes) makes a working environment.
    # uv installs it here in seconds; pip installs the same file into the CPU image, which
    # .ci/run builds and runs (docker/smoke.sh).
    venv = tmp_path / "venv"
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    install = [UV, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python")]
    subprocess.run(
        [*install, "--require-hashes", "-r", str(ENVS / "linux-x86_64-cpu" / "requirements.txt")],
        check=True,
        timeout=1800,
    )
    subprocess.run([*install, "--no-deps", str(ROOT)], check=True, timeout=600)
    done = subprocess.run(
        [
            str(venv / "bin" / "segbench"),
            "run",
            "--preset",
            "smoke",
            "--data",
            str(small_dataset),
            "--out",
            str(tmp_path / "res"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    [written] = (tmp_path / "res").glob("segbench-smoke-cpu-*.json")
    # The installed package carries its data files: the schema and the numerics reference.
    assert json.loads(written.read_text())["numerics"]["status"] == "match"
