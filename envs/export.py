"""Export uv.lock into one hash-locked requirements file and one conda spec per target.

    uv run python envs/export.py            # rewrite envs/<target>/ from uv.lock
    uv run python envs/export.py --out DIR  # write elsewhere (the drift tests compare)

Each requirements file is `uv export` of the lock, narrowed to the entries whose markers
can hold on that target for a supported Python, so `pip install --require-hashes -r FILE`
installs exactly what `uv sync` installs there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker

ENVS = Path(__file__).resolve().parent
ROOT = ENVS.parent
PYTHONS = ("3.10", "3.11", "3.12")
CONDA_PYTHON = "3.11"
# The conda side of every spec: conda-forge's interpreter and pip, nothing else.
CONDA_BASE = (
    "channels:",
    "  - conda-forge",
    "  - nodefaults",
    "dependencies:",
    f"  - python={CONDA_PYTHON}",
    "  - pip",
)


@dataclass(frozen=True)
class Target:
    name: str
    sys_platform: str
    platform_machine: str
    extras: tuple[str, ...]
    conda_platform: str
    use: str

    def environments(self) -> list[dict[str, str]]:
        """Marker environments of this target, one per supported Python."""
        system = {"darwin": "Darwin", "linux": "Linux"}[self.sys_platform]
        return [
            {
                "sys_platform": self.sys_platform,
                "platform_machine": self.platform_machine,
                "platform_system": system,
                "os_name": "posix",
                "implementation_name": "cpython",
                "platform_python_implementation": "CPython",
                "python_version": version,
                "python_full_version": f"{version}.0",
                "extra": "",
            }
            for version in PYTHONS
        ]


TARGETS = (
    Target(
        "macos-arm64-metal",
        "darwin",
        "arm64",
        (),
        "osx-arm64",
        "macOS 12+ on Apple silicon: TensorFlow with the tensorflow-metal GPU plugin",
    ),
    Target(
        "linux-x86_64-cuda",
        "linux",
        "x86_64",
        ("cuda",),
        "linux-64",
        "Linux x86_64 with an NVIDIA GPU: TensorFlow with the CUDA 12.5 / cuDNN 9.3 wheels",
    ),
    Target(
        "linux-x86_64-cpu",
        "linux",
        "x86_64",
        (),
        "linux-64",
        "Linux x86_64 without a GPU (and the segbench-cpu image)",
    ),
    Target(
        "linux-aarch64-cpu", "linux", "aarch64", (), "linux-aarch64", "Linux aarch64 on the CPU"
    ),
)


def uv_executable() -> str:
    """The uv running us (`uv run` sets $UV), else the one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        sys.exit("error: uv not found on PATH; install it (pip install uv) and retry")
    return found


def universal_export(extras: tuple[str, ...]) -> str:
    """`uv export` of the locked runtime dependencies, with hashes, for every platform."""
    argv = [
        uv_executable(),
        "export",
        "--frozen",
        "--format",
        "requirements.txt",
        "--no-dev",
        "--no-emit-project",
        "--no-header",
        "--no-annotate",
    ]
    for extra in extras:
        argv += ["--extra", extra]
    return subprocess.run(argv, cwd=ROOT, check=True, capture_output=True, text=True).stdout


def entries(export: str) -> list[list[str]]:
    """Requirement entries: a line with the requirement, then its indented --hash lines."""
    blocks: list[list[str]] = []
    for line in export.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith((" ", "\t")):
            blocks[-1].append(line)
        else:
            blocks.append([line])
    return blocks


def applies(requirement_line: str, target: Target) -> bool:
    """Whether the entry's marker can hold on `target` for some supported Python."""
    _, sep, marker = requirement_line.rstrip(" \\").partition(" ; ")
    if not sep:
        return True
    parsed = Marker(marker)
    return any(parsed.evaluate(env) for env in target.environments())


def requirements_text(target: Target) -> str:
    kept = [
        block for block in entries(universal_export(target.extras)) if applies(block[0], target)
    ]
    header = [
        f"# segbench {target.name}: {target.use}.",
        "# Exported from uv.lock by `just lock` (envs/export.py); do not edit by hand.",
        "# pip install --require-hashes -r requirements.txt, then pip install --no-deps segbench",
    ]
    body = "\n".join("\n".join(block) for block in kept)
    return "\n".join(header) + "\n" + body + "\n"


def conda_text(target: Target) -> str:
    return "\n".join(
        [
            f"# segbench {target.name}: conda-forge Python, then pip installs the hash-locked",
            "# requirements.txt beside this file. Generated by `just lock` (envs/export.py).",
            "#   conda env create -f environment.yml && conda activate "
            + f"segbench-{target.name}",
            "#   pip install --no-deps <path to the segbench checkout>",
            f"name: segbench-{target.name}",
            *CONDA_BASE,
            "  - pip:",
            "      - --require-hashes",
            "      - -r requirements.txt",
            "",
        ]
    )


def conda_lock_spec() -> str:
    """The conda side that conda-lock pins for every platform: the interpreter and pip."""
    platforms = sorted({t.conda_platform for t in TARGETS})
    return "\n".join(
        [
            "# conda-lock input: the conda-forge interpreter shared by every envs/ target.",
            "# Python packages come from each target's hash-locked requirements.txt, not conda.",
            "#   conda-lock lock -f envs/conda/python.yml --lockfile envs/conda/conda-lock.yml",
            *CONDA_BASE,
            "platforms:",
            *[f"  - {p}" for p in platforms],
            "",
        ]
    )


def write(out: Path) -> list[Path]:
    """Write every target's files under `out`; returns the paths written."""
    written = []
    for target in TARGETS:
        folder = out / target.name
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in (
            ("requirements.txt", requirements_text(target)),
            ("environment.yml", conda_text(target)),
        ):
            (folder / name).write_text(text)
            written.append(folder / name)
    (out / "conda").mkdir(parents=True, exist_ok=True)
    (out / "conda" / "python.yml").write_text(conda_lock_spec())
    written.append(out / "conda" / "python.yml")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Export uv.lock into envs/<target>/ files.")
    parser.add_argument("--out", type=Path, default=ENVS, help="folder to write (default: envs/)")
    args = parser.parse_args()
    for path in write(args.out):
        print(path.relative_to(args.out))


if __name__ == "__main__":
    main()
