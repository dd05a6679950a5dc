"""The TensorFlow × tensorflow-metal table: held to the symbol check's evidence, used by doctor."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from segbench import metal_pairs
from segbench.doctor import check_metal
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


def test_every_checked_pair_is_in_the_table_with_the_checks_verdict():
    checked = list(evidence_rows())
    assert len(checked) == len(metal_pairs.PAIRS) == 40
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


def test_the_symbol_check_counts_tensorflow_symbols_only():
    spec = importlib.util.spec_from_file_location("metal_check", ROOT / "envs" / "metal_pairs.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    imports = {"_TF_NewStatus", "__ZN3tsl8internal10LogMessageC1EPKcii", "_objc_msgSend"}
    assert check.missing_symbols(imports, {"_TF_NewStatus"}) == [
        "__ZN3tsl8internal10LogMessageC1EPKcii"
    ]
    assert check.missing_symbols(imports, {"_TF_NewStatus", *imports}) == []
    assert check.distribution("2.14.1") == "tensorflow-macos"
    assert check.distribution("2.15.1") == "tensorflow"


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
