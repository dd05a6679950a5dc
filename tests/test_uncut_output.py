"""No number is ever cut: tables at 80 columns and in pipes, CSV as data, help and usage
errors at 80 columns."""

import csv
import io
import re
from pathlib import Path

import pytest
import typer
from cli_helpers import segbench
from rich.console import Console
from typer.testing import CliRunner

from segbench.cli import app
from segbench.doctor.types import Check
from segbench.report.comparison import (
    COMPACT,
    RUN,
    compare_cells,
    comparison_table,
    environment_table,
    shown_columns,
    significant,
)
from segbench.report.tables import doctor_table, run_report, summary_table
from segbench.report.uncut import UncutTable
from segbench.results.caveats import run_caveats
from segbench.results.compare import against_references, compare
from segbench.results.result import load_result

RESULTS = Path(__file__).parents[1] / "docs" / "results"
COMMITTED = sorted(RESULTS.glob("segbench-*.json"))
QUICK = [
    RESULTS / "segbench-quick-cpu-20261126T112703Z.json",
    *sorted(RESULTS.glob("segbench-quick-gpu-*.json")),
]


def render(renderable, width: int = 80) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def tokens(text: str) -> set[str]:
    return set(re.split(r"[\s│┃]+", text))


def assert_uncut(table: UncutTable, text: str, width: int = 80) -> None:
    """Every figure of `table` whole on one line of `text`, every word of its text whole,
    no line wider than `width`."""
    assert max(map(len, text.splitlines())) <= width
    lines = text.splitlines()
    for cells, _ in table.rows:
        for field, cell in zip(table.fields, cells, strict=True):
            if cell.plain == "—":  # nothing to show: a block leaves it out
                continue
            if field.number:
                assert any(cell.plain in line for line in lines), (field.header, cell.plain)
            else:
                assert set(cell.plain.split()) <= tokens(text), (field.header, cell.plain)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_run_report_at_80_columns_shows_every_figure_of_the_result_whole(path):
    result = load_result(path)
    comparison = against_references(result)
    text = render(run_report(result, comparison, run_caveats(result)))
    assert_uncut(summary_table(result), text)
    assert_uncut(comparison_table(comparison, RUN), text)
    s = result.summary
    for figure in (
        f"{s.median_ms:.1f} ms",
        f"{s.p10_ms:.1f} … {s.p90_ms:.1f} ms",
        f"{s.min_ms:.1f} … {s.max_ms:.1f} ms",
        f"{s.ms_per_image:.2f} ms",
        f"{s.images_per_s:.1f} images/s",
        f"{s.tflops:.3g} TFLOP/s",
    ):
        assert figure in text


def test_compare_at_80_columns_fits_and_shows_every_figure_and_word_whole():
    comparison = compare([load_result(f) for f in QUICK], sources=[str(f) for f in QUICK])
    compact = render(comparison_table(comparison, COMPACT))
    assert_uncut(comparison_table(comparison, COMPACT), compact)
    assert compact.splitlines()[1].startswith("┏")  # a table, not blocks
    wide = render(comparison_table(comparison, None))  # too wide for 80: one block per row
    assert_uncut(comparison_table(comparison, None), wide)
    assert_uncut(
        environment_table(comparison.environment_differences),
        render(environment_table(comparison.environment_differences)),
    )


def test_a_table_whose_figures_do_not_fit_becomes_blocks_with_every_value_whole():
    comparison = compare([load_result(f) for f in QUICK * 3], sources=[str(f) for f in QUICK * 3])
    table = environment_table(comparison.environment_differences)  # nine files
    text = render(table)
    assert "┏" not in text and text.splitlines()[1] == "git commit"
    assert_uncut(table, text)


def test_doctor_table_at_80_columns_keeps_paths_whole_and_wraps_the_fix_between_words():
    path = "/home/someone/.cache/segbench/triangles-v1/images"
    checks = [
        Check("disk", "PASS", f"{path}: 79.9 GB free", "≥ 100 MB free"),
        Check(
            "load",
            "WARN",
            "1-minute load 2.11 on 2 CPUs",
            "below 1.0",
            "other processes compete for the machine: stop them or wait (see top)",
        ),
    ]
    table = doctor_table(checks)
    text = render(table)
    assert path in text
    assert_uncut(table, text)


