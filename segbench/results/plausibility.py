"""Plausibility checks of result files that others made: is the file what segbench writes, do
its figures agree with its steps and with the device's limits, and may its speed be ranked?
Each check that fails is a Finding with its reason and what to do; a file with any finding is
shown apart and never ranked (`segbench report`, `segbench submit`). Judges; never prints."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from segbench import __version__
from segbench.benchmark.triangles import TRIANGLES_SHA256
from segbench.errors import BadInput
from segbench.results.caveats import diverged_loss
from segbench.results.result import Result, load_result, recompute
from segbench.results.stats import ALPHA, min_p_value, steps_to_decide, timed_steps

# The data sets whose results rank together: the triangles segbench generates, and the author's
# 600 published images (`data/case_20211030` of the author's repository, as the committed
# article runs on them record it: docs/results/README.md).
PUBLISHED_DATA = {
    TRIANGLES_SHA256: "the triangles segbench generates",
    "45a05e758c339472e65c721fa7e3ab78983c32f4550644979827108cada9d2d6": (
        "the author's 600 published images"
    ),
}
# Achieved TFLOP/s this far above the run's own matmul ceiling is no real step time.
CEILING_FACTOR = 1.5

SCHEMA = "schema"
SUMMARY = "summary"
VENDOR_PEAK = "vendor peak"
CEILING = "measured ceiling"
NUMERICS = "numerics"
STATUS = "forced, interrupted or diverged"
STEPS = "steps"
DATA = "data"
DUPLICATE = "duplicate"
VERSION = "version"
FAKE = "fake trainer"
# How the fake trainer (measure/fake_trainer.py) names its device: "CPU (fake trainer)".
FAKE_DEVICE = "(fake trainer)"


@dataclass(frozen=True)
class Finding:
    """A check a file failed: which, and why (with what to do)."""

    check: str
    reason: str


@dataclass(frozen=True)
class Checked:
    """A file after the checks: its result with the statistics recomputed from its steps
    (None when it does not load), and the checks it failed."""

    path: Path
    result: Result | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.result is not None and not self.findings


def run_digest(result: Result) -> str:
    """sha256 of what makes a run this run: its start, device, configuration and every step's
    time. Two files with the same digest hold the same run, however else they were edited."""
    identity = {
        "started_at": result.started_at,
        "device": result.device.description,
        "cpu": result.environment.cpu.model,
        "config": [result.config.preset, result.config.batch_size, result.config.width],
        "steps": [[s.phase, s.ms] for s in result.steps],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def version_tuple(version: str) -> tuple[int, ...]:
    """(0, 1, 0) of "0.1.0", "0.1.0.dev3+g1234"; the leading numbers only."""
    found = re.match(r"\d+(?:\.\d+)*", version.strip())
    return tuple(int(n) for n in found.group().split(".")) if found else ()


def result_findings(result: Result, disagreeing: list[str]) -> list[Finding]:
    """The checks of one loaded file (`result` with its recomputed summary; `disagreeing`:
    the stored summary's fields that its steps contradict)."""
    found = []
    if result.device.description.endswith(FAKE_DEVICE):
        found.append(
            Finding(
                FAKE,
                "made by the fake trainer (segbench's test stand-in: step times it was told, "
                "no training): no speed figure",
            )
        )
    if disagreeing:
        found.append(
            Finding(
                SUMMARY,
                f"the summary disagrees with the steps ({', '.join(disagreeing)}): edited by "
                "hand or made by another program; submit the file as segbench wrote it",
            )
        )
    found += _peak_findings(result)
    n = result.numerics
    if n is not None and n.status == "deviates":
        found.append(
            Finding(
                NUMERICS,
                "the numerics check deviates from the CPU float32 reference: the speed may come "
                "from a wrong computation; run with --device cpu to compare, check --precision",
            )
        )
    found += _status_findings(result)
    steps = len(timed_steps(result.config, result.steps))
    if min_p_value(steps, steps) >= ALPHA:
        need = steps_to_decide(steps, steps)
        found.append(
            Finding(
                STEPS,
                f"{steps} timed steps: too few for any verdict against another run (p < {ALPHA:g}"
                f" needs {need}); run again with --steps {need} or more (--preset quick)",
            )
        )
    digest = result.data.sha256
    if digest is not None and digest not in PUBLISHED_DATA:
        found.append(
            Finding(
                DATA,
                f"data digest {digest[:12]}… is none of the published data sets "
                f"({', '.join(f'{d[:12]}…: {n}' for d, n in PUBLISHED_DATA.items())}): other "
                "images; run without --data",
            )
        )
    if version_tuple(result.segbench_version) > version_tuple(__version__):
        found.append(
            Finding(
                VERSION,
                f"made by segbench {result.segbench_version}, newer than this one "
                f"({__version__}): its checks may be older than the file; upgrade segbench",
            )
        )
    return found


def _peak_findings(result: Result) -> list[Finding]:
    """Achieved TFLOP/s (from the recomputed median) above the device's vendor peak, or far
    above the ceiling the run measured itself."""
    achieved = result.summary.tflops
    p = result.peak
    found = []
    if p is not None and p.vendor_tflops is not None and achieved > p.vendor_tflops:
        found.append(
            Finding(
                VENDOR_PEAK,
                f"{achieved:.3g} TFLOP/s achieved, above the vendor peak of {p.vendor_device} "
                f"({p.vendor_tflops:.3g} TFLOP/s {str(p.vendor_basis).upper()}): impossible "
                "on that device; the steps or the device in the file are wrong",
            )
        )
    ceiling = p.measured_tflops if p is not None else None
    if ceiling is not None and achieved > CEILING_FACTOR * ceiling:
        found.append(
            Finding(
                CEILING,
                f"{achieved:.3g} TFLOP/s achieved, {achieved / ceiling:.1f}× the matmul "
                f"ceiling the run measured ({ceiling:.3g} TFLOP/s): implausible; run again "
                "and submit that file",
            )
        )
    return found


def _status_findings(result: Result) -> list[Finding]:
    """Forced past failed checks, interrupted, or a diverged loss."""
    what = []
    if result.forced:
        what.append("run with --force despite failed checks")
    if result.status == "interrupted":
        what.append(f"interrupted ({result.interrupted_by or 'reason not recorded'})")
    loss = diverged_loss(result)
    if loss or result.diverged:
        what.append(f"the loss diverged ({loss or result.diverged})")
    if not what:
        return []
    return [Finding(STATUS, "; ".join(what) + ": no speed figure to rank; run it again whole")]


def check_file(path: Path) -> tuple[Checked, str | None]:
    """One file loaded, recomputed and checked on its own, with its run digest (None when it
    does not load)."""
    try:
        loaded = load_result(path)
    except BadInput as e:  # unreadable, not JSON, or a field of the wrong type or range
        return Checked(path, None, [Finding(SCHEMA, str(e).removeprefix(f"{path}: "))]), None
    found = recompute(loaded)
    return Checked(path, found.result, result_findings(found.result, found.disagreeing)), (
        run_digest(found.result)
    )


def check_files(paths: list[Path], known: dict[str, Path] | None = None) -> list[Checked]:
    """Every file checked; the second and later files of one run (and any run already in
    `known`: run digest → file) fail as duplicates naming the first."""
    seen = dict(known or {})
    checked = []
    for path in paths:
        one, digest = check_file(path)
        if one.findings:  # a damaged copy never takes the place of the run's sound file
            digest = None
        if digest is not None and digest in seen:
            first = seen[digest]
            one.findings.append(
                Finding(DUPLICATE, f"the same run as {first}: each run is counted once")
            )
        elif digest is not None:
            seen[digest] = path
        checked.append(one)
    return checked
