"""Time and size of `segbench report` over many result files (the issue's target: 1,000 files
in at most 60 s, a page of at most 5 MB).

Makes N result files from committed ones, as a community catalogue would hold them: quick runs
(80 %), article runs (15 %) and forced runs that fail a check (5 %), on 60 devices, each run's
step times scaled by its device's speed with noise, every start time distinct. Then runs
`segbench report` on the folder in a fresh process and prints its wall time, the page's size
and the machine's load while it ran.

    uv run python benchmarks/report_scaling.py [--files 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
QUICK = RESULTS / "segbench-quick-cpu-20261130T045026Z.json"
ARTICLE = RESULTS / "segbench-article-cpu-20261126T131500Z.json"
DEVICES = 60


def make_files(folder: Path, count: int, seed: int = 0) -> None:
    """`count` result files in `folder`, from the committed quick and article runs."""
    from segbench.results.result import Result, recompute
    from segbench.results.schema import to_json

    rng = np.random.default_rng(seed)
    quick, article = (json.loads(p.read_text()) for p in (QUICK, ARTICLE))
    speed = rng.lognormal(0, 1.5, DEVICES)
    start = datetime(2026, 12, 1, tzinfo=timezone.utc)
    for i in range(count):
        kind = rng.random()
        data = json.loads(json.dumps(article if 0.8 <= kind < 0.95 else quick))
        device = i % DEVICES
        data["environment"]["cpu"]["model"] = f"Test CPU {device:02d}"
        data["started_at"] = (start + timedelta(minutes=i)).isoformat(timespec="seconds")
        for step in data["steps"]:
            step["ms"] = float(step["ms"] / speed[device] * rng.normal(1, 0.02))
        data["forced"] = bool(kind >= 0.95)
        data.pop("peak", None)  # the committed machine's ceiling: not these devices' ones
        data["summary"] = to_json(recompute(Result.from_dict(data)).result.summary)
        (folder / f"result-{i:04d}.json").write_text(json.dumps(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "results"
        folder.mkdir()
        make_files(folder, args.files)
        out = Path(tmp) / "report.html"
        load_before = os.getloadavg()[0]
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "segbench", "report", str(folder), "-o", str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - began
        if done.returncode != 0:
            sys.exit(done.stderr)
        print(done.stderr.strip().splitlines()[0])
        print(f"{args.files} files: {seconds:.1f} s, page {out.stat().st_size / 1e6:.2f} MB")
        print(
            f"load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after, "
            f"on {os.cpu_count()} CPUs"
        )


if __name__ == "__main__":
    main()
