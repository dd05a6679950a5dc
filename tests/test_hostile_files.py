"""Result files made to break compare and plot: each is refused in one line naming the file and
what is wrong (exit 2, nothing written), or read correctly; no statistic overflows, and the
JSON compare writes is strict JSON."""

import json
import math
from pathlib import Path

import pytest
from test_compare import document, with_telemetry, write
from typer.testing import CliRunner

from segbench.cli import app


def _compare(*paths, fmt="table"):
    return CliRunner().invoke(
        app, ["compare", *map(str, paths), "--format", fmt, "--no-references"]
    )


def _one_error_line(done, path) -> str:
    assert done.exit_code == 2, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), done.output
    return lines[0]


def _timed(data):
    return [s for s in data["steps"] if s["phase"] == "timed"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply; not a segbench result"),
        ('{"schema_version": ' + "9" * 5000 + "}", "exceeds the limit (4300 digits)"),
        ('{"schema_version": 5, "schema_version": 5}', 'the key "schema_version" appears twice'),
        ('{"schema_version": 5, "config": {', "not valid JSON (truncated at line 1"),
        ('{"schema_version": 5 "config": {}}', "not valid JSON (corrupt at line 1"),
        (b"\xff\xfe{}", "not UTF-8 text (byte 0)"),
    ],
    ids=["deep", "huge-int-text", "duplicate-key", "truncated", "corrupt", "utf16"],
)
def test_unreadable_documents_are_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "bad.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    assert message in _one_error_line(_compare(path), path)


def test_a_duplicate_key_deep_inside_a_result_is_named(tmp_path):
    text = json.dumps(document()).replace('"ms": ', '"ms": 1.0, "ms": ', 1)
    path = tmp_path / "dup.json"
    path.write_text(text)
    assert 'the key "ms" appears twice in one object' in _one_error_line(_compare(path), path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: _timed(d)[3].update(ms=1e308), "must be at most 8.64e+07, found 1e+308"),
        (lambda d: _timed(d)[0].update(ms=0.0), "must be at least 0.001, found 0.0"),
        (lambda d: _timed(d)[1].update(ms=1e-300), "must be at least 0.001, found 1e-300"),
        (lambda d: d.update(seed=10**1000), "field seed: must be at most"),
        (lambda d: d["loss_trajectory"].__setitem__(2, 1e300), "loss_trajectory[2]: must be at"),
        (lambda d: d["summary"].update(median_ms=-math.inf), "expected a finite number"),
    ],
    ids=[
        "step-1e308",
        "step-zero",
        "step-1e-300",
        "seed-1000-digits",
        "loss-1e300",
        "minus-infinity",
    ],
)
def test_numbers_no_measurement_can_hold_are_refused_before_any_statistic(
    tmp_path, change, message
):
    data = document()
    change(data)
    path = write(tmp_path, "bad.json", data)
    line = _one_error_line(_compare(path), path)
    assert message in line


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda trace: trace["power_w"].pop(),
            "the trace's series differ in length",
        ),
        (
            lambda trace: trace["t_s"].__setitem__(5, trace["t_s"][2]),
            "t_s runs backwards at reading 5",
        ),
    ],
    ids=["mismatched", "backwards"],
)
def test_a_telemetry_trace_that_does_not_line_up_is_refused_by_compare_and_plot(
    tmp_path, change, message
):
    data = with_telemetry(document())
    change(data["telemetry"]["trace"])
    path = write(tmp_path, "bad.json", data)
    line = _one_error_line(_compare(path), path)
    assert "field telemetry.trace: invalid" in line and message in line
    png = tmp_path / "trace.png"
    done = CliRunner().invoke(app, ["plot", str(path), "-o", str(png)])
    assert message in _one_error_line(done, path)
    assert not png.exists()


