"""The Nix flake: flake.lock's pin, flake.nix parsed by Nix and its outputs evaluated.

Nix binary caches and GitHub are not reachable here, so the flake is evaluated, never built:
`nix-instantiate` (Debian's nix-bin, installed by .ci/run) parses flake.nix and evaluates its
outputs against tests/nix/stand-in-nixpkgs.nix, which records the packages each shell asks for.
"""

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NIX_INSTANTIATE = shutil.which("nix-instantiate")
SYSTEMS = {"x86_64-linux", "aarch64-linux", "aarch64-darwin"}
TOOLCHAIN = ["python3.11", "uv", "just", "hadolint", "git"]

needs_nix = pytest.mark.skipif(
    NIX_INSTANTIATE is None, reason="nix-instantiate is not installed (apt-get install nix-bin)"
)


def lock() -> dict:
    return json.loads((ROOT / "flake.lock").read_text())


def evaluate(expression: Path) -> dict:
    done = subprocess.run(
        [NIX_INSTANTIATE, "--eval", "--strict", "--json", str(expression)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_flake_lock_pins_a_nixos_release_revision_with_its_nar_hash():
    data = lock()
    assert data["version"] == 7 and data["root"] == "root"
    assert data["nodes"]["root"]["inputs"] == {"nixpkgs": "nixpkgs"}
    node = data["nodes"]["nixpkgs"]
    locked, original = node["locked"], node["original"]
    assert (locked["type"], locked["owner"], locked["repo"]) == ("github", "NixOS", "nixpkgs")
    assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"])
    algorithm, _, digest = locked["narHash"].partition("-")
    assert algorithm == "sha256" and len(base64.b64decode(digest, validate=True)) == 32
    assert isinstance(locked["lastModified"], int) and locked["lastModified"] > 1.7e9
    assert re.fullmatch(r"nixos-\d\d\.(05|11)", original["ref"]), "a release branch"


def test_flake_input_names_the_locked_branch():
    original = lock()["nodes"]["nixpkgs"]["original"]
    text = (ROOT / "flake.nix").read_text()
    url = re.search(r'inputs\.nixpkgs\.url = "([^"]+)"', text).group(1)
    assert url == f"github:{original['owner']}/{original['repo']}/{original['ref']}"


@needs_nix
def test_flake_nix_parses():
    done = subprocess.run(
        [NIX_INSTANTIATE, "--parse", str(ROOT / "flake.nix")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "devShells" in done.stdout


@needs_nix
def test_every_system_has_a_dev_shell_with_the_pinned_toolchain():
    evaluated = evaluate(ROOT / "tests" / "nix" / "evaluate.nix")
    assert evaluated["nixpkgs"] == "github:NixOS/nixpkgs/nixos-25.11"
    shells = evaluated["devShells"]
    assert set(shells) == SYSTEMS
    for system, shell in shells.items():
        linux = system.endswith("-linux")
        assert shell["names"] == ["default"]
        assert shell["packages"] == TOOLCHAIN + (["podman"] if linux else []), system
        env = shell["env"]
        assert env["UV_PYTHON"] == "/nix/store/stand-in-python3.11/bin/python3.11"
        assert env["UV_PYTHON_DOWNLOADS"] == "never"
        if linux:  # the manylinux wheels' libraries, and the NixOS NVIDIA driver's
            assert env["LD_LIBRARY_PATH"].split(":") == [
                "/nix/store/stand-in-libstdc++/lib",
                "/nix/store/stand-in-zlib/lib",
                "/run/opengl-driver/lib",
            ]
        else:
            assert "LD_LIBRARY_PATH" not in env
        assert "uv sync --locked" in shell["shellHook"]


@needs_nix
def test_a_broken_flake_fails_the_evaluation(tmp_path):
    """The harness is not a rubber stamp: a flake asking for a package nixpkgs lacks fails."""
    (tmp_path / "nix").mkdir()
    for name in ("stand-in-nixpkgs.nix", "evaluate.nix"):
        shutil.copy(ROOT / "tests" / "nix" / name, tmp_path / "nix" / name)
    (tmp_path / "nix" / "evaluate.nix").write_text(
        (tmp_path / "nix" / "evaluate.nix").read_text().replace("../../flake.nix", "../flake.nix")
    )
    flake = (ROOT / "flake.nix").read_text().replace("pkgs.just", "pkgs.just-nonexistent")
    (tmp_path / "flake.nix").write_text(flake)
    done = subprocess.run(
        [NIX_INSTANTIATE, "--eval", "--strict", "--json", str(tmp_path / "nix" / "evaluate.nix")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "just-nonexistent" in done.stderr
