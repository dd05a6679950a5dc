"""The TensorFlow × tensorflow-metal table: held to the symbol check's evidence, used by doctor."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from segbench.doctor import check_metal, metal_pairs
from segbench.doctor.checks import run_checks
from segbench.doctor.types import FAIL, PASS, WARN, Context, Facts

ROOT = Path(__file__).resolve().parents[1]
EVIDENCE = json.loads((ROOT / "envs" / "metal-pairs.json").read_text())
MAC = ("darwin", "arm64")
PINS = {"tensorflow": "2.19.1", "tensorflow-metal": "1.2.0"}


def evidence_rows():
    for row in EVIDENCE["pairs"]:
        tensorflow = row["tensorflow"].split()[-1]
        yield tensorflow, row["tensorflow_metal"], row


def disagreements(evidence: dict, pairs) -> list[str]:
    """Where the symbol check's evidence and the table part: a plugin release on PyPI or a
    checked pair the table lacks, a row the evidence does not back."""
    checked = {
        (metal_pairs.minor(row["tensorflow"].split()[-1]), row["tensorflow_metal"])
        for row in evidence["pairs"]
    }
    table = {(pair.tensorflow, pair.metal) for pair in pairs}
    releases = {pair.metal for pair in pairs}
    return [
        *(f"tensorflow-metal {r} is on PyPI, not in the table"
          for r in sorted(set(evidence["tensorflow_metal_on_pypi"]) - releases)),
        *(f"tensorflow-metal {r} is in the table, not on PyPI"
          for r in sorted(releases - set(evidence["tensorflow_metal_on_pypi"]))),
        *(f"checked pair {p} is not in the table" for p in sorted(checked - table)),
        *(f"table row {p} was not checked" for p in sorted(table - checked)),
    ]  # fmt: skip


def test_the_table_and_the_evidence_list_the_same_releases_and_pairs():
    assert disagreements(EVIDENCE, metal_pairs.PAIRS) == []
    assert tuple(EVIDENCE["tensorflow_metal_on_pypi"]) == metal_pairs.METAL_RELEASES
    assert "1.0.1" in metal_pairs.METAL_RELEASES
    assert len(metal_pairs.PAIRS) == len(EVIDENCE["pairs"]) == 160


def test_a_release_missing_on_either_side_is_a_disagreement():
    newer = {
        **EVIDENCE,
        "tensorflow_metal_on_pypi": [*EVIDENCE["tensorflow_metal_on_pypi"], "1.3.0"],
    }
    newer["pairs"] = [
        *EVIDENCE["pairs"],
        {"tensorflow": "tensorflow 2.19.1", "tensorflow_metal": "1.3.0"},
    ]
    assert disagreements(newer, metal_pairs.PAIRS) == [
        "tensorflow-metal 1.3.0 is on PyPI, not in the table",
        "checked pair ('2.19', '1.3.0') is not in the table",
    ]
    without = [pair for pair in metal_pairs.PAIRS if pair.metal != "1.0.1"]  # the old table
    found = disagreements(EVIDENCE, without)
    assert found[0] == "tensorflow-metal 1.0.1 is on PyPI, not in the table" and len(found) == 11


def test_every_checked_pair_is_in_the_table_with_the_checks_verdict():
    checked = list(evidence_rows())
    for tensorflow, metal, row in checked:
        pair = metal_pairs.lookup(tensorflow, metal)
        assert pair is not None, (tensorflow, metal)
        assert "symbols" in pair.sources
        assert (pair.verdict == metal_pairs.FAILS) == (row["verdict"] == "fails"), pair
        if row["missing"]:  # the symptom names a symbol the check found missing
            named = re.findall(r"(_{1,2}[A-Za-z]\w+)", pair.symptom)
            assert set(named) & set(row["missing"]), (pair, row["missing"][:3])


def test_the_locked_pair_works_and_matches_the_macos_export():
    requirements = (ROOT / "envs" / "macos-arm64-metal" / "requirements.txt").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", requirements, flags=re.M))
    assert (pins["tensorflow"], pins["tensorflow-metal"]) == metal_pairs.LOCKED
    pair = metal_pairs.lookup(*metal_pairs.LOCKED)
    assert pair.verdict == metal_pairs.WORKS and "lock" in pair.sources


def test_every_row_cites_a_source_the_module_explains():
    explained = set(re.findall(r"\[([#\w]+)\]", metal_pairs.__doc__))
    for pair in metal_pairs.PAIRS:
        assert pair.sources and set(pair.sources) <= explained, pair
        assert (pair.verdict == metal_pairs.FAILS) == bool(pair.symptom), pair


def test_lookup_goes_by_tensorflow_minor_and_exact_plugin_release():
    assert metal_pairs.lookup("2.18.0", "1.1.0").verdict == metal_pairs.FAILS
    assert metal_pairs.lookup("2.17.0", "1.1.0").verdict == metal_pairs.WORKS
    assert metal_pairs.lookup("2.19.1", "1.3.0") is None
    assert metal_pairs.lookup("2.22.0", "1.2.0") is None


@pytest.mark.parametrize(
    ("tensorflow", "metal", "status", "words"),
    [
        ("2.19.1", "1.2.0", PASS, "tensorflow 2.19.1 + tensorflow-metal 1.2.0, METAL"),
        ("2.18.0", "1.1.0", FAIL, "Symbol not found: __ZN3tsl8internal10LogMessageC1EPKcii"),
        ("2.20.0", "1.2.0", FAIL, "Library not loaded: @rpath/_pywrap_tensorflow_internal.so"),
        ("2.16.2", "1.2.0", WARN, "no report of it training"),
        ("2.19.1", "1.3.0", WARN, "not in segbench's table"),
        ("2.22.0", "1.2.0", WARN, "not in segbench's table"),
    ],
)
def test_doctor_judges_the_installed_pair(tensorflow, metal, status, words):
    installed = {"tensorflow": tensorflow, "tensorflow-metal": metal}
    check = check_metal(*MAC, installed, ["METAL"], PINS, "tensorflow")
    assert check.status == status and words in check.found
    assert f"tensorflow {tensorflow} + tensorflow-metal {metal}" in check.found
    if status != PASS:
        assert check.fix == (
            'uv sync --locked (or pip install "tensorflow==2.19.1" "tensorflow-metal==1.2.0")'
        )


def _symbol_check():
    spec = importlib.util.spec_from_file_location("metal_check", ROOT / "envs" / "metal_pairs.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    return check


def test_the_symbol_check_counts_tensorflow_symbols_only():
    check = _symbol_check()
    imports = {"_TF_NewStatus", "__ZN3tsl8internal10LogMessageC1EPKcii", "_objc_msgSend"}
    assert check.missing_symbols(imports, {"_TF_NewStatus"}) == [
        "__ZN3tsl8internal10LogMessageC1EPKcii"
    ]
    assert check.missing_symbols(imports, {"_TF_NewStatus", *imports}) == []
    assert check.distribution("2.14.1") == "tensorflow-macos"
    assert check.distribution("2.15.1") == "tensorflow"


def test_the_symbol_check_takes_every_macos_arm64_release_from_pypi():
    """A PEP 691 answer, shortened: x86_64-only, yanked and sdist files do not count."""
    index = {"files": [
        {"filename": "tensorflow_metal-0.1.0-cp38-cp38-macosx_11_0_arm64.whl", "yanked": False},
        {"filename": "tensorflow_metal-0.1.0-cp38-cp38-macosx_11_0_x86_64.whl", "yanked": False},
        {"filename": "tensorflow_metal-0.9.9-cp38-cp38-macosx_11_0_x86_64.whl", "yanked": False},
        {"filename": "tensorflow_metal-1.0.1-cp311-cp311-macosx_12_0_arm64.whl", "yanked": False},
        {"filename": "tensorflow_metal-1.1.1-cp311-cp311-macosx_12_0_arm64.whl", "yanked": True},
        {"filename": "tensorflow_metal-1.0.0-cp311-cp311-macosx_12_0_arm64.whl", "yanked": False},
        {"filename": "tensorflow-metal-1.0.0.tar.gz", "yanked": False},
    ]}  # fmt: skip
    assert _symbol_check().macos_arm64_releases(index) == ["0.1.0", "1.0.0", "1.0.1"]


def test_merging_a_subset_replaces_its_rows_and_keeps_the_rest_in_order():
    def row(tf, metal, verdict="loads"):
        return {"tensorflow": tf, "tensorflow_metal": metal, "verdict": verdict}

    old = [row("tensorflow 2.19.1", "1.0.0"), row("tensorflow 2.19.1", "1.2.0", "fails")]
    new = [row("tensorflow 2.19.1", "1.2.0"), row("tensorflow 2.19.1", "1.0.1", "fails")]
    merged = _symbol_check().merged(old, new)
    assert [(r["tensorflow_metal"], r["verdict"]) for r in merged] == [
        ("1.0.0", "loads"),
        ("1.0.1", "fails"),
        ("1.2.0", "loads"),
    ]


def mac_facts(installed: dict[str, str], gpus: list[str]) -> Facts:
    return Facts(
        python=(3, 11, 9),
        sys_platform="darwin",
        machine="arm64",
        backend="tensorflow",
        installed=installed,
        import_errors={},
        export_path="envs/macos-arm64-metal/requirements.txt",
        export_pins=PINS,
        export_error=None,
        gpus=gpus,
        nvidia=None,
        computation={},
        ram_available=16 * 2**30,
        gpu_memory_free=None,
        battery=None,
        low_power_mode=False,
        load_1min=0.5,
        cpus=8,
        thermal=None,
        threads={},
        onednn=None,
        xla_available=None,
    )


def test_the_doctor_table_passes_the_run_device_to_the_metal_check():
    """A Mac VM (GitHub's runners) has no Metal GPU: FAIL for a GPU run, WARN for --device cpu."""
    facts = mac_facts({"tensorflow": "2.19.1", "tensorflow-metal": "1.2.0"}, gpus=[])
    for device, status in (("auto", FAIL), ("gpu", FAIL), ("cpu", WARN)):
        checks = {c.id: c for c in run_checks(facts, Context(preset="smoke", device=device))}
        assert checks["metal"].status == status, device
    broken = mac_facts({"tensorflow": "2.20.0", "tensorflow-metal": "1.2.0"}, gpus=[])
    checks = {c.id: c for c in run_checks(broken, Context(preset="smoke", device="cpu"))}
    assert checks["metal"].status == FAIL and "cannot load" in checks["metal"].found