def test_a_byte_order_mark_is_read_as_utf8(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(document()).encode())
    done = _compare(path, fmt="json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["rows"][0]["source"] == str(path)


def test_compare_json_is_strict_json_even_for_a_diverged_run(tmp_path):
    data = document()
    data["loss_trajectory"][-1] = math.nan
    for step in data["steps"][-3:]:
        step["loss"] = math.nan
    a = write(tmp_path, "a.json", data)
    b = write(tmp_path, "b.json", document(median=500.0, p10=450.0, p90=600.0))
    done = _compare(a, b, fmt="json")
    assert done.exit_code == 0, done.output

    def no_constant(name):
        raise AssertionError(f"{name} in compare's JSON")

    rows = json.loads(done.output, parse_constant=no_constant)["rows"]
    assert rows[1]["speedup"][1] == pytest.approx(2.0)


def test_a_long_run_is_summarised_and_compared_with_bounded_statistics(tmp_path):
    """200,000 timed steps (a run of hours at article size): every statistic is computed and
    says how; the file round-trips through the typed reader column by column."""
    import numpy as np

    from segbench.results.result import load_result, recompute

    data = document()
    template = _timed(data)[0]
    others = [s for s in data["steps"] if s["phase"] != "timed"]
    rng = np.random.default_rng(3)
    ms = rng.normal(1000.0, 10.0, 200_000)
    data["steps"] = others + [{**template, "index": i, "ms": float(m)} for i, m in enumerate(ms)]
    data["config"]["steps"] = len(ms)
    path = write(tmp_path, "long.json", data)
    result = recompute(load_result(path)).result
    assert result.steps[-1].ms == float(ms[-1]) and len(result.steps) == len(data["steps"])
    summary = result.summary
    assert summary.steps == 200_000
    assert summary.median_ms == pytest.approx(float(np.median(ms)))
    low, high = summary.median_ci95_ms
    assert low < summary.median_ms < high and high - low < 0.5  # ± 0.06 ms expected
    assert "order statistics" in summary.methods and "not computed" not in summary.methods
    assert summary.drift.verdict == "steady"
    done = _compare(path, write(tmp_path, "short.json", document()), fmt="json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["rows"][1]["speedup"][1] == pytest.approx(
        summary.median_ms / 1000.0, rel=1e-3
    )


def test_compare_json_writes_a_number_json_cannot_hold_as_null():
    from dataclasses import replace

    from segbench.report.export import compare_json
    from segbench.results.compare import compare
    from segbench.results.result import Result

    comparison = compare([Result.from_dict(document())])
    row = replace(comparison.rows[0], tflops=math.inf, p_value=math.nan)
    text = compare_json(replace(comparison, rows=[row, *comparison.rows[1:]]))
    (first, *_) = json.loads(text, parse_constant=lambda name: pytest.fail(name))["rows"]
    assert first["tflops"] is None and first["p_value"] is None


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_file_that_is_not_a_regular_file_is_refused_without_reading_it(tmp_path, kind):
    import os

    path = "/dev/zero" if kind == "device" else tmp_path / "fifo.json"
    if kind == "fifo":
        os.mkfifo(path)  # no writer: reading would wait for ever
    assert "not a regular file" in _one_error_line(_compare(path), path)


def test_a_result_whose_steps_hold_no_timed_step_is_refused_in_one_line(tmp_path):
    data = document()
    data["steps"] = [s for s in data["steps"] if s["phase"] != "timed"]
    path = write(tmp_path, "no-timed.json", data)
    assert "holds no timed step" in _one_error_line(_compare(path), path)


def test_show_recomputes_a_summary_its_steps_contradict(tmp_path):
    data = document()
    data["summary"]["median_ms"] = 500.0
    path = write(tmp_path, "edited.json", data)
    done = CliRunner().invoke(app, ["show", str(path)])
    assert done.exit_code == 0, done.output
    assert "1000.0 ms" in done.output and "500.0 ms" not in done.output
    assert "the summary in the file disagrees with its steps (median_ms" in done.output


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("environment", "keras_backend"), "=1+2"),
        (("config", "backend"), "=1+2"),
        (("config", "backend"), "mxnet"),  # a word, but not one of Keras 3's backends
        (("environment", "keras_backend"), "TensorFlow"),
    ],
)
def test_a_value_outside_its_vocabulary_is_refused_on_load(tmp_path, where, value):
    committed = Path(__file__).parents[1] / "docs/results/segbench-quick-cpu-20261126T162833Z.json"
    data = json.loads(committed.read_text())
    data[where[0]][where[1]] = value
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    line = _one_error_line(_compare(path), path)
    assert f"field {'.'.join(where)}: must be one of" in line and repr(value)[1:-1] in line
