"""The typed result record: committed files round-trip, and every field is checked on load."""

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segbench.atomic import atomic_path, write_text_atomic
from segbench.cli import app
from segbench.results.result import Result, load_result, to_json_text

RESULTS = sorted((Path(__file__).parents[1] / "docs" / "results").glob("segbench-*.json"))
ARTICLE_CPU = next(p for p in RESULTS if "article-cpu" in p.name)


@pytest.mark.parametrize("path", RESULTS, ids=[p.name for p in RESULTS])
def test_committed_results_round_trip_unchanged(path):
    result = load_result(path)
    assert Result.from_dict(result.to_dict()) == result
    assert to_json_text(result) == path.read_text()  # byte for byte: schema_version 1 as written


def test_results_are_read_as_attributes():
    result = load_result(next(p for p in RESULTS if "quick-cpu" in p.name))
    assert result.config.batch_size == 16 and result.model.parameters == 20_886_706
    assert result.summary.p10_ms <= result.summary.median_ms <= result.summary.p90_ms
    assert result.environment.packages["tensorflow"] == "2.19.1"
    assert result.doctor and result.doctor[0].id == "python"


def _broken(tmp_path, change):
    data = json.loads(ARTICLE_CPU.read_text())  # 61 timed steps
    change(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["summary"].update(median_ms="14022.7"),
            'field summary.median_ms: expected a number, found "14022.7"',
        ),
        (
            lambda d: d["summary"].update(images_per_s=-1.1),
            "field summary.images_per_s: must be greater than 0, found -1.1",
        ),
        (
            lambda d: d["summary"].update(p90_ms=math.nan),
            "field summary.p90_ms: expected a finite number, found nan",
        ),
        (
            lambda d: d["summary"].pop("median_ms"),
            "field summary: invalid (median_ms is missing with 61 timed steps)",
        ),
        (lambda d: d["config"].update(batch_size=0), "field config: invalid"),
        (
            lambda d: d["environment"]["cpu"].update(logical_cores=True),
            "field environment.cpu.logical_cores: expected a whole number, found true",
        ),
        (lambda d: d["steps"][0].pop("ms"), "field steps[0].ms: missing"),
        (
            lambda d: d.update(schema_version="1"),
            'schema_version must be a whole number, found "1"',
        ),
    ],
    ids=["string", "negative", "nan", "missing", "config", "bool", "nested", "version-string"],
)
def test_a_bad_field_is_refused_in_one_line_naming_file_and_field(tmp_path, change, message):
    path = _broken(tmp_path, change)
    done = CliRunner().invoke(app, ["compare", str(path)])
    assert done.exit_code == 2
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ")
    assert message in lines[0]


def test_a_diverged_loss_is_a_finding_not_a_broken_file(tmp_path):
    path = _broken(tmp_path, lambda d: d["loss_trajectory"].__setitem__(-1, math.nan))
    assert math.isnan(load_result(path).loss_trajectory[-1])


def test_atomic_file_and_folder_appear_whole_or_not_at_all(tmp_path):
    write_text_atomic(tmp_path / "a.txt", "done")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "b.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "d", folder=True) as tmp:
        (tmp / "x").write_text("half")
        raise RuntimeError("stopped")
    with atomic_path(tmp_path / "e", folder=True) as tmp:
        (tmp / "x").write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "e"]
    assert (tmp_path / "e" / "x").read_text() == "whole"
