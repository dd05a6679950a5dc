"""Checks of the software stack: Python, the frameworks, the lock, the Metal plugin.

Each `check_*` takes the facts it judges as plain data and returns a Check, so its logic is
tested without the machine it describes. Nothing here reads the machine or prints.
"""

from __future__ import annotations

from typing import Any

from segbench.doctor.types import FAIL, PASS, SKIP, WARN, Check
from segbench.package_data import metal_table

SUPPORTED_PYTHON = ((3, 10), (3, 12))
# A version mismatch of these makes results incomparable; other packages only warn.
CRITICAL_PACKAGES = ("tensorflow", "keras", "tensorflow-metal")
# Installed beside any locked environment: segbench itself and the installer.
TOOLING = frozenset({"segbench", "pip", "setuptools", "wheel"})
LISTED = 8  # names shown per kind of drift before "and N more"


def check_python(version: tuple[int, int, int]) -> Check:
    low, high = SUPPORTED_PYTHON
    found = ".".join(map(str, version))
    expected = f"{low[0]}.{low[1]}–{high[0]}.{high[1]}"
    if low <= version[:2] <= high:
        return Check("python", PASS, found, expected)
    return Check(
        "python",
        FAIL,
        found,
        expected,
        f"use Python {expected}: uv python install 3.11 && uv sync --python 3.11",
    )


def check_import(
    probe: Any,
    installed: dict[str, str],
    pins: dict[str, str] | None,
    settings: Any = None,
    fake_trainer: bool = False,
) -> Check:
    """The frameworks imported in a child process first (probe.Probe): a crash, an abort or a
    library that binds a symbol the installed framework lacks is named with its package pair."""
    if probe is None and fake_trainer:
        return Check(
            "import", SKIP, "the fake trainer imports no framework (SEGBENCH_FAKE_TRAINER)"
        )
    if probe is None:
        return Check("import", SKIP, "a framework is not installed (see the rows below)")
    if probe.ok:
        shown = ", ".join(f"{m} {v}" for m, v in probe.versions.items())
        how = "as before in this environment" if probe.cached else f"{probe.seconds:.1f} s"
        return Check("import", PASS, f"{shown} import in a child process ({how})", "importable")
    module = probe.failed_module or "the framework"
    found = f"import {module} fails: {probe.error}"
    owner_name = probe.owner.split()[0] if probe.owner else None
    if not probe.library and probe.plugins:
        found += "; plugins loaded by this import: " + ", ".join(probe.plugins)
    if probe.library:
        found += f"; in {probe.library}"
        found += f" (installed by {probe.owner})" if probe.owner else " (no package owns it)"
    framework = f"{module} {installed[module]}" if module in installed else module
    if owner_name and owner_name != module:
        found += f": {probe.owner} does not load into {framework}"
    if owner_name == "tensorflow-metal" and "tensorflow" in installed:
        metal_pairs = metal_table()  # checked: a damaged table stops doctor in one line
        row = metal_pairs.lookup(installed["tensorflow"], probe.owner.split()[1])
        verdict = f"{row.verdict}: {row.symptom}" if row else "not in the table"
        found += f" (segbench's TensorFlow × tensorflow-metal table: {verdict})"
        fix = metal_pairs.pip_fix(pins)
    elif owner_name and owner_name != module:
        fix = (
            f"{owner_name} was built for another {module}: pip uninstall -y {owner_name} "
            f"(or install its release for {framework}), then uv sync --locked"
        )
    elif probe.library and not probe.owner:
        fix = f"remove {probe.library} (left by an old install), then uv sync --locked"
    elif settings is not None and settings.invalid:
        from segbench.measure.settings import invalid_line

        fix = invalid_line(settings).partition(" — ")[2]
        found += f" ({invalid_line(settings).partition(' — ')[0]})"
    elif probe.plugins:
        fix = (
            "move the plugins aside one at a time (out of tensorflow-plugins/) to find the one "
            "that breaks the import, then uninstall or update its package"
        )
    else:
        fix = (
            f"reinstall the locked environment in a fresh venv (uv sync --locked); "
            f"the full error: python -c 'import {module}'"
        )
    return Check("import", FAIL, found, f"{module} imports", fix)


