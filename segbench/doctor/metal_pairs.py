"""Which TensorFlow × tensorflow-metal pairs work on macOS arm64, and what a broken one looks like.

tensorflow-metal's plugin is bound to TensorFlow's internal C++ ABI as well as its C API, so each
plugin release loads only into some TensorFlow releases; the rest stop `import tensorflow` with
"Symbol not found … libmetal_plugin.dylib" (or, on 2.20+, "Library not loaded:
@rpath/_pywrap_tensorflow_internal.so"). `segbench doctor` looks the installed pair up here.

Verdicts:
- works: reported running on a Mac (the source is named) and the plugin's symbols resolve;
- loads: the plugin's symbols resolve, nobody we can cite reports it training;
- fails: the plugin cannot load (the symbol check names what is missing; reports agree).

Sources, cited per row:
- [symbols] envs/metal_pairs.py on 2026-11-29: both macOS arm64 wheels from PyPI, every symbol the
  plugin binds by flat lookup or to a TensorFlow library checked against the exports of
  libtensorflow_framework, libtensorflow_cc, _pywrap_tensorflow_internal and (2.20+)
  lib_pywrap_tensorflow_common (evidence:
  envs/metal-pairs.json; a test holds this table to it). It checked each minor's newest patch
  (2.12.0, 2.13.1, 2.14.1 as tensorflow-macos; 2.15.1 … 2.21.0) against every tensorflow-metal
  release PyPI lists with a macOS arm64 wheel (0.1.0 … 1.2.0, 1.0.1 included); rows are keyed
  by TensorFlow minor.
- [#81987] tensorflow/tensorflow#81987: TensorFlow 2.18.0 + tensorflow-metal, macOS 15.1.1,
  "Symbol not found" in libmetal_plugin.dylib at `import tensorflow`.
- [#84167] tensorflow/tensorflow#84167: tensorflow-metal 1.1.0 lists the M2 Max GPU with
  TensorFlow 2.17; upgrading to 2.18 breaks the import.
- [#126360] tensorflow/tensorflow#126360: tensorflow-metal 1.2.0 (last release, 2025-01-31, no
  wheel past cp312) works on 2.18.1 and 2.19; with 2.20.0 `import tensorflow` fails with
  "Library not loaded: @rpath/_pywrap_tensorflow_internal.so", then
  "Symbol not found: __ZN10tensorflow28_AttrValue_default_instance_E";
  [#126384] tensorflow/tensorflow#126384: the same with 2.21.0.
- [lock] this kit's own pin (uv.lock): tensorflow 2.19.1 + tensorflow-metal 1.2.0, the newest
  TensorFlow the plugin loads into.
"""

from __future__ import annotations

from dataclasses import dataclass

