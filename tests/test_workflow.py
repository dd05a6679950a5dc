"""The GitHub Actions workflow for forks: actionlint-clean, running what the README says."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
ACTIONLINT = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))

needs_actionlint = pytest.mark.skipif(
    not Path(ACTIONLINT).exists(), reason="actionlint is not installed (uv sync, on Linux)"
)


def jobs() -> dict[str, str]:
    """Each job's block of the workflow, by job id."""
    text = WORKFLOW.read_text().split("\njobs:\n", 1)[1]
    parts = re.split(r"^  ([a-z][\w-]*):\n", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def runs(block: str) -> list[str]:
    """The one-line `run:` commands of a job."""
    return re.findall(r"^\s+run: (?!\|)(.+)$", block, flags=re.M)


def readme_quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Quick start", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


@needs_actionlint
def test_actionlint_passes():
    done = subprocess.run([ACTIONLINT, str(WORKFLOW)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_actionlint
def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = WORKFLOW.read_text().replace(
        "runs-on: ubuntu-24.04", "runs-on: ubuntu-24.04\n    needz: macos"
    )
    (tmp_path / "ci.yml").write_text(broken)
    done = subprocess.run([ACTIONLINT, str(tmp_path / "ci.yml")], capture_output=True, text=True)
    assert done.returncode == 1 and "needz" in done.stdout


def test_linux_job_runs_the_readme_commands_lint_and_the_cpu_image():
    linux = jobs()["linux"]
    assert "runs-on: ubuntu-24.04" in linux
    commands = runs(linux)
    assert readme_quick_start() == ["uv run segbench run", "uv run --dev pytest"]
    for command in readme_quick_start():
        assert command in commands
    for lint in (
        "ruff check .",
        "ruff format --check .",
        "hadolint docker/Dockerfile.cpu",
        "actionlint",
    ):
        assert lint in linux
    assert "docker build -f docker/Dockerfile.cpu -t segbench-cpu" in linux
    assert "segbench-cpu run --preset smoke" in linux


def test_macos_job_installs_the_metal_lock_and_runs_doctor_and_smoke_on_the_cpu():
    mac = jobs()["macos"]
    assert "runs-on: macos-14" in mac  # Apple silicon
    assert "pip install --require-hashes -r envs/macos-arm64-metal/requirements.txt" in mac
    assert ".venv-metal/bin/segbench doctor --preset smoke --device cpu" in runs(mac)
    assert ".venv-metal/bin/segbench run --preset smoke --device cpu" in runs(mac)
    assert "without a usable Metal GPU" in mac