def check_framework(
    name: str,
    installed: dict[str, str],
    pins: dict[str, str] | None,
    import_errors: dict[str, str],
    backend: str,
    imported: dict[str, str] | None = None,
    owners: dict[str, list[str]] | None = None,
) -> Check:
    """tensorflow or keras: it imports, one distribution provides it, and the version Python
    really imports (`imported`, from the child process) is the locked one."""
    expected = pins.get(name, "") if pins else ""
    needed = name == "keras" or backend == "tensorflow"
    bad = FAIL if needed else WARN
    providers = (owners or {}).get(name, [])
    loaded = (imported or {}).get(name)
    if len(providers) > 1:
        names = [p.split()[0] for p in providers]
        return Check(
            name,
            bad,
            f"{' and '.join(providers)} all install the {name} module"
            + (f"; Python imports {loaded}" if loaded else ""),
            f"one distribution of {name} " + (expected or ""),
            f"pip uninstall -y {' '.join(names)}, then uv sync --locked",
        )
    if loaded and name in installed and _base(loaded) != _base(installed[name]):
        return Check(
            name,
            bad,
            f"pip lists {installed[name]}, but Python imports {loaded}",
            expected or installed[name],
            "another copy shadows it (PYTHONPATH, a user-site install): remove it, "
            "then uv sync --locked",
        )
    if name in import_errors:
        return Check(
            name,
            bad,
            f"import fails: {import_errors[name]}",
            expected or "importable",
            "reinstall the locked environment: uv sync --locked",
        )
    version = installed.get(name)
    if version is None:
        return Check(
            name,
            bad,
            "not installed",
            expected or "installed",
            "uv sync --locked" if needed else f"not needed by the {backend} backend",
        )
    if expected and version != expected:
        return Check(
            name,
            bad,
            version,
            expected,
            f"install the locked version: uv sync --locked (or pip install {name}=={expected})",
        )
    return Check(name, PASS, version, expected or "(no lock export to compare)")


def _base(version: str) -> str:
    """A version without its local part ("2.9.1+cpu" → "2.9.1")."""
    return version.split("+")[0]


def check_drift(
    installed: dict[str, str],
    pins: dict[str, str] | None,
    export_path: str | None,
    export_error: str | None,
    backend: str,
    also_locked: dict[str, set[str]] | None = None,
    shadowed: dict[str, list[str]] | None = None,
) -> Check:
    """Installed distributions (the versions Python imports) against this platform's export.

    `also_locked` holds uv.lock's other versions (dev tools, optional extras such as `plot`):
    a package installed at one of those is locked, not extra. `shadowed` lists packages
    visible more than once on sys.path (the first is imported): drift even when one is locked.
    """
    if export_error:
        return Check(
            "packages",
            WARN,
            export_error,
            "a readable lock export",
            "restore the file: git checkout envs/ (or regenerate it: just lock)",
        )
    if pins is None:
        return Check(
            "packages",
            SKIP,
            "no lock export for this platform found",
            "envs/<target>/requirements.txt",
            "run from a segbench checkout or set SEGBENCH_LOCK_EXPORT to the export file",
        )
    drifted = {
        n: (installed[n], v) for n, v in pins.items() if n in installed and installed[n] != v
    }
    missing = sorted(n for n in pins if n not in installed)
    locked = also_locked or {}
    extra = sorted(
        n
        for n, v in installed.items()
        if n not in pins and n not in TOOLING and v not in locked.get(n, set())
    )
    twice = shadowed or {}
    if not (drifted or missing or extra or twice):
        return Check("packages", PASS, f"{len(pins)} packages as locked", export_path or "")
    parts = []
    if twice:
        parts.append(
            "visible twice: "
            + _listed(
                [
                    f"{n} {versions[0]} (imported) over {', '.join(versions[1:])}"
                    for n, versions in sorted(twice.items())
                ]
            )
        )
    if drifted:
        parts.append(
            "drifted: "
            + _listed([f"{n} {a} (locked {b})" for n, (a, b) in sorted(drifted.items())])
        )
    if missing:
        parts.append("missing: " + _listed(missing))
    if extra:
        parts.append("extra: " + _listed(extra))
    critical = [n for n in CRITICAL_PACKAGES if n in drifted or n in missing or n in twice]
    if backend != "tensorflow":
        critical = [n for n in critical if n != "tensorflow" and n != "tensorflow-metal"]
    status = FAIL if critical else WARN
    fix = "uv sync --locked (or pip install --require-hashes -r the export in a fresh venv)"
    if twice:
        fix = (
            "remove the other copies (a user-site install, PYTHONPATH, or uv run --with), "
            "then " + fix
        )
    return Check("packages", status, "; ".join(parts), f"exactly {export_path}", fix)


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:LISTED])
    return shown + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")


