"""How much the speed settings change one machine's step time: Keras 3 as a user runs it,
`--batchnorm fused`, `--compile`, both, and `--keras 2` (the article's generation).

Runs `segbench run` for each setting in interleaved rounds (setting A, B, C, … then again),
so a drift of the machine spreads over all of them, and prints each setting's median time
per step with its 95 % CI over all rounds' timed steps, and its ratio to `--keras 2` with the
bootstrap CI of the ratio. Timing figures are only meaningful on a quiet machine.

    uv run python benchmarks/speed_settings.py --rounds 3 -- --batch-size 4 --steps 6
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from segbench.results.stats import difference, median_ci

SETTINGS = {
    "Keras 3 (default)": [],
    "Keras 3 --batchnorm fused": ["--batchnorm", "fused"],
    "Keras 3 --compile": ["--compile"],
    "Keras 3 --compile --batchnorm fused": ["--compile", "--batchnorm", "fused"],
    "Keras 2 (--keras 2)": ["--keras", "2"],
}
BASELINE = "Keras 2 (--keras 2)"


def timed_ms(path: Path) -> list[float]:
    """The timed steps' times (ms) of a result file."""
    data = json.loads(path.read_text())
    return [s["ms"] for s in data["steps"] if s["phase"] == "timed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("rest", nargs="*", help="more `segbench run` options, after --")
    args = parser.parse_args()
    samples: dict[str, list[float]] = {name: [] for name in SETTINGS}
    commit = None
    with tempfile.TemporaryDirectory() as out:
        for round_ in range(args.rounds):
            for name, flags in SETTINGS.items():
                folder = Path(out) / f"{round_}-{len(samples[name])}-{abs(hash(name))}"
                command = [
                    sys.executable,
                    "-m",
                    "segbench",
                    "run",
                    "--preset",
                    args.preset,
                    "--no-peak",
                    "--no-check-numerics",
                    *args.rest,
                    *flags,
                    "--out",
                    str(folder),
                ]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    print(f"{name}: exit {done.returncode}: {done.stderr.strip()[-300:]}")
                    continue
                (path,) = folder.glob("segbench-*.json")
                commit = json.loads(path.read_text())["git_commit"]
                samples[name] += timed_ms(path)
                print(f"round {round_ + 1}: {name}: {len(samples[name])} steps", flush=True)
    print(f"\nsegbench run --preset {args.preset} {' '.join(args.rest)}, commit {commit}")
    print(f"{'setting':38} {'median ms/step':>15} {'95 % CI':>21} {'time × Keras 2 (CI)':>24}")
    for name, ms in samples.items():
        if not ms:
            continue
        ci = median_ci(ms)
        median = statistics.median(ms)
        ratio = ""
        if name != BASELINE and samples[BASELINE]:
            found = difference(ms, samples[BASELINE])  # > 1: this setting is slower
            low, high = found.ci95 or (found.speedup, found.speedup)
            ratio = f"{found.speedup:.3f} ({low:.3f}–{high:.3f})"
        spread = f"{ci[0]:.1f}–{ci[1]:.1f}" if ci else ""
        print(f"{name:38} {median:15.1f} {spread:>21} {ratio:>24}")


if __name__ == "__main__":
    main()
