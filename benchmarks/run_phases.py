"""Where a run's wall time and host memory go, phase by phase.

Runs `segbench run --preset PRESET` (extra arguments after `--` are passed on) in a child with
its output piped, so segbench prints one plain line as each phase starts (importing the
framework, data, numerics probe, compile, warm-up, timed steps, peak probe, saving). Every
0.1 s it reads the child's resident memory (psutil), and prints each phase's start, wall time
and highest RSS, then the whole run's wall time and peak RSS (the kernel's maximum, which no
sampling misses). Timing figures are only meaningful on a quiet machine.

    uv run python benchmarks/run_phases.py --preset quick
    uv run python benchmarks/run_phases.py --preset smoke -- --backend jax
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time

import psutil

GIB = 1024**3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("rest", nargs="*", help="more `segbench run` options, after --")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        argv = [sys.executable, "-m", "segbench", "run", "--preset", args.preset, "--out", out]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a user's machine: bytecode cached
        began = time.monotonic()
        child = subprocess.Popen(
            [*argv, *args.rest], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        phases: list[list] = [[0.0, "(start-up, before the first line)", 0]]
        lock = threading.Lock()

        def read_lines() -> None:
            for line in child.stderr:
                text = line.strip()
                if text:
                    with lock:
                        phases.append([time.monotonic() - began, text[:70], 0])

        reader = threading.Thread(target=read_lines, daemon=True)
        reader.start()
        process = psutil.Process(child.pid)
        while child.poll() is None:
            try:
                rss = process.memory_info().rss
            except psutil.Error:
                break
            with lock:
                phases[-1][2] = max(phases[-1][2], rss)
            time.sleep(0.1)
        child.wait()
        reader.join(timeout=5)
        total = time.monotonic() - began
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux: KiB
    print(f"segbench run --preset {args.preset} {' '.join(args.rest)}  (exit {child.returncode})")
    print(f"{'start s':>8} {'wall s':>8} {'peak RSS GiB':>12}  phase (the line segbench printed)")
    ends = [start for start, _, _ in phases[1:]] + [total]
    for (start, text, rss), end in zip(phases, ends, strict=True):
        print(f"{start:8.1f} {end - start:8.1f} {rss / GIB:12.2f}  {text}")
    print(f"total wall {total:.1f} s, peak host RSS {peak / GIB:.2f} GiB (getrusage)")


if __name__ == "__main__":
    main()
