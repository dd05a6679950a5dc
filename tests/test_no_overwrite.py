"""An output option never replaces a result or any file segbench did not write as a PNG."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from segbench.cli import app

RESULT = (
    Path(__file__).resolve().parents[1] / "docs/results/segbench-quick-cpu-20261126T162833Z.json"
)


def _copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copy(RESULT, target)
    return target


def test_plot_onto_its_own_result_is_refused_and_the_file_kept(tmp_path):
    result = _copy(tmp_path, "r.json")
    before = result.read_bytes()
    done = CliRunner().invoke(app, ["plot", str(result), "-o", str(result)])
    assert done.exit_code == 2
    assert done.output.strip().splitlines() == [
        f"error: --output {result}: a .json name is a result file, not a picture; "
        "choose a .png name"
    ]
    assert result.read_bytes() == before


def test_a_glob_that_puts_a_result_into_compare_plot_is_refused(tmp_path):
    a, b = _copy(tmp_path, "a.json"), _copy(tmp_path, "b.json")
    before = a.read_bytes()
    # `segbench compare --plot *.json` in a folder holding a.json and b.json:
    done = CliRunner().invoke(app, ["compare", "--plot", str(a), str(b)])
    assert done.exit_code == 2
    assert "a .json name is a result file" in done.output
    assert a.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]


def test_only_a_png_segbench_wrote_is_replaced(tmp_path):
    result = _copy(tmp_path, "r.json")
    foreign = tmp_path / "holiday.png"
    foreign.write_bytes(b"\x89PNG\r\n\x1a\n not ours")
    done = CliRunner().invoke(app, ["plot", str(result), "-o", str(foreign)])
    assert done.exit_code == 2
    assert "exists and is not a PNG segbench wrote" in done.output
    assert foreign.read_bytes() == b"\x89PNG\r\n\x1a\n not ours"
    ours = tmp_path / "trace.png"
    for _ in range(2):  # the second run replaces the first one's picture
        done = CliRunner().invoke(app, ["plot", str(result), "-o", str(ours)])
        assert done.exit_code == 0, done.output
    assert b"Software\x00segbench" in ours.read_bytes()[:4096]
