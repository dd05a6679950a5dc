"""Lock files: which envs/ export fits this interpreter, its pins, and uv.lock's versions."""

from __future__ import annotations

import re
from pathlib import Path


def target_name(sys_platform: str, machine: str, installed: dict[str, str]) -> str | None:
    """The envs/ target this interpreter corresponds to."""
    if sys_platform == "darwin" and machine == "arm64":
        return "macos-arm64-metal"
    if sys_platform == "linux" and machine in ("x86_64", "AMD64"):
        return "linux-x86_64-cuda" if "nvidia-cudnn-cu12" in installed else "linux-x86_64-cpu"
    if sys_platform == "linux" and machine in ("aarch64", "arm64"):
        return "linux-aarch64-cpu"
    return None


def read_export(path: Path) -> dict[str, str]:
    """name → version pins, for this interpreter, of a hash-locked export; ValueError if not one."""
    from packaging.markers import InvalidMarker, Marker

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read ({e.__class__.__name__})") from None
    pins = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", " ", "\t")):
            continue
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)==([^\s;\\]+)(?: ; ([^\\]+))?", line)
        if not match:
            raise ValueError(f"{path}: not a hash-locked export (line {line[:40]!r})")
        try:
            if match.group(3) and not Marker(match.group(3).strip()).evaluate():
                continue  # not for this interpreter or platform
        except InvalidMarker:
            raise ValueError(f"{path}: bad marker on {match.group(1)}") from None
        pins[normalise(match.group(1))] = match.group(2)
    if not pins:
        raise ValueError(f"{path}: holds no pinned requirement")
    return pins


def lock_versions(path: Path) -> dict[str, set[str]]:
    """name → versions of every package in a uv.lock (empty when it cannot be read)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return {}
    found: dict[str, set[str]] = {}
    for name, version in re.findall(
        r'^\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"', text, re.M
    ):
        found.setdefault(normalise(name), set()).add(version)
    return found


def normalise(name: str) -> str:
    """A distribution name in its canonical form (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()
