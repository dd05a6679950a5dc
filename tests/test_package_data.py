"""segbench's own package data (numerics reference, result schema, metal table): recorded
digests, and a damaged copy of the package refused in one line by the real command line."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import segbench
from segbench.doctor import metal_pairs
from segbench.package_data import SHA256, table_digest

PACKAGE = Path(segbench.__file__).parent
RESULTS = Path(__file__).parents[1] / "docs" / "results"


def test_the_recorded_digests_are_the_shipped_files():
    reference = hashlib.sha256(
        (PACKAGE / "measure/numerics_reference.json").read_bytes()
    ).hexdigest()
    assert reference == SHA256["measure/numerics_reference.json"], (
        f"numerics_reference.json was remade: record {reference} in segbench/package_data.py"
    )
    schema = hashlib.sha256((PACKAGE / "results/result.schema.json").read_bytes()).hexdigest()
    assert schema == SHA256["results/result.schema.json"], (
        f"result.schema.json was remade (just schema): record {schema} in segbench/package_data.py"
    )
    table = table_digest(metal_pairs)
    assert table == SHA256["doctor/metal_pairs.py"], (
        f"the metal table was edited: record {table} in segbench/package_data.py"
    )


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit_reference(path: Path) -> None:
    document = json.loads(path.read_text())
    document["losses"][2] *= 1.01  # valid JSON, a wrong loss: runs would be judged against it
    path.write_text(json.dumps(document, indent=2) + "\n")


def _edit_schema(path: Path) -> None:
    document = json.loads(path.read_text())
    document["required"].remove("summary")
    path.write_text(json.dumps(document, indent=2) + "\n")


def _edit_table(path: Path) -> None:
    text = path.read_text()
    row = '_row("2.18", "1.1.0", FAILS'
    assert row in text
    path.write_text(text.replace(row, '_row("2.18", "1.1.0", WORKS'))


DAMAGE = {
    "missing": lambda path: path.unlink(),
    "truncated": _truncate,
    "edited": {
        "measure/numerics_reference.json": _edit_reference,
        "results/result.schema.json": _edit_schema,
        "doctor/metal_pairs.py": _edit_table,
    },
}
WHY = {"missing": "(missing)", "truncated": "(", "edited": "(edited"}


def damaged_copy(tmp_path: Path, name: str, how: str) -> Path:
    """A copy of the segbench package with `name` damaged `how`; the folder to put first on
    PYTHONPATH."""
    root = tmp_path / "site"
    shutil.copytree(PACKAGE, root / "segbench", ignore=shutil.ignore_patterns("__pycache__"))
    damage = DAMAGE[how]
    (damage[name] if isinstance(damage, dict) else damage)(root / "segbench" / name)
    return root


def segbench_from(root: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root), "SEGBENCH_CACHE": str(cwd / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "segbench", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("how", ["missing", "truncated", "edited"])
@pytest.mark.parametrize(
    "name",
    ["measure/numerics_reference.json", "results/result.schema.json", "doctor/metal_pairs.py"],
)
def test_a_run_with_damaged_package_data_is_refused_before_timing(tmp_path, name, how):
    root = damaged_copy(tmp_path, name, how)
    done = segbench_from(root, "run", "--preset", "smoke", "--out", "results", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    path = root / "segbench" / name
    assert lines[0].startswith(f"error: segbench's package file {path} is damaged {WHY[how]}")
    assert "reinstall segbench" in lines[0]
    assert not (tmp_path / "results").exists()  # nothing timed, nothing written
    assert not (tmp_path / "cache").exists()  # not even the data set generated


def test_compare_with_an_edited_schema_says_to_reinstall(tmp_path):
    root = damaged_copy(tmp_path, "results/result.schema.json", "edited")
    result = str(sorted(RESULTS.glob("segbench-quick-cpu-*.json"))[0])
    done = segbench_from(root, "compare", result, result, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: segbench's package file {root / 'segbench/results/result.schema.json'} is damaged "
        "(edited: its SHA-256 is not the one this segbench recorded): reinstall segbench "
        "(uv sync --reinstall-package segbench, or pip install --force-reinstall segbench)"
    ]


def test_doctor_with_a_truncated_reference_says_to_reinstall(tmp_path):
    root = damaged_copy(tmp_path, "measure/numerics_reference.json", "truncated")
    done = segbench_from(root, "doctor", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert (
        "numerics_reference.json is damaged (not valid JSON: truncated or corrupt at line" in line
    )
