"""The container recipes: lint, what the Dockerfiles install, and the CUDA export's wheels.

The real CPU image build and the smoke run inside it are docker/smoke.sh, run by .ci/run.
"""

import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cli_helpers import error_lines

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = {
    "cpu": ROOT / "docker" / "Dockerfile.cpu",
    "cuda": ROOT / "docker" / "Dockerfile.cuda",
}
HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))

sys.path.insert(0, str(ROOT / "docker"))
import verify_export  # noqa: E402


def test_hadolint_finds_nothing():
    done = subprocess.run(
        [HADOLINT, *map(str, DOCKERFILES.values())], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("flavour", ["cpu", "cuda"])
def test_image_installs_only_the_hash_locked_export_then_segbench(flavour):
    text = DOCKERFILES[flavour].read_text()
    export = f"envs/linux-x86_64-{flavour}/requirements.txt"
    first = [line for line in text.splitlines() if line.startswith(("FROM", "COPY", "RUN"))]
    assert first[0] == "FROM ${BASE_IMAGE}"
    assert first[1] == f"COPY {export} /opt/segbench/requirements.txt"  # fails fast when absent
    assert "ARG BASE_IMAGE=python:3.11-slim-bookworm" in text
    assert "pip install --no-cache-dir --require-hashes -r /opt/segbench/requirements.txt" in text
    assert "pip install --no-cache-dir --no-deps /opt/segbench/src" in text
    assert "--mount=type=secret,id=ca" in text and "PIP_CERT=/run/secrets/ca" in text
    assert re.search(r"^USER 10001$", text, re.M)
    assert 'ENTRYPOINT ["segbench"]' in text
    assert "SEGBENCH_OUT=/results" in text  # `run --preset smoke` alone still writes to /results
    assert re.search(r'^CMD \["run", "--preset", "quick", .*"--out", "/results"\]$', text, re.M)
    for label in ("source", "version"):
        assert f"org.opencontainers.image.{label}=" in text
    assert 'io.segbench.uv-lock.sha256="${UV_LOCK_SHA256}"' in text


def test_cuda_image_runs_on_the_gpu_and_says_so_without_one():
    text = DOCKERFILES["cuda"].read_text()
    assert '"--device", "gpu"' in text and "SEGBENCH_IMAGE=cuda" in text


def test_cuda_image_exposes_the_worker_port_the_docs_publish():
    exposed = re.findall(r"^EXPOSE (\d+)$", DOCKERFILES["cuda"].read_text(), re.MULTILINE)
    page = (ROOT / "docs" / "multi-gpu.md").read_text()
    assert exposed == ["12345"]
    assert '-p 12345:12345 -e TF_CONFIG="$TF_CONFIG"' in page and "segbench-cuda run" in page


def test_build_context_holds_only_what_the_images_copy():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[1] == "*"
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    copied = set()
    for text in (p.read_text() for p in DOCKERFILES.values()):
        copied |= {m for line in re.findall(r"^COPY (.+) \S+$", text, re.M) for m in line.split()}
    assert {c.rstrip("/") for c in copied} <= {a.removesuffix("/**") for a in allowed}


@pytest.mark.slow
def test_cuda_image_without_gpu_fails_in_one_line(tmp_path):
    env = {**os.environ, "SEGBENCH_IMAGE": "cuda", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "segbench",
            "run",
            "--preset",
            "smoke",
            "--device",
            "gpu",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 1
    assert error_lines(done.stderr) == [
        "error: no NVIDIA GPU visible: run with --gpus all and the NVIDIA Container Toolkit"
    ]


def test_export_verifier_catches_a_hash_without_a_wheel(tmp_path):
    text = (ROOT / "envs" / "linux-x86_64-cpu" / "requirements.txt").read_text()
    entry = next(e for e in verify_export.entries(text) if e[0] == "six")
    assert entry[1] and entry[3]
    broken = tmp_path / "requirements.txt"
    broken.write_text(f"six=={entry[1]} \\\n    --hash=sha256:{'0' * 64}\n")
    try:
        problems = verify_export.verify(broken, "3.11", "linux_x86_64")
    except urllib.error.URLError as e:
        pytest.skip(f"PyPI is not reachable: {e.reason}")
    assert problems == [f"six=={entry[1]}: no wheel for linux_x86_64 matches the export's hashes"]


def test_cuda_export_resolves_for_linux_x86_64():
    try:
        urllib.request.urlopen("https://pypi.org/simple/", timeout=10).close()
    except urllib.error.URLError as e:
        pytest.skip(f"PyPI is not reachable: {e.reason}")
    export = ROOT / "envs" / "linux-x86_64-cuda" / "requirements.txt"
    assert verify_export.verify(export, "3.11", "linux_x86_64") == []


JUST = Path(sys.executable).parent / "just"


@pytest.mark.skipif(not JUST.exists(), reason="just is not installed (uv sync --dev)")
@pytest.mark.parametrize(
    ("commands", "said"),
    [
        ({"docker": "exit 1"}, "docker is installed but its daemon does not answer"),
        ({}, "no container engine: install Docker (with a running daemon) or podman"),
    ],
)
def test_bench_cpu_says_why_no_container_engine_answers(tmp_path, commands, said):
    """A docker CLI whose daemon is down (a stand-in `docker` that fails `docker info`), or no
    engine at all: one line saying which, before any build."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in commands.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    tools = ("sh", "bash", "sha256sum", "cut", "git", "uname", "id", "mkdir")
    for tool in tools:
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    done = subprocess.run(
        [str(JUST), "--justfile", str(ROOT / "justfile"), "bench-cpu"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {said}"), done.stderr
