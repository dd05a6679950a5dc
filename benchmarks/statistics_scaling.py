"""Time and peak memory of summarising, comparing and plotting results of many steps.

A long run (`--steps 30000`, hours of timing) must never be lost to its statistics. This makes
synthetic results of 1,000 … 200,000 timed steps from a committed result (its steps repeated
with noise and a slight slow-down, so the drift test has work to do), then measures, each in a
fresh process (GNU time's maximum RSS): the summary alone (load_result + recompute),
`segbench compare A --format json` against the committed 20-step result and against a second
file of as many steps (load, recompute the summaries, the two-sample test), and `segbench
plot`. Targets for 200,000 steps: summary and compare ≤ 5 s and ≤ 500 MB, plot ≤ 10 s.

    uv run python benchmarks/statistics_scaling.py [--steps 1000 10000 100000 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "docs" / "results" / "segbench-quick-cpu-20261126T162833Z.json"


def synthetic(n: int, seed: int, slower: float) -> dict:
    """The source result with `n` timed steps: its own step times resampled, ×`slower`, with a
    0.5 % slow-down from the first to the last step; the summary left for compare to redo."""
    document = json.loads(SOURCE.read_text())
    timed = [s for s in document["steps"] if s["phase"] == "timed"]
    others = [s for s in document["steps"] if s["phase"] != "timed"]
    rng = np.random.default_rng(seed)
    base = np.array([s["ms"] for s in timed]) * slower
    ms = rng.choice(base, n) * (1 + 0.005 * np.arange(n) / n) * rng.normal(1, 0.01, n)
    start = max((s["at_s"] or 0) + s["ms"] / 1000 for s in others)
    at = start + np.concatenate([[0], np.cumsum(ms[:-1] / 1000)])
    template = timed[0]
    document["steps"] = others + [
        {**template, "index": len(others) + i, "ms": float(m), "at_s": round(float(a), 6)}
        for i, (m, a) in enumerate(zip(ms, at, strict=True))
    ]
    document["config"]["steps"] = n
    document["loss_trajectory"] = [s["loss"] for s in document["steps"]]
    document["iou_trajectory"] = [s["iou"] for s in document["steps"]]
    from segbench.results.result import Result, recompute

    result = recompute(Result.from_dict(document)).result  # a consistent stored summary
    document["summary"] = result.to_dict()["summary"]
    return document


# Python as on a user's machine: modules compiled to bytecode once and read from __pycache__
# afterwards (a CI runner or container with PYTHONDONTWRITEBYTECODE=1 compiles every module of
# numpy, scipy and matplotlib at each start: seconds). Each command runs once untimed first.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measured(argv: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of a command in a fresh process."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        began = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", out.name, *argv],
            capture_output=True,
            text=True,
            check=False,
            env=ENV,
        )
        seconds = time.perf_counter() - began
        peak_kb = int(Path(out.name).read_text().split()[-1])
    return seconds, peak_kb / 1024, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 10000, 100000, 200000])
    args = parser.parse_args()
    python = sys.executable
    summary = (
        "import sys; from pathlib import Path; from segbench.results.result import load_result, "
        "recompute; r = recompute(load_result(Path(sys.argv[1]))).result; "
        "print(r.summary.median_ms, r.summary.methods)"
    )
    print(
        "steps | summary s | MB | compare with 20 steps s | MB | compare two s | MB | plot s | MB"
    )
    with tempfile.TemporaryDirectory() as folder:
        for n in args.steps:
            a, b = Path(folder) / f"a-{n}.json", Path(folder) / f"b-{n}.json"
            a.write_text(json.dumps(synthetic(n, 1, 1.0)))
            b.write_text(json.dumps(synthetic(n, 2, 1.02)))
            commands = [
                [python, "-c", summary, str(a)],
                [python, "-m", "segbench", "compare", str(a), str(SOURCE), "--format", "json"],
                [python, "-m", "segbench", "compare", str(a), str(b), "--format", "json"],
                [python, "-m", "segbench", "plot", str(a), "-o", str(Path(folder) / "t.png")],
            ]
            if n == args.steps[0]:
                for argv in commands:  # bytecode written, files in the page cache
                    measured(argv)
            rows = [measured(argv) for argv in commands]
            failed = [code for _, _, code in rows if code != 0]
            cells = " | ".join(f"{s:.2f} | {mb:.0f}" for s, mb, _ in rows)
            print(f"{n} | {cells}" + (f"  (exit codes {failed})" if failed else ""), flush=True)


if __name__ == "__main__":
    main()
