"""The community catalogue: result files people submit by pull request, one folder per device
(`community/<device>/<date>-<short run digest>.json`). Which name a result gets, what a file
may not say about the person who made it, and which runs the catalogue holds already."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from segbench.results.compare import device_label
from segbench.results.plausibility import run_digest
from segbench.results.result import Result, ResultFileError, load_result

CATALOGUE = Path("community")
SHORT_DIGEST = 12


def device_folder(result: Result) -> str:
    """The device as a folder name: lower case letters, digits and hyphens, e.g.
    "nvidia-h100-80gb-hbm3", "cpu-intel-r-xeon-r-processor-x-2"."""
    words = re.findall(r"[a-z0-9]+", device_label(result).lower().replace("×", "x"))
    return "-".join(words)[:64].strip("-") or "device"


def catalogue_name(result: Result) -> str:
    """<date the run started>-<first 12 hex digits of its run digest>.json."""
    day = datetime.fromisoformat(result.started_at).strftime("%Y-%m-%d")
    return f"{day}-{run_digest(result)[:SHORT_DIGEST]}.json"


def catalogued_runs(root: Path) -> dict[str, Path]:
    """Run digest → file of every result in the catalogue that loads."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.json")) if root.is_dir() else []:
        try:
            found.setdefault(run_digest(load_result(path)), path)
        except ResultFileError:
            continue  # the catalogue's test names it; a submission is judged on its own
    return found
