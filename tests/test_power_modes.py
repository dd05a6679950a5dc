"""macOS energy modes: `pmset -g` lists `lowpowermode` on older systems and `powermode` (0
automatic, 1 low power, 2 high power) on newer ones; doctor reads both, warns on Low Power,
and every result records the mode.

tests/data/pmset-g-*.txt are `pmset -g` answers in the layout macOS 12 (MacBook Air, Low Power
Mode on) and macOS 15 (MacBook Pro in Low Power; a Mac mini in High Power) print.
"""

import importlib
import json
from pathlib import Path

import pytest

from segbench import doctor
from segbench.doctor.hardware import energy_mode
from segbench.doctor.types import PASS, WARN, Facts
from segbench.measure.run.record import _power_state
from segbench.measure.telemetry import Reading, summarize
from segbench.measure.telemetry.summary import Telemetry
from segbench.results.schema import from_json, to_json

gather = importlib.import_module("segbench.doctor.gather")  # the module, not doctor.gather()
DATA = Path(__file__).parent / "data"
OLD_LOW = DATA / "pmset-g-macos12-lowpowermode.txt"
NEW_LOW = DATA / "pmset-g-macos15-powermode-low.txt"
NEW_HIGH = DATA / "pmset-g-macos15-powermode-high.txt"


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        (OLD_LOW.read_text(), "low power"),
        (NEW_LOW.read_text(), "low power"),
        (NEW_HIGH.read_text(), "high power"),
        (
            NEW_LOW.read_text().replace("powermode            1", "powermode            0"),
            "automatic",
        ),
        (
            OLD_LOW.read_text().replace("lowpowermode         1", "lowpowermode         0"),
            "automatic",
        ),
        (" lowpowermode         1\n powermode            0\n", "automatic"),  # the newer name wins
        ("Currently in use:\n standby              1\n", None),
        (None, None),
    ],
)
def test_energy_mode_is_read_from_old_and_new_pmset(text, mode):
    assert energy_mode(text) == mode


def _fake_pmset(folder: Path, answer: Path) -> None:
    """A `pmset` stand-in on PATH: `pmset -g` prints the recorded answer, `-g therm` nothing."""
    script = folder / "pmset"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$#" -eq 1 ] && [ "$1" = "-g" ]; then cat ' + f"'{answer}'" + "; exit 0; fi\n"
        "exit 1\n"
    )
    script.chmod(0o755)


@pytest.mark.parametrize("answer", [OLD_LOW, NEW_LOW], ids=["macos12", "macos15"])
def test_doctor_warns_on_low_power_from_old_and_new_pmset(tmp_path, monkeypatch, answer):
    _fake_pmset(tmp_path, answer)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setattr(gather, "_macos", gather.command_output)  # as on macOS
    battery, low_power_mode, _thermal, mode = gather.power_facts()
    assert (low_power_mode, mode) == (True, "low power")
    check = doctor.check_power(battery, low_power_mode)
    assert check.status == WARN
    assert check.found == "macOS energy mode is Low Power"
    assert check.expected == "Automatic or High Power energy mode"
    assert check.fix.startswith("turn Low Power off: sudo pmset -a powermode 0")


def test_high_power_and_automatic_pass_and_are_shown(tmp_path, monkeypatch):
    _fake_pmset(tmp_path, NEW_HIGH)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setattr(gather, "_macos", gather.command_output)
    _battery, low_power_mode, _thermal, mode = gather.power_facts()
    assert (low_power_mode, mode) == (False, "high power")
    check = doctor.check_power(None, low_power_mode, mode)
    assert (check.status, check.found) == (
        PASS,
        "no battery (mains power); macOS energy mode high power",
    )
    unplugged = doctor.check_power({"percent": 55, "power_plugged": False}, False, "automatic")
    assert unplugged.status == WARN
    assert unplugged.found == "on battery (55 %); macOS energy mode automatic"
    assert doctor.check_power(None, None, "low power").status == WARN


def _facts(**power) -> Facts:
    return Facts(
        python=(3, 11, 9),
        sys_platform="darwin",
        machine="arm64",
        backend="tensorflow",
        installed={},
        import_errors={},
        export_path=None,
        export_pins=None,
        export_error=None,
        gpus=["METAL"],
        nvidia=None,
        computation={},
        ram_available=16 * 2**30,
        gpu_memory_free=None,
        load_1min=0.5,
        cpus=8,
        thermal=None,
        threads={},
        onednn=None,
        xla_available=None,
        **power,
    )


def test_every_mac_result_records_the_energy_mode():
    facts = _facts(
        battery={"percent": 80, "power_plugged": True},
        low_power_mode=False,
        energy_mode="high power",
    )
    state = _power_state(facts)
    assert state == ("mains (battery charging or full)", False, "high power")
    readings = [Reading(t=t / 10, power_w=20.0) for t in range(11)]
    telemetry = summarize("powermetrics", readings, [(0.0, 1.0)], 16, [], 0.1, 0.0, *state)
    assert telemetry.energy_mode == "high power" and telemetry.low_power_mode is False
    written = json.loads(json.dumps(to_json(telemetry)))
    assert written["energy_mode"] == "high power"
    assert from_json(Telemetry, written, "result.json").energy_mode == "high power"
    # A result written before the field existed still loads, the mode unknown.
    del written["energy_mode"]
    assert from_json(Telemetry, written, "old.json").energy_mode is None
    # Off macOS the mode is unknown and left out of the file.
    linux = _power_state(_facts(battery=None, low_power_mode=None))
    assert linux == ("mains (no battery)", None, None)
    off_mac = summarize(None, [], [(0.0, 1.0)], 16, [], 0.1, 0.0, *linux)
    assert "energy_mode" not in to_json(off_mac)