def check_metal(
    sys_platform: str,
    machine: str,
    installed: dict[str, str],
    gpus: list[str],
    pins: dict[str, str] | None,
    backend: str,
    device: str = "auto",
) -> Check:
    """The Metal plugin: installed, a pair that loads (segbench.doctor.metal_pairs), the GPU it
    exposes."""
    if (sys_platform, machine) != ("darwin", "arm64"):
        return Check("metal", SKIP, "not macOS arm64")
    metal_pairs = metal_table()  # checked: a damaged table stops doctor in one line
    locked = "tensorflow {} + tensorflow-metal {}".format(*metal_pairs.wanted(pins))
    if "tensorflow-macos" in installed:
        return Check(
            "metal",
            FAIL,
            f"tensorflow-macos {installed['tensorflow-macos']} (legacy shim)",
            "plain " + locked,
            "pip uninstall -y tensorflow-macos tensorflow && uv sync --locked",
        )
    if "tensorflow-metal" not in installed:
        return Check(
            "metal", FAIL, "tensorflow-metal not installed", locked, metal_pairs.pip_fix(pins)
        )
    metal = installed["tensorflow-metal"]
    pair = f"tensorflow {installed.get('tensorflow', '(none)')} + tensorflow-metal {metal}"
    row = metal_pairs.lookup(installed["tensorflow"], metal) if "tensorflow" in installed else None
    if row is not None and row.verdict == metal_pairs.FAILS:
        return Check(
            "metal",
            FAIL,
            f"{pair}: the plugin cannot load ({row.symptom})",
            locked,
            metal_pairs.pip_fix(pins),
        )
    if row is None or row.verdict == metal_pairs.LOADS:
        known = (
            "not in segbench's table of known pairs"
            if row is None
            else "its symbols resolve, but no report of it training"
        )
        return Check("metal", WARN, f"{pair}: {known}", locked, metal_pairs.pip_fix(pins))
    if backend == "tensorflow" and not gpus:
        # A Mac VM (CI runners) has no Metal GPU: fine when the run is asked for the CPU.
        return Check(
            "metal",
            WARN if device == "cpu" else FAIL,
            f"{pair}, no GPU device",
            "the Metal GPU as GPU:0",
            "a Mac with its own GPU (virtual machines have none), or run with --device cpu",
        )
    return Check("metal", PASS, f"{pair}, {', '.join(gpus) or 'GPU unused'}", locked)


# Set for a reason other than the computation (or judged by another check).
_NOT_WARNED = frozenset({"KERAS_HOME", "OMP_NUM_THREADS"})


def check_settings(found: Any) -> Check:
    """Global settings (settings.Settings) that change what is computed: refused variables
    FAIL, keras.json values segbench pins and variables it keeps WARN, naming each."""
    if found is None:
        return Check("settings", SKIP, "not read")
    if found.invalid:
        from segbench.measure.settings import invalid_line

        line = invalid_line(found)
        problem, _, fix = line.partition(" — ")
        return Check("settings", FAIL, problem, "a keras.json Keras accepts", fix)
    if found.refused:
        names = ", ".join(found.refused)
        return Check(
            "settings",
            FAIL,
            "; ".join(f"{n} set: {why}" for n, why in found.refused.items()),
            "the computation the run says it measures",
            f"unset {names} (--precision and --xla choose precision and compilation), "
            "or pass --force to measure with it (recorded in the result)",
        )
    parts = []
    if found.keras_file:
        asked = ", ".join(f"{k}={v}" for k, v in found.keras_file.items())
        parts.append(f"{found.keras_json} sets {asked} (segbench pins Keras's defaults)")
    if found.unreadable:
        parts.append(f"keras.json unreadable ({found.unreadable})")
    kept = {n: v for n, v in found.recorded.items() if n not in _NOT_WARNED}
    if kept:
        parts.append("kept as set: " + ", ".join(f"{n}={v}" for n, v in kept.items()))
    if parts:
        return Check(
            "settings",
            WARN,
            "; ".join(parts),
            "Keras's defaults, no variables that change the computation",
            "recorded in the result; unset the variables unless you mean them, and compare "
            "only with results made with the same settings",
        )
    return Check("settings", PASS, "Keras's defaults, nothing set that changes the computation")


def check_cuda_libraries(
    installed: dict[str, str], built_with: dict[str, str], backend: str
) -> Check:
    """The NVIDIA CUDA wheels (nvidia-*-cu12) against the versions TensorFlow's release was
    built with (its and-cuda extra): an older cuDNN or cuBLAS fails at the first convolution
    ("DNN library initialization failed") or matmul, after the run has started."""
    from segbench.doctor.diagnose import older_cuda_libraries

    present = {n: v for n, v in installed.items() if n in built_with}
    if backend != "tensorflow" or not present:
        return Check("cuda-libs", SKIP, "no CUDA wheels installed (CPU build or system CUDA)")
    older = older_cuda_libraries(installed, built_with)
    if older:
        return Check(
            "cuda-libs",
            FAIL,
            "older than TensorFlow was built with: " + _listed(older),
            "the CUDA wheels of tensorflow[and-cuda]",
            "uv sync --extra cuda --locked (or pip install 'tensorflow[and-cuda]=="
            + installed.get("tensorflow", "2.19.1")
            + "')",
        )
    return Check("cuda-libs", PASS, f"{len(present)} CUDA wheels at or above the build's")