def test_piped_compare_at_columns_80_shows_every_figure_of_the_files_uncut(tmp_path):
    done = segbench("compare", *map(str, QUICK), cwd=tmp_path, env={"COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    comparison = compare([load_result(f) for f in QUICK], sources=[str(f) for f in QUICK])
    cells = compare_cells(comparison, brief=True)
    for row, row_cells in zip(comparison.rows, cells, strict=True):
        line = next(line for line in lines if f"│ {row_cells[0]} │ {row.label} " in line)
        for i in shown_columns(comparison, COMPACT):
            assert f" {row_cells[i]} " in line  # the whole cell, on the row's one line
    for path in QUICK:  # the figures as the file holds them, formatted as the report does
        s = load_result(path).summary
        line = next(line for line in lines if f" {s.ms_per_image:.2f} " in line)
        assert f" {s.images_per_s:.1f} " in line


def test_csv_is_one_number_per_cell_with_units_in_the_header(tmp_path):
    done = CliRunner().invoke(app, ["compare", *map(str, QUICK), "--format", "csv"])
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(done.stdout.splitlines()))
    comparison = compare([load_result(f) for f in QUICK], sources=[str(f) for f in QUICK])
    assert len(rows) == len(comparison.rows)
    text = {"device", "kind", "backend", "precision", "verdict", "no_verdict", "undermined_by"}
    text |= {"source", "conditions", "caveats", "p_method"}
    numbers = [name for name in rows[0] if name not in text]
    assert "ms_per_image_ci95_low" in numbers and "speedup_ci95_high" in numbers
    for row, line in zip(comparison.rows, rows, strict=True):
        values = {name: float(line[name]) for name in numbers if line[name] != ""}
        assert values["ms_per_image"] == row.ms_per_image  # full precision, read back exactly
        assert values["images_per_s"] == row.images_per_s
        assert values["speedup"] == row.speedup[1]
        if row.speedup_ci95 is not None:
            ci = (values["speedup_ci95_low"], values["speedup_ci95_high"])
            assert ci == row.speedup_ci95
    assert rows[0]["verdict"] == "baseline" and rows[1]["verdict"] == "faster"
    assert rows[1]["p_method"] == "asymptotic"  # 20 steps a side: scipy's own choice too
    assert rows[3]["kind"] == "published" and rows[3]["ms_per_step"] == ""  # missing: empty


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.0123, "0.0123"), (2.9549, "2.95"), (123.4, "123"), (0.5, "0.500"), (9.996, "10.0")],
)
def test_speedups_keep_three_significant_digits(value, shown):
    assert significant(value) == shown


def test_help_at_80_columns_shows_every_option_name_whole():
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        done = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "80"})
        assert done.exit_code == 0, done.output
        assert max(map(len, done.output.splitlines())) <= 80
        for param in command.params:
            for option in [*param.opts, *param.secondary_opts]:
                if option.startswith("-"):
                    assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", done.output), (
                        name,
                        option,
                    )
        assert "<bool>" not in done.output and "list[" not in done.output


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["compare", "--width", "3", "a.json"], "error: no such option: --width"),
        (["run", "--steps", "0"], "error: --steps: "),
        (["run", "--precision", "float64"], "error: --precision: 'float64' is not one of"),
        (["compare"], "error: missing argument 'FILE'"),
        (["bogus"], "error: no such command 'bogus'"),
    ],
)
def test_a_usage_error_is_one_line_and_exits_2(args, line):
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2
    assert done.output.splitlines() == [done.output.strip()]
    assert done.output.startswith(line) and done.output.strip().endswith("--help")


def test_a_usage_error_of_the_real_command_line_is_one_line_on_stderr(tmp_path):
    done = segbench("compare", "--bogus", "x.json", cwd=tmp_path, env={"COLUMNS": "80"})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: no such option: --bogus; see segbench compare --help"
    ]