WORKS, LOADS, FAILS = "works", "loads", "fails"
LOCKED = ("2.19.1", "1.2.0")  # tensorflow, tensorflow-metal: uv.lock's macOS arm64 pair
# Every release on PyPI with a macOS arm64 wheel (pip index versions tensorflow-metal
# --platform macosx_12_0_arm64; envs/metal-pairs.json records the list the check saw).
METAL_RELEASES = (
    *("0.1.0", "0.1.1", "0.1.2", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.5.1", "0.6.0"),
    *("0.7.0", "0.7.1", "0.8.0", "1.0.0", "1.0.1", "1.1.0", "1.2.0"),
)
# 0.1.0–0.6.0 (built for TensorFlow 2.5–2.10) bind tensorflow::internal::LogMessage, which 2.12
# moved to tsl::; 0.7.0–1.1.0 bind tsl's (const char*, int, int) form that 2.18 dropped.
_TENSORFLOW_LOGGING = METAL_RELEASES[:9]
_TSL_LOGGING = METAL_RELEASES[9:15]
# tensorflow-metal 1.2.0 needs tsl::internal::LogMessage(const char*, int, absl::LogSeverity);
# 2.18 dropped the (const char*, int, int) form that 0.8.0–1.1.0 bind to.
_OLD_LOG_MESSAGE = "Symbol not found: __ZN3tsl8internal10LogMessageC1EPKcii"
_TF_LOG_MESSAGE = "Symbol not found: __ZN10tensorflow8internal10LogMessageC1EPKcii"
_NO_PYWRAP = (
    "Library not loaded: @rpath/_pywrap_tensorflow_internal.so; behind it, Symbol not found: "
    "_TF_AssignUpdateVariable and dozens more C-API and protobuf C++ symbols"
)


@dataclass(frozen=True)
class Pair:
    """One TensorFlow minor × one tensorflow-metal release."""

    tensorflow: str  # minor series, "2.19"
    metal: str  # exact release, "1.2.0"
    verdict: str  # works | loads | fails
    symptom: str  # what `import tensorflow` shows when it fails
    sources: tuple[str, ...]


def _row(tensorflow: str, metal: str, verdict: str, *sources: str, symptom: str = "") -> Pair:
    return Pair(tensorflow, metal, verdict, symptom, sources)


_BEFORE_2_18 = ("2.12", "2.13", "2.14", "2.15", "2.16", "2.17")
PAIRS: tuple[Pair, ...] = (
    # TensorFlow 2.12–2.19: no release before 0.7.0 loads.
    *(
        _row(minor, metal, FAILS, "symbols", symptom=_TF_LOG_MESSAGE)
        for minor in (*_BEFORE_2_18, "2.18", "2.19")
        for metal in _TENSORFLOW_LOGGING
    ),
    # TensorFlow 2.12–2.17: every later release of the plugin resolves its symbols [symbols].
    *(
        _row(minor, metal, LOADS, "symbols")
        for minor in _BEFORE_2_18
        for metal in (*_TSL_LOGGING, "1.2.0")
        if (minor, metal) != ("2.17", "1.1.0")
    ),
    _row("2.17", "1.1.0", WORKS, "#84167", "symbols"),
    # TensorFlow 2.18 and 2.19: only 1.2.0 loads.
    *(
        _row(minor, metal, FAILS, "symbols", symptom=_OLD_LOG_MESSAGE)
        for minor in ("2.18", "2.19")
        for metal in _TSL_LOGGING
        if (minor, metal) != ("2.18", "1.1.0")
    ),
    _row("2.18", "1.1.0", FAILS, "#81987", "#84167", "symbols", symptom=_OLD_LOG_MESSAGE),
    _row("2.18", "1.2.0", WORKS, "#126360", "symbols"),
    _row("2.19", "1.2.0", WORKS, "lock", "#126360", "symbols"),
    # TensorFlow 2.20 and 2.21: no release of the plugin loads.
    *(
        _row(minor, metal, FAILS, "symbols", symptom=_NO_PYWRAP)
        for minor in ("2.20", "2.21")
        for metal in METAL_RELEASES[:-1]
    ),
    _row("2.20", "1.2.0", FAILS, "#126360", "symbols", symptom=_NO_PYWRAP),
    _row("2.21", "1.2.0", FAILS, "#126384", "symbols", symptom=_NO_PYWRAP),
)


def minor(version: str) -> str:
    """'2.19.1' → '2.19' (also for '2.16.0rc0')."""
    return ".".join(version.split(".")[:2])


def lookup(tensorflow: str, metal: str) -> Pair | None:
    """The table's row for an installed pair, or None where the pair is not known."""
    for pair in PAIRS:
        if pair.tensorflow == minor(tensorflow) and pair.metal == metal:
            return pair
    return None


def wanted(pins: dict[str, str] | None = None) -> tuple[str, str]:
    """(tensorflow, tensorflow-metal) wanted: the export's pins, else the lock's."""
    return (
        (pins or {}).get("tensorflow") or LOCKED[0],
        (pins or {}).get("tensorflow-metal") or LOCKED[1],
    )


def pip_fix(pins: dict[str, str] | None = None) -> str:
    """The command that installs the wanted pair."""
    tensorflow, metal = wanted(pins)
    return (
        f'uv sync --locked (or pip install "tensorflow=={tensorflow}" "tensorflow-metal=={metal}")'
    )
