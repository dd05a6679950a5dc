"""`segbench submit` and the community catalogue: checked files copied under names that never
collide, the privacy rules, and every file in community/ valid."""

import json
import re
from pathlib import Path

import pytest
from test_compare import document
from test_report import shifted, write
from typer.testing import CliRunner

from segbench.cli import app
from segbench.results.catalogue import catalogue_name, device_folder
from segbench.results.plausibility import check_files
from segbench.results.privacy import private_words
from segbench.results.result import load_result

COMMUNITY = Path(__file__).parents[1] / "community"
runner = CliRunner()


def public(data: dict) -> dict:
    """`data` with the template's home paths (made as root here) written as ~, as segbench
    writes them now."""
    return json.loads(json.dumps(data).replace("/root/", "~/"))


def submit(path: Path, catalogue: Path):
    return runner.invoke(app, ["submit", str(path), "--catalogue", str(catalogue)])


def test_a_result_is_copied_under_its_device_date_and_digest(tmp_path):
    path = write(tmp_path, "mine.json", public(shifted(document(model="Test CPU"), 1)))
    found = submit(path, tmp_path / "community")
    assert found.exit_code == 0, found.output
    [copied] = (tmp_path / "community").rglob("*.json")
    assert copied.parent.name == "cpu-test-cpu-x-8"
    assert re.fullmatch(r"2026-11-26-[0-9a-f]{12}\.json", copied.name)
    assert copied.read_bytes() == path.read_bytes()
    assert f"git add {copied}" in found.output and "git push -u origin" in found.output


def test_the_same_run_is_never_added_twice_and_no_file_is_replaced(tmp_path):
    path = write(tmp_path, "mine.json", public(shifted(document(), 1)))
    assert submit(path, tmp_path / "c").exit_code == 0
    [copied] = (tmp_path / "c").rglob("*.json")
    before = copied.read_bytes()
    again = write(tmp_path, "copy.json", json.loads(path.read_text()))
    found = submit(again, tmp_path / "c")
    assert found.exit_code == 2
    assert "duplicate: the same run as" in found.output
    assert list((tmp_path / "c").rglob("*.json")) == [copied] and copied.read_bytes() == before


def test_a_file_failing_a_check_is_refused_with_the_reason(tmp_path):
    data = shifted(document(), 1)
    data["forced"] = True
    found = submit(write(tmp_path, "forced.json", data), tmp_path / "c")
    assert found.exit_code == 2
    assert "not submitted, it failed a check (forced, interrupted or diverged" in found.output
    assert not (tmp_path / "c").exists()


def test_a_file_naming_the_home_folder_is_refused(tmp_path):
    data = shifted(document(), 1)
    data["data"]["folder"] = str(Path.home() / "secret" / "triangles")
    found = submit(write(tmp_path, "home.json", data), tmp_path / "c")
    assert found.exit_code == 2
    assert "names your home folder" in found.output
    assert not (tmp_path / "c").exists()


def test_a_home_folder_hidden_behind_json_escapes_is_refused_too(tmp_path):
    data = shifted(document(), 1)
    data["command"] = ["run", "--out", str(Path.home() / "secret")]
    text = json.dumps(data).replace(str(Path.home()), str(Path.home()).replace("/", "\\u002f"))
    assert str(Path.home()) not in text  # only JSON's reader makes the path again
    path = tmp_path / "escaped.json"
    path.write_text(text)
    found = submit(path, tmp_path / "c")
    assert found.exit_code == 2, found.output
    assert "names your home folder" in found.output
    assert not (tmp_path / "c").exists()


COMMUNITY_FILES = sorted(COMMUNITY.rglob("*.json"))


def test_the_catalogue_has_the_committed_results():
    assert len(COMMUNITY_FILES) >= 10


@pytest.mark.parametrize("path", COMMUNITY_FILES, ids=lambda p: str(p.relative_to(COMMUNITY)))
def test_every_community_file_is_valid_named_and_public(path):
    [checked] = check_files([path])
    assert checked.findings == []
    result = load_result(path)
    assert path.parent.name == device_folder(result)
    assert path.name == catalogue_name(result)
    assert private_words(path.read_text()) == []


def test_no_run_is_in_the_catalogue_twice():
    checked = check_files(COMMUNITY_FILES)
    assert [c.path for c in checked if c.findings] == []
