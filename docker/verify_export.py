"""Check that a hash-locked export installs on a platform: every pin has a wheel for it on PyPI
whose sha256 is one of the export's hashes. Only PyPI's file listings are read (JSON simple API).

    python docker/verify_export.py envs/linux-x86_64-cuda/requirements.txt \\
        --python 3.11 --platform linux_x86_64

This is the CUDA image's dependency step (`pip install --require-hashes -r …` in
docker/Dockerfile.cuda) verified without downloading the 3 GB of CUDA wheels.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import Version

PYPI = "https://pypi.org/simple/{name}/"  # the JSON simple API (PEP 691)


def manylinux_platforms(arch: str) -> list[str]:
    """Platform tags a glibc 2.35 Linux accepts, newest first (manylinux_2_35 … 2_17, linux)."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(35, 16, -1)]
    return [
        *tags,
        f"manylinux2014_{arch}",
        f"manylinux2010_{arch}",
        f"manylinux1_{arch}",
        f"linux_{arch}",
    ]


def target_tags(python: str, arch: str) -> set[Tag]:
    version = tuple(int(p) for p in python.split("."))
    platforms = manylinux_platforms(arch)
    return set(cpython_tags(version, platforms=platforms)) | set(
        compatible_tags(version, platforms=platforms)
    )


def entries(text: str) -> list[tuple[str, str, str | None, set[str]]]:
    """(name, version, marker, hashes) of every requirement in an export."""
    found = []
    for block in re.split(r"\n(?=\S)", text.strip()):
        if block.startswith("#"):
            continue
        head = block.splitlines()[0].rstrip(" \\")
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+?)(?: ; (.+))?$", head)
        if not match:
            raise ValueError(f"not a pinned requirement: {head!r}")
        hashes = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
        found.append((match.group(1), match.group(2), match.group(3), hashes))
    return found


def wheel_digests(name: str, version: str, tags: set[Tag]) -> list[str]:
    """sha256 of every wheel of name==version on PyPI that installs on the target tags."""
    request = urllib.request.Request(
        PYPI.format(name=name), headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    wanted = Version(version)
    digests = []
    for f in files:
        if not f["filename"].endswith(".whl"):
            continue
        try:
            _, wheel_version, _, wheel_tags = parse_wheel_filename(f["filename"])
        except InvalidWheelFilename:
            continue
        if wheel_version == wanted and wheel_tags & tags and "sha256" in f["hashes"]:
            digests.append(f["hashes"]["sha256"])
    return digests


def verify(path: Path, python: str, platform: str) -> list[str]:
    """Problems found (empty when every applicable pin has a matching wheel)."""
    arch = platform.removeprefix("linux_")
    tags = target_tags(python, arch)
    environment = {
        "sys_platform": "linux",
        "platform_machine": arch,
        "platform_system": "Linux",
        "python_version": python,
        "python_full_version": f"{python}.0",
    }
    wanted = [
        (n, v, h)
        for n, v, m, h in entries(path.read_text())
        if m is None or Marker(m).evaluate(environment)
    ]

    def problem(item: tuple[str, str, set[str]]) -> str | None:
        name, version, hashes = item
        digests = wheel_digests(name, version, tags)
        if not digests:
            return f"{name}=={version}: no wheel for cp{python.replace('.', '')} {platform} on PyPI"
        if not hashes & set(digests):
            return f"{name}=={version}: no wheel for {platform} matches the export's hashes"
        return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        problems = [p for p in pool.map(problem, wanted) if p]
    print(
        f"{path}: {len(wanted)} pins checked for Python {python} on {platform}, "
        f"{len(problems)} problem(s)"
    )
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--platform", default="linux_x86_64")
    args = parser.parse_args()
    problems = verify(args.export, args.python, args.platform)
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
