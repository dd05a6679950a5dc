"""What `segbench report` shows, before it is written as HTML: the files found, each checked,
those that pass grouped into sets of comparable results (model, width, image, batch, preset),
each set compared as `segbench compare` compares, and those that fail kept apart with their
reasons."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segbench.benchmark.config import is_published_setup
from segbench.errors import BadInput
from segbench.results.comparability import MUST_MATCH
from segbench.results.compare import Comparison, compare
from segbench.results.plausibility import Checked, check_files
from segbench.results.result import Recomputed, Result


@dataclass(frozen=True)
class ResultSet:
    """Comparable results: their comparison (rows in file order, then the references) and
    each result's file and record."""

    title: str
    comparison: Comparison
    files: list[Path]
    results: list[Result]


@dataclass(frozen=True)
class Report:
    sets: list[ResultSet]
    apart: list[Checked]  # files that failed a check: shown with their reasons, never ranked


def result_files(inputs: list[Path]) -> list[Path]:
    """The files named and the *.json files in the folders named (recursively, sorted), each
    once; BadInput naming an input that is neither."""
    found: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.json") if p.is_file())
        elif path.exists():
            found.append(path)
        else:
            raise BadInput(f"{path}: no such file or folder; name result files or their folders")
    unique = list(dict.fromkeys(found))
    if not unique:
        shown = " ".join(str(p) for p in inputs)
        raise BadInput(f"{shown}: no result file (*.json) found; name result files or folders")
    return unique


def set_key(result: Result) -> tuple:
    """What results must share to be ranked together: compare's MUST_MATCH and the preset."""
    return (*(str(value(result)) for value in MUST_MATCH.values()), result.config.preset)


def set_title(result: Result) -> str:
    """e.g. "CV-net, width 1, batch 16, image 512 — quick preset"."""
    own = result.model.own
    model = f"model {own.spec}" if own else "CV-net"
    size = "" if own else f", width {result.config.width:g}, image {result.config.image_size}"
    return f"{model}{size}, batch {result.config.batch_size} — {result.config.preset} preset"


def build_report(inputs: list[Path]) -> Report:
    """Every file checked; those that pass grouped and compared, the first file of each set
    its baseline, the published figures added where they are of the same setting."""
    checked = check_files(result_files(inputs))
    groups: dict[tuple, list[Checked]] = {}
    for one in checked:
        if one.passed:
            groups.setdefault(set_key(one.result), []).append(one)
    sets = []
    for members in groups.values():
        results = [m.result for m in members]
        first = results[0]
        references = (first.model.own is None and is_published_setup(first.config)) or (
            first.config.model == "resnet50"
        )
        comparison = compare(
            results,
            references=references,
            sources=[str(m.path) for m in members],
            recomputed=[Recomputed(r, []) for r in results],  # check_files recomputed them
        )
        sets.append(ResultSet(set_title(first), comparison, [m.path for m in members], results))
    sets.sort(key=lambda s: (-len(s.results), s.title))
    return Report(sets, [one for one in checked if not one.passed])
