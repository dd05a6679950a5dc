"""Lock the conda side of envs/ (conda-forge Python and pip) with conda-lock.

    uv run python envs/conda_lock.py [--out DIR]

conda-lock needs conda-forge and its own conda executable from the network. Where
conda-forge cannot be reached this prints one line and writes nothing: a lockfile is
made by the real solver or not at all.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

ENVS = Path(__file__).resolve().parent
CHANNEL_URL = "https://conda.anaconda.org/conda-forge/noarch/repodata.json"
CONDA_LOCK = "conda-lock@4.0.3"  # run with `uv tool run`, outside the project environment


def conda_forge_reachable(timeout: float = 10.0) -> tuple[bool, str]:
    """(reachable, reason): whether conda-forge's repodata answers."""
    request = urllib.request.Request(CHANNEL_URL, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return True, "conda-forge answered"
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        return False, f"{CHANNEL_URL.split('/')[2]} is not reachable ({reason})"


def lock(spec: Path, lockfile: Path) -> int:
    """Run conda-lock into a temporary file and move it into place only when it succeeds."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        print("error: uv not found on PATH; it runs conda-lock (uvx)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / lockfile.name
        done = subprocess.run(
            [uv, "tool", "run", CONDA_LOCK, "lock", "--file", str(spec), "--lockfile", str(staged)],
            check=False,
        )
        if done.returncode != 0 or not staged.is_file():
            print(
                f"error: conda-lock failed (exit {done.returncode}); {lockfile} left as it was",
                file=sys.stderr,
            )
            return done.returncode or 1
        lockfile.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staged, lockfile)
    print(lockfile)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description="Lock envs/conda/python.yml with conda-lock.")
    parser.add_argument(
        "--out",
        type=Path,
        default=ENVS / "conda",
        help="folder for conda-lock.yml (default: envs/conda)",
    )
    args = parser.parse_args()
    reachable, reason = conda_forge_reachable()
    if not reachable:
        print(
            f"conda-lock skipped: {reason}; no conda lockfile written "
            "(run `just lock` where conda-forge is reachable)"
        )
        return
    sys.exit(lock(ENVS / "conda" / "python.yml", args.out / "conda-lock.yml"))


if __name__ == "__main__":
    main()
