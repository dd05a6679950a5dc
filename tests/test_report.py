"""`segbench report`: grouping into comparable sets, the plausibility checks, the page's
contents, hostile text made inert, and bad input refused in one line."""

import html.parser
import json
import re
from pathlib import Path

import pytest
from test_compare import document
from typer.testing import CliRunner

from segbench import __version__
from segbench.cli import app
from segbench.report.html import report_html
from segbench.report.sets import build_report
from segbench.results.plausibility import (
    DATA,
    DUPLICATE,
    FAKE,
    NUMERICS,
    SCHEMA,
    STATUS,
    STEPS,
    SUMMARY,
    VENDOR_PEAK,
    VERSION,
)

RESULTS = Path(__file__).parents[1] / "docs" / "results"
runner = CliRunner()


def write(folder: Path, name: str, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def shifted(data: dict, seconds: int) -> dict:
    """Another run: another start time (and so another run digest)."""
    data["started_at"] = f"2026-11-26T10:{seconds // 60:02d}:{seconds % 60:02d}+00:00"
    return data


def with_blocks(data: dict) -> dict:
    """`data` with the numerics and peak blocks of a committed version-5 file."""
    v5 = json.loads((RESULTS / "segbench-quick-cpu-20261130T045026Z.json").read_text())
    data.update(schema_version=v5["schema_version"], numerics=v5["numerics"], peak=v5["peak"])
    return data


class Elements(html.parser.HTMLParser):
    """Every start tag and attribute of a page, as the browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def elements(page: str) -> list[tuple[str, dict]]:
    parser = Elements()
    parser.feed(page)
    return parser.tags


def test_a_mixed_folder_is_grouped_into_sets_never_refused(tmp_path):
    write(tmp_path, "a.json", shifted(document(model="Alpha CPU", median=1000.0), 1))
    write(tmp_path, "b.json", shifted(document(model="Beta CPU", median=500.0), 2))
    write(tmp_path, "c.json", shifted(document(model="Gamma CPU", batch=8), 3))
    report = build_report([tmp_path])
    sizes = sorted((len(s.results), s.title) for s in report.sets)
    assert [n for n, _ in sizes] == [1, 2]
    assert "batch 8" in sizes[0][1] and "batch 16" in sizes[1][1]
    pair = next(s for s in report.sets if len(s.results) == 2)
    beta = pair.comparison.rows[1]
    assert beta.label == "CPU: Beta CPU × 8"
    assert beta.speedup[1] == pytest.approx(2.0, rel=0.01)
    assert beta.verdict == "faster"
    # The published setting: the article's rows are in the set's comparison.
    assert any(r.kind == "published" for r in pair.comparison.rows)
    assert report.apart == []


@pytest.mark.parametrize(
    ("change", "check"),
    [
        (lambda d: d.update(forced=True), STATUS),
        (lambda d: d.update(status="interrupted", interrupted_by="SIGINT"), STATUS),
        (lambda d: d["summary"].update(median_ms=1.0), SUMMARY),
        (lambda d: d["data"].update(sha256="0" * 64), DATA),
        (lambda d: d.update(segbench_version="99.0.0"), VERSION),
        (lambda d: with_blocks(d)["numerics"].update(status="deviates"), NUMERICS),
        (lambda d: with_blocks(d)["peak"].update(vendor_tflops=0.01), VENDOR_PEAK),
    ],
)
def test_a_file_failing_a_check_is_shown_apart_with_its_reason(tmp_path, change, check):
    good = write(tmp_path, "good.json", shifted(document(), 1))
    data = shifted(document(median=500.0), 2)
    change(data)
    bad = write(tmp_path, "bad.json", data)
    report = build_report([good, bad])
    assert [len(s.results) for s in report.sets] == [1]
    assert [a.path for a in report.apart] == [bad]
    assert check in [f.check for f in report.apart[0].findings]
    page = report_html(report)
    apart = page[page.index('id="apart"') :]
    assert "bad.json" in apart and check in apart


def test_too_few_steps_the_same_run_twice_and_a_broken_file_are_apart(tmp_path):
    first = write(tmp_path, "1.json", shifted(document(), 1))
    again = write(tmp_path, "2.json", json.loads(first.read_text()))
    smoke = RESULTS / "segbench-smoke-cpu-20261130T045811Z.json"
    broken = tmp_path / "3.json"
    broken.write_text('{"schema_version": 5')
    report = build_report([first, again, smoke, broken])
    apart = {a.path: [f.check for f in a.findings] for a in report.apart}
    assert apart == {again: [DUPLICATE], smoke: [STEPS], broken: ["schema"]}
    reason = next(a for a in report.apart if a.path == broken).findings[0].reason
    assert reason.startswith("not valid JSON (truncated")


def test_the_committed_results_page_has_every_part(tmp_path):
    out = tmp_path / "report.html"
    found = runner.invoke(app, ["report", str(RESULTS), "-o", str(out)])
    assert found.exit_code == 0, found.output
    page = out.read_text()
    assert page.count('<section id="set') == 2
    ranked = len(list(RESULTS.rglob("segbench-*.json"))) - 1  # all but the smoke run, apart
    assert ranked >= 14 and page.count('<details id="set') == ranked  # each has its section
    assert "segbench-smoke-cpu-20261130T045811Z.json" in page[page.index('id="apart"') :]
    for part in ("provenance", "environment", "environment differences", "step-time trace"):
        assert part in page
    assert "segbench reproduce " in page and "time per step (median)" in page
    assert f'content="segbench report {__version__}"' in page
    tags = elements(page)
    # Nothing to fetch: no external source, link or stylesheet; one inline script.
    assert not [a for _, a in tags if re.match(r"(https?:)?//", a.get("src", ""))]
    assert [t for t, a in tags if t == "link"] == []
    assert [t for t, _ in tags if t == "script"] == ["script"]
    assert all("scope" in a for t, a in tags if t == "th")
    assert all(a.get("role") == "img" for t, a in tags if t == "svg")
    assert "@media print" in page and 'name="viewport"' in page


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "[click](https://example.com) **bold** | col",
    '=HYPERLINK("http://x")',
    "\x1b]0;owned\x07\x1b[2J",
]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_labels_cpu_names_and_model_specs_are_inert(tmp_path, bad):
    data = shifted(document(model=f"CPU {bad}"), 1)
    data["config"]["preset"] = f"quick{bad}"
    data["environment"]["packages"]["evil"] = bad
    path = write(tmp_path, "hostile.json", data)
    page = report_html(build_report([path]))
    tags = elements(page)
    assert [t for t, _ in tags if t == "script"] == ["script"]  # the page's own only
    assert not [t for t, _ in tags if t == "img"]
    assert not any(k.startswith("on") for _, a in tags for k in a)
    assert not [a for t, a in tags if t == "a" and not a.get("href", "").startswith("#")]
    assert "\x1b" not in page and "\x07" not in page
    assert bad.replace("\x1b", "") not in page or not re.search(r"[<>]", bad)


def test_a_hostile_model_spec_is_escaped(tmp_path):
    data = shifted(document(), 1)
    own = "<script>alert(1)</script>:build"
    data["model"]["own"] = {
        "spec": own, "function": "build", "source_sha256": None, "args": [],
        "digest": "0" * 64, "input_shape": [8, 8, 1], "output_shape": [8, 8, 1],
        "activation": "sigmoid", "loss": "mse", "loss_origin": "default",
        "flops_not_counted": [],
    }  # fmt: skip
    path = write(tmp_path, "own.json", data)
    report = build_report([path])
    page = report_html(report)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;:build" in page
    assert [t for t, _ in elements(page) if t == "script"] == ["script"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing-folder", "-o", "r.html"], "missing-folder: no such file or folder"),
        (["in", "-o", "r.png"], "--output r.png: the report is an HTML page"),
        (["in", "-o", "mine.html"], "--output mine.html: exists and is not a report segbench"),
        (["empty", "-o", "r.html"], "empty: no result file (*.json) found"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "in", "a.json", shifted(document(), 1))
    (tmp_path / "empty").mkdir()
    (tmp_path / "mine.html").write_text("<p>my page</p>")
    found = runner.invoke(app, ["report", *args])
    assert found.exit_code == 2
    lines = found.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "r.html").exists()
    assert (tmp_path / "mine.html").read_text() == "<p>my page</p>"


def test_a_report_segbench_wrote_is_replaced(tmp_path):
    write(tmp_path / "in", "a.json", shifted(document(), 1))
    out = tmp_path / "r.html"
    for _ in range(2):
        found = runner.invoke(app, ["report", str(tmp_path / "in"), "-o", str(out)])
        assert found.exit_code == 0, found.output
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["summary"].update(median_ms=float("nan")),  # a field out of its range
        lambda d: d["summary"].update(median_ms="100.0"),  # of the wrong type
        lambda d: d["config"].pop("width"),  # missing
    ],
    ids=["nan", "string", "missing"],
)
def test_a_file_whose_field_is_invalid_is_shown_apart_not_the_whole_report_refused(
    tmp_path, change
):
    good = write(tmp_path, "good.json", shifted(document(), 1))
    data = shifted(document(), 2)
    change(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data, allow_nan=True))
    report = build_report([tmp_path])
    assert [len(s.results) for s in report.sets] == [1] and report.sets[0].files == [good]
    assert [(a.path, [f.check for f in a.findings]) for a in report.apart] == [(bad, [SCHEMA])]


def test_a_damaged_copy_never_hides_the_sound_file_of_its_run_as_a_duplicate(tmp_path):
    sound = shifted(document(), 1)
    damaged = json.loads(json.dumps(sound))
    damaged["forced"] = True
    first = write(tmp_path, "a-damaged.json", damaged)  # read first
    second = write(tmp_path, "b-sound.json", sound)
    report = build_report([first, second])
    assert [f for s in report.sets for f in s.files] == [second]
    assert [(a.path, [f.check for f in a.findings]) for a in report.apart] == [(first, [STATUS])]


def test_a_fake_trainer_result_is_never_ranked(tmp_path):
    data = shifted(document(), 1)
    data["device"]["description"] = "CPU (fake trainer)"
    fake = write(tmp_path, "fake.json", data)
    report = build_report([fake])
    assert report.sets == [] and [f.check for f in report.apart[0].findings] == [FAKE]
